"""Native OCI distribution client: references, authentication and the registry API.

``annotate``, ``inspect``, ``collection`` and ``build --push`` all go through ``RegistryClient``;
local OCI layouts (``oci:PATH[:tag]``) parse with the same ``parse_reference`` and are read with
``hpcannotate.oci.layout.OciLayout``.
"""

from __future__ import annotations

from hpcannotate.registry.auth import (
    AuthenticationError,
    Credentials,
    DigestMismatchError,
    RegistryError,
    find_credentials,
    parse_www_authenticate,
)
from hpcannotate.registry.client import (
    ManifestHead,
    RawManifest,
    RegistryClient,
    RetryPolicy,
    TransferStats,
    as_reference,
)
from hpcannotate.registry.reference import Reference, is_loopback, parse_reference

__all__ = [
    "AuthenticationError",
    "Credentials",
    "DigestMismatchError",
    "ManifestHead",
    "RawManifest",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RetryPolicy",
    "TransferStats",
    "as_reference",
    "find_credentials",
    "is_loopback",
    "parse_reference",
    "parse_www_authenticate",
]
