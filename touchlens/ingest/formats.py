"""The names of the event formats ingest reads, apart from the readers themselves, so the command line can list
them in its help without loading Arrow (`readers/__init__.py` checks its readers match these names)."""

EVENT_FORMATS = ("auto", "csv", "jsonl", "parquet", "segment", "ga4", "mixpanel", "amplitude", "zendesk")
