"""How long the CLI takes as a user starts it: `--help`, the catalogue commands, and `annotate`
as a whole process next to `crane mutate` on the same image and registry.

Targets: `hpcannotate --help` < 0.3 s; `hpcannotate annotate REF --set KEY=VALUE` within 3x of
`crane mutate REF --annotation KEY=VALUE` (median over median). Prints the median and worst of N
runs for each command, and `python -c pass` measured in the same run as the floor. The annotate
comparison needs crane (go-containerregistry) and Debian's docker-registry; it starts the registry
on 127.0.0.1 (tests/fixtures/registry.py), pushes a small OCI image with hpcannotate's own client,
and alternates the two commands on two tags of that image; without crane it says so and skips it.

    python bench/cli_startup.py [--runs N] [--check]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_HELP_S = 0.3
TARGET_CRANE_RATIO = 3.0
KEY = "org.supercontainers.app.version"


def timed(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times


def once(argv: list[str]) -> float:
    """One timed run that must succeed (a failing command would make a fast, meaningless figure)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return seconds


def find_crane() -> str | None:
    return shutil.which("crane") or next(
        (str(p) for p in (Path.home() / "go" / "bin" / "crane",) if p.exists()), None)


def small_image() -> tuple[bytes, bytes, bytes]:
    """A one-file gzip layer, its config and an OCI manifest (bytes), as a curator's small image."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"hello from the start-up bench\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    from hpcannotate.oci import media

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [media.sha256_digest(raw.getvalue())]}}).encode()
    manifest = media.canonical_json({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": media.descriptor(media.OCI_CONFIG, config),
        "layers": [media.descriptor(media.OCI_LAYER_GZIP, layer)],
    })
    return layer, config, manifest


def annotate_vs_crane(exe: str, crane: str, runs: int) -> tuple[float, float]:
    """Medians (s) of `hpcannotate annotate` and `crane mutate`, alternated, on one registry."""
    from tests.fixtures.registry import start_registry, stop

    from hpcannotate.oci import media
    from hpcannotate.registry import RegistryClient

    with tempfile.TemporaryDirectory(prefix="hpcannotate-startup-") as tmp:
        registry, proc = start_registry(Path(tmp) / "registry")
        try:
            repo = f"{registry.host}/bench/small"
            layer, config, manifest = small_image()
            with RegistryClient() as client:
                for blob in (layer, config):
                    client.push_blob(f"{repo}:ours", blob)
                for tag in ("ours", "crane"):  # the same image under two tags: each tool mutates its own
                    client.put_manifest(f"{repo}:{tag}", manifest, media.OCI_MANIFEST)
            ours, theirs = [], []
            for n in range(runs):
                ours.append(once([exe, "annotate", f"{repo}:ours", "--set", f"app.version={n}"]))
                theirs.append(once([crane, "mutate", f"{repo}:crane", "--annotation", f"{KEY}={n}"]))
            return statistics.median(ours), statistics.median(theirs)
        finally:
            stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("hpcannotate"))
    if not Path(exe).exists():
        exe = shutil.which("hpcannotate") or sys.exit("hpcannotate is not installed")
    os.environ.setdefault("NO_COLOR", "1")
    example = str(REPO / "examples" / "metahub-gromacs-mpich.yaml")
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "hpcannotate --help": [exe, "--help"],
        "hpcannotate annotate --help": [exe, "annotate", "--help"],
        "hpcannotate keys --json": [exe, "keys", "--json"],
        "hpcannotate schema": [exe, "schema"],
        "hpcannotate validate FILE": [exe, "validate", example],
    }
    print(f"{'command':32} {'median s':>9} {'max s':>7}  ({args.runs} runs each)")
    results = {}
    for name, argv in cases.items():
        times = timed(argv, args.runs)
        results[name] = statistics.median(times)
        print(f"{name:32} {statistics.median(times):9.3f} {max(times):7.3f}")
    floor = results["python -c pass (floor)"]
    ok = results["hpcannotate --help"] < TARGET_HELP_S
    print(f"--help median {results['hpcannotate --help']:.3f} s ({results['hpcannotate --help'] / floor:.1f}x "
          f"the python floor), target < {TARGET_HELP_S} s: {'OK' if ok else 'OVER TARGET'}")
    crane = find_crane()
    if crane is None:
        print("annotate vs crane mutate: not measured (crane is not installed)")
    elif not (shutil.which("docker-registry") or shutil.which("registry")):
        print("annotate vs crane mutate: not measured (docker-registry is not installed)")
    else:
        ours, theirs = annotate_vs_crane(exe, crane, args.runs)
        ratio = ours / theirs
        met = ratio <= TARGET_CRANE_RATIO
        print(f"\n{'whole process, same image and registry':40} {'median s':>9}  ({args.runs} runs each, alternated)")
        print(f"{'hpcannotate annotate REF --set K=V':40} {ours:9.3f}  ({ours / floor:.1f}x the python floor)")
        print(f"{'crane mutate REF --annotation K=V':40} {theirs:9.3f}")
        print(f"annotate / crane mutate = {ratio:.2f}x, target <= {TARGET_CRANE_RATIO:.0f}x: "
              f"{'met' if met else 'MISSED'}")
        ok = ok and met
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
