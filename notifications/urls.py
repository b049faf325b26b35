from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.notification_settings, name="settings"),
    path("notifications/webhooks/<int:pk>/delete/", views.webhook_delete_view, name="webhook_delete"),
]
