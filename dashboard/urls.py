from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/active/", views.active, name="active"),
    path("meters/<int:pk>/data/", views.meter_data, name="meter_data"),
]
