"""An upload's page tells a delivery's truth: the counts, the note in words, the whole last error."""

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def meter(org):
    return factories.make_meter(factories.make_site(org), wattics_stream_id="demo-elec-1")


def test_it_shows_rows_already_at_the_vendor_and_up_to_date(owner_client, org, meter):
    upload = factories.make_upload(org, meter=meter, rows_valid=40)
    factories.make_delivery(upload, meter, status="delivered", total=40, already_at_vendor=40,
                            note="Up to date: all 40 rows were already at the vendor; nothing was sent.")  # fmt: skip
    html = owner_client.get(f"/uploads/{upload.pk}/").content.decode()
    assert "<dt>Already at vendor</dt><dd>40</dd>" in html
    assert "Up to date: all 40 rows were already at the vendor; nothing was sent." in html
    assert 'aria-valuenow="100"' in html and "status-delivered" in html


def test_it_shows_rows_not_sendable_with_the_whole_reason(owner_client, org, meter):
    upload = factories.make_upload(org, meter=meter, rows_valid=100)
    reason = "100 rows (2024-01-01 to 2024-01-02) are not sendable: " + "Wattics already holds a later packet. " * 20
    factories.make_delivery(upload, meter, status="failed", total=100, not_sendable=100, last_error=reason.strip(),
                            note=reason.strip())  # fmt: skip
    html = owner_client.get(f"/uploads/{upload.pk}/").content.decode()
    assert '<dt>Not sendable</dt><dd class="error-text">100</dd>' in html
    assert f"<code>{reason.strip()}</code>" in html  # not cut short
    assert "Remaining</dt><dd>0</dd>" in html
