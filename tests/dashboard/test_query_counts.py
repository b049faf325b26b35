"""Every list and dashboard page does a fixed number of queries: the same bound with
10 uploads as with 1,000, each with deliveries and logged exchanges."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.dashboard.fixtures import T0
from uploads.models import Delivery, Upload
from vendors.models import HttpExchange

MAX_QUERIES = 15
# One delivery per stream (meter, target) may be pushing at a time: the first of each target is.
STATUSES = ["queued", "delivered", "failed", "partially_failed", "cancelled"]


def build(org, user, meter, n: int) -> Upload:
    """n uploads of the last days, each with two deliveries and one exchange, in bulk."""
    now = timezone.now()
    uploads = Upload.objects.bulk_create(
        [
            Upload(
                organization=org,
                uploaded_by=user,
                meter=meter,
                file=f"uploads/bulk/{i}.csv",
                original_name=f"bulk-{i:04}.csv",
                status="stored",
                targets=["wattics", "wattcarbon_intervals"],
                rows_total=96,
                rows_valid=96,
                rows_stored=96,
            )
            for i in range(n)
        ]
    )
    first_push = not Delivery.objects.filter(meter=meter, status="pushing").exists()
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                organization=org,
                upload=u,
                meter=meter,
                target=target,
                status="pushing" if i == 0 and first_push else STATUSES[(i + j) % len(STATUSES)],
                total=96,
                acknowledged=48,
                started_at=now - timedelta(seconds=60),
                cursor_ts=T0 + timedelta(minutes=i),
                last_error="503 Service Unavailable" if (i + j) % 2 else "",
            )
            for i, u in enumerate(uploads)
            for j, target in enumerate(["wattics", "wattcarbon_intervals"])
        ]
    )
    HttpExchange.objects.bulk_create(
        [
            HttpExchange(organization=org, delivery=d, vendor="wattics", method="POST", url="/", status_code=201)
            for d in deliveries
        ]
    )
    factories.make_readings(meter, T0, 3000, skip=range(500, 520))
    return uploads[0]


def pages(upload, meter) -> list[str]:
    return [
        "/",
        "/dashboard/active/",
        "/uploads/",
        "/uploads/?status=stored&target=wattics&sort=-rows",
        f"/uploads/?meter={meter.pk}&site={meter.site_id}&sort=status&page=2",
        f"/uploads/{upload.pk}/",
        f"/uploads/{upload.pk}/progress/",
        f"/uploads/{upload.pk}/deliveries/{upload.deliveries.first().pk}/exchanges/",
        f"/meters/{meter.pk}/data/",
    ]


@pytest.mark.parametrize("n", [10, 1000])
def test_it_keeps_every_status_page_under_a_fixed_query_bound(
    owner_client, org, owner, meter, n, django_assert_max_num_queries
):
    first = build(org, owner, meter, n)
    for url in pages(first, meter):
        with django_assert_max_num_queries(MAX_QUERIES):
            response = owner_client.get(url)
        assert response.status_code == 200, url


def test_it_does_the_same_number_of_queries_for_10_and_1000_uploads(owner_client, org, owner, meter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def counts(first) -> list[int]:
        result = []
        for url in pages(first, meter):
            with CaptureQueriesContext(connection) as ctx:
                owner_client.get(url)
            result.append(len(ctx))
        return result

    small = counts(build(org, owner, meter, 10))
    Reading = meter.readings.model
    Reading.objects.filter(meter=meter).delete()
    large = counts(build(org, owner, meter, 990))
    assert small == large
    assert max(large) <= MAX_QUERIES
    print(dict(zip([p.split("?")[0] for p in pages(Upload.objects.last(), meter)], large, strict=True)))
