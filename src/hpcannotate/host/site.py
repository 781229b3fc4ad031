"""A site file: one fingerprint per node type (Slurm partition, or partition x node features).

How a node is fingerprinted under ``--slurm``: ``srun`` runs **hpcannotate itself** on one node
of each partition (``PYTHON -m hpcannotate fingerprint --json``, PYTHON being the interpreter
that runs this command, so the install must be on a file system the nodes see, as site tools
are). Why not a small python3-only capture script: the answers come from archspec's CPU
detection and the GPU, interconnect and MPI probes of ``fingerprint/``; a second, smaller copy
of them would drift from the matcher's vocabulary, and a node whose capture differs from the
code that judges it gives wrong verdicts silently. ``--remote-command`` replaces the command
(a module load, a container, another path). ``--fingerprint-dir`` reads saved
``hpcannotate fingerprint --json`` files instead, one per node type, named after it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import HpcAnnotateError, InputError

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint

SITE_FORMAT = "hpcannotate-site/1"
SRUN_TIMEOUT = 600.0
Runner = Callable[[Sequence[str], float], tuple[int, str, str]]


@dataclass
class NodeType:
    """One column of the report: a partition, or a partition restricted to one node feature set."""

    name: str
    partition: str | None = None
    features: str | None = None
    nodes: str | None = None
    fingerprint: Fingerprint | None = None
    error: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "partition": self.partition, "features": self.features, "nodes": self.nodes,
                "fingerprint": self.fingerprint.to_json() if self.fingerprint else None, "error": self.error}


@dataclass
class Site:
    name: str
    node_types: list[NodeType] = field(default_factory=list)
    generated: str = ""

    def usable(self) -> list[NodeType]:
        return [n for n in self.node_types if n.fingerprint is not None]

    def to_json(self) -> dict:
        return {"format": SITE_FORMAT, "site": self.name, "generated": self.generated,
                "partitions": [n.to_json() for n in self.node_types]}

    @classmethod
    def load(cls, path: Path) -> Site:
        from hpcannotate.host import Fingerprint
        from hpcannotate.model.inputs import load_structured

        where = str(path)
        data = load_structured(path, "site file")
        if not isinstance(data, dict) or data.get("format") != SITE_FORMAT:
            raise InputError(f"{where}: not an hpcannotate site file (expected format {SITE_FORMAT!r}; "
                             "write one with `hpcannotate site`)")
        parts = data.get("partitions")
        if not isinstance(parts, list):
            raise InputError(f"{where}: partitions: expected a list")
        site = cls(str(data.get("site") or ""), generated=str(data.get("generated") or ""))
        for n, item in enumerate(parts):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise InputError(f"{where}: partitions[{n}]: expected a mapping with a name")
            fp = item.get("fingerprint")
            site.node_types.append(NodeType(
                item["name"], item.get("partition"), item.get("features"), item.get("nodes"),
                Fingerprint.from_json(fp, f"{where}: partitions[{n}] ({item['name']}): fingerprint")
                if fp is not None else None, item.get("error")))
        return site


def from_fingerprint_dir(directory: Path, name: str | None = None) -> Site:
    """Every ``*.json``/``*.yaml`` in ``directory`` is one node type, named after the file."""
    from hpcannotate.host import Fingerprint

    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory (--fingerprint-dir needs saved fingerprints)")
    files = sorted(p for p in directory.iterdir() if p.suffix in (".json", ".yaml", ".yml") and p.is_file())
    if not files:
        raise InputError(f"{directory}: no *.json or *.yaml fingerprint in it "
                         "(save them with `hpcannotate fingerprint --json > DIR/PARTITION.json`)")
    site = Site(name or directory.resolve().name, generated=_now())
    for path in files:
        site.node_types.append(NodeType(path.stem, partition=path.stem, fingerprint=Fingerprint.load(path)))
    return site


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# Slurm variables that say where to find the cluster, not which job we are in.
_SLURM_KEEP = frozenset({"SLURM_CONF", "SLURM_CLUSTERS"})


def outside_job_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without the job and step variables of a Slurm job ``site`` may run in.

    Why: inside a batch job (the nightly job), ``srun`` sees ``SLURM_JOB_ID`` and starts a step in
    *that* allocation, on that job's node, whatever ``--partition`` says: every partition would get
    the fingerprint of the service node. Without them each srun is a job of its own on its partition.
    """
    environ = dict(os.environ if environ is None else environ)
    return {k: v for k, v in environ.items() if not k.startswith("SLURM_") or k in _SLURM_KEEP}


