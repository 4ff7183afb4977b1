from django.urls import path

from invoicing import views

app_name = "invoicing"
urlpatterns = [
    path("<str:token>/", views.download, name="download"),
]
