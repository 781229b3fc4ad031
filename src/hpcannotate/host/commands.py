"""The commands a fingerprint runs, how they run, and where captured outputs live.

Every probe asks a ``Runner`` (``run(argv) -> (returncode, output)``) instead of
calling ``subprocess`` itself, so tests and ``--sysroot`` can hand in captured
outputs. Return code 127 means "this command is not installed".

Captured outputs (``--sysroot DIR``): nothing runs on the machine that reads the
tree; ``DIR/commands/<name>.txt`` holds what the command printed (stdout and
stderr together) and an optional ``DIR/commands/<name>.rc`` its exit code
(0 when absent). No ``<name>.txt`` means the command is not installed there.
``<name>`` is the entry of ``CAPTURE_NAMES`` below, for example::

    DIR/commands/nvidia-smi.txt            nvidia-smi
    DIR/commands/nvidia-smi-query-gpu.txt  nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader
    DIR/commands/nvidia-smi-query-gpu.rc   2   (a driver older than R510 refuses compute_cap)
    DIR/commands/fi_info-l.txt             fi_info -l

To capture a real node, run ``hpcannotate fingerprint capture DIR`` there (``capture.py``): it
records the files and command outputs the probes read and writes them in this layout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

Runner = Callable[[Sequence[str]], tuple[int, str]]

NOT_FOUND = 127
TIMED_OUT = 124
NOT_RUNNABLE = 126
TIMEOUT = 15.0

NVIDIA_SMI = ("nvidia-smi",)
NVIDIA_SMI_QUERY = ("nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader")
# Drivers before R510 do not know the compute_cap field; ask again without it.
NVIDIA_SMI_QUERY_NO_CC = ("nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader")
FI_INFO_PROVIDERS = ("fi_info", "-l")
FI_INFO_VERSION = ("fi_info", "--version")
UCX_INFO = ("ucx_info", "-v")
MPIRUN = ("mpirun", "--version")
MPICHVERSION = ("mpichversion",)
OMPI_INFO = ("ompi_info", "--version")
LDD = ("ldd", "--version")
UNAME_M = ("uname", "-m")
# Container runtimes, in the order they are reported.
RUNTIMES: dict[str, tuple[str, ...]] = {
    "apptainer": ("apptainer", "--version"),
    "singularity": ("singularity", "--version"),
    "podman": ("podman", "--version"),
    "docker": ("docker", "--version"),
    "sarus": ("sarus", "--version"),
    "enroot": ("enroot", "version"),
    "charliecloud": ("ch-run", "--version"),
}

CAPTURE_NAMES: dict[tuple[str, ...], str] = {
    NVIDIA_SMI: "nvidia-smi",
    NVIDIA_SMI_QUERY: "nvidia-smi-query-gpu",
    NVIDIA_SMI_QUERY_NO_CC: "nvidia-smi-query-gpu-no-cc",
    FI_INFO_PROVIDERS: "fi_info-l",
    FI_INFO_VERSION: "fi_info-version",
    UCX_INFO: "ucx_info-v",
    MPIRUN: "mpirun-version",
    MPICHVERSION: "mpichversion",
    OMPI_INFO: "ompi_info-version",
    LDD: "ldd-version",
    UNAME_M: "uname-m",
    **{argv: f"{argv[0]}-version" for argv in RUNTIMES.values()},
}


def capture_name(argv: Sequence[str]) -> str:
    """The file name (without .txt) a captured output of ``argv`` is stored under."""
    known = CAPTURE_NAMES.get(tuple(argv))
    if known:
        return known
    parts = [Path(argv[0]).name] + [re.sub(r"[^A-Za-z0-9._]+", "-", a.lstrip("-")).strip("-") for a in argv[1:]]
    return "-".join(p for p in parts if p)


def host_run(argv: Sequence[str], timeout: float = TIMEOUT) -> tuple[int, str]:
    """Run a command on this machine: (returncode, stdout+stderr); 127 when it is not installed.

    The C locale keeps version banners in the English the parsers expect.
    """
    exe = shutil.which(argv[0])
    if exe is None:
        return NOT_FOUND, ""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        proc = subprocess.run(
            [exe, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return TIMED_OUT, ""
    except OSError:
        return NOT_RUNNABLE, ""
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


class CapturedRunner:
    """Answers from ``<directory>/<name>.txt`` (and ``.rc``) instead of running anything."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        name = capture_name(argv)
        output = self.directory / f"{name}.txt"
        try:
            text = output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return NOT_FOUND, ""
        rc_file = self.directory / f"{name}.rc"
        try:
            rc = int(rc_file.read_text().strip() or "0")
        except (OSError, ValueError):
            rc = 0
        return rc, text

    def __repr__(self) -> str:
        return f"CapturedRunner({str(self.directory)!r})"
