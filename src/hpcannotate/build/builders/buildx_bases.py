"""Base images for BuildKit: what the machine holds goes in as a named build context.

BuildKit resolves every ``FROM`` itself, from a registry, unless a named build context of the same
name replaces it. On an air-gapped cluster (or in CI) the base is local instead: a base that
``hpcannotate base`` made (an OCI layout in the cache), an image in buildah's store (exported to
an OCI layout first), or an OCI layout the user names (``--base NAME=oci:PATH[:TAG]``). Each
reaches buildx as ``--build-context NAME=oci-layout://PATH@DIGEST``, and the base's own
annotations are read from that layout, as buildah's are read from its store, so a buildx build
inherits the same base keys as a buildah build.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.build.builders.base import BuildOptions
from hpcannotate.build.builders.buildah import BuildahBuilder
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.annotations import Annotations

if TYPE_CHECKING:
    from hpcannotate.build.builders.buildx import BuildxBuilder

EXPORT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class LocalBase:
    """A base image as one manifest in an OCI layout."""

    layout: Path
    digest: str

    def context(self) -> str:
        return f"oci-layout://{self.layout.resolve()}@{self.digest}"

    def annotations(self, ref: str) -> Annotations | None:
        """The base's manifest annotations and config labels (layer ``base image``)."""
        from hpcannotate.model.baseannotations import from_values
        from hpcannotate.oci.layout import OciLayout

        layout = OciLayout.open(self.layout)
        manifest = layout.read_json(self.digest)
        config = layout.read_json(manifest["config"]["digest"]) if isinstance(manifest.get("config"), dict) else {}
        labels = (config.get("config") or {}).get("Labels") if isinstance(config, dict) else None
        return from_values(ref, manifest.get("annotations") if isinstance(manifest.get("annotations"), dict) else None,
                           labels if isinstance(labels, dict) else None, f"read from oci:{self.layout}")


def context_name(ref: str) -> str:
    """The name BuildKit's Dockerfile frontend looks ``FROM ref`` up by: the familiar reference
    (``docker.io/library/`` dropped) without ``:latest``."""
    from hpcannotate.registry.reference import DOCKER_HUB, parse_reference

    parsed = parse_reference(ref)
    name = parsed.repository
    name = name.removeprefix("library/") if parsed.registry == DOCKER_HUB else f"{parsed.registry}/{name}"
    if parsed.tag and parsed.tag != "latest":
        name += f":{parsed.tag}"
    if parsed.digest:
        name += f"@{parsed.digest}"
    return name


def layout_base(spec: str, where: str = "--base ") -> LocalBase:
    """``oci:PATH[:TAG]`` (TAG may be omitted when the layout holds one image) as a LocalBase."""
    from hpcannotate.oci.layout import OciLayout
    from hpcannotate.oci.media import OCI_MANIFEST

    if not spec.startswith("oci:"):
        raise InputError(f"{where}{spec}: expected oci:PATH[:TAG] (an OCI image layout)")
    body = spec.removeprefix("oci:")
    path, _, tag = body.rpartition(":") if ":" in body and not Path(body).is_dir() else (body, "", "")
    layout = OciLayout.open(path)
    desc = layout.find(tag or None)
    if desc.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise InputError(f"{where}{spec}: names {desc.get('mediaType')}, not one image manifest")
    if re.search(r"[:@]", str(Path(path).resolve())):
        raise InputError(f"{where}{spec}: buildx cannot read a layout whose path has ':' or '@'")
    return LocalBase(Path(path), desc["digest"])


def made_base(ref: str, allow_make: bool, make: bool) -> LocalBase | None:
    """A debian/busybox base from ``hpcannotate base``'s cache, made now when missing and allowed."""
    from hpcannotate.build.baseimage import make_base, parse_base
    from hpcannotate.cache import cache_dir
    from hpcannotate.oci.layout import OciLayout
    from hpcannotate.registry.platform import machine_oci_arch

    try:
        kind, tag = parse_base(ref)
    except InputError:
        return None
    layout_dir = cache_dir() / "bases" / f"{kind}-{tag}-{machine_oci_arch()}"
    if not (layout_dir / "index.json").is_file():
        if not (allow_make and make):
            return None  # BuildKit resolves it from its registries
        from hpcannotate import console

        console.progress(f"base {ref}: not in the cache, making it locally")
        layout_dir = make_base(ref)
    return LocalBase(layout_dir, OciLayout.open(layout_dir).find(tag)["digest"])


def store_base(ref: str, options: BuildOptions, into: Path) -> LocalBase | None:
    """An image in buildah's store (``--root``... or the default), exported to an OCI layout."""
    from hpcannotate.oci.layout import OciLayout

    if shutil.which("buildah") is None:
        return None
    buildah = BuildahBuilder(options)
    if not buildah.image_exists(ref):
        return None
    layout_dir = into / re.sub(r"[^A-Za-z0-9_.-]+", "_", ref)
    if layout_dir.exists():
        shutil.rmtree(layout_dir)
    layout_dir.parent.mkdir(parents=True, exist_ok=True)
    argv = [*buildah.global_args(), "push", "--quiet", "--format", "oci", ref, f"oci:{layout_dir}:base"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=EXPORT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise HpcAnnotateError(f"base image {ref}: exporting it from buildah's store took over "
                               f"{EXPORT_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise HpcAnnotateError(f"base image {ref}: buildah push to an OCI layout failed: {tail[0]}")
    return LocalBase(layout_dir, OciLayout.open(layout_dir).find("base")["digest"])


def resolve(ref: str, options: BuildOptions, *, allow_make: bool, make: bool, work: Path,
            named: dict[str, LocalBase] | None = None) -> LocalBase | None:
    """Where the base ``ref`` is on this machine, in order: named with ``--base``, made by
    ``hpcannotate base``, in buildah's store. None: BuildKit pulls it."""
    named = named or {}
    for key in (ref, context_name(ref)):
        if key in named:
            return named[key]
    found = made_base(ref, allow_make, make)
    if found is None and make:
        found = store_base(ref, options, work / "bases")
    return found


def register(ref: str, builder: BuildxBuilder, *, allow_make: bool, make: bool, work: Path) -> Annotations | None:
    """Resolve ``ref`` and hand it to ``builder`` as a named context; returns its annotations."""
    named = {name: layout_base(spec, f"--base {name}=") for name, spec in builder.options.base_layouts.items()}
    base = resolve(ref, builder.options, allow_make=allow_make, make=make, work=work, named=named)
    if base is None:
        return None
    builder.options.build_contexts[context_name(ref)] = base.context()
    builder.base_digests[ref] = base.digest
    return base.annotations(ref)
