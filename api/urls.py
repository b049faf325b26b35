from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import SimpleRouter

from api import views

app_name = "api"

# path() routes with an int converter (not regexes): the security walks find and fill them.
router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("sites", views.SiteViewSet, basename="site")
router.register("meters", views.MeterViewSet, basename="meter")
router.register("devices", views.DeviceViewSet, basename="device")
router.register("uploads", views.UploadViewSet, basename="upload")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")
router.register("feeds", views.FeedViewSet, basename="feed")

urlpatterns = [
    *router.urls,
    path("uploads/<int:pk>/errors.csv", views.UploadViewSet.as_view({"get": "errors"}), name="upload-errors"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: no inline script, so a strict CSP holds.
    path("docs/", views.api_docs, name="docs"),
]
# API keys authenticate per request (DRF), not by session: the login-required middleware
# must let these views decide (they answer 401, never a redirect to the login page).
for pattern in urlpatterns:
    login_not_required(pattern.callback)
