from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("organization/audit/", views.events, name="events"),
]
