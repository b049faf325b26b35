"""The one backoff formula every app's retries use."""

from core.tasks import backoff_seconds


def test_backoff_doubles_with_jitter_between_half_and_whole():
    for retries, whole in ((0, 2), (1, 4), (3, 16)):
        samples = [backoff_seconds(retries, base=2, cap=1000) for _ in range(200)]
        assert all(whole / 2 <= s <= whole for s in samples)
        assert len(set(samples)) > 1  # jittered


def test_backoff_stops_growing_at_the_cap_and_honours_retry_after():
    assert all(30 <= backoff_seconds(20, base=2, cap=60) <= 60 for _ in range(50))
    assert backoff_seconds(0, base=2, cap=60, retry_after=120) == 120
    assert backoff_seconds(10_000, base=2, cap=60) <= 60  # no overflow
