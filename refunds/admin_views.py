"""Admin pages for refunds through the policy: the "Refund…" page of an order (what the policy allows per line
and the fee, then a refund by lines or amount, with an override reason), and the "Cancel event…" page
(force majeure). Hooked into the order admin (`payments/admin/orders.py`) and the refund admin."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from core.admin_tools import money
from core.errors import DomainError
from payments.models import Order
from refunds.models import RefundMethod, RefundReason
from refunds.services import cancel_event, quote_refund, request_policy_refund
from refunds.services.policy_refunds import _remaining_splits

STAFF_REASONS = [
    (RefundReason.REQUESTED_BY_CUSTOMER.value, RefundReason.REQUESTED_BY_CUSTOMER.label),
    (RefundReason.DUPLICATE_PAYMENT.value, RefundReason.DUPLICATE_PAYMENT.label),
    (RefundReason.FRAUDULENT.value, RefundReason.FRAUDULENT.label),
    (RefundReason.OTHER.value, RefundReason.OTHER.label),
]
METHODS = [
    (RefundMethod.ORIGINAL.value, RefundMethod.ORIGINAL.label),
    (RefundMethod.STORE_CREDIT.value, RefundMethod.STORE_CREDIT.label),
    (RefundMethod.TRANSFER.value, RefundMethod.TRANSFER.label),
]


class OrderRefundForm(forms.Form):
    amount = forms.IntegerField(
        required=False, min_value=1, help_text="Minor units, spread over the lines; or fill in the lines below"
    )
    reason = forms.ChoiceField(choices=STAFF_REASONS)
    method = forms.ChoiceField(choices=METHODS)
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Only to go beyond the policy (the whole part, no fee, commission returned). Audited.",
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    # Transfer to another event (method transfer): the new ticket, from the same payee as the order's first line.
    new_event_ref = forms.CharField(required=False, max_length=100, label="Transfer to event (reference)")
    new_description = forms.CharField(required=False, max_length=200, label="New ticket description")
    new_event_starts_at = forms.DateTimeField(required=False, label="New event starts at (UTC)")
    new_unit_amount = forms.IntegerField(required=False, min_value=1, label="New ticket price (minor units)")
    new_quantity = forms.IntegerField(required=False, min_value=1, initial=1, label="New ticket quantity")

    def __init__(self, *args, order: Order, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        left = _remaining_splits(order)
        self.line_fields = []
        for line in order.lines.order_by("position"):
            name = f"line_{line.pk}"
            self.fields[name] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=sum(left[line.pk]),
                label=f"Line {line.position}: {line.description}",
                help_text=f"Gross part to refund, minor units (at most {sum(left[line.pk])})",
            )
            self.line_fields.append((line, name))

    def lines(self) -> dict | None:
        picked = {
            line.pk: {"amount_minor": self.cleaned_data[name]}
            for line, name in self.line_fields
            if self.cleaned_data.get(name)
        }
        return picked or None

    def clean(self):
        data = super().clean()
        if data.get("amount") and self.lines():
            raise forms.ValidationError("Give an amount or line amounts, not both.")
        if data.get("method") == RefundMethod.TRANSFER:
            needed = ["new_event_ref", "new_description", "new_event_starts_at", "new_unit_amount"]
            if any(not data.get(name) for name in needed):
                raise forms.ValidationError("For a transfer, give the new event, ticket, date and price.")
        return data

    def new_lines(self) -> list:
        from payments.models import LineKind
        from payments.services.orders import LineInput

        first = self.order.lines.order_by("position").first()
        data = self.cleaned_data
        return [
            LineInput(
                payee_id=first.payee_id,
                description=data["new_description"],
                quantity=data.get("new_quantity") or 1,
                unit_amount_minor=data["new_unit_amount"],
                kind=LineKind.EVENT_TICKET,
                vat_category=first.vat_category,
                event_ref=data["new_event_ref"],
                event_starts_at=data["new_event_starts_at"],
                event_country=first.event_country,
            )
        ]


def order_refund_view(model_admin, request, object_id):
    order = model_admin.get_object(request, unquote(object_id))
    if order is None:
        raise Http404("No such order.")
    if not (request.user.has_perm("refunds.add_refund") and model_admin.has_view_permission(request, order)):
        raise PermissionDenied
    change_url = reverse(f"admin:{order._meta.app_label}_{order._meta.model_name}_change", args=[order.pk])
    now = timezone.now()
    form = OrderRefundForm(request.POST or None, order=order)
    if request.method == "POST" and form.is_valid() and form.cleaned_data["method"] == RefundMethod.TRANSFER:
        done = _transfer(model_admin, request, form, order, now)
        if done:
            return HttpResponseRedirect(change_url)
    elif request.method == "POST" and form.is_valid():
        try:
            refund = request_policy_refund(
                order=order,
                lines=form.lines(),
                amount_minor=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                method=form.cleaned_data["method"],
                override_reason=form.cleaned_data["override_reason"],
                note=form.cleaned_data["note"],
                actor=request.user,
                now=now,
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            model_admin.message_user(
                request,
                f"Refund #{refund.pk}: {money(refund.amount_minor, refund.currency)} back to the buyer"
                + (f", fee {money(refund.fee_minor, refund.currency)} kept" if refund.fee_minor else "")
                + f" ({refund.get_status_display().lower()}).",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(change_url)
    quote_rows = []
    try:
        quote = quote_refund(order=order, now=now)
    except DomainError:
        quote = None
    if quote is not None:
        for item in quote.lines:
            quote_rows.append(
                {
                    "line": item.line,
                    "left": money(item.amount_minor, order.currency),
                    "allowed": item.quote.allowed,
                    "fee": money(item.quote.fee_minor, order.currency),
                    "back": money(item.quote.refundable_minor, order.currency),
                    "policy": item.quote.policy_name or "—",
                    "methods": ", ".join(item.quote.methods),
                    "reason": item.quote.reason,
                }
            )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": order,
        "form": form,
        "title": "Refund",
        "quote_rows": quote_rows,
        "change_url": change_url,
    }
    return TemplateResponse(request, "admin/refunds/order_refund.html", context)


def _transfer(model_admin, request, form, order, now) -> bool:
    from refunds.services.transfers import transfer_to_event

    try:
        result = transfer_to_event(
            order=order,
            lines=form.lines(),
            amount_minor=form.cleaned_data["amount"],
            new_lines=form.new_lines(),
            override_reason=form.cleaned_data["override_reason"],
            note=form.cleaned_data["note"],
            actor=request.user,
            now=now,
            request=request,
        )
    except DomainError as exc:
        form.add_error(None, exc.message)
        return False
    refund = result.refund
    text = f"Refund #{refund.pk}: {money(refund.amount_minor, refund.currency)} as store credit"
    if result.new_order is None:
        text += f" ({refund.get_status_display().lower()}); the new order is made once it is approved."
    elif result.difference_due_minor:
        path = reverse("checkout:page", args=[result.new_order.token])
        text += (
            f"; new order {result.new_order.short_token} with the credit applied: the buyer pays the "
            f"{money(result.difference_due_minor, refund.currency)} difference at {path}."
        )
    else:
        text += (
            f"; new order {result.new_order.short_token} paid with it; "
            f"{money(result.credit_left_minor, refund.currency)} stays as store credit."
        )
    model_admin.message_user(request, text, messages.SUCCESS)
    return True


class CancelEventForm(forms.Form):
    event_ref = forms.CharField(max_length=100, label="Event reference")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(label="Refund every paid ticket of this event in full, commission returned")


def cancel_event_view(model_admin, request):
    if not (request.user.has_perm("refunds.add_refund") and request.user.has_perm("refunds.approve_refund")):
        raise PermissionDenied
    form = CancelEventForm(request.POST or None)
    summary = None
    if request.method == "POST" and form.is_valid():
        summary = cancel_event(
            event_ref=form.cleaned_data["event_ref"],
            actor=request.user,
            reason=form.cleaned_data["reason"],
            now=timezone.now(),
        )
        level = messages.WARNING if summary.failures else messages.SUCCESS
        for line in summary.lines():
            model_admin.message_user(request, line, level)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "form": form,
        "title": "Cancel an event (force majeure)",
        "summary": summary,
    }
    return TemplateResponse(request, "admin/refunds/cancel_event.html", context)
