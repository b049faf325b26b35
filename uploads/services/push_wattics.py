"""Push one delivery's readings to Wattics, one packet per request, in time order.

Resume: Wattics keeps only packets newer than the latest it processed, and tells us that
latest one. So a run always asks first and continues strictly after
max(our cursor, the vendor's latest): a worker killed between a packet's 200 and our
next checkpoint neither re-sends (the vendor would discard it) nor skips anything.
"""

from datetime import datetime

from django.conf import settings
from django.db.models import Sum

from uploads.models import Reading
from uploads.services.push_run import PushRun
from vendors.models import Vendor
from vendors.wattics import Outcome, PacketBuilder, StreamError, TransientError, WatticsClient, format_local_ts

READ_BATCH = 1000


def _credentials(meter) -> tuple[str, str]:
    # "Credentials can be agreed per meter": the meter's own pair wins over the organization's.
    if meter.wattics_username and meter.wattics_password:
        return meter.wattics_username, meter.wattics_password
    creds = getattr(meter.organization, "credentials", None)
    if creds is None or not creds.wattics_username or not creds.wattics_password:
        return "", ""
    return creds.wattics_username, creds.wattics_password


def _base_url(meter) -> str:
    creds = getattr(meter.organization, "credentials", None)
    return creds.wattics_url if creds is not None else settings.WATTICS_BASE_URL.rstrip("/")


class WatticsRun(PushRun):
    def __init__(self, delivery, lock):
        super().__init__(delivery, lock, vendor=Vendor.WATTICS)
        self.meter = delivery.meter

    def rows(self):
        return Reading.objects.filter(meter_id=self.meter.pk, ts__gte=self.delivery.first_ts,
                                      ts__lte=self.delivery.last_ts)  # fmt: skip

    def run(self) -> None:
        meter = self.meter
        if not meter.wattics_stream_id:
            self.fail(f"Meter {meter} has no Wattics data stream id: set it on the meter page, then retry.")
        username, password = _credentials(meter)
        if not username:
            self.fail("No Wattics username and password: set them on the vendor credentials page, then retry.")
        try:
            builder = PacketBuilder(meter)
        except ValueError as exc:
            self.fail(str(exc))
        client = WatticsClient(base_url=_base_url(meter), username=username, password=password,
                               stream_id=meter.wattics_stream_id, log=self.log)  # fmt: skip
        self.skip_what_vendor_has(client, builder)
        # pC_1 is Wh consumed since the beginning: start from everything stored before the
        # first packet we send (one SUM), so a second upload continues the count.
        if builder.cumulative:
            before = Reading.objects.filter(meter_id=meter.pk)
            if self.cursor_ts:
                before = before.filter(ts__lte=self.cursor_ts)
            else:
                before = before.filter(ts__lt=self.delivery.first_ts)
            builder.total = (before.aggregate(total=Sum("value"))["total"] or 0.0) * builder.factor
        self.checkpoint()
        self.push_all(client, builder)
        self.finish()

    def skip_what_vendor_has(self, client: WatticsClient, builder: PacketBuilder) -> None:
        failures = 0
        while True:
            try:
                latest = client.latest()
                break
            except StreamError as exc:
                self.fail(str(exc))
            except TransientError as exc:
                failures += 1
                self.wait_after_failure(failures, str(exc))
        if latest is None or (self.cursor_ts and latest <= self.cursor_ts) or latest < self.delivery.first_ts:
            return
        upto = min(latest, self.delivery.last_ts)
        skipped = self.rows()
        if self.cursor_ts:
            skipped = skipped.filter(ts__gt=self.cursor_ts)
        n = skipped.filter(ts__lte=upto).count()
        if self.resumed:
            # Sent by an earlier run of this delivery, acknowledged before it could record it.
            self.sent += n
            self.acknowledged += n
        elif n:
            shown = format_local_ts(latest, builder.tz)
            self.rejected += n
            self.last_error = (
                f"{n} rows are at or before {shown}, the latest packet Wattics already has for stream "
                f"{self.meter.wattics_stream_id}: it discards older packets (not chronological)."
            )
        self.cursor_ts = upto

    def push_all(self, client: WatticsClient, builder: PacketBuilder) -> None:
        rows = self.rows().order_by("ts").values_list("ts", "value", "extra")
        after = self.cursor_ts
        while True:
            # Keyset pagination: constant memory, and each batch is one index range scan.
            batch = list((rows.filter(ts__gt=after) if after else rows)[:READ_BATCH])
            if not batch:
                return
            for ts, value, extra in batch:
                self.push_one(client, builder.build(ts, value, extra), ts)
                self.sent += 1
                self.cursor_ts = ts
                self.tick()
            after = batch[-1][0]

    def push_one(self, client: WatticsClient, body: bytes, ts: datetime) -> None:
        failures = 0
        while True:
            result = client.push(body)
            outcome = result.outcome
            if outcome is Outcome.ACKNOWLEDGED:
                self.acknowledged += 1
                return
            if outcome is Outcome.DISCARDED:
                if failures and result.vendor_last == ts:
                    # Our earlier try got through but its answer was lost.
                    self.acknowledged += 1
                else:
                    self.rejected += 1
                    self.last_error = f"{body.decode()[:200]}: {result.message}"
                return
            if outcome is Outcome.REJECTED:
                self.rejected += 1
                self.last_error = f"{body.decode()[:200]}: {result.message}"
                return
            if outcome is Outcome.FATAL:
                self.fail(result.message)
            failures += 1
            self.wait_after_failure(failures, result.message)


def push_wattics(delivery, lock) -> None:
    WatticsRun(delivery, lock).run()
