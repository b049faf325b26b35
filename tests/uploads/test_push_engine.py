"""Many streams at once on few database connections: a push run gives its connection back
between checkpoints (with PostgreSQL's pool), and a worker with many more threads than
connections delivers every stream complete and in order."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from core.db import connection_give_back
from tests import factories
from tests.drills.support import wait_done
from uploads.models import DeliveryStatus
from uploads.services.deliveries import deliveries_create_for_upload, delivery_claim
from uploads.services.push_run import PushRun
from vendors.models import HttpExchange

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _most_at_once(deliveries) -> int:
    """The most deliveries pushing at the same instant."""
    events = sorted([(d.started_at, 1) for d in deliveries] + [(d.finished_at, -1) for d in deliveries])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _pooled() -> bool:
    return bool(connection.settings_dict.get("OPTIONS", {}).get("pool"))


@pytest.mark.django_db(transaction=True)
def test_a_push_run_gives_its_connection_back_at_each_checkpoint(org, vendor_credentials):
    meter = factories.make_meter(factories.make_site(org), wattics_stream_id="demo-elec-1")
    # Made here, not enqueued: a worker of the test session must not push it meanwhile.
    delivery = factories.make_delivery(factories.make_stored_upload(meter, T0, 10), meter, status="queued")
    run = PushRun(delivery_claim(delivery_id=delivery.pk), vendor="wattics")
    run.log.add(method="POST", url="http://127.0.0.1/x", status_code=200, duration_ms=1.0)
    run.acknowledge(1)
    assert run.checkpoint() is None
    # With the pool the connection went back (the next query takes one again); without it
    # (SQLite, or DB_POOL_MAX_SIZE=0) the thread keeps its own.
    assert (connection.connection is None) is _pooled()
    delivery.refresh_from_db()  # and the checkpoint was written, the exchange flushed
    assert (delivery.acknowledged, HttpExchange.objects.filter(delivery=delivery).count()) == (1, 1)
    assert run.checkpoint() is None  # the next checkpoint finds a connection again
    assert (connection.connection is None) is _pooled()


@pytest.mark.django_db(transaction=True)
def test_a_connection_is_never_given_back_inside_a_transaction(org):
    from django.db import transaction

    with transaction.atomic():
        factories.make_site(org)
        connection_give_back()
        assert connection.connection is not None
        assert connection.in_atomic_block


@pytest.mark.worker
def test_many_streams_on_a_small_pool_arrive_complete_and_in_order(worker_factory, org, vendor_credentials,
                                                                   wattics_sim, transactional_db):  # fmt: skip
    """24 threads, 2 pooled connections (PostgreSQL; SQLite: 24 threads writing one file),
    24 streams at 20 ms a packet: every delivery delivered, every packet once, in order,
    every exchange recorded."""
    worker = worker_factory(concurrency=24, env={"DB_POOL_MAX_SIZE": "2", "DB_POOL_TIMEOUT": "120"})
    try:
        wattics_sim.faults(latency_ms=20)
        site = factories.make_site(org)
        streams = [f"pool-{i:02d}" for i in range(24)]
        for stream in streams:
            wattics_sim.register_stream(stream)
        meters = [factories.make_meter(site, wattics_stream_id=s) for s in streams]
        deliveries = [
            d for m in meters for d in deliveries_create_for_upload(upload=factories.make_stored_upload(m, T0, 40))
        ]
        done = wait_done(*deliveries, timeout=180, worker=worker)
        assert [d.status for d in done] == [DeliveryStatus.DELIVERED] * 24, [d.last_error for d in done]
        for meter in meters:
            packets = wattics_sim.packets(meter.wattics_stream_id)
            assert (len(packets["accepted"]), packets["discarded_count"]) == (41, 0)  # opening packet + 40
            stamps = [datetime.fromisoformat(p["tsISO8601"]) for p in packets["accepted"]]
            assert stamps == sorted(set(stamps))
        posts = HttpExchange.objects.filter(meter__in=meters, method="POST", status_code=200).count()
        assert posts == 24 * 41
        # More streams in flight at once than the pool has connections.
        assert _most_at_once(done) > 2
    finally:
        worker.stop()


@pytest.mark.django_db(transaction=True)
def test_a_worker_closes_its_connection_pools_at_shutdown(org):
    from portal.celery import _close_connection_pools

    factories.make_site(org)  # a connection is in use
    _close_connection_pools()
    pools = getattr(connection, "_connection_pools", {})
    assert connection.alias not in pools  # closed and forgotten (SQLite: there was none)
    connection.close()
    assert factories.make_site(org, name="After").pk  # a new pool, or connection, serves on
