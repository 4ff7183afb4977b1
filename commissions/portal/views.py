"""The payee portal: a payee sees only its own balances, a chart of the last 12 months, its orders (its own
lines of them) with their refunds, its payouts and statements, its documents (the invoices and credit notes
issued in its name, and the platform's commission invoices to it), its payout method, and starts its Stripe
onboarding. Anything that is not the signed-in payee's own is a 404, never a 403; a login without a payee
(staff) gets a 404 on every page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from commissions.models import Payee, PayoutMethod, PayoutStatement
from commissions.portal import selectors
from commissions.portal.chart import build_chart
from commissions.services import start_stripe_onboarding
from commissions.statements.pdf import statement_pdf_response
from invoicing.models import DocumentKind, Invoice
from invoicing.services.pdf import money
from invoicing.views import pdf_response
from ledger.selectors import payee_balances
from payments.models import OrderLine, OrderStatus
from payments.providers.base import (
    ProviderConfigurationError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True
    next_page = "portal:dashboard"  # signing in at /portal/login/ itself (no ?next=) lands in the portal


class PortalLogoutView(auth_views.LogoutView):
    next_page = "portal:login"


def _payee_for(request: HttpRequest) -> Payee:
    payee = Payee.objects.filter(portal_user=request.user).first()
    if payee is None:
        raise Http404("This login has no payee account.")
    return payee


def payout_method_details(payee: Payee) -> dict:
    """The payout method as the payee may see it: the IBAN masked, never in full."""
    return {
        "method": payee.payout_method,
        "label": payee.get_payout_method_display(),
        "schedule": payee.get_payout_schedule_display(),
        "is_stripe": payee.payout_method == PayoutMethod.STRIPE_TRANSFER,
        "is_sepa": payee.payout_method == PayoutMethod.SEPA_CREDIT_TRANSFER,
        "is_paypal": payee.payout_method == PayoutMethod.PAYPAL,
        "holder": payee.bank_account_holder,
        "iban": selectors.mask_iban(payee.iban),
        "bic": payee.bic,
        "paypal_email": payee.paypal_email,
        "verified": payee.payout_method_verified,
    }


RECENT_LINES = 10


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    payee = _payee_for(request)
    lines = (
        OrderLine.objects.filter(payee=payee)
        .exclude(order__status__in=[OrderStatus.OPEN, OrderStatus.EXPIRED, OrderStatus.CANCELED])
        .select_related("order")
        .order_by("-order__created_at", "-pk")[:RECENT_LINES]
    )
    return render(
        request,
        "portal/dashboard.html",
        {
            "payee": payee,
            "section": "dashboard",
            "balances": payee_balances(payee.pk),
            "charts": [build_chart(activity) for activity in selectors.monthly_activity(payee)],
            "lines": lines,
            "payout_method": payout_method_details(payee),
            "onboarding_needed": selectors.stripe_onboarding_needed(payee),
        },
    )


ORDERS_PER_PAGE = 25


@login_required
def orders(request: HttpRequest) -> HttpResponse:
    """The payee's paid orders (its part of each: its lines, its share, what refunds took back of it)."""
    payee = _payee_for(request)
    page = Paginator(selectors.payee_orders(payee), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    refunded = selectors.refunded_share_by_order(payee, [order.pk for order in page])
    rows = [{"order": order, "refunded_share_minor": refunded.get(order.pk, 0)} for order in page]
    return render(request, "portal/orders.html", {"payee": payee, "section": "orders", "page": page, "rows": rows})


@login_required
def order_detail(request: HttpRequest, token) -> HttpResponse:
    """One order, showing only the payee's own lines and its part of the refunds; another payee's order
    (or an unpaid one) is a 404."""
    payee = _payee_for(request)
    detail = selectors.payee_order(payee, token)
    if detail is None:
        raise Http404("No such order.")
    documents = Invoice.objects.filter(order=detail.order, payee=payee).order_by("issued_at", "pk")
    return render(
        request,
        "portal/order_detail.html",
        {"payee": payee, "section": "orders", "detail": detail, "order": detail.order, "documents": documents},
    )


PAYOUTS_PER_PAGE = 25


@login_required
def payouts(request: HttpRequest) -> HttpResponse:
    """The payee's payouts with their status, and its statements (once the statements exist)."""
    payee = _payee_for(request)
    page = Paginator(selectors.payee_payouts(payee), PAYOUTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [{"payout": payout, "iban": selectors.mask_iban(payout.iban)} for payout in page]
    return render(
        request,
        "portal/payouts.html",
        {
            "payee": payee,
            "section": "payouts",
            "page": page,
            "rows": rows,
            "statements": selectors.payee_statements(payee)[:100],
        },
    )


@require_GET
@login_required
def statement_pdf(request: HttpRequest, statement_id: int) -> HttpResponse:
    """A statement's PDF, only the payee's own (another payee's id is a 404)."""
    payee = _payee_for(request)
    statement = PayoutStatement.objects.filter(pk=statement_id, payee=payee).first()
    if statement is None:
        raise Http404("No such statement.")
    return statement_pdf_response(statement)


@require_POST
@login_required
def stripe_onboarding(request: HttpRequest) -> HttpResponse:
    """Send the payee to Stripe's onboarding (a fresh Account Link; the Express account is created once).
    Stripe brings it back to the dashboard. Failures are shown on the dashboard in plain words."""
    payee = _payee_for(request)
    if not selectors.stripe_onboarding_needed(payee):
        messages.info(request, "Nothing to set up: your payouts do not need a Stripe account setup now.")
        return redirect("portal:dashboard")
    back = settings.PUBLIC_BASE_URL + reverse("portal:dashboard")
    try:
        url = start_stripe_onboarding(
            payee=payee, return_url=back, refresh_url=back, now=timezone.now(), actor=request.user
        )
    except ProviderConfigurationError:
        messages.error(
            request,
            "Stripe onboarding is not available right now: Stripe is not configured on this server. "
            "Nothing was sent. Please contact us.",
        )
        return redirect("portal:dashboard")
    except (ProviderUnavailable, ProviderOutcomeUnknown):
        messages.error(request, "Stripe did not answer. Please try again in a moment.")
        return redirect("portal:dashboard")
    except ProviderError as exc:
        logger.warning("portal: Stripe refused the onboarding of payee %s: %s", payee.pk, exc)
        messages.error(request, "Stripe refused to start the onboarding. Please contact us.")
        return redirect("portal:dashboard")
    return HttpResponseRedirect(url)


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
            "section": "documents",
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
