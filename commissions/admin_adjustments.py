"""Staff adjustments of a payee's balance on the payee admin: an "Adjust balance…" page per payee
(`admin:commissions_payee_adjust`, linked from the payee's page) behind `commissions.adjust_payee_balance`.

The form only reads the input (amount in major units, parsed exactly into minor units; never a float) and asks
for a confirmation when a debit would take the available balance below zero; `commissions.adjustments` checks,
posts and audits. Every refusal comes back as a form error on the page."""

from __future__ import annotations

import re
import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from commissions.adjustments import REASON_MAX_LENGTH, adjust_payee_balance, already_posted
from commissions.models import Payee
from core.admin_tools import money
from core.errors import DomainError
from ledger import accounts
from ledger.models import Account
from ledger.money import AmountError, CurrencyError, Money, enabled_currencies
from ledger.selectors import account_balance, payee_balances

TEMPLATE = "admin/commissions/payee_adjust_balance.html"
CREDIT, DEBIT = "credit", "debit"
# Digits, optionally a decimal point and digits: no sign, exponent ("1e3"), separators or spaces inside.
AMOUNT_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def currency_choices(payee: Payee) -> list[str]:
    """The currencies the payee has ledger accounts in, then the platform's enabled ones."""
    own = sorted(set(Account.objects.filter(payee_id=payee.pk).values_list("currency", flat=True)))
    return own + [c for c in enabled_currencies() if c not in own]


class AdjustBalanceForm(forms.Form):
    currency = forms.ChoiceField(choices=())
    direction = forms.ChoiceField(
        choices=[
            (CREDIT, "Credit: add to the payee's available balance (the platform pays)"),
            (DEBIT, "Debit: take from the payee's available balance (may go below zero)"),
        ],
        widget=forms.RadioSelect,
    )
    amount = forms.CharField(
        max_length=20, help_text="In the currency's major units with a decimal point, e.g. 25.00 (JPY: 2500)."
    )
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Shown to the payee: the statement lists it as this adjustment's description. "
        "Also recorded in the audit log with your name.",
    )
    confirm_negative = forms.BooleanField(
        required=False, label="Yes, take the available balance below zero", widget=forms.HiddenInput
    )
    # One per rendered form: posting it twice (a double click, a resubmitted page) adjusts once.
    token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, payee: Payee, **kwargs):
        super().__init__(*args, **kwargs)
        self.payee = payee
        self.fields["currency"].choices = [(c, c) for c in currency_choices(payee)]
        if not self.is_bound:
            self.initial.setdefault("token", uuid.uuid4())

    def clean_token(self):
        return self.cleaned_data["token"].hex

    def clean(self):
        data = super().clean()
        if "token" in self.errors:
            self.errors.pop("token")
            self.add_error(None, "This form has expired or was changed: reload the page and fill it in again.")
        text = (data.get("amount") or "").strip()
        currency = data.get("currency")
        if "amount" in self.errors or not currency:
            return data
        try:
            if not AMOUNT_PATTERN.match(text):
                raise AmountError("Enter digits with a decimal point, e.g. 12.50 (no sign, exponent or spaces).")
            amount = Money.parse(text, currency)
        except (AmountError, CurrencyError) as exc:
            self.add_error("amount", str(exc))
            return data
        if amount.amount_minor <= 0:
            self.add_error("amount", "The amount must be greater than zero.")
            return data
        data["money"] = amount if data.get("direction") == CREDIT else -amount
        return data

    def ask_to_confirm_negative(self, message: str) -> None:
        self.fields["confirm_negative"].widget = forms.CheckboxInput()
        self.add_error("confirm_negative", message)


class PayeeAdjustmentMixin:
    """Mixed into `PayeeAdmin`: the "Adjust balance…" page and its button on the payee's page."""

    def has_adjust_balance_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.adjust_payee_balance") and (
            self.has_view_or_change_permission(request, obj)
        )

    def get_urls(self):
        return [
            path(
                "<int:payee_id>/adjust-balance/",
                self.admin_site.admin_view(self.adjust_balance_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_adjust",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        if str(object_id).isdigit() and self.has_adjust_balance_permission(request):
            extra_context["adjust_balance_url"] = reverse("admin:commissions_payee_adjust", args=[int(object_id)])
        return super().change_view(request, object_id, form_url, extra_context)

    def adjust_balance_view(self, request, payee_id: int):
        if not self.has_adjust_balance_permission(request):
            raise PermissionDenied
        payee = get_object_or_404(Payee, pk=payee_id)
        if not self.has_adjust_balance_permission(request, payee):
            raise PermissionDenied
        payee_url = reverse("admin:commissions_payee_change", args=[payee.pk])
        form = AdjustBalanceForm(request.POST if request.method == "POST" else None, payee=payee)
        if request.method == "POST" and form.is_valid():
            amount: Money = form.cleaned_data["money"]
            before = account_balance(accounts.payee_available(payee.pk), amount.currency)
            after = before + amount
            confirmed = form.cleaned_data["confirm_negative"] or already_posted(payee, form.cleaned_data["token"])
            if after.amount_minor < 0 and not confirmed:
                form.ask_to_confirm_negative(
                    f"This debit takes the payee's available balance from {money(before.amount_minor, amount.currency)}"
                    f" to {money(after.amount_minor, amount.currency)}: below zero. The debt is netted against "
                    "the payee's next payouts. Tick the box to confirm."
                )
            else:
                try:
                    adjust_payee_balance(
                        payee=payee,
                        amount=amount,
                        reason=form.cleaned_data["reason"],
                        actor=request.user,
                        now=timezone.now(),
                        token=form.cleaned_data["token"],
                        request=request,
                    )
                except DomainError as exc:
                    form.add_error(None, f"Nothing was posted. {exc.message}")
                else:
                    verb = "Credited" if amount.amount_minor > 0 else "Debited"
                    now_available = account_balance(accounts.payee_available(payee.pk), amount.currency)
                    self.message_user(
                        request,
                        f"{payee}: {verb} {money(abs(amount.amount_minor), amount.currency)}. The available "
                        f"{amount.currency} balance is now {money(now_available.amount_minor, amount.currency)}.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(payee_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": payee,
            "form": form,
            "balances": [
                (b.currency, money(b.available, b.currency), money(b.total, b.currency))
                for b in payee_balances(payee.pk)
            ],
            "payee_url": payee_url,
            "title": f"Adjust the balance of {payee}",
        }
        return TemplateResponse(request, TEMPLATE, context)
