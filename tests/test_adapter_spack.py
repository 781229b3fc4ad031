"""The Spack adapter on real environments and locks, on our own small ones, and on bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcannotate.errors import InputError
from hpcannotate.recipes.adapters import adapter, detect_format
from hpcannotate.recipes.base import InferOptions
from hpcannotate.recipes.spack.adapter import SpackAdapter, load_environment
from hpcannotate.recipes.spack.lock import read_lock
from hpcannotate.recipes.spack.specs import (
    SpecSyntaxError,
    lower_bound,
    parse_spec,
    pinned_version,
    tokenize,
    version_satisfies,
)

DATA = Path(__file__).parent / "data" / "spack"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "spack"
P = "org.supercontainers."

AWS = "spack__spack-packages__aws-pcluster-x86_64_v4.yaml"
E4S = "spack__spack-packages__e4s-neoverse-v2.yaml"
ML = "spack__spack-packages__ml-linux-x86_64.yaml"
JCSDA = "JCSDA__spack-stack__containers-docker-ubuntu-gcc-openmpi.yaml"
VIPER_YAML = "viperML__test-mpi__spack.yaml"
VIPER_LOCK = "viperML__test-mpi__spack.lock"
GROMACS_LOCK = "gromacs-openmpi-x86_64_v3__spack-0.23.lock"


def corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"the shared Spack corpus is not here ({path} is absent)")
    return path


def infer(path: Path, **options):
    return SpackAdapter().infer(path, InferOptions(**options))


def value(inference, key: str) -> str | None:
    return inference.annotations.get(P + key)


def where(inference, key: str) -> tuple[str, int | None]:
    prov = inference.annotations.entry(P + key).provenance
    return Path(prov.file).name, prov.line


def missing(inference, key: str) -> str | None:
    return inference.missing.get(P + key)


# -- the spec tokenizer -----------------------------------------------------------------------


def test_everything_after_a_caret_binds_to_that_dependency():
    spec = parse_spec("gromacs+mpi ^openmpi target=x86_64_v3")
    assert spec.root.name == "gromacs"
    assert spec.root.target is None
    assert spec.root.flag("mpi") is True
    (openmpi,) = spec.dependencies
    assert openmpi.name == "openmpi"
    assert openmpi.target == "x86_64_v3"


def test_versions_variants_and_key_values_land_on_their_node():
    spec = parse_spec("gromacs@2024.2 +cuda ~double cuda_arch=80 ^cuda@12.0.0 ^openmpi@4.1.5 fabrics=ucx,ofi")
    assert (spec.root.version, spec.root.flag("cuda"), spec.root.flag("double")) == ("2024.2", True, False)
    assert spec.root.value("cuda_arch") == "80"
    assert spec.find("cuda").version == "12.0.0"
    assert spec.find("openmpi").value("fabrics") == "ucx,ofi"
    assert spec.find("openmpi").value("cuda_arch") is None


def test_compilers_are_direct_dependencies_of_the_node_before_them():
    spec = parse_spec("gromacs %gcc@12.3.0 ^openmpi %clang")
    assert [(n.name, n.version, n.direct) for n in spec.root.compilers()] == [("gcc", "12.3.0", True)]
    assert [n.name for n in spec.find("openmpi").compilers()] == ["clang"]
    # Spack 1.x: options after %gcc are gcc's (Spack 0.x gave them to gromacs; reading them as gcc's loses, never lies)
    after = parse_spec("gromacs %gcc +cuda")
    assert "cuda" not in after.root.variants and after.root.compilers()[0].flag("cuda") is True


def test_spack1_virtual_assignment_and_edge_attributes():
    spec = parse_spec("py-torch target=x86_64_v3 %c,cxx=gcc ^[virtuals=mpi] openmpi ^blas=openblas")
    (compiler,) = spec.root.compilers()
    assert (compiler.name, compiler.virtuals) == ("gcc", ("c", "cxx"))
    assert spec.provider("mpi").name == "openmpi"
    assert spec.provider("blas").name == "openblas"
    assert spec.root.target == "x86_64_v3"


def test_anonymous_requirements_and_conditional_edges():
    spec = parse_spec("@:0.20 %gcc")
    assert spec.name is None and spec.root.version == ":0.20"
    assert [n.name for n in spec.root.compilers()] == ["gcc"]
    conditional = parse_spec("pkg %[when=+cuda] cuda@12.4")
    assert conditional.root.compilers() == []  # it may not apply: not counted
    assert conditional.find("cuda") is None


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("libfabric@1.17.0 fabrics:=shm,efa", "fabrics", "shm,efa"),
        ("wrf@4 build_type=dm+sm", "build_type", "dm+sm"),
        ("foo cflags='-O3 -g'", "cflags", "-O3 -g"),
        ("builtin.gromacs arch=linux-ubuntu22.04-zen3", "arch", "linux-ubuntu22.04-zen3"),
        ("x ++debug", "debug", True),
        ("x ~~shared", "shared", False),
    ],
)
def test_variant_spellings(text, key, expected):
    assert parse_spec(text).root.variants[key] == expected


def test_arch_triplet_gives_the_target():
    assert parse_spec("gromacs arch=linux-ubuntu22.04-zen3").root.target == "zen3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gromacs +mpi $$", "column 14"),
        ("gromacs lammps", "second package name"),
        ("gromacs ^", "not followed by a package"),
        ("gromacs@1@2", "second version"),
        ("gromacs ^[virtuals=mpi openmpi", "edge attributes"),
    ],
)
def test_spec_syntax_errors_say_where(text, message):
    with pytest.raises(SpecSyntaxError, match=message):
        parse_spec(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc01@^%+~=:,.[]/ -_'\"$", max_size=40))
def test_the_tokenizer_fails_only_with_spec_syntax_errors(text):
    try:
        spec = parse_spec(text)
    except SpecSyntaxError:
        return
    assert all(token.kind != "ERROR" for token in tokenize(text))
    assert spec.text == text


@pytest.mark.parametrize(
    ("constraint", "pinned", "low"),
    [
        ("4.1.5", "4.1.5", "4.1.5"),
        ("=12.3.0", "12.3.0", "12.3.0"),
        ("2024.2", "2024.2", "2024.2"),
        ("20230802", "20230802", "20230802"),
        ("4", None, "4"),
        ("4:", None, "4"),
        ("4.1:4.2", None, "4.1"),
        (":4", None, None),
        ("1.2,1.4", None, None),
        (None, None, None),
    ],
)
def test_which_constraints_pin_a_version(constraint, pinned, low):
    assert pinned_version(constraint) == pinned
    assert lower_bound(constraint) == low


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("4.1.5", "4", True),
        ("4.1.5", "4.1", True),
        ("4.10.0", "4.1", False),
        ("5.0.3", "4", False),
        ("4.1.5", "=4.1.5", True),
        ("4.1.5", "=4.1", False),
        ("4.1.5", "4.1:", True),
        ("4.0.7", "4.1:", False),
        ("4.1.5", ":4.1", True),
        ("4.2.0", ":4.1", False),
        ("5.0.3", "3,5", True),
        ("4.1.5", None, True),
    ],
)
def test_version_satisfies(version, constraint, ok):
    assert version_satisfies(version, constraint) is ok


def test_a_version_found_elsewhere_must_satisfy_the_spec_s_constraint(tmp_path):
    (tmp_path / "spack.yaml").write_text("spack:\n  specs:\n  - gromacs ^openmpi@4\n  - openmpi@5.0.3\n")
    assert value(infer(tmp_path / "spack.yaml"), "mpi.version") is None
    (tmp_path / "spack.yaml").write_text("spack:\n  specs:\n  - gromacs ^openmpi@4\n  - openmpi@4.1.6\n")
    assert value(infer(tmp_path / "spack.yaml"), "mpi.version") == "4.1.6"


# -- detection --------------------------------------------------------------------------------


def test_detect_by_name_content_and_directory(tmp_path):
    spack = SpackAdapter()
    assert spack.detect(DATA / "binding" / "spack.yaml")
    assert spack.detect(DATA / "binding")  # an environment directory
    other = tmp_path / "stack.yml"
    other.write_text("# comment first\nspack:\n  specs: [zlib]\n")
    assert spack.detect(other)
    not_env = tmp_path / "values.yaml"
    not_env.write_text("packages:\n  spack: {}\n")
    assert not spack.detect(not_env)
    assert not spack.detect(tmp_path / "absent.yaml")
    assert detect_format(DATA / "gromacs-cuda" / "spack.yaml") == "spack"
    assert adapter("spack").name == "spack"


def test_detect_locks_by_content():
    assert SpackAdapter().detect(corpus(VIPER_LOCK))  # not named spack.lock
    assert not SpackAdapter().detect(DATA / "bad" / "not-a-lock.lock")


# -- our own environments ---------------------------------------------------------------------


def test_gromacs_cuda_environment():
    inf = infer(DATA / "gromacs-cuda" / "spack.yaml")
    assert value(inf, "app.name") == "gromacs"
    assert value(inf, "app.version") == "2024.2"
    assert value(inf, "hardware.gpu.nvidia.architecture") == "sm_80"
    assert value(inf, "hardware.gpu.nvidia.cuda.version") == "12.0"
    assert value(inf, "mpi.implementation") == "openmpi"
    assert value(inf, "mpi.version") == "4.1.5"
    assert value(inf, "mpi.abi.version") == "40.0"
    assert value(inf, "communication.framework") == "ucx"
    assert value(inf, "hardware.cpu.optimized.version") == "zen3"
    assert value(inf, "hardware.cpu.optimized.mode") == "microarchitecture"
    assert where(inf, "hardware.cpu.optimized.version") == ("spack.yaml", 11)
    assert where(inf, "mpi.version") == ("spack.yaml", 7)
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("gcc", "12.3.0")
    assert (value(inf, "os.name"), value(inf, "os.version")) == ("ubuntu", "22.04")
    assert inf.labels == {"maintainer": "hpc@example.org"}
    assert value(inf, "build.recipe.format") == "spack"
    assert missing(inf, "glibc.version")


def test_container_labels_in_our_namespace_are_annotations_and_win(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  specs: [gromacs ^openmpi@4.1.5]\n  container:\n    labels:\n"
        "      org.supercontainers.mpi.version: 4.1.6\n      org.opencontainers.image.title: GROMACS\n"
        "      mpi: openmpi\n"
    )
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "mpi.version") == "4.1.6"
    assert where(inf, "mpi.version") == ("spack.yaml", 5)
    assert inf.annotations["org.opencontainers.image.title"] == "GROMACS"
    assert inf.labels == {"mpi": "openmpi"}  # not our key, even though 'mpi' starts like one
    assert any("not the inferred 4.1.5" in w for w in inf.warnings)


def test_the_recipe_target_wins_over_a_different_target_option_with_a_warning():
    inf = infer(DATA / "gromacs-cuda", target="x86_64_v3")
    assert value(inf, "hardware.cpu.optimized.version") == "zen3"
    assert any("--target x86_64_v3 ignored" in w for w in inf.warnings)
    assert inf.annotations.entry(P + "hardware.cpu.optimized.version").provenance.note is None


def test_a_target_after_a_caret_is_the_dependency_s_not_the_application_s():
    inf = infer(DATA / "binding")
    assert value(inf, "hardware.cpu.optimized.version") is None
    assert "no --target" in missing(inf, "hardware.cpu.optimized.version")
    with_option = infer(DATA / "binding", target="zen2")
    assert value(with_option, "hardware.cpu.optimized.version") == "zen2"
    assert with_option.annotations.entry(P + "hardware.cpu.optimized.version").provenance.note == "from --target"
    assert not with_option.warnings


def test_an_unknown_target_option_is_an_input_error():
    with pytest.raises(InputError, match="not an archspec CPU target"):
        infer(DATA / "binding", target="zen-9000")


def test_includes_are_followed_and_missing_ones_are_warnings():
    inf = infer(DATA / "includes" / "spack.yaml")
    assert value(inf, "hardware.cpu.optimized.version") == "neoverse_v2"
    assert where(inf, "hardware.cpu.optimized.version") == ("packages.yaml", 3)
    assert where(inf, "hardware.cpu.optimized.mode") == ("packages.yaml", 3)
    assert (value(inf, "mpi.implementation"), value(inf, "mpi.version")) == ("mpich", "4.2.1")
    assert value(inf, "mpi.abi.version") == "12.0"
    assert value(inf, "communication.framework") == "libfabric"  # mpich: require: netmod=ofi
    assert value(inf, "hardware.gpu.nvidia.architecture") == "sm_90"  # from ^kokkos +cuda cuda_arch=90
    assert value(inf, "hardware.gpu.nvidia.cuda.version") == "12.4"  # the only external, buildable: false
    assert where(inf, "hardware.gpu.nvidia.cuda.version") == ("packages.yaml", 11)
    warned = "\n".join(inf.warnings)
    assert "optional include missing-site.yaml not found" in warned
    assert "include does-not-exist/ not found" in warned


def test_include_of_a_directory_scope_and_include_loops(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "packages.yaml").write_text("packages:\n  mpi:\n    require: [mvapich2@2.3.7]\n")
    (tmp_path / "site" / "include.yaml").write_text("include:\n- ../spack.yaml\n")
    (tmp_path / "spack.yaml").write_text("spack:\n  include: [site]\n  specs: [gromacs+mpi]\n")
    inf = infer(tmp_path / "spack.yaml")
    assert (value(inf, "mpi.implementation"), value(inf, "mpi.version")) == ("mvapich2", "2.3.7")
    assert where(inf, "mpi.implementation") == ("packages.yaml", 3)
    assert any("included twice" in w for w in inf.warnings)


def test_spack0_compilers_section_and_conditional_definitions(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  compilers:\n  - compiler:\n      spec: gcc@11.4.0\n      paths: {cc: /usr/bin/gcc}\n"
        "  definitions:\n  - when: arch.satisfies('target=zen3')\n    apps: [gromacs]\n  specs: [$apps]\n"
        "  include:\n  - path: site.yaml\n    when: os == 'ubuntu22.04'\n  packages: [not, a, mapping]\n"
    )
    inf = infer(tmp_path / "spack.yaml")
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("gcc", "11.4.0")
    assert inf.annotations.entry(P + "compiler.version").provenance.line == 4
    assert value(inf, "app.name") == "gromacs"
    warned = "\n".join(inf.warnings)
    assert "definition 'apps' has a when: condition" in warned
    assert "include site.yaml has a when: condition" in warned
    assert "packages: is a list" in warned


def test_spec_groups_overrides_definitions_and_matrix_excludes():
    env = load_environment(DATA / "groups" / "spack.yaml")
    assert [(r.group, str(r.text)) for r in env.roots] == [
        ("compiler", "gcc@13.3.0"),
        ("apps", "gromacs +mpi ^openmpi@5.0.5"),
        ("apps", "gromacs +mpi ^mpich@4.2.1"),
        ("apps", "lammps +mpi ^openmpi@5.0.5"),
    ]
    inf = infer(DATA / "groups" / "spack.yaml")
    # the applications' group overrides the environment's target=x86_64_v3
    assert value(inf, "hardware.cpu.optimized.version") == "zen4"
    assert where(inf, "hardware.cpu.optimized.version") == ("spack.yaml", 25)
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("gcc", "13.3.0")
    assert "mpich, openmpi" in missing(inf, "mpi.implementation")
    assert "gromacs, lammps" in missing(inf, "app.name")


def test_an_environment_with_roots_for_two_targets_pins_none(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  specs:\n  - gromacs target=zen3\n  - gromacs target=zen4\n"
    )
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "hardware.cpu.optimized.version") is None
    assert "zen3, zen4" in missing(inf, "hardware.cpu.optimized.version")
    assert value(infer(tmp_path / "spack.yaml", target="zen4"), "hardware.cpu.optimized.version") == "zen4"


def test_a_target_archspec_does_not_know_is_a_warning(tmp_path):
    (tmp_path / "spack.yaml").write_text("spack:\n  specs: [gromacs target=zen99]\n")
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "hardware.cpu.optimized.version") is None
    assert any("zen99" in w for w in inf.warnings)


def test_requirements_with_when_and_one_of_are_not_pins(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  specs: [gromacs]\n  packages:\n    all:\n      require:\n"
        "      - spec: target=zen3\n        when: '%gcc'\n      - one_of: [target=zen2, target=zen4]\n"
    )
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "hardware.cpu.optimized.version") is None


def test_one_of_with_a_single_choice_and_double_colon_keys_are_read(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  specs: [gromacs]\n  packages::\n    all:\n      require::\n      - one_of: [target=zen2]\n"
    )
    assert value(infer(tmp_path / "spack.yaml"), "hardware.cpu.optimized.version") == "zen2"


def test_a_fabric_dependency_and_package_versions(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  specs:\n  - lammps ^openmpi@5.0.5 ^ucx@1.15.0 ^python@3.11.6\n  - py-mpi4py ^python@3.11\n"
    )
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "communication.framework") == "ucx"
    assert value(inf, "ucx.version") == "1.15.0"
    assert value(inf, "python.version") == "3.11"
    assert value(inf, "nccl.version") is None


def test_one_component_versions_and_ranges_are_not_versions(tmp_path):
    (tmp_path / "spack.yaml").write_text("spack:\n  specs: ['gromacs@2024: ^openmpi@4 ^cuda@12']\n")
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "mpi.implementation") == "openmpi"
    assert value(inf, "mpi.version") is None
    assert value(inf, "mpi.abi.version") == "40.0"  # every Open MPI 4 has libmpi.so.40
    assert value(inf, "hardware.gpu.nvidia.cuda.version") is None
    assert value(inf, "app.version") is None


def test_tilde_cuda_drops_cuda_arch_and_rocm_targets_are_read(tmp_path):
    (tmp_path / "spack.yaml").write_text(
        "spack:\n  specs:\n  - a ~cuda cuda_arch=70\n  - b +rocm amdgpu_target=gfx90a,gfx942\n"
    )
    inf = infer(tmp_path / "spack.yaml")
    assert value(inf, "hardware.gpu.nvidia.architecture") is None
    assert value(inf, "hardware.gpu.amd.architecture") == "gfx90a,gfx942"


# -- the real environments --------------------------------------------------------------------


def test_e4s_neoverse_v2():
    inf = infer(corpus(E4S))
    assert value(inf, "hardware.cpu.optimized.version") == "neoverse_v2"
    assert where(inf, "hardware.cpu.optimized.version") == (E4S, 15)
    assert value(inf, "mpi.implementation") == "mpich"
    assert where(inf, "mpi.implementation") == (E4S, 38)
    assert value(inf, "hardware.gpu.nvidia.architecture") == "sm_90"
    assert value(inf, "compiler.implementation") == "gcc"
    assert value(inf, "mpi.version") is None  # mpich is not pinned
    assert "not pinned" in missing(inf, "hardware.gpu.nvidia.cuda.version")
    assert value(inf, "app.name") is None  # 96 applications
    assert any("../../.ci/gitlab/ not found" in w for w in inf.warnings)


def test_ml_linux_groups():
    inf = infer(corpus(ML))
    assert value(inf, "hardware.cpu.optimized.version") == "x86_64_v3"
    assert value(inf, "hardware.cpu.optimized.mode") == "genericMicro"
    assert where(inf, "hardware.cpu.optimized.version") == (ML, 10)
    assert value(inf, "hardware.gpu.nvidia.architecture") == "sm_80"  # the cuda group's override
    assert where(inf, "hardware.gpu.nvidia.architecture") == (ML, 95)
    assert value(inf, "hardware.gpu.amd.architecture") == "gfx90a"  # the rocm group's override
    assert value(inf, "mpi.implementation") == "openmpi"
    assert "gcc, llvm" in missing(inf, "compiler.implementation")  # py-torch gcc, jaxlib/tensorflow clang


def test_aws_pcluster_builds_two_targets_so_none_is_annotated():
    inf = infer(corpus(AWS))
    assert value(inf, "hardware.cpu.optimized.version") is None
    assert "x86_64_v3, x86_64_v4" in missing(inf, "hardware.cpu.optimized.version")
    assert value(inf, "mpi.implementation") == "intelmpi"  # mpi: require: intel-oneapi-mpi
    assert where(inf, "mpi.implementation") == (AWS, 38)
    assert value(inf, "communication.framework") == "libfabric"  # +external-libfabric
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("oneapi", "2024.1.0")
    assert value(infer(corpus(AWS), target="x86_64_v4"), "hardware.cpu.optimized.version") == "x86_64_v4"


def test_jcsda_container_environment_without_specs():
    inf = infer(corpus(JCSDA))
    assert value(inf, "hardware.cpu.optimized.version") == "x86_64"
    assert value(inf, "hardware.cpu.optimized.mode") == "architecture"
    assert where(inf, "hardware.cpu.optimized.version") == (JCSDA, 29)
    assert (value(inf, "mpi.implementation"), value(inf, "mpi.version")) == ("openmpi", "5.0.3")
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("gcc", "12.3.0")
    assert (value(inf, "os.name"), value(inf, "os.version")) == ("ubuntu", "22.04")
    assert inf.labels == {"app": "", "mpi": "openmpi"}
    assert "no specs" in missing(inf, "app.name")


def test_viperml_environment():
    inf = infer(corpus(VIPER_YAML))
    assert value(inf, "app.name") == "py-mpi4py"
    assert value(inf, "mpi.implementation") == "openmpi"
    assert where(inf, "mpi.implementation") == (VIPER_YAML, 7)
    assert value(inf, "mpi.version") is None  # openmpi @4 is any 4.x
    assert value(inf, "mpi.abi.version") == "40.0"
    assert value(inf, "hardware.cpu.optimized.version") == "x86_64"


# -- locks ------------------------------------------------------------------------------------


def test_gromacs_lock_v5():
    inf = infer(corpus(GROMACS_LOCK))
    expected = {
        "app.name": "gromacs",
        "app.version": "2024.2",
        "hardware.cpu.optimized.version": "x86_64_v3",
        "hardware.cpu.optimized.mode": "genericMicro",
        "mpi.implementation": "openmpi",
        "mpi.version": "5.0.3",
        "mpi.abi.version": "40.0",
        "libc.implementation": "glibc",
        "glibc.version": "2.36",
        "compiler.implementation": "gcc",
        "compiler.version": "12.2.0",
        "os.name": "debian",
        "os.version": "12",
    }
    assert {k: value(inf, k) for k in expected} == expected
    assert "fabric" in missing(inf, "communication.framework")  # fabrics=none
    prov = inf.annotations.entry(P + "mpi.version").provenance
    assert prov.fragment.startswith("openmpi@5.0.3/ukilxvg") and prov.file.endswith(GROMACS_LOCK)


def test_viperml_lock_v6_compilers_are_edges():
    inf = infer(corpus(VIPER_LOCK))
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("gcc", "10.2.1")
    assert value(inf, "app.name") == "py-mpi4py" and value(inf, "app.version") == "4.0.1"
    assert (value(inf, "mpi.implementation"), value(inf, "mpi.version")) == ("openmpi", "4.1.8")
    assert value(inf, "python.version") == "3.13"
    assert value(inf, "glibc.version") == "2.31"
    assert value(inf, "hardware.cpu.optimized.version") == "x86_64"


def edited_lock(tmp_path: Path, source: str, edit, name: str = "spack.lock", indent: int | None = None) -> Path:
    data = json.loads(corpus(source).read_text())
    edit(data)
    out = tmp_path / name
    out.write_text(json.dumps(data, indent=indent))
    return out


def node_named(data: dict, name: str) -> dict:
    return next(s for s in data["concrete_specs"].values() if s["name"] == name)


def test_lock_target_may_be_a_dict_and_externals_do_not_count(tmp_path):
    def edit(data):
        node_named(data, "gromacs")["arch"]["target"] = {"name": "zen3", "vendor": "AuthenticAMD"}
        node_named(data, "glibc")["arch"]["target"] = "x86_64"

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, edit), target="zen2")
    assert value(inf, "hardware.cpu.optimized.version") == "zen3"
    assert any("--target zen2 ignored" in w for w in inf.warnings)


def test_lock_cuda_nodes_and_cuda_arch(tmp_path):
    def edit(data):
        gromacs = node_named(data, "gromacs")
        gromacs["parameters"].update(cuda=True, cuda_arch=["90", "80"])
        cuda = dict(node_named(data, "cmake"), name="cuda", version="12.4.1", dependencies=[], hash="c" * 32)
        data["concrete_specs"]["c" * 32] = cuda
        gromacs["dependencies"].append(
            {"name": "cuda", "hash": "c" * 32, "parameters": {"deptypes": ["build", "link"], "virtuals": []}}
        )

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, edit))
    assert value(inf, "hardware.gpu.nvidia.cuda.version") == "12.4"
    assert value(inf, "hardware.gpu.nvidia.architecture") == "sm_80,sm_90"


def test_lock_mpi_fabrics_and_linked_ucx(tmp_path):
    def edit(data):
        openmpi = node_named(data, "openmpi")
        openmpi["parameters"]["fabrics"] = ["ofi", "cma"]
        ucx = dict(node_named(data, "libevent"), name="ucx", version="1.16.0", dependencies=[], hash="u" * 32)
        data["concrete_specs"]["u" * 32] = ucx
        openmpi["dependencies"].append(
            {"name": "ucx", "hash": "u" * 32, "parameters": {"deptypes": ["build", "link"], "virtuals": []}}
        )

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, edit))
    assert value(inf, "communication.framework") == "ucx,libfabric"  # fabrics=ofi, and the ucx it links
    assert value(inf, "ucx.version") == "1.16.0"


def test_lock_without_any_mpi_says_none(tmp_path):
    def edit(data):
        specs = data["concrete_specs"]
        gone = {h for h, s in specs.items() if s["name"] == "openmpi"}
        for h in gone:
            del specs[h]
        for spec in specs.values():
            spec["dependencies"] = [d for d in spec.get("dependencies", []) if d["hash"] not in gone]

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, edit))
    assert value(inf, "mpi.implementation") == "none"
    assert value(inf, "mpi.version") is None


def test_lock_roots_with_two_targets_pin_none(tmp_path):
    def edit(data):
        twin = json.loads(json.dumps(node_named(data, "gromacs")))
        twin["arch"]["target"] = "x86_64_v4"
        data["concrete_specs"]["t" * 32] = twin
        data["roots"].append({"hash": "t" * 32, "spec": "gromacs target=x86_64_v4"})

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, edit))
    assert value(inf, "hardware.cpu.optimized.version") is None
    assert "x86_64_v3" in missing(inf, "hardware.cpu.optimized.version")


def test_pretty_printed_lock_gives_line_numbers(tmp_path):
    path = edited_lock(tmp_path, GROMACS_LOCK, lambda data: None, indent=2)
    inf = infer(path)
    line = inf.annotations.entry(P + "hardware.cpu.optimized.version").provenance.line
    assert '"target": "x86_64_v3"' in path.read_text().splitlines()[line - 1]
    assert read_lock(corpus(GROMACS_LOCK)).version == 5


def test_a_lock_next_to_the_yaml_wins_and_the_yaml_fills_in(tmp_path):
    shutil.copy(corpus(VIPER_YAML), tmp_path / "spack.yaml")
    shutil.copy(corpus(VIPER_LOCK), tmp_path / "spack.lock")
    os.utime(tmp_path / "spack.yaml", (1_000_000, 1_000_000))  # older than the lock: no staleness warning
    for path in (tmp_path, tmp_path / "spack.yaml"):
        inf = infer(path)
        entry = inf.annotations.entry(P + "mpi.implementation")
        assert entry.provenance.file.endswith("spack.lock")
        assert entry.overridden and entry.overridden[0].provenance.file.endswith("spack.yaml")
        assert value(inf, "mpi.version") == "4.1.8"  # the yaml only says openmpi @4
        assert value(inf, "glibc.version") == "2.31"
        assert P + "glibc.version" not in inf.missing
        assert inf.annotations.entry(P + "docs.build.spack.env").provenance.file.endswith("spack.yaml")
        assert not any("older than" in w for w in inf.warnings)
    os.utime(tmp_path / "spack.lock", (500_000, 500_000))
    assert any("older than" in w for w in infer(tmp_path).warnings)


# -- --concretize -----------------------------------------------------------------------------


def test_concretize_without_spack_on_path_is_an_input_error(tmp_path, monkeypatch):
    shutil.copy(DATA / "binding" / "spack.yaml", tmp_path / "spack.yaml")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(InputError, match="needs the spack command on PATH"):
        infer(tmp_path, concretize=True)


def fake_spack(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir()
    script = bin_dir / "spack"
    script.write_text(f"#!{sys.executable}\nimport sys, shutil, pathlib\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_concretize_runs_spack_and_reads_its_lock(tmp_path, monkeypatch):
    env = tmp_path / "env"
    env.mkdir()
    shutil.copy(corpus(VIPER_YAML), env / "spack.yaml")
    record = tmp_path / "argv.json"
    fake_spack(tmp_path / "bin", f"""
