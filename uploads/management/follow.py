"""`upload_csv --wait`: follow an upload's deliveries until each one ends.

On a terminal a progress bar (rows done, rate, ETA); otherwise one plain line when the
numbers change (at most every few seconds), so logs of cron jobs stay readable. The
command fails (exit 1) unless every delivery was delivered.
"""

import json
import time

from django.core.management.base import CommandError
from django.utils import timezone

from uploads.models import ACTIVE_DELIVERY_STATUSES, Delivery, DeliveryStatus, Upload

POLL_SECONDS = 0.5
PLAIN_EVERY_SECONDS = 5.0


def upload_state(*, upload: Upload) -> dict:
    """What --json prints: the upload and each delivery's counts."""
    upload.refresh_from_db()
    deliveries = Delivery.objects.filter(upload=upload).select_related("meter").order_by("id")
    return {
        "upload": upload.pk,
        "status": upload.status,
        "rows_total": upload.rows_total,
        "rows_valid": upload.rows_valid,
        "rows_invalid": upload.rows_invalid,
        "rows_stored": upload.rows_stored,
        "warnings": upload.warnings,
        "deliveries": [
            {
                "id": d.pk,
                "meter": d.meter.name,
                "target": d.target,
                "status": d.status,
                "total": d.total,
                "acknowledged": d.acknowledged,
                "already_at_vendor": getattr(d, "already_at_vendor", None),
                "rejected": d.rejected,
                "last_error": d.last_error,
            }
            for d in deliveries
        ],  # fmt: skip
        "delivered": bool(deliveries) and all(d.status == DeliveryStatus.DELIVERED for d in deliveries),
        "at": timezone.now().isoformat(),
    }


def _progress(upload: Upload) -> tuple[int, int, bool]:
    rows = list(Delivery.objects.filter(upload=upload).values_list("total", "acknowledged", "rejected", "status"))
    total = sum(r[0] for r in rows)
    done = sum(min(r[0], r[1] + r[2]) if r[3] in ACTIVE_DELIVERY_STATUSES else r[0] for r in rows)
    finished = all(r[3] not in ACTIVE_DELIVERY_STATUSES for r in rows)
    return total, done, finished


def follow_upload(*, upload: Upload, out, err, as_json: bool = False, timeout: float | None = None) -> dict:
    started = time.monotonic()
    total, done, finished = _progress(upload)
    bar = None
    if out.isatty() and not as_json:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="rows", desc=f"upload {upload.pk}", file=out._out, dynamic_ncols=True)
    last_line, last_done = 0.0, -1
    while True:
        total, done, finished = _progress(upload)
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)
        elif not as_json and (finished or (done != last_done and time.monotonic() - last_line >= PLAIN_EVERY_SECONDS)):
            elapsed = time.monotonic() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = f", ETA {int((total - done) / rate)}s" if rate > 0 and not finished else ""
            out.write(f"{done}/{total} rows pushed ({rate:.0f} rows/s{eta})")
            last_line, last_done = time.monotonic(), done
        if finished:
            break
        if timeout is not None and time.monotonic() - started > timeout:
            if bar is not None:
                bar.close()
            raise CommandError(f"Gave up waiting after {timeout:.0f}s: {done}/{total} rows pushed.")
        time.sleep(POLL_SECONDS)
    if bar is not None:
        bar.close()
    state = upload_state(upload=upload)
    if as_json:
        out.write(json.dumps(state, indent=2))
    else:
        for d in state["deliveries"]:
            line = f"{d['target']} ({d['meter']}): {d['status']}, {d['acknowledged']}/{d['total']} acknowledged"
            out.write(line + (f", {d['rejected']} rejected" if d["rejected"] else "") +
                      (f": {d['last_error']}" if d["last_error"] else ""))  # fmt: skip
    if not state["delivered"]:
        raise CommandError(f"Not everything was delivered (upload {upload.pk}).")
    return state
