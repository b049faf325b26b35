from django.urls import path  # noqa: F401

app_name = "uploads"

# Three blocks, one per concern; each module adds its own routes to its block.
urlpatterns: list = []

# --- status: list and detail (uploads.views.status) ---
from uploads.views import status  # noqa: E402

urlpatterns += [
    path("", status.upload_list, name="list"),
    path("<int:pk>/", status.upload_detail, name="detail"),
    path("<int:pk>/progress/", status.upload_progress, name="progress"),
    path("<int:pk>/deliveries/<int:delivery_pk>/exchanges/", status.delivery_exchanges, name="delivery_exchanges"),
]

# --- ingest: new upload, column mapping, review and confirm, error report (uploads.views.ingest) ---

# --- actions on deliveries: retry, cancel, re-push (uploads.views.actions) ---
