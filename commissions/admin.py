"""Payees (editable, audited, with their Stripe Connect status and onboarding). Payouts, runs and SEPA
files are in `admin_payouts`, commission rules in `admin_rules`."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumValidationError

from commissions.admin_adjustments import PayeeAdjustmentMixin
from commissions.admin_holds import PayeeHoldActionsMixin
from commissions.models import Payee, PayoutMethod
from commissions.services import start_stripe_onboarding
from core.admin_tools import (
    EMPTY,
    AuditedAdminMixin,
    NoDeleteMixin,
    SafeHistoryAdmin,
    changelist_link,
    external_link,
    money,
    provider_link,
)
from core.templatetags.money import bps_percent
from invoicing.vat_ids import is_valid_vat_id
from ledger.selectors import payee_balances
from payments.providers.base import (
    ProviderConfigurationError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)

STRIPE_CONNECT_FIELDS = [
    "stripe_account_link",
    "charges_enabled",
    "payouts_enabled",
    "details_submitted",
    "stripe_requirements_due",
    "last_synced",
    "stripe_onboarding_links",
]


def readable_requirement(code: str) -> str:
    """Stripe's requirement ids in words: "tos_acceptance.date" -> "Tos acceptance › date"."""
    text = str(code).replace("_", " ").replace(".", " › ").strip()
    return text[:1].upper() + text[1:]


def onboarding_return_url(payee: Payee) -> str:
    """Where Stripe sends staff back after (or to renew) an onboarding started from the admin: the payee's
    page here. Payees onboarding themselves get the portal's (commissions.api)."""
    return settings.PUBLIC_BASE_URL + reverse("admin:commissions_payee_change", args=[payee.pk])


RELEASE_FIELDS = ["release_delay_days", "event_release_delay_days"]
PAYOUT_FIELDS = [
    "payout_method",
    "payout_schedule",
    "payout_minimum_minor",
    "payout_method_verified",
    "bank_account_holder",
    "iban",
    "bic",
    "paypal_email",
]


PAYOUT_METHOD_LABELS = {PayoutMethod.STRIPE_TRANSFER: "Transfer to the payee's Stripe account"}


class PayeeForm(forms.ModelForm):
    class Meta:
        model = Payee
        fields = [
            "kind",
            "legal_name",
            "display_name",
            "country",
            "email",
            "address",
            "status",
            "vat_id",
            "uses_oss",
            "commission_bps",
            "dispute_loss_bearer",
            "dispute_fee_bearer",
            "portal_user",
            *RELEASE_FIELDS,
            *PAYOUT_FIELDS,
        ]

    # Settings with a model default: a form that leaves them out (an older page, a script) keeps the value.
    KEEP_IF_EMPTY = [*RELEASE_FIELDS, "payout_method", "payout_schedule", "payout_minimum_minor"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.KEEP_IF_EMPTY:
            if name in self.fields:  # absent when the user may only view
                self.fields[name].required = False
        if "payout_method" in self.fields:
            # Worded apart from the "Stripe Connect" section (which a new payee does not have yet).
            self.fields["payout_method"].choices = [
                (value, PAYOUT_METHOD_LABELS.get(value, label)) for value, label in self.fields["payout_method"].choices
            ]

    def clean_iban(self):
        value = self.cleaned_data.get("iban") or ""
        if not value.strip():
            return ""
        try:
            return stdnum_iban.validate(value)  # compact: no spaces, upper case
        except StdnumValidationError as exc:
            raise forms.ValidationError(f"Not a valid IBAN ({exc}).") from exc

    def clean_bic(self):
        value = self.cleaned_data.get("bic") or ""
        if not value.strip():
            return ""
        try:
            return stdnum_bic.validate(value)
        except StdnumValidationError as exc:
            raise forms.ValidationError(f"Not a valid BIC ({exc}).") from exc

    def clean(self):
        data = super().clean()
        for name in self.KEEP_IF_EMPTY:
            if name in self.fields and data.get(name) in (None, "") and name not in self.errors:
                data[name] = getattr(self.instance, name)
        method = data.get("payout_method")
        if method == PayoutMethod.SEPA_CREDIT_TRANSFER:
            for name, label in (("iban", "an IBAN"), ("bank_account_holder", "the account holder")):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, f"SEPA payouts need {label}.")
        if method == PayoutMethod.PAYPAL and not data.get("paypal_email") and "paypal_email" not in self.errors:
            self.add_error("paypal_email", "PayPal payouts need the payee's PayPal e-mail.")
        # New bank details or PayPal address are not verified until staff say so (in this same save or later).
        changed_details = set(self.changed_data) & {"iban", "bic", "bank_account_holder", "paypal_email"}
        if self.instance.pk and changed_details and "payout_method_verified" not in self.changed_data:
            data["payout_method_verified"] = False
        return data

    def clean_vat_id(self):
        value = (self.cleaned_data.get("vat_id") or "").strip()
        if value and not is_valid_vat_id(value):
            raise forms.ValidationError(
                "Not a valid EU VAT id: it needs the country prefix, the right format and check digits."
            )
        return value


