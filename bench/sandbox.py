"""Per-recipe cost of the bubblewrap sandbox: ``hpcannotate infer`` on one recipe, with and without it.

Times a worker that does nothing, in the sandbox and without (what one sandbox costs, alone), and
runs the real console script on one HPCCM recipe and one easyconfig, alternating
``HPCANNOTATE_SANDBOX=off`` (the baseline: a plain worker process) and ``=require`` (the worker
in bwrap), and prints the median wall time of each and the difference: what one sandbox costs a
command that evaluates one recipe. A corpus pays it once per worker (see bench/infer_corpus.py).

    python bench/sandbox.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = {
    "HPCCM recipe": ["--format", "hpccm", str(REPO / "tests" / "data" / "hpccm" / "include_main.py")],
    "easyconfig": ["--format", "easybuild", "GROMACS-2023.3-foss-2023a.eb"],
}
TARGET_SECONDS = 0.25  # what the sandbox may add to one command


def cli() -> str:
    beside = Path(sys.executable).with_name("hpcannotate")
    return str(beside) if beside.exists() else shutil.which("hpcannotate") or sys.exit("hpcannotate is not installed")


def once(argv: list[str], mode: str) -> float:
    env = {**os.environ, "HPCANNOTATE_SANDBOX": mode}
    started = time.perf_counter()
    done = subprocess.run([cli(), "infer", "--json", *argv], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"infer {' '.join(argv)} with HPCANNOTATE_SANDBOX={mode} failed: {done.stderr.strip()}")
    return elapsed


def worker_round_trip(sandboxed: bool) -> float:
    """One worker that does nothing (it imports hpcannotate, answers, exits): the sandbox's own cost."""
    from hpcannotate.recipes.isolation import run_isolated

    started = time.perf_counter()
    run_isolated("hpcannotate.recipes.sandbox:_collapse", {}, what="empty worker", sandboxed=sandboxed)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each (median reported)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the sandbox adds more than the target")
    args = parser.parse_args(argv)
    print(f"{'':16}{'no sandbox s':>14}{'sandbox s':>11}{'added s':>9}   (median of {args.runs}, alternating)")
    empty: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.runs * 3):
        for sandboxed in empty:
            empty[sandboxed].append(worker_round_trip(sandboxed))
    off, on = statistics.median(empty[False]), statistics.median(empty[True])
    added = on - off
    print(f"{'empty worker':16}{off:>14.3f}{on:>11.3f}{added:>+9.3f}   (median of {args.runs * 3})")
    for label, recipe in RECIPES.items():
        once(recipe, "require")  # warm the page cache for both
        times: dict[str, list[float]] = {"off": [], "require": []}
        for _ in range(args.runs):
            for mode in times:
                times[mode].append(once(recipe, mode))
        off, on = statistics.median(times["off"]), statistics.median(times["require"])
        print(f"{label:16}{off:>14.3f}{on:>11.3f}{on - off:>+9.3f}")
    met = added <= TARGET_SECONDS  # the recipes' rows vary with their own run time; the empty worker does not
    print(f"target (the sandbox adds <= {TARGET_SECONDS:g} s to a worker): {'met' if met else 'MISSED'}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
