"""What `hpcannotate probe` costs on an image with 1 GiB of layers, cold and warm cache.

Pushes to a registry the bench starts on 127.0.0.1 (Debian's docker-registry):
  - "small": the busybox user land (the real base layer `hpcannotate base busybox` makes) plus a tiny layer
    with a glibc-style libc.so.6 -> libc-2.31.so link, os-release and passwd;
  - "big": the same two layers under --gib GiB of random (incompressible) data in --layers gzip layers.
Then probes, each in a fresh process so that its peak RSS (ru_maxrss) is its own:
  1. small, cold cache           (the memory baseline)
  2. big, cold cache             (every layer downloaded once, written to the cache while it is read)
  3. big, warm cache             (must fetch no blob: client stats and the registry's access log)
Checks: memory flat (big cold peak within --rss-slack MiB of small cold peak: the probe streams, it never
holds a layer), the warm run fetched 0 blobs and the registry logged no blob GET for it, and both runs
inferred the same annotations as the small image.

    python bench/probe.py [--gib 1] [--layers 4] [--rss-slack 24]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

MIB = 1024 * 1024
CHUNK = MIB


class RandomFile:
    """``size`` bytes of os.urandom, read in chunks: the data never exists whole in memory."""

    def __init__(self, size: int):
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return os.urandom(size)


def random_layer(layout, size: int, name: str):
    """A gzip layer holding one file of ``size`` random bytes, streamed into the layout."""
    from hpcannotate.oci.media import OCI_LAYER_GZIP

    writer = layout.blob_writer()
    with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"data/{name}.bin")
        info.size = size
        tar.addfile(info, RandomFile(size))
    size_written = writer.size
    return {"mediaType": OCI_LAYER_GZIP, "digest": writer.commit(), "size": size_written}


def userland_layer(layout):
    """A few files that give glibc 2.31 (by link name), debian 12, bash as root's shell."""
    from hpcannotate.oci.media import OCI_LAYER_GZIP

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, data in [
            ("dir", "lib/x86_64-linux-gnu", ""),
            ("file", "lib/x86_64-linux-gnu/libc-2.31.so", "\x7fELF"),
            ("link", "lib/x86_64-linux-gnu/libc.so.6", "libc-2.31.so"),
            ("file", "etc/os-release", "ID=debian\nVERSION_ID=12\n"),
            ("file", "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
            ("file", "bin/bash", "#!"),
        ]:
            info = tarfile.TarInfo(path)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data.encode()))
    blob = gzip.compress(out.getvalue(), mtime=0)
    return {"mediaType": OCI_LAYER_GZIP, "digest": layout.put_blob(blob), "size": len(blob)}


def image(layout, layers: list[dict], tag: str) -> None:
    from hpcannotate.oci.media import OCI_CONFIG, OCI_MANIFEST, canonical_json

    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": []}})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": layout.put_blob(config), "size": len(config)},
                "layers": layers}
    layout.put_manifest(manifest, OCI_MANIFEST, ref=tag)


def push(layout, tag: str, remote: str) -> None:
    from hpcannotate.oci.media import OCI_MANIFEST
    from hpcannotate.registry.client import RegistryClient

    desc = layout.find(tag)
    manifest = layout.read_json(desc["digest"])
    with RegistryClient() as client:
        for blob in [manifest["config"], *manifest["layers"]]:
            client.push_blob(remote, layout.blob_path(blob["digest"]), digest=blob["digest"])
        client.put_manifest(remote, layout.read_blob(desc["digest"]), OCI_MANIFEST)


def child(ref: str, cache: str) -> None:
    """One probe in this process; prints its figures as JSON."""
    from hpcannotate.image.probe import probe_image

    start = time.perf_counter()
    result = probe_image(ref, cache=cache)
    elapsed = time.perf_counter() - start
    registry = result.source.registry or {}
    print(json.dumps({
        "seconds": elapsed,
        "layer_bytes_read": result.bytes_read,
        "blobs_fetched": result.source.blobs_fetched,
        "blobs_from_cache": result.source.blobs_from_cache,
        "registry_bytes_received": registry.get("bytes_received", 0),
        "registry_requests": registry.get("by_method", {}),
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "annotations": dict(result.annotations),
    }))


