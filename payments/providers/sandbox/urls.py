from django.urls import path

from payments.providers.sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("pay/<uuid:token>/", views.pay, name="pay"),
    path("pay/<uuid:token>/challenge/", views.challenge, name="challenge"),
]
