"""upload_csv --wait's follower: a progress bar on a terminal, plain lines otherwise, exit status."""

import io

import pytest
from django.core.management.base import CommandError, OutputWrapper

from tests import factories
from uploads.management.follow import follow_upload

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def upload(org):
    meter = factories.make_meter(factories.make_site(org), name="Main")
    upload = factories.make_upload(org, meter=meter, targets=["wattics", "wattcarbon_intervals"])
    factories.make_delivery(upload, meter, target="wattics", status="delivered", total=96, acknowledged=96)
    factories.make_delivery(upload, meter, target="wattcarbon_intervals", status="delivered", total=96,
                            acknowledged=96)  # fmt: skip
    return upload


def test_on_a_terminal_it_draws_a_progress_bar(upload):
    screen = Terminal()
    state = follow_upload(upload=upload, out=OutputWrapper(screen), err=OutputWrapper(io.StringIO()))
    assert state["delivered"] is True
    drawn = screen.getvalue()
    assert "192/192" in drawn and "100%" in drawn and "rows/s" in drawn


def test_off_a_terminal_it_writes_plain_lines(upload):
    log = io.StringIO()
    follow_upload(upload=upload, out=OutputWrapper(log), err=OutputWrapper(io.StringIO()))
    assert "192/192 rows pushed" in log.getvalue()
    assert "\r" not in log.getvalue()
    assert "wattics (Main): delivered, 96/96 acknowledged" in log.getvalue()


def test_it_fails_unless_everything_was_delivered(upload):
    upload.deliveries.filter(target="wattics").update(status="partially_failed", acknowledged=90, rejected=6,
                                                      last_error="6 packets rejected")  # fmt: skip
    log = io.StringIO()
    with pytest.raises(CommandError, match="Not everything was delivered"):
        follow_upload(upload=upload, out=OutputWrapper(log), err=OutputWrapper(io.StringIO()))
    assert "partially_failed, 90/96 acknowledged, 6 rejected: 6 packets rejected" in log.getvalue()
