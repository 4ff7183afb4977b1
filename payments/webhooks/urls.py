from django.urls import path

from payments.webhooks import views

app_name = "webhooks"
urlpatterns = [path("<slug:provider>/", views.receive, name="receive")]
