"""``hpcannotate init``: a recipe directory from a user's own recipe, and from there a real image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcannotate.build.pipeline import build
from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.recipes.init import host_family, scaffold, targets_from_flags
from hpcannotate.recipes.recipedir import load_recipe_dir

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = "# my app\nARG V=1\nFROM busybox\nCOPY hello.sh /opt/myapp/bin/hello\nRUN chmod +x /opt/myapp/bin/hello\n"


def own_dockerfile(tmp_path: Path, text: str = DOCKERFILE) -> Path:
    app = tmp_path / "myapp"
    app.mkdir()
    (app / "Dockerfile").write_text(text)
    (app / "hello.sh").write_text("#!/bin/sh\necho hello from myapp\n")
    return app / "Dockerfile"


def test_a_dockerfile_becomes_base_and_fragment(tmp_path):
    result = scaffold(own_dockerfile(tmp_path))
    recipe_dir = load_recipe_dir(tmp_path / "myapp")
    variant = recipe_dir.variant()  # one variant: no default: needed
    assert (recipe_dir.name, variant.format, variant.base) == ("myapp", "dockerfile", "busybox")
    assert variant.targets == (host_family(),)  # no -march: the architecture's baseline
    fragment = (tmp_path / "myapp" / "myapp.Dockerfile").read_text()
    assert "FROM" not in fragment and "ARG V" not in fragment and fragment.startswith("# my app")
    assert "COPY hello.sh" in fragment
    assert "baseline" in result.targets_reason
    with pytest.raises(InputError, match="already exists"):
        scaffold(tmp_path / "myapp" / "Dockerfile")


def test_a_dockerfile_s_march_is_its_target(tmp_path):
    text = "FROM debian:bookworm\nRUN gcc -O3 -march=znver3 -o /x x.c\n"
    assert scaffold(own_dockerfile(tmp_path, text)).targets == ["zen3"]
    assert targets_from_flags(["x86-64-v3"]) == ["x86_64_v3"]


@pytest.mark.parametrize(("text", "message"), [
    ("FROM debian AS b\nRUN make\nFROM busybox\nCOPY --from=b /x /x\n", "multi-stage"),
    ("FROM debian\nRUN gcc -march=native x.c\n", "-march=native"),
    ("FROM $B\n", "build argument"),
])
def test_dockerfiles_init_cannot_convert_say_why(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        scaffold(own_dockerfile(tmp_path, text))


def test_a_from_with_a_global_arg_takes_its_default(tmp_path):
    assert scaffold(own_dockerfile(tmp_path, "ARG B=busybox\nFROM $B\nRUN true\n")).base == "busybox"


def test_a_spack_environment_keeps_the_target_it_pins(tmp_path):
    (tmp_path / "spack.yaml").write_bytes((ROOT / "recipes" / "gromacs" / "spack.yaml").read_bytes())
    result = scaffold(tmp_path / "spack.yaml")
    assert (result.name, result.targets) == ("gromacs", ["x86_64_v3"])
    assert "spack.yaml:" in result.targets_reason
    assert load_recipe_dir(tmp_path).variant().format == "spack"


def test_init_cli_json(run_cli, tmp_path):
    dockerfile = own_dockerfile(tmp_path)
    r = run_cli("init", dockerfile, "--name", "hello-app", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["name"] == "hello-app" and data["base"] == "busybox"
    r = run_cli("init", tmp_path / "nope.txt")
    assert r.returncode == 2 and "no such file" in r.stderr


@pytest.mark.slow
def test_from_an_own_dockerfile_to_an_annotated_image(tmp_path, buildah_store, busybox_base):
    """The README's three commands, the first two through the library: init, build (inspect reads it)."""
    scaffold(own_dockerfile(tmp_path))
    report = build(tmp_path / "myapp", workdir=tmp_path / "build", options=buildah_store.options,
                   backend="buildah")
    (target,) = report.targets
    assert target.annotations[P + "hardware.cpu.optimized.version"] == host_family()
    assert target.annotations[P + "hardware.cpu.optimized.mode"] == "architecture"
    assert target.annotations["org.opencontainers.image.title"] == "myapp"


def test_an_unknown_command_points_at_the_program_s_help(run_cli):
    r = run_cli("frobnicate")
    assert r.returncode == 2
    assert "(see 'hpcannotate --help')" in r.stderr and "hpcannotate hpcannotate" not in r.stderr
    assert "(see 'hpcannotate build --help')" in run_cli("build", "--bogus").stderr


@pytest.mark.slow
def test_a_base_from_a_plain_http_loopback_registry_builds_into_a_layout(tmp_path, buildah_store, busybox_base,
                                                                         registry):
    """FROM 127.0.0.1:PORT/... (plain HTTP, as every loopback registry is treated) with --output oci:."""
    import subprocess

    base = f"{registry.host}/library/busybox:latest"
    subprocess.run([*buildah_store.global_args(), "push", "--tls-verify=false", "docker.io/library/busybox:latest",
                    f"docker://{base}"], check=True, capture_output=True)
    subprocess.run([*buildah_store.global_args(), "rmi", "-f", base], capture_output=True, check=False)
    dockerfile = own_dockerfile(tmp_path, DOCKERFILE.replace("FROM busybox", f"FROM {base}"))
    scaffold(dockerfile)

    def temporary_names() -> set[str]:
        names = subprocess.run([*buildah_store.global_args(), "images", "--format", "{{.Name}}"],
                               capture_output=True, text=True, check=True).stdout.split()
        return {n for n in names if n.startswith("localhost/tmp/hpcannotate-")}

    before = temporary_names()  # the session's shared store: other tests' bases are not this build's
    report = build(tmp_path / "myapp", workdir=tmp_path / "build", options=buildah_store.options,
                   backend="buildah", output=f"oci:{tmp_path / 'layout'}")
    assert report.targets[0].annotations["org.opencontainers.image.base.name"] == base
    assert temporary_names() <= before  # no temporary names left by this build's base loading


def test_progress_lines_go_to_a_pipe_too_and_quiet_silences_them(run_cli, tmp_path):
    hello = ROOT / "tests" / "data" / "recipedirs" / "hello"
    r = run_cli("build", hello, "--dry-run", "--workdir", tmp_path, env={"HPCANNOTATE_QUIET": ""})
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("[")]
    assert any("[x86_64] rendering dockerfile recipe" in line for line in lines)
    assert all(line[1:].lstrip().split("s]")[0].replace(".", "").isdigit() for line in lines)  # elapsed seconds
    quiet = run_cli("--quiet", "build", hello, "--dry-run", "--workdir", tmp_path, env={"HPCANNOTATE_QUIET": ""})
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("[")]
