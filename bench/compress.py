"""How fast ``collection apply`` gzips the uncompressed layers of a layout, beside skopeo, in one run.

The image: an OCI layout whose one layer is an uncompressed tar (as buildah writes them), by
default the Debian base (``hpcannotate base debian:bookworm``'s layer, un-gzipped: 128 MB). For
each of N runs (default 3), side by side:
  A. hpcannotate's compressor (``registry.compress.compress_layers``, what ``collection apply``
     runs before a push) with pigz, when pigz is installed;
  B. the same with Python's zlib (``HPCANNOTATE_PIGZ=0``), the fallback;
  C. ``skopeo copy --dest-compress --dest-compress-format gzip oci:PLAIN oci:OUT`` (containers/image,
     parallel gzip), the baseline.
Every blob A and B make is checked: it un-gzips to the layer's bytes (digest compared), and the
manifest names its digest and size. Prints the medians, sizes and the ratios to C.

    python bench/compress.py [--layout DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpcannotate.oci import media
from hpcannotate.oci.layout import OciLayout
from hpcannotate.registry import compress


def plain_layout(source: Path, dest: Path) -> tuple[Path, dict]:
    """``source``'s image with every gzip layer stored uncompressed; returns the layout and manifest."""
    src = OciLayout.open(source)
    out = OciLayout.create(dest)
    desc = src.find(None)
    manifest = src.read_json(desc["digest"])
    layers = []
    for layer in manifest["layers"]:
        with gzip.open(src.blob_path(layer["digest"]), "rb") as fh:
            writer = out.blob_writer()
            shutil.copyfileobj(fh, writer, 1 << 20)  # type: ignore[misc]
            layers.append({"mediaType": media.OCI_LAYER_TAR, "digest": writer.commit(), "size": writer.size})
    config = src.read_blob(manifest["config"]["digest"])
    out.put_blob(config)
    plain = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
             "config": {"mediaType": media.OCI_CONFIG, "digest": manifest["config"]["digest"], "size": len(config)},
             "layers": layers}
    out.put_manifest(plain, media.OCI_MANIFEST, ref="plain", platform=desc.get("platform"))
    return dest, plain


def ours(layout: Path, manifest: dict, use_pigz: bool) -> tuple[float, int]:
    """Seconds and compressed bytes of one compress_layers run, each blob checked."""
    os.environ["HPCANNOTATE_PIGZ"] = "1" if use_pigz else "0"
    store = compress.Compressed(Path(tempfile.mkdtemp(prefix="bench-compress-")))
    lay = OciLayout.open(layout)
    try:
        start = time.perf_counter()
        new, changed = compress.compress_layers(manifest, "gzip", lambda d: lay.blob_path(d).open("rb"), store, "bench")
        seconds = time.perf_counter() - start
        assert changed
        for old, layer in zip(manifest["layers"], new["layers"], strict=True):
            path = store.files[layer["digest"]]
            assert layer["mediaType"] == media.OCI_LAYER_GZIP and layer["size"] == path.stat().st_size
            assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == layer["digest"]
            sha = hashlib.sha256()
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
            assert "sha256:" + sha.hexdigest() == old["digest"], "the blob does not un-gzip to the layer"
        return seconds, store.bytes_after
    finally:
        store.cleanup()


def skopeo(layout: Path) -> tuple[float, int]:
    out = Path(tempfile.mkdtemp(prefix="bench-skopeo-"))
    try:
        start = time.perf_counter()
        subprocess.run(["skopeo", "copy", "-q", "--dest-compress", "--dest-compress-format", "gzip",
                        f"oci:{layout}:plain", f"oci:{out}:plain"], check=True, timeout=600)
        seconds = time.perf_counter() - start
        index = json.loads((out / "index.json").read_text())
        digest = index["manifests"][0]["digest"]
        manifest = json.loads((out / "blobs" / "sha256" / digest.split(":")[1]).read_text())
        assert all(layer["mediaType"] == media.OCI_LAYER_GZIP for layer in manifest["layers"])
        return seconds, sum(layer["size"] for layer in manifest["layers"])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    from hpcannotate.cache import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, help="an OCI layout of one image (default: the Debian base)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source = args.layout or next(iter(sorted((cache_dir() / "bases").glob("debian-*"))), None)
    if source is None:
        print("no layout: pass --layout or run `hpcannotate base debian:bookworm` first", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    try:
        layout, manifest = plain_layout(source, work / "plain")
        size = sum(layer["size"] for layer in manifest["layers"])
        cases = {"C skopeo copy --dest-compress (baseline)": lambda: skopeo(layout),
                 f"B hpcannotate, Python zlib -{compress.GZIP_LEVEL}": lambda: ours(layout, manifest, False)}
        if compress.pigz():
            cases[f"A hpcannotate, pigz -{compress.GZIP_LEVEL}"] = lambda: ours(layout, manifest, True)
        else:
            print("pigz is not installed: case A skipped (apt-get install pigz)")
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, run in cases.items():  # interleaved: load on the machine hits every case alike
                results[name].append(run())
        base = statistics.median(s for s, _ in results[next(iter(cases))])
        print(f"{size / 1e6:.0f} MB uncompressed in {len(manifest['layers'])} layer(s), {os.cpu_count()} CPUs, "
              f"{args.runs} runs, medians:")
        for name in sorted(results):
            seconds = statistics.median(s for s, _ in results[name])
            out = results[name][0][1]
            print(f"  {name:44s} {seconds:6.2f} s  {out / 1e6:6.1f} MB  x{seconds / base:.2f} of skopeo's time")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
