"""Corpus bench: the EasyBuild adapter over every easyconfig of the installed easybuild-easyconfigs.

Runs, in the same process and on the same files, side by side:

1. the raw parser alone: ``EasyConfigParser(path).get_config_dict()`` in the same worker layout
   (one ``run_isolated`` worker per core, a batch each), without the sandbox: the floor any
   adapter can reach;
2. the same raw parser in the bubblewrap sandbox (one sandbox per worker): what the sandbox costs;
3. the adapter: ``EasyBuildAdapter.infer_many`` (parse, toolchain resolution, Inference objects with
   provenance, the easyconfig as base64), the code ``hpcannotate infer`` runs, in the sandbox
   (as ``HPCANNOTATE_SANDBOX`` says).

Prints files, files/s, failures (with examples), wall time, peak memory (this process and its
children) and the adapter/raw ratio. Target: every file parses, in < 20 s on a 2-core machine,
within about 2x of the raw parser.

    python bench/infer_corpus.py [--workers N] [--limit N] [--tree DIR] [--check]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.recipes import sandbox
from hpcannotate.recipes.base import InferOptions
from hpcannotate.recipes.easybuild.adapter import EasyBuildAdapter, backstop_timeout
from hpcannotate.recipes.easybuild.evaluate import installed_easyconfigs, tree_root
from hpcannotate.recipes.isolation import run_isolated

TARGET_SECONDS = 20.0
TARGET_RATIO = 2.0


def corpus(tree: Path | None, limit: int | None) -> list[Path]:
    trees = [tree.resolve()] if tree else [Path(t) for t in installed_easyconfigs()]
    if not trees:
        sys.exit("easybuild-easyconfigs is not installed (no <prefix>/easybuild/easyconfigs); give --tree")
    files = sorted(p for t in trees for p in t.rglob("*.eb"))
    return files[:limit] if limit else files


def warm_cache(files: list[Path]) -> float:
    """Read every file once so that neither contender pays for cold page cache."""
    started = time.perf_counter()
    for path in files:
        path.read_bytes()
    return time.perf_counter() - started


def raw_parser(files: list[Path], workers: int, sandboxed: bool = False) -> tuple[float, int]:
    """Wall time and failures of EasyConfigParser alone, in the adapter's worker layout."""
    chunks = [[str(p) for p in files[start::workers]] for start in range(workers)]
    options = InferOptions()
    trees = sorted({tree_root(str(p)) or str(p.parent) for p in files})  # what the adapter's sandbox shows

    def run(chunk: list[str]) -> dict:
        return run_isolated("hpcannotate.recipes.easybuild.evaluate:parse_batch", {"paths": chunk},
                            timeout=backstop_timeout(options, len(chunk)), what="raw parser batch",
                            reads=trees, sandboxed=sandboxed)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        replies = list(pool.map(run, chunks))
    return time.perf_counter() - started, sum(r["failures"] for r in replies)


def adapter_run(files: list[Path], workers: int) -> tuple[float, list]:
    started = time.perf_counter()
    results = EasyBuildAdapter().infer_many(files, InferOptions(), workers=workers)
    return time.perf_counter() - started, results


def peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--limit", type=int, help="only the first N easyconfigs")
    parser.add_argument("--tree", type=Path, help="an easyconfigs tree instead of the installed package")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file fails or a target is missed")
    args = parser.parse_args(argv)

    files = corpus(args.tree, args.limit)
    print(f"corpus: {len(files)} easyconfigs, {args.workers} workers on {os.cpu_count()} cores")
    print(f"warm-up read of every file: {warm_cache(files):.2f} s")

    raw_wall, raw_failures = raw_parser(files, args.workers)
    sandbox_reason = sandbox.unavailable() if sandbox.mode() != "off" else f"{sandbox.MODE_ENV}=off"
    boxed_wall, boxed_failures = raw_parser(files, args.workers, True) if sandbox_reason is None else (None, 0)
    wall, results = adapter_run(files, args.workers)
    failures = [r for r in results if isinstance(r, HpcAnnotateError)]
    keys = sum(len(r.annotations) for r in results if not isinstance(r, HpcAnnotateError))

    ratio = wall / raw_wall if raw_wall else float("inf")
    print(f"{'':24}{'files':>8}{'files/s':>10}{'wall s':>9}{'ms/file/core':>14}{'failures':>10}")
    for label, seconds, failed in (("raw EasyConfigParser", raw_wall, raw_failures),
                                   ("raw, in the sandbox", boxed_wall, boxed_failures),
                                   ("hpcannotate adapter", wall, len(failures))):
        if seconds is None:
            print(f"{label:24}  not measured: {sandbox_reason}")
            continue
        per_file = seconds * args.workers / len(files) * 1000
        print(f"{label:24}{len(files):>8}{len(files) / seconds:>10.0f}{seconds:>9.2f}{per_file:>14.2f}{failed:>10}")
    where = "in the sandbox" if sandbox_reason is None else f"WITHOUT the sandbox ({sandbox_reason})"
    if boxed_wall is not None:
        print(f"sandbox cost: {boxed_wall - raw_wall:+.2f} s over {args.workers} sandboxes "
              f"({boxed_wall / raw_wall:.2f}x the raw parser)")
    print(f"adapter / raw parser: {ratio:.2f}x (the adapter {where}, the raw parser without); {keys} annotations "
          f"in all ({keys / max(1, len(files)):.1f} a file)")
    print(f"peak RSS: this process {peak_mb(resource.RUSAGE_SELF):.0f} MB, "
          f"largest worker {peak_mb(resource.RUSAGE_CHILDREN):.0f} MB")
    for error in failures[:5]:
        print(f"  failure: {error}")
    if len(failures) > 5:
        print(f"  ... and {len(failures) - 5} more")

    met = not failures and wall < TARGET_SECONDS and ratio <= TARGET_RATIO
    print(f"target (all parse, < {TARGET_SECONDS:g} s, <= {TARGET_RATIO:g}x raw): {'met' if met else 'MISSED'}")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
