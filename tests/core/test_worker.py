import pytest


@pytest.mark.worker
def test_the_worker_process_starts_on_the_test_database(celery_worker):
    assert celery_worker.proc.poll() is None
    # The whole log: log() keeps only its tail, and tests run before this one may have filled it.
    assert "ready." in celery_worker.log_path.read_text(errors="replace")
