"""Upload services: ingest (parse, validate, store) and deliveries (push to vendors)."""
