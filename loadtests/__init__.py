"""Load tests, benchmarks and the comparison harness."""
