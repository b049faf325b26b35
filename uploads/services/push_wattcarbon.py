"""Push one delivery's intervals or bills to WattCarbon as CSV uploads, in chunks.

Chunk size: settings.WATTCARBON_INTERVAL_CHUNK_ROWS (default 5,000 rows, about 180 KB of
CSV; a year of 15-minute data is ~35,000 rows, so 8 uploads). Small enough that one
failed upload costs little to resend and stays far below any request size limit, large
enough that the per-request cost (token check, multipart, the vendor's parse) is
amortised. The cursor advances per acknowledged chunk; WattCarbon replaces an interval
with the same start, so a chunk resent after a crash does not double anything.

An identical re-upload is not sent again: when an earlier delivery of this meter to the same
target delivered every row of the span and none has changed since (same digest), the rows
count as already at vendor and the delivery ends delivered, "up to date".
"""

from collections.abc import Callable
from datetime import UTC, datetime, time

from django.conf import settings

from accounts.selectors import wattcarbon_account
from uploads.models import Bill, Reading
from uploads.services.push_run import PushRun, RunEnd, span_rows
from vendors.http import VendorRefused, VendorRejected, VendorTransient
from vendors.models import Vendor
from vendors.wattcarbon import WattCarbonClient, bills_csv, intervals_csv

# kWh per unit of the meter's readings; WattCarbon takes energy_kwh.
KWH_PER_UNIT = {"Wh": 1e-3, "kWh": 1.0, "MWh": 1e3}
# Sign convention (WattCarbon): consumption / grid import positive, generation negative.
GENERATION_METER_TYPES = frozenset({"production"})


class WattCarbonRun(PushRun):
    def __init__(self, delivery):
        super().__init__(delivery, vendor=Vendor.WATTCARBON)
        self.meter = delivery.meter

    def _client(self) -> WattCarbonClient | RunEnd:
        if not self.meter.wattcarbon_id:
            return self.fail(
                f"Meter {self.meter} has no WattCarbon meter id: sync the meter to WattCarbon on its page, then retry."
            )
        creds = getattr(self.delivery.organization, "credentials", None)
        if creds is None or not creds.wattcarbon_email or not creds.wattcarbon_api_key:
            return self.fail("No WattCarbon email and API key: set them on the vendor credentials page, then retry.")
        return WattCarbonClient(wattcarbon_account(credentials=creds), self.log)

    def upload(self, call: Callable[[], object], *, n: int, first, last, last_ts: datetime) -> RunEnd | None:
        """One chunk, retried while the failure is transient; the cursor moves past it."""
        failures = 0
        while True:
            try:
                call()
                self.acknowledge(n)
                break
            except VendorRefused as exc:
                return self.fail(f"WattCarbon credentials rejected: {exc.message}")
            except VendorRejected as exc:
                if exc.status == 404:
                    return self.fail(
                        f"WattCarbon meter id {self.meter.wattcarbon_id} unknown at WattCarbon: {exc.message}"
                    )
                self.rejected += n
                self.last_error = f"Rows {first} to {last} rejected by WattCarbon: {exc.message}"
                break
            except VendorTransient as exc:  # (VendorUnreachable too: no answer)
                failures += 1
                if ended := self.wait_after_failure(failures, str(exc), exc.retry_after):
                    return ended
        self.sent += n
        self.cursor_ts = last_ts
        return self.checkpoint()

    def up_to_date(self) -> bool:
        """Every row of the span is at WattCarbon already, identical: count them, send nothing."""
        d = self.delivery
        if self.cursor_ts is not None or not d.first_ts:
            return False
        # Not this delivery's own earlier copy: a person who re-pushes wants it sent again.
        spans = self.held_spans(None, d.last_ts, own=False)
        if not any(first <= d.first_ts and d.last_ts <= last for first, last in spans):
            return False
        n = span_rows(meter_id=d.meter_id, target=d.target, first_ts=d.first_ts, last_ts=d.last_ts)
        self.already_at_vendor += n
        self.cursor_ts = d.last_ts
        self.say(
            f"{n:,} rows were already at WattCarbon (delivered earlier for this meter, identical): not sent again."
        )
        return True

    def run_intervals(self) -> RunEnd:
        client = self._client()
        if isinstance(client, RunEnd):
            return client
        if self.meter.unit not in KWH_PER_UNIT:
            return self.fail(f"Meter {self.meter} is in {self.meter.unit!r}: WattCarbon takes energy (Wh, kWh or MWh).")
        factor = KWH_PER_UNIT[self.meter.unit] * (-1 if self.meter.meter_type in GENERATION_METER_TYPES else 1)
        rows = (
            Reading.objects.filter(
                meter_id=self.meter.pk, ts__gte=self.delivery.first_ts, ts__lte=self.delivery.last_ts
            )
            .order_by("ts")
            .values_list("ts", "value")
        )
        if self.up_to_date():
            return self.finish()
        if ended := self.checkpoint():
            return ended
        while True:
            page = rows.filter(ts__gt=self.cursor_ts) if self.cursor_ts else rows
            chunk = list(page[: settings.WATTCARBON_INTERVAL_CHUNK_ROWS])
            if not chunk:
                break
            body = intervals_csv(chunk, factor)
            first, last = chunk[0][0], chunk[-1][0]
            name = f"intervals-{self.meter.wattcarbon_id}-{first:%Y%m%dT%H%M}.csv"
            if ended := self.upload(
                lambda body=body, name=name: client.upload_intervals(self.meter.wattcarbon_id, body, name),
                n=len(chunk), first=first.isoformat(), last=last.isoformat(), last_ts=last,
            ):  # fmt: skip
                return ended
        return self.finish()

    def run_bills(self) -> RunEnd:
        client = self._client()
        if isinstance(client, RunEnd):
            return client
        rows = (
            Bill.objects.filter(
                meter_id=self.meter.pk,
                start_date__gte=self.delivery.first_ts.date(),
                end_date__lte=self.delivery.last_ts.date(),  # the span ends at the last bill's end
            )  # fmt: skip
            .order_by("start_date")
            .values_list("start_date", "end_date", "energy_kwh")
        )
        if self.up_to_date():
            return self.finish()
        if ended := self.checkpoint():
            return ended
        while True:
            page = rows.filter(start_date__gt=self.cursor_ts.date()) if self.cursor_ts else rows
            chunk = list(page[: settings.WATTCARBON_INTERVAL_CHUNK_ROWS])
            if not chunk:
                break
            body = bills_csv(chunk)
            first, last = chunk[0][0], chunk[-1][0]
            if ended := self.upload(
                lambda body=body, name=f"bills-{first}.csv": client.upload_bills(self.meter.wattcarbon_id, body, name),
                n=len(chunk), first=first, last=last, last_ts=datetime.combine(last, time.min, tzinfo=UTC),
            ):  # fmt: skip
                return ended
        return self.finish()


def push_wattcarbon_intervals(delivery) -> RunEnd:
    return WattCarbonRun(delivery).run_intervals()


def push_wattcarbon_bills(delivery) -> RunEnd:
    return WattCarbonRun(delivery).run_bills()
