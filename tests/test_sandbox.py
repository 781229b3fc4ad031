"""Recipes run in the bubblewrap sandbox: they cannot change the user's files, reach the network,
leave a process behind or stop hpcannotate, and a worker's forged reply is a clear error.

Every test runs the real console script with the real bwrap (Debian bubblewrap), and
``HPCANNOTATE_SANDBOX=require`` so that a machine without a working sandbox fails here instead
of quietly testing the unsandboxed worker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hpcannotate.recipes import sandbox

from .conftest import console_script

REQUIRE = {"HPCANNOTATE_SANDBOX": "require"}
BASE = "Stage0 += baseimage(image='ubuntu:22.04')\n"


def hpccm_recipe(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    recipe = directory / "recipe.py"
    recipe.write_text(BASE + body)
    return recipe


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hpcannotate: error:") and "Traceback" not in result.stderr, lines[0]
    return lines[0]


def processes_with(marker: str) -> list[int]:
    """Host PIDs (every PID namespace is visible from here) whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_sandbox_works_here():
    assert sandbox.unavailable() is None, "bwrap cannot run here: the tests below need it (install bubblewrap)"


def test_a_session_leader_child_or_a_double_forked_daemon_does_not_survive_infer(tmp_path):
    marker = f"hpcannotate-daemon-{uuid.uuid4().hex}"
    sleeper = f"['python3', '-c', 'import time; time.sleep(300)', {marker!r}]"
    recipe = hpccm_recipe(tmp_path / "app", (
        "import os, subprocess, time\n"
        f"subprocess.Popen({sleeper}, start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execvp('python3', {sleeper})\n"
        "    os._exit(0)\n"
        "time.sleep(1.5)\n"  # long enough for the test to see both running
    ))
    proc = subprocess.Popen([console_script(), "infer", "--format", "hpccm", str(recipe)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **REQUIRE})
    seen: set[int] = set()
    while proc.poll() is None:
        seen.update(processes_with(marker))
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, out + err
    assert len(seen) >= 2, "the recipe's processes never ran: this test would prove nothing"
    deadline = time.monotonic() + 5
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_with(marker)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} outlived `hpcannotate infer`"


EASYCONFIG = """\
easyblock = 'ConfigureMake'
name = 'Vandal'
version = '1.0'
homepage = 'https://example.org'
description = 'removes and writes what it can'
toolchain = SYSTEM
import os
report = []
for victim in {victims!r}:
    try:
        os.remove(victim)
        report.append('removed ' + victim)
    except OSError as exc:
        report.append(type(exc).__name__)
for target in {targets!r}:
    try:
        open(target, 'w').write('pwned')
        report.append('wrote ' + target)
    except OSError as exc:
        report.append(type(exc).__name__)
raise RuntimeError('REPORT ' + ', '.join(report))
"""


def test_an_easyconfig_cannot_remove_or_write_the_users_files(tmp_path, run_cli):
    home = tmp_path / "home"
    home.mkdir()
    precious = home / "precious.txt"
    precious.write_text("keep me")
    tree = tmp_path / "ec" / "v" / "Vandal"
    tree.mkdir(parents=True)
    sibling = tree / "sibling.txt"
    sibling.write_text("keep me too")
    host_tmp = Path("/tmp") / f"hpcannotate-sandbox-test-{uuid.uuid4().hex}"
    in_python = Path(sys.prefix) / f"pwned-{uuid.uuid4().hex}"  # the installation hpcannotate runs from
    easyconfig = tree / "Vandal-1.0.eb"
    easyconfig.write_text(EASYCONFIG.format(
        victims=[str(precious), str(sibling), str(easyconfig)],
        targets=[str(home / "new.txt"), str(tree / "new.txt"), str(host_tmp), str(in_python)]))
    before = {p: p.read_bytes() for p in (precious, sibling, easyconfig)}
    r = run_cli("infer", "--format", "easybuild", str(easyconfig), env={**REQUIRE, "HOME": str(home)})
    line = one_error_line(r)
    report = line.split("REPORT ", 1)[1].split(", ")
    assert len(report) == 7 and not any(r.startswith("removed") for r in report), line
    assert [r for r in report if r.startswith("wrote")] == [f"wrote {host_tmp}"], line  # its private /tmp
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in home.iterdir()) == ["precious.txt"]
    assert sorted(p.name for p in tree.iterdir()) == ["Vandal-1.0.eb", "sibling.txt"]
    assert not host_tmp.exists() and not in_python.exists()


