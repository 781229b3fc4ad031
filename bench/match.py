"""What ranking images before a pull costs: requests, bytes and time for 200 annotated images.

A local registry (Debian's docker-registry on 127.0.0.1) gets 200 annotated references, pushed
with hpcannotate's own client (blobs + manifests): 100 single images with small layers, 50
indexes of three images each (x86_64 targets and an arm64 one), and 50 single images whose
layer is 1 GiB (one blob, pushed once and mounted into the other 49 repositories). Then
`match` (the library call: concurrent reads, one client per thread, then scoring) ranks them
for a captured host, N times (default 5), and separately the 50 small and the 50 1-GiB images
of the same shape, to show that the time does not depend on layer size.

Figures: requests per reference and per platform entry (client count, checked against the
registry's access log), bytes read, wall time for all 200 (concurrent, and with one worker),
and the process's peak memory. The baseline, measured in the same run and interleaved with the
measured runs (a shared machine's load hits both alike): the same 200 references read as
``inspect`` reads them, every image config included (what ``match`` did before it read configs
only when a decision needs them). Targets: <= 3 requests per platform entry, no layer read, 1-GiB
images ranked as fast as small ones (within 1.5x, median over median), all 200 in < 0.5 s.

    python bench/match.py [--runs 5] [--jobs 16] [--host zen2-epyc7742] [--layer-mib 1024]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from bench.replay import logged_requests, replay  # noqa: E402
from tests.fixtures.registry import start_registry, stop  # noqa: E402

from hpcannotate.host import fingerprint  # noqa: E402
from hpcannotate.image.read import Transport, read_many  # noqa: E402
from hpcannotate.oci.index import build_index  # noqa: E402
from hpcannotate.oci.media import (  # noqa: E402
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
    canonical_json,
    descriptor,
    sha256_digest,
)
from hpcannotate.oci.store import Manifest  # noqa: E402
from hpcannotate.registry import RegistryClient, parse_reference  # noqa: E402
from hpcannotate.verdict.match import match, rank  # noqa: E402

P = "org.supercontainers."
TARGET_REQUESTS_PER_ENTRY = 3
TARGET_SECONDS = 0.5
TARGET_SIZE_RATIO = 1.5
X86 = ["x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4", "zen2", "zen3", "zen4", "haswell", "skylake_avx512",
       "icelake", "sapphirerapids", "cascadelake"]
ACCESS = re.compile(r'"(GET|HEAD) /v2/[^ ]*/(manifests|blobs)/(sha256:[0-9a-f]{64}|[^ ]+) ')


def annotations_for(n: int, target: str) -> dict[str, str]:
    from hpcannotate.model.targets import mode_for_target

    values = {P + "hardware.cpu.optimized.version": target, P + "hardware.cpu.optimized.mode": mode_for_target(target),
              P + "app.name": f"app{n % 20}", "org.opencontainers.image.title": f"app{n % 20}"}
    if n % 3 == 0:
        values.update({P + "mpi.implementation": "openmpi", P + "mpi.version": "4.1.5",
                       P + "mpi.portability.mode": "mpi_replace", P + "communication.framework": "ucx"})
    elif n % 3 == 1:
        values.update({P + "mpi.implementation": "mpich", P + "mpi.version": "4.1.2",
                       P + "mpi.portability.mode": "mpich_replace"})
    else:
        values[P + "mpi.implementation"] = "none"
    if n % 4 == 0:
        values.update({P + "hardware.gpu.nvidia.cuda.version": "12.4",
                       P + "hardware.gpu.nvidia.architecture": "sm_80,sm_90,compute_90"})
    return values


def small_layer(n: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = f"#!/bin/sh\necho app {n}\n".encode()
        info = tarfile.TarInfo(f"opt/app{n}/bin/run")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def big_layer(path: Path, mib: int) -> tuple[str, int]:
    """An uncompressed tar holding one file of ``mib`` MiB of zeros; returns (digest, size)."""
    import hashlib

    info = tarfile.TarInfo("opt/data/blob")
    info.size = mib * 1024 * 1024
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    hasher = hashlib.sha256()
    zeros = bytes(1024 * 1024)
    with path.open("wb") as out:
        for chunk in (header, *([zeros] * mib), bytes(1024)):  # data, then two empty 512-byte blocks
            out.write(chunk)
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest(), path.stat().st_size


def push_image(client: RegistryClient, ref: str, layer: bytes | tuple[str, int], arch: str, values: dict,
               mount_from=None, big: Path | None = None, untagged: bool = False) -> Manifest:
    """Config + layer + manifest (no tag when pushed for an index); the manifest as stored."""
    if isinstance(layer, bytes):
        layer_desc = descriptor(OCI_LAYER_TAR, layer)
        client.push_blob(ref, layer)
    else:
        digest, size = layer
        layer_desc = {"mediaType": OCI_LAYER_TAR, "digest": digest, "size": size}
        assert big is not None
        client.push_blob(ref, big, digest=digest, mount_from=mount_from)
    config = canonical_json({"architecture": arch, "os": "linux",
                             "config": {"Env": ["PATH=/opt/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                "/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh", "-l"], "Labels": values},
                             "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}})
    client.push_blob(ref, config)
    manifest = canonical_json({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": descriptor(OCI_CONFIG, config), "layers": [layer_desc],
                               "annotations": values})
    target = parse_reference(ref)
    if untagged:  # a child of an index: stored by digest only
        target = target.with_digest(sha256_digest(manifest))
    digest = client.put_manifest(target, manifest, OCI_MANIFEST)
    return Manifest(manifest, OCI_MANIFEST, digest)


def populate(registry, big_path: Path, mib: int) -> tuple[dict[str, list[str]], str]:
    """Push the 200 references; returns ({kind: [refs]}, the big layer's digest)."""
    host = registry.host
    groups: dict[str, list[str]] = {"small": [], "index": [], "big": []}
    print(f"writing a {mib} MiB layer ...", flush=True)
    big = big_layer(big_path, mib)
    first_big = parse_reference(f"{host}/bench/big-000:1.0")  # mount source (same registry)

    def single(n: int) -> str:
        ref = f"{host}/bench/small-{n:03d}:1.0"
        with RegistryClient() as client:
            push_image(client, ref, small_layer(n), "amd64", annotations_for(n, X86[n % len(X86)]))
        return ref

    def index(n: int) -> str:
        ref = f"{host}/bench/multi-{n:03d}:1.0"
        entries = []
        with RegistryClient() as client:
            for k, (target, arch) in enumerate([(X86[n % len(X86)], "amd64"), ("zen3", "amd64"),
                                                ("neoverse_n1", "arm64")]):
                values = annotations_for(n + k, target)
                manifest = push_image(client, ref, small_layer(1000 + n * 3 + k), arch, values, untagged=True)
                entries.append((manifest, f"linux/{arch}", values))
            built = build_index(entries, {"org.opencontainers.image.title": f"app{n % 20}"})
            if built.complete is not None:  # targets sharing a platform: the index match reads, stored first
                client.put_manifest(ref.rsplit(":", 1)[0] + ":1.0-all", built.complete, OCI_INDEX)
            client.put_manifest(ref, built.raw, OCI_INDEX)
        return ref

    def large(n: int) -> str:
        ref = f"{host}/bench/big-{n:03d}:1.0"
        with RegistryClient() as client:
            push_image(client, ref, big, "amd64", annotations_for(n, X86[n % len(X86)]),
                       mount_from=None if n == 0 else first_big, big=big_path)
        return ref

    start = time.perf_counter()
    groups["big"].append(large(0))  # the 1 GiB blob goes up once; the others mount it
    print(f"pushed the big layer in {time.perf_counter() - start:.1f} s; pushing the rest ...", flush=True)
    with ThreadPoolExecutor(8) as pool:
        groups["small"] = list(pool.map(single, range(100)))
        groups["index"] = list(pool.map(index, range(50)))
        groups["big"] += list(pool.map(large, range(1, 50)))
    mount = r'"POST /v2/bench/big-\d+/blobs/uploads/\?mount=sha256%3A[0-9a-f]{64}&from=bench%2Fbig-000 HTTP/1\.1" 201'
    mounted = len(re.findall(mount, registry.log_text()))
    print(f"populated 200 references in {time.perf_counter() - start:.1f} s (the big layer uploaded once, "
          f"mounted into {mounted} repositories)", flush=True)
    return groups, big[0]


def timed(refs: list[str], host_fp, jobs: int, runs: int, configs: str = "needed") -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        report = match(refs, host_fp, Transport(), workers=jobs, configs=configs)
        times.append(time.perf_counter() - start)
        assert not report.errors, report.errors[0].error
    return times


def interleaved(refs: list[str], host_fp, jobs: int, runs: int, host: str,
                logged: list[tuple[str, str]]) -> tuple[list[float], list[float], list[float]]:
    """(measured, baseline, floor) times, alternating run by run."""
    measured, baseline, floor = [], [], []
    for _ in range(runs):
        measured += timed(refs, host_fp, jobs, 1)
        baseline += timed(refs, host_fp, jobs, 1, configs="always")
        floor.append(replay(host, logged, jobs))
    return measured, baseline, floor


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--host", default="zen2-epyc7742", help="captured sysroot under tests/data/sysroots")
    parser.add_argument("--layer-mib", type=int, default=1024)
    args = parser.parse_args()
    host_fp = fingerprint(sysroot=REPO / "tests" / "data" / "sysroots" / args.host)

    with tempfile.TemporaryDirectory(prefix="hpcannotate-bench-match-") as tmp:
        registry, proc = start_registry(Path(tmp) / "registry")
        try:
            groups, big_digest = populate(registry, Path(tmp) / "big.tar", args.layer_mib)
            refs = groups["small"] + groups["index"] + groups["big"]

            # one counted pass: requests and bytes per reference, checked against the access log
            mark = len(registry.log_text())
            reads = read_many(refs, Transport(), workers=args.jobs, configs="needed")
            log = registry.log_text()[mark:]
            report = rank(reads, host_fp)
            entries = sum(len(r.entries) for r in reads)
            requests = sum(r.requests for r in reads)
            logged = len(ACCESS.findall(log))
            per_entry = max(r.requests / len(r.entries) for r in reads)
            layer_reads = log.count(f"/blobs/{big_digest}")
            configs_read = sum(1 for r in reads for e in r.entries if e.config is not None)
            small_layers = sum(1 for m in ACCESS.finditer(log) if m.group(2) == "blobs") - configs_read
            bytes_read = sum(r.bytes_received for r in reads)

            baseline_requests = sum(r.requests for r in read_many(refs, Transport(), workers=args.jobs))
            rss_before = peak_rss_mib()
            logged_pass = logged_requests(log)
            all_times, baseline_times, floor_times = interleaved(refs, host_fp, args.jobs, args.runs,
                                                                 registry.host, logged_pass)
            rss_after = peak_rss_mib()
            one_worker = timed(refs, host_fp, 1, 1)
            small_times = timed(groups["small"][:50], host_fp, args.jobs, args.runs)
            big_times = timed(groups["big"], host_fp, args.jobs, args.runs)
        finally:
            stop(proc)

    median = statistics.median
    ratio = median(big_times) / median(small_times)
    verdicts = {v: sum(1 for m in report.ranking if m.verdict == v) for v in ("green", "orange", "unknown", "red")}
    print()
    print(f"references: 200 ({len(groups['small'])} small images, {len(groups['index'])} indexes x 3, "
          f"{len(groups['big'])} images with a {args.layer_mib} MiB layer); platform entries: {entries}")
    print(f"host: {args.host} ({host_fp.cpu.target}); verdicts: {verdicts}; use: {report.use.entry.pull}")
    print(f"requests: {requests} by the client, {logged} in the registry log; {requests / 200:.2f} per reference, "
          f"{requests / entries:.2f} per platform entry on average, {per_entry:.2f} at most "
          f"(baseline, every config read: {baseline_requests})")
    print(f"configs read: {configs_read} (only where the manifest lacks a mandatory annotation)")
    print(f"bytes read: {bytes_read} ({bytes_read / entries:.0f} per entry); layer blobs read: "
          f"{layer_reads} of the {args.layer_mib} MiB layer, {small_layers} others")
    print(f"rank all 200, {args.jobs} workers: median {median(all_times):.3f} s over {args.runs} runs "
          f"(min {min(all_times):.3f}, max {max(all_times):.3f}); one worker: {one_worker[0]:.3f} s")
    print(f"baseline (every config read), same run, interleaved: median {median(baseline_times):.3f} s "
          f"(min {min(baseline_times):.3f}); ratio {median(all_times) / median(baseline_times):.2f}")
    print(f"floor (the same {len(logged_pass)} requests replayed with bare http.client, {args.jobs} threads, "
          f"same run): median {median(floor_times):.3f} s; ratio {median(all_times) / median(floor_times):.2f} "
          f"(the rest of the floor is the registry's own CPU; load average {os.getloadavg()[0]:.1f})")
    print(f"peak memory of the bench process: {rss_before:.0f} MiB before the timed runs, {rss_after:.0f} MiB after "
          f"{2 * args.runs} rankings of all 200")
    print(f"50 small vs 50 {args.layer_mib} MiB images: {median(small_times):.3f} s vs {median(big_times):.3f} s "
          f"(ratio {ratio:.2f})")
    ok = (per_entry <= TARGET_REQUESTS_PER_ENTRY and layer_reads == 0 and small_layers == 0
          and median(all_times) < TARGET_SECONDS and ratio <= TARGET_SIZE_RATIO and logged == requests)
    print(f"targets (<= {TARGET_REQUESTS_PER_ENTRY} requests per entry, no layer read, < {TARGET_SECONDS:g} s, "
          f"size ratio <= {TARGET_SIZE_RATIO:g}): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
