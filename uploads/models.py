from django.conf import settings
from django.db import models

from accounts.models import Organization
from sites.models import Meter, NaiveTimes


class UploadStatus(models.TextChoices):
    """An upload's own life; each delivery to a vendor has its own status."""

    RECEIVED = "received", "Received"
    PARSING = "parsing", "Parsing"
    NEEDS_MAPPING = "needs_mapping", "Needs column mapping"
    VALIDATED = "validated", "Validated: awaiting confirmation"
    # Confirmed: the valid rows are being written to Reading/Bill (a worker claims this state).
    STORING = "storing", "Storing"
    INVALID = "invalid", "Invalid: nothing to push"
    STORED = "stored", "Stored"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Target(models.TextChoices):
    WATTCARBON_INTERVALS = "wattcarbon_intervals", "WattCarbon intervals"
    WATTCARBON_BILLS = "wattcarbon_bills", "WattCarbon bills"
    WATTICS = "wattics", "Wattics packets"


class UploadBatch(models.Model):
    """Files sent together (a zip, or several files in one form): one upload each, one status for all."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="upload_batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="upload_batches"
    )
    # The zip's name, or "3 files".
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Upload(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="uploads"
    )
    # Set when every row is for one meter; a file with a meter column leaves it empty.
    meter = models.ForeignKey(Meter, on_delete=models.SET_NULL, null=True, blank=True, related_name="uploads")
    file = models.FileField(upload_to="uploads/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.RECEIVED)
    targets = models.JSONField(default=list, blank=True)
    # What the file's timestamps without an offset mean: the site's local time or UTC.
    naive_times = models.CharField(max_length=8, choices=NaiveTimes.choices, default=NaiveTimes.LOCAL)
    # Source column -> meaning, chosen by detection or by the user in the mapping step.
    column_mapping = models.JSONField(default=dict, blank=True)
    # Parser options found or chosen: delimiter, encoding, compression, meter column key.
    options = models.JSONField(default=dict, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_valid = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    rows_stored = models.PositiveIntegerField(default=0)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    preview = models.JSONField(default=list, blank=True)
    # Findings that are not row errors: gaps, DST adjustments, duplicates dropped.
    warnings = models.JSONField(default=list, blank=True)
    error_report = models.FileField(upload_to="reports/%Y/%m/", blank=True, max_length=300)
    error = models.TextField(blank=True)
    # When a worker took it into PARSING or STORING: the sweep restarts work whose worker died.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Set when the file came in a zip or with other files in one form.
    batch = models.ForeignKey(UploadBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="uploads")
    # Chosen on the form: the sheet of a workbook ('' is the first), the unit of a file without a unit
    # column ('' is the meter's unit).
    sheet = models.CharField(max_length=100, blank=True)
    source_unit = models.CharField(max_length=16, blank=True)
    # Unit conversions made while parsing: [{meter, from, to, factor, assumption, rows}].
    unit_conversions = models.JSONField(default=list, blank=True)
    # Touched while a worker parses or stores; a stale heartbeat means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the retention sweep deleted the file (and its error report) of a refused or cancelled upload.
    purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="upload_org_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=UploadStatus.values), name="upload_status_valid"),
            models.CheckConstraint(
                condition=models.Q(naive_times__in=NaiveTimes.values), name="upload_naive_times_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def target_labels(self) -> list[str]:
        labels = dict(Target.choices)
        return [labels.get(t, t) for t in self.targets]


class Reading(models.Model):
    """One stored reading of a meter. Unique per meter and instant, so a re-upload
    of the same data does not double it.

    No foreign key constraints in the database (db_constraint=False): a constraint costs a
    trigger per inserted row, and a meter holds millions of readings. Integrity is kept by
    the code instead: the ingest writes only meters it resolved in the upload's organization
    (and locks them while it writes), and deleting a meter (or its site, or organization)
    deletes its readings in one statement (Django's fast delete: nothing refers to a reading
    and no signal listens to one), deleting an upload sets its readings' upload to NULL in
    one statement. A meter is locked before it is deleted (uploads/signals.py), so a store
    writing its readings commits first and its rows go too. Keep it so: a signal receiver
    on Reading or a foreign key to Reading would make Django load every reading of a
    deleted meter."""

    pk = models.CompositePrimaryKey("meter", "ts")
    # No index of its own: the unique (meter, ts) index serves every lookup by meter, and a
    # lone meter index tempts the planner into filtering ts row by row (far slower at millions of rows).
    meter = models.ForeignKey(
        Meter, on_delete=models.CASCADE, related_name="readings", db_index=False, db_constraint=False
    )
    ts = models.DateTimeField(help_text="Start of the interval, UTC.")
    value = models.FloatField(help_text="In the meter's unit (kWh for energy meters).")
    # Wattics electrical measurements (aP_1 … v_23) when the file carried them.
    extra = models.JSONField(null=True, blank=True)
    # No index of its own either: the (upload, meter, ts) index serves every lookup by upload.
    upload = models.ForeignKey(
        Upload,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="readings",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        indexes = [models.Index(fields=["upload", "meter", "ts"], name="reading_upload_meter_ts")]


class RollupGranularity(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class ReadingRollup(models.Model):
    """Sum, count, min and max of one meter's readings over one UTC hour or day, so a chart of
    a long range reads a few thousand rows instead of millions. Recomputed from Reading for
    the touched buckets whenever readings are stored or deleted (uploads.services.rollups)."""

    # Keyed by what it sums (no id column, no second index to keep while the store writes thousands).
    pk = models.CompositePrimaryKey("meter", "granularity", "bucket")
    # No index of its own: the (meter, granularity, bucket) key serves every lookup. No
    # foreign key constraint either, as for Reading (a trigger per row; the store writes thousands of
    # roll-ups at once): a meter's roll-ups are deleted with it in one statement.
    meter = models.ForeignKey(
        Meter, on_delete=models.CASCADE, related_name="rollups", db_index=False, db_constraint=False
    )
    granularity = models.CharField(max_length=4, choices=RollupGranularity.choices)
    bucket = models.DateTimeField(help_text="Start of the hour or day, UTC.")
    count = models.IntegerField()
    total = models.FloatField(help_text="Sum of the readings' values.")
    low = models.FloatField()
    high = models.FloatField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(granularity__in=RollupGranularity.values), name="rollup_granularity_valid"
            ),
        ]


class Bill(models.Model):
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="bills")
    start_date = models.DateField()
    end_date = models.DateField()
    energy_kwh = models.FloatField()
    upload = models.ForeignKey(Upload, on_delete=models.SET_NULL, null=True, blank=True, related_name="bills")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["meter", "start_date"], name="bill_unique_meter_start"),
            models.CheckConstraint(condition=models.Q(end_date__gt=models.F("start_date")), name="bill_period_valid"),
        ]


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PUSHING = "pushing", "Pushing"
    DELIVERED = "delivered", "Delivered"
    PARTIALLY_FAILED = "partially_failed", "Partially failed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_DELIVERY_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.PUSHING)


class Delivery(models.Model):
    """The push of one upload's rows for one meter to one vendor target."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="deliveries")
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="deliveries")
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="deliveries")
    target = models.CharField(max_length=24, choices=Target.choices)
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    acknowledged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # Rows the vendor already held (sent by an earlier delivery, identical): not sent again.
    already_at_vendor = models.PositiveIntegerField(default=0)
    # Rows that cannot be placed (older than Wattics' latest packet, which it never got): not sent.
    not_sendable = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # What the delivery has to say besides errors: rows already there, rows not sendable and why,
    # a resume from our own record when the vendor's latest packet could not be read.
    note = models.TextField(blank=True)
    # The span of the meter's stored rows this delivery pushes (readings by ts; bills by start date).
    first_ts = models.DateTimeField(null=True, blank=True)
    last_ts = models.DateTimeField(null=True, blank=True)
    # Of a delivered delivery: sha256 of its span's rows as delivered, to recognise an identical re-upload.
    rows_digest = models.CharField(max_length=64, blank=True)
    # The last reading instant the vendor acknowledged: a resumed push starts after it.
    cursor_ts = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The last time a row was acknowledged (or the run began): the retry deadline counts from it.
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Touched while a worker pushes; a stale heartbeat means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["organization", "status"], name="delivery_org_status"),
            models.Index(fields=["status", "heartbeat_at"], name="delivery_status_heartbeat"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["upload", "meter", "target"], name="delivery_unique_upload_meter_target"),
            # One push per stream at a time: Wattics takes a stream's packets in time order only.
            models.UniqueConstraint(
                fields=["meter", "target"],
                condition=models.Q(status="pushing"),
                name="delivery_one_push_per_stream",
            ),
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(condition=models.Q(target__in=Target.values), name="delivery_target_valid"),
        ]

    def __str__(self) -> str:
        # The audit trail and the admin name a delivery by this (not "Delivery object (1)").
        return f"{self.get_target_display()} → {self.meter}"

    @property
    def done(self) -> int:
        """Rows handled: acknowledged, rejected, already at the vendor or not sendable."""
        return self.acknowledged + self.rejected + self.already_at_vendor + self.not_sendable

    @property
    def remaining(self) -> int:
        return max(self.total - self.done, 0)

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == DeliveryStatus.DELIVERED else 0
        return min(100, int(100 * self.done / self.total))


class SourceMeter(models.Model):
    """Another system's meter id (a Green Button UsagePoint and direction, a Portfolio Manager
    meter id), matched once to a meter of the organization and remembered for the next file."""

    class Source(models.TextChoices):
        GREEN_BUTTON = "greenbutton", "Green Button"
        PORTFOLIO_MANAGER = "portfolio_manager", "Portfolio Manager"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="source_meters")
    source = models.CharField(max_length=24, choices=Source.choices)
    key = models.CharField(max_length=300)
    # Empty: the organization chose to leave this one out (its rows are reported, never stored).
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, null=True, blank=True, related_name="source_keys")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "source", "key"], name="source_meter_unique_key"),
            models.CheckConstraint(condition=models.Q(source__in=["greenbutton", "portfolio_manager"]),
                                   name="source_meter_source_valid"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.key} → {self.meter_id}"


class SavedMapping(models.Model):
    """A column mapping an organization chose, keyed by the file's header: offered for the next
    file, and applied without asking when the header is exactly the same."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="saved_mappings")
    # The header, normalised and joined: equal headers give equal keys.
    header_key = models.CharField(max_length=64)
    header = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "header_key"], name="saved_mapping_unique_header"),
        ]
