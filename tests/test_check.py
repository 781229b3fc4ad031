"""``hpcannotate check``: named conformance checks on real images, Dockerfiles and directories.

Images come from ``hpcannotate build`` (which must pass) and from the registry client (a
foreign entrypoint, no annotations: which must fail, each for its own reason). Dockerfiles are
written per test, with the scripts they copy, so the static checks read real files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .fixtures.hostimages import RECIPES, host_images, layer_reads, log_mark

NAMES = ["annotations", "entrypoint", "runtime-selection", "cmd", "environment", "one-target"]
LABELS = ('LABEL org.supercontainers.hardware.cpu.optimized.version="zen3" '
          'org.supercontainers.hardware.cpu.optimized.mode="microarchitecture"\n')


@pytest.fixture(scope="module")
def images(buildah_store, busybox_base, registry, tmp_path_factory):
    return host_images(buildah_store, registry, tmp_path_factory.mktemp("hostimages"))


def run_check(run_cli, subject) -> tuple[int, dict]:
    result = run_cli("check", subject, "--json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def statuses(report: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def context(tmp_path: Path, dockerfile: str, **files: str) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (tmp_path / name.replace("__", ".")).write_text(text)
    return tmp_path


GOOD_ENTRYPOINT = '#!/bin/sh\n. /etc/profile.d/app.sh\nexec "$@"\n'
GOOD_PROFILE = 'export PATH=/opt/app/bin:$PATH\nexport APP_DATA=/opt/app/share\n'


def test_an_image_built_by_hpcannotate_is_conformant(run_cli, images, registry):
    mark = log_mark(registry)
    code, data = run_check(run_cli, images.refs["hello"])
    assert code == 0 and data["conformant"] and data["kind"] == "index"
    assert [part["label"] for part in data["images"]] == ["linux/amd64 x86_64", "linux/amd64/v3 x86_64_v3"]
    for part in data["images"]:
        assert [c["name"] for c in part["checks"]] == NAMES
        assert set(statuses(part).values()) == {"pass"}
    env = statuses(data["images"][0])
    assert env["environment"] == "pass"
    reasons = {c["name"]: c["reason"] for c in data["images"][1]["checks"]}
    assert reasons["one-target"] == "one CPU target: x86_64_v3"
    assert "PATH +/opt/hello/bin" in reasons["environment"]
    assert layer_reads(registry, images.layers, mark) == []


def test_a_foreign_entrypoint_fails_each_check_for_its_reason(run_cli, images):
    code, data = run_check(run_cli, images.refs["foreign"])
    assert code == 1 and not data["conformant"] and data["kind"] == "image"
    assert statuses(data) == {"annotations": "pass", "entrypoint": "fail", "runtime-selection": "fail",
                              "cmd": "fail", "environment": "fail", "one-target": "pass"}
    reasons = {c["name"]: c["reason"] for c in data["checks"]}
    assert "/opt/nvidia/nvidia_entrypoint.sh is not a known small entrypoint" in reasons["entrypoint"]
    assert "CMD gmx mdrun starts a program" in reasons["cmd"]
    assert "the CSCS Container Engine and `apptainer exec` skip" in reasons["environment"]


def test_an_image_without_annotations(run_cli, images):
    code, data = run_check(run_cli, images.refs["bare"])
    assert code == 1
    assert statuses(data) == {"annotations": "fail", "entrypoint": "pass", "runtime-selection": "pass",
                              "cmd": "pass", "environment": "pass", "one-target": "fail"}
    annotations = next(c for c in data["checks"] if c["name"] == "annotations")
    assert "mandatory key is missing" in annotations["reason"]


def test_human_output(run_cli, images):
    result = run_cli("check", images.refs["foreign"])
    assert result.returncode == 1
    assert "FAIL  entrypoint" in result.stdout and "PASS  annotations" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (
        "not conformant: 4 check(s) failed (cmd, entrypoint, environment, runtime-selection)")


def test_recipe_directory_is_rendered_and_checked(run_cli):
    code, data = run_check(run_cli, RECIPES / "hello")
    assert code == 0 and data["kind"] == "recipe"
    assert [p["label"] for p in data["images"]] == ["busybox x86_64", "busybox x86_64_v3"]


def test_a_good_build_context(run_cli, tmp_path):
    ctx = context(tmp_path, "FROM debian:bookworm\nCOPY entrypoint.sh /usr/local/bin/entry\n"
                            "COPY profile.sh /etc/profile.d/app.sh\n"
                            'ENV PATH="/opt/app/bin:${PATH}" APP_DATA=/opt/app/share\n' + LABELS +
                  'ENTRYPOINT ["/usr/local/bin/entry"]\nCMD ["/bin/bash", "-l"]\n',
                  entrypoint__sh=GOOD_ENTRYPOINT, profile__sh=GOOD_PROFILE)
    code, data = run_check(run_cli, ctx)
    assert code == 0, data
    assert data["kind"] == "context"
    reasons = {c["name"]: c["reason"] for c in data["checks"]}
    assert reasons["entrypoint"] == ('ENTRYPOINT /usr/local/bin/entry (entrypoint.sh): 2 lines, sources '
                                     '/etc/profile.d/app.sh, exec "$@"')


def test_environment_only_in_the_entrypoint_fails(run_cli, tmp_path):
    """Spack containerize's mistake: the profile sets PATH, ENV does not."""
    ctx = context(tmp_path, "FROM ubuntu:22.04\nCOPY entrypoint.sh /entry.sh\nCOPY profile.sh /etc/profile.d/app.sh\n"
                            + LABELS + 'ENTRYPOINT ["/entry.sh"]\n',
                  entrypoint__sh=GOOD_ENTRYPOINT, profile__sh=GOOD_PROFILE)
    code, data = run_check(run_cli, ctx)
    assert code == 1
    environment = next(c for c in data["checks"] if c["name"] == "environment")
    assert environment["status"] == "fail"
    assert environment["details"] == ["APP_DATA", "PATH"]
    cmd = next(c for c in data["checks"] if c["name"] == "cmd")
    # no CMD, an entrypoint: ubuntu's shell CMD is reset by ENTRYPOINT and nothing is exec'd
    assert cmd["status"] == "fail"


