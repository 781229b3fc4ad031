"""Run untrusted recipe code (HPCCM recipes, easyconfigs) in a worker process.

Recipes and easyconfigs are Python. Evaluating them in the CLI's own process
would let them change its state (hpccm keeps ``hpccm.config.g_cpu_arch`` and
friends as globals), hang it, or kill it; a worker with a timeout cannot.
The worker runs one function of hpcannotate, named by the caller, and talks
JSON over stdin/stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile

from .errors import IsolatedError

DEFAULT_TIMEOUT = 20.0


def run_isolated(
    function: str, payload: dict, *, timeout: float = DEFAULT_TIMEOUT, what: str, cwd: str | None = None
):
    """Call ``hpcannotate.<function>(payload)`` in a fresh interpreter and return its JSON result.

    ``what`` names the input (a file) in error messages. A failure inside the
    worker raises IsolatedError with the worker's one-line reason, and its
    traceback as ``detail`` for ``--debug``.

    The worker leads its own process group, and the whole group is killed when
    the worker returns or times out: a recipe that starts a process (``sleep``
    in the background) neither outlives hpcannotate nor holds up the reply.
    Output goes to files rather than pipes, so such a process cannot keep the
    caller waiting for an end of file either.
    """
    request = json.dumps({"function": function, "payload": payload})
    env = dict(os.environ)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, \
            tempfile.TemporaryFile() as stderr:
        stdin.write(request.encode())
        stdin.seek(0)
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpcannotate._worker"],
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=env,
            start_new_session=_POSIX,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            message = f"{what}: evaluation did not finish within {timeout:g} s (raise it with --timeout)"
            raise IsolatedError(message) from None
        except BaseException:  # Ctrl-C: leave nothing running behind
            _kill_group(proc)
            raise
        _kill_group(proc)
        out = _read(stdout)
        err = _read(stderr)
    try:
        reply = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except (json.JSONDecodeError, IndexError):
        reply = None
    if not isinstance(reply, dict):
        tail = (err.strip().splitlines() or ["no output"])[-1]
        raise IsolatedError(f"{what}: evaluation crashed (exit {returncode}): {tail}", err)
    if "error" in reply:
        raise IsolatedError(f"{what}: {reply['error']}", reply.get("traceback"))
    return reply["result"]


_POSIX = os.name == "posix"


def _read(handle) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and every process it started that is still in its process group."""
    if _POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left in the group
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its reaped leader while members remain
    else:  # pragma: no cover - no process groups
        proc.kill()
    proc.wait()
