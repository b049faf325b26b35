"""The REST API's views: scope to the caller's organization, validate, call a service.

Every queryset comes from api.selectors filtered on the caller's organization, so an
object of another organization is a 404. Viewers read; operators and owners change
(api.access.HasOrganizationRole).
"""

from collections.abc import Callable
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import mixins, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api import selectors, services
from api.access import caller_for
from api.idempotency import idempotent
from api.serializers import (
    DeliverySerializer,
    DeviceSerializer,
    ErrorSerializer,
    MeterFeedSerializer,
    MeterSerializer,
    ReadingsSerializer,
    SiteSerializer,
    SyncRequestSerializer,
    UploadCreateSerializer,
    UploadSerializer,
)
from sites.models import Device, Meter, MeterFeed, Site
from sites.services import crud as site_crud
from sites.services import sync as site_sync
from uploads.models import Delivery, DeliveryStatus, Upload
from uploads.services.deliveries import DeliveryActionError, delivery_cancel, delivery_retry
from uploads.services.ingest import IngestError, upload_confirm
from uploads.views.ingest import FORM_OVERHEAD_BYTES

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="A repeat with the same key returns the first answer and creates nothing.",
)  # fmt: skip
CONFLICT = OpenApiResponse(ErrorSerializer, description="The object's current state does not allow this.")


@contextmanager
def service_errors():
    """A service's Django ValidationError, or a refused ingest step, as a 400 of the API."""
    try:
        yield
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}) from exc
    except IngestError as exc:
        raise ValidationError({"detail": str(exc)}) from exc


class OrgViewSet(viewsets.GenericViewSet):
    # The selector that lists the caller's organization's rows (set by each view set).
    selector: Callable[..., QuerySet]
    lookup_value_converter = "int"

    @property
    def caller(self):
        return caller_for(self.request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return self.queryset
        return type(self).selector(organization=self.caller.organization)


class CrudViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
    mixins.DestroyModelMixin, OrgViewSet,
):  # fmt: skip
    pass


def _sync_answer(obj, queued: bool) -> Response:
    data = {"queued": queued, "wattcarbon_status": obj.wattcarbon_status}
    return Response(data, status=status.HTTP_202_ACCEPTED if queued else status.HTTP_409_CONFLICT)


