from django.urls import path

from payments.api import views

urlpatterns = [
    path("orders", views.OrderCreateApi.as_view(), name="orders-create"),
    path("orders/<uuid:token>", views.OrderDetailApi.as_view(), name="orders-detail"),
    path("orders/<uuid:token>/cancel", views.OrderCancelApi.as_view(), name="orders-cancel"),
]
