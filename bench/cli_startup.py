"""How long the CLI takes as a user starts it: `--help`, the catalogue commands, and `annotate`
as a whole process next to `crane mutate` on the same image and registry.

Targets: `hpcannotate --help` < 0.3 s; `hpcannotate annotate REF --set KEY=VALUE` within 3x of
`crane mutate REF --annotation KEY=VALUE` (median over median). Prints the median and worst of N
runs for each command, and `python -c pass` measured in the same run as the floor. The annotate
comparison needs crane (go-containerregistry) and Debian's docker-registry; it starts the registry
on 127.0.0.1 (tests/fixtures/registry.py), pushes a small OCI image with hpcannotate's own client,
and alternates the two commands on two tags of that image; without crane it says so and skips it.

It also prints the floor of a Python command on this machine: a process that imports click (the
CLI framework) and http.client, then sends the same requests `annotate` sent (taken from the
registry's access log) and reads every answer, with no parsing, checks or waits. `annotate` also
waits after its write before reading the tag back (at least SETTLE_MIN, issue 13's lost-update
check), which crane does not do; the bench prints that wait beside the floor.

    python bench/cli_startup.py [--runs N] [--check] [--baseline-exe OLD_HPCANNOTATE]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import resource
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
LOGGED = re.compile(r'"(GET|HEAD|PUT) (/v2/[^ ]+) HTTP/1\.1" (\d{3}) ')
# The floor process: what any Python command built on click and the standard library's HTTP client
# pays to send annotate's requests. argv: registry host, JSON list of [method, path], manifest file.
FLOOR_CODE = """
import http.client, json, sys
import click  # noqa: F401 - the CLI framework hpcannotate uses: its import is part of every command
host, requests, body = sys.argv[1], json.loads(sys.argv[2]), open(sys.argv[3], "rb").read()
connection = http.client.HTTPConnection(host, timeout=30)
for method, path in requests:
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"} if method == "PUT" else {
        "Accept": "application/vnd.oci.image.manifest.v1+json"}
    connection.request(method, path, body=body if method == "PUT" else None, headers=headers)
    answer = connection.getresponse()
    answer.read()
    if answer.status >= 300:
        sys.exit(f"{method} {path} -> {answer.status}")
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(argv: list[str], check: bool = True) -> tuple[float, float]:
    """(wall s, CPU s) of one run. CPU time (user + system of the child) is what the command itself
    costs; it moves far less than wall time when other work shares the machine. ``check``: the run
    must succeed (a failing command would make a fast, meaningless figure)."""
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if check and proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return wall, _children_cpu() - cpu


