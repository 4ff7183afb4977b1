"""The payee portal: a payee sees only its own balances and orders. Statements, payouts and charts
arrive with the payouts work; this first cut shows balances and recent sales."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from commissions.models import Payee
from ledger.selectors import payee_balances
from payments.models import OrderLine, OrderStatus


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class PortalLogoutView(auth_views.LogoutView):
    next_page = "portal:login"


def _payee_for(request: HttpRequest) -> Payee:
    payee = Payee.objects.filter(portal_user=request.user).first()
    if payee is None:
        raise Http404("This login has no payee account.")
    return payee


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    payee = _payee_for(request)
    lines = (
        OrderLine.objects.filter(payee=payee)
        .exclude(order__status__in=[OrderStatus.OPEN, OrderStatus.EXPIRED, OrderStatus.CANCELED])
        .select_related("order")
        .order_by("-order__created_at", "-pk")[:50]
    )
    return render(
        request, "portal/dashboard.html", {"payee": payee, "balances": payee_balances(payee.pk), "lines": lines}
    )
