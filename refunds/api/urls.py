from django.urls import path

from refunds.api import views

urlpatterns = [
    path("refunds", views.RefundCreateApi.as_view(), name="refunds-create"),
    path("refunds/<int:refund_id>", views.RefundDetailApi.as_view(), name="refunds-detail"),
]