def test_a_recipe_sees_neither_the_users_files_nor_the_environments_secrets(tmp_path, run_cli):
    secret = tmp_path / "outside" / "config.json"
    secret.parent.mkdir()
    secret.write_text('{"auths": {"registry.example": {"auth": "c2VjcmV0"}}}')
    recipe = hpccm_recipe(tmp_path / "app", (
        "import os\n"
        f"try:\n    seen = open({str(secret)!r}).read()\nexcept OSError as exc:\n    seen = type(exc).__name__\n"
        "try:\n    shadow = str(len(open('/etc/shadow').read()))\nexcept OSError as exc:\n"
        "    shadow = type(exc).__name__\n"
        "caps = [line.split()[1] for line in open('/proc/self/status') if line.startswith('CapEff')][0]\n"
        "raise RuntimeError('SAW ' + seen + ' TOKEN ' + os.environ.get('REGISTRY_TOKEN', 'unset') + ' SHADOW '\n"
        "                   + shadow + ' CAPS ' + caps + ' ROOT [' + ','.join(sorted(os.listdir('/root'))\n"
        "                   if os.path.isdir('/root') else []) + ']')\n"
    ))
    line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe),
                                  env={**REQUIRE, "REGISTRY_TOKEN": "s3cr3t"}))
    assert "SAW FileNotFoundError TOKEN unset SHADOW " in line
    assert line.split(" SHADOW ")[1].split()[0] in ("0", "PermissionError")  # covered, even for root
    assert " CAPS 0000000000000000 " in line
    in_root = line.split(" ROOT [")[1].split("]")[0]
    assert set(in_root.split(",")) <= {"", ".pyenv"}, line  # /root has at most the Python (here, pyenv's) in it


def test_no_network_from_inside(tmp_path, run_cli):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    port = server.getsockname()[1]
    recipe = hpccm_recipe(tmp_path / "app", (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "    outcome = 'connected'\n"
        "except OSError as exc:\n"
        "    outcome = type(exc).__name__\n"
        "raise RuntimeError('NET ' + outcome)\n"
    ))
    try:
        line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe), env=REQUIRE))
        with pytest.raises(TimeoutError):
            server.accept()  # nothing reached the host's loopback
    finally:
        server.close()
    assert "NET " in line and "NET connected" not in line


def test_a_recipe_that_stops_or_kills_its_parent_still_times_out_cleanly(tmp_path):
    app = tmp_path / "app"
    pidfile = app / "cli.pid"
    recipe = hpccm_recipe(app, (
        "import os, signal, time\n"
        "deadline = time.time() + 10\n"
        f"while not os.path.exists({str(pidfile)!r}) and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        f"cli = int(open({str(pidfile)!r}).read())\n"
        "for pid, sig in ((cli, signal.SIGSTOP), (cli, signal.SIGKILL), (os.getppid(), signal.SIGSTOP),\n"
        "                 (os.getppid(), signal.SIGKILL), (1, signal.SIGKILL)):\n"
        "    try:\n"
        "        os.kill(pid, sig)\n"
        "    except OSError:\n"
        "        pass\n"
        "if os.getpid() < 100:\n"  # only in a fresh PID namespace: outside it, -1 is every process we own
        "    try:\n"
        "        os.kill(-1, signal.SIGKILL)\n"
        "    except ProcessLookupError:\n"  # nobody else in the namespace to kill
        "        pass\n"
        "os.killpg(0, signal.SIGSTOP)\n"  # stops this worker: only the timeout can end it now
        "while True:\n"
        "    pass\n"
    ))
    started = time.monotonic()
    proc = subprocess.Popen([console_script(), "infer", "--format", "hpccm", "--timeout", "3", str(recipe)],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **REQUIRE})
    pidfile.write_text(str(proc.pid))
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("the CLI did not end: the recipe stopped it or its timeout") from None
    assert time.monotonic() - started < 20
    assert proc.returncode == 2, out + err
    assert err.strip().splitlines() == [
        f"hpcannotate: error: {recipe}: evaluation did not finish within 3 s (raise it with --timeout)"]


@pytest.mark.parametrize("forged", ['{"result": 5}', '{"result": {"image": 7, "stages": "x"}}', '[1, 2]',
                                    '{"error": ["not", "text"]}'])
def test_a_forged_worker_reply_is_one_clear_line(tmp_path, run_cli, forged):
    recipe = hpccm_recipe(tmp_path / "app", f"import os\nos.write(1, b'\\n' + {forged.encode()!r} + b'\\n')\n"
                                            "os._exit(0)\n")
    line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe), env=REQUIRE))
    assert str(recipe) in line and "internal error" not in line