def medians(runs: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Median wall, worst wall, median CPU."""
    return statistics.median(w for w, _ in runs), max(w for w, _ in runs), statistics.median(c for _, c in runs)


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


def annotate_vs_crane(exe: str, crane: str, runs: int, baseline: str | None = None) -> dict[str, tuple]:
    """``medians`` of `hpcannotate annotate` (and the baseline's) and `crane mutate`, alternated, on one
    registry; each tool mutates a tag of its own holding the same image."""
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
                for tag in ("ours", "baseline", "crane", "floor"):
                    client.put_manifest(f"{repo}:{tag}", manifest, media.OCI_MANIFEST)
            commands = {"hpcannotate annotate REF --set K=V": [exe, "annotate", f"{repo}:ours", "--set"]}
            if baseline:
                commands["(baseline) annotate REF --set K=V"] = [baseline, "annotate", f"{repo}:baseline", "--set"]
            commands["crane mutate REF --annotation K=V"] = [crane, "mutate", f"{repo}:crane", "--annotation"]
            times: dict[str, list] = {name: [] for name in commands}
            for n in range(runs):
                for name, argv in commands.items():
                    key = "app.version" if argv[1] == "annotate" else KEY
                    times[name].append(once([*argv, f"{key}={n}"]))
            floor = floor_command(registry, repo, exe, Path(tmp), manifest)
            without_click = [*floor[:2], floor[2].replace("import click", "pass"), *floor[3:]]
            count = len(json.loads(floor[4]))
            times[f"floor: click + http.client, {count} requests"] = [once(floor) for _ in range(runs)]
            times[f"floor: http.client only, {count} requests"] = [once(without_click) for _ in range(runs)]
            return {name: medians(runs_) for name, runs_ in times.items()}
        finally:
            stop(proc)


def floor_command(registry, repo: str, exe: str, tmp: Path, manifest: bytes) -> list[str]:
    """The floor process's argv: the requests one more `annotate` run sends, from the registry's access log,
    replayed on a tag of their own (the PUT sends the original manifest there)."""
    before = len(registry.log_text())
    once([exe, "annotate", f"{repo}:ours", "--set", "app.version=floor"])
    path = repo.split("/", 1)[1]
    requests = [[m.group(1), m.group(2).replace(f"/{path}/manifests/ours", f"/{path}/manifests/floor")]
                for m in LOGGED.finditer(registry.log_text()[before:]) if m.group(3).startswith("2")]
    body = tmp / "floor-manifest.json"
    body.write_bytes(manifest)
    return [sys.executable, "-c", FLOOR_CODE, registry.host, json.dumps(requests), str(body)]


def settle_min() -> float:
    from hpcannotate.retrofit.annotate import SETTLE_MIN

    return SETTLE_MIN


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--baseline-exe", help="another hpcannotate (an older checkout) timed in the same runs")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("hpcannotate"))
    if not Path(exe).exists():
        exe = shutil.which("hpcannotate") or sys.exit("hpcannotate is not installed")
    os.environ.setdefault("NO_COLOR", "1")
    # As a user runs it: compiled bytecode is cached. With PYTHONDONTWRITEBYTECODE (set on some CI and
    # sandbox machines) an editable install compiles every hpcannotate module from source at each start.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    example = str(REPO / "examples" / "metahub-gromacs-mpich.yaml")
    cases = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "hpcannotate --help": [exe, "--help"],
        "hpcannotate annotate --help": [exe, "annotate", "--help"],
        "hpcannotate keys --json": [exe, "keys", "--json"],
        "hpcannotate schema": [exe, "schema"],
        "hpcannotate validate FILE": [exe, "validate", example],
    }
    if args.baseline_exe:
        cases["(baseline) hpcannotate --help"] = [args.baseline_exe, "--help"]
        cases["(baseline) hpcannotate annotate --help"] = [args.baseline_exe, "annotate", "--help"]
        cases["(baseline) hpcannotate keys --json"] = [args.baseline_exe, "keys", "--json"]
    print(f"{'command':40} {'median s':>9} {'max s':>7} {'CPU s':>7}  ({args.runs} runs each, median)")
    results, cpu = {}, {}
    for name, argv in cases.items():
        wall, worst, cpu[name] = medians([once(argv, check=False) for _ in range(args.runs)])
        results[name] = wall
        print(f"{name:40} {wall:9.3f} {worst:7.3f} {cpu[name]:7.3f}")
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
        found = annotate_vs_crane(exe, crane, args.runs, args.baseline_exe)
        print(f"\n{'whole process, same image and registry':40} {'median s':>9} {'max s':>7} {'CPU s':>7}  "
              f"({args.runs} runs each, alternated)")
        for name, (wall, worst, cpu_s) in found.items():
            print(f"{name:40} {wall:9.3f} {worst:7.3f} {cpu_s:7.3f}  ({wall / floor:.1f}x the python floor)")
        theirs = found["crane mutate REF --annotation K=V"]
        for name, (wall, _, cpu_s) in found.items():
            if not name.startswith("crane"):
                print(f"{name.split(' REF')[0].split(',')[0]} / crane mutate = {wall / theirs[0]:.2f}x wall "
                      f"({cpu_s / theirs[2]:.2f}x CPU)")
        ratio = found["hpcannotate annotate REF --set K=V"][0] / theirs[0]
        met = ratio <= TARGET_CRANE_RATIO
        print(f"target: annotate <= {TARGET_CRANE_RATIO:.0f}x crane mutate (wall): {'met' if met else 'MISSED'}")
        floor_wall = next(wall for name, (wall, _, _) in found.items() if name.startswith("floor: click"))
        settle = settle_min()
        print(f"floor + annotate's settle wait ({settle:.2f} s at least) = {floor_wall + settle:.3f} s = "
              f"{(floor_wall + settle) / theirs[0]:.2f}x crane mutate; annotate / (floor + wait) = "
              f"{found['hpcannotate annotate REF --set K=V'][0] / (floor_wall + settle):.2f}")
        ok = ok and met
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
