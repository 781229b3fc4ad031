"""The example recipe directories (recipes/*/): their configuration, what hpcannotate infers
from each variant's recipe, and the Dockerfiles the real ``hpccm`` renders for every target.

Inference runs through the installed ``hpcannotate`` console script, rendering through the
installed ``hpccm`` command line, so these tests see what a user sees. The expected values
are the facts the recipes state (versions pinned in gromacs.py, pytorch.py, the spack.yaml
files and the easyconfigs), written out here so that a change to a recipe shows up.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from hpcannotate.model.targets import is_target, mode_for_target
from hpcannotate.recipes.easybuild.evaluate import find_easyconfig, installed_easyconfigs

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
HPCCM_CLI = Path(sys.executable).with_name("hpccm")
P = "org.supercontainers."
TARGET = P + "hardware.cpu.optimized.version"
CONFIGS = sorted(RECIPES.glob("*/hpcannotate.yaml"))
VARIANT_KEYS = {"format", "recipe", "targets", "base", "annotations", "env", "userargs", "usage", "shell", "build_base"}
TOP_KEYS = {"name", "version", "description", "default", "targets", "base", "usage", "shell", "docs", "annotations",
            "env", "variants"}

# What each recipe variant states, as inferred with --target <its first target>; None: must not be set.
EXPECTED: dict[tuple[str, str], dict[str, str | None]] = {
    ("gromacs", "hpccm"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.6", "mpi.abi.version": "40.0",
        "communication.framework": "ucx", "ucx.version": "1.15.0", "app.name": "gromacs", "app.version": "2023.3",
        "compiler.implementation": "gcc", "os.name": "ubuntu", "os.version": "22.04",
        "hardware.gpu.nvidia.cuda.version": None, "hardware.gpu.nvidia.architecture": None,
    },
    ("gromacs", "hpccm-cuda"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.6", "communication.framework": "ucx",
        "app.version": "2023.3", "hardware.gpu.nvidia.cuda.version": "12.4",
        "hardware.gpu.nvidia.architecture": "sm_70,sm_80,sm_90",
    },
    ("gromacs", "spack"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.6", "mpi.abi.version": "40.0",
        "communication.framework": "ucx", "app.name": "gromacs", "app.version": "2023.3",
        "hardware.gpu.nvidia.cuda.version": None,
    },
    ("gromacs", "easybuild"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.5", "mpi.abi.version": "40.0",
        "app.name": "GROMACS", "app.version": "2023.3", "compiler.implementation": "gcc", "compiler.version": "12.3.0",
        "hardware.gpu.nvidia.cuda.version": None,
    },
    ("pytorch", "hpccm"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.6", "communication.framework": "ucx",
        "app.name": "pytorch", "app.version": "2.4.1", "hardware.gpu.nvidia.cuda.version": "12.4",
        "hardware.gpu.nvidia.architecture": "sm_80,sm_90", "nccl.version": "2.21.5",
    },
    ("pytorch", "hpccm-cpu"): {
        "mpi.implementation": "openmpi", "app.version": "2.4.1", "os.name": "ubuntu",
        "hardware.gpu.nvidia.cuda.version": None, "hardware.gpu.nvidia.architecture": None, "nccl.version": None,
    },
    ("pytorch", "spack"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.6", "communication.framework": "ucx",
        "app.version": "2.4.1", "hardware.gpu.nvidia.cuda.version": "12.4",
        "hardware.gpu.nvidia.architecture": "sm_80,sm_90",
    },
    ("pytorch", "easybuild"): {
        "mpi.implementation": "openmpi", "mpi.version": "4.1.5", "app.version": "2.1.2", "python.version": "3.11",
        "hardware.gpu.nvidia.cuda.version": None, "nccl.version": None,
    },
    ("pytorch", "easybuild-cuda"): {
        "mpi.implementation": "openmpi", "app.version": "2.1.2", "hardware.gpu.nvidia.cuda.version": "12.1",
        "nccl.version": "2.18.3",
    },
}

# GMX_SIMD gromacs.py must choose per target (GROMACS's own simdSuggested() on that CPU).
GMX_SIMD = {
    "x86_64_v2": "SSE4.1", "x86_64_v3": "AVX2_256", "x86_64_v4": "AVX_512", "zen": "AVX2_128", "zen2": "AVX2_256",
    "zen3": "AVX2_256", "zen4": "AVX_512", "haswell": "AVX2_256", "skylake_avx512": "AVX_512",
    "sapphirerapids": "AVX_512", "neoverse_v1": "ARM_SVE", "neoverse_v2": "ARM_NEON_ASIMD", "a64fx": "ARM_SVE",
    "aarch64": "ARM_NEON_ASIMD",
}


def load(config: Path) -> dict:
    with config.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def recipe_file(config: Path, name: str) -> Path | None:
    """A variant's recipe: a file in the recipe directory, or an easyconfig name EasyBuild's robot would find."""
    local = config.parent / name
    if local.is_file():
        return local
    if name.endswith(".eb") and "/" not in name:
        found = find_easyconfig(tuple(installed_easyconfigs()), name.split("-", 1)[0], name[: -len(".eb")])
        return Path(found) if found else None
    return None


def variants(*formats: str) -> list[tuple[str, str, dict, Path]]:
    """(app, variant, its settings, hpcannotate.yaml) of every variant with one of these formats."""
    found = []
    for config in CONFIGS:
        for name, variant in load(config)["variants"].items():
            if variant["format"] in formats:
                found.append((config.parent.name, name, variant, config))
    return found


def targets_of(config: Path, variant: dict) -> list[str]:
    return list(variant.get("targets") or load(config).get("targets") or ["x86_64"])


def ids(cases: list[tuple]) -> list[str]:
    return [f"{app}/{name}" for app, name, *_ in cases]


def hpccm_render(recipe: Path, target: str, userargs: dict) -> str:
    args = [str(HPCCM_CLI), "--recipe", str(recipe), "--cpu-target", target]
    if userargs:
        args += ["--userarg", *(f"{k}={v}" for k, v in userargs.items())]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=recipe.parent)
    assert proc.returncode == 0, f"hpccm failed for {recipe.name} {target}: {proc.stderr[-2000:]}"
    return proc.stdout


# ------------------------------------------------------------------ the configuration files
def test_both_example_apps_exist():
    assert {c.parent.name for c in CONFIGS} >= {"gromacs", "pytorch"}


@pytest.mark.parametrize("config", CONFIGS, ids=[c.parent.name for c in CONFIGS])
def test_config_parses_and_names_existing_files(config: Path):
    data = load(config)
    assert isinstance(data, dict)
    assert set(data) <= TOP_KEYS, f"unknown keys {set(data) - TOP_KEYS}"
    assert data["name"] == config.parent.name
    assert data["default"] in data["variants"]
    assert data["variants"][data["default"]]["format"] == "dockerfile", "the default must build from distro packages"
    for kind, doc in (data.get("docs") or {}).items():
        assert (config.parent / doc).is_file(), f"docs.{kind}: {doc} missing"
    for name, variant in data["variants"].items():
        assert set(variant) <= VARIANT_KEYS, f"{name}: unknown keys {set(variant) - VARIANT_KEYS}"
        assert recipe_file(config, variant["recipe"]) is not None, f"{name}: {variant['recipe']} not found"
        for target in targets_of(config, variant):
            assert is_target(target), f"{name}: {target} is not an archspec target"
        if variant["format"] == "dockerfile":
            assert variant.get("base") or data.get("base"), f"{name}: a Dockerfile fragment needs a base"
        if "userargs" in variant:
            assert variant["format"] == "hpccm"


@pytest.mark.parametrize("config", CONFIGS, ids=[c.parent.name for c in CONFIGS])
def test_easyconfigs_are_pointers_not_copies(config: Path):
    for name, variant in load(config)["variants"].items():
        if variant["format"] == "easybuild":
            assert not (config.parent / variant["recipe"]).exists(), f"{name}: the easyconfig is copied"
            assert "easybuild/easyconfigs" in str(recipe_file(config, variant["recipe"]))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.parent.name for c in CONFIGS])
def test_dockerfile_fragments_have_no_from_and_clean_apt(config: Path):
    for name, variant in load(config)["variants"].items():
        if variant["format"] != "dockerfile":
            continue
        text = (config.parent / variant["recipe"]).read_text(encoding="utf-8")
        instructions = [line.split()[0].upper() for line in text.splitlines() if line.strip()
                        and not line.startswith((" ", "\t", "#"))]
        assert "FROM" not in instructions, f"{name}: a fragment has no FROM"
        assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text


@pytest.mark.parametrize("case", variants("dockerfile"), ids=ids(variants("dockerfile")))
def test_declared_annotations_validate(case, run_cli, tmp_path: Path):
    """The annotations a Dockerfile variant declares (nothing infers them) are valid catalogue values."""
    app, name, variant, config = case
    target = targets_of(config, variant)[0]
    declared = {**(load(config).get("annotations") or {}), **(variant.get("annotations") or {})}
    declared[TARGET] = target
    declared[P + "hardware.cpu.optimized.mode"] = mode_for_target(target)
    file = tmp_path / f"{app}-{name}.yaml"
    file.write_text(yaml.safe_dump(declared), encoding="utf-8")
    result = run_cli("validate", file)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ inference from each recipe
INFERRED = variants("hpccm", "spack", "easybuild")


def test_every_inferred_variant_has_expectations():
    assert {(app, name) for app, name, *_ in INFERRED} == set(EXPECTED)


@pytest.mark.parametrize("case", INFERRED, ids=ids(INFERRED))
def test_infer_gives_the_recipe_values(case, run_cli):
    app, name, variant, config = case
    target = targets_of(config, variant)[0]
    args = ["infer", recipe_file(config, variant["recipe"]), "--target", target, "--json"]
    for key, value in (variant.get("userargs") or {}).items():
        args += ["--userarg", f"{key}={value}"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    got = report["annotations"]
    assert got[TARGET] == target
    assert got[P + "build.recipe.format"] == variant["format"]
    assert not [w for w in report.get("warnings", []) if "target" in w.lower()], report["warnings"]
    for key, value in EXPECTED[(app, name)].items():
        if value is None:
            assert P + key not in got, f"{key} set to {got.get(P + key)!r}"
        else:
            assert got.get(P + key) == value, f"{key}: {got.get(P + key)!r} != {value!r}"


# ------------------------------------------------------------------ hpccm renders every listed target
RENDERED = [(app, name, variant, config, target) for app, name, variant, config in variants("hpccm")
            for target in targets_of(config, variant)]


@pytest.mark.parametrize("case", RENDERED, ids=[f"{a}/{n}/{t}" for a, n, _, _, t in RENDERED])
def test_hpccm_renders_every_target(case):
    app, _, variant, config, target = case
    text = hpccm_render(config.parent / variant["recipe"], target, variant.get("userargs") or {})
    parser = DockerfileParser(fileobj=io.BytesIO(), cache_content=True)  # in memory, not ./Dockerfile
    parser.content = text
    froms = [i["value"] for i in parser.structure if i["instruction"] == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build"), froms
    copies = [i["value"] for i in parser.structure if i["instruction"] == "COPY"]
    assert any(c.startswith("--from=build ") for c in copies), "the final stage copies from the build stage"
    cuda = (variant.get("userargs") or {}).get("cuda")
    if cuda:
        assert all(f.startswith(f"nvcr.io/nvidia/cuda:{cuda}-") for f in froms), froms
    else:
        assert froms == ["ubuntu:22.04 AS build", "ubuntu:22.04"]
    if app == "gromacs":
        assert f"-D GMX_SIMD={GMX_SIMD[target]} " in text
        assert ("-D GMX_GPU=CUDA" in text) == bool(cuda)


@pytest.mark.parametrize("target", sorted(GMX_SIMD))
def test_gromacs_simd_follows_the_target(target: str):
    """The SIMD mapping beyond the listed targets: Zen1's AVX2_128, SVE only where wider than 128 bits."""
    text = hpccm_render(RECIPES / "gromacs" / "gromacs.py", target, {})
    assert f"-D GMX_SIMD={GMX_SIMD[target]} " in text
    assert ("GMX_SIMD_ARM_SVE_LENGTH" in text) == (GMX_SIMD[target] == "ARM_SVE")


def test_hpccm_recipes_pin_a_portable_target_when_given_none(run_cli):
    """Without --target the recipes build for x86_64_v3 and say so (the image is never unlabelled)."""
    for recipe in (RECIPES / "gromacs" / "gromacs.py", RECIPES / "pytorch" / "pytorch.py"):
        result = run_cli("infer", recipe, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["annotations"][TARGET] == "x86_64_v3"
