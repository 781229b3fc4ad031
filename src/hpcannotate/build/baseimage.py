"""Base images made locally, for machines that cannot pull one (air-gapped clusters, CI, this sandbox).

``debian:<suite>`` comes from ``debootstrap --variant=minbase`` and ``busybox``
from Debian's static busybox, ``FROM scratch``. Each is written as an OCI image
layout in the cache (made once, reused), with the base-image annotations the
seeds expect a base to carry (OS, libc, shells), then loaded into the
builder's store under the name a Dockerfile's FROM uses.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hpcannotate.cache import cache_dir  # also read here by registry.compress and bench/compress.py
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.keynames import (
    GLIBC_VERSION,
    LIBC_IMPLEMENTATION,
    OCI_TITLE,
    OS_NAME,
    OS_VERSION,
    SHELL_IMPLEMENTATION,
)
from hpcannotate.oci.layers import directory_layer
from hpcannotate.oci.layout import OciLayout
from hpcannotate.oci.media import OCI_CONFIG, OCI_MANIFEST, canonical_json
from hpcannotate.registry.platform import machine_oci_arch

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITES = {"bookworm": "12", "trixie": "13", "bullseye": "11", "sid": "unstable"}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEBOOTSTRAP_TIMEOUT = 1800


def parse_base(ref: str) -> tuple[str, str]:
    """``debian:bookworm`` -> (debian, bookworm); ``busybox[:latest]`` -> (busybox, latest)."""
    name = ref.split("/")[-1]
    if ref.startswith(("docker.io/library/", "library/")) or "/" not in ref:
        repo, _, tag = name.partition(":")
        if repo == "debian" and (tag or "bookworm") in DEBIAN_SUITES:
            return "debian", tag or "bookworm"
        if repo == "busybox":
            return "busybox", tag or "latest"
    raise InputError(f"{ref}: hpcannotate can make debian:<{'|'.join(DEBIAN_SUITES)}> and busybox locally, not this")


def _run(argv: list[str], what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise HpcAnnotateError(f"{what}: {argv[0]} is not installed (apt-get install {argv[0]})") from None
    except subprocess.TimeoutExpired:
        raise HpcAnnotateError(f"{what}: did not finish within {timeout:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise HpcAnnotateError(f"{what} failed (exit {proc.returncode}): {tail[0]}")


def _os_release(root: Path) -> dict[str, str]:
    for candidate in (root / "etc/os-release", root / "usr/lib/os-release"):
        if candidate.is_file() and not candidate.is_symlink():
            text = candidate.read_text(errors="replace")
            return {k: v.strip('"') for k, _, v in (ln.partition("=") for ln in text.splitlines()) if v}
    return {}


def _dpkg_version(root: Path, package: str) -> str | None:
    status = root / "var/lib/dpkg/status"
    if not status.is_file():
        return None
    for block in status.read_text(errors="replace").split("\n\n"):
        if re.search(rf"^Package: {re.escape(package)}$", block, re.M):
            found = re.search(r"^Version: (?:\d+:)?([0-9.]+)", block, re.M)
            return found.group(1) if found else None
    return None


def base_annotations(root: Path) -> dict[str, str]:
    """What a base image says about its user land (seed 001's layered approach: the base annotates first)."""
    result: dict[str, str] = {}
    release = _os_release(root)
    if release.get("ID"):
        result[OS_NAME] = release["ID"]
    if release.get("VERSION_ID"):
        result[OS_VERSION] = release["VERSION_ID"]
    glibc = _dpkg_version(root, "libc6")
    if glibc:
        result[LIBC_IMPLEMENTATION] = "glibc"
        result[GLIBC_VERSION] = ".".join(glibc.split(".")[:2])
    shells = [s for s in ("bash", "sh", "dash", "ash", "zsh") if (root / "bin" / s).exists()]
    if shells:
        result[SHELL_IMPLEMENTATION] = ",".join(shells)
    return result


def _debian_rootfs(suite: str, dest: Path, mirror: str) -> None:
    if os.geteuid() != 0:
        raise HpcAnnotateError("debootstrap needs root: run as root, or `sudo apt-get install debootstrap` and "
                               "`sudo hpcannotate base debian:" + suite + "`")
    _run(["debootstrap", "--variant=minbase", suite, str(dest), mirror], f"debootstrap {suite}", DEBOOTSTRAP_TIMEOUT)
    # What a container base image leaves out: apt lists and caches, device nodes the runtime creates.
    for junk in ("var/lib/apt/lists", "var/cache/apt/archives", "var/log"):
        target = dest / junk
        if target.is_dir():
            for child in target.iterdir():
                if child.is_file() and child.name != "lock":
                    child.unlink()
    dev = dest / "dev"
    if dev.is_dir():
        shutil.rmtree(dev)
        dev.mkdir()


def _busybox_rootfs(dest: Path) -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        raise HpcAnnotateError("busybox is not installed (apt-get install busybox-static)")
    probe = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False)
    if "not a dynamic executable" not in (probe.stdout + probe.stderr) and probe.returncode == 0:
        raise HpcAnnotateError(f"{busybox} is dynamically linked; a FROM scratch image needs busybox-static")
    (dest / "bin").mkdir(parents=True)
    shutil.copy2(busybox, dest / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (dest / "bin" / applet).symlink_to("busybox")
    for directory in ("etc", "tmp", "root", "usr/bin", "etc/profile.d"):
        (dest / directory).mkdir(parents=True, exist_ok=True)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\n")


def write_base_layout(rootfs: Path, layout_dir: Path, tag: str, cmd: list[str], title: str) -> dict:
    """A one-layer OCI image of ``rootfs`` with base annotations in the manifest and as labels."""
    layout = OciLayout.create(layout_dir)
    layer = directory_layer(rootfs, layout)
    annotations = {**base_annotations(rootfs), OCI_TITLE: title}
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {
        "created": created,
        "architecture": machine_oci_arch(),
        "os": "linux",
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": cmd, "Labels": annotations},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": created, "created_by": f"hpcannotate base {title}"}],
    }
    config_bytes = canonical_json(config)
    config_digest = layout.put_blob(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [layer.descriptor()],
        "annotations": annotations,
    }
    return layout.put_manifest(manifest, OCI_MANIFEST, ref=tag,
                               platform={"architecture": machine_oci_arch(), "os": "linux"})


