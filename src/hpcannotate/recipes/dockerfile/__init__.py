"""Dockerfiles as recipes: their values are declared in hpcannotate.yaml, not inferred."""
