"""The buyer's pages. Server-rendered, no JavaScript needed; card details are only ever entered on the
provider's page, so these pages never see them (PCI DSS SAQ A)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from core.errors import DomainError
from payments.checkout.forms import ChooseMethodForm, PaymentLinkForm, StoreCreditForm, StoreCreditLookupForm
from payments.checkout.messages import failure_message
from payments.models import OrderStatus, Payment, PaymentLink, PaymentStatus
from payments.providers.registry import checkout_providers
from payments.selectors import latest_payment, order_by_token
from payments.services.checkout import start_payment, sync_payment_from_provider
from payments.services.orders import LineInput, create_order, expire_order, has_authorized_payment


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate="20/m", method="POST", block=True)
def payment_link(request: HttpRequest, slug: str) -> HttpResponse:
    link = get_object_or_404(PaymentLink.objects.prefetch_related("lines__payee"), slug=slug)
    if not link.is_active:
        return render(request, "checkout/link_inactive.html", {"link": link}, status=410)
    lines = list(link.lines.all())
    form = PaymentLinkForm(request.POST or None, link=link)
    if request.method == "POST" and form.is_valid():
        quantity = form.cleaned_data["quantity"] if link.allow_quantity else 1
        try:
            order = create_order(
                currency=link.currency,
                buyer_email=form.cleaned_data["email"],
                buyer_country=form.cleaned_data["country"] or "",
                now=timezone.now(),
                payment_link=link,
                description=link.title,
                actor_label=f"payment_link:{link.slug}",
                lines=[
                    LineInput(
                        payee_id=line.payee_id,
                        description=line.description,
                        kind=line.kind,
                        quantity=line.quantity * quantity,
                        unit_amount_minor=line.unit_amount_minor,
                        vat_category=line.vat_category,
                        event_ref=line.event_ref,
                        event_starts_at=line.event_starts_at,
                        event_country=line.event_country,
                    )
                    for line in lines
                ],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("checkout:page", token=order.token)
    unit_total = sum(line.unit_amount_minor * line.quantity for line in lines)
    return render(
        request,
        "checkout/payment_link.html",
        {"link": link, "lines": lines, "form": form, "unit_total": unit_total},
        status=400 if form.errors else 200,
    )


def _order_or_404(token):
    order = order_by_token(token)
    if order is None:
        raise Http404
    return order


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate="30/m", method="POST", block=True)
def checkout_page(request: HttpRequest, token) -> HttpResponse:
    order = _order_or_404(token)
    now = timezone.now()
    if order.status == OrderStatus.OPEN and order.expires_at <= now:
        expire_order(order=order, now=now)
        order.refresh_from_db()
    if order.status != OrderStatus.OPEN or has_authorized_payment(order):  # authorized: nothing more to pay
        return redirect("checkout:return", token=order.token)
    providers = checkout_providers(order)
    # Providers paid with a code on this page (store credit) get their own box, not a radio button.
    takes_code = any(getattr(p, "pays_with_code", False) for p in providers)
    providers = [p for p in providers if not getattr(p, "pays_with_code", False)]
    from refunds.store_credit import apply_store_credit, live_reservation, remove_store_credit

    if request.method == "POST" and "remove_store_credit" in request.POST:
        try:
            remove_store_credit(order=order, now=now)
        except DomainError as exc:
            messages.error(request, exc.message)
        return _see_other(reverse("checkout:page", args=[order.token]))
    reservation = live_reservation(order)
    # One applied code per order: while one is applied, the box shows it (and how to remove it) instead.
    takes_code = takes_code and reservation is None
    paying_with_code = request.method == "POST" and "store_credit_code" in request.POST
    posted = request.POST if request.method == "POST" and not paying_with_code else None
    form = ChooseMethodForm(posted, providers=providers)
    credit_form = StoreCreditForm(request.POST if paying_with_code else None) if takes_code else None
    if paying_with_code and credit_form is not None and credit_form.is_valid():
        try:
            result = apply_store_credit(
                order=order, code=credit_form.cleaned_data["store_credit_code"], now=now, request=request
            )
        except DomainError as exc:
            credit_form.add_error("store_credit_code", exc.message)
        else:
            if isinstance(result, Payment):
                return _see_other(reverse("checkout:return", args=[order.token]))
            return _see_other(reverse("checkout:page", args=[order.token]))  # applied: now pay the rest
    elif request.method == "POST" and not paying_with_code and form.is_valid():
        try:
            payment = start_payment(order=order, provider_name=form.cleaned_data["method"], now=now)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            return _see_other(payment.checkout_url)
    if request.GET.get("canceled"):
        messages.info(request, "You left the payment page before paying. Nothing was charged; choose how to pay.")
    lines = list(order.lines.all())
    return render(
        request,
        "checkout/checkout.html",
        {
            "order": order,
            "lines": lines,
            "form": form,
            "credit_form": credit_form,
            "providers": providers,
            "payees": sorted({line.payee.name for line in lines}),
            "reservation": reservation,
            "due_minor": order.total_minor - (reservation.amount_minor if reservation else 0),
        },
        status=400 if form.errors or (credit_form is not None and credit_form.errors) else 200,
    )


def _see_other(url: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = url
    return response


def return_page(request: HttpRequest, token) -> HttpResponse:
    order = _order_or_404(token)
    now = timezone.now()
    payment = _payment_named_by_provider(order, request.GET.get("id")) or latest_payment(order)
    if payment is not None and order.status == OrderStatus.OPEN:
        # The webhook may still be on its way: ask the provider (same fulfilment path as the webhook).
        payment = sync_payment_from_provider(payment=payment, now=now)
        order.refresh_from_db()
    if order.status == OrderStatus.OPEN and order.expires_at <= now:
        expire_order(order=order, now=now)
        order.refresh_from_db()
    state = _buyer_state(order, payment)
    failure = ""
    if state == "failed" and payment is not None:
        failure = failure_message(payment.failure_code)
    from refunds.self_service import self_service_offer

    return render(
        request,
        "checkout/return.html",
        {
            "order": order,
            "payment": payment,
            "state": state,
            "failure": failure,
            "lines": list(order.lines.all()),
            "refund_offer": self_service_offer(order, now=now) if state == "paid" else [],
            "documents": _buyer_documents(order),
        },
    )


def _buyer_documents(order) -> list[dict]:
    """The order's issued invoices and credit notes with their signed download links (relative: the page
    is served from the same host). The order token in the URL is what lets the buyer see this page."""
    from invoicing.models import DocumentKind, Invoice
    from invoicing.services.delivery import download_token

    documents = Invoice.objects.filter(order=order, kind__in=[DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE]).order_by(
        "issued_at", "pk"
    )
    return [
        {"document": document, "url": reverse("invoicing:download", args=[download_token(document)])}
        for document in documents
    ]


@require_http_methods(["POST"])
@ratelimit(key="ip", rate="10/m", method="POST", block=True)
def refund_request(request: HttpRequest, token) -> HttpResponse:
    """The buyer asks for a refund from the return page (CSRF-protected form; no JavaScript)."""
    from refunds.self_service import request_self_service_refund

    order = _order_or_404(token)
    line_ids = [
        int(value)
        for value in request.POST.getlist("lines")[:100]
        if value.isascii() and value.isdigit() and len(value) <= 18
    ]
    try:
        _, outcome = request_self_service_refund(
            order=order, line_ids=line_ids, message=request.POST.get("message", ""), now=timezone.now()
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, outcome)
    response = redirect("checkout:return", token=order.token)
    response.status_code = 303  # see the outcome on the return page (GET)
    return response


def _payment_named_by_provider(order, raw_id):
    """GoPay sends the buyer back with `?id=<its payment id>`. Untrusted: only digits of a sane length that
    name a payment of this very order are used (to sync that attempt); anything else is ignored."""
    if not isinstance(raw_id, str) or not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 19:
        return None
    return order.payments.filter(provider_ref=raw_id).first()


def _buyer_state(order, payment) -> str:
    if order.status in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED):
        return "paid"
    if order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELED):
        return order.status
    if payment is None:
        return "unpaid"
    if payment.status == PaymentStatus.AUTHORIZED:
        return "authorized"  # held on the card; charged when the seller confirms
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED, PaymentStatus.EXPIRED):
        return "failed"
    return "pending"


@require_http_methods(["GET", "POST"])
@ratelimit(key="ip", rate="5/m", method="POST", block=True)
def store_credit_lookup(request: HttpRequest) -> HttpResponse:
    """A buyer has no account: their e-mail address is enough. They give it and we e-mail them their active
    credits. The page answers the same whether the address has any (no way to probe who has credit)."""
    form = StoreCreditLookupForm(request.POST or None)
    sent = False
    if request.method == "POST" and form.is_valid():
        from refunds.store_credit import email_credits_to

        email_credits_to(email=form.cleaned_data["email"], now=timezone.now())
        sent = True
    return render(
        request, "checkout/store_credit.html", {"form": form, "sent": sent}, status=400 if form.errors else 200
    )
