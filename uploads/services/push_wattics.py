"""Push one delivery's readings to Wattics, one packet per request, in time order.

Wattics keeps one register per data stream and discards packets older than the latest it
processed, and tells us that latest one. So a run always asks first, then accounts for
this delivery's rows at or before it, each by what is known, never by assumption:

- rows an earlier delivery of this meter delivered, still identical: already at vendor;
- rows an earlier run of this delivery sent but could not record (a worker killed between
  a packet's 200 and the next checkpoint): acknowledged, only when Wattics' latest packet
  is this delivery's row, with the same instant and value;
- any other row: not sendable (Wattics cannot place it in its register), said in words.

Then it continues strictly after that latest packet. When the answer cannot be read, the
run goes on from our own record of what Wattics acknowledged, and the note says so.
"""

from collections import deque
from datetime import datetime
from itertools import islice

from django.conf import settings
from django.db.models import Max, Min, Q, Sum

from core.db import connection_give_back
from sites.models import PacketFormat
from uploads.models import Delivery, Reading, Target
from uploads.services.push_run import CHECKPOINT_PACKETS, PushRun, RunEnd
from vendors.http import VendorRefused, VendorTransient
from vendors.models import Vendor
from vendors.wattics import (
    LatestPacket,
    LatestUnreadable,
    Outcome,
    Packet,
    PacketBuilder,
    Result,
    Stream,
    WatticsClient,
    format_local_ts,
)

READ_BATCH = 1000


def wattics_stream(meter) -> Stream:
    """The meter's Wattics data stream, as vendors.wattics builds its packets."""
    return Stream(
        stream_id=meter.wattics_stream_id,
        timezone=meter.site.timezone,
        unit=meter.unit,
        interval_minutes=meter.interval_minutes,
        single_value=meter.wattics_format == PacketFormat.SINGLE_VALUE,
        label=str(meter),
    )


def _credentials(meter) -> tuple[str, str]:
    # "Credentials can be agreed per meter": the meter's own pair wins over the organization's.
    if meter.wattics_username and meter.wattics_password:
        return meter.wattics_username, meter.wattics_password
    creds = getattr(meter.organization, "credentials", None)
    if creds is None or not creds.wattics_username or not creds.wattics_password:
        return "", ""
    return creds.wattics_username, creds.wattics_password


def _base_url(meter) -> str:
    # A meter with its own credentials may have its own entry point (e.g. Wattics' test one).
    if meter.wattics_username and meter.wattics_password and meter.wattics_base_url:
        return meter.wattics_base_url.rstrip("/")
    creds = getattr(meter.organization, "credentials", None)
    return creds.wattics_url if creds is not None else settings.WATTICS_BASE_URL.rstrip("/")


