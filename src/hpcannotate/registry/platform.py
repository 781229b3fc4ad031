"""Platforms as users type them (``linux/amd64``, ``linux/arm64/v8``) and as indexes carry them.

``inspect --platform``, ``annotate --platform`` and collection YAML files all name platforms;
one parser and one matcher keep them in agreement. Architecture spellings of ``uname -m``
(``x86_64``, ``aarch64``) are accepted for their OCI names, since that is what HPC users see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hpcannotate.errors import InputError
from hpcannotate.model.keynames import HARDWARE_CPU_OPTIMIZED_VERSION
from hpcannotate.oci.layout import REF_NAME

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ATTESTATION_TYPE = "vnd.docker.reference.type"
TARGET_KEY = HARDWARE_CPU_OPTIMIZED_VERSION


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_oci(self) -> dict[str, str]:
        """The ``platform`` object of an index descriptor."""
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data

    def matches(self, platform: dict | None) -> bool:
        """True when a descriptor's (or config's) platform is this one; no variant asked matches any variant."""
        if not platform:
            return False
        if platform.get("os") != self.os or platform.get("architecture") != self.architecture:
            return False
        return self.variant is None or platform.get("variant") == self.variant


def oci_arch(name: str) -> str:
    """The OCI architecture for a ``uname -m`` or archspec family name (``x86_64`` -> ``amd64``).

    The names are ``data/architectures.yaml``; a name it does not list is passed through, lower-cased.
    """
    from hpcannotate.model.knowledge import oci_names

    return oci_names().get(name.lower(), name.lower())


def parse_platform(text: str, where: str = "--platform") -> Platform:
    """``os/arch[/variant]``; one-line error naming ``where`` otherwise."""
    parts = text.strip().split("/") if isinstance(text, str) else []
    if not 2 <= len(parts) <= 3 or not all(_PART.match(p) for p in parts):
        raise InputError(f"{where}: {text!r} is not a platform (expected os/arch or os/arch/variant, "
                         "such as linux/amd64)")
    os_name, arch = parts[0].lower(), parts[1].lower()
    arch = oci_arch(arch)
    return Platform(os_name, arch, parts[2] if len(parts) == 3 else None)


def platform_text(platform: dict | None) -> str:
    """``linux/amd64[/v8]`` for a descriptor's platform, ``-`` when it has none."""
    if not platform:
        return "-"
    parts = [platform.get("os") or "?", platform.get("architecture") or "?"]
    if platform.get("variant"):
        parts.append(platform["variant"])
    return "/".join(parts)


def is_attestation(descriptor: dict) -> bool:
    """buildx's provenance/SBOM manifests (``unknown/unknown``): part of an index, never an image to run."""
    annotations = descriptor.get("annotations") or {}
    platform = descriptor.get("platform") or {}
    return ATTESTATION_TYPE in annotations or (platform.get("os") == "unknown"
                                                and platform.get("architecture") == "unknown")


def choose_image(index: dict, platform: Platform, where: str, *, take_lone: bool = False) -> dict:
    """The one image descriptor of an index for ``platform`` (attestations are not images).

    ``take_lone``: an index holding a single image gives that image whatever its platform says
    (hand-made indexes often carry none). Several images for one platform (hpcannotate's
    one-image-per-target index) is an error that names their tags or targets, so the user can pick.
    """
    images = [d for d in index.get("manifests") or [] if not is_attestation(d)]
    if take_lone and len(images) == 1:
        return images[0]
    fitting = [d for d in images if platform.matches(d.get("platform"))]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        have = ", ".join(sorted({platform_text(d.get("platform")) for d in images})) or "none"
        raise InputError(f"{where}: the index has no image for {platform} (it has: {have})")
    names = ", ".join(_image_label(d) for d in fitting)
    raise InputError(f"{where}: the index holds {len(fitting)} images for {platform} ({names}); "
                     "name one by its tag or digest")


def _image_label(desc: dict) -> str:
    annotations = desc.get("annotations") or {}
    return annotations.get(REF_NAME) or annotations.get(TARGET_KEY) or desc["digest"]


def machine_oci_arch() -> str:
    """This machine's OCI architecture (``uname -m`` through ``oci_arch``)."""
    import platform

    return oci_arch(platform.machine())


def platform_for(target_family: str) -> str:
    """The OCI platform of an archspec family."""
    return f"linux/{oci_arch(target_family)}"
