"""Benchmarks: one module per measured task; `make bench` (python -m benchmarks) runs them all."""
