"""Simulated data and error-rate checks used only by the benchmarks and the tests."""
