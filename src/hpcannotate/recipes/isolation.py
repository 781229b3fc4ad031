"""Run untrusted recipe code (HPCCM recipes, easyconfigs) in a worker process, in a sandbox.

Recipes and easyconfigs are Python. Evaluating them in the CLI's own process
would let them change its state (hpccm keeps ``hpccm.config.g_cpu_arch`` and
friends as globals), hang it, or kill it; a worker with a timeout cannot.
The worker runs one function of hpcannotate, named by the caller, and talks
JSON over stdin/stdout. Where bubblewrap works, the worker runs in its sandbox
(``sandbox``): it then cannot change the user's files, reach the network,
leave a process behind or signal the CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from hpcannotate.errors import IsolatedError
from hpcannotate.recipes import sandbox as box

DEFAULT_TIMEOUT = 20.0


def run_isolated(
    function: str, payload: dict, *, timeout: float = DEFAULT_TIMEOUT, what: str, cwd: str | None = None,
    reads: Sequence[str] = (), writes: Sequence[str] = (), sandboxed: bool | None = None,
):
    """Call ``hpcannotate.<function>(payload)`` in a fresh interpreter and return its JSON result.

    ``what`` names the input (a file) in error messages. A failure inside the
    worker raises IsolatedError with the worker's one-line reason, and its
    traceback as ``detail`` for ``--debug``.

    ``reads`` are the directories the worker reads (the recipe's own) and ``writes`` the files
    it writes: in the sandbox nothing else of the user's is there. ``sandboxed`` None follows
    ``HPCANNOTATE_SANDBOX``; False runs without it (the corpus bench's baseline).

    The worker (or bwrap) leads its own process group, and the whole group is killed
    when the worker returns or times out; in the sandbox, killing bwrap kills every
    process in its PID namespace too, whatever the recipe did to its process group.
    Output goes to files rather than pipes, so a process left behind cannot keep
    the caller waiting for an end of file either.
    """
    request = json.dumps({"function": function, "payload": payload}).encode()
    worker = [sys.executable, "-m", "hpcannotate.recipes._worker"]
    follow_mode = sandboxed is None
    if box.use() if follow_mode else sandboxed:
        returncode, out, err = _run([*box.bwrap_argv(reads, writes, cwd), *worker], request, None, None, timeout, what)
        reply = _reply(out)
        if reply is None and returncode != 0 and follow_mode and box.fall_back():  # bwrap cannot work here
            env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
            returncode, out, err = _run(worker, request, env, cwd, timeout, what)
            reply = _reply(out)
    else:
        returncode, out, err = _run(worker, request, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, cwd,
                                    timeout, what)
        reply = _reply(out)
    if reply is None:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        if returncode == 0:
            tail = "no reply from the worker (did the recipe write to its output?)"
        raise IsolatedError(f"{what}: evaluation crashed (exit {returncode}): {tail}", err)
    if "error" in reply:
        detail = reply.get("traceback")
        raise IsolatedError(f"{what}: {reply['error']}", detail if isinstance(detail, str) else None)
    return reply["result"]


def _run(argv: list[str], request: bytes, env: dict | None, cwd: str | None, timeout: float,
         what: str) -> tuple[int, str, str]:
    """Run the worker (or bwrap) with ``request`` on stdin: its exit status, stdout and stderr."""
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout, \
            tempfile.TemporaryFile() as stderr:
        stdin.write(request)
        stdin.seek(0)
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=env,
                                start_new_session=_POSIX)
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
        return returncode, _read(stdout), _read(stderr)


def _reply(out: str) -> dict | None:
    """The worker's reply, its last stdout line: a dict with ``result``, or ``error`` text; else None."""
    try:
        reply = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except (json.JSONDecodeError, IndexError, RecursionError):
        return None
    if isinstance(reply, dict) and ("result" in reply or isinstance(reply.get("error"), str)):
        return reply
    return None


def malformed(what: str, exc: BaseException) -> IsolatedError:
    """The error for a worker reply without the shape its caller expects.

    The reply comes from a process that ran the recipe's code, which can write a reply of its own
    to the worker's output and exit; so it is input like any other, and its flaws are the input's.
    """
    return IsolatedError(f"{what}: the evaluation's reply is malformed ({type(exc).__name__}: {exc}); "
                         "did the recipe write to the worker's output?")


_POSIX = os.name == "posix"


def _read(handle) -> str:
    handle.seek(0)
    return handle.read().decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker (or bwrap) and every process still in its process group.

    Killing bwrap makes the kernel kill its PID namespace: its init gets SIGKILL
    (``--die-with-parent``), and every process of the namespace dies with the init.
    SIGKILL also ends a stopped process.
    """
    if _POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left in the group
            os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its reaped leader while members remain
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    else:  # pragma: no cover - no process groups
        proc.kill()
    proc.wait()
