"""Benchmarks of the pipeline's steps, run as scripts: ``python benchmarks/bench_<name>.py``."""
