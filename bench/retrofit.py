"""What a retrofit costs next to re-pushing the image: bytes sent, requests, time.

An image with 1 GiB of random layers (gzip streams of tar files, made here and pushed with
hpcannotate's own client: push_blob + a manifest) goes into a local registry (Debian's
docker-registry on 127.0.0.1). Then, side by side, N times each (default 3):
  A. `annotate` (the library call, and the `hpcannotate annotate` command when registered):
     a new manifest, no blob; and `annotate --labels`: the config's labels too (one small
     config blob), checked visible with `skopeo inspect`;
  B. re-pushing the image with `skopeo copy oci:LAYOUT docker://...` into a fresh repository,
     which is what changing anything costs without a retrofit (every layer goes up again);
  C. `crane mutate REF --annotation k=v` where crane is installed.
Bytes are counted on the wire by a TCP relay in front of the registry (client -> registry);
requests from the registry's own access log. Targets: A (with and without --labels) sends
< 16 KiB and is >= 100x faster than B (median over median). `--faults N` also runs N
retrofits through the fault-injecting proxy of tests/test_retrofit_faults.py and prints the outcomes.

    python bench/retrofit.py [--size-mib 1024] [--layers 8] [--runs 3] [--faults 1000] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from tests.fixtures.registry import start_registry, stop  # noqa: E402

from hpcannotate.oci import media  # noqa: E402
from hpcannotate.oci.layout import OciLayout  # noqa: E402
from hpcannotate.registry import RegistryClient  # noqa: E402
from hpcannotate.retrofit.annotate import annotate  # noqa: E402

TARGET_BYTES = 16 * 1024
TARGET_SPEEDUP = 100.0
CHUNK = 1024 * 1024
ACCESS = re.compile(r'^\S+ - - \[[^\]]+\] "(GET|HEAD|PUT|POST|PATCH|DELETE) ', re.M)


class CountingRelay:
    """A TCP relay to the registry that counts the bytes each side sends (a new port per instance)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.sent = 0  # client -> registry
        self.received = 0  # registry -> client
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
                with self.lock:
                    if upstream:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.open = False
        self.listener.close()


@dataclass
class Run:
    name: str
    seconds: float
    sent: int
    requests: int


class _Hashing(io.RawIOBase):
    def __init__(self, fh):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.fh.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def make_layer(path: Path, size: int, n: int) -> tuple[str, int, str]:
    """A gzip (stored blocks: random data does not compress) of a tar holding ``size`` random bytes."""
    with path.open("wb") as fh:
        outer = _Hashing(fh)
        inner = hashlib.sha256()
        with gzip.GzipFile(fileobj=outer, mode="wb", compresslevel=0, mtime=0) as gz:
            info = tarfile.TarInfo(f"data/layer{n}.bin")
            info.size, info.mode, info.mtime = size, 0o644, 0
            header = info.tobuf(format=tarfile.PAX_FORMAT)
            for block in (header, *(os.urandom(min(CHUNK, size - o)) for o in range(0, size, CHUNK)),
                          b"\0" * ((512 - size % 512) % 512), b"\0" * 1024):
                gz.write(block)
                inner.update(block)
    return "sha256:" + outer.sha.hexdigest(), outer.size, "sha256:" + inner.hexdigest()


def make_image(work: Path, total: int, layers: int) -> tuple[Path, bytes, bytes]:
    """Layer files, config and manifest bytes; also an OCI layout of the image (skopeo's source)."""
    layout = OciLayout.create(work / "layout")
    (layout.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    descriptors, diff_ids = [], []
    for n in range(layers):
        tmp = work / f"layer{n}.tar.gz"
        digest, size, diff_id = make_layer(tmp, total // layers, n)
        os.replace(tmp, layout.blob_path(digest))
        descriptors.append({"mediaType": media.OCI_LAYER_GZIP, "digest": digest, "size": size})
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"bench": "retrofit"}},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = layout.put_blob(config)
    manifest = media.canonical_json({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": descriptors, "annotations": {"org.example.keep": "yes"},
    })
    layout.put_manifest(json.loads(manifest), media.OCI_MANIFEST, "bench")
    return layout.path, config, manifest


