from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import LoginView
from core.views import healthz
from dashboard.views import favicon

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("", include("dashboard.urls")),
    path("", include("accounts.urls")),
    path("", include("sites.urls")),
    path("uploads/", include("uploads.urls")),
    path("", include("audit.urls")),
    path("", include("mfa.urls")),
    path("api/v1/", include("api.urls")),
    path("", include("api.web_urls")),
    path("", include("notifications.urls")),
    path("", include("sites.feed_urls")),
]
# Uploaded files are never served from MEDIA_URL: they belong to one organization,
# and their downloads go through views that check it.
