"""Commission rules in the admin (with history). Staff add and end rules; a rule in force for a scope
(payee, line kind, currency) is ended by setting its "valid to" before a new one starts, so two rules of
one scope never overlap. A rule already used on order lines keeps its terms: they are what those lines
record (change them by ending the rule and adding a new one)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.formats import localize

from commissions.models import CommissionRule
from commissions.selectors import rules_in_force
from core.admin_tools import EMPTY, AuditedAdminMixin, NoDeleteMixin, SafeHistoryAdmin, money
from core.templatetags.money import bps_percent
from ledger.money import CURRENCY_EXPONENTS

TERMS = ["payee", "line_kind", "currency", "percent_bps", "fixed_minor", "fixed_per", "min_minor", "max_minor"]


def _period(rule: CommissionRule) -> str:
    end = localize(timezone.localtime(rule.valid_to)) if rule.valid_to else "open-ended"
    return f"{localize(timezone.localtime(rule.valid_from))} – {end}"


def overlapping_rules(
    *, payee_id: int | None, line_kind: str, currency: str, valid_from, valid_to, exclude_pk: int | None = None
):
    """Rules of the same scope whose period [valid_from, valid_to) meets this one."""
    rules = CommissionRule.objects.filter(payee_id=payee_id, line_kind=line_kind, currency=currency)
    if valid_to is not None:
        rules = rules.filter(valid_from__lt=valid_to)
    rules = rules.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=valid_from))
    if exclude_pk is not None:
        rules = rules.exclude(pk=exclude_pk)
    return rules.order_by("valid_from", "pk")


class CommissionRuleForm(forms.ModelForm):
    class Meta:
        model = CommissionRule
        fields = [*TERMS, "valid_from", "valid_to", "note"]
        help_texts = {
            "fixed_minor": "In minor units of the currency (e.g. 30 = €0.30)",
            "min_minor": "Minimum commission per line, in minor units; empty: none",
            "max_minor": "Maximum commission per line, in minor units; empty: none",
            "valid_to": "Exclusive; empty: until ended",
        }

    def clean_currency(self):
        currency = (self.cleaned_data.get("currency") or "").strip().upper()
        if currency and currency not in CURRENCY_EXPONENTS:
            raise forms.ValidationError(f"{currency} is not a currency we know (ISO 4217 code, e.g. EUR).")
        return currency

    def _value(self, name: str):
        """A submitted value, or the rule's own for a field shown read-only (a used rule's terms)."""
        if name in self.fields:
            return self.cleaned_data.get(name)
        return getattr(self.instance, name)

    def clean(self):
        data = super().clean()
        fixed, low, high = self._value("fixed_minor"), self._value("min_minor"), self._value("max_minor")
        if low is not None and high is not None and low > high:
            self.add_error("max_minor", "The maximum must not be below the minimum.")
        currency = self._value("currency")
        if currency is not None and not currency and (fixed or low is not None or high is not None):
            self.add_error(
                "currency",
                "A fixed amount, minimum or maximum needs a currency: the rule then applies only to orders in it.",
            )
        valid_from, valid_to = self._value("valid_from"), self._value("valid_to")
        if valid_from and valid_to and valid_to <= valid_from:
            self.add_error("valid_to", "“Valid to” must be after “valid from”.")
        elif valid_from and not self.errors:
            self._check_overlap(valid_from, valid_to)
            self._check_end_after_use(valid_to)
        return data

    def _check_overlap(self, valid_from, valid_to) -> None:
        payee = self._value("payee")
        clash = overlapping_rules(
            payee_id=payee.pk if payee else None,
            line_kind=self._value("line_kind") or "",
            currency=self._value("currency") or "",
            valid_from=valid_from,
            valid_to=valid_to,
            exclude_pk=self.instance.pk,
        ).first()
        if clash is not None:
            raise forms.ValidationError(
                "This rule's period overlaps rule #%(pk)s of the same scope (%(rule)s, %(period)s). End that rule "
                "first (set its “valid to” to this rule's “valid from”) or change the dates.",
                code="overlap",
                params={"pk": clash.pk, "rule": clash, "period": _period(clash)},
            )

    def _check_end_after_use(self, valid_to) -> None:
        if valid_to is None or self.instance.pk is None:
            return
        last_use = self.instance.order_lines.aggregate(last=Max("order__created_at"))["last"]
        if last_use is not None and valid_to <= last_use:
            self.add_error(
                "valid_to",
                f"Orders created up to {localize(timezone.localtime(last_use))} used this rule: end it after that.",
            )


class InForceFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [("now", "In force now"), ("future", "Starting later"), ("ended", "Ended")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "now":
            return queryset.filter(pk__in=rules_in_force(at=now).values("pk"))
        if self.value() == "future":
            return queryset.filter(valid_from__gt=now)
        if self.value() == "ended":
            return queryset.filter(valid_to__lte=now)
        return queryset


@admin.register(CommissionRule)
class CommissionRuleAdmin(AuditedAdminMixin, NoDeleteMixin, SafeHistoryAdmin):
    """Never deleted (order lines point at the rules they used): end a rule with “valid to”."""

    form = CommissionRuleForm
    list_display = ["id", "scope", "line_kind", "percent", "fixed", "bounds", "valid_from", "valid_to", "in_force"]
    list_display_links = ["id", "scope"]
    list_filter = ["payee", "line_kind", "currency", InForceFilter, "fixed_per"]
    search_fields = ["payee__legal_name", "payee__display_name", "payee__email", "note"]
    list_select_related = ["payee"]
    ordering = ["payee__legal_name", "line_kind", "currency", "-valid_from", "pk"]
    autocomplete_fields = ["payee"]
    fieldsets = [
        ("Scope", {"fields": ["payee", "line_kind", "currency"]}),
        ("Commission", {"fields": ["percent_bps", "fixed_minor", "fixed_per", "min_minor", "max_minor"]}),
        ("Validity", {"fields": ["valid_from", "valid_to", "note"]}),
        ("Use", {"fields": ["used_on"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.order_lines.exists():
            return [*TERMS, "valid_from", "used_on"]
        return ["used_on"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else [(name, opts) for name, opts in fieldsets if name != "Use"]

    @admin.display(description="scope", ordering="payee__legal_name")
    def scope(self, obj):
        return str(obj.payee) if obj.payee_id else "Default (every payee)"

    @admin.display(description="percent", ordering="percent_bps")
    def percent(self, obj):
        return bps_percent(obj.percent_bps)

    @admin.display(description="fixed", ordering="fixed_minor")
    def fixed(self, obj):
        if not obj.fixed_minor:
            return EMPTY
        return f"{money(obj.fixed_minor, obj.currency)} per {obj.fixed_per}"

    @admin.display(description="min – max")
    def bounds(self, obj):
        if obj.min_minor is None and obj.max_minor is None:
            return EMPTY
        return f"{money(obj.min_minor, obj.currency)} – {money(obj.max_minor, obj.currency)}"

    @admin.display(description="in force now", boolean=True)
    def in_force(self, obj):
        now = timezone.now()
        return obj.valid_from <= now and (obj.valid_to is None or obj.valid_to > now)

    @admin.display(description="used on")
    def used_on(self, obj):
        if obj is None or obj.pk is None:
            return EMPTY
        count = obj.order_lines.count()
        if not count:
            return "No order lines yet: the terms can still be edited."
        orders = obj.order_lines.values("order").distinct().count()
        return (
            f"{count} order line(s) in {orders} order(s): its terms are fixed; end it and add a new rule to "
            "change them."
        )
