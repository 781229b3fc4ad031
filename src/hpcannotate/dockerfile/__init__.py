"""Facts -> Dockerfile: the one Dockerfile reader, the value writer, and render."""
