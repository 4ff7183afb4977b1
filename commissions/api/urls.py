from django.urls import path

from commissions.api import views

urlpatterns = [
    path("payees", views.PayeeListCreateApi.as_view(), name="payees-list"),
    path("payees/<int:payee_id>", views.PayeeDetailApi.as_view(), name="payees-detail"),
    path(
        "payees/<int:payee_id>/stripe-onboarding",
        views.PayeeStripeOnboardingApi.as_view(),
        name="payees-stripe-onboarding",
    ),
]
