"""Reads: which commission rule applies to a line, and the VAT on the commission."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q, QuerySet

from commissions.models import CommissionRule, Payee
from commissions.rules import RuleTerms
from invoicing.vat import VatTreatment, commission_vat_treatment
from invoicing.vat_ids import check_vat_id


@dataclass(frozen=True, slots=True)
class AppliedCommission:
    """What decides a line's commission: a rule (stored on the line), or the payee's override / the platform
    default (no rule). `commission_bps` is what the line records as its rate."""

    rule: CommissionRule | None
    terms: RuleTerms
    level: str

    @property
    def commission_bps(self) -> int:
        return self.terms.percent_bps


# Precedence, most specific first (DESIGN §10): the names are what `AppliedCommission.level` reports.
LEVEL_PAYEE_KIND = "payee+kind"
LEVEL_PAYEE = "payee"
LEVEL_PAYEE_OVERRIDE = "payee override"
LEVEL_KIND = "kind"
LEVEL_DEFAULT_RULE = "default rule"
LEVEL_PLATFORM_DEFAULT = "platform default"


def rules_in_force(*, at: datetime, currency: str | None = None) -> QuerySet[CommissionRule]:
    """Rules in force at `at` (valid_from ≤ at < valid_to, or open-ended); with `currency`, only those that
    apply to an order in it (no currency of their own: percent only, or the same currency)."""
    rules = CommissionRule.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at), valid_from__lte=at)
    if currency is not None:
        rules = rules.filter(Q(currency="") | Q(currency=currency))
    return rules


class CommissionBook:
    """The rules that can apply to one order's lines (its payees and the default rules, in force at the
    order's creation, matching its currency), loaded in one query; `for_line` picks per line."""

    def __init__(self, *, payees: Iterable[Payee], currency: str, at: datetime) -> None:
        payee_ids = {payee.pk for payee in payees}
        self.currency = currency
        self.rules = list(
            rules_in_force(at=at, currency=currency)
            .filter(Q(payee__isnull=True) | Q(payee_id__in=payee_ids))
            .order_by("pk")
        )

    def rule_at_level(self, *, payee_id: int | None, line_kind: str) -> CommissionRule | None:
        """The rule of exactly this scope; two in force at once (the admin refuses overlapping periods of
        one scope and currency) resolve to the one in the order's own currency, then the latest start."""
        candidates = [rule for rule in self.rules if rule.payee_id == payee_id and rule.line_kind == line_kind]
        if not candidates:
            return None
        return max(candidates, key=lambda rule: (rule.currency == self.currency, rule.valid_from, rule.pk))

    def for_line(self, *, payee: Payee, line_kind: str) -> AppliedCommission:
        """Most specific first: payee + line kind, payee, the payee's override (`Payee.commission_bps`,
        percent only), line kind, the default rule, `TOLLGATE_DEFAULT_COMMISSION_BPS`."""
        for payee_id, kind, level in [(payee.pk, line_kind, LEVEL_PAYEE_KIND), (payee.pk, "", LEVEL_PAYEE)]:
            if rule := self.rule_at_level(payee_id=payee_id, line_kind=kind):
                return AppliedCommission(rule=rule, terms=RuleTerms.of(rule), level=level)
        if payee.commission_bps is not None:
            return AppliedCommission(
                rule=None, terms=RuleTerms(percent_bps=payee.commission_bps), level=LEVEL_PAYEE_OVERRIDE
            )
        for payee_id, kind, level in [(None, line_kind, LEVEL_KIND), (None, "", LEVEL_DEFAULT_RULE)]:
            if rule := self.rule_at_level(payee_id=payee_id, line_kind=kind):
                return AppliedCommission(rule=rule, terms=RuleTerms.of(rule), level=level)
        return AppliedCommission(
            rule=None,
            terms=RuleTerms(percent_bps=settings.TOLLGATE_DEFAULT_COMMISSION_BPS),
            level=LEVEL_PLATFORM_DEFAULT,
        )


def commission_for(*, payee: Payee, line_kind: str, currency: str, at: datetime) -> AppliedCommission:
    """What decides the commission on a line of `payee` and `line_kind` in an order in `currency` created at
    `at` (see `CommissionBook.for_line`)."""
    return CommissionBook(payees=[payee], currency=currency, at=at).for_line(payee=payee, line_kind=line_kind)


def commission_rule_for(*, payee: Payee, line_kind: str, currency: str, at: datetime) -> CommissionRule | None:
    """The rule that decides such a line's commission; None when the payee's override or the platform
    default does."""
    return commission_for(payee=payee, line_kind=line_kind, currency=currency, at=at).rule


def commission_bps_for(payee: Payee) -> int:
    """The payee's flat rate outside the rules: its override, else the platform default (what
    `commission_for` falls back to when no rule applies)."""
    if payee.commission_bps is not None:
        return payee.commission_bps
    return settings.TOLLGATE_DEFAULT_COMMISSION_BPS


def commission_vat_bps() -> int:
    """The platform's VAT rate on its commission (domestic)."""
    return settings.TOLLGATE_COMMISSION_VAT_BPS


def commission_vat_treatment_for(payee: Payee) -> VatTreatment:
    """VAT on the commission charged to `payee`: the platform's rate, or reverse charge / out of scope
    (see `invoicing.vat.commission_vat_treatment`)."""
    return commission_vat_treatment(
        platform_country=settings.TOLLGATE_PLATFORM_COUNTRY,
        platform_rate_bps=commission_vat_bps(),
        payee_country=payee.country,
        payee_vat_id_valid=bool(payee.vat_id) and check_vat_id(payee.vat_id).valid,
    )
