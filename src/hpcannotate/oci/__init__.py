"""OCI image format pieces: media types, digests, and image layouts on disk."""
