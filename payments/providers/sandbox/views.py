"""The sandbox gateway's hosted page: what a buyer sees at a real provider, minus the card fields.
It belongs to the simulated gateway, not to our checkout: it only redirects back to the URLs it was given."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ledger.money import format_money
from payments.providers.sandbox import gateway
from payments.providers.sandbox.models import SandboxSession


def _session(token) -> SandboxSession:
    if not settings.SANDBOX_ENABLED:
        raise Http404
    session = SandboxSession.objects.filter(token=token).first()
    if session is None:
        raise Http404
    return session


def _redirect(url: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = url
    return response


def _context(session: SandboxSession, **extra) -> dict:
    return {
        "session": session,
        "amount": format_money(session.amount_minor, session.currency),
        "decline_reasons": gateway.DECLINE_REASONS,
        **extra,
    }


@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, token) -> HttpResponse:
    session = _session(token)
    now = timezone.now()
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "pay":
                gateway.buyer_pays(str(session.token), now=now)
                return _redirect(session.return_url)
            if action == "decline":
                gateway.buyer_declined(str(session.token), reason=request.POST.get("reason", ""), now=now)
                return _redirect(session.return_url)
            if action == "3ds":
                gateway.buyer_starts_3ds(str(session.token), now=now)
                return _redirect(request.path + "challenge/")
            if action == "abandon":
                gateway.buyer_abandons(str(session.token), now=now)
                return _redirect(session.cancel_url)
        except gateway.GatewayError as exc:
            session.refresh_from_db()
            return render(request, "sandbox/closed.html", _context(session, error=str(exc)), status=409)
        return render(request, "sandbox/pay.html", _context(session, error="Choose one of the buttons."), status=400)
    if session.status == SandboxSession.Status.REQUIRES_ACTION:
        return _redirect(request.path + "challenge/")
    if session.status != SandboxSession.Status.OPEN or session.expires_at <= now:
        return render(request, "sandbox/closed.html", _context(session), status=409)
    return render(request, "sandbox/pay.html", _context(session))


@require_http_methods(["GET", "POST"])
def challenge(request: HttpRequest, token) -> HttpResponse:
    session = _session(token)
    now = timezone.now()
    if session.status != SandboxSession.Status.REQUIRES_ACTION:
        return render(request, "sandbox/closed.html", _context(session), status=409)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "approve":
                gateway.buyer_pays(str(session.token), now=now)
            else:
                gateway.buyer_declined(str(session.token), reason="authentication_failed", now=now)
        except gateway.GatewayError as exc:
            session.refresh_from_db()
            return render(request, "sandbox/closed.html", _context(session, error=str(exc)), status=409)
        return _redirect(session.return_url)
    return render(request, "sandbox/challenge.html", _context(session))
