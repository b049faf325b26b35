"""Writes of the sites app: `crud` (sites, meters, devices) and `sync` (their sync to
WattCarbon, and the documents of synced devices)."""
