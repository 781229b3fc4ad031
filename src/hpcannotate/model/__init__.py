"""The annotation model: the key catalogue (data/keys.yaml), values, validation, provenance."""
