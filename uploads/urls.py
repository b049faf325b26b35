from django.urls import path  # noqa: F401

app_name = "uploads"

# Three blocks, one per concern; each module adds its own routes to its block.
urlpatterns: list = []

# --- status: list and detail (uploads.views.status) ---

# --- ingest: new upload, column mapping, review and confirm, error report (uploads.views.ingest) ---

# --- actions on deliveries: retry, cancel, re-push (uploads.views.actions) ---
