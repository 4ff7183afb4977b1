"""Admin pages of the documents admin (`invoicing.admin.InvoiceAdmin.get_urls`): the PDF of a document, and
the VAT report of a period (page and CSV export), each behind `invoicing.view_invoice`."""

from __future__ import annotations

import csv
from datetime import date, timedelta

from django import forms
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import urlencode

from core.admin_tools import money
from invoicing.selectors import SECTIONS, decimal_amount, vat_report, vat_report_totals
from invoicing.views import pdf_response
from ledger.money import CURRENCY_EXPONENTS

VIEW_PERMISSION = "invoicing.view_invoice"
CSV_HEADER = ["section", "country", "scheme", "rate_percent", "currency", "net", "vat", "gross", "documents"]


def require_view_permission(request) -> None:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied


def document_pdf_view(model_admin, request, object_id):
    """The stored PDF of one document, as an attachment."""
    require_view_permission(request)
    invoice = model_admin.get_object(request, unquote(object_id))
    if invoice is None:
        raise Http404("No such document.")
    return pdf_response(invoice)


def last_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


class VatReportForm(forms.Form):
    date_from = forms.DateField(label="Supplied from", help_text="YYYY-MM-DD, inclusive")
    date_to = forms.DateField(label="Supplied to", help_text="YYYY-MM-DD, inclusive")
    currency = forms.ChoiceField(
        required=False, choices=[("", "All currencies")] + [(code, code) for code in sorted(CURRENCY_EXPONENTS)]
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "Must be on or after the start of the period.")
        return cleaned


def report_form(request) -> VatReportForm:
    """Bound to the query string; with no period given, last month."""
    if "date_from" in request.GET or "date_to" in request.GET:
        return VatReportForm(request.GET)
    start, end = last_month(timezone.localdate())
    return VatReportForm(
        {"date_from": start.isoformat(), "date_to": end.isoformat(), "currency": request.GET.get("currency", "")}
    )


def vat_report_view(model_admin, request):
    require_view_permission(request)
    form = report_form(request)
    valid = form.is_valid()
    rows = []
    if valid:
        rows = vat_report(
            date_from=form.cleaned_data["date_from"],
            date_to=form.cleaned_data["date_to"],
            currency=form.cleaned_data["currency"] or None,
        )
        if request.GET.get("format") == "csv":
            return vat_report_csv(rows, form.cleaned_data)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "VAT report",
        "form": form,
        "sections": _sections(rows) if valid else [],
        "csv_query": _csv_query(form) if valid else "",
    }
    status = 400 if request.GET.get("format") == "csv" and not valid else 200
    return TemplateResponse(request, "admin/invoicing/vat_report.html", context, status=status)


def _csv_query(form: VatReportForm) -> str:
    data = form.cleaned_data
    return urlencode(
        {
            "date_from": data["date_from"].isoformat(),
            "date_to": data["date_to"].isoformat(),
            "currency": data["currency"] or "",
            "format": "csv",
        }
    )


def _sections(rows) -> list[dict]:
    """The report per section, amounts formatted, with totals per currency."""
    totals = vat_report_totals(rows)
    sections = []
    for key, label in SECTIONS.items():
        section_rows = [row for row in rows if row.section == key]
        sections.append(
            {
                "key": key,
                "label": label,
                "rows": [
                    {
                        "row": row,
                        "net": money(row.net_minor, row.currency),
                        "vat": money(row.vat_minor, row.currency),
                        "gross": money(row.gross_minor, row.currency),
                    }
                    for row in section_rows
                ],
                "totals": [
                    {
                        "currency": total.currency,
                        "net": money(total.net_minor, total.currency),
                        "vat": money(total.vat_minor, total.currency),
                        "gross": money(total.gross_minor, total.currency),
                    }
                    for total in totals
                    if total.section == key
                ],
            }
        )
    return sections


def vat_report_csv(rows, data: dict) -> HttpResponse:
    currency = data["currency"] or "all"
    filename = f"vat-report-{data['date_from'].isoformat()}-{data['date_to'].isoformat()}-{currency}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    writer = csv.writer(response)
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            [
                row.section,
                row.country,
                row.scheme,
                row.rate_percent,
                row.currency,
                decimal_amount(row.net_minor, row.currency),
                decimal_amount(row.vat_minor, row.currency),
                decimal_amount(row.gross_minor, row.currency),
                row.documents,
            ]
        )
    return response
