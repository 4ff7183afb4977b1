from django.urls import path

from recurring.api import views

urlpatterns = [
    path("recurrences/<int:recurrence_id>", views.RecurrenceDetailApi.as_view(), name="recurrences-detail"),
    path(
        "recurrences/<int:recurrence_id>/charges",
        views.RecurrenceChargeCreateApi.as_view(),
        name="recurrences-charges-create",
    ),
    path("recurrences/<int:recurrence_id>/stop", views.RecurrenceStopApi.as_view(), name="recurrences-stop"),
]
