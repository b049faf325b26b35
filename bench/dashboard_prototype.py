"""The meter data page's slow query, and a prototype of a replacement.

    .venv/bin/python bench/dashboard.py && .venv/bin/python bench/dashboard_prototype.py

Not part of `make bench`: it reuses the rows bench/dashboard.py left in portal_bench.
dashboard.selectors.meter_last_acknowledged() runs SELECT DISTINCT target with three
correlated subqueries: PostgreSQL evaluates the subqueries for every delivered delivery
of the meter before DISTINCT removes the duplicates, so its cost grows with the square
of the meter's deliveries. The prototype asks once per target for the latest delivered
delivery (ORDER BY ... LIMIT 1): three small queries. Nothing in the portal is edited.
"""

import time

import common

RUNS = 20


def per_target(meter) -> dict:
    """The same answer as meter_last_acknowledged: per target, the latest acknowledged instant."""
    from uploads.models import Delivery, DeliveryStatus, Target

    found = {}
    for target in Target.values:
        found[target] = (
            Delivery.objects.filter(
                meter=meter, target=target, status=DeliveryStatus.DELIVERED, cursor_ts__isnull=False
            )
            .order_by("-cursor_ts", "-finished_at", "-id")
            .values("cursor_ts", "finished_at", "upload_id")
            .first()
        )
    return found


def timed(fn) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return common.median_ms(samples)


def main() -> None:
    common.setup_django()
    from dashboard.selectors import meter_last_acknowledged
    from sites.models import Meter
    from uploads.models import Delivery

    meter = Meter.objects.order_by("id").first()
    assert meter is not None, "run bench/dashboard.py first: it leaves the rows this reads"
    deliveries = Delivery.objects.filter(meter=meter).count()
    current = {a.target: a.cursor_ts for a in meter_last_acknowledged(meter=meter)}
    proposed = {t: (r or {}).get("cursor_ts") for t, r in per_target(meter).items()}
    assert current == proposed, (current, proposed)
    current_ms = timed(lambda: meter_last_acknowledged(meter=meter))
    proposed_ms = timed(lambda: per_target(meter))
    rows = [
        ["meter_last_acknowledged (DISTINCT + 3 correlated subqueries)", 1, current_ms],
        ["per target: ORDER BY cursor_ts DESC LIMIT 1", 3, proposed_ms],
    ]
    print(f"Last acknowledged per target, a meter with {deliveries} deliveries (median of {RUNS})")
    print(common.table(["query", "queries", "median ms"], rows))
    common.write_result(
        "dashboard_prototype", {"meter_deliveries": deliveries, "median_ms": {r[0]: r[2] for r in rows}}
    )


if __name__ == "__main__":
    main()
