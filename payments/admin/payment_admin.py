"""Admin: Payments: references, capture and void of authorizations."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from core.admin_tools import (
    CurrencyTotalsMixin,
    ReadOnlyAdminMixin,
    SafeHistoryAdmin,
    admin_link,
    changelist_link,
    money,
    money_field,
    provider_link,
)
from core.errors import DomainError
from ledger.money import AmountError, Money
from payments.models import (
    Payment,
    PaymentStatus,
)
from payments.providers.base import CAPTURE, VOID, ProviderConfigurationError
from payments.providers.registry import get_provider
from payments.services.authorizations import capture_authorized_payment, void_authorized_payment

# --- Payments ----------------------------------------------------------------------------------------


class AuthorizationExpiryFilter(admin.SimpleListFilter):
    """Authorized payments (card holds) by when their hold lapses."""

    title = "authorization expires"
    parameter_name = "authorization"

    def lookups(self, request, model_admin):
        return [
            ("24h", "Within 24 hours"),
            ("72h", "Within 3 days"),
            ("past", "Already expired"),
            ("any", "Any card hold"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        held = queryset.filter(status=PaymentStatus.AUTHORIZED)
        now = timezone.now()
        if value == "24h":
            return held.filter(
                authorization_expires_at__gt=now, authorization_expires_at__lte=now + timedelta(hours=24)
            )
        if value == "72h":
            return held.filter(authorization_expires_at__gt=now, authorization_expires_at__lte=now + timedelta(days=3))
        if value == "past":
            return held.filter(authorization_expires_at__lte=now)
        return held


class CaptureForm(forms.Form):
    amount = forms.CharField(
        required=False,
        max_length=30,
        label="Amount to capture",
        help_text="In the payment's currency, e.g. 12.50. Leave empty to capture everything authorized; "
        "a smaller amount captures that part and releases the rest on the buyer's card.",
    )

    def __init__(self, *args, payment: Payment, **kwargs):
        super().__init__(*args, **kwargs)
        self.payment = payment

    def clean_amount(self) -> int | None:
        text = (self.cleaned_data.get("amount") or "").strip()
        if not text:
            return None
        try:
            amount = Money.parse(text, self.payment.currency)
        except AmountError as exc:
            raise forms.ValidationError(str(exc)) from exc
        if amount.amount_minor <= 0:
            raise forms.ValidationError("The amount must be greater than zero.")
        if amount.amount_minor > self.payment.authorized_minor:
            authorized = money(self.payment.authorized_minor, self.payment.currency)
            raise forms.ValidationError(f"Only {authorized} is authorized.")
        return amount.amount_minor


class VoidForm(forms.Form):
    confirm = forms.BooleanField(
        required=True, label="Release the hold on the buyer's card (nothing is charged; this cannot be undone)"
    )


@admin.register(Payment)
class PaymentAdmin(CurrencyTotalsMixin, ReadOnlyAdminMixin, SafeHistoryAdmin):
    list_display = [
        "id",
        "order_link",
        "provider",
        "status",
        "amount",
        "captured",
        "refunded",
        "fee",
        "authorization_expires",
        "needs_review",
        "review_reason",
        "created_at",
    ]
    list_filter = ["provider", "status", AuthorizationExpiryFilter, "needs_review", "review_reason", "currency"]
    list_select_related = ["order"]
    date_hierarchy = "created_at"
    search_fields = ["provider_ref", "provider_payment_ref", "provider_charge_ref", "order__token", "order__reference"]
    ordering = ["-created_at", "-pk"]
    totals_fields = [
        ("amount_minor", "Amount"),
        ("captured_minor", "Captured"),
        ("refunded_minor", "Refunded"),
        ("fee_minor", "Provider fees"),
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "order_link",
                    "provider",
                    "status",
                    "settles_order",
                    "checkout_ref",
                    "payment_ref",
                    "charge_ref",
                ]
            },
        ),
        ("Money", {"fields": ["currency", "amount", "captured", "refunded", "fee"]}),
        (
            "Authorization (card hold)",
            {"fields": ["authorized", "authorization_expires_at", "authorization_warned_at"]},
        ),
        ("Review", {"fields": ["needs_review", "review_reason", "failure_code", "failure_message", "fraud_status"]}),
        ("Dates", {"fields": ["created_at", "status_changed_at", "succeeded_at", "updated_at"]}),
        ("Related", {"fields": ["webhook_events", "refunds", "disputes", "checkout_url"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]

    amount = money_field("amount_minor", "amount")
    captured = money_field("captured_minor", "captured")
    refunded = money_field("refunded_minor", "refunded")
    fee = money_field("fee_minor", "fee")
    authorized = money_field("authorized_minor", "authorized (held, not captured)")
    change_form_template = "admin/payments/payment/change_form.html"
    actions = ["open_test_dispute"]

    # --- sandbox: a test dispute, sent back through the gateway's signed webhook (refunds.sandbox_disputes) --

    def has_open_test_dispute_permission(self, request) -> bool:
        from refunds.sandbox_disputes import sandbox_disputes_enabled

        return sandbox_disputes_enabled() and request.user.has_perm("sandbox.add_sandboxdispute")

    @admin.action(description="Open a test dispute (sandbox)", permissions=["open_test_dispute"])
    def open_test_dispute(self, request, queryset):
        from refunds.sandbox_disputes import SandboxDisputeError, open_sandbox_dispute

        for payment in queryset.order_by("pk"):
            try:
                state = open_sandbox_dispute(
                    payment=payment, reason="fraudulent", actor=request.user, request=request, now=timezone.now()
                )
            except SandboxDisputeError as exc:
                self.message_user(request, f"No dispute opened. {exc}", messages.ERROR)
            else:
                amount = money(state.amount.amount_minor, state.amount.currency)
                self.message_user(
                    request, f"Sandbox dispute {state.provider_ref} opened on payment {payment.pk} for {amount}."
                )

    @admin.display(description="order", ordering="order__created_at")
    def order_link(self, obj):
        return admin_link(obj.order, obj.order.short_token)

    @admin.display(description="authorization expires", ordering="authorization_expires_at")
    def authorization_expires(self, obj):
        if obj.status != PaymentStatus.AUTHORIZED or obj.authorization_expires_at is None:
            return "–"
        return obj.authorization_expires_at

    # --- capture / void (their own permissions; the services audit them) ----------------------------------

    def has_capture_payment_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.capture_payment")

    def has_void_payment_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.void_payment")

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/capture/",
                self.admin_site.admin_view(self.capture_view),
                name=f"{info}_capture",
            ),
            path(
                "<path:object_id>/void/",
                self.admin_site.admin_view(self.void_view),
                name=f"{info}_void",
            ),
            *super().get_urls(),
        ]

    def _authorization_actions(self, request, payment: Payment) -> list[tuple[str, str]]:
        """(label, url) of the capture / void pages this user may use on this payment now."""
        if payment is None or payment.status != PaymentStatus.AUTHORIZED:
            return []
        try:
            capabilities = get_provider(payment.provider).capabilities
        except ProviderConfigurationError:
            return []
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        actions = []
        if CAPTURE in capabilities and self.has_capture_payment_permission(request):
            actions.append(("Capture (full or part)", reverse(f"admin:{info}_capture", args=[payment.pk])))
        if VOID in capabilities and self.has_void_payment_permission(request):
            actions.append(("Void authorization", reverse(f"admin:{info}_void", args=[payment.pk])))
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "authorization_actions": self._authorization_actions(request, payment),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _payment_for_action(self, request, object_id, permitted: bool) -> Payment:
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            raise Http404("No such payment.")
        if not (permitted and self.has_view_permission(request, payment)):
            raise PermissionDenied
        return payment

    def _change_url(self, payment: Payment) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[payment.pk])

    def _action_page(self, request, payment: Payment, form, *, title: str, button: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": payment,
            "form": form,
            "title": title,
            "button": button,
            "authorized": money(payment.authorized_minor, payment.currency),
            "change_url": self._change_url(payment),
        }
        return TemplateResponse(request, "admin/payments/payment/authorization_action.html", context)

    def capture_view(self, request, object_id):
        payment = self._payment_for_action(request, object_id, self.has_capture_payment_permission(request))
        form = CaptureForm(request.POST or None, payment=payment)
        if request.method == "POST" and form.is_valid():
            try:
                payment = capture_authorized_payment(
                    payment_id=payment.pk,
                    amount_minor=form.cleaned_data["amount"],
                    actor=request.user,
                    request=request,
                    now=timezone.now(),
                )
            except DomainError as exc:
                self.message_user(request, f"Not captured. {exc.message}", messages.ERROR)
            else:
                captured = money(payment.captured_minor, payment.currency)
                if payment.status == PaymentStatus.SUCCEEDED:
                    self.message_user(request, f"Captured {captured}.", messages.SUCCESS)
                else:
                    self.message_user(
                        request, f"Sent; the payment is {payment.get_status_display().lower()}.", messages.INFO
                    )
            return HttpResponseRedirect(self._change_url(payment))
        return self._action_page(request, payment, form, title=f"Capture payment {payment.pk}", button="Capture")

    def void_view(self, request, object_id):
        payment = self._payment_for_action(request, object_id, self.has_void_payment_permission(request))
        form = VoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payment = void_authorized_payment(
                    payment_id=payment.pk, actor=request.user, request=request, now=timezone.now()
                )
            except DomainError as exc:
                self.message_user(request, f"Not voided. {exc.message}", messages.ERROR)
            else:
                level = messages.SUCCESS if payment.status == PaymentStatus.CANCELED else messages.INFO
                self.message_user(request, f"Authorization voided; the payment is {payment.status}.", level)
            return HttpResponseRedirect(self._change_url(payment))
        return self._action_page(
            request, payment, form, title=f"Void the authorization of payment {payment.pk}", button="Void"
        )

    @admin.display(description="provider ref (checkout session)")
    def checkout_ref(self, obj):
        return provider_link(obj.provider, "session", obj.provider_ref)

    @admin.display(description="provider payment ref (payment intent)")
    def payment_ref(self, obj):
        return provider_link(obj.provider, "payment", obj.provider_payment_ref)

    @admin.display(description="provider charge ref")
    def charge_ref(self, obj):
        return provider_link(obj.provider, "charge", obj.provider_charge_ref)

    @admin.display(description="webhook events")
    def webhook_events(self, obj):
        return changelist_link("payments.webhookevent", "Events for this payment", payment__id__exact=obj.pk)

    @admin.display(description="refunds")
    def refunds(self, obj):
        return changelist_link("refunds.refund", "Refunds of this payment", payment__id__exact=obj.pk)

    @admin.display(description="disputes")
    def disputes(self, obj):
        return changelist_link("refunds.dispute", "Disputes of this payment", payment__id__exact=obj.pk)