@admin.register(Payee)
class PayeeAdmin(PayeeAdjustmentMixin, PayeeHoldActionsMixin, AuditedAdminMixin, NoDeleteMixin, SafeHistoryAdmin):
    """Sellers and organizers. Suspend instead of deleting: their lines and ledger accounts refer to them."""

    form = PayeeForm
    list_display = [
        "id",
        "legal_name",
        "display_name",
        "kind",
        "country",
        "email",
        "commission",
        "status",
        "stripe_payouts_enabled",
        "payouts_held",
        "created_at",
    ]
    list_display_links = ["id", "legal_name"]
    list_filter = ["kind", "status", "country", "uses_oss", "stripe_payouts_enabled", "payouts_held", "payout_method"]
    search_fields = ["legal_name", "display_name", "email", "vat_id", "stripe_account_id"]
    ordering = ["legal_name", "pk"]
    autocomplete_fields = ["portal_user"]
    actions = ["start_onboarding", "hold_payouts", "lift_payout_hold", "release_pending_now"]
    fieldsets = [
        (None, {"fields": ["kind", "legal_name", "display_name", "country", "email", "address", "status"]}),
        ("VAT", {"fields": ["vat_id", "uses_oss"]}),
        ("Commission", {"fields": ["commission_bps"]}),
        ("Disputes", {"fields": ["dispute_loss_bearer", "dispute_fee_bearer"]}),
        ("Portal", {"fields": ["portal_user"]}),
        ("Release and hold", {"fields": [*RELEASE_FIELDS, "hold_status"]}),
        ("Payouts", {"fields": [*PAYOUT_FIELDS, "bank_account"]}),
        ("Stripe Connect", {"fields": STRIPE_CONNECT_FIELDS}),
        ("Ledger", {"fields": ["ledger_balances", "payouts"]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [
        *STRIPE_CONNECT_FIELDS,
        "hold_status",
        "bank_account",
        "ledger_balances",
        "payouts",
        "created_at",
        "updated_at",
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # a new payee has no account at Stripe yet
            return [(name, options) for name, options in fieldsets if name != "Stripe Connect"]
        return fieldsets

    @admin.display(description="commission", ordering="commission_bps")
    def commission(self, obj):
        return bps_percent(obj.commission_bps) if obj.commission_bps is not None else "default"

    @admin.display(description="balances")
    def ledger_balances(self, obj):
        """Pending, available and reserved per currency, straight from the payee's ledger accounts."""
        if obj is None or obj.pk is None:
            return "–"
        balances = payee_balances(obj.pk)
        if not balances:
            return "No ledger activity yet."
        rows = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td>'
            '<td class="num">{}</td><td class="num">{}</td></tr>',
            (
                (
                    b.currency,
                    money(b.pending, b.currency),
                    money(b.available, b.currency),
                    money(b.reserved, b.currency),
                    money(b.total, b.currency),
                )
                for b in balances
            ),
        )
        return format_html(
            '<table class="tollgate-balances"><thead><tr><th>currency</th><th>pending</th><th>available</th>'
            "<th>reserved</th><th>total</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="payouts")
    def payouts(self, obj):
        if obj is None or obj.pk is None:
            return EMPTY
        return format_html(
            "{} · {}",
            changelist_link("commissions.payout", "Payouts to this payee", payee__id__exact=obj.pk),
            changelist_link(
                "commissions.connectedaccountpayout", "Bank payouts from its Stripe account", payee__id__exact=obj.pk
            ),
        )

    @admin.display(description="hold")
    def hold_status(self, obj):
        if obj is None or obj.pk is None or not obj.payouts_held:
            return "Not held: shares are released when due and paid out by runs."
        return format_html(
            "<strong>Held</strong>: nothing is released or paid out. Reason: {}", obj.hold_reason or EMPTY
        )

    @admin.display(description="bank account (as checked)")
    def bank_account(self, obj):
        if obj is None or not obj.iban:
            return EMPTY
        shown_bic = format_html(" · BIC <code>{}</code>", obj.bic) if obj.bic else ""
        return format_html("<code>{}</code>{}", stdnum_iban.format(obj.iban), shown_bic)

    # --- Stripe Connect ---------------------------------------------------------------------------------
    @admin.display(description="Stripe account")
    def stripe_account_link(self, obj):
        if obj is None or not obj.stripe_account_id:
            return "Not onboarded yet (use the “Start Stripe onboarding” action on the payee list)."
        return provider_link("stripe", "account", obj.stripe_account_id)

    @admin.display(description="charges enabled", boolean=True)
    def charges_enabled(self, obj):
        return obj is not None and obj.stripe_charges_enabled

    @admin.display(description="payouts enabled", boolean=True)
    def payouts_enabled(self, obj):
        return obj is not None and obj.stripe_payouts_enabled

    @admin.display(description="details submitted", boolean=True)
    def details_submitted(self, obj):
        return obj is not None and obj.stripe_details_submitted

    @admin.display(description="last synced from Stripe")
    def last_synced(self, obj):
        if obj is None or obj.stripe_synced_at is None:
            return "Never (no account.updated received yet)"
        return display_for_value(obj.stripe_synced_at, EMPTY)

    @admin.display(description="requirements currently due")
    def stripe_requirements_due(self, obj):
        if obj is None or obj.stripe_synced_at is None:
            return "Not known yet (Stripe reports them in account.updated)."
        requirements = obj.stripe_requirements if isinstance(obj.stripe_requirements, dict) else {}
        due = requirements.get("currently_due") or []
        past_due = set(requirements.get("past_due") or [])
        disabled = requirements.get("disabled_reason")
        if not due:
            shown = "None"
        else:
            shown = format_html(
                '<ul class="tollgate-requirements">{}</ul>',
                format_html_join(
                    "",
                    "<li>{} <code>{}</code>{}</li>",
                    ((readable_requirement(code), code, " (past due)" if code in past_due else "") for code in due),
                ),
            )
        if disabled:
            shown = format_html("{}<p>Disabled: {}</p>", shown, readable_requirement(disabled))
        return shown

    def has_onboard_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.onboard_payee")

    @admin.action(description="Start Stripe onboarding", permissions=["onboard"])
    def start_onboarding(self, request, queryset):
        """Create the payee's Express account (once) and a fresh Account Link, shown to copy or open."""
        payees = list(queryset.order_by("pk")[:2])
        if len(payees) != 1:
            self.message_user(request, "Select exactly one payee to start its Stripe onboarding.", messages.WARNING)
            return
        payee = payees[0]
        back = onboarding_return_url(payee)
        try:
            url = start_stripe_onboarding(
                payee=payee, return_url=back, refresh_url=back, now=timezone.now(), actor=request.user
            )
        except ProviderConfigurationError:
            self.message_user(
                request,
                f"{payee}: Stripe is not configured on this server (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRETS); "
                "nothing was sent.",
                messages.ERROR,
            )
            return
        except (ProviderUnavailable, ProviderOutcomeUnknown):
            self.message_user(
                request,
                f"{payee}: Stripe did not answer. Try again in a moment (Stripe recognises the retry: no second "
                "account).",
                messages.ERROR,
            )
            return
        except ProviderError as exc:
            self.message_user(request, f"{payee}: Stripe refused the onboarding: {exc}", messages.ERROR)
            return
        payee.refresh_from_db()
        self.message_user(
            request,
            format_html(
                "{}: Stripe onboarding link for account {} (single use, expires in minutes): {}",
                payee,
                payee.stripe_account_id,
                external_link(url, url),
            ),
            messages.SUCCESS,
        )


# --- Payouts -----------------------------------------------------------------------------------------


# Registered in their own modules: payouts, runs and SEPA files; commission rules.
from commissions import admin_payouts, admin_rules, admin_statements  # noqa: E402, F401
