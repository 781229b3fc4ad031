"""Spack environments (spack.yaml) and their locks (spack.lock)."""