def test_runtime_selection_and_several_targets_fail(run_cli, tmp_path):
    selector = ('#!/bin/sh\nif grep -q avx512f /proc/cpuinfo; then\n  exec gmx_avx512 "$@"\nfi\n'
                'exec gmx_avx2 "$@"\n')
    ctx = context(tmp_path, "FROM ubuntu:22.04 AS build\n"
                            "RUN gcc -O3 -march=haswell -o /gmx_avx2 gmx.c && gcc -O3 -march=skylake-avx512 "
                            "-o /gmx_avx512 gmx.c\n"
                            "FROM ubuntu:22.04\nCOPY --from=build /gmx_* /usr/bin/\nCOPY select.sh /select.sh\n"
                            + LABELS + 'ENTRYPOINT ["/select.sh"]\nCMD ["gmx", "-h"]\n',
                  select__sh=selector)
    code, data = run_check(run_cli, ctx)
    assert code == 1
    found = {c["name"]: c for c in data["checks"]}
    assert found["runtime-selection"]["status"] == "fail"
    assert "/proc/cpuinfo (select.sh:2)" in found["runtime-selection"]["reason"]
    assert found["one-target"]["status"] == "fail"
    assert "-march: haswell, skylake-avx512" in found["one-target"]["reason"]
    assert found["entrypoint"]["status"] == "fail"  # it exec's a binary of its choice, never "$@"
    assert "does not exec its arguments" in found["entrypoint"]["reason"]
    assert found["cmd"]["status"] == "pass"  # gmx -h prints the usage


