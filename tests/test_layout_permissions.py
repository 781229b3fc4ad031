"""Layouts other users can read: files get 0666 less the umask (as buildah and skopeo write them).

HPC layouts live on shared file systems; a layout hpcannotate wrote must be readable by another
user's skopeo and umoci, including every blob ``collection apply --push oci:`` copied.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from hpcannotate.oci.layout import OciLayout, current_umask
from hpcannotate.oci.media import OCI_INDEX
from hpcannotate.retrofit.collection import apply_collection

from .fixtures.images import require_tool
from .test_collection import images, write_collection  # noqa: F401 - fixture
from .test_retrofit import no_login_files  # noqa: F401 - fixture


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def umask():
    """Set the umask for one test and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda value: os.umask(value)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    layout = OciLayout.create(tmp_path / "l")
    layout.put_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, OCI_INDEX, "x")
    writer = layout.blob_writer()
    writer.write(b"streamed")
    writer.commit()
    modes = _modes(tmp_path / "l")
    assert len(modes) == 4 and set(modes.values()) == {mode}, modes
    assert not [p for p in (tmp_path / "l").rglob(".tmp-*")]


@pytest.fixture
def shared_dir():
    """A directory every user can enter (pytest's tmp_path is 0700), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="hpcannotate-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _as_nobody(*argv: str) -> subprocess.CompletedProcess:
    setpriv = require_tool("setpriv", "util-linux")
    if os.geteuid() != 0:
        pytest.skip("running a tool as another user needs root")
    return subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                           *argv], capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"],
                                                                                        "HOME": "/tmp"})


def test_another_user_reads_a_collection_layout(images, shared_dir, umask):  # noqa: F811
    umask(0o022)
    path = write_collection(shared_dir / "c.yaml", images)
    (result,) = apply_collection(path, push=f"oci:{shared_dir / 'out'}")
    assert result.verified, result.verification
    layout = shared_dir / "out" / "gromacs" / "mpich"
    assert set(_modes(layout).values()) == {0o644}
    skopeo = require_tool("skopeo", "skopeo")
    got = _as_nobody(skopeo, "inspect", "--raw", f"oci:{layout}:2021.5")
    assert got.returncode == 0, got.stderr
    got = _as_nobody(skopeo, "inspect", "--override-arch", "amd64", f"oci:{layout}:2021.5")
    assert got.returncode == 0, got.stderr
    assert '"org.supercontainers.app.name": "bb"' in got.stdout  # the config blob, read by nobody


def test_another_user_unpacks_a_retrofitted_layout_with_umoci(images, shared_dir, umask, run_cli):  # noqa: F811
    umask(0o022)
    layout = shared_dir / "layout"
    shutil.copytree(images.layout, layout)
    got = run_cli("annotate", f"oci:{layout}:single", "--set", "mpi.implementation=openmpi")
    assert got.returncode == 0, got.stderr
    assert set(_modes(layout).values()) == {0o644}  # the new manifest and index.json too
    bundle = shared_dir / "bundle-parent"
    bundle.mkdir(mode=0o777)
    bundle.chmod(0o777)
    umoci = require_tool("umoci", "umoci")
    got = _as_nobody(umoci, "unpack", "--rootless", "--image", f"{layout}:single", str(bundle / "b"))
    assert got.returncode == 0, got.stderr
    assert (bundle / "b" / "rootfs" / "bin" / "busybox").is_file()