def test_a_forged_reply_from_an_easyconfig_is_its_error(tmp_path, run_cli):
    easyconfig = tmp_path / "Forger-1.0.eb"
    easyconfig.write_text("name = 'Forger'\nversion = '1.0'\nhomepage = 'x'\ndescription = 'x'\n"
                          "toolchain = SYSTEM\nimport os\n"
                          "os.write(1, b'\\n{\"result\": {\"results\": [{\"facts\": {\"sets\": 3}}]}}\\n')\n"
                          "os._exit(0)\n")
    line = one_error_line(run_cli("infer", "--format", "easybuild", str(easyconfig), env=REQUIRE))
    assert str(easyconfig) in line and "malformed" in line


def test_without_bwrap_the_worker_runs_unsandboxed_after_one_warning(tmp_path, run_cli):
    recipe = hpccm_recipe(tmp_path / "app", "")
    no_bwrap = {"PATH": str(tmp_path / "empty")}
    r = run_cli("infer", "--format", "hpccm", "--json", str(recipe), env=no_bwrap)
    assert r.returncode in (0, 1), r.stderr
    warnings = [line for line in r.stderr.splitlines() if "sandbox" in line]
    assert len(warnings) == 1 and "bwrap is not installed" in warnings[0], r.stderr
    assert "HPCANNOTATE_SANDBOX=require" in warnings[0]
    line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe), env={**no_bwrap, **REQUIRE}))
    assert "bwrap is not installed" in line and "HPCANNOTATE_SANDBOX=require" in line
    line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe), env={"HPCANNOTATE_SANDBOX": "maybe"}))
    assert "HPCANNOTATE_SANDBOX='maybe'" in line


def test_a_bwrap_that_cannot_create_namespaces_falls_back_with_one_warning(tmp_path, run_cli):
    """As on a kernel without unprivileged user namespaces: bwrap is there but fails before the worker runs."""
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    recipe = hpccm_recipe(tmp_path / "app", "")
    path = {"PATH": f"{fake.parent}:{os.environ['PATH']}"}
    r = run_cli("infer", "--format", "hpccm", "--json", str(recipe), env=path)
    assert r.returncode in (0, 1), r.stderr
    assert r.stderr.strip().splitlines() == [
        "warning: recipes are evaluated without a sandbox: bwrap cannot create its namespaces here (bwrap: No "
        "permissions to create a new namespace); user namespaces may be disabled; they can read and change your "
        "files and signal hpcannotate (set HPCANNOTATE_SANDBOX=require to refuse, =off to silence this)"]
    line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe), env={**path, **REQUIRE}))
    assert "HPCANNOTATE_SANDBOX=require" in line and "No permissions to create a new namespace" in line


def test_a_recipe_directory_named_relative_to_the_cwd_renders_in_the_sandbox(tmp_path, run_cli):
    """The sandbox's working directory is its private /tmp: the worker must get absolute paths."""
    repo = Path(__file__).resolve().parents[1]
    r = run_cli("render", "recipes/gromacs", "--variant", "hpccm", "--target", "zen3", "-o", tmp_path / "ctx",
                cwd=repo, env=REQUIRE)
    assert r.returncode == 0, r.stderr
    assert "FROM " in (tmp_path / "ctx" / "Dockerfile").read_text()


def test_a_recipe_cannot_take_the_machines_memory_or_disk(tmp_path, run_cli):
    recipe = hpccm_recipe(tmp_path / "app", (
        "report = []\n"
        "try:\n"
        "    hog = bytearray(6 * 2**30)\n"
        "    report.append('allocated')\n"
        "except MemoryError:\n"
        "    report.append('MemoryError')\n"
        "try:\n"
        "    with open('/tmp/fill', 'wb') as fill:\n"
        "        for _ in range(300):\n"
        "            fill.write(bytes(2**20))\n"
        "    report.append('wrote 300 MB')\n"
        "except OSError as exc:\n"
        "    report.append(type(exc).__name__ + ' ' + str(exc.errno))\n"
        "raise RuntimeError('REPORT ' + ', '.join(report))\n"
    ))
    line = one_error_line(run_cli("infer", "--format", "hpccm", str(recipe), env=REQUIRE))
    assert "REPORT MemoryError, OSError " in line, line  # EFBIG (the file size limit) or ENOSPC (the tmpfs)