def _run(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                              env=outside_job_env())
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout:.0f} s"
    return proc.returncode, proc.stdout, proc.stderr


def slurm_node_types(run: Runner = _run, by_features: bool = False,
                     partitions: Sequence[str] = ()) -> list[NodeType]:
    """The partitions ``sinfo`` lists (and their node feature sets when ``by_features``)."""
    code, out, err = run(["sinfo", "--noheader", "--format=%R|%f|%N"], 60.0)
    if code != 0:
        raise HpcAnnotateError(f"sinfo failed (exit {code}): {' '.join(err.split())[:300]}")
    seen: dict[tuple[str, str | None], NodeType] = {}
    for line in out.splitlines():
        if not line.strip():
            continue
        part, _, rest = line.strip().partition("|")
        features, _, nodes = rest.partition("|")
        features = None if features in ("", "(null)") else features
        if partitions and part not in partitions:
            continue
        key = (part, features if by_features else None)
        if key in seen:
            seen[key].nodes = f"{seen[key].nodes},{nodes}" if nodes else seen[key].nodes
            continue
        name = f"{part}[{features}]" if by_features and features else part
        seen[key] = NodeType(name, part, features if by_features else None, nodes or None)
    missing = [p for p in partitions if p not in {k[0] for k in seen}]
    if missing:
        raise InputError(f"--partition {missing[0]}: sinfo lists no such partition")
    if not seen:
        raise HpcAnnotateError("sinfo lists no partition")
    return list(seen.values())


def default_command() -> list[str]:
    return [sys.executable, "-m", "hpcannotate", "fingerprint", "--json"]


def srun_argv(node_type: NodeType, command: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    argv = ["srun", f"--partition={node_type.partition}", "--nodes=1", "--ntasks=1",
            "--job-name=hpcannotate-site"]
    if node_type.features:
        argv.append(f"--constraint={node_type.features.replace(',', '&')}")
    return [*argv, *extra, "--", *command]


def fingerprint_slurm(node_types: list[NodeType], *, command: Sequence[str] | None = None,
                      extra: Sequence[str] = (), run: Runner = _run, timeout: float = SRUN_TIMEOUT,
                      jobs: int = 4, progress: Callable[[str], None] | None = None) -> list[NodeType]:
    """One ``srun`` per node type, ``jobs`` at a time; a failure is kept on its node type, not raised."""
    from hpcannotate.host import Fingerprint

    command = list(command or default_command())

    def one(node_type: NodeType) -> NodeType:
        argv = srun_argv(node_type, command, extra)
        code, out, err = run(argv, timeout)
        if code != 0:
            node_type.error = f"{shlex.join(argv)}: exit {code}: {' '.join(err.split())[-400:]}"
        else:
            try:
                node_type.fingerprint = Fingerprint.from_json(json.loads(out), f"{node_type.name} (srun)")
            except ValueError as exc:
                node_type.error = f"{node_type.name}: the node printed no fingerprint JSON ({exc})"
            except HpcAnnotateError as exc:
                node_type.error = str(exc)
        if progress is not None:
            progress(f"{node_type.name}: " + ("fingerprinted" if node_type.fingerprint else node_type.error or "?"))
        return node_type

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, node_types))


def slurm_site(name: str, **kwargs) -> Site:
    by_features = kwargs.pop("by_features", False)
    partitions = kwargs.pop("partitions", ())
    run = kwargs.get("run", _run)
    types = slurm_node_types(run, by_features, partitions)
    return Site(name, fingerprint_slurm(types, **kwargs), _now())
