import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models

from accounts.fields import EncryptedTextField
from accounts.models import Organization
from sites.methodologies import METHODOLOGIES


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Dublin, America/New_York).")


class SyncStatus(models.TextChoices):
    """Where an object stands at WattCarbon. Only services move it."""

    NOT_SYNCED = "not_synced", "Not synced"
    PENDING = "pending", "Pending"
    SYNCING = "syncing", "Syncing"
    SYNCED = "synced", "Synced"
    FAILED = "failed", "Failed"


class WattCarbonSynced(models.Model):
    """Where a meter or a device stands at WattCarbon. Only the sync services move it."""

    wattcarbon_id = models.CharField("WattCarbon id", max_length=64, blank=True)
    wattcarbon_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.NOT_SYNCED)
    wattcarbon_error = models.TextField(blank=True)
    # WattCarbon's 422 as {field: message}, shown next to the fields on the page.
    wattcarbon_field_errors = models.JSONField(default=dict, blank=True)
    # When a worker claimed the sync: a "syncing" row whose worker died can be claimed again later.
    wattcarbon_claimed_at = models.DateTimeField(null=True, blank=True)
    wattcarbon_synced_at = models.DateTimeField(null=True, blank=True)
    # The intent to create, saved before the POST. Set without an id, it means a creation may
    # have happened: the next sync looks first (a meter by this marker, which we put in its
    # remote name; an asset by its customId).
    wattcarbon_marker = models.CharField(max_length=64, blank=True)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=models.Q(wattcarbon_status__in=SyncStatus.values), name="%(class)s_sync_status_valid"
            ),
        ]


