"""People's actions on one delivery: retry, cancel, re-push. POST only; operators and
owners of the delivery's organization (viewers 403, others 404). Each returns to the
upload's page, or to the local page named by the form's `next` (the dashboard)."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.permissions import object_or_404
from core.http import local_redirect
from uploads.models import Delivery
from uploads.services.deliveries import DeliveryActionError, delivery_cancel, delivery_repush, delivery_retry


def _back(request: HttpRequest, delivery: Delivery) -> HttpResponse:
    """To the page the form was on when it says so (the dashboard), else the upload's page."""
    return local_redirect(request, request.POST.get("next"), reverse("uploads:detail", args=[delivery.upload_id]))


def _act(request: HttpRequest, pk: int, service: Callable[..., Delivery], done: str) -> HttpResponse:
    delivery = object_or_404(request, Delivery.objects.select_related("meter"), change=True, pk=pk)
    try:
        service(delivery=delivery, user=request.user)
    except DeliveryActionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{delivery.get_target_display()} for {delivery.meter}: {done}")
    return _back(request, delivery)


@require_POST
def delivery_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, delivery_retry, "queued again, it goes on from where it stopped.")


@require_POST
def delivery_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, delivery_cancel, "cancelled.")


@require_POST
def delivery_repush_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, delivery_repush, "queued to be pushed again from the start.")