@extend_schema_view(
    list=extend_schema(summary="The organization's sites"),
    create=extend_schema(summary="Create a site"),
)
class SiteViewSet(CrudViewSet):
    serializer_class = SiteSerializer
    queryset = Site.objects.none()
    selector = selectors.sites_for

    def perform_create(self, serializer):
        with service_errors():
            serializer.instance = site_crud.site_create(
                organization=self.caller.organization, **serializer.validated_data
            )

    def perform_update(self, serializer):
        with service_errors():
            site_crud.site_update(site=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        site_crud.site_delete(site=instance)


class MeterViewSet(CrudViewSet):
    serializer_class = MeterSerializer
    queryset = Meter.objects.none()
    selector = selectors.meters_for

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        with service_errors():
            serializer.instance = site_crud.meter_create(
                organization=self.caller.organization, site=data.pop("site"), **data
            )

    def perform_update(self, serializer):
        with service_errors():
            site_crud.meter_update(meter=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        site_crud.meter_delete(meter=instance)

    @extend_schema(request=None, responses={202: SyncRequestSerializer, 409: SyncRequestSerializer},
                   summary="Sync the meter to WattCarbon (in a worker)")  # fmt: skip
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk=None) -> Response:
        meter = self.get_object()
        return _sync_answer(meter, site_sync.meter_sync_request(meter=meter))

    @extend_schema(
        request=ReadingsSerializer, responses={201: UploadSerializer, 400: ErrorSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Post readings as JSON rows (up to 10,000): validated, stored and pushed like a file",
    )  # fmt: skip
    @action(detail=True, methods=["post"])
    @idempotent
    def readings(self, request: Request, pk=None) -> Response:
        meter = self.get_object()
        body = ReadingsSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        with service_errors():
            upload = services.api_readings_create(caller=self.caller, meter=meter, **body.validated_data)
        return _upload_created(self, upload)


class DeviceViewSet(CrudViewSet):
    serializer_class = DeviceSerializer
    queryset = Device.objects.none()
    selector = selectors.devices_for

    def _kwargs(self, serializer, instance=None) -> dict:
        data = dict(serializer.validated_data)
        if instance is not None:  # PATCH: what is not given stays as it is
            data.setdefault("kind", instance.kind)
            data.setdefault("fields", instance.fields)
            data.setdefault("meters", list(instance.meters.all()))
        data.setdefault("fields", {})
        data.setdefault("meters", [])
        return data

    def perform_create(self, serializer):
        data = self._kwargs(serializer)
        with service_errors():
            serializer.instance = site_crud.device_create(
                organization=self.caller.organization, site=data.pop("site"), **data
            )

    def perform_update(self, serializer):
        with service_errors():
            site_crud.device_update(device=serializer.instance, **self._kwargs(serializer, serializer.instance))

    def perform_destroy(self, instance):
        site_crud.device_delete(device=instance)

    @extend_schema(request=None, responses={202: SyncRequestSerializer, 409: SyncRequestSerializer},
                   summary="Sync the device to WattCarbon (in a worker)")  # fmt: skip
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, pk=None) -> Response:
        device = self.get_object()
        return _sync_answer(device, site_sync.device_sync_request(device=device))


def _upload_created(view: OrgViewSet, upload) -> Response:
    upload = selectors.uploads_for(organization=view.caller.organization).get(pk=upload.pk)
    data = UploadSerializer(upload, context=view.get_serializer_context()).data
    location = view.request.build_absolute_uri(f"/api/v1/uploads/{upload.pk}/")
    return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


class CSVRenderer(renderers.BaseRenderer):
    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class UploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgViewSet):
    serializer_class = UploadSerializer

    def get_renderers(self):
        if self.action == "errors":
            return [CSVRenderer(), renderers.JSONRenderer()]
        return super().get_renderers()

    queryset = Upload.objects.none()
    selector = selectors.uploads_for

    @extend_schema(
        request={"multipart/form-data": UploadCreateSerializer},
        responses={201: UploadSerializer, 400: ErrorSerializer},
        parameters=[IDEMPOTENCY_HEADER],
        summary="Upload a CSV file (multipart): validated now or by a worker; confirm=true pushes it",
    )  # fmt: skip
    @idempotent
    def create(self, request: Request) -> Response:
        # Refused before the body is read to a temporary file (as the web form does).
        if int(request.META.get("CONTENT_LENGTH") or 0) > settings.UPLOAD_MAX_BYTES + FORM_OVERHEAD_BYTES:
            detail = f"The file is larger than the limit of {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB."
            return Response({"detail": detail}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        body = UploadCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        with service_errors():
            upload = services.api_upload_create(caller=self.caller, **body.validated_data)
        return _upload_created(self, upload)

    @extend_schema(request=None, responses={200: UploadSerializer, 409: CONFLICT},
                   summary="Confirm a validated upload: store its valid rows and push them")  # fmt: skip
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk=None) -> Response:
        upload = self.get_object()
        try:
            upload_confirm(upload=upload, user=self.caller.user)
        except IngestError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(UploadSerializer(self.get_object(), context=self.get_serializer_context()).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, 404: ErrorSerializer},
                   summary="The upload's row errors as CSV")  # fmt: skip
    def errors(self, request: Request, pk=None):
        # Routed in api.urls as uploads/<pk>/errors.csv (the router would add a slash).
        upload = self.get_object()
        if not upload.error_report:
            raise Http404("This upload has no error report.")
        response = FileResponse(upload.error_report.open("rb"), as_attachment=True,
                                filename=f"{upload.original_name}-errors.csv")  # fmt: skip
        response["Content-Type"] = "text/csv; charset=utf-8"
        return response


@extend_schema_view(
    list=extend_schema(parameters=[
        OpenApiParameter("upload", OpenApiTypes.INT, description="Only this upload's deliveries."),
        OpenApiParameter("status", OpenApiTypes.STR, enum=DeliveryStatus.values),
    ]),
)  # fmt: skip
class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgViewSet):
    serializer_class = DeliverySerializer
    queryset = Delivery.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        upload = self.request.query_params.get("upload")
        if upload is not None and not upload.isdigit():
            raise ValidationError({"upload": "An upload id."})
        return selectors.deliveries_for(
            organization=self.caller.organization,
            upload_id=int(upload) if upload else None,
            status=self.request.query_params.get("status", ""),
        )

    def _act(self, service) -> Response:
        delivery = self.get_object()
        try:
            delivery = service(delivery=delivery, user=self.caller.user or str(self.request.user))
        except DeliveryActionError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(DeliverySerializer(delivery).data)

    @extend_schema(request=None, responses={200: DeliverySerializer, 409: CONFLICT},
                   summary="Retry a failed delivery from where it stopped")  # fmt: skip
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk=None) -> Response:
        return self._act(delivery_retry)

    @extend_schema(request=None, responses={200: DeliverySerializer, 409: CONFLICT},
                   summary="Cancel a queued or running delivery")  # fmt: skip
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        return self._act(delivery_cancel)


class FeedViewSet(mixins.ListModelMixin, OrgViewSet):
    """Live meters' feeds: late ones first."""

    serializer_class = MeterFeedSerializer
    queryset = MeterFeed.objects.none()
    selector = selectors.feeds_for


_swagger_ui = SpectacularSwaggerSplitView.as_view(url_name="api:schema")


def api_docs(request, *args, **kwargs):
    """Swagger UI from our own static files. Its stylesheet draws icons as data: SVGs, so this
    page alone also allows data: images; django-csp reads `_csp_update` (as its csp_update
    decorator sets it) and ignores it where no CSP middleware runs."""
    response = _swagger_ui(request, *args, **kwargs)
    response._csp_update = {"img-src": ["data:"]}
    return response
