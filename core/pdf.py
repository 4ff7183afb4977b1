"""PDF documents (invoices, statements, dispute evidence packs) rendered from templates with WeasyPrint.

Documents are self-contained: WeasyPrint fetches no URL while rendering (no SSRF through data we print), and
dates are printed one way ("24 November 2026")."""

from __future__ import annotations

from datetime import date, datetime

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateformat import format as format_date

DATE_FORMAT = "j F Y"


def refuse_fetch(url: str, *args, **kwargs):
    raise ValueError(f"PDF rendering: refusing to fetch {url[:80]}")


def render_pdf(template: str, context: dict) -> bytes:
    from weasyprint import HTML

    return HTML(string=render_to_string(template, context), url_fetcher=refuse_fetch).write_pdf()


def day_text(value: date | datetime | None) -> str:
    """A date (a moment: its local day) as documents print it; "" for none."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = timezone.localdate(value)
    return format_date(value, DATE_FORMAT)