import json
pathlib.Path({str(record)!r}).write_text(json.dumps(sys.argv[1:]))
if sys.argv[1:2] == ["-e"] and sys.argv[3:] == ["concretize"]:
    shutil.copy({str(corpus(VIPER_LOCK))!r}, pathlib.Path(sys.argv[2]) / "spack.lock")
""")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    inf = infer(env / "spack.yaml", concretize=True)
    assert json.loads(record.read_text()) == ["-e", str(env), "concretize"]
    assert value(inf, "mpi.version") == "4.1.8"
    assert inf.annotations.entry(P + "mpi.version").provenance.file == str(env / "spack.lock")


def test_a_failing_concretize_is_one_line(tmp_path, monkeypatch):
    shutil.copy(DATA / "binding" / "spack.yaml", tmp_path / "spack.yaml")
    fake_spack(tmp_path / "bin", "print('==> Error: \\x1b[1mno version of gromacs satisfies\\x1b[0m',"
                                 " file=sys.stderr)\nsys.exit(1)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(InputError) as err:
        infer(tmp_path, concretize=True)
    assert str(err.value) == f"{tmp_path}: spack concretize failed (exit 1): ==> Error: no version of gromacs satisfies"


def test_concretize_needs_an_environment_named_spack_yaml():
    with pytest.raises(InputError, match="needs an environment directory"):
        infer(corpus(VIPER_LOCK), concretize=True)


# -- bad input --------------------------------------------------------------------------------

BAD = sorted((DATA / "bad").iterdir())


@pytest.mark.parametrize("path", BAD, ids=[p.name for p in BAD])
def test_bad_input_is_one_line_naming_the_file(path):
    with pytest.raises(InputError) as err:
        infer(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))


@pytest.mark.parametrize(
    ("name", "line"),
    [("malformed.yaml", 4), ("specs-string.yaml", 2), ("specs-nested-list.yaml", 4), ("spec-syntax.yaml", 3),
     ("undefined-definition.yaml", 3), ("not-spack.yaml", 1)],
)
def test_bad_input_names_the_line_when_known(name, line):
    with pytest.raises(InputError, match="^" + re.escape(f"{DATA / 'bad' / name}:{line}: ")):
        infer(DATA / "bad" / name)


def test_bad_lock_versions_and_missing_files():
    with pytest.raises(InputError, match="lockfile-version 3 is not supported"):
        infer(DATA / "bad" / "lockfile-v3.lock")
    with pytest.raises(InputError, match="no such file"):
        infer(DATA / "absent" / "spack.yaml")
    with pytest.raises(InputError, match=r"no spack\.yaml or spack\.lock"):
        infer(DATA / "bad")


# -- review fixes: no made-up values, one-line errors -----------------------------------------


def env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spack.yaml"
    path.write_text(text)
    return path


def test_a_compiler_version_outside_the_spec_s_own_constraint_is_not_annotated(tmp_path):
    inf = infer(env(tmp_path, "spack:\n  specs: ['gromacs %gcc@12']\n  packages:\n    gcc:\n      version: [13.2.0]\n"))
    assert value(inf, "compiler.implementation") == "gcc"
    assert value(inf, "compiler.version") is None  # not 13.2.0: gromacs asks for gcc@12
    assert "13.2.0" in missing(inf, "compiler.version") and "gcc@12" in missing(inf, "compiler.version")
    ok = infer(env(tmp_path, "spack:\n  specs: ['gromacs %gcc@13']\n  packages:\n    gcc:\n      version: [13.2.0]\n"))
    assert value(ok, "compiler.version") == "13.2.0"


def test_a_spack0_compiler_name_falls_back_to_its_package_within_the_constraint(tmp_path):
    text = "spack:\n  specs: ['gromacs %oneapi@2024']\n  packages:\n    intel-oneapi-compilers:\n      version: [{}]\n"
    assert value(infer(env(tmp_path, text.format("2023.2.0"))), "compiler.version") is None
    assert value(infer(env(tmp_path, text.format("2024.1.0"))), "compiler.version") == "2024.1.0"


def test_a_git_version_of_the_mpi_gives_no_version_and_no_abi(tmp_path):
    inf = infer(env(tmp_path, "spack:\n  specs: ['gromacs ^openmpi@git.0123abc=main']\n"))
    assert value(inf, "mpi.implementation") == "openmpi"
    assert value(inf, "mpi.abi.version") is None  # not 40.0 from the digits of the hash
    assert value(inf, "mpi.version") is None
    assert "git" in missing(inf, "mpi.version")


def test_hpcx_version_is_not_the_open_mpi_version(tmp_path):
    inf = infer(env(tmp_path, "spack:\n  specs: ['gromacs ^hpcx-mpi@2.17.1']\n"))
    assert value(inf, "mpi.implementation") == "openmpi"
    assert value(inf, "mpi.version") is None and value(inf, "mpi.abi.version") is None
    assert "HPC-X" in missing(inf, "mpi.version")


def test_lock_hpcx_and_git_mpi_versions_are_not_annotated(tmp_path):
    def hpcx(data):
        node_named(data, "openmpi")["name"] = "hpcx-mpi"
        node_named(data, "hpcx-mpi")["version"] = "2.17.1"

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, hpcx))
    assert value(inf, "mpi.implementation") == "openmpi"
    assert value(inf, "mpi.version") is None and "HPC-X" in missing(inf, "mpi.version")
    assert value(inf, "mpi.abi.version") is None

    def git(data):
        node_named(data, "openmpi")["version"] = "git.0123abc=main"

    inf = infer(edited_lock(tmp_path, GROMACS_LOCK, git))
    assert value(inf, "mpi.version") is None and "git" in missing(inf, "mpi.version")
    assert value(inf, "mpi.abi.version") is None


def test_a_value_the_catalogue_rejects_is_missing_not_annotated(tmp_path):
    inf = infer(env(tmp_path, "spack:\n  specs: ['gromacs ^ucx@=v1.15']\n"))
    assert value(inf, "ucx.version") is None  # v1.15 is not a version; was annotated and then non-compliant
    assert "v1.15" in missing(inf, "ucx.version")
    assert not [p for p in inf.annotations.validate() if p.key.endswith("ucx.version")]


def test_a_matrix_exclude_that_does_not_parse_is_one_line(tmp_path):
    path = env(tmp_path, "spack:\n  specs:\n  - matrix:\n    - [gromacs]\n    - ['%gcc']\n    exclude: ['@@bad']\n")
    with pytest.raises(InputError) as err:
        infer(path)
    assert str(err.value).startswith(f"{path}:6: matrix exclude '@@bad' does not parse")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (["build", "link"], "'parameters' must be a mapping, got a list"),
        ({"deptypes": "link", "virtuals": []}, "parameters.deptypes must be a list of names, got text"),
        ({"deptypes": ["link"], "virtuals": "mpi"}, "parameters.virtuals must be a list of names, got text"),
    ],
)
def test_lock_edges_of_the_wrong_shape_are_one_line(tmp_path, parameters, expected):
    def edit(data):
        edge = next(d for d in node_named(data, "gromacs")["dependencies"] if d["name"] == "openmpi")
        edge["parameters"] = parameters

    path = edited_lock(tmp_path, GROMACS_LOCK, edit)
    with pytest.raises(InputError) as err:
        infer(path)
    message = str(err.value)
    assert message.startswith(f"{path}: concrete_specs[") and "dependency 'openmpi'" in message
    assert expected in message


# -- externals and preferences ----------------------------------------------------------------
EXTERNAL_MPICH = """\
spack:
  specs: ['gromacs +mpi ^mpich']
  packages:
    mpich:
      buildable: {buildable}
      externals:
      - spec: mpich@5.0.1 device=ch4 netmod=ofi
        prefix: /opt/mpich
