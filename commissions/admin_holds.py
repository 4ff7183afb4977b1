"""Staff holds and manual release on the payee admin (issue 8): "Hold payouts…", "Lift hold…" and "Release
pending funds now…", each behind `commissions.hold_payee` and asking for a reason on an intermediate page
(audited by the services in `commissions.release`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils import timezone

from commissions.release import hold_payee, lift_hold, release_now
from core.admin_tools import money
from core.errors import DomainError


class PayeeHoldActionsMixin:
    """Mixed into `PayeeAdmin` (list its actions there)."""

    def has_hold_permission(self, request) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.hold_payee")

    def _with_reason(self, request, queryset, *, action: str, title: str, button: str, intro: str, run):
        """Ask for a reason first (the action's own page, with CSRF), then run `run(payee, reason)` for each
        selected payee and report per payee."""
        reason = (request.POST.get("reason") or "").strip()
        if "apply" not in request.POST or not reason:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "intro": intro,
                "button": button,
                "action": action,
                "queryset": list(queryset.order_by("legal_name", "pk")),
                "missing_reason": "apply" in request.POST,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/commissions/payee_reason_action.html", context)
        for payee in queryset.order_by("pk"):
            try:
                text = run(payee, reason)
            except DomainError as exc:
                self.message_user(request, f"{payee}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{payee}: {text}", messages.SUCCESS)
        return None

    @admin.action(description="Hold payouts…", permissions=["hold"])
    def hold_payouts(self, request, queryset):
        def run(payee, reason):
            hold_payee(payee=payee, reason=reason, actor=request.user, now=timezone.now(), request=request)
            return "held; nothing is released or paid out until the hold is lifted."

        return self._with_reason(
            request,
            queryset,
            action="hold_payouts",
            title="Hold payouts",
            button="Hold",
            intro="Nothing of these payees is released from pending or paid out until the hold is lifted.",
            run=run,
        )

    @admin.action(description="Lift hold…", permissions=["hold"])
    def lift_payout_hold(self, request, queryset):
        def run(payee, reason):
            lifted = lift_hold(payee=payee, reason=reason, actor=request.user, now=timezone.now(), request=request)
            return "hold lifted; due shares are released by the next run." if lifted else "was not held."

        return self._with_reason(
            request,
            queryset,
            action="lift_payout_hold",
            title="Lift the payout hold",
            button="Lift hold",
            intro="Due shares are released by the next release run (every 15 minutes) and payouts resume.",
            run=run,
        )

    @admin.action(description="Release pending funds now…", permissions=["hold"])
    def release_pending_now(self, request, queryset):
        def run(payee, reason):
            released = release_now(payee=payee, reason=reason, actor=request.user, now=timezone.now(), request=request)
            if not released:
                return "nothing was pending."
            amounts = ", ".join(money(amount, currency) for currency, amount in sorted(released.items()))
            return f"released {amounts} from pending to available."

        return self._with_reason(
            request,
            queryset,
            action="release_pending_now",
            title="Release pending funds now",
            button="Release now",
            intro="All of these payees' pending shares become available now, whatever their release date "
            "(a held payee stays held: its payouts wait for the hold to be lifted).",
            run=run,
        )
