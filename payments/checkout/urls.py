from django.urls import path

from payments.checkout import views

app_name = "checkout"
urlpatterns = [
    path("pay/<slug:slug>/", views.payment_link, name="payment_link"),
    path("checkout/<uuid:token>/", views.checkout_page, name="page"),
    path("checkout/<uuid:token>/return/", views.return_page, name="return"),
    path("store-credit/", views.store_credit_lookup, name="store_credit"),
    path("checkout/<uuid:token>/refund/", views.refund_request, name="refund_request"),
]
