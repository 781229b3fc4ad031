"""``check`` reads /etc/profile from the layers before it says a login shell loads the profile (issue 12.3)."""

from __future__ import annotations

import json
from pathlib import Path

from hpcannotate.oci.layers import directory_layer
from hpcannotate.oci.layout import OciLayout
from hpcannotate.oci.media import OCI_CONFIG, OCI_MANIFEST, canonical_json
from hpcannotate.verdict.check_dockerfile import check


def image_layout(tmp_path: Path, files: dict[str, str]) -> Path:
    """An OCI layout of one image: ``files`` in one layer, CMD ``/bin/sh -l``, built as hpcannotate builds."""
    rootfs = tmp_path / "rootfs"
    for name, text in files.items():
        (rootfs / name).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / name).write_text(text)
    layout = OciLayout.create(tmp_path / "oci")
    layer = directory_layer(rootfs, layout)
    config = canonical_json({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/opt/app/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh", "-l"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created_by": "COPY hpcannotate/profile.sh /etc/profile.d/hpcannotate.sh"}],
    })
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": layout.put_blob(config), "size": len(config)},
                "layers": [layer.descriptor()]}
    layout.put_manifest(manifest, OCI_MANIFEST, ref="1", platform={"architecture": "amd64", "os": "linux"})
    return tmp_path / "oci"


PROFILE_D = {"etc/profile.d/hpcannotate.sh": "PATH=/opt/app/bin:$PATH\n"}


def cmd_check(report):
    return next(c for c in report.checks if c.name == "cmd")


def test_a_login_shell_without_etc_profile_fails(tmp_path):
    layout = image_layout(tmp_path, PROFILE_D)
    found = cmd_check(check(f"oci:{layout}:1"))
    assert not found.passed
    assert "no /etc/profile" in found.reason and "/etc/profile.d/hpcannotate.sh never loads" in found.reason


def test_an_etc_profile_that_loads_profile_d_passes(tmp_path):
    layout = image_layout(tmp_path, {**PROFILE_D, "etc/profile": 'for f in /etc/profile.d/*.sh; do . "$f"; done\n'})
    found = cmd_check(check(f"oci:{layout}:1"))
    assert found.passed and "/etc/profile sources /etc/profile.d" in found.reason


def test_an_etc_profile_that_ignores_profile_d_fails(tmp_path):
    layout = image_layout(tmp_path, {**PROFILE_D, "etc/profile": "PATH=/usr/bin:/bin\n"})
    assert not cmd_check(check(f"oci:{layout}:1")).passed


def test_without_reading_layers_nothing_is_claimed(tmp_path, run_cli):
    layout = image_layout(tmp_path, PROFILE_D)
    result = run_cli("check", "--no-layers", "--json", f"oci:{layout}:1")
    data = json.loads(result.stdout)
    found = next(c for c in data["checks"] if c["name"] == "cmd")
    assert found["status"] == "pass" and "not read" in found["reason"] and "loads" not in found["reason"]


def test_a_registry_image_is_read_with_layers_only_when_asked(tmp_path, registry, run_cli):
    import shutil
    import subprocess

    if not shutil.which("skopeo"):
        import pytest

        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    layout = image_layout(tmp_path, {**PROFILE_D, "etc/profile": ". /etc/profile.d/hpcannotate.sh\n"})
    ref = f"{registry.host}/check/layers:1"
    copy = subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{ref}"],
                          capture_output=True, text=True, timeout=120)
    assert copy.returncode == 0, copy.stderr
    plain = json.loads(run_cli("check", "--json", ref).stdout)
    assert "not read" in next(c for c in plain["checks"] if c["name"] == "cmd")["reason"]
    read = json.loads(run_cli("check", "--layers", "--json", ref).stdout)
    found = next(c for c in read["checks"] if c["name"] == "cmd")
    assert found["status"] == "pass" and "sources /etc/profile.d" in found["reason"]