"""


def test_the_fabric_of_an_external_mpi_comes_from_its_variants(tmp_path):
    inf = infer(env(tmp_path, EXTERNAL_MPICH.format(buildable="false")))
    assert (value(inf, "mpi.implementation"), value(inf, "mpi.version")) == ("mpich", "5.0.1")
    assert value(inf, "communication.framework") == "libfabric"
    assert where(inf, "communication.framework") == ("spack.yaml", 7)
    # buildable, and nothing says the external is the one used: no fabric
    inf = infer(env(tmp_path, EXTERNAL_MPICH.format(buildable="true")))
    assert value(inf, "communication.framework") is None


def test_externals_that_disagree_on_the_fabric_leave_it_out(tmp_path):
    text = EXTERNAL_MPICH.format(buildable="false") + "      - spec: mpich@5.0.1 netmod=ucx\n        prefix: /o\n"
    inf = infer(env(tmp_path, text))
    assert value(inf, "communication.framework") is None
    assert any("select different fabrics" in w for w in inf.warnings)


def test_a_preferred_compiler_is_reported_as_a_preference_not_a_fact(tmp_path):
    text = "spack:\n  specs: [gromacs]\n  packages:\n    all:\n      compiler: [gcc@12.3.0]\n"
    inf = infer(env(tmp_path, text))
    assert value(inf, "compiler.implementation") is None
    assert "is a preference" in missing(inf, "compiler.implementation")
    assert "gcc@12.3.0" in missing(inf, "compiler.version")
    # Spack 1.x's prefer: is a strong preference: kept, and said to be one
    prefer = "spack:\n  specs: [gromacs]\n  packages:\n    all:\n      prefer: ['%gcc@13.2.0']\n"
    inf = infer(env(tmp_path, prefer))
    assert value(inf, "compiler.implementation") == "gcc"
    assert "preference" in inf.annotations.entry(P + "compiler.implementation").provenance.note
    required = "spack:\n  specs: [gromacs]\n  packages:\n    all:\n      require: ['%gcc@13.2.0']\n"
    inf = infer(env(tmp_path, required))
    assert (value(inf, "compiler.implementation"), value(inf, "compiler.version")) == ("gcc", "13.2.0")