class WatticsRun(PushRun):
    def __init__(self, delivery):
        super().__init__(delivery, vendor=Vendor.WATTICS)
        self.meter = delivery.meter

    def rows(self):
        return Reading.objects.filter(meter_id=self.meter.pk, ts__gte=self.delivery.first_ts,
                                      ts__lte=self.delivery.last_ts)  # fmt: skip

    def run(self) -> RunEnd:
        meter = self.meter
        if not meter.wattics_stream_id:
            return self.fail(f"Meter {meter} has no Wattics data stream id: set it on the meter page, then retry.")
        username, password = _credentials(meter)
        if not username:
            return self.fail("No Wattics username and password: set them on the vendor credentials page, then retry.")
        try:
            builder = PacketBuilder(wattics_stream(meter))
        except ValueError as exc:
            return self.fail(str(exc))
        client = WatticsClient(base_url=_base_url(meter), username=username, password=password,
                               stream_id=meter.wattics_stream_id, log=self.log)  # fmt: skip
        try:
            return self.run_with(client, builder)
        finally:
            client.close()

    def run_with(self, client: WatticsClient, builder: PacketBuilder) -> RunEnd:
        meter = self.meter
        answer = self.vendor_latest(client, builder)
        if isinstance(answer, RunEnd):
            return answer
        latest, readable = answer
        if latest is not None:
            self.account_for_rows_up_to(latest, builder, readable=readable)
        # pC_1 is the register: start from everything stored before the first packet we send
        # (one SUM), so a second upload continues the count.
        if builder.cumulative:
            before = Reading.objects.filter(meter_id=meter.pk)
            if self.cursor_ts:
                before = before.filter(ts__lte=self.cursor_ts)
            else:
                before = before.filter(ts__lt=self.delivery.first_ts)
            builder.total = (before.aggregate(total=Sum("value"))["total"] or 0.0) * builder.factor
        # A stream's first packet ever opens the register at the first interval's start.
        opening = builder.cumulative and latest is None and self.cursor_ts is None
        if ended := self.checkpoint():
            return ended
        if ended := self.push_all(client, builder, opening=opening, after=latest.instant if latest else None):
            return ended
        return self.finish()

    # ----- what Wattics already has ---------------------------------------------------------
    def vendor_latest(self, client: WatticsClient, builder: PacketBuilder) -> tuple[LatestPacket | None, bool] | RunEnd:
        """Wattics' latest packet for the stream and whether it came from Wattics (True) or,
        its answer being unreadable, from our own record of what it acknowledged (False)."""
        failures = 0
        while True:
            try:
                return client.latest(), True
            except VendorRefused as exc:
                return self.fail(str(exc))
            except LatestUnreadable as exc:
                reason = str(exc)
                break
            except VendorTransient as exc:  # (VendorUnreachable too: no answer)
                failures += 1
                if ended := self.wait_after_failure(failures, str(exc), exc.retry_after):
                    return ended
        own = Delivery.objects.filter(meter_id=self.meter.pk, target=Target.WATTICS, acknowledged__gt=0).aggregate(
            last=Max("cursor_ts")
        )["last"]
        shown = format_local_ts(builder.stamp(own), builder.tz) if own else "nothing yet"
        self.say(f"{reason}. Went on from our own record of what Wattics acknowledged for this meter: {shown}.")
        return (LatestPacket(builder.stamp(own)) if own else None), False

    def account_for_rows_up_to(self, latest: LatestPacket, builder: PacketBuilder, *, readable: bool) -> None:
        """Count this delivery's unhandled rows at or before Wattics' latest packet: already
        at vendor, acknowledged (proven), or not sendable. The cursor moves past them."""
        upto = min(builder.reading_ts(latest.instant), self.delivery.last_ts)
        pending = self.rows().filter(ts__lte=upto)
        if self.cursor_ts:
            pending = pending.filter(ts__gt=self.cursor_ts)
        last = pending.aggregate(last=Max("ts"))["last"]
        if last is None:
            return
        held = Q()
        # A re-pushed delivery's own rows count too: Wattics cannot take them twice anyway.
        for first, end in self.held_spans(self.cursor_ts, upto, own=True):
            held |= Q(ts__gte=first, ts__lte=end)
        if held:
            n = pending.filter(held).count()
            if n:
                self.already_at_vendor += n
                self.say(f"{n:,} rows were already at Wattics (delivered earlier, identical): not sent again.")
            pending = pending.exclude(held)
        n = pending.count()
        if n and readable and self.is_our_row(latest, builder, pending):
            # Sent by an earlier run of this delivery, acknowledged before it could record it.
            self.sent += n
            self.acknowledge(n)
        elif n:
            span = pending.aggregate(first=Min("ts"), last=Max("ts"))
            first_ts, last_ts = span["first"], span["last"]
            self.mark_not_sendable(
                n,
                f"{n:,} rows ({format_local_ts(first_ts, builder.tz)} to {format_local_ts(last_ts, builder.tz)}) "
                f"are not sendable: Wattics already holds a later packet for stream {self.meter.wattics_stream_id} "
                f"({format_local_ts(latest.instant, builder.tz)}) and never got these; it keeps a running register "
                "and discards older packets, so they were not sent.",
            )
        self.cursor_ts = last

    def is_our_row(self, latest: LatestPacket, builder: PacketBuilder, pending) -> bool:
        """Wattics' latest packet is the packet of this delivery's row at its instant, with the
        value we would send (for a register: the meter's total up to that row)."""
        row_ts = builder.reading_ts(latest.instant)
        value = pending.filter(ts=row_ts).values_list("value", flat=True).first()
        if value is None:
            return False
        if builder.cumulative:
            total = Reading.objects.filter(meter_id=self.meter.pk, ts__lte=row_ts).aggregate(t=Sum("value"))["t"]
            expected = builder.expected(value, (total or 0.0) * builder.factor)
        else:
            expected = builder.expected(value, 0.0)
        got = latest.measure(builder.field)
        return got is not None and abs(got - expected) <= 0.01 + 1e-9 * abs(expected)

    # ----- sending --------------------------------------------------------------------------
    def _unsent_rows(self):
        rows = self.rows().order_by("ts").values_list("ts", "value", "extra")
        after = self.cursor_ts
        while True:
            # Keyset pagination: constant memory, and each batch is one index range scan.
            batch = list((rows.filter(ts__gt=after) if after else rows)[:READ_BATCH])
            connection_give_back()  # the batch is in memory; the packets take seconds to send
            if not batch:
                return
            yield from batch
            after = batch[-1][0]

    def push_all(
        self, client: WatticsClient, builder: PacketBuilder, *, opening: bool, after: datetime | None
    ) -> RunEnd | None:
        """Send the packets in order, a batch at a time: the process's packet loop sends a
        batch while this thread waits once (vendors.pump), and hands it back at the first
        packet this run must look at, or when the next checkpoint is due."""
        packets = builder.packets(self._unsent_rows(), opening=opening, after=after)
        waiting: deque[Packet] = deque()
        while True:
            waiting.extend(islice(packets, CHECKPOINT_PACKETS - len(waiting)))
            if not waiting:
                return None
            for result in client.push_many([p.body for p in waiting], until=self.checkpoint_due()):
                packet = waiting.popleft()
                acknowledged = self.push_one(client, packet, result)
                if isinstance(acknowledged, RunEnd):
                    return acknowledged
                if packet.row_ts is None:
                    continue
                self.sent += 1
                if acknowledged:
                    self.acknowledge()
                else:
                    self.rejected += 1
                self.cursor_ts = packet.row_ts
                if ended := self.tick():
                    return ended

    def push_one(self, client: WatticsClient, packet: Packet, result: Result) -> bool | RunEnd:
        """Go on from a packet's first result until Wattics answers it: True if acknowledged,
        False if refused (or how the run ended meanwhile). A transient failure is waited
        out here, and the packet alone sent again."""
        failures = 0
        while True:
            outcome = result.outcome
            if outcome is Outcome.ACKNOWLEDGED:
                return True
            if outcome is Outcome.DISCARDED:
                if failures and result.vendor_last == packet.instant:
                    return True  # our earlier try got through but its answer was lost
                self.last_error = f"{packet.body.decode()[:200]}: {result.message}"
                return False
            if outcome is Outcome.REJECTED:
                self.last_error = f"{packet.body.decode()[:200]}: {result.message}"
                return False
            if outcome is Outcome.FATAL:
                return self.fail(result.message)
            failures += 1
            if ended := self.wait_after_failure(failures, result.message, result.retry_after):
                return ended
            result = client.push(packet.body)


def push_wattics(delivery) -> RunEnd:
    return WatticsRun(delivery).run()
