"""Dockerfile -> image: the build pipeline, its builders (buildah, buildx), local base images."""
