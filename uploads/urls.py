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
from uploads.views import ingest  # noqa: E402

urlpatterns += [
    path("new/", ingest.upload_new, name="new"),
    path("<int:pk>/review/", ingest.upload_review, name="review"),
    path("<int:pk>/review/status/", ingest.upload_review_status, name="review_status"),
    path("<int:pk>/confirm/", ingest.upload_confirm_view, name="confirm"),
    path("<int:pk>/cancel/", ingest.upload_cancel_view, name="cancel"),
    path("<int:pk>/mapping/", ingest.upload_mapping, name="mapping"),
    path("<int:pk>/errors.csv", ingest.upload_errors_csv, name="errors"),
]

# --- actions on deliveries: retry, cancel, re-push (uploads.views.actions) ---
from uploads.views import actions  # noqa: E402

urlpatterns += [
    path("deliveries/<int:pk>/retry/", actions.delivery_retry_view, name="delivery_retry"),
    path("deliveries/<int:pk>/cancel/", actions.delivery_cancel_view, name="delivery_cancel"),
    path("deliveries/<int:pk>/repush/", actions.delivery_repush_view, name="delivery_repush"),
]

# --- formats: batches, matching another system's meters, accepted formats (uploads.views.formats) ---
from uploads.views import formats  # noqa: E402

urlpatterns += [
    path("batches/<int:pk>/", formats.batch_detail, name="batch"),
    path("batches/<int:pk>/confirm/", formats.batch_confirm, name="batch_confirm"),
    path("<int:pk>/meters/", formats.upload_meters, name="match_meters"),
    path("formats/", formats.formats_page, name="formats"),
]
# One route per template (names, not objects: every member of any organization may download them).
urlpatterns += [
    path(f"formats/{name}", formats.format_template, {"name": name}, name=f"format_template_{i}")
    for i, name in enumerate(formats.TEMPLATES)
]
