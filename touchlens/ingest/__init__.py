"""Ingest: readers turn each source format into canonical batches; the pipeline checks, maps and stores them."""
