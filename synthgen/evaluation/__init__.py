"""Benchmarks: the reference segmenter, translation accuracy, downstream value of synthetic data."""
