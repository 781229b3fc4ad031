"""``collection apply`` pushes the uncompressed layers of layout images compressed (issue 12, part 5).

Builders write plain-tar layers into layouts; pushed as they are, a registry receives them
uncompressed. Default: gzip to a registry (zstd on request), unchanged to a layout. The manifest
names the blobs the registry then holds; the config (its diff_ids) is unchanged. skopeo copies
the result back, checking every digest.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from hpcannotate.oci import media
from hpcannotate.oci.layout import OciLayout
from hpcannotate.registry import RegistryClient
from hpcannotate.retrofit.collection import apply_collection


def plain_layout(tmp_path: Path) -> Path:
    """An OCI layout of one image with one uncompressed, compressible 1 MiB layer (as buildah writes them)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"hpc container conformance\n" * 40000
        info = tarfile.TarInfo("opt/app/data.txt")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    layer = buf.getvalue()
    layout = OciLayout.create(tmp_path / "layout")
    digest = layout.put_blob(layer)
    config = media.canonical_json({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                                   "rootfs": {"type": "layers", "diff_ids": [digest]}})
    manifest = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
                "config": {"mediaType": media.OCI_CONFIG, "digest": layout.put_blob(config), "size": len(config)},
                "layers": [{"mediaType": media.OCI_LAYER_TAR, "digest": digest, "size": len(layer)}]}
    layout.put_manifest(manifest, media.OCI_MANIFEST, ref="1", platform={"architecture": "amd64", "os": "linux"})
    return tmp_path / "layout"


def collection(tmp_path: Path, layout: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"manifests:\n  - name: app\n    tag: '1'\n    manifests:\n      - image: oci:{layout}:1\n")
    return path


def pushed(registry, ref: str, digest: str) -> tuple[dict, dict]:
    with RegistryClient() as client:
        manifest = json.loads(client.get_manifest(f"{registry.host}/{ref}@{digest}").raw)
        config = json.loads(client.fetch_blob(f"{registry.host}/{ref}", manifest["config"]["digest"]))
    return manifest, config


@pytest.mark.parametrize("compression, media_type", [(None, media.OCI_LAYER_GZIP), ("zstd", media.OCI_LAYER_ZSTD)])
def test_layout_layers_are_pushed_compressed(registry, tmp_path, compression, media_type):
    layout = plain_layout(tmp_path)
    source = OciLayout.open(layout)
    source_manifest = source.read_json(source.find("1")["digest"])
    (result,) = apply_collection(collection(tmp_path, layout), push=f"{registry.host}/c", compression=compression)
    assert result.verified, result.verification
    (image,) = result.images
    manifest, config = pushed(registry, "c/app", image.digest)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == media_type
    assert layer["size"] < source_manifest["layers"][0]["size"] // 20  # it compresses
    assert manifest["config"] == source_manifest["config"]  # diff_ids unchanged: the same config blob
    assert config["rootfs"]["diff_ids"] == [source_manifest["layers"][0]["digest"]]
    assert image.transfer.bytes_copied < 10 * 1024 + layer["size"]
    assert result.compression["bytes_after"] == layer["size"]
    assert source.read_json(source.find("1")["digest"]) == source_manifest  # the layout keeps what it had
    if shutil.which("skopeo"):  # skopeo reads it back, checking every digest against the manifest
        copy = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/c/app:1",
                               f"oci:{tmp_path / 'back'}:1"], capture_output=True, text=True, timeout=120)
        assert copy.returncode == 0, copy.stderr


def test_none_and_layout_targets_keep_the_layers(registry, tmp_path):
    layout = plain_layout(tmp_path)
    (plain,) = apply_collection(collection(tmp_path, layout), push=f"{registry.host}/p", compression="none")
    manifest, _ = pushed(registry, "p/app", plain.images[0].digest)
    assert manifest["layers"][0]["mediaType"] == media.OCI_LAYER_TAR
    (local,) = apply_collection(collection(tmp_path, layout), push=f"oci:{tmp_path / 'out'}")
    out = OciLayout.open(tmp_path / "out" / "app")
    child = out.read_json(local.images[0].digest)
    assert child["layers"][0]["mediaType"] == media.OCI_LAYER_TAR and local.compression["layers"] == 0


@pytest.mark.parametrize("use_pigz", ["1", "0"])
@pytest.mark.parametrize("as_file", [True, False])
def test_gzip_blobs_unpack_to_the_layer(tmp_path, monkeypatch, use_pigz, as_file):
    """pigz (a pipe, the digest taken as bytes come out) and zlib: each blob is the layer, gzip'd."""
    import gzip
    import hashlib

    from hpcannotate.registry import compress

    if use_pigz == "1" and not shutil.which("pigz"):
        pytest.skip("pigz is not installed (.ci/system-packages.sh installs it)")
    monkeypatch.setenv("HPCANNOTATE_PIGZ", use_pigz)
    layer = bytes(range(256)) * 40000 + b"tail"  # 10 MB: several of pigz's 128 KiB blocks
    path = tmp_path / "layer"
    path.write_bytes(layer)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    manifest = {"layers": [{"mediaType": media.OCI_LAYER_TAR, "digest": digest, "size": len(layer)}]}
    store = compress.Compressed(tmp_path / "store")
    store.directory.mkdir()
    opener = (lambda d: path.open("rb")) if as_file else (lambda d: io.BytesIO(layer))  # a stream: fed by a thread
    new, changed = compress.compress_layers(manifest, "gzip", opener, store, "test")
    (out,) = new["layers"]
    blob = store.files[out["digest"]].read_bytes()
    assert changed and out["size"] == len(blob) and out["digest"] == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert gzip.decompress(blob) == layer and blob[4:8] == b"\0\0\0\0"  # no mtime in the header
    again = compress.Compressed(tmp_path / "again")
    again.directory.mkdir()
    assert compress.compress_layers(manifest, "gzip", opener, again, "test")[0] == new  # the same blob every time


def test_a_failing_compressor_is_one_clear_error(tmp_path, monkeypatch):
    from hpcannotate.errors import HpcAnnotateError
    from hpcannotate.registry import compress

    fake = tmp_path / "pigz"
    fake.write_text("#!/bin/sh\necho 'pigz: write error: No space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setenv("HPCANNOTATE_PIGZ", "1")
    out = compress._Digesting(io.BytesIO())
    with pytest.raises(HpcAnnotateError, match=r"pigz failed \(exit 1\): pigz: write error: No space left"):
        compress._gzip(io.BytesIO(b"x" * 1000), out)
