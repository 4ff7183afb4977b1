from django.urls import path

from payments.api import views

urlpatterns = [
    path("orders", views.OrderCreateApi.as_view(), name="orders-create"),
    path("orders/<uuid:token>", views.OrderDetailApi.as_view(), name="orders-detail"),
    path("orders/<uuid:token>/cancel", views.OrderCancelApi.as_view(), name="orders-cancel"),
    path("payments/<int:payment_id>/capture", views.PaymentCaptureApi.as_view(), name="payments-capture"),
    path("payments/<int:payment_id>/void", views.PaymentVoidApi.as_view(), name="payments-void"),
]
