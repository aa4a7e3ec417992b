"""Exports a person can send: one self-contained HTML report, the journey map as SVG (or PNG), journeys as
CSV, Parquet or an XES event log for process-mining tools, and the map as a Mermaid journey diagram."""
