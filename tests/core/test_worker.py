import pytest


@pytest.mark.worker
def test_the_worker_process_starts_on_the_test_database(celery_worker):
    assert celery_worker.proc.poll() is None
    assert "ready." in celery_worker.log()
