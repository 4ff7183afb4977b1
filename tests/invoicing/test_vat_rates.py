"""VatRate rows: the seeded EU rates, look-ups by validity date, the constraints and the admin."""

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from invoicing.admin import VatRateForm
from invoicing.models import VatRate
from invoicing.selectors import overlapping_rates, rate_for
from invoicing.vat import EU_MEMBER_STATES, EU_RATES_BPS, VatCategory

pytestmark = pytest.mark.django_db

ON = date(2026, 1, 1)


def test_the_migration_loaded_all_27_member_states():
    countries = set(VatRate.objects.values_list("country", flat=True))
    assert countries == EU_MEMBER_STATES
    assert len(countries) == 27


def test_the_seeded_rates_match_the_table_on_2026_01_01():
    for country, (standard, reduced, super_reduced) in EU_RATES_BPS.items():
        assert rate_for(country=country, category=VatCategory.STANDARD, on=ON) == standard, country
        if reduced != standard:
            assert rate_for(country=country, category=VatCategory.REDUCED, on=ON) == reduced, country
        if super_reduced != reduced:
            assert rate_for(country=country, category=VatCategory.SUPER_REDUCED, on=ON) == super_reduced, country


def test_no_row_for_a_rate_a_country_does_not_have():
    assert rate_for(country="DK", category=VatCategory.REDUCED, on=ON) is None
    assert rate_for(country="US", category=VatCategory.STANDARD, on=ON) is None


def test_a_rate_change_applies_from_its_day():
    # Romania: 19 % until 2025-07-31, 21 % from 2025-08-01 (seeded).
    assert rate_for(country="RO", category=VatCategory.STANDARD, on=date(2025, 7, 31)) == 1900
    assert rate_for(country="RO", category=VatCategory.STANDARD, on=date(2025, 8, 1)) == 2100


def test_a_rate_change_entered_by_staff_applies_from_its_day():
    current = VatRate.objects.get(country="CZ", category=VatCategory.STANDARD, valid_to__isnull=True)
    current.valid_to = date(2027, 1, 1)
    current.save()
    VatRate.objects.create(country="CZ", category=VatCategory.STANDARD, rate_bps=2200, valid_from=date(2027, 1, 1))
    assert rate_for(country="CZ", category=VatCategory.STANDARD, on=date(2026, 12, 31)) == 2100
    assert rate_for(country="CZ", category=VatCategory.STANDARD, on=date(2027, 1, 1)) == 2200


def test_no_rate_before_the_first_period():
    assert rate_for(country="CZ", category=VatCategory.STANDARD, on=date(2024, 12, 31)) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"rate_bps": 10001, "valid_from": date(2030, 1, 1)},
        {"rate_bps": 2100, "valid_from": date(2030, 1, 1), "valid_to": date(2030, 1, 1)},
        {"rate_bps": 2100, "valid_from": date(2025, 1, 1)},  # same start as the seeded row
    ],
)
def test_database_constraints(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        VatRate.objects.create(country="CZ", category=VatCategory.STANDARD, **fields)


def form(**data):
    base = {"country": "cz", "category": VatCategory.STANDARD, "rate_bps": 2200, "valid_from": "2027-01-01"}
    base.update(data)
    return VatRateForm(data=base)


def test_the_admin_form_refuses_an_overlapping_period():
    f = form()  # the seeded CZ standard row is open-ended
    assert not f.is_valid()
    assert "overlaps" in str(f.errors)


def test_the_admin_form_accepts_a_period_after_the_current_one_ends():
    current = VatRate.objects.get(country="CZ", category=VatCategory.STANDARD)
    current.valid_to = date(2027, 1, 1)
    current.save()
    f = form()
    assert f.is_valid(), f.errors
    assert f.save().country == "CZ"
    assert not overlapping_rates(country="CZ", category="standard", valid_from=date(2020, 1, 1), valid_to=None).filter(
        valid_from=date(2030, 1, 1)
    )


def test_the_admin_form_refuses_an_end_before_the_start_and_a_rate_above_100_percent():
    f = form(valid_from="2030-01-01", valid_to="2029-01-01", rate_bps=10001, country="XX")
    assert not f.is_valid()
    assert {"valid_to", "rate_bps"} <= set(f.errors)


def test_no_overlaps_among_the_seeded_rows():
    for row in VatRate.objects.all():
        clash = overlapping_rates(
            country=row.country,
            category=row.category,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            exclude_pk=row.pk,
        )
        assert not clash.exists(), row


def test_the_admin_lists_and_edits_rates(admin_client):
    row = VatRate.objects.get(country="DE", category=VatCategory.STANDARD)
    assert admin_client.get("/admin/invoicing/vatrate/?country=DE").status_code == 200
    assert admin_client.get(f"/admin/invoicing/vatrate/{row.pk}/change/").status_code == 200
    response = admin_client.post(
        f"/admin/invoicing/vatrate/{row.pk}/change/",
        {
            "country": "DE",
            "category": "standard",
            "rate_bps": 1900,
            "valid_from": "2025-01-01",
            "valid_to": "",
            "note": "checked",
        },
    )
    assert response.status_code == 302, response.content
    row.refresh_from_db()
    assert row.note == "checked"
    assert row.history.first().note == "checked"
