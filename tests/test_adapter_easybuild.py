"""The EasyBuild adapter on real easyconfigs of the installed easybuild-easyconfigs, and on our own (good and bad).

Most real files are evaluated in one batch (one worker per core, as ``infer_many`` does for a corpus),
so the suite stays fast; the single-file path is exercised by the CLI tests.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from hpcannotate.errors import HpcAnnotateError, InputError, IsolatedError
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.recipes.adapters import adapter
from hpcannotate.recipes.base import Inference, InferOptions
from hpcannotate.recipes.easybuild import adapter as eb
from hpcannotate.recipes.easybuild.evaluate import easyconfig_stem, installed_easyconfigs, tree_root
from hpcannotate.recipes.facts import MAX_WIRE_TEXT, Mpi

P = "org.supercontainers."
DATA = Path(__file__).parent / "data" / "easybuild"
TREES = [Path(t) for t in installed_easyconfigs()]
if not TREES:
    pytest.skip("easybuild-easyconfigs is not installed", allow_module_level=True)
EC = TREES[0]

REAL = {
    "gromacs": "g/GROMACS/GROMACS-2023.3-foss-2023a.eb",
    "gromacs_cuda": "g/GROMACS/GROMACS-2023.3-foss-2023a-CUDA-12.1.1-PLUMED-2.9.0.eb",
    "gromacs_lmpflf": "g/GROMACS/GROMACS-2025.2-lmpflf-2025b.eb",
    "gromacs_lfoss": "g/GROMACS/GROMACS-2025.2-lfoss-2025b.eb",
    "pytorch": "p/PyTorch/PyTorch-2.1.2-foss-2023a.eb",
    "pytorch_cuda": "p/PyTorch/PyTorch-2.1.2-foss-2023a-CUDA-12.1.1.eb",
    "abinit_intel": "a/ABINIT/ABINIT-10.2.5-intel-2023a.eb",
    "hdf5_nvompi": "h/HDF5/HDF5-1.12.2-nvompi-2022.07.eb",
    "amgx_sm": "a/AMGX/AMGX-2.4.0-foss-2023a-CUDA-12.1.1.eb",
    "elpa_nvhpc": "e/ELPA/ELPA-2025.06.002-NVHPC-25.3-CUDA-12.8.0.eb",
    "openblas_legacy_nvhpc": "o/OpenBLAS/OpenBLAS-0.3.20-NVHPC-22.7-CUDA-11.7.0.eb",
    "foss_itself": "f/foss/foss-2023a.eb",
    "openmpi_itself": "o/OpenMPI/OpenMPI-4.1.5-GCC-12.3.0.eb",
    "zlib_gcccore": "z/zlib/zlib-1.2.13-GCCcore-12.3.0.eb",
}


def _value(inference: Inference, key: str) -> str | None:
    return inference.annotations.get(P + key)


def _line_of(path: Path, pattern: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if re.match(pattern, line):
            return number
    raise AssertionError(f"{pattern!r} not in {path}")


@pytest.fixture(scope="module")
def real() -> dict[str, Inference]:
    """Every real easyconfig above, through one infer_many call (the corpus code path)."""
    paths = [EC / rel for rel in REAL.values()]
    missing = [str(p) for p in paths if not p.is_file()]
    assert not missing, f"easybuild-easyconfigs lacks {missing}"
    results = adapter("easybuild").infer_many(paths, InferOptions())
    errors = [r for r in results if isinstance(r, HpcAnnotateError)]
    assert not errors, errors
    return dict(zip(REAL, results, strict=True))


@pytest.fixture(scope="module")
def own() -> dict[str, Inference | HpcAnnotateError]:
    """Our own easyconfigs (tests/data/easybuild), good and bad, in one batch with a short timeout."""
    names = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*.eb") if "hangs-in-c" not in p.name)
    options = InferOptions(timeout=2.0, robot_paths=(DATA / "robot",))
    results = adapter("easybuild").infer_many([DATA / n for n in names], options)
    return dict(zip(names, results, strict=True))


# ----------------------------------------------------------------------------- detection
def test_detects_easyconfig_files_only(tmp_path):
    eb_adapter = adapter("easybuild")
    assert eb_adapter.name == "easybuild"
    assert eb_adapter.detect(EC / REAL["gromacs"])
    assert not eb_adapter.detect(EC / "g" / "GROMACS")  # a directory
    other = tmp_path / "recipe.py"
    other.write_text("Stage0 += baseimage(image='ubuntu')\n")
    assert not eb_adapter.detect(other)


# ----------------------------------------------------------------------------- real easyconfigs
def test_gromacs_foss_resolves_toolchain(real):
    inference = real["gromacs"]
    assert _value(inference, "app.name") == "GROMACS"
    assert _value(inference, "app.version") == "2023.3"
    assert _value(inference, "mpi.implementation") == "openmpi"
    assert _value(inference, "mpi.version") == "4.1.5"
    assert _value(inference, "mpi.abi.version") == "40.0"
    assert _value(inference, "compiler.implementation") == "gcc"
    assert _value(inference, "compiler.version") == "12.3.0"
    assert _value(inference, "communication.framework") == "ucx,libfabric"
    assert _value(inference, "ucx.version") == "1.14.1"
    assert _value(inference, "libfabric.version") == "1.18.0"
    assert _value(inference, "python.version") == "3.11"
    assert _value(inference, "build.recipe.format") == "easybuild"
    assert P + "hardware.gpu.nvidia.cuda.version" not in inference.annotations
    assert "CUDA" in inference.missing[P + "hardware.gpu.nvidia.cuda.version"]


def test_provenance_points_at_lines_and_toolchain_chain(real):
    path = EC / REAL["gromacs"]
    inference = real["gromacs"]
    name = inference.annotations.entry(P + "app.name").provenance
    assert (name.file, name.line) == (str(path), _line_of(path, r"name\s*="))
    mpi = inference.annotations.entry(P + "mpi.version").provenance
    assert mpi.line == _line_of(path, r"toolchain\s*=")
    assert mpi.fragment == "toolchain = foss/2023a -> OpenMPI-4.1.5-GCC-12.3.0.eb"
    assert mpi.note.endswith("OpenMPI-4.1.5-GCC-12.3.0.eb")
    ucx = inference.annotations.entry(P + "ucx.version").provenance
    assert ucx.fragment.endswith("OpenMPI-4.1.5-GCC-12.3.0.eb -> ('UCX', '1.14.1')")
    python = inference.annotations.entry(P + "python.version").provenance
    assert python.line == _line_of(path, r"\s*\('Python',")


def test_gromacs_cuda_from_dependency(real):
    inference = real["gromacs_cuda"]
    path = EC / REAL["gromacs_cuda"]
    assert _value(inference, "hardware.gpu.nvidia.cuda.version") == "12.1"
    assert inference.annotations.entry(P + "hardware.gpu.nvidia.cuda.version").provenance.line == _line_of(
        path, r"\s*\('CUDA',")
    assert _value(inference, "mpi.implementation") == "openmpi"
    # cuda_compute_capabilities is not in this easyconfig: EasyBuild takes it from its configuration
    assert "--cuda-compute-capabilities" in inference.missing[P + "hardware.gpu.nvidia.architecture"]


def test_pytorch_with_and_without_cuda(real):
    cpu, gpu = real["pytorch"], real["pytorch_cuda"]
    for inference in (cpu, gpu):
        assert _value(inference, "app.name") == "PyTorch"
        assert _value(inference, "app.version") == "2.1.2"
        assert _value(inference, "python.version") == "3.11"
        assert _value(inference, "mpi.version") == "4.1.5"
    assert _value(gpu, "hardware.gpu.nvidia.cuda.version") == "12.1"
    assert _value(gpu, "nccl.version") == "2.18.3"
    assert P + "nccl.version" not in cpu.annotations
    assert P + "hardware.gpu.nvidia.cuda.version" not in cpu.annotations


def test_cuda_compute_capabilities_become_sm_archs(real):
    inference = real["amgx_sm"]  # cuda_compute_capabilities = ['7.0', '8.0', '9.0']
    assert _value(inference, "hardware.gpu.nvidia.architecture") == "sm_70,sm_80,sm_90"
    line = inference.annotations.entry(P + "hardware.gpu.nvidia.architecture").provenance.line
    assert line == _line_of(EC / REAL["amgx_sm"], r"cuda_compute_capabilities\s*=")


def test_intel_toolchain(real):
    inference = real["abinit_intel"]
    assert _value(inference, "mpi.implementation") == "intelmpi"
    assert _value(inference, "mpi.version") == "2021.9.0"
    assert _value(inference, "mpi.abi.version") == "12.0"
    assert _value(inference, "compiler.implementation") == "oneapi"
    assert _value(inference, "compiler.version") == "2023.1.0"
    # impi's easyconfig depends on UCX (the mlx provider); Intel MPI itself always goes through libfabric
    assert _value(inference, "communication.framework") == "libfabric,ucx"
    assert _value(inference, "ucx.version") == "1.14.1"
    assert "bundles" in inference.missing[P + "libfabric.version"]


def test_lmpflf_is_mpich_with_llvm(real):
    inference = real["gromacs_lmpflf"]
    assert _value(inference, "mpi.implementation") == "mpich"
    assert _value(inference, "mpi.version") == "4.3.2"
    assert _value(inference, "mpi.abi.version") == "12.0"
    assert _value(inference, "compiler.implementation") == "llvm"
    assert _value(inference, "compiler.version") == "20.1.8"
    assert _value(inference, "communication.framework") == "ucx"
    assert _value(inference, "ucx.version") == "1.19.0"


def test_lfoss_is_openmpi_with_llvm(real):
    inference = real["gromacs_lfoss"]
    assert _value(inference, "mpi.implementation") == "openmpi"
    assert _value(inference, "mpi.version") == "5.0.8"
    assert _value(inference, "compiler.implementation") == "llvm"
    assert _value(inference, "compiler.version") == "20.1.8"


def test_nvompi_is_nvhpc_openmpi_and_its_cuda(real):
    inference = real["hdf5_nvompi"]
    assert _value(inference, "compiler.implementation") == "nvhpc"
    assert _value(inference, "compiler.version") == "22.7"  # not the module version 22.7-CUDA-11.7.0
    assert _value(inference, "mpi.implementation") == "openmpi"
    assert _value(inference, "mpi.version") == "4.1.4"
    assert _value(inference, "hardware.gpu.nvidia.cuda.version") == "11.7"


def test_templated_toolchain_version(real):
    # toolchain = {'name': 'NVHPC', 'version': '25.3-CUDA-%(cudaver)s'}, cudaver from the CUDA dependency
    inference = real["elpa_nvhpc"]
    assert _value(inference, "compiler.implementation") == "nvhpc"
    assert _value(inference, "compiler.version") == "25.3"
    assert _value(inference, "hardware.gpu.nvidia.cuda.version") == "12.8"


def test_nvhpc_25_brings_nvhpcx_open_mpi_as_easybuild_decides(real):
    # NVHPC >= 25 is nvidia-compilers + NVHPCX (an Open MPI) in EasyBuild's own toolchain class; the
    # toolchain easyconfig lists no MPI, so the version is not known and is not made up
    inference = real["elpa_nvhpc"]
    assert _value(inference, "mpi.implementation") == "openmpi"
    entry = inference.annotations.entry(P + "mpi.implementation")
    assert "easybuild.toolchains.nvhpc.NVHPC" in entry.provenance.note
    assert P + "mpi.version" not in inference.annotations
    assert "NVHPC/25.3-CUDA-12.8.0" in inference.missing[P + "mpi.version"]
    assert P + "communication.framework" not in inference.annotations


def test_legacy_nvhpc_on_gcccore_is_compiler_only(real):
    # NVHPC 22.7 depends on GCCcore: EasyBuild's class turns into the compiler-only NVHPCToolchain
    inference = real["openblas_legacy_nvhpc"]
    assert _value(inference, "compiler.implementation") == "nvhpc"
    assert _value(inference, "mpi.implementation") == "none"


def test_toolchain_and_mpi_easyconfigs_themselves(real):
    foss = real["foss_itself"]
    assert _value(foss, "mpi.version") == "4.1.5"
    assert _value(foss, "compiler.version") == "12.3.0"
    openmpi = real["openmpi_itself"]
    assert _value(openmpi, "mpi.implementation") == "openmpi"
    assert _value(openmpi, "ucx.version") == "1.14.1"
    path = EC / REAL["openmpi_itself"]
    assert openmpi.annotations.entry(P + "ucx.version").provenance.line == _line_of(path, r"\s*\('UCX',")


def test_compiler_only_toolchain_has_no_mpi(real):
    inference = real["zlib_gcccore"]
    assert _value(inference, "compiler.implementation") == "gcc"
    assert _value(inference, "compiler.version") == "12.3.0"
    assert _value(inference, "mpi.implementation") == "none"
    assert P + "mpi.version" not in inference.annotations


def test_easyconfig_is_kept_as_base64(real):
    encoded = _value(real["gromacs"], "docs.build.easyconfig")
    assert base64.b64decode(encoded) == (EC / REAL["gromacs"]).read_bytes()


def test_cpu_target_comes_from_option_only(real):
    missing = real["gromacs"].missing[P + "hardware.cpu.optimized.version"]
    assert "-march=native" in missing and "--optarch" in missing
    inference = adapter("easybuild").infer(EC / REAL["zlib_gcccore"], InferOptions(target="zen3"))
    assert _value(inference, "hardware.cpu.optimized.version") == "zen3"
    assert _value(inference, "hardware.cpu.optimized.mode") == "microarchitecture"
    assert inference.annotations.entry(P + "hardware.cpu.optimized.version").provenance.note == "from --target"


def test_unknown_target_is_one_error():
    with pytest.raises(InputError, match="not an archspec CPU target"):
        adapter("easybuild").infer_many([EC / REAL["gromacs"]], InferOptions(target="zen99"))


# ----------------------------------------------------------------------------- own trees, robot path
def test_own_tree_is_searched_before_the_installed_package(own):
    # tests/data/easybuild/tree/f/foss/foss-2023a.eb says OpenMPI 4.1.6 on GCC 13.2.0; upstream says 4.1.5 on 12.3.0
    inference = own["tree/m/MyApp/MyApp-2.0-foss-2023a-CUDA-12.1.1.eb"]
    assert _value(inference, "mpi.version") == "4.1.6"
    assert _value(inference, "compiler.version") == "13.2.0"
    assert _value(inference, "ucx.version") == "1.15.0"  # from the installed OpenMPI-4.1.6-GCC-13.2.0.eb
    assert inference.annotations.entry(P + "mpi.version").provenance.fragment == (
        "toolchain = foss/2023a -> OpenMPI-4.1.6-GCC-13.2.0.eb")
    assert _value(inference, "hardware.gpu.nvidia.cuda.version") == "12.1"
    assert _value(inference, "hardware.gpu.nvidia.architecture") == "sm_80,sm_90"
    assert _value(inference, "nccl.version") == "2.18.3"
    assert _value(inference, "python.version") == "3.11"


def test_toolchain_only_in_own_tree(own):
    inference = own["tree/m/MyApp/MyApp-2.0-toyompi-2024.eb"]
    assert _value(inference, "mpi.implementation") == "openmpi"
    assert _value(inference, "compiler.version") == "13.2.0"
    assert tree_root(str(DATA / "tree/m/MyApp/MyApp-2.0-toyompi-2024.eb")) == str(DATA / "tree")


def test_robot_path_is_searched_last(own, tmp_path):
    inference = own["flat/Solver-3.1-robotchain-1.0.eb"]
    assert _value(inference, "mpi.implementation") == "intelmpi"
    assert _value(inference, "compiler.implementation") == "oneapi"
    with pytest.raises(InputError, match=r"Solver-3\.1-robotchain-1\.0\.eb: unknown toolchain robotchain/1\.0"):
        adapter("easybuild").infer(DATA / "flat" / "Solver-3.1-robotchain-1.0.eb", InferOptions())


def test_mpi_as_a_dependency_is_found_in_the_toolchain_hierarchy(own):
    inference = own["flat/Wrapper-1.0-GCC-12.3.0.eb"]
    assert _value(inference, "mpi.implementation") == "openmpi"
    assert _value(inference, "mpi.version") == "4.1.5"
    assert _value(inference, "ucx.version") == "1.14.1"  # read from OpenMPI-4.1.5-GCC-12.3.0.eb


def test_system_toolchain_names_no_compiler_or_mpi(own):
    inference = own["flat/Tool-1.0.eb"]
    assert P + "compiler.implementation" not in inference.annotations
    assert P + "mpi.implementation" not in inference.annotations
    assert "SYSTEM" in inference.missing[P + "compiler.implementation"]
    assert "SYSTEM" in inference.missing[P + "mpi.implementation"]
    assert any("optarch" in w for w in inference.warnings)


def test_easyconfig_file_name_convention():
    assert easyconfig_stem("OpenMPI", "4.1.5", ("GCC", "12.3.0")) == "OpenMPI-4.1.5-GCC-12.3.0"
    assert easyconfig_stem("GCC", "12.3.0", ("system", "system")) == "GCC-12.3.0"
    assert easyconfig_stem("NCCL", "2.18.3", ("GCCcore", "12.3.0"), "-CUDA-12.1.1") == (
        "NCCL-2.18.3-GCCcore-12.3.0-CUDA-12.1.1")
    assert easyconfig_stem("Perl", "5.36", ("GCCcore", "12.3.0"), prefix="v") == "Perl-v5.36-GCCcore-12.3.0"


# ----------------------------------------------------------------------------- bad input
BAD = {
    "bad/raises.eb": "this easyconfig refuses to be parsed",
    "bad/loops.eb": "did not finish within 2 s",
    "bad/crashes.eb": "crashed",
    "bad/exits.eb": "sys.exit(3)",
    "bad/forges-reply.eb": "the evaluation's reply is malformed",
    "bad/not-python.eb": "unterminated string literal",
    "bad/no-toolchain.eb": "no toolchain",
    "bad/unknown-toolchain.eb": "unknown toolchain nosuchchain/2099a",
    "bad/wrong-type.eb": "dependencies = 42",
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_easyconfig_is_one_line_naming_the_file(own, name):
    error = own[name]
    assert isinstance(error, InputError), error
    message = str(error)
    assert message.startswith(str(DATA / name) + ": ")
    assert BAD[name] in message
    assert "\n" not in message and "Traceback" not in message


GOOD_VALUE = {"value": "4.1.5", "line": 3, "fragment": "toolchain = foss/2023a", "note": None}
FORGED_FACTS = {
    "unknown kind": {"kind": "Bogus", "values": {"version": GOOD_VALUE}},
    "kind not text": {"kind": ["Mpi"], "values": {"version": GOOD_VALUE}},
    "unknown field": {"kind": "Mpi", "values": {"flavour": GOOD_VALUE}},
    "no values": {"kind": "Mpi", "values": {}},
    "value not text": {"kind": "Mpi", "values": {"version": {**GOOD_VALUE, "value": 4}}},
    "line not a number": {"kind": "Mpi", "values": {"version": {**GOOD_VALUE, "line": True}}},
    "fragment not text": {"kind": "Mpi", "values": {"version": {**GOOD_VALUE, "fragment": {"a": 1}}}},
    "extra key": {"kind": "Mpi", "values": {"version": {**GOOD_VALUE, "file": "/etc/passwd"}}},
    "oversized value": {"kind": "App", "values": {"name": {**GOOD_VALUE, "value": "x" * (MAX_WIRE_TEXT + 1)}}},
    "oversized note": {"kind": "App", "values": {"name": {**GOOD_VALUE, "note": "x" * (MAX_WIRE_TEXT + 1)}}},
    "not a fact": ["Mpi", "version", "4.1.5"],
}


@pytest.mark.parametrize("name", sorted(FORGED_FACTS))
def test_a_forged_fact_is_a_malformed_reply(name):
    """The worker's reply is untrusted (the easyconfig's code ran there): a fact not of facts.to_wire's form
    is the batch's one-line error, what is wrong only in its detail (--debug)."""
    reply = {"results": [{"facts": [FORGED_FACTS[name]], "missing": [], "warnings": []}]}
    with pytest.raises(IsolatedError) as caught:
        eb._checked(reply, ["/x/Forger-1.0.eb"], "/x/Forger-1.0.eb")
    assert str(caught.value) == ("/x/Forger-1.0.eb: the evaluation's reply is malformed (a result is neither facts "
                                 "nor an error); did an easyconfig write to the worker's output?")
    assert caught.value.detail and "\n" not in caught.value.detail


