"""Upload views, by concern: ingest (form, mapping, review), status (list, detail),
actions (retry, cancel, re-push)."""
