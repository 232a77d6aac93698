"""Kept only for webdataset.py, the former import path of synthgen.dataset.webdataset."""
