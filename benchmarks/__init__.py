"""Benchmarks of fcnn against PyTorch on the CPU: ``python -m benchmarks --help``."""
