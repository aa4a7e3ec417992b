"""Analytics: Ibis expressions over the events store, so the same code runs on DuckDB or another backend."""
