"""Readers of training data: domain folders and shards for `synthgen fit` (folders.py)."""
