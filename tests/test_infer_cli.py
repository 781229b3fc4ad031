"""`hpcannotate infer` through the real console script, on real recipes of each format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P

from .conftest import SHARED

DATA = Path(__file__).parent / "data"
CORPUS = SHARED / "corpus" / "spack"


def test_infer_json_has_annotations_and_provenance(run_cli):
    r = run_cli("infer", DATA / "hpccm" / "multistage.py", "--target", "zen3", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["format"] == "hpccm"
    assert data["annotations"][P + "hardware.cpu.optimized.version"] == "zen3"
    assert data["annotations"][P + "hardware.cpu.optimized.mode"] == "microarchitecture"
    for key in data["annotations"]:
        assert data["provenance"][key]["layer"] == "recipe"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/spack is not beside the repository")
def test_infer_explain_names_sources_and_missing_keys(run_cli):
    r = run_cli("infer", CORPUS / "spack__spack-packages__e4s-neoverse-v2.yaml", "--explain")
    assert r.returncode == 0, r.stderr
    assert "neoverse_v2" in r.stdout
    assert "e4s-neoverse-v2.yaml:" in r.stdout  # file:line provenance
    assert "not inferred" in r.stdout


def test_infer_easyconfig_without_target_says_why(run_cli):
    easyconfig = next((DATA / "easybuild").rglob("*.eb"), None)
    if easyconfig is None:
        pytest.skip("no easyconfig fixtures")
    r = run_cli("infer", easyconfig, "--explain", "--format", "easybuild")
    assert "hardware.cpu.optimized.version" in r.stdout


def test_directory_with_several_formats_needs_format(run_cli, tmp_path):
    shutil.copy(DATA / "hpccm" / "multistage.py", tmp_path / "recipe.py")
    (tmp_path / "spack.yaml").write_text("spack:\n  specs: [gromacs+mpi ^openmpi@4.1.5]\n")
    r = run_cli("infer", tmp_path)
    assert r.returncode == 2
    assert "pick one with --format" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("infer", tmp_path, "--format", "spack", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["annotations"][P + "mpi.implementation"] == "openmpi"


def test_bad_target_and_userarg_are_one_line(run_cli):
    r = run_cli("infer", DATA / "hpccm" / "multistage.py", "--target", "zen-3")
    assert r.returncode == 2 and "did you mean 'zen3'" in r.stderr
    r = run_cli("infer", DATA / "hpccm" / "userargs.py", "--userarg", "novalue")
    assert r.returncode == 2 and "--userarg 'novalue': expected KEY=VALUE" in r.stderr


def test_unrecognised_file(run_cli, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello\n")
    r = run_cli("infer", f)
    assert r.returncode == 2
    assert "not a recognised recipe" in r.stderr


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_one_line(run_cli, timeout):
    r = run_cli("infer", DATA / "hpccm" / "multistage.py", f"--timeout={timeout}")
    assert r.returncode == 2
    assert "--timeout" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


def test_a_userarg_given_twice_is_refused(run_cli):
    r = run_cli("infer", DATA / "hpccm" / "userargs.py", "--userarg", "mpi=openmpi", "--userarg", "mpi=mpich")
    assert r.returncode == 2
    assert "--userarg mpi: given twice (mpi=openmpi and mpi=mpich)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_recipe_directory_is_read_through_its_hpcannotate_yaml(run_cli):
    """recipes/gromacs holds several formats; hpcannotate.yaml says which file is which variant."""
    recipes = Path(__file__).resolve().parents[1] / "recipes"
    r = run_cli("infer", str(recipes / "gromacs"), "--format", "spack", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["annotations"][P + "app.name"] == "gromacs"
    assert data["provenance"][P + "app.name"]["file"].endswith("spack.yaml")
    r = run_cli("infer", str(recipes / "gromacs"))  # the default variant is a Dockerfile: nothing to read
    assert r.returncode == 2
    assert "variant 'debian' is a dockerfile recipe whose annotations are declared in hpcannotate.yaml" in r.stderr
    assert "pick one with --variant (easybuild, hpccm, hpccm-cuda, spack)" in r.stderr
    r = run_cli("infer", str(recipes / "gromacs"), "--format", "hpccm")
    assert r.returncode == 2 and "2 hpccm variants (hpccm, hpccm-cuda)" in r.stderr


def test_a_variant_brings_its_userargs_and_target(run_cli):
    """--variant reads the recipe as build would: the variant's userargs and its first target."""
    recipes = Path(__file__).resolve().parents[1] / "recipes"
    r = run_cli("infer", str(recipes / "gromacs"), "--variant", "hpccm-cuda", "--json")
    assert r.returncode == 0, r.stderr
    values = json.loads(r.stdout)["annotations"]
    assert values[P + "hardware.gpu.nvidia.cuda.version"] == "12.4"  # the variant's cuda userarg reached the recipe
    assert values[P + "hardware.cpu.optimized.version"] == "x86_64_v3"
    r = run_cli("infer", str(recipes / "gromacs" / "gromacs.py"), "--variant", "hpccm")
    assert r.returncode == 2 and "is not a recipe directory" in r.stderr
