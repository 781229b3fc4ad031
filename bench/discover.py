"""How fast `discover` crawls a registry, beside crane/skopeo reading the same references.

N generated images (tests/fixtures/sitedata.py: real OCI manifests, configs and one tiny shared
layer, pushed with hpcannotate's client) go into Debian's docker-registry on 127.0.0.1. Then:
  A. discover, first run (catalog, tag lists, every manifest and config): time, requests, bytes;
  B. discover again with A's catalog (one HEAD per tag): time, requests;
  C. peak Python memory (tracemalloc) of a first run, and how much of it is the catalog kept at the
     end: flat means what is in flight (peak - kept) stays small and does not grow with N (run
     with --refs 250 and 1000 to compare);
  A'. the floor: A's requests, taken from the registry's access log and replayed with bare
     http.client (bench/replay.py), to tell the client's cost from the registry's;
  D. baselines from the same run: `crane catalog` + `crane manifest` and `skopeo inspect --raw`
     for a sample of references, one process per reference as a shell script would do it,
     extrapolated to N.
Target: N=1000 in under 10 s (A).

    python bench/discover.py [--refs 1000] [--apps 50] [--sample 40] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from bench.replay import logged_requests, replay  # noqa: E402
from tests.fixtures import sitedata  # noqa: E402
from tests.fixtures.registry import start_registry, stop  # noqa: E402

from hpcannotate.image.read import Transport  # noqa: E402
from hpcannotate.verdict.discover import discover  # noqa: E402

TARGET_SECONDS = 10.0
CRANE = Path("/root/go/bin/crane")


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process (the registry), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline(tool: str, host: str, refs: list[str]) -> float | None:
    """Seconds per reference of one external process per reference (manifest only; crane adds its catalog)."""
    if tool == "crane":
        exe = shutil.which("crane") or (str(CRANE) if CRANE.exists() else None)
        if exe is None:
            return None
        start = time.perf_counter()
        subprocess.run([exe, "catalog", host, "--insecure"], check=True, capture_output=True)
        for ref in refs:
            subprocess.run([exe, "manifest", ref, "--insecure"], check=True, capture_output=True)
        return (time.perf_counter() - start) / len(refs)
    exe = shutil.which("skopeo")
    if exe is None:
        return None
    start = time.perf_counter()
    for ref in refs:
        subprocess.run([exe, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], check=True,
                       capture_output=True)
    return (time.perf_counter() - start) / len(refs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=1000)
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--sample", type=int, default=40, help="references the baselines read")
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--registry-cache", action=argparse.BooleanOptionalAction, default=True,
                        help="the registry's in-memory blob descriptor cache, as Debian's config.yml has it")
    parser.add_argument("--check", action="store_true", help=f"exit 1 unless A takes < {TARGET_SECONDS} s")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        # Debian's config.yml has this cache; docker-registry reads the setting from its environment too.
        cache_env = "REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR"
        saved = os.environ.pop(cache_env, None)
        if args.registry_cache:
            os.environ[cache_env] = "inmemory"
        try:
            registry, proc = start_registry(Path(tmp) / "registry")
        finally:
            os.environ.pop(cache_env, None)
            if saved is not None:
                os.environ[cache_env] = saved
        try:
            images = sitedata.generate(args.refs, apps=args.apps)
            start = time.perf_counter()
            sitedata.push(registry.host, images)
            print(f"pushed {len(images)} images into {len(set(i.repository for i in images))} repositories "
                  f"in {time.perf_counter() - start:.1f} s (not measured)")
            transport = Transport()

            cpu0, reg0, mark = cpu_self(), cpu_of(proc.pid), len(registry.log_text())
            first = discover(registry.host, transport, workers=args.jobs)
            a = first.stats
            cpu_a, reg_a = cpu_self() - cpu0, cpu_of(proc.pid) - reg0
            logged = logged_requests(registry.log_text()[mark:])
            reg0 = cpu_of(proc.pid)
            floor = replay(registry.host, logged, args.jobs)
            reg_floor = cpu_of(proc.pid) - reg0
            cpu0, reg0 = cpu_self(), cpu_of(proc.pid)
            second = discover(registry.host, transport, previous=first, workers=args.jobs)
            b = second.stats
            cpu_b, reg_b = cpu_self() - cpu0, cpu_of(proc.pid) - reg0

            tracemalloc.start()
            traced = discover(registry.host, transport, workers=args.jobs)
            kept, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del traced
            size = len(json.dumps(first.to_json(), separators=(",", ":")))

            sample = [f"{registry.host}/{i.repository}:{i.tag}" for i in images[:: max(1, len(images) // args.sample)]]
            sample = sample[: args.sample]
            crane = baseline("crane", registry.host, sample)
            skopeo = baseline("skopeo", registry.host, sample)
        finally:
            stop(proc)

    print(f"\nreferences: {a.references} ({a.entries} images, {a.repositories} repositories), jobs {args.jobs}, "
          f"registry cache {'on' if args.registry_cache else 'off'}")
    print(f"A discover, first run:   {a.seconds:6.2f} s  {a.requests:6d} requests  {a.bytes_received:9d} bytes "
          f"received  {a.references / a.seconds:7.0f} refs/s")
    print(f"  CPU: discover {cpu_a:.2f} s, the registry {reg_a:.2f} s; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (wall time on a shared machine is what is left of them)")
    print(f"  floor: the same {len(logged)} requests replayed with bare http.client ({args.jobs} threads, same run): "
          f"{floor:.2f} s, the registry {reg_floor:.2f} s CPU; discover / floor = {a.seconds / floor:.2f}")
    print(f"B discover, incremental: {b.seconds:6.2f} s  {b.requests:6d} requests  {b.bytes_received:9d} bytes "
          f"received  ({b.reused} unchanged, {b.read} read)")
    print(f"C peak Python memory of a first run: {peak / 1e6:.1f} MB, of which {kept / 1e6:.1f} MB is the catalog "
          f"kept at the end ({kept / a.references / 1e3:.1f} kB/ref); in flight: {(peak - kept) / 1e6:.1f} MB. "
          f"Catalog JSON: {size / 1e6:.1f} MB")
    print(f"  CPU: discover {cpu_b:.2f} s, the registry {reg_b:.2f} s")
    for name, per_ref in (("crane catalog + crane manifest", crane), ("skopeo inspect --raw", skopeo)):
        if per_ref is None:
            print(f"D {name}: not installed")
            continue
        est = per_ref * a.references
        print(f"D {name}: {per_ref * 1e3:.0f} ms/ref on {len(sample)} refs, {est:.1f} s for {a.references} "
              f"(manifests only, no config) -> discover is {est / a.seconds:.1f}x faster")
    ok = a.seconds < TARGET_SECONDS
    print(f"\ntarget: {args.refs} references in < {TARGET_SECONDS:.0f} s: {'met' if ok else 'MISSED'} "
          f"({a.seconds:.2f} s)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