@pytest.mark.parametrize(("dockerfile", "name", "words"), [
    ("FROM ubuntu:22.04\nENTRYPOINT exec /opt/app/run\n", "entrypoint", "shell form"),
    ('FROM ubuntu:22.04\nENTRYPOINT ["python3", "/app/run.py"]\n', "entrypoint", "hands the command to it"),
    ('FROM ubuntu:22.04\nENTRYPOINT ["/bin/sh", "-c"]\n', "entrypoint", "loses mdrun -v"),
    ('FROM ubuntu:22.04\nENTRYPOINT ["/bin/bash", "-l"]\n', "entrypoint", "reads gmx as a script file"),
    ('FROM ubuntu:22.04\nCMD ["gmx", "mdrun"]\n', "cmd", "starts a program"),
    ("FROM scratch\nCOPY app /app\n", "cmd", "has nothing to run"),
    ("FROM ubuntu:22.04\nRUN gcc -march=native -o /app app.c\n", "one-target", "-march=native"),
    ("FROM ubuntu:22.04\nARG TARGET\nLABEL org.supercontainers.hardware.cpu.optimized.version=$TARGET\n",
     "annotations", "build arguments without a default"),
    ("FROM ubuntu:22.04\nLABEL org.supercontainers.hardware.cpu.optimized.version=zen9\n", "annotations",
     "zen9"),
])
def test_dockerfile_failures(run_cli, tmp_path, dockerfile, name, words):
    (tmp_path / "app").write_text("x")
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    code, data = run_check(run_cli, path)
    assert code == 1 and data["kind"] == "dockerfile"
    found = next(c for c in data["checks"] if c["name"] == name)
    assert found["status"] == "fail" and words in found["reason"], found


def test_variables_and_inherited_cmd(run_cli, tmp_path):
    path = tmp_path / "Containerfile"
    path.write_text("ARG CPU=zen3\nFROM ubuntu:22.04\nARG CPU\n"
                    "LABEL org.supercontainers.hardware.cpu.optimized.version=${CPU} "
                    "org.supercontainers.hardware.cpu.optimized.mode=microarchitecture\n"
                    'RUN gcc -march=${CPU} -o /usr/bin/app app.c\nENV APP_HOME=/opt/app\n')
    code, data = run_check(run_cli, tmp_path)
    assert code == 0, data
    found = {c["name"]: c["reason"] for c in data["checks"]}
    assert found["one-target"] == "one CPU target: zen3 (build: -march zen3)"
    assert found["cmd"] == "no CMD: inherits ubuntu:22.04's, a shell"


def test_bad_subjects(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    for subject, words in [(tmp_path / "empty", "no Dockerfile, Containerfile"),
                           ("./no/such/Dockerfile", "no such file or directory")]:
        result = run_cli("check", subject)
        assert result.returncode == 2 and words in result.stderr, result.stderr


@pytest.mark.slow
def test_the_real_gromacs_image(run_cli, buildah_store, debian_base, registry, tmp_path):
    """`check`, `edf` and `match` on `hpcannotate build recipes/gromacs` (Debian's GROMACS and Open MPI)."""
    from hpcannotate.build.pipeline import build

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
        import tomli as tomllib

    ref = f"{registry.host}/hostcheck/gromacs:2022.5"
    build(RECIPES.parents[2] / "recipes" / "gromacs", workdir=tmp_path, options=buildah_store.options,
          backend="buildah", push=ref)
    code, data = run_check(run_cli, ref)
    assert code == 0, json.dumps(data, indent=1)
    (image,) = data["images"]
    assert image["label"] == "linux/amd64/v2 x86_64_v2"
    edf = run_cli("edf", ref)
    assert edf.returncode == 0, edf.stderr
    parsed = tomllib.loads(edf.stdout)
    assert parsed["image"].startswith(f"{registry.host}#hostcheck/gromacs@sha256:")  # pinned by digest
    assert parsed["entrypoint"] is False
    assert parsed["annotations"] == {"com": {"hooks": {"cxi": {"enabled": "true"}}}}  # Open MPI over libfabric
    zen2 = run_cli("match", ref, "--sysroot", RECIPES.parent / "sysroots" / "zen2-epyc7742", "--app", "gromacs",
                   "--json")
    found = json.loads(zen2.stdout)
    assert found["verdict"] == "orange"
    assert any(r["message"].startswith("generic target x86_64_v2 on a much newer host (zen2)")
               for r in found["reasons"])