def test_a_genuine_fact_reply_is_rebuilt_with_the_file_asked_about():
    reply = {"results": [{"facts": [{"kind": "Mpi", "values": {"version": GOOD_VALUE}}],
                          "missing": [[P + "mpi.abi.version", "why"]], "warnings": ["w"]}]}
    ((result),) = eb._checked(reply, ["/x/./Tool-1.0.eb"], "/x/Tool-1.0.eb")
    (fact,) = result["facts"]
    assert isinstance(fact, Mpi) and fact.version.value == "4.1.5" and fact.implementation is None
    assert fact.version.provenance == Provenance(Layer.RECIPE, "/x/Tool-1.0.eb", 3, "toolchain = foss/2023a")
    assert result["missing"] == [[P + "mpi.abi.version", "why"]] and result["warnings"] == ["w"]


def test_a_forged_fact_from_an_easyconfig_is_its_error(tmp_path):
    forged = json.dumps({"result": {"results": [{"facts": [FORGED_FACTS["unknown kind"]], "missing": [],
                                                 "warnings": []}]}})
    path = tmp_path / "Forger-1.0.eb"
    path.write_text("import os\nname = 'Forger'\nversion = '1.0'\nhomepage = 'x'\ndescription = 'x'\n"
                    f"toolchain = SYSTEM\nos.write(1, b'\\n' + {forged.encode()!r} + b'\\n')\nos._exit(0)\n")
    (result,) = adapter("easybuild").infer_many([path], InferOptions())
    assert isinstance(result, InputError)
    assert str(result).startswith(f"{path}: ") and "the evaluation's reply is malformed" in str(result)
    assert result.detail == "unknown fact kind 'Bogus'"  # shown with --debug


