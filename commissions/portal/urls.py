from django.urls import path

from commissions.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("orders/", views.orders, name="orders"),
    path("orders/<uuid:token>/", views.order_detail, name="order_detail"),
    path("payouts/", views.payouts, name="payouts"),
    path("statements/<int:statement_id>/pdf/", views.statement_pdf, name="statement_pdf"),
    path("stripe/onboarding/", views.stripe_onboarding, name="stripe_onboarding"),
    path("documents/", views.documents, name="documents"),
    path("documents/<int:document_id>/pdf/", views.document_pdf, name="document_pdf"),
    path("login/", views.PortalLoginView.as_view(), name="login"),
    path("logout/", views.PortalLogoutView.as_view(), name="logout"),
]