def make_base(ref: str, *, mirror: str = DEFAULT_MIRROR, cache: Path | None = None, rebuild: bool = False) -> Path:
    """The OCI layout of base ``ref`` in the cache, made now unless it is there already."""
    kind, tag = parse_base(ref)
    layout_dir = (cache or cache_dir()) / "bases" / f"{kind}-{tag}-{machine_oci_arch()}"
    if (layout_dir / "index.json").is_file() and not rebuild:
        return layout_dir
    if layout_dir.exists():
        shutil.rmtree(layout_dir)
    layout_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"hpcannotate-{kind}-", dir=layout_dir.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        if kind == "debian":
            _debian_rootfs(tag, rootfs, mirror)
            cmd = ["/bin/bash"]
        else:
            _busybox_rootfs(rootfs)
            cmd = ["/bin/sh"]
        staging = Path(tmp) / "layout"
        write_base_layout(rootfs, staging, tag, cmd, f"{kind}:{tag}")
        os.replace(staging, layout_dir)
    return layout_dir


def describe_layout(layout_dir: Path) -> dict:
    layout = OciLayout.open(layout_dir)
    desc = next(iter(layout.descriptors()))
    manifest = layout.read_json(desc["digest"])
    return {"layout": str(layout_dir), "digest": desc["digest"], "annotations": manifest.get("annotations", {}),
            "size": sum(layer["size"] for layer in manifest["layers"])}


def store_name(ref: str) -> str:
    """The fully qualified name a Dockerfile's ``FROM ref`` resolves to in a containers store."""
    kind, tag = parse_base(ref)
    return f"docker.io/library/{kind}:{tag}"


def _name_safe_tempdir() -> Path:
    """A private temporary directory whose path is also a valid image name (lower case, no dots)."""
    parent = Path(tempfile.gettempdir())
    if not re.fullmatch(r"[a-z0-9/_-]+", str(parent)):
        parent = Path("/tmp")  # noqa: S108 - fallback when TMPDIR is no valid image name
    path = parent / f"hpcannotate-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(mode=0o700)
    return path


def load_into_buildah(layout_dir: Path, ref: str, global_args: list[str]) -> str:
    """Pull the layout into buildah's store and name it as FROM expects; returns the store name.

    buildah's image ID is the config digest, so the pulled image is tagged by it.
    """
    kind, tag = parse_base(ref)
    name = store_name(ref)
    # buildah names an image pulled from a layout after the layout's path, which fails for paths
    # that are no valid image name (~/.cache has a dot): pull through a symlink with a plain name.
    tmp = _name_safe_tempdir()
    try:
        link = tmp / f"{kind}-{tag}".lower()
        link.symlink_to(layout_dir.resolve())
        _run([*global_args, "pull", "--quiet", f"oci:{link}:{tag}"], f"buildah pull of the local {kind} base", 600)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    layout = OciLayout.open(layout_dir)
    manifest = layout.read_json(layout.find(tag)["digest"])
    image_id = manifest["config"]["digest"].split(":", 1)[1]
    _run([*global_args, "tag", image_id, name], f"buildah tag {name}", 60)
    # the pull named the image after the temporary link (localhost/tmp/hpcannotate-...); with the FROM name
    # in place, `rmi` of that name only untags it, so the store keeps no trace of the link
    # (not fatal: a name left behind costs nothing but a line in `buildah images`)
    subprocess.run([*global_args, "rmi", f"localhost{link}:{tag}"], capture_output=True, timeout=60, check=False)
    return name