def test_bad_files_do_not_stop_the_batch(own):
    good = [r for n, r in own.items() if not n.startswith("bad/")]
    assert good and all(isinstance(r, Inference) for r in good)


def test_c_level_hang_is_killed_and_blamed(monkeypatch):
    """A hang the SIGALRM deadline cannot interrupt: the backstop kills the worker, the others are evaluated again."""
    monkeypatch.setattr(eb, "STARTUP_ALLOWANCE", 2.0)
    paths = [DATA / "flat/Tool-1.0.eb", DATA / "bad/hangs-in-c.eb", EC / REAL["zlib_gcccore"]]
    results = adapter("easybuild").infer_many(paths, InferOptions(timeout=1.0), workers=1)
    assert isinstance(results[0], Inference) and isinstance(results[2], Inference)
    assert _value(results[2], "compiler.version") == "12.3.0"
    assert isinstance(results[1], InputError)
    assert str(results[1]) == f"{paths[1]}: evaluation did not finish within 1 s (raise it with --timeout)"


def test_not_utf8_and_binary(tmp_path):
    latin = tmp_path / "Latin-1.0.eb"
    latin.write_bytes("name = 'Caf\xe9'\n".encode("latin-1"))
    binary = tmp_path / "Binary-1.0.eb"
    binary.write_bytes(b"\x00\x01\x02 not an easyconfig")
    results = adapter("easybuild").infer_many([latin, binary], InferOptions())
    assert str(results[0]) == f"{latin}: not UTF-8 text (byte 11)"
    assert str(results[1]) == f"{binary}: not a text file (contains NUL bytes)"


