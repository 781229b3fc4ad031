"""Worker process for ``isolation.run_isolated``: one request on stdin, one JSON line on stdout.

Anything the evaluated code prints is redirected to stderr so that the last
stdout line is always the reply.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import resource
import sys
import traceback

# No file the worker writes (its reply, a recipe's scratch file) may grow past this: a recipe
# cannot fill the disk through the caller's temporary files. Hard and soft alike, so it stays.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Nor may it take the machine's memory: a recipe that allocates without end gets a MemoryError.
MAX_MEMORY_BYTES = 4 * 1024 * 1024 * 1024


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, (SyntaxError,)) else text


def _limit(which: int, most: int) -> None:
    """Lower the soft and hard limit to ``most`` (or keep a lower one): the recipe cannot raise them again."""
    _, hard = resource.getrlimit(which)
    limit = most if hard == resource.RLIM_INFINITY else min(hard, most)
    resource.setrlimit(which, (limit, limit))


def main() -> int:
    _limit(resource.RLIMIT_FSIZE, MAX_FILE_BYTES)
    _limit(resource.RLIMIT_AS, MAX_MEMORY_BYTES)
    request = json.loads(sys.stdin.read())
    module_name, _, func_name = request["function"].partition(":")
    if not module_name.startswith("hpcannotate."):
        print(json.dumps({"error": "worker only runs hpcannotate functions"}))
        return 2
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            func = getattr(importlib.import_module(module_name), func_name)
            result = func(request["payload"])
        reply = {"result": result}
    except SystemExit as exc:  # recipes and easyconfig tools call sys.exit on errors
        reply = {"error": f"exited with status {exc.code}", "traceback": traceback.format_exc()}
    except BaseException as exc:  # the reply carries any failure back as one line
        reply = {"error": _one_line(exc), "traceback": traceback.format_exc()}
    real_stdout.write("\n" + json.dumps(reply) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
