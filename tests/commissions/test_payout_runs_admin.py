"""Payout runs in the admin (issue 8): "Start a payout run…" only with `commissions.start_payout_run`;
approve / reject by a second user with `commissions.approve_payout_run` (the starter is refused); the SEPA
file downloaded only with `commissions.download_sepa_file` (audited), then marked sent and confirmed;
payouts listed with their run, method and bank columns."""

import pytest
from django.urls import reverse

from commissions.models import Payout, PayoutRun, SepaFile
from core.audit import AuditEntry
from ledger.selectors import check_ledger
from tests.commissions.payout_helpers import available, fund, sepa_payee, stripe_payee
from tests.factories import staff_client as make_staff_client

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:commissions_payoutrun_changelist")
START = reverse("admin:commissions_payoutrun_start")


@pytest.fixture
def staff_client(db):
    """`staff_client("app.codename", ...)`: a logged-in staff user holding only those permissions."""
    return make_staff_client


@pytest.fixture
def high_value_run(staff_client, settings):
    """A run over the threshold, started through the admin by a maker."""
    settings.TOLLGATE_PAYOUT_APPROVAL_THRESHOLD = {"EUR": 50000}
    payee = sepa_payee()
    fund(payee, 60000)
    maker = staff_client("commissions.start_payout_run", "commissions.view_payoutrun", "commissions.approve_payout_run")
    response = maker.post(START, {"schedule": ""})
    assert response.status_code == 302
    run = PayoutRun.objects.get()
    assert run.status == PayoutRun.Status.AWAITING_APPROVAL
    return run, maker, payee


def test_starting_a_run_needs_the_permission(staff_client):
    payee = stripe_payee()
    fund(payee, 10000)
    assert staff_client("commissions.view_payoutrun").get(START).status_code == 403
    assert staff_client("commissions.view_payoutrun").post(START, {"schedule": ""}).status_code == 403
    assert not PayoutRun.objects.exists()

    client = staff_client("commissions.view_payoutrun", "commissions.start_payout_run")
    page = client.get(RUNS)
    assert START in page.content.decode()
    assert client.get(START).status_code == 200
    response = client.post(START, {"schedule": "weekly"})

    run = PayoutRun.objects.get()
    assert response.url == reverse("admin:commissions_payoutrun_change", args=[run.pk])
    assert (run.trigger, run.schedule, run.created_by_id, run.payout_count) == ("staff", "weekly", client.user.pk, 1)
    assert client.get(response.url).status_code == 200


def test_the_starter_cannot_approve_and_a_second_user_can(high_value_run, staff_client):
    run, maker, payee = high_value_run
    maker.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.AWAITING_APPROVAL
    assert not SepaFile.objects.exists()

    without = staff_client("commissions.view_payoutrun")
    without.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == PayoutRun.Status.AWAITING_APPROVAL

    checker = staff_client("commissions.view_payoutrun", "commissions.approve_payout_run")
    checker.post(RUNS, {"action": "approve_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert (run.status, run.approved_by_id) == (PayoutRun.Status.APPROVED, checker.user.pk)
    assert SepaFile.objects.get().total_minor == 60000
    assert checker.get(reverse("admin:commissions_payoutrun_change", args=[run.pk])).status_code == 200


def test_rejecting_asks_for_a_reason_and_puts_the_money_back(high_value_run, staff_client):
    run, _, payee = high_value_run
    checker = staff_client("commissions.view_payoutrun", "commissions.approve_payout_run")
    form = checker.post(RUNS, {"action": "reject_runs", "_selected_action": [run.pk]})
    assert form.status_code == 200
    assert b"rejection_reason" in form.content

    checker.post(
        RUNS, {"action": "reject_runs", "_selected_action": [run.pk], "apply": "1", "rejection_reason": "Too early"}
    )

    run.refresh_from_db()
    assert (run.status, run.rejection_reason) == (PayoutRun.Status.REJECTED, "Too early")
    assert available(payee) == 60000
    assert check_ledger().ok


def test_the_sepa_file_is_downloaded_with_the_permission_then_sent_and_confirmed(staff_client):
    payee = sepa_payee()
    fund(payee, 25000)
    staff_client("commissions.start_payout_run", "commissions.view_payoutrun").post(START, {"schedule": ""})
    sepa_file = SepaFile.objects.get()
    url = reverse("admin:commissions_sepafile_download", args=[sepa_file.pk])
    assert staff_client("commissions.view_sepafile").get(url).status_code == 403

    finance = staff_client("commissions.view_sepafile", "commissions.download_sepa_file", "commissions.view_payoutrun")
    response = finance.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"] == f'attachment; filename="{sepa_file.message_id}.xml"'
    assert response.content == bytes(sepa_file.content)
    assert AuditEntry.objects.filter(action="sepa_file.download", actor=finance.user).exists()
    changelist = reverse("admin:commissions_sepafile_changelist")
    assert url in finance.get(changelist).content.decode()

    finance.post(changelist, {"action": "mark_sent", "_selected_action": [sepa_file.pk]})
    finance.post(changelist, {"action": "mark_confirmed", "_selected_action": [sepa_file.pk]})

    sepa_file.refresh_from_db()
    assert sepa_file.status == SepaFile.Status.CONFIRMED
    assert Payout.objects.get().status == Payout.Status.PAID
    assert check_ledger().ok


def test_payouts_show_their_run_method_and_bank_account(staff_client):
    payee = sepa_payee()
    fund(payee, 25000)
    staff_client("commissions.start_payout_run").post(START, {"schedule": ""})
    payout = Payout.objects.get()
    client = staff_client("commissions.view_payout")

    page = client.get(reverse("admin:commissions_payout_changelist"), {"method": "sepa_credit_transfer"}).content
    assert payout.iban.encode() in page
    assert b"SEPA credit transfer" in page
    assert client.get(reverse("admin:commissions_payout_change", args=[payout.pk])).status_code == 200
    assert (
        client.get(reverse("admin:commissions_payout_changelist"), {"run__id__exact": payout.run_id}).status_code == 200
    )