def test_missing_file_is_one_error(tmp_path):
    with pytest.raises(InputError, match="no such easyconfig file"):
        adapter("easybuild").infer(tmp_path / "Nope-1.0.eb", InferOptions())


# ----------------------------------------------------------------------------- CLI, bench
def test_cli_json_and_bad_input(run_cli):
    result = run_cli("infer", EC / REAL["gromacs_lmpflf"], "--target", "x86_64_v3", "--json")
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert data["annotations"][P + "mpi.implementation"] == "mpich"
    assert data["annotations"][P + "hardware.cpu.optimized.version"] == "x86_64_v3"
    assert data["provenance"][P + "mpi.version"]["fragment"].startswith("toolchain = lmpflf/2025b -> MPICH-4.3.2")
    bad = run_cli("infer", DATA / "bad" / "unknown-toolchain.eb")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "unknown-toolchain.eb: unknown toolchain nosuchchain/2099a" in bad.stderr


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("infer_corpus", Path(__file__).parents[1] / "bench/infer_corpus.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_bench_runs_on_a_slice(capsys):
    assert _bench().main(["--limit", "60", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"hpcannotate adapter\s+60\s+\d+\s+[\d.]+\s+[\d.]+\s+0$", out, re.M), out
    assert "adapter / raw parser:" in out and "peak RSS" in out
    assert re.search(r"raw, in the sandbox\s+60\s", out) and "sandbox cost:" in out, out  # bwrap is installed


@pytest.mark.slow
def test_whole_corpus_parses(capsys):
    """Every easyconfig of easybuild-easyconfigs parses and resolves. The timing target is the bench's to
    report (`python bench/infer_corpus.py --check`): other processes on a shared machine make it noisy here."""
    _bench().main([])
    out = capsys.readouterr().out
    assert re.search(r"hpcannotate adapter\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+0$", out, re.M), out


def test_a_syntax_error_names_the_easyconfig_not_string(tmp_path):
    path = tmp_path / "Broken-1.0.eb"
    path.write_text("name = 'Broken'\nversion = '1.0'\nx = (\ntoolchain = SYSTEM\n")
    (result,) = adapter("easybuild").infer_many([path], InferOptions())
    message = str(result)
    assert isinstance(result, InputError)
    assert "(Broken-1.0.eb, line 3)" in message and "<string>" not in message


def test_the_worker_uses_the_timeout_it_is_given():
    from hpcannotate.recipes.easybuild.evaluate import evaluate_batch

    for bad in (0, 0.0, -1, float("nan")):
        with pytest.raises(ValueError, match="must be a positive number of seconds"):
            evaluate_batch({"paths": [str(DATA / "flat/Tool-1.0.eb")], "timeout": bad})
    (reply,) = evaluate_batch({"paths": [str(DATA / "bad/loops.eb")], "timeout": 0.5})["results"]
    assert reply == {"error": "evaluation did not finish within 0.5 s (raise it with --timeout)"}
