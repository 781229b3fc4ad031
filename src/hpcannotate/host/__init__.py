"""Host fingerprint: CPU, GPU, interconnect, OS and software, in the image vocabulary.

``fingerprint()`` reads the live host, or with ``sysroot`` a captured tree
(``<sysroot>/proc``, ``<sysroot>/sys``, ... and command outputs in
``<sysroot>/commands``, see ``commands.py``). Importing this package is cheap:
archspec and the probes load when ``fingerprint()`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpcannotate.host.model import Fingerprint

__all__ = ["Fingerprint", "fingerprint"]


def fingerprint(sysroot: Path | None = None, run: Callable | None = None, *, view=None) -> Fingerprint:
    """Describe a host: this one, or the captured tree at ``sysroot``.

    ``run(argv) -> (returncode, output)`` answers commands; by default they run
    on this machine, or for a sysroot come from ``<sysroot>/commands/<name>.txt``
    (nothing is executed on the machine reading a sysroot). ``view``: a ``HostView`` to read
    instead (``capture`` passes one that records what the probes touch).
    """
    from concurrent.futures import ThreadPoolExecutor

    from hpcannotate.errors import InputError
    from hpcannotate.host import cpu, gpu, interconnect, software, system
    from hpcannotate.host.commands import CapturedRunner, host_run
    from hpcannotate.host.hostview import HostView
    from hpcannotate.host.model import Fingerprint

    if view is not None:
        host = view
    elif sysroot is not None:
        root = Path(sysroot)
        if not root.is_dir():
            raise InputError(f"{root}: not a directory (--sysroot needs a captured tree with proc/ and sys/)")
        host = HostView(root, run or CapturedRunner(root / "commands"), live=False)
    else:
        host = HostView(Path("/"), run or host_run, live=True)

    probes = {"cpu": cpu.detect, "gpu": gpu.detect, "interconnect": interconnect.detect,
              "os": system.detect, "software": software.detect}
    # The probes wait on different commands (nvidia-smi can take a second); run them side by side.
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = {name: pool.submit(probe, host) for name, probe in probes.items()}
        parts: dict[str, Any] = {name: future.result() for name, future in futures.items()}
    return Fingerprint(**parts, source="live" if host.live else str(host.root))


def __getattr__(name: str):
    if name == "Fingerprint":
        from hpcannotate.host.model import Fingerprint

        return Fingerprint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
