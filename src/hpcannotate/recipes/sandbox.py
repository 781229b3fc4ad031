"""The bubblewrap sandbox that recipe workers run in.

Recipes (HPCCM) and easyconfigs are Python: evaluating one runs its author's
code. A worker process alone keeps that code away from the CLI's memory, but not
from the user's machine: it could delete files, start a daemon that outlives
``infer``, or stop the CLI so that its timeout never fires. bubblewrap (Debian
``bubblewrap``) puts the worker into new namespaces instead:

* the root file system holds only the system directories (read-only; in /etc,
  what only root may read is covered, for a worker run as root), the
  Python installation hpcannotate runs from (read-only) and the directories
  the caller names (the recipe's own, read-only); no home directory, no /run
  (where the container engines' sockets are), no /var;
* a private /tmp, the only writable place, of bounded size;
* no network (``--unshare-net``: abstract Unix sockets go too);
* a new PID namespace (``--unshare-pid``) whose init dies with bwrap
  (``--die-with-parent``), and kills every process in it when it does; the
  recipe sees no process outside, so it cannot signal the CLI, and
  ``--new-session`` keeps it out of bwrap's own process group;
* an environment of a few variables (no tokens or passwords from the user's).

The caller (``isolation.run_isolated``) enforces the timeout from outside by
killing bwrap. One sandbox holds one worker, and a worker evaluates a whole
batch of recipes: the cost is paid per worker, not per file.

``HPCANNOTATE_SANDBOX`` says what to do: ``auto`` (the default) uses the
sandbox where it works and otherwise warns once, naming what is missing, and
runs the worker without it; ``require`` refuses to evaluate recipes without
it; ``off`` does not use it.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Sequence

import hpcannotate
from hpcannotate.errors import HpcAnnotateError

MODE_ENV = "HPCANNOTATE_SANDBOX"
MODES = ("auto", "require", "off")
SYSTEM_DIRS = ("/usr", "/etc")
# Merged-/usr systems make these symlinks into /usr; older ones have them as directories.
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
PRIVATE_TMP = "/tmp"  # noqa: S108 - the sandbox's own tmpfs, nobody else's
TMP_BYTES = 256 * 1024 * 1024  # the private /tmp: a recipe cannot fill the machine's memory through it
# The variables the worker keeps: locale and Python's own; everything else (tokens, DOCKER_CONFIG) stays out.
KEEP_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONIOENCODING", "PYTHONUTF8",
            "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "SOURCE_DATE_EPOCH")
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"


class SandboxUnavailable(HpcAnnotateError):
    """``HPCANNOTATE_SANDBOX=require`` and bubblewrap cannot run here."""


def mode() -> str:
    """The sandbox mode from ``HPCANNOTATE_SANDBOX``; a value that is none of MODES is an error."""
    value = os.environ.get(MODE_ENV, "").strip().lower() or "auto"
    if value not in MODES:
        raise HpcAnnotateError(f"{MODE_ENV}={os.environ[MODE_ENV]!r}: expected one of {', '.join(MODES)}")
    return value


def _collapse(paths: Iterable[str]) -> list[str]:
    """Absolute, normalised, existing paths with those inside another one (or a system directory) left out."""
    found = sorted({os.path.abspath(p) for p in paths if p and os.path.exists(p)})
    kept: list[str] = []
    for path in found:
        covered = [*SYSTEM_DIRS, *kept]
        if not any(path == top or path.startswith(top.rstrip("/") + "/") for top in covered):
            kept.append(path)
    return kept


def _python_paths() -> list[str]:
    """What the worker's interpreter needs to start and import hpcannotate and its dependencies.

    The installation prefixes, the directory hpcannotate is imported from (an editable install's
    source tree) and every ``sys.path`` entry of this process (site-packages, ``PYTHONPATH``),
    except ``/`` and the home directory or a directory above it: binding those would show the
    worker the user's files.
    """
    home = os.path.abspath(os.path.expanduser("~"))
    # the directory the hpcannotate package is imported from (an editable install's src/)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(hpcannotate.__file__)))
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), package_parent, *sys.path]
    kept = []
    for path in candidates:
        if not path or not os.path.isabs(path):
            continue  # "" is the current directory: not something the worker imports from
        path = os.path.abspath(path)
        if path == "/" or home == path or home.startswith(path.rstrip("/") + "/"):
            continue
        kept.append(path)
    return kept


# Where /etc keeps what only root may read (shadow, munge.key, ssl/private, ssh host keys): their
# entries are looked at one level deep, and those others cannot read are hidden in the sandbox.
ETC_SCANNED = ("/etc", "/etc/ssh", "/etc/ssl", "/etc/security", "/etc/munge", "/etc/docker", "/etc/containers")


@functools.cache
def _etc_secrets() -> tuple[list[str], list[str]]:
    """Files and directories under ETC_SCANNED that other users cannot read.

    Run as root, the worker could read them (``--ro-bind /etc`` keeps their modes): they are
    covered (an empty file, an empty tmpfs), so that the worker reads no more than any user can.
    """
    files: list[str] = []
    dirs: list[str] = []
    for top in ETC_SCANNED:
        if top in dirs:
            continue  # covered as a whole; bwrap could not even reach into it to cover its files
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode) and not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
                dirs.append(entry.path)
            elif stat.S_ISREG(mode) and not mode & stat.S_IROTH:
                files.append(entry.path)
    return files, dirs


def _environment(writable_home: str) -> list[str]:
    args = ["--clearenv"]
    for name in KEEP_ENV:
        if name in os.environ:
            args += ["--setenv", name, os.environ[name]]
    for name, value in os.environ.items():
        if name.startswith("LC_"):
            args += ["--setenv", name, value]
    args += ["--setenv", "HOME", writable_home, "--setenv", "TMPDIR", PRIVATE_TMP,
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    if "PATH" not in os.environ:
        args += ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
    return args


def bwrap_argv(reads: Sequence[str] = (), writes: Sequence[str] = (), cwd: str | None = None) -> list[str]:
    """The bwrap command line that runs what follows it in the sandbox.

    ``reads`` are shown read-only at their own paths (the recipe's directory), ``writes`` read-write
    (a file the caller reads back). ``cwd`` defaults to the private /tmp, so that nothing the worker
    imports can come from a recipe's directory.
    """
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--hostname", "sandbox"]
    for path in SYSTEM_DIRS:
        if os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    secret_files, secret_dirs = _etc_secrets()
    for path in secret_files:
        argv += ["--ro-bind", "/dev/null", path]
    for path in secret_dirs:
        argv += ["--tmpfs", path, "--remount-ro", path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMP_BYTES), "--tmpfs", PRIVATE_TMP]
    for path in _collapse([*_python_paths(), *reads]):
        argv += ["--ro-bind", path, path]
    for path in writes:
        argv += ["--bind", path, path]
    argv += _environment(PRIVATE_TMP)
    argv += ["--chdir", cwd or PRIVATE_TMP]
    return [*argv, "--"]


@functools.cache
def unavailable() -> str | None:
    """Why the sandbox cannot run here (one phrase), or None when it can; tried once per process."""
    if shutil.which("bwrap") is None:
        return f"bwrap is not installed ({INSTALL_HINT})"
    true = shutil.which("true", path="/usr/bin:/bin") or "/usr/bin/true"
    try:
        done = subprocess.run([*bwrap_argv(), true], capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not start: {exc}"
    if done.returncode == 0:
        return None
    said = (done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return f"bwrap cannot create its namespaces here ({said}); user namespaces may be disabled"


def use() -> bool:
    """Whether to run the next worker in the sandbox, without trying it first (that costs a bwrap start).

    A bwrap that is installed but cannot work here shows when the worker fails: the caller then asks
    ``fall_back`` whether that was the sandbox's fault.
    """
    chosen = mode()
    if chosen == "off":
        return False
    if shutil.which("bwrap") is not None:
        return True
    return not fall_back()


def fall_back() -> bool:
    """After a sandboxed worker failed: False when the sandbox works (the failure is the recipe's),
    True when it cannot run here and the worker may run without it (``auto``, warned once);
    SandboxUnavailable under ``require``."""
    global _warned
    reason = unavailable()
    if reason is None:
        return False
    if mode() == "require":
        raise SandboxUnavailable(f"recipes must be evaluated in a sandbox ({MODE_ENV}=require), but {reason}")
    if not _warned:
        _warned = True
        from hpcannotate import console

        console.warn(f"recipes are evaluated without a sandbox: {reason}; they can read and change your files "
                     f"and signal hpcannotate (set {MODE_ENV}=require to refuse, =off to silence this)")
    return True


_warned = False