class Site(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sites")
    name = models.CharField(max_length=200)
    custom_id = models.CharField("custom id", max_length=100, blank=True)
    street = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="US", help_text="ISO 3166 two-letter code.")
    postal_code = models.CharField(max_length=20, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    # The local time of Wattics packets comes from here.
    timezone = models.CharField(max_length=64, validators=[validate_timezone], help_text="IANA time zone.")
    utility = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="site_unique_name_per_org"),
            models.UniqueConstraint(
                fields=["organization", "custom_id"],
                condition=~models.Q(custom_id=""),
                name="site_unique_custom_id_per_org",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MeterType(models.TextChoices):
    ELECTRICITY = "electricity", "Electricity"
    GAS = "gas", "Gas"
    WATER = "water", "Water"
    HEAT = "heat", "Heat"
    TEMPERATURE = "temperature", "Temperature"
    PRODUCTION = "production", "Production"
    OTHER = "other", "Other"


class PacketFormat(models.TextChoices):
    ELECTRICAL = "electrical", "Electrical (pC_1 … v_23)"
    SINGLE_VALUE = "single_value", "Single value"


class ReadingKind(models.TextChoices):
    """What a meter's data is: interval readings, or bills (monthly or irregular billing periods)."""

    INTERVAL = "interval", "Interval readings"
    BILLING = "billing", "Billing periods (bills)"


class NaiveTimes(models.TextChoices):
    """What a timestamp without an offset means in an uploaded file."""

    LOCAL = "local", "The site's local time"
    UTC = "utc", "UTC"


class Meter(WattCarbonSynced):
    # The organization is repeated from the site so every query can scope on it directly.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="meters")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="meters")
    name = models.CharField(max_length=200)
    meter_type = models.CharField(max_length=16, choices=MeterType.choices, default=MeterType.ELECTRICITY)
    unit = models.CharField(max_length=16, default="kWh")
    interval_minutes = models.PositiveIntegerField(
        default=15, help_text="Expected reading interval in minutes (1440 for daily)."
    )
    # A billing meter's data are bills (start date, end date, energy): never sent as intervals.
    reading_kind = models.CharField("data", max_length=16, choices=ReadingKind.choices, default=ReadingKind.INTERVAL)
    # The default of its uploads; each upload may say otherwise.
    naive_times = models.CharField(
        "times without an offset are", max_length=8, choices=NaiveTimes.choices, default=NaiveTimes.LOCAL
    )
    wattics_stream_id = models.CharField("Wattics data stream id", max_length=100, blank=True)
    wattics_format = models.CharField(max_length=16, choices=PacketFormat.choices, default=PacketFormat.ELECTRICAL)
    # Wattics credentials "can be agreed per meter": these override the organization's.
    wattics_username = models.CharField(max_length=200, blank=True)
    wattics_password = EncryptedTextField(blank=True)
    # With the meter's own credentials, its own Wattics entry point (e.g. the test one); empty: the organization's.
    wattics_base_url = models.URLField("Wattics base URL", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # A live meter sends readings continuously: its feed is watched for lateness (sites.feeds).
    live = models.BooleanField(default=False, help_text="Readings arrive continuously; warn when they are late.")

    class Meta(WattCarbonSynced.Meta):
        ordering = ["site__name", "name"]
        constraints = [
            *WattCarbonSynced.Meta.constraints,
            models.UniqueConstraint(fields=["site", "name"], name="meter_unique_name_per_site"),
            models.UniqueConstraint(
                fields=["organization", "wattics_stream_id"],
                condition=~models.Q(wattics_stream_id=""),
                name="meter_unique_stream_per_org",
            ),
            models.CheckConstraint(condition=models.Q(interval_minutes__gt=0), name="meter_interval_positive"),
            models.CheckConstraint(
                condition=models.Q(reading_kind__in=ReadingKind.values), name="meter_reading_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(naive_times__in=NaiveTimes.values), name="meter_naive_times_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.name} / {self.name}" if self.site_id else self.name


class Device(WattCarbonSynced):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="devices")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=200)
    custom_id = models.CharField("custom id", max_length=100)
    # A key of sites.methodologies.METHODOLOGIES (the database refuses any other); its own
    # fields live in `fields`.
    kind = models.CharField(max_length=64)
    meters = models.ManyToManyField(Meter, related_name="devices", blank=True)
    # Not every kind has one (demand response does not): the methodology registry says which.
    commenced_operation_date = models.DateField(null=True, blank=True)
    owner_name = models.CharField(max_length=200, blank=True)
    utility = models.CharField(max_length=200, blank=True)
    external_registry_name = models.CharField(max_length=100, blank=True)
    external_registry_id = models.CharField(max_length=100, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(WattCarbonSynced.Meta):
        ordering = ["site__name", "name"]
        constraints = [
            *WattCarbonSynced.Meta.constraints,
            models.UniqueConstraint(fields=["organization", "custom_id"], name="device_unique_custom_id_per_org"),
            models.CheckConstraint(condition=models.Q(kind__in=list(METHODOLOGIES)), name="device_kind_known"),
        ]

    def __str__(self) -> str:
        return self.name


class DocumentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    UPLOADING = "uploading", "Uploading"
    UPLOADED = "uploaded", "Uploaded"
    FAILED = "failed", "Failed"


class DeviceDocument(models.Model):
    """A document of a device for WattCarbon (an asset document), e.g. its demand-response
    events. Kept here until a worker uploaded it; small files only (the form caps the size)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="device_documents")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="documents")
    document_type = models.CharField(max_length=64)  # WattCarbon's document type
    filename = models.CharField(max_length=255)
    content = models.TextField()  # the CSV as checked (UTF-8)
    rows = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=DocumentStatus.choices, default=DocumentStatus.PENDING)
    error = models.TextField(blank=True)
    wattcarbon_id = models.CharField("WattCarbon document id", max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DocumentStatus.values), name="device_document_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.filename


class FeedState(models.TextChoices):
    OK = "ok", "On time"
    DUE = "due", "Due"
    LATE = "late", "Late"
    NO_DATA = "no_data", "No data yet"


class MeterFeed(models.Model):
    """The health of a live meter's feed, computed by a periodic task (sites.feeds.feeds_refresh)."""

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, related_name="feed")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="meter_feeds")
    last_reading_at = models.DateTimeField(null=True, blank=True)
    # Target -> the last reading instant delivered there (ISO 8601), or absent.
    delivered = models.JSONField(default=dict, blank=True)
    # When the next reading is expected to have arrived; after it (and a grace) the feed is late.
    due_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=FeedState.choices, default=FeedState.NO_DATA)
    late_since = models.DateTimeField(null=True, blank=True)
    # When "late" was last notified: one notice per lateness, not one per check.
    notified_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(state__in=FeedState.values), name="feed_state_valid")]
