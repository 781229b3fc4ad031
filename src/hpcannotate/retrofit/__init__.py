"""Annotations onto images that already exist, without rebuilding them."""
