"""Document tasks (the `documents` queue, whose workers are recycled: WeasyPrint's memory grows per render).
Each is safe to run twice: issuing is idempotent, the PDF is stored once and the automatic e-mail is sent once."""

from celery import shared_task
from django.utils import timezone


def _deliver(documents) -> None:
    """Render, store and e-mail new documents — unless rendering is off (`TOLLGATE_RENDER_DOCUMENTS`; the
    test settings turn it off outside the invoicing tests: the documents are still issued and numbered, the
    PDF is rendered on first download)."""
    from django.conf import settings

    from invoicing.services.delivery import email_document

    if not settings.TOLLGATE_RENDER_DOCUMENTS:
        return
    now = timezone.now()
    for document in documents:
        email_document(invoice_id=document.pk, now=now)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=10, retry_backoff_max=600, max_retries=8)
def issue_order_documents(*, order_id: int, **kwargs) -> list[int]:
    from invoicing.services.issuing import issue_order_invoices

    invoices = issue_order_invoices(order_id=order_id, now=timezone.now())
    _deliver(invoices)
    return [invoice.pk for invoice in invoices]


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=10, retry_backoff_max=600, max_retries=8)
def issue_refund_documents(*, refund_id: int, **kwargs) -> list[int]:
    from invoicing.services.issuing import issue_refund_credit_notes

    credit_notes = issue_refund_credit_notes(refund_id=refund_id, now=timezone.now())
    _deliver(credit_notes)
    return [credit_note.pk for credit_note in credit_notes]


@shared_task(acks_late=True)
def issue_monthly_commission_invoices(*, year: int | None = None, month: int | None = None, **kwargs) -> int:
    """Beat, on the 1st: last month's commission invoices, one per payee and currency, e-mailed to payees."""
    from invoicing.services.commission import issue_monthly_commission_invoices as issue
    from invoicing.services.commission import previous_month

    now = timezone.now()
    if year is None or month is None:
        year, month = previous_month(timezone.localdate(now))
    documents = issue(year=year, month=month, now=now)
    _deliver(documents)
    return len(documents)


@shared_task(acks_late=True)
def issue_missing_documents(**kwargs) -> int:
    """Beat: documents the on-commit tasks did not issue (broker down, worker killed), then rendered and sent."""
    from invoicing.services.issuing import issue_missing_documents as issue

    documents = issue(now=timezone.now())
    _deliver(documents)
    return len(documents)
