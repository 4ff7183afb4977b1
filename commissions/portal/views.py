"""The payee portal: a payee sees only its own balances, orders and documents. Statements, payouts and
charts arrive with the payouts work; this cut shows balances, recent sales and the documents (the invoices
and credit notes issued in the payee's name, and the platform's commission invoices to it)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from commissions.models import Payee
from invoicing.models import DocumentKind, Invoice
from invoicing.services.pdf import money
from invoicing.views import pdf_response
from ledger.selectors import payee_balances
from payments.models import OrderLine, OrderStatus


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class PortalLogoutView(auth_views.LogoutView):
    next_page = "portal:login"


def _payee_for(request: HttpRequest) -> Payee:
    payee = Payee.objects.filter(portal_user=request.user).first()
    if payee is None:
        raise Http404("This login has no payee account.")
    return payee


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    payee = _payee_for(request)
    lines = (
        OrderLine.objects.filter(payee=payee)
        .exclude(order__status__in=[OrderStatus.OPEN, OrderStatus.EXPIRED, OrderStatus.CANCELED])
        .select_related("order")
        .order_by("-order__created_at", "-pk")[:50]
    )
    return render(
        request, "portal/dashboard.html", {"payee": payee, "balances": payee_balances(payee.pk), "lines": lines}
    )


DOCUMENTS_PER_PAGE = 50


@login_required
def documents(request: HttpRequest) -> HttpResponse:
    """The payee's documents, newest first, filtered by kind and year of issue (plain GET form)."""
    payee = _payee_for(request)
    own = Invoice.objects.filter(payee=payee)
    years = sorted({day.year for day in own.datetimes("issued_at", "year")}, reverse=True)
    kind = request.GET.get("kind", "")
    kind = kind if kind in DocumentKind.values else ""
    year = request.GET.get("year", "")
    year = int(year) if year.isascii() and year.isdigit() and len(year) == 4 else None
    selected = own.select_related("order")
    if kind:
        selected = selected.filter(kind=kind)
    if year is not None:
        selected = selected.filter(issued_at__year=year)
    page = Paginator(selected.order_by("-issued_at", "-pk"), DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = []
    for document in page:
        negate = document.kind == DocumentKind.CREDIT_NOTE
        rows.append(
            {
                "document": document,
                "counterparty": document.issuer_name
                if document.kind == DocumentKind.COMMISSION_INVOICE
                else (document.recipient_name or document.recipient_email),
                "net": money(document.net_minor, document.currency, negate=negate),
                "vat": money(document.vat_minor, document.currency, negate=negate),
                "gross": money(document.gross_minor, document.currency, negate=negate),
            }
        )
    query = "&".join(part for part in (f"kind={kind}" if kind else "", f"year={year}" if year else "") if part)
    return render(
        request,
        "portal/documents.html",
        {
            "payee": payee,
            "rows": rows,
            "page": page,
            "kinds": DocumentKind.choices,
            "kind": kind,
            "years": years,
            "year": year,
            "query": query,
        },
    )


@require_GET
@login_required
def document_pdf(request: HttpRequest, document_id: int) -> HttpResponse:
    """A document's stored PDF, only for the payee it belongs to (any other id is a 404, not a 403)."""
    payee = _payee_for(request)
    document = Invoice.objects.filter(pk=document_id, payee=payee).first()
    if document is None:
        raise Http404("No such document.")
    return pdf_response(document)
