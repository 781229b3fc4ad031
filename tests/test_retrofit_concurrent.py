"""Two ``annotate`` commands on one tag at once: never both succeed when one change was lost.

The distribution API has no conditional PUT, so two writers that read the tag before either wrote
both write, and the second drops the first one's keys. ``annotate`` reads the tag back after
writing (once a writer that checked just before it would have written too) and merges again when
its change is gone, or fails with exit 1. Checked on the real registry with many racing pairs:
every writer that reports success has its key in what the tag holds at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import time

import pytest

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.oci.media import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST
from hpcannotate.registry import RegistryClient
from hpcannotate.retrofit.annotate import LostUpdateError, annotate

from .conftest import console_script
from .test_retrofit import no_login_files  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("no_login_files")

PAIRS = 30
CLI_PAIRS = 3
CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
LAYER = bytes.fromhex("1f8b08000000000000ff636018050001a0002e60ff0000")  # any bytes: the registry does not unpack


@pytest.fixture(scope="module")
def base(registry):
    """An image (config and one blob) pushed to the real registry; returns its repository and manifest."""
    name = f"{registry.host}/hpc/race"
    with RegistryClient() as client:
        config = client.push_blob(f"{name}:x", CONFIG)
        layer = client.push_blob(f"{name}:x", LAYER)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": len(CONFIG)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer, "size": len(LAYER)}],
        }).encode()
    return name, manifest


def fresh_tag(base, label: str) -> str:
    name, manifest = base
    ref = f"{name}:{label}"
    with RegistryClient() as client:
        client.put_manifest(ref, manifest, OCI_MANIFEST)
    return ref


def final_annotations(ref: str) -> dict:
    with RegistryClient() as client:
        return json.loads(client.get_manifest(ref).raw).get("annotations") or {}


def _writer(ref: str, key: str, barrier, results) -> None:
    barrier.wait()
    try:
        result = annotate(ref, set={key: "yes"})
        results.put((key, "ok" if result.written and result.verified else "unverified", result.attempts))
    except LostUpdateError:
        results.put((key, "lost", 0))
    except HpcAnnotateError as exc:
        results.put((key, f"error: {exc}", 0))


def race(ref: str, keys: list[str]) -> dict[str, tuple[str, int]]:
    """Each key set by its own ``annotate`` in its own process (as two commands would), started together;
    (outcome, attempts) by key."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(keys))
    results = context.Queue()
    procs = [context.Process(target=_writer, args=(ref, key, barrier, results)) for key in keys]
    for proc in procs:
        proc.start()
    got = {}
    for _ in keys:
        key, outcome, attempts = results.get(timeout=120)
        got[key] = (outcome, attempts)
    for proc in procs:
        proc.join(30)
    return got


@pytest.mark.slow
def test_racing_pairs_never_both_succeed_when_a_change_was_lost(base):
    outcomes = {"ok": 0, "lost": 0, "retried": 0}
    for pair in range(PAIRS):
        ref = fresh_tag(base, f"pair-{pair}")
        results = race(ref, ["org.example.a", "org.example.b"])
        final = final_annotations(ref)
        for key, (outcome, attempts) in results.items():
            assert outcome in ("ok", "lost"), outcome  # a lost change is the only failure a race may cause
            if outcome == "lost":
                outcomes["lost"] += 1
                continue
            assert final.get(key) == "yes", f"pair {pair}: {key} reported success but the tag lost it: {final}"
            outcomes["ok"] += 1
            outcomes["retried"] += attempts > 1
    # The pairs did race (a retry happened), and most writers got their change in.
    assert outcomes["retried"] > 0, outcomes
    assert outcomes["ok"] >= PAIRS, outcomes


@pytest.mark.slow
def test_racing_commands_exit_0_only_with_their_change_kept(base):
    for pair in range(CLI_PAIRS):
        ref = fresh_tag(base, f"cli-{pair}")
        procs = {key: subprocess.Popen([console_script(), "annotate", ref, "--set", f"{key}=yes"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for key in ("org.example.c", "org.example.d")}
        final_wait = time.monotonic() + 120
        codes = {key: proc.wait(max(1, final_wait - time.monotonic())) for key, proc in procs.items()}
        final = final_annotations(ref)
        for key, code in codes.items():
            stderr = procs[key].stderr.read()
            assert code in (0, 1), stderr
            if code == 0:
                assert final.get(key) == "yes", (key, final)
            else:
                assert "overwrote this command's change" in stderr, stderr


def test_a_change_overwritten_after_the_write_is_merged_again(base, monkeypatch):
    """Deterministic: another writer that had read the old tag overwrites ours right after our PUT."""
    from hpcannotate.retrofit import annotate as retrofit

    ref = fresh_tag(base, "overwritten")
    with RegistryClient() as client:
        old = client.get_manifest(ref)
    theirs = json.loads(old.raw)
    theirs["annotations"] = {"org.example.theirs": "yes"}
    theirs_raw = json.dumps(theirs).encode()
    real = retrofit._settled_tag
    calls = []

    def overwrite_then_settle(repo, took, written_at):
        calls.append(took)
        if len(calls) == 1:  # the other writer's PUT lands after ours, without our key
            with RegistryClient() as client:
                client.put_manifest(ref, theirs_raw, OCI_MANIFEST)
        return real(repo, took, written_at)

    monkeypatch.setattr(retrofit, "_settled_tag", overwrite_then_settle)
    result = annotate(ref, set={"org.example.mine": "yes"})
    assert result.attempts == 2 and result.verified
    assert final_annotations(ref) == {"org.example.theirs": "yes", "org.example.mine": "yes"}


def test_a_change_overwritten_every_time_fails_with_exit_1(base, monkeypatch):
    from hpcannotate.retrofit import annotate as retrofit

    ref = fresh_tag(base, "always-overwritten")
    with RegistryClient() as client:
        old = client.get_manifest(ref)
    real = retrofit._settled_tag

    def overwrite_then_settle(repo, took, written_at):
        with RegistryClient() as client:
            client.put_manifest(ref, old.raw, old.media_type)  # a writer that keeps putting the old image
        return real(repo, took, written_at)

    monkeypatch.setattr(retrofit, "_settled_tag", overwrite_then_settle)
    with pytest.raises(LostUpdateError, match=r"overwrote this command's change 3 time\(s\).*run the command again"):
        annotate(ref, set={"org.example.mine": "yes"})
    assert LostUpdateError.exit_code == 1
