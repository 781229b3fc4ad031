"""Run untrusted recipe code (HPCCM recipes, easyconfigs) in a worker process.

Recipes and easyconfigs are Python. Evaluating them in the CLI's own process
would let them change its state (hpccm keeps ``hpccm.config.g_cpu_arch`` and
friends as globals), hang it, or kill it; a worker with a timeout cannot.
The worker runs one function of hpcannotate, named by the caller, and talks
JSON over stdin/stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .errors import IsolatedError

DEFAULT_TIMEOUT = 20.0


def run_isolated(
    function: str, payload: dict, *, timeout: float = DEFAULT_TIMEOUT, what: str, cwd: str | None = None
):
    """Call ``hpcannotate.<function>(payload)`` in a fresh interpreter and return its JSON result.

    ``what`` names the input (a file) in error messages. A failure inside the
    worker raises IsolatedError with the worker's one-line reason, and its
    traceback as ``detail`` for ``--debug``.
    """
    request = json.dumps({"function": function, "payload": payload})
    env = dict(os.environ)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hpcannotate._worker"],
            input=request,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env,
        )
    except subprocess.TimeoutExpired:
        message = f"{what}: evaluation did not finish within {timeout:g} s (raise it with --timeout)"
        raise IsolatedError(message) from None
    try:
        reply = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    except (json.JSONDecodeError, IndexError):
        reply = None
    if not isinstance(reply, dict):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise IsolatedError(f"{what}: evaluation crashed (exit {proc.returncode}): {tail}", proc.stderr)
    if "error" in reply:
        raise IsolatedError(f"{what}: {reply['error']}", reply.get("traceback"))
    return reply["result"]
