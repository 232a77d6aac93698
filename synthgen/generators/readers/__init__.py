"""Readers of foreign checkpoint layouts; each returns a FrozenGenerator. None runs pickled code."""
