"""``render --script``: the standalone sh script, its quoting, and a real buildah run of it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcannotate.build.script import sh_lines, slice_flag
from hpcannotate.errors import InputError
from hpcannotate.oci.layout import OciLayout

from .test_render import nasty

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"
CPU = "org.supercontainers.hardware.cpu.optimized.version"


# what the Dockerfile cannot hold, the script must: line breaks of every kind, and no NUL
script_values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60)
awkward = st.lists(st.one_of(nasty, st.sampled_from(["\n", "\r", "'\n'", "\u2028"])), max_size=8).map("".join)


def test_script_words_reach_the_program_exactly(tmp_path):
    """10,000 generated values, written as the script writes arguments, read back by a real sh.

    The values are collected first and checked in one sh run (one process, not 10,000)."""
    cases: list[list[str]] = []

    @settings(max_examples=10_000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(script_values, awkward), script_values)
    def collect(value, other):
        cases.append(["--annotation", f"org.example.first={value}", "--label", f"org.example.second={other}", value])

    collect()
    assert len(cases) >= 5_000
    script = tmp_path / "words.sh"
    script.write_text("".join("printf '%s\\0' \\\n    " + " \\\n    ".join(sh_lines(words)) + "\n"
                              for words in cases), encoding="utf-8")
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    ran = subprocess.run(["sh", str(script)], capture_output=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    fields = [f.decode("utf-8", "surrogateescape") for f in ran.stdout.split(b"\0")]
    assert fields.pop() == ""
    width = len(cases[0])  # every case is five words: no separator a value could imitate
    assert len(fields) == width * len(cases)
    for i, words in enumerate(cases):
        back = fields[i * width:(i + 1) * width]
        assert back == words


def test_slice_flag_values_are_csv_records():
    assert slice_flag("k", "plain value") == "k=plain value"
    assert slice_flag("k", 'a,b "c"') == '"k=a,b ""c"""'
    assert slice_flag("k", "two\nlines") == '"k=two\nlines"'
    with pytest.raises(InputError, match="CR LF"):
        slice_flag("k", "a\r\nb")


def test_script_is_valid_sh_and_names_every_target(tmp_path, run_cli):
    script = tmp_path / "ctx" / "build.sh"
    r = run_cli("render", HELLO, "-o", tmp_path / "ctx", "--script", script)
    assert r.returncode == 0, r.stderr
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True).returncode == 0
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n") and os.access(script, os.X_OK)
    assert '-t "$dest:"1.0-x86_64 ' in text and '-t "$dest:"1.0-x86_64_v3 ' in text
    assert "--format oci" in text and "import" not in text  # buildah only: no Python
    r = subprocess.run(["sh", str(script), "nowhere"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr


def read_layout(path: Path, tag: str) -> dict:
    """Per target: the index entry's annotations and platform, the manifest's annotations, the labels."""
    layout = OciLayout.open(path)
    index = layout.read_json(layout.find(tag)["digest"])
    found = {"index": index.get("annotations", {})}
    for desc in index["manifests"]:
        manifest = layout.read_json(desc["digest"])
        config = layout.read_json(manifest["config"]["digest"])
        found[desc["annotations"][CPU]] = {"entry": desc["annotations"], "platform": desc["platform"],
                                           "manifest": manifest["annotations"], "labels": config["config"]["Labels"]}
    return found


@pytest.mark.slow
def test_the_script_builds_what_hpcannotate_build_builds(tmp_path, run_cli, buildah_store, busybox_base):
    """Real buildah: the script's images carry the same keys and values as `hpcannotate build --no-probe`."""
    script = tmp_path / "ctx" / "build.sh"
    r = run_cli("render", HELLO, "-o", tmp_path / "ctx", "--script", script, *buildah_store.cli_args())
    assert r.returncode == 0, r.stderr
    env = {**os.environ, "BUILDAH": " ".join(buildah_store.global_args())}
    ran = subprocess.run(["sh", str(script), f"oci:{tmp_path / 'by-script'}"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    r = run_cli("build", HELLO, "--no-probe", "--output", f"oci:{tmp_path / 'by-build'}", "--workdir",
                tmp_path / "work", *buildah_store.cli_args(), "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    built = read_layout(tmp_path / "by-build", "1.0")
    scripted = read_layout(tmp_path / "by-script", "1.0")
    assert set(built) == set(scripted) == {"index", "x86_64", "x86_64_v3"}
    for target in ("x86_64", "x86_64_v3"):
        assert scripted[target] == built[target], target  # entry, platform, manifest annotations, labels
    vendor = built["x86_64"]["manifest"]["org.opencontainers.image.vendor"]
    assert vendor == 'Two-line\nvendor $X "quoted"'  # a line break, `$` and quotes, byte for byte
    if "cannot annotate an index itself" in ran.stderr:  # buildah < 1.33 (Debian 12 has 1.28)
        assert scripted["index"] == {}
    else:
        assert scripted["index"] == built["index"]
    assert json.loads(r.stdout)["reference"].endswith(":1.0")
