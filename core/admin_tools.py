"""Building blocks shared by the apps' thin `admin.py` modules: money columns, read-only and no-delete
admins, per-currency totals on changelists, audited edits, and a history admin that cannot be used to
write through its "revert" form without the change permission."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from simple_history.admin import SimpleHistoryAdmin

from core.audit import record_audit
from ledger.money import CurrencyError, format_money

EMPTY = "–"


def money(amount_minor: int | None, currency: str | None) -> str:
    """Integer minor units -> '€1,234.50' (ISO exponent, never floats); a raw fallback for unknown codes."""
    if amount_minor is None:
        return EMPTY
    if not currency:
        return str(amount_minor)
    try:
        return format_money(int(amount_minor), currency)
    except (CurrencyError, ValueError, TypeError):
        return f"{amount_minor} {currency}"


def money_field(field: str, description: str, *, currency: str = "currency", sortable: bool = True):
    """An admin display method showing `obj.<field>` (minor units) formatted in `obj.<currency>`.
    `currency` may be a dotted path (`order.currency` on an order line). Use as a class attribute:
    `total = money_field("total_minor", "total")`, then list "total" in list_display/readonly_fields."""
    get_currency = attrgetter(currency)

    def display(self, obj):
        if obj is None or obj.pk is None:
            return EMPTY
        return money(getattr(obj, field), get_currency(obj))

    display.__name__ = f"{field}_display"
    return admin.display(description=description, ordering=field if sortable else None)(display)


def admin_link(obj, text: str | None = None) -> str:
    """A link to `obj`'s admin change page (or plain text when it has none)."""
    if obj is None:
        return EMPTY
    opts = obj._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:  # not registered in the admin: show the text only
        return str(text if text is not None else obj)
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


def external_link(url: str, text: str) -> str:
    """A link out of the back office (a provider's dashboard), in a new tab that gets no handle on ours."""
    if not url:
        return text or EMPTY
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text)


def provider_link(provider: str, kind: str, ref: str | None) -> str:
    """A provider's reference, linked to the object in the provider's dashboard where there is one (Stripe:
    test or live by the configured key; `kind` is one of `stripe.adapter.dashboard_url`'s kinds), plain
    text otherwise (the sandbox)."""
    if not ref:
        return EMPTY
    if provider == "stripe":
        from payments.providers.stripe.adapter import dashboard_url

        return external_link(dashboard_url(kind, ref), ref)
    return ref


def changelist_link(model: str, text: str, **filters: Any) -> str:
    """A link to a changelist, filtered: `changelist_link("refunds.refund", "refunds", order__id__exact=1)`.
    The model is named by label, so an app links to another's admin without importing its models."""
    app_label, model_name = model.lower().split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), text)


def pretty_json(value: Any) -> str:
    """JSON shown indented in a <pre>, escaped (payloads come from outside)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="tollgate-json">{}</pre>', text)


class BackOfficeStylesMixin:
    """static/css/admin.css on the admin's pages (totals, JSON, balances); CSP allows no inline styles."""

    class Media:
        css = {"all": ["css/admin.css"]}


class NoDeleteMixin(BackOfficeStylesMixin):
    """Rows that are never deleted from the admin (money-bearing, or kept for their history). With no
    delete permission Django also drops the bulk "delete selected" action."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdminMixin(NoDeleteMixin):
    """View only: no add, change or delete for anyone (superusers included); the view permission stays.
    The change page renders read-only, and a POST to it is refused with 403 by Django."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditedAdminMixin:
    """Every add/change made through the admin (including a history revert) also writes an AuditEntry,
    in the same transaction as the change (DESIGN §12: every staff action)."""

    def _audit(self, request, obj, verb: str, message) -> None:
        record_audit(
            action=f"admin.{self.opts.model_name}.{verb}",
            actor=request.user,
            obj=obj,
            request=request,
            metadata={"change": message} if message else {},
        )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "create", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "change", message)
        return super().log_change(request, obj, message)


class SafeHistoryAdmin(SimpleHistoryAdmin):
    """django-simple-history's admin, with its revert form refusing a POST from anyone without the change
    permission (the library only hides the button; its view saves whatever is posted)."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            obj = self.get_object(request, unquote(object_id))
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


@dataclass(frozen=True)
class CurrencyTotal:
    label: str
    text: str


class CurrencyTotalsMixin(BackOfficeStylesMixin):
    """Changelist totals per currency of the current filtered queryset ("€1,234.50 · CZK 99.00").

    Set `totals_fields = [("total_minor", "Total"), ...]` (and `totals_currency_field` if it is not
    `currency`). The totals are computed from the ChangeList the view has just built, so they follow the
    search, the filters and the date drill-down, and not the page."""

    totals_fields: Iterable[tuple[str, str]] = ()
    totals_currency_field = "currency"
    change_list_template = "admin/change_list_totals.html"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        # A redirect (bad lookup, an action that ran) or an error page has no changelist to total.
        if isinstance(response, TemplateResponse) and response.context_data and "cl" in response.context_data:
            response.context_data["currency_totals"] = self.currency_totals(response.context_data["cl"].queryset)
        return response

    def currency_totals(self, queryset) -> list[CurrencyTotal]:
        fields = list(self.totals_fields)
        if not fields:
            return []
        if queryset.query.distinct or queryset.query.is_sliced:
            queryset = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
        currency = self.totals_currency_field
        rows = list(
            queryset.order_by()
            .values(currency)
            .annotate(**{f"sum_{name}": Sum(name) for name, _ in fields})
            .order_by(currency)
        )
        totals = []
        for name, label in fields:
            parts = [money(row[f"sum_{name}"] or 0, row[currency]) for row in rows]
            totals.append(CurrencyTotal(label=label, text=" · ".join(parts) if parts else EMPTY))
        return totals
