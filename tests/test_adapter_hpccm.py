"""The HPCCM adapter on NVIDIA's own recipes (from the hpccm sdist) and on small recipes of ours.

Every recipe is evaluated through the adapter, i.e. in a worker process with
the real hpccm package; the library use (``hpcannotate.hpccm.annotations``) is
run through the real ``hpccm`` command line and its Dockerfile LABEL parsed back.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hpcannotate.errors import HpcAnnotateError, InputError, IsolatedError
from hpcannotate.recipes.adapters import adapter, detect_format
from hpcannotate.recipes.base import InferOptions
from hpcannotate.recipes.hpccm.adapter import HpccmAdapter, cuda_from_image, gpu_architectures, source_name_version

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "hpccm"
CACHE = REPO / ".cache" / "hpccm-sdist"
P = "org.supercontainers."
HPCCM_CLI = Path(sys.executable).with_name("hpccm")


# ------------------------------------------------------------------ fixtures
def _hpccm_version() -> str:
    import hpccm

    return hpccm.__version__


@pytest.fixture(scope="session")
def sdist_recipes() -> Path:
    """recipes/ of the hpccm sdist matching the installed hpccm (downloaded once into .cache/, then reused)."""
    version = _hpccm_version()
    tarball = CACHE / f"hpccm-{version}.tar.gz"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", f"hpccm=={version}",
             "-d", str(CACHE)],
            capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0 or not tarball.exists():
            pytest.skip(f"cannot download the hpccm {version} sdist: {proc.stderr.strip().splitlines()[-1:]}")
    root = CACHE / f"hpccm-{version}"
    if not (root / "recipes").is_dir():
        with tarfile.open(tarball) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(CACHE, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                archive.extractall(CACHE)
    return root / "recipes"


def infer(path: Path, target: str | None = None, timeout: float = 20.0, **userargs: str):
    return HpccmAdapter().infer(path, InferOptions(target=target, userargs=userargs, timeout=timeout))


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line containing ``text`` (so tests do not hard-code line numbers)."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def values(inference) -> dict[str, str]:
    return {k.removeprefix(P): v for k, v in inference.annotations.items()}


def missing(inference) -> dict[str, str]:
    return {k.removeprefix(P): v for k, v in inference.missing.items()}


def run_hpccm(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HPCCM_CLI), "--recipe", str(recipe), *args], capture_output=True, text=True,
                          timeout=60)


def dockerfile_labels(text: str) -> dict[str, str]:
    """The LABEL instructions of a Dockerfile, read back the way Docker reads them (shell-style words)."""
    labels: dict[str, str] = {}
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        if line.startswith("LABEL "):
            for word in shlex.split(line[len("LABEL "):]):
                key, _, value = word.partition("=")
                labels[key] = value
    return labels


# ------------------------------------------------------------------ NVIDIA's recipes
def test_gromacs_recipe(sdist_recipes):
    path = sdist_recipes / "gromacs" / "gromacs.py"
    inf = infer(path)
    v = values(inf)
    assert v["mpi.implementation"] == "openmpi"
    assert v["mpi.version"] == "3.1.4"
    assert v["mpi.abi.version"] == "40.0"
    # the final stage is Stage1, nvcr.io/nvidia/cuda:10.1-base-ubuntu16.04
    assert v["hardware.gpu.nvidia.cuda.version"] == "10.1"
    assert inf.annotations["org.opencontainers.image.base.name"] == "nvcr.io/nvidia/cuda:10.1-base-ubuntu16.04"
    assert (v["app.name"], v["app.version"]) == ("gromacs", "2020")
    assert v["compiler.implementation"] == "gcc"
    assert "compiler.version" in missing(inf)  # gnu() without a version: the distribution's gcc
    assert "communication.framework" in missing(inf)
    # Open MPI reaches the final stage through Stage0.runtime(): provenance names the openmpi() line
    entry = inf.annotations.entry("mpi.version")
    assert entry.provenance.line == line_of(path, "openmpi(version='3.1.4')")
    assert entry.provenance.fragment == "openmpi(version='3.1.4')"
    assert "runtime()" in entry.provenance.note
    # hpccm.* labels are kept although the recipe never sets annotate=True; its own label too
    assert inf.labels["hpccm.openmpi.version"] == "3.1.4"
    assert inf.labels["gromacs.version"] == "2020"


def test_gromacs_recipe_userarg_changes_the_app_version(sdist_recipes):
    inf = infer(sdist_recipes / "gromacs" / "gromacs.py", gromacs="2023.3")
    assert values(inf)["app.version"] == "2023.3"


def test_lammps_recipe(sdist_recipes):
    path = sdist_recipes / "lammps" / "lammps.py"
    v = values(infer(path, target="skylake_avx512"))
    assert (v["mpi.implementation"], v["mpi.version"]) == ("openmpi", "4.0.2")
    assert v["communication.framework"] == "ucx"
    assert v["ucx.version"] == "1.6.1"
    assert (v["compiler.implementation"], v["compiler.version"]) == ("gcc", "8")
    assert v["hardware.gpu.nvidia.cuda.version"] == "10.1"
    assert v["hardware.gpu.nvidia.architecture"] == "sm_70"  # KOKKOS_ARCH=Volta70
    assert (v["app.name"], v["app.version"]) == ("lammps", "patch_19Sep2019")
    assert v["hardware.cpu.optimized.version"] == "skylake_avx512"
    assert v["hardware.cpu.optimized.mode"] == "microarchitecture"


def test_lammps_aarch64_then_x86_each_recipe_gets_fresh_hpccm_state(sdist_recipes):
    path = sdist_recipes / "lammps" / "lammps.py"
    arm = infer(path, target="zen3", arch="aarch64", gpu_arch="Turing75")
    assert values(arm)["hardware.gpu.nvidia.cuda.version"] == "10.2"  # cuda-aarch64:10.2-base-ubuntu18.04
    assert values(arm)["hardware.gpu.nvidia.architecture"] == "sm_75"
    assert any("aarch64" in w and "zen3" in w for w in arm.warnings)
    assert "hpccm.gdrcopy.version" not in arm.labels  # lammps.py only adds gdrcopy on x86_64
    x86 = infer(path)
    assert "hpccm.gdrcopy.version" in x86.labels  # hpccm's g_cpu_arch did not leak from the aarch64 run
    assert not x86.warnings


def test_milc_recipe(sdist_recipes):
    inf = infer(sdist_recipes / "milc" / "milc.py")
    v = values(inf)
    assert (v["mpi.implementation"], v["mpi.version"]) == ("openmpi", "3.1.4")
    assert v["hardware.gpu.nvidia.cuda.version"] == "11.2"
    assert v["hardware.gpu.nvidia.architecture"] == "sm_60"  # QUDA_GPU_ARCH=sm_60 (USERARG default)
    assert v["app.name"] == "milc_qcd"
    assert "branch" in missing(inf)["app.version"]


def test_osu_benchmarks_recipe_directory_and_include(sdist_recipes):
    directory = sdist_recipes / "osu_benchmarks"
    inf = infer(directory)  # the directory: osu_benchmarks.py, which includes common.py
    assert inf.path.name == "osu_benchmarks.py"
    v = values(inf)
    assert (v["mpi.implementation"], v["mpi.version"]) == ("openmpi", "4.0.5")
    assert v["communication.framework"] == "ucx"
    assert v["ucx.version"] == "1.10.0"
    assert v["pmi.version"] == "2"  # slurm_pmi2 at /usr/local/pmi, openmpi(with_pmi='/usr/local/pmi')
    assert v["hardware.gpu.nvidia.cuda.version"] == "11.0"
    # the benchmarks are built after Stage0.runtime() ran; they reach the image through copy(_from='devel')
    assert (v["app.name"], v["app.version"]) == ("osu-micro-benchmarks", "5.7")
    mpi = inf.annotations.entry("mpi.version").provenance
    assert Path(mpi.file).name == "common.py"
    assert mpi.line == line_of(directory / "common.py", "Stage0 += openmpi(")


def test_hpcbase_gnu_hpcx_recipe(sdist_recipes):
    inf = infer(sdist_recipes / "hpcbase-gnu-hpcx.py")
    v = values(inf)
    assert v["mpi.implementation"] == "openmpi"  # HPC-X = Open MPI + UCX
    assert v["communication.framework"] == "ucx"
    assert "HPC-X" in missing(inf)["mpi.version"]
    assert v["hardware.gpu.nvidia.cuda.version"] == "13.2"
    assert v["compiler.implementation"] == "gcc"
    assert inf.labels["hpccm.fftw.version"] == "3.3.10"
    assert inf.labels["hpccm.gdrcopy.version"] == "2.4.2"


def test_hpcbase_gnu_hpcx_runtime_stage_with_userargs(sdist_recipes):
    inf = infer(sdist_recipes / "hpcbase-gnu-hpcx.py", cuda_version="12.4.1", distro="ubuntu22.04", runtime="1")
    v = values(inf)
    assert inf.annotations["org.opencontainers.image.base.name"] == "nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"
    assert v["hardware.gpu.nvidia.cuda.version"] == "12.4"
    assert v["mpi.implementation"] == "openmpi"
    assert (v["os.name"], v["os.version"]) == ("ubuntu", "22.04")


def test_hpcbase_nvhpc_hpcx_recipe(sdist_recipes):
    inf = infer(sdist_recipes / "hpcbase-nvhpc-hpcx.py")
    v = values(inf)
    assert (v["compiler.implementation"], v["compiler.version"]) == ("nvhpc", "26.3")
    assert v["mpi.implementation"] == "openmpi"
    assert "mpi.version" in missing(inf)
    # nvcr.io/nvidia/nvhpc:26.3-devel-cuda_multi-ubuntu24.04 carries several CUDA versions
    assert "several CUDA" in missing(inf)["hardware.gpu.nvidia.cuda.version"]


# ------------------------------------------------------------------ our recipes
def test_multistage_runtime_copy_labels_and_target():
    path = DATA / "multistage.py"
    inf = infer(path, target="zen3")
    v = values(inf)
    assert (v["mpi.implementation"], v["mpi.version"], v["mpi.abi.version"]) == ("openmpi", "4.1.5", "40.0")
    assert v["communication.framework"] == "ucx"
    assert v["ucx.version"] == "1.15.0"
    assert v["nccl.version"] == "2.18.3"
    assert v["pmi.version"] == "pmix-4"
    assert v["hardware.gpu.nvidia.cuda.version"] == "12.4"
    assert v["hardware.gpu.nvidia.architecture"] == "sm_80,sm_90"
    assert (v["app.name"], v["app.version"]) == ("gromacs", "2023.3")
    assert (v["hardware.cpu.optimized.version"], v["hardware.cpu.optimized.mode"]) == ("zen3", "microarchitecture")
    assert inf.annotations.entry("hardware.cpu.optimized.version").provenance.note == "from --target"
    # the recipe's own label(): ours become annotations, the others stay labels
    assert v["mpi.portability.mode"] == "mpi_replace"
    assert inf.annotations.entry("mpi.portability.mode").provenance.line == line_of(path, "Stage1 += label(")
    assert inf.labels["maintainer"] == "HPC team <hpc@example.org>"
    assert P + "mpi.portability.mode" not in inf.labels
    # the block was created on one line and added on another: the add line is reported
    assert inf.annotations.entry("mpi.version").provenance.line == line_of(path, "Stage0 += mpi")


def test_runtime_exclude_and_blocks_whose_runtime_copies_nothing():
    inf = infer(DATA / "runtime_exclude.py")
    v = values(inf)
    assert "mpi.implementation" not in v  # mpich is excluded from Stage0.runtime()
    assert "no MPI" in missing(inf)["mpi.implementation"]
    # the app reaches the image; it was built with the nvhpc toolchain (gnu is in the build stage too)
    assert (v["app.name"], v["app.version"]) == ("stream", "5.10")
    assert (v["compiler.implementation"], v["compiler.version"]) == ("nvhpc", "24.5")
    # the final base image has no CUDA: the build stage's does
    cuda = inf.annotations.entry("hardware.gpu.nvidia.cuda.version")
    assert cuda.value == "12.4"
    assert cuda.provenance.note == "the build stage's base image"


def test_userargs_choose_the_mpi():
    mpich = values(infer(DATA / "userargs.py", mpi="mpich"))
    assert (mpich["mpi.implementation"], mpich["mpi.version"], mpich["mpi.abi.version"]) == ("mpich", "4.1.2", "12.0")
    ompi = values(infer(DATA / "userargs.py", mpi="openmpi", version="5.0.3"))
    assert (ompi["mpi.implementation"], ompi["mpi.version"]) == ("openmpi", "5.0.3")


def test_nested_blocks_of_a_recipe_defined_block():
    inf = infer(DATA / "nested.py")
    v = values(inf)
    assert (v["mpi.implementation"], v["mpi.version"]) == ("mpich", "4.1.2")
    assert v["communication.framework"] == "libfabric"
    assert v["libfabric.version"] == "1.19.0"
    assert (v["compiler.implementation"], v["compiler.version"]) == ("llvm", "17")  # from a list: [llvm(), cmake()]
    assert inf.annotations.entry("libfabric.version").provenance.line == line_of(DATA / "nested.py",
                                                                                "Stage0 += fabric_stack()")


def test_recipe_that_pins_its_target_wins_over_target_option():
    path = DATA / "pinned.py"
    inf = infer(path, target="zen3")
    v = values(inf)
    assert v["hardware.cpu.optimized.version"] == "neoverse_v2"
    entry = inf.annotations.entry("hardware.cpu.optimized.version")
    assert entry.provenance.line == line_of(path, "set_cpu_target(")
    assert any("zen3" in w for w in inf.warnings)
    # the recipe branched on its own target: nvhpc with cuda= and mvapich2 are there
    assert (v["compiler.implementation"], v["compiler.version"]) == ("nvhpc", "24.5")
    assert (v["mpi.implementation"], v["mpi.version"]) == ("mvapich2", "2.3.7")
    assert v["hardware.gpu.nvidia.cuda.version"] == "12.4"


def test_target_option_is_visible_to_the_recipe():
    zen3 = infer(DATA / "target_branch.py", target="zen3")
    assert (values(zen3)["mpi.implementation"], values(zen3)["mpi.version"]) == ("intelmpi", "2021.10.0")
    assert values(zen3)["communication.framework"] == "libfabric"  # Intel MPI 2019+ is libfabric-only
    assert zen3.labels["built.for"] == "zen3"
    other = infer(DATA / "target_branch.py", target="x86_64_v3")
    assert values(other)["mpi.implementation"] == "mpich"
    assert values(other)["hardware.cpu.optimized.mode"] == "genericMicro"


def test_no_target_and_no_cpu_flags_is_the_base_image_architecture():
    # nothing pins a target and nothing compiles with -march: the compilers' default, the family's baseline
    inf = infer(DATA / "arm.py")
    v = values(inf)
    assert (v["hardware.cpu.optimized.version"], v["hardware.cpu.optimized.mode"]) == ("aarch64", "architecture")
    entry = inf.annotations.entry("hardware.cpu.optimized.version")
    assert entry.provenance.line == 2 and "baseline" in entry.provenance.note
    assert v["hardware.gpu.nvidia.cuda.version"] == "12.2"
    assert v["mpi.implementation"] == "openmpi"
    assert inf.labels["hpccm.gdrcopy.version"] == "2.4.1"  # annotate=False, still collected


def test_included_file_is_named_in_provenance():
    inf = infer(DATA / "include_main.py")
    base = inf.annotations.entry("hardware.gpu.nvidia.cuda.version").provenance
    assert Path(base.file).name == "include_part.py"
    assert base.line == line_of(DATA / "include_part.py", "baseimage(")
    assert values(inf)["hardware.gpu.nvidia.cuda.version"] == "11.8"
    assert values(inf)["mpi.version"] == "5.0.3"


def test_two_mpis_leave_the_mpi_out():
    inf = infer(DATA / "two_mpis.py")
    assert "mpi.implementation" not in values(inf)
    assert "openmpi" in missing(inf)["mpi.implementation"] and "mpich" in missing(inf)["mpi.implementation"]
    assert values(inf)["communication.framework"] == "libfabric"  # the libfabric-dev OS package
    assert "distribution package" in missing(inf)["libfabric.version"]


def test_json_has_annotations_provenance_and_missing():
    data = infer(DATA / "userargs.py", mpi="mpich").to_json()
    assert data["format"] == "hpccm"
    assert data["annotations"][P + "mpi.implementation"] == "mpich"
    assert data["provenance"][P + "mpi.version"]["line"] == line_of(DATA / "userargs.py", "mpich(version=")
    assert P + "hardware.gpu.nvidia.cuda.version" in data["missing"]


# ------------------------------------------------------------------ detection and bad input
def test_detect():
    hpccm = HpccmAdapter()
    assert hpccm.detect(DATA / "multistage.py")
    assert hpccm.detect(DATA / "include_part.py")
    assert not hpccm.detect(Path(__file__).parent / "conftest.py")
    assert not hpccm.detect(DATA)
    assert detect_format(DATA / "nested.py") == "hpccm"
    assert isinstance(adapter("hpccm"), HpccmAdapter)


@pytest.mark.parametrize(
    ("name", "userargs", "expected"),
    [
        ("bad_raises.py", {}, "line 2: RuntimeError: this recipe refuses to build"),
        ("bad_syntax.py", {}, "line 2: syntax error"),
        ("bad_include.py", {}, "line 2: FileNotFoundError"),
        ("bad_exit.py", {}, "line 3: the recipe called exit(3)"),
        ("userargs.py", {}, "line 2: USERARG has no key 'mpi' (pass --userarg mpi=VALUE)"),
        ("userargs.py", {"mpi": "lam"}, "ValueError: unknown mpi lam"),
    ],
)
def test_bad_recipe_is_one_line_naming_the_file(name, userargs, expected):
    with pytest.raises(InputError) as err:
        infer(DATA / name, **userargs)
    message = str(err.value)
    assert message.startswith(str(DATA / name) + ": ")
    assert expected in message
    assert "\n" not in message
    assert "Traceback" in (err.value.detail or "")  # kept for --debug


def test_recipe_that_loops_times_out():
    with pytest.raises(IsolatedError) as err:
        infer(DATA / "bad_loops.py", timeout=2)
    assert str(err.value) == f"{DATA / 'bad_loops.py'}: evaluation did not finish within 2 s (raise it with --timeout)"


def test_missing_file_and_bad_target():
    with pytest.raises(InputError, match=r"no-such\.py: no such file"):
        infer(DATA / "no-such.py")
    with pytest.raises(InputError, match="did you mean 'zen3'"):
        infer(DATA / "multistage.py", target="zen-3")
    with pytest.raises(HpcAnnotateError, match="several HPCCM recipes"):
        infer(DATA)


# ------------------------------------------------------------------ helpers
@pytest.mark.parametrize(
    ("image", "cuda"),
    [
        ("nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04", "12.4"),
        ("nvidia/cuda:10.1-base-ubuntu16.04", "10.1"),
        ("nvcr.io/ea-cuda-sc19/arm-partners/cuda-aarch64:10.2-devel-ubuntu18.04", "10.2"),
        ("nvcr.io/nvidia/nvhpc:24.5-devel-cuda12.4-ubuntu22.04", "12.4"),
        ("nvcr.io/nvidia/nvhpc:26.3-devel-cuda_multi-ubuntu24.04", None),
        ("ubuntu:22.04", None),
        ("localhost:5000/cuda", None),
        ("nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04@sha256:" + "a" * 64, "12.4"),
        ("localhost:5000/cuda:12.2.0-base@sha256:" + "b" * 64, "12.2"),
    ],
)
def test_cuda_from_image(image, cuda):
    assert cuda_from_image(image)[0] == cuda


def test_a_cuda_image_pinned_by_digest_alone_is_still_a_cuda_image():
    version, reason = cuda_from_image("nvcr.io/nvidia/cuda@sha256:" + "c" * 64)
    assert version is None
    assert "CUDA image nvcr.io/nvidia/cuda is pinned by digest" in reason and "not a CUDA image" not in reason


def test_gpu_architectures_from_build_options():
    assert gpu_architectures(["-D CMAKE_CUDA_ARCHITECTURES=80;90"]) == ["sm_80", "sm_90"]
    assert gpu_architectures(["-D QUDA_GPU_ARCH=sm_60"]) == ["sm_60"]
    assert gpu_architectures(["-D KOKKOS_ARCH=Ampere80"]) == ["sm_80"]
    assert gpu_architectures(["-D GMX_CUDA_TARGET_SM=70;80"]) == ["sm_70", "sm_80"]
    assert gpu_architectures(["-D GMX_GPU=CUDA"]) == []


def test_source_name_version():
    from hpcannotate.recipes.hpccm.adapter import Block

    def block(**attrs):
        return Block({"kind": "generic_autotools", "attrs": attrs}, Path("r.py"))

    assert source_name_version(block(url="https://x.org/openmpi-4.1.5.tar.bz2")) == ("openmpi", "4.1.5")
    assert source_name_version(block(url="https://github.com/lammps/lammps/archive/stable_2Aug2023.tar.gz")) == \
        ("lammps", "stable_2Aug2023")
    assert source_name_version(block(url="https://github.com/Unidata/netcdf-c/archive/v4.9.2.tar.gz")) == \
        ("netcdf-c", "4.9.2")
    assert source_name_version(block(repository="https://github.com/milc-qcd/milc_qcd", branch="develop")) == \
        ("milc_qcd", None)


# ------------------------------------------------------------------ library use inside a recipe, via hpccm
def test_library_use_through_the_hpccm_cli():
    proc = run_hpccm(DATA / "library_use.py")
    assert proc.returncode == 0, proc.stderr
    labels = dockerfile_labels(proc.stdout)
    assert labels[P + "mpi.implementation"] == "openmpi"
    assert labels[P + "mpi.version"] == "4.1.5"
    assert labels[P + "hardware.gpu.nvidia.cuda.version"] == "12.4"
    assert labels[P + "hardware.cpu.optimized.version"] == "zen3"
    assert labels[P + "hardware.cpu.optimized.mode"] == "microarchitecture"
    assert labels[P + "hardware.gpu.nvidia.architecture"] == "sm_80,sm_90"
    assert labels[P + "communication.framework"] == "ucx"
    assert labels[P + "mpi.portability.mode"] == "mpi_replace"  # extra, given as mpi_portability_mode=
    assert labels[P + "app.name"] == "myapp"
    # quoted so that Docker reads back the value as given: no $ expansion, the ' kept
    assert labels["org.opencontainers.image.description"] == "myapp with Open MPI, it's $fast"
    assert "'myapp with Open MPI, it'\"'\"'s $fast'" in proc.stdout
    # hpccm's own labels are not copied into ours
    assert not any(key.startswith("hpccm.") for key in labels)


def test_library_uses_hpccm_cpu_target_when_no_target_is_given(tmp_path):
    recipe = tmp_path / "recipe.py"
    recipe.write_text(
        "from hpcannotate.hpccm import annotations\n"
        "Stage0 += baseimage(image='ubuntu:22.04')\n"
        "Stage0 += mpich(version='4.1.2')\n"
        "Stage0 += annotations(Stage0)\n"
    )
    labels = dockerfile_labels(run_hpccm(recipe, "--cpu-target", "skylake_avx512").stdout)
    assert labels[P + "hardware.cpu.optimized.version"] == "skylake_avx512"
    assert labels[P + "mpi.implementation"] == "mpich"
    plain = run_hpccm(recipe)
    without = dockerfile_labels(plain.stdout)
    # no target and no -march: the baseline of the architecture hpccm generates for (this host's)
    assert without[P + "hardware.cpu.optimized.mode"] == "architecture"
    assert without[P + "hardware.cpu.optimized.version"] == hpccm_host_family()
    assert without[P + "mpi.version"] == "4.1.2"


def hpccm_host_family() -> str:
    import platform

    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())


def test_library_warns_when_mandatory_keys_are_missing(tmp_path):
    recipe = tmp_path / "recipe.py"
    recipe.write_text(
        "from hpcannotate.hpccm import annotations\n"
        "Stage0 += baseimage(image='ubuntu:22.04')\n"
        "Stage0 += shell(commands=['spack install zlib'])\n"
        "Stage0 += annotations(Stage0)\n"
    )
    proc = run_hpccm(recipe)
    assert proc.returncode == 0, proc.stderr
    assert P + "hardware.cpu.optimized.version" not in dockerfile_labels(proc.stdout)
    assert "mandatory key org.supercontainers.hardware.cpu.optimized.version is not in the label set" in proc.stderr
    assert "spack install" in proc.stderr


def test_a_target_nothing_compiles_for_is_warned_about(tmp_path):
    recipe = _recipe(tmp_path, "Stage0 += mpich(version='4.1.2')\n")
    inf = infer(recipe, target="zen3")
    assert values(inf)["hardware.cpu.optimized.version"] == "zen3"
    assert any("nothing in the recipe compiles with zen3 flags" in w for w in inf.warnings)
    # a compiler block's toolchain passed to the build: hpccm's own zen3 flags reach the compiler
    built = _recipe(tmp_path, "compiler = gnu()\nStage0 += compiler\n"
                              "Stage0 += generic_autotools(url='https://x.org/app-1.0.tar.gz', "
                              "toolchain=compiler.toolchain)\n", "built.py")
    inf = infer(built, target="zen3")
    assert not any("compiles with zen3 flags" in w for w in inf.warnings), inf.warnings


def test_march_flags_without_a_target_leave_the_target_out(tmp_path):
    recipe = _recipe(tmp_path, ""
                               "Stage0 += generic_autotools(url='https://x.org/app-1.0.tar.gz', "
                               "toolchain=hpccm.toolchain(CFLAGS='-O3 -march=znver3'))\n")
    inf = infer(recipe)
    assert "hardware.cpu.optimized.version" not in values(inf)
    assert "-march=znver3" in missing(inf)["hardware.cpu.optimized.version"]


def test_builds_that_tune_for_the_build_host_leave_the_target_out(tmp_path):
    recipe = _recipe(tmp_path, "Stage0 += openblas()\n")
    assert "OpenBLAS" in missing(infer(recipe))["hardware.cpu.optimized.version"]
    pinned = _recipe(tmp_path, ""
                               "Stage0 += openblas(make_opts=['DYNAMIC_ARCH=1'])\n", "pinned.py")
    assert values(infer(pinned))["hardware.cpu.optimized.version"] == "x86_64"


def test_library_singularity_labels_are_not_quoted():
    proc = run_hpccm(DATA / "library_use.py", "--format", "singularity", "--singularity-version", "3.2")
    assert proc.returncode == 0, proc.stderr
    assert "    org.opencontainers.image.description myapp with Open MPI, it's $fast" in proc.stdout.splitlines()


def test_library_rejects_a_bad_target(tmp_path):
    recipe = tmp_path / "recipe.py"
    recipe.write_text((DATA / "library_use.py").read_text().replace("'zen3'", "'zen-3'"))
    proc = run_hpccm(recipe)
    assert proc.returncode != 0
    assert "annotations(): target 'zen-3' is not an archspec CPU target (did you mean 'zen3'?)" in proc.stderr


def test_hooks_do_not_change_hpccm_output(tmp_path):
    plain = DATA / "multistage.py"
    hooked = tmp_path / "multistage.py"
    hooked.write_text("import hpcannotate.hpccm\n" + plain.read_text())
    first, second = run_hpccm(plain), run_hpccm(hooked)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert "COPY --from=build /usr/local/openmpi /usr/local/openmpi" in first.stdout


def test_library_recipe_through_the_adapter_keeps_the_recipe_target():
    inf = infer(DATA / "library_use.py", target="zen2")
    v = values(inf)
    assert v["hardware.cpu.optimized.version"] == "zen3"  # annotations(target='zen3') in the recipe
    assert any("zen2" in w for w in inf.warnings)
    assert v["mpi.portability.mode"] == "mpi_replace"
    assert inf.annotations["org.opencontainers.image.description"] == "myapp with Open MPI, it's $fast"
    # values the recipe's label repeats keep the provenance of the block that says them
    assert inf.annotations.entry("mpi.version").provenance.line == line_of(DATA / "library_use.py",
                                                                          "openmpi(version=")


# ------------------------------------------------------------------ review fixes: no made-up values
def _recipe(tmp_path: Path, body: str, name: str = "recipe.py") -> Path:
    path = tmp_path / name
    path.write_text("Stage0 += baseimage(image='ubuntu:22.04')\n" + body)
    return path


def test_an_infrastructure_build_after_the_application_is_not_the_application(tmp_path):
    recipe = _recipe(tmp_path, (
        "Stage0 += generic_cmake(url='https://ftp.gromacs.org/gromacs/gromacs-2023.3.tar.gz', prefix='/opt/gmx')\n"
        "Stage0 += generic_autotools(url='https://download.open-mpi.org/release/hwloc/v2.9/hwloc-2.9.3.tar.gz')\n"
    ))
    v = values(infer(recipe))
    assert (v["app.name"], v["app.version"]) == ("gromacs", "2023.3")  # not hwloc 2.9.3


def test_two_applications_and_none_clearly_the_image_s_leave_app_name_out(tmp_path):
    recipe = _recipe(tmp_path, (
        "Stage0 += generic_cmake(url='https://ftp.gromacs.org/gromacs/gromacs-2023.3.tar.gz')\n"
        "Stage0 += generic_autotools(url='https://www.fftw.org/fftw-3.3.10.tar.gz')\n"
    ))
    inf = infer(recipe)
    assert "app.name" not in values(inf) and "app.version" not in values(inf)
    assert "gromacs" in missing(inf)["app.name"] and "fftw" in missing(inf)["app.name"]


def test_cuda_versions_that_disagree_leave_the_cuda_version_out(tmp_path):
    path = tmp_path / "recipe.py"
    path.write_text("Stage0 += baseimage(image='nvcr.io/nvidia/cuda:12.1.1-devel-ubuntu22.04')\n"
                    "Stage0 += nccl(cuda='11.8', version='2.18.3-1')\n")
    inf = infer(path)
    assert "hardware.gpu.nvidia.cuda.version" not in values(inf)
    reason = missing(inf)["hardware.gpu.nvidia.cuda.version"]
    assert "12.1" in reason and "11.8" in reason and "nccl" in reason


def test_debian_fabric_package_is_not_libfabric(tmp_path):
    recipe = _recipe(tmp_path, "Stage0 += openmpi(version='4.1.5')\n"
                               "Stage0 += packages(ospackages=['fabric', 'python3-fabric'])\n")
    inf = infer(recipe)
    assert values(inf).get("communication.framework") != "libfabric"
    assert "libfabric.version" not in missing(inf)
    with_lib = infer(_recipe(tmp_path, "Stage0 += packages(ospackages=['libfabric-dev'])\n", "lib.py"))
    assert values(with_lib)["communication.framework"] == "libfabric"


def test_hpcx_built_from_its_tarball_is_no_open_mpi_version(tmp_path):
    recipe = _recipe(tmp_path, "Stage0 += generic_build(url='https://example.org/hpcx-2.17.1.tbz', directory='hpcx', "
                               "build=['true'])\n")
    inf = infer(recipe)
    assert values(inf)["mpi.implementation"] == "openmpi"
    assert "mpi.version" not in values(inf)
    assert "HPC-X" in missing(inf)["mpi.version"]


def test_the_recipe_runs_in_its_own_directory(tmp_path):
    (tmp_path / "version.txt").write_text("4.1.6\n")
    recipe = _recipe(tmp_path, "Stage0 += openmpi(version=open('version.txt').read().strip())\n")
    assert values(infer(recipe))["mpi.version"] == "4.1.6"


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path):
    recipe = tmp_path / "latin.py"
    recipe.write_bytes(b"# caf\xe9\nStage0 += baseimage(image='ubuntu:22.04')\n")
    with pytest.raises(InputError) as err:
        infer(recipe)
    message = str(err.value)
    assert message.startswith(f"{recipe}: not UTF-8 text (byte 0xe9")
    assert "UnicodeDecodeError" not in message and "\n" not in message
    declared = tmp_path / "declared.py"  # a PEP 263 coding line is honoured, as Python does
    declared.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\nStage0 += baseimage(image='ubuntu:22.04')\n")
    assert values(infer(declared))["os.name"] == "ubuntu"
    (tmp_path / "part.py").write_bytes(b"# caf\xe9\n")
    main = _recipe(tmp_path, "include('part.py')\n", "main.py")
    with pytest.raises(InputError, match=r"main\.py: line 2: part\.py: not UTF-8 text \(byte 0xe9"):
        infer(main)


def test_a_process_the_recipe_starts_neither_holds_up_nor_outlives_it(tmp_path):
    import os
    import time
    import uuid

    from .test_sandbox import processes_with

    marker = f"hpcannotate-sleeper-{uuid.uuid4().hex}"  # its PID is the sandbox's: found by its command line
    recipe = _recipe(tmp_path, (
        "import subprocess\n"
        f"child = subprocess.Popen(['python3', '-c', 'import time; time.sleep(30)', {marker!r}])\n"
    ))
    started = time.monotonic()
    inf = infer(recipe, timeout=15)
    assert time.monotonic() - started < 10  # not reported as timed out while sleep holds the output open
    assert values(inf)["os.name"] == "ubuntu"
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_with(marker)
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"the recipe's child (pids {left}) outlived the worker"


def test_nvhpc_builds_without_tp_are_tuned_for_the_build_host(tmp_path):
    body = ("compiler = nvhpc(eula=True)\nStage0 += compiler\n"
            "Stage0 += generic_autotools(url='https://x.org/app-1.0.tar.gz', toolchain=compiler.toolchain)\n")
    recipe = _recipe(tmp_path, body)
    assert "without -tp" in missing(infer(recipe))["hardware.cpu.optimized.version"]
    zen3 = infer(recipe, target="zen3")  # hpccm's nvhpc toolchain then carries -tp=zen3
    assert values(zen3)["hardware.cpu.optimized.version"] == "zen3"
    assert not any("build host" in w or "compiles with zen3" in w for w in zen3.warnings), zen3.warnings
