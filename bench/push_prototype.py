"""What writing the exchange log with COPY would gain on the Wattics push path.

    .venv/bin/python bench/push_prototype.py [--quick]

Not part of `make bench`: a companion to bench/push.py, for the report. A profile of
push_delivery showed PacketLog.flush() (one executemany of INSERTs per checkpoint, every
200 packets) holding the push loop for tens of milliseconds each time. Here the same
10,000-packet push runs as is, then with PacketLog.flush patched in this process to
send the same rows with one COPY; a raw keep-alive loop gives the floor. Nothing in
the portal is edited.
"""

import argparse

import common
from push import PASSWORD, USERNAME, bodies, make_meter, push_in_process, queued_delivery, raw_loop, store_readings


def copy_flush(self) -> None:
    """PacketLog.flush with COPY instead of executemany (same rows, same columns)."""
    from django.db import connection

    from vendors.models import HttpExchange
    from vendors.wattics import _LOG_FIELDS, ExchangeLog

    ExchangeLog.flush(self)
    if not self.rows:
        return
    rows, self.rows = self.rows, []
    opts = HttpExchange._meta
    columns = ", ".join(connection.ops.quote_name(opts.get_field(name).column) for name in _LOG_FIELDS)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {opts.db_table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 packets")
    args = parser.parse_args()
    n = 2_000 if args.quick else 10_000

    common.recreate_database()
    common.setup_django()
    from accounts.models import Organization
    from accounts.services import credentials_update
    from simulators.testing import SimulatorProcess
    from sites.models import Site
    from uploads.models import Upload
    from vendors.models import HttpExchange
    from vendors.wattics import PacketLog

    sim = SimulatorProcess("wattics", "--streams", "proto-asis,proto-copy,proto-raw").start()
    try:
        org = Organization.objects.create(name="Bench", slug="bench")
        credentials_update(
            organization=org, wattics_base_url=sim.url, wattics_username=USERNAME, wattics_password=PASSWORD
        )
        site = Site.objects.create(organization=org, name="Bench site", timezone="Europe/Dublin")
        upload = Upload.objects.create(organization=org, original_name="p.csv", status="stored", targets=["wattics"])
        asis, fast = make_meter(site, "As is", "proto-asis"), make_meter(site, "COPY log", "proto-copy")
        store_readings(upload, [asis, fast], n)

        with common.Timer() as t_asis:
            push_in_process(queued_delivery(upload, asis, n))
        saved = PacketLog.flush
        PacketLog.flush = copy_flush
        try:
            with common.Timer() as t_copy:
                push_in_process(queued_delivery(upload, fast, n))
        finally:
            PacketLog.flush = saved
        assert HttpExchange.objects.filter(meter=fast).count() == HttpExchange.objects.filter(meter=asis).count()
        packets = [b.replace(b'"proto-asis"', b'"proto-raw"') for b in bodies(asis, n)]
        with common.Timer() as t_raw:
            raw_loop(sim.url, packets)
    finally:
        sim.stop()

    rows = [
        ["portal push, exchange log by executemany (as is)", t_asis.seconds],
        ["portal push, exchange log by COPY (patched)", t_copy.seconds],
        ["raw http.client keep-alive loop", t_raw.seconds],
    ]
    print(f"Wattics push prototype, {n:,} packets")
    print(
        common.table(
            ["path", "seconds", "packets/s", "vs raw"],
            [[name, f"{s:.2f}", f"{n / s:,.0f}", f"{t_raw.seconds / s:.2f}"] for name, s in rows],
        )
    )
    common.write_result("push_prototype", {"quick": args.quick, "packets": n, "seconds": dict(rows)})


if __name__ == "__main__":
    main()