def run_child(ref: str, cache: Path, registry, repo: str) -> dict:
    pattern = f"GET /v2/{repo}/blobs/"
    before = registry.log_text().count(pattern)
    proc = subprocess.run([sys.executable, __file__, "--child", ref, str(cache)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        sys.exit(f"probe of {ref} failed:\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout)
    figures["registry_log_blob_gets"] = registry.log_text().count(pattern) - before
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="random layer data in GiB")
    parser.add_argument("--layers", type=int, default=4, help="number of random layers")
    parser.add_argument("--rss-slack", type=float, default=24.0, help="MiB the big image may add to peak RSS")
    parser.add_argument("--child", nargs=2, metavar=("REF", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    from tests.fixtures.registry import start_registry, stop

    from hpcannotate.build.baseimage import make_base
    from hpcannotate.oci.layout import OciLayout

    with tempfile.TemporaryDirectory(prefix="hpcannotate-bench-probe-") as tmp:
        work = Path(tmp)
        registry, proc = start_registry(work / "registry")
        try:
            layout = OciLayout.create(work / "layout")
            busybox = OciLayout.open(make_base("busybox", cache=REPO / ".cache" / "hpcannotate"))
            base_manifest = busybox.read_json(busybox.find("latest")["digest"])
            base_layer = base_manifest["layers"][0]
            layout.put_blob(busybox.read_blob(base_layer["digest"]))
            small = [base_layer, userland_layer(layout)]
            total = int(args.gib * 1024 * MIB)
            started = time.perf_counter()
            big_layers = [random_layer(layout, total // args.layers, f"random{i}") for i in range(args.layers)]
            print(f"made {args.layers} random layers, {sum(d['size'] for d in big_layers) / MIB:.0f} MiB gzip, "
                  f"in {time.perf_counter() - started:.1f} s")
            image(layout, small, "small")
            image(layout, [*big_layers, *small], "big")
            started = time.perf_counter()
            push(layout, "small", f"{registry.host}/bench/small:1")
            push(layout, "big", f"{registry.host}/bench/big:1")
            print(f"pushed to {registry.host} in {time.perf_counter() - started:.1f} s")

            runs = [
                ("small, cold", f"{registry.host}/bench/small:1", work / "cache-small", "bench/small"),
                ("big, cold", f"{registry.host}/bench/big:1", work / "cache-big", "bench/big"),
                ("big, warm", f"{registry.host}/bench/big:1", work / "cache-big", "bench/big"),
            ]
            results = {name: run_child(ref, cache, registry, repo) for name, ref, cache, repo in runs}
        finally:
            stop(proc)

    print()
    print(f"{'run':12} {'time s':>7} {'layer MiB read':>15} {'bytes from registry':>20} {'blobs fetched':>14} "
          f"{'from cache':>11} {'blob GETs (log)':>16} {'peak RSS MiB':>13}")
    for name, r in results.items():
        print(f"{name:12} {r['seconds']:7.2f} {r['layer_bytes_read'] / MIB:15.1f} "
              f"{r['registry_bytes_received']:20d} {r['blobs_fetched']:14d} {r['blobs_from_cache']:11d} "
              f"{r['registry_log_blob_gets']:16d} {r['maxrss_mib']:13.1f}")
    small, cold, warm = results["small, cold"], results["big, cold"], results["big, warm"]
    print(f"\nthroughput: cold {cold['layer_bytes_read'] / MIB / cold['seconds']:.0f} MiB/s, "
          f"warm {warm['layer_bytes_read'] / MIB / warm['seconds']:.0f} MiB/s")
    checks = {
        f"memory flat (big cold peak - small cold peak = {cold['maxrss_mib'] - small['maxrss_mib']:.1f} MiB "
        f"<= {args.rss_slack:g})": cold["maxrss_mib"] - small["maxrss_mib"] <= args.rss_slack,
        "warm run fetched no blob (client stats)": warm["blobs_fetched"] == 0
        and warm["registry_requests"] == {"GET": 1},
        "warm run: no blob GET in the registry's log": warm["registry_log_blob_gets"] == 0,
        "cold run fetched every blob once": cold["registry_log_blob_gets"] == args.layers + 3,
        "same annotations from all runs": small["annotations"] == cold["annotations"] == warm["annotations"]
        and small["annotations"].get("org.supercontainers.glibc.version") == "2.31",
    }
    for text, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {text}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
