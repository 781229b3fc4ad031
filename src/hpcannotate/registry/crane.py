"""The crane backend of ``annotate``: the exact ``crane mutate`` command line, and running it.

``crane mutate REF --annotation k=v ...`` rewrites a single image's manifest in place (it pushes
to REF's tag). It cannot annotate an index: it refuses, and ``crane mutate -l`` on an index
replaces the index with one platform's image, so this module never builds a command for one.
crane also cannot remove a key, and it re-serialises the image config (a new config blob of a
few hundred bytes); the native backend has neither limit.

``--annotation`` is a pflag ``stringToString`` flag: an argument with one ``=`` is taken whole
(surrounding double quotes trimmed), one with several ``=`` is read as a CSV record. ``flag_value``
encodes a pair so that both paths give back exactly the key and value.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hpcannotate.errors import HpcAnnotateError, InputError

CRANE_TIMEOUT = 300.0
_DIGEST_REF = re.compile(r"@(sha256:[0-9a-f]{64})\s*$")


def available() -> str | None:
    """crane's path when it is on PATH."""
    return shutil.which("crane")


def flag_value(key: str, value: str) -> str:
    """``key=value`` as ``crane mutate --annotation`` must receive it to read back this pair exactly."""
    if value == "":
        raise InputError(f"{key}: crane refuses empty annotation values; use --backend native")
    pair = f"{key}={value}"
    if pair.count("=") == 1:
        if pair.startswith('"') or pair.endswith('"'):
            raise InputError(f"{key}: crane trims double quotes at the ends of a value; use --backend native")
        return pair
    if any(c in pair for c in ',"\r\n'):
        return '"' + pair.replace('"', '""') + '"'
    return pair


def mutate_argv(reference: str, annotations: Mapping[str, str], *, insecure: bool = False,
                executable: str = "crane") -> list[str]:
    """``crane mutate REF --annotation k=v ...`` (``--insecure`` for plain HTTP or unverified TLS)."""
    if not annotations:
        raise InputError(f"{reference}: nothing for crane to set")
    argv = [executable, "mutate", reference]
    for key, value in annotations.items():
        argv += ["--annotation", flag_value(key, value)]
    if insecure:
        argv.append("--insecure")
    return argv


def run_mutate(argv: list[str], *, authfile: str | Path | None = None, timeout: float = CRANE_TIMEOUT) -> str:
    """Run crane; returns the digest it pushed (crane prints ``REPO@sha256:...``)."""
    with tempfile.TemporaryDirectory(prefix="hpcannotate-crane-") as config_dir:
        env = dict(os.environ)
        if authfile:
            # crane's keychain reads $DOCKER_CONFIG/config.json first and containers' auth files only when
            # that is missing: a docker config of its own (the same "auths" format) is the way to make
            # the file the user named the one it uses.
            config = Path(config_dir) / "config.json"
            try:
                shutil.copyfile(authfile, config)
            except OSError as exc:
                raise InputError(f"--authfile {authfile}: cannot read ({exc.strerror})") from None
            config.chmod(0o600)
            env["DOCKER_CONFIG"] = config_dir
        return _run(argv, env, timeout)


def _run(argv: list[str], env: dict[str, str], timeout: float) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except FileNotFoundError:
        raise HpcAnnotateError(f"{argv[0]}: crane is not on PATH; use --backend native") from None
    except subprocess.TimeoutExpired:
        raise HpcAnnotateError(f"crane mutate {argv[2]}: no answer within {timeout:g} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines() or ["no output"]
        raise HpcAnnotateError(f"crane mutate {argv[2]} failed (exit {proc.returncode}): {lines[-1]}")
    for line in reversed(proc.stdout.strip().splitlines()):
        found = _DIGEST_REF.search(line)
        if found:
            return found.group(1)
    raise HpcAnnotateError(f"crane mutate {argv[2]}: finished without printing the pushed digest")
