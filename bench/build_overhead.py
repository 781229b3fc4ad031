"""What `hpcannotate build` costs on top of the build itself.

Side by side in one run, alternating, N times each (default 3):
  A. `hpcannotate build DIR --target T` (render, infer, buildah bud committing straight into an
     OCI layout, the image probe reading the new image's layers, the annotated index, read-back
     verification);
  A'. the same with `--no-probe`, so the probe's share is visible;
  B. a plain `buildah bud` of the same rendered Dockerfile and context (into the local store);
  C. the same plain `buildah bud` committing into an OCI layout (`-t oci:...`), which is what A
     runs underneath, so A/C is hpcannotate's own cost (render, index, verification).
All use one private buildah store with the base image loaded once beforehand.
Target: A within 5% of B (median over median); A/C and A'/C are printed too.

With ``--builder NAME`` (a BuildKit builder: see the README's "Setting up a BuildKit builder"),
in the same run and alternating with the above:
  D. `hpcannotate build --backend buildx --builder NAME` (and D'. with `--no-probe`);
  E. the `docker buildx build` that D runs underneath, by hand (same context, base as a named
     build context, OCI tarball output), so D/E is hpcannotate's own cost with buildx.
BuildKit caches the steps of a build it has seen: every run after the first is a cached build,
for D and E alike (buildah builds without a layer cache).

    python bench/build_overhead.py [--recipe recipes/gromacs] [--target x86_64_v2] [--runs 3] [--builder bk]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hpcannotate.build.baseimage import load_into_buildah, make_base  # noqa: E402
from hpcannotate.build.builders import BuildOptions  # noqa: E402
from hpcannotate.build.builders.buildah import BuildahBuilder  # noqa: E402
from hpcannotate.dockerfile.reader import base_images  # noqa: E402
from hpcannotate.dockerfile.render import render_variant  # noqa: E402
from hpcannotate.recipes.recipedir import load_recipe_dir  # noqa: E402

TARGET_OVERHEAD = 0.05


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv[:6])} ...\n{proc.stderr[-2000:]}")
    return elapsed


def buildx_cases(args, exe: str, recipe_dir, variant: str, target: str, tmp: Path) -> dict[str, list[str]]:
    """D, D' and E of the docstring: hpcannotate with buildx, and the buildx command it runs, by hand."""
    from hpcannotate.build.builders.buildx import BuildxBuilder, BuildxOptions
    from hpcannotate.build.builders.buildx_bases import register
    from hpcannotate.model.targets import family_of
    from hpcannotate.registry.platform import platform_for

    builder = BuildxBuilder(BuildxOptions(builder=args.builder))
    reason = builder.unavailable_reason()
    if reason:
        sys.exit(f"--builder {args.builder}: {reason}")
    context = render_variant(recipe_dir, variant, target, tmp / "buildx-context")
    for ref in base_images(context.dockerfile.read_text()):
        register(ref, builder, allow_make=True, make=True, work=tmp)
    by_hand = builder.build_argv(context, f"oci:{tmp / 'plain-bx'}:bench", platform_for(family_of(target)))
    ours = [exe, "build", args.recipe, "--variant", variant, "--target", target, "--backend", "buildx",
            "--builder", args.builder, "--workdir", str(tmp / "work-bx"), "--output", f"oci:{tmp / 'out-bx'}"]
    return {"buildx build": ours, "  ... buildx --no-probe": [*ours, "--no-probe"], "plain buildx build": by_hand}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "gromacs"))
    parser.add_argument("--variant", default=None)
    parser.add_argument("--target", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--builder", help="also measure docker buildx on this BuildKit builder")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("hpcannotate"))
    recipe_dir = load_recipe_dir(args.recipe)
    variant = recipe_dir.variant(args.variant)
    target = args.target or variant.targets[0]

    with tempfile.TemporaryDirectory(prefix="hpcannotate-bench-") as tmp:
        tmp = Path(tmp)
        options = BuildOptions(root=tmp / "root", runroot=tmp / "runroot", storage_driver="vfs")
        builder = BuildahBuilder(options)
        context = render_variant(recipe_dir, variant.name, target, tmp / "plain-context")
        for ref in base_images(context.dockerfile.read_text()):
            load_into_buildah(make_base(ref), ref, builder.global_args())
        store = ["--root", str(options.root), "--runroot", str(options.runroot), "--storage-driver", "vfs"]
        ours = [exe, "build", args.recipe, "--variant", variant.name, "--target", target, *store,
                "--workdir", str(tmp / "work"), "--output", f"oci:{tmp / 'out'}"]
        bud = [*builder.global_args(), "bud", "--format", "oci", "--isolation", "chroot", "--pull=false",
               "-f", str(context.dockerfile)]
        plain = [*bud, "-t", "localhost/bench:plain", str(context.directory)]
        plain_oci = [*bud, "-t", f"oci:{tmp / 'plain-oci'}:bench", str(context.directory)]
        cases = {"hpcannotate build": ours, "  ... --no-probe": [*ours, "--no-probe"],
                 "plain buildah bud": plain, "plain bud -t oci:": plain_oci}
        if args.builder:
            cases.update(buildx_cases(args, exe, recipe_dir, variant.name, target, tmp))
        times: dict[str, list[float]] = {name: [] for name in cases}
        for run in range(args.runs):
            for name, argv in cases.items():
                times[name].append(timed(argv))
            shutil.rmtree(tmp / "out", ignore_errors=True)
            shutil.rmtree(tmp / "plain-oci", ignore_errors=True)
            shutil.rmtree(tmp / "out-bx", ignore_errors=True)
            print(f"run {run + 1}: " + ", ".join(f"{n} {t[-1]:.1f} s" for n, t in times.items()), flush=True)
    print(f"\n{recipe_dir.name} ({variant.name}, {target}), {args.runs} runs each, alternating")
    print(f"{'':24} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in times.items():
        print(f"{name:24} {statistics.median(values):9.1f} {min(values):7.1f} {max(values):7.1f}")
    ours_median = statistics.median(times["hpcannotate build"])
    ratio = ours_median / statistics.median(times["plain buildah bud"])
    own = ours_median / statistics.median(times["plain bud -t oci:"])
    verdict = "met" if ratio <= 1 + TARGET_OVERHEAD else "MISSED"
    print(f"hpcannotate build vs plain buildah bud: {100 * (ratio - 1):+.1f}% "
          f"(target <= {100 * TARGET_OVERHEAD:.0f}%): {verdict}")
    print(f"hpcannotate build vs the same bud into an OCI layout (its own cost): {100 * (own - 1):+.1f}%")
    bare = statistics.median(times["  ... --no-probe"]) / statistics.median(times["plain bud -t oci:"])
    print(f"hpcannotate build --no-probe vs the same bud into an OCI layout: {100 * (bare - 1):+.1f}%")
    if args.builder:
        plain_bx = statistics.median(times["plain buildx build"])
        for name in ("buildx build", "  ... buildx --no-probe"):
            ratio_bx = statistics.median(times[name]) / plain_bx
            print(f"hpcannotate {name.strip(' .')} vs the same docker buildx build by hand: "
                  f"{100 * (ratio_bx - 1):+.1f}%")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
