"""What the API reads and writes. Writes go through the apps' services (see api.views)."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.access import caller_for
from api.selectors import upload_delivered, upload_finished
from sites.methodologies import METHODOLOGIES
from sites.models import Device, Meter, MeterFeed, NaiveTimes, Site
from uploads.models import Delivery, Target, Upload

TARGET_CHOICES = Target.choices
# The model's choices: the schema then has one NaiveTimesEnum for meters, uploads and readings.
NAIVE_TIMES_CHOICES = NaiveTimes.choices
READINGS_MAX_ROWS = 10_000


class OrgScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """Only objects of the caller's organization can be named (another's id 'does not exist')."""

    def get_queryset(self):
        caller = caller_for(self.context["request"])
        return super().get_queryset().filter(organization=caller.organization)


class TargetsField(serializers.ListField):
    """A list of targets: repeated form fields, a JSON list, or one comma-separated value."""

    child = serializers.ChoiceField(choices=TARGET_CHOICES)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        data = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return list(dict.fromkeys(super().to_internal_value(data)))


class SiteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Site
        fields = [
            "id", "name", "custom_id", "street", "city", "state", "postal_code", "country",
            "latitude", "longitude", "timezone", "utility", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]


class MeterSerializer(serializers.ModelSerializer):
    site = OrgScopedPrimaryKeyRelatedField(queryset=Site.objects.all())
    wattics_password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="Write-only; empty keeps the stored one."
    )

    class Meta:
        model = Meter
        fields = [
            "id", "site", "name", "meter_type", "unit", "reading_kind", "interval_minutes", "live", "naive_times",
            "wattics_stream_id", "wattics_format", "wattics_username", "wattics_password",
            "wattcarbon_id", "wattcarbon_status", "wattcarbon_error", "wattcarbon_synced_at", "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "wattcarbon_id", "wattcarbon_status", "wattcarbon_error", "wattcarbon_synced_at", "created_at"
        ]  # fmt: skip
        # The organization-wide uniqueness rules are checked by the service (model full_clean).
        validators: list = []


class DeviceSerializer(serializers.ModelSerializer):
    site = OrgScopedPrimaryKeyRelatedField(queryset=Site.objects.all())
    meters = OrgScopedPrimaryKeyRelatedField(queryset=Meter.objects.all(), many=True, required=False)
    kind = serializers.ChoiceField(choices=[(k, m.label) for k, m in METHODOLOGIES.items()])
    fields = serializers.JSONField(
        required=False, help_text="The kind's own fields, as in the methodology registry (sites.methodologies)."
    )

    class Meta:
        model = Device
        fields = [
            "id", "site", "name", "custom_id", "kind", "meters", "commenced_operation_date", "owner_name",
            "utility", "external_registry_name", "external_registry_id", "fields",
            "wattcarbon_id", "wattcarbon_status", "wattcarbon_error", "wattcarbon_field_errors",
            "wattcarbon_synced_at", "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "id", "wattcarbon_id", "wattcarbon_status", "wattcarbon_error", "wattcarbon_field_errors",
            "wattcarbon_synced_at", "created_at",
        ]  # fmt: skip
        validators: list = []


class SyncRequestSerializer(serializers.Serializer):
    queued = serializers.BooleanField(help_text="False when a worker is syncing this object right now.")
    wattcarbon_status = serializers.CharField()


class DeliverySerializer(serializers.ModelSerializer):
    remaining = serializers.IntegerField(read_only=True)
    already_at_vendor = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id", "upload", "meter", "target", "status", "total", "sent", "acknowledged", "already_at_vendor",
            "rejected", "remaining", "attempts", "last_error", "first_ts", "last_ts", "next_attempt_at",
            "started_at", "finished_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_already_at_vendor(self, obj: Delivery) -> int | None:
        # Rows the vendor already had (counted by the push when it resumes or re-pushes); null
        # where this portal version does not count them.
        return getattr(obj, "already_at_vendor", None)


class UploadSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)
    error_report_url = serializers.SerializerMethodField()
    naive_times = serializers.SerializerMethodField()
    finished = serializers.SerializerMethodField()
    delivered = serializers.SerializerMethodField()

    class Meta:
        model = Upload
        fields = [
            "id", "original_name", "size_bytes", "sha256", "status", "meter", "targets", "naive_times",
            "rows_total", "rows_valid", "rows_invalid", "rows_stored", "period_start", "period_end",
            "warnings", "error", "error_report_url", "created_at", "validated_at", "stored_at",
            "finished", "delivered", "deliveries",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error_report_url(self, obj: Upload) -> str | None:
        if not obj.error_report:
            return None
        return self.context["request"].build_absolute_uri(reverse("api:upload-errors", args=[obj.pk]))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_naive_times(self, obj: Upload) -> str | None:
        return getattr(obj, "naive_times", None)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_finished(self, obj: Upload) -> bool:
        """Nothing more will happen on its own: the upload and all its deliveries have ended."""
        return upload_finished(upload=obj)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_delivered(self, obj: Upload) -> bool:
        return upload_delivered(upload=obj)


class UploadCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    meter = OrgScopedPrimaryKeyRelatedField(
        queryset=Meter.objects.all(), required=False, allow_null=True, help_text="Omit if the file has a meter column."
    )
    targets = TargetsField(min_length=1)
    naive_times = serializers.ChoiceField(choices=NAIVE_TIMES_CHOICES, required=False)
    confirm = serializers.BooleanField(
        default=False, help_text="true: store and push the valid rows without the review step."
    )


class ReadingRowSerializer(serializers.Serializer):
    ts = serializers.CharField(help_text="Start of the interval: ISO 8601, with offset or naive (see naive_times).")
    value = serializers.FloatField()


class ReadingsSerializer(serializers.Serializer):
    rows = ReadingRowSerializer(many=True, min_length=1, max_length=READINGS_MAX_ROWS)
    targets = TargetsField(min_length=1)
    naive_times = serializers.ChoiceField(choices=NAIVE_TIMES_CHOICES, required=False)
    confirm = serializers.BooleanField(default=True, help_text="false: stop at the review step.")


class MeterFeedSerializer(serializers.ModelSerializer):
    meter_name = serializers.CharField(source="meter.name", read_only=True)
    site = serializers.IntegerField(source="meter.site_id", read_only=True)
    interval_minutes = serializers.IntegerField(source="meter.interval_minutes", read_only=True)

    class Meta:
        model = MeterFeed
        fields = [
            "meter", "meter_name", "site", "interval_minutes", "state", "last_reading_at", "delivered",
            "due_at", "late_since", "checked_at",
        ]  # fmt: skip
        read_only_fields = fields


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