def push(client: RegistryClient, ref: str, layout: Path, manifest: bytes) -> None:
    data = json.loads(manifest)
    oci = OciLayout.open(layout)
    for desc in [data["config"], *data["layers"]]:
        client.push_blob(ref, oci.blob_path(desc["digest"]), digest=desc["digest"])
    client.put_manifest(ref, manifest, media.OCI_MANIFEST)


def requests_in(log: Path, mark: int) -> int:
    return len(ACCESS.findall(log.read_text(errors="replace")[mark:]))


def measure(name: str, registry, action) -> Run:
    relay = CountingRelay(("127.0.0.1", int(registry.host.rsplit(":", 1)[1])))
    mark = len(registry.log_text())
    try:
        start = time.perf_counter()
        action(relay.host)
        seconds = time.perf_counter() - start
        time.sleep(0.2)  # the registry writes its access log line after answering
        return Run(name, seconds, relay.sent, requests_in(registry.log, mark))
    finally:
        relay.close()


def cli_available(exe: str) -> bool:
    probe = subprocess.run([exe, "annotate", "--help"], capture_output=True, text=True, check=False)
    return probe.returncode == 0


def run_checked(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv[:5])} ...\n{proc.stderr[-2000:]}")


def fault_runs(registry, count: int, seed: int) -> None:
    """``count`` retrofits of a small two-image index through the fault proxy of the test suite."""
    from tests.test_registry_client import push_index
    from tests.test_retrofit import Images
    from tests.test_retrofit_faults import KEEP, run_retrofits

    with RegistryClient() as client:
        push_index(client, f"{registry.host}/bench/faults:index")
        index = json.loads(client.get_manifest(f"{registry.host}/bench/faults:index").raw)
        for desc in index["manifests"]:  # the children carry a key every retrofit must keep
            child = json.loads(client.get_manifest(f"{registry.host}/bench/faults@{desc['digest']}").raw)
            child["annotations"] = {**child.get("annotations", {}), KEEP: "yes"}
            raw = media.canonical_json(child)
            desc.update(digest=client.put_manifest(f"{registry.host}/bench/faults@{media.sha256_digest(raw)}",
                                                   raw, media.OCI_MANIFEST), size=len(raw))
        client.put_manifest(f"{registry.host}/bench/faults:index", media.canonical_json(index), media.OCI_INDEX)
    start = time.perf_counter()
    outcomes = run_retrofits(Images(registry, "bench/faults", Path()), count, seed)
    print(f"\n{count} retrofits through the fault proxy in {time.perf_counter() - start:.1f} s (seed {seed}):")
    for name, value in sorted(outcomes.items()):
        print(f"  {name:32} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="total size of the random layers")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faults", type=int, default=0, help="retrofits through the fault proxy (0: none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if not shutil.which("skopeo"):
        sys.exit("skopeo is not installed (apt-get install skopeo)")
    exe = str(Path(sys.executable).with_name("hpcannotate"))
    crane = shutil.which("crane")
    os.environ.setdefault("NO_COLOR", "1")

    with tempfile.TemporaryDirectory(prefix="hpcannotate-bench-") as tmp:
        work = Path(tmp)
        registry, proc = start_registry(work / "registry")
        try:
            started = time.perf_counter()
            layout, _, manifest = make_image(work, args.size_mib * 1024 * 1024, args.layers)
            ref = f"{registry.host}/bench/image"
            with RegistryClient() as client:
                push(client, f"{ref}:v1", layout, manifest)
                for n in range(args.runs):  # one tag per run, so every run starts from the same image
                    client.put_manifest(f"{ref}:run{n}", manifest, media.OCI_MANIFEST)
                    client.put_manifest(f"{ref}:labels{n}", manifest, media.OCI_MANIFEST)
            print(f"image: {args.size_mib} MiB in {args.layers} layers, made and pushed in "
                  f"{time.perf_counter() - started:.1f} s")
            use_cli = cli_available(exe)
            results: dict[str, list[Run]] = {}
            for n in range(args.runs):
                def lib(host: str, n: int = n) -> None:
                    result = annotate(f"{host}/bench/image:run{n}", set={"org.supercontainers.app.version": f"{n}"})
                    assert result.verified, result.verification

                results.setdefault("annotate (library)", []).append(measure("annotate (library)", registry, lib))

                def lib_labels(host: str, n: int = n) -> None:
                    result = annotate(f"{host}/bench/image:labels{n}", labels=True,
                                      set={"org.supercontainers.app.version": f"{n}"})
                    assert result.verified, result.verification

                results.setdefault("annotate --labels", []).append(measure("annotate --labels", registry, lib_labels))
                if use_cli:
                    def cli(host: str, n: int = n) -> None:
                        run_checked([exe, "annotate", f"{host}/bench/image:run{n}", "--set", f"app.name=cli{n}"])

                    results.setdefault("hpcannotate annotate", []).append(
                        measure("hpcannotate annotate", registry, cli))

                def skopeo(host: str, n: int = n) -> None:
                    run_checked(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:bench",
                                 f"docker://{host}/bench/repush{n}:v1"])

                results.setdefault("skopeo copy (re-push)", []).append(measure("skopeo copy (re-push)", registry,
                                                                              skopeo))
                if crane:
                    def crane_mutate(host: str, n: int = n) -> None:
                        run_checked([crane, "mutate", f"{host}/bench/image:run{n}", "--annotation", f"k{n}=v"])

                    results.setdefault("crane mutate", []).append(measure("crane mutate", registry, crane_mutate))
            print(f"\n{'':24}{'bytes sent':>14}{'requests':>10}{'time (s)':>11}   (median of {args.runs})")
            medians = {}
            for name, runs in results.items():
                sec = statistics.median(r.seconds for r in runs)
                sent = int(statistics.median(r.sent for r in runs))
                reqs = int(statistics.median(r.requests for r in runs))
                medians[name] = (sec, sent)
                print(f"{name:24}{sent:>14,}{reqs:>10}{sec:>11.3f}")
            if not crane:
                print(f"{'crane mutate':24}{'(crane is not installed)':>35}")
            seen = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}:labels0"],
                                  capture_output=True, text=True, check=False)
            visible = seen.returncode == 0 and \
                json.loads(seen.stdout)["Labels"].get("org.supercontainers.app.version") == "0"
            print(f"skopeo inspect sees the --labels retrofit's label: {'yes' if visible else 'NO'}")
            labels_sent = medians["annotate --labels"][1]
            annotate_s, annotate_sent = medians["annotate (library)"]
            skopeo_s, skopeo_sent = medians["skopeo copy (re-push)"]
            speedup = skopeo_s / annotate_s
            print(f"\nannotate vs re-push: {speedup:,.0f}x faster, {skopeo_sent / max(annotate_sent, 1):,.0f}x fewer "
                  f"bytes sent")
            ok_bytes = annotate_sent < TARGET_BYTES and labels_sent < TARGET_BYTES and visible
            ok_speed = speedup >= TARGET_SPEEDUP
            print(f"target: < {TARGET_BYTES // 1024} KiB sent: {'met' if ok_bytes else 'MISSED'} "
                  f"({annotate_sent:,} bytes; with --labels {labels_sent:,}); >= {TARGET_SPEEDUP:.0f}x faster: "
                  f"{'met' if ok_speed else 'MISSED'}")
            if "hpcannotate annotate" in medians:
                cli_s = medians["hpcannotate annotate"][0]
                print(f"(the command, Python start-up included: {cli_s:.3f} s, {skopeo_s / cli_s:,.0f}x faster)")
            if args.faults:
                fault_runs(registry, args.faults, args.seed)
        finally:
            stop(proc)
    return 0 if (not args.check or (ok_bytes and ok_speed)) else 1


if __name__ == "__main__":
    sys.exit(main())
