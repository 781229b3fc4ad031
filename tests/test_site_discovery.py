"""discover, site, report and resolve against a real registry, a real Slurm and headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .fixtures import sitedata

SYSROOTS = Path(__file__).parent / "data" / "sysroots"
P = "org.supercontainers."
HOSTILE_DOC = """# Quickstart <script>alert('doc')</script>

Run `gmx mdrun`.

<img src=x onerror="alert('img')">

[click](javascript:alert('link')) and [ok](https://example.org/docs)

| a | b |
|---|---|
| 1 | 2 |
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A registry of this module's own: discover crawls the whole catalog, so the images other tests push
    into the session's registry must not be in it."""
    from .fixtures.registry import serving

    with serving(tmp_path_factory.mktemp("site-registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    """This module's own registry with htpasswd auth (see ``registry``)."""
    from .fixtures.registry import serving

    with serving(tmp_path_factory.mktemp("site-registry-auth"), "alice", "correct horse battery") as reg:
        yield reg


@pytest.fixture(scope="module")
def site_registry(registry):
    """30 generated images in 3 applications, a multi-target index and per-target tags, in the test registry."""
    images = sitedata.generate(30, apps=3)
    images[0].quickstart = HOSTILE_DOC
    sitedata.push(registry.host, images, workers=4)
    gromacs = [i for i in images if i.app == "gromacs"]
    generic = next(i for i in gromacs if i.target == "x86_64")
    v3 = next(i for i in gromacs if i.target == "x86_64_v3" and not i.gpu)
    v4 = next(i for i in gromacs if i.target == "x86_64_v4")
    # An index a first-match client can take anywhere: only the generic entry. The v3 and v4
    # images are reachable through their per-target tags only.
    sitedata.push_index(registry.host, "hpc/gromacs", "2024", [generic])
    for image, target in ((v3, "x86_64_v3"), (v4, "x86_64_v4")):
        from hpcannotate.registry import RegistryClient

        with RegistryClient() as client:
            client.put_manifest(f"{registry.host}/hpc/gromacs:2024-{target}", sitedata.manifest_for(image),
                                sitedata.OCI_MANIFEST)
    return registry, images, {"generic": generic, "v3": v3, "v4": v4}


def save_fingerprint(sysroot: str, path: Path, network: bool = False) -> Path:
    """A captured node's fingerprint; without its fast network unless asked, so that the generated
    images' Open MPI (which cannot be replaced) does not cap every score and the CPU decides."""
    from hpcannotate.host import fingerprint

    data = fingerprint(SYSROOTS / sysroot).to_json()
    if not network:
        del data["interconnect"], data["annotations"]
    path.write_text(json.dumps(data))
    return path


def test_catalog_pages_follow_link(site_registry):
    from hpcannotate.registry import RegistryClient

    registry, _, _ = site_registry
    with RegistryClient() as client:
        pages = list(client.list_repositories(registry.host, page_size=1))
    assert len(pages) >= 3 and all(len(p) <= 1 for p in pages)
    assert sorted(r for p in pages for r in p) == ["hpc/gromacs", "hpc/lammps", "hpc/namd"]


def test_discover_reads_manifests_only_and_again_only_what_changed(site_registry, run_cli, tmp_path):
    registry, images, _ = site_registry
    catalog = tmp_path / "catalog.json"
    first = run_cli("discover", f"{registry.host}/hpc", "-o", catalog, "--json")
    assert first.returncode == 0, first.stderr
    stats = json.loads(first.stdout)
    assert stats["references"] == len(images) + 3 and stats["read"] == stats["references"] and stats["errors"] == 0
    assert "discover: 0/" in first.stderr and f"discover: {stats['references']}/{stats['references']}" in first.stderr
    data = json.loads(catalog.read_text())
    by_ref = {i["reference"]: i for i in data["images"]}
    index = by_ref[f"{registry.host}/hpc/gromacs:2024"]
    assert index["index"] is True and len(index["entries"]) == 1
    assert index["entries"][0]["pull"].startswith(f"{registry.host}/hpc/gromacs@sha256:")
    one = by_ref[f"{registry.host}/{images[1].repository}:{images[1].tag}"]["entries"][0]
    assert one["app"] == images[1].app and one["version"] == images[1].version
    assert one["annotations"][P + "hardware.cpu.optimized.version"] == images[1].target
    assert one["platform"]["architecture"] == images[1].arch and one["run"] == {"entrypoint": False}
    layer = sitedata.sha256(sitedata.empty_layer())
    assert f"GET /v2/hpc/gromacs/blobs/{layer}" not in registry.log_text()  # never a layer

    second = json.loads(run_cli("discover", f"{registry.host}/hpc", "-o", catalog, "--json").stdout)
    assert second["reused"] == second["references"] and second["read"] == 0
    # one HEAD per tag, the catalog page and one tag list per repository: nothing else
    assert second["requests"] == second["references"] + 1 + 3
    assert json.loads(catalog.read_text())["images"] == data["images"]

    changed = images[2]
    changed.version = "9.9"
    sitedata.push(registry.host, [changed], workers=1)
    third = json.loads(run_cli("discover", f"{registry.host}/hpc", "-o", catalog, "--json").stdout)
    assert third["read"] == 1 and third["reused"] == third["references"] - 1
    again = {i["reference"]: i for i in json.loads(catalog.read_text())["images"]}
    assert again[f"{registry.host}/{changed.repository}:{changed.tag}"]["entries"][0]["version"] == "9.9"


def test_discover_bad_target_is_one_line(run_cli, tmp_path):
    result = run_cli("discover", "not a registry", "-o", tmp_path / "c.json")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "REGISTRY[/PREFIX]" in result.stderr


def test_resolve_considers_per_target_tags_and_edf_pins_the_same(site_registry, run_cli, tmp_path):
    registry, _, chosen = site_registry
    zen2 = save_fingerprint("zen2-epyc7742", tmp_path / "zen2.json")  # an x86-64-v3 host without AVX-512
    ref = f"{registry.host}/hpc/gromacs:2024"
    result = run_cli("resolve", ref, "--fingerprint", zen2)
    assert result.returncode == 0, result.stderr
    v3_digest = sitedata.sha256(sitedata.manifest_for(chosen["v3"]))
    assert result.stdout.strip() == f"{registry.host}/hpc/gromacs@{v3_digest}"
    pyxis = run_cli("resolve", ref, "--fingerprint", zen2, "--format", "pyxis")
    assert pyxis.stdout.strip() == f"{registry.host}#hpc/gromacs@{v3_digest}"
    only_index = run_cli("resolve", ref, "--fingerprint", zen2, "--no-siblings")
    generic = sitedata.sha256(sitedata.manifest_for(chosen["generic"]))
    assert only_index.stdout.strip() == f"{registry.host}/hpc/gromacs@{generic}"
    edf = run_cli("edf", ref, "--fingerprint", zen2)
    assert edf.returncode == 0, edf.stderr
    assert f'image = "{registry.host}#hpc/gromacs@{v3_digest}"' in edf.stdout

    graviton = save_fingerprint("graviton2-neoverse_n1", tmp_path / "graviton.json")
    none = run_cli("resolve", ref, "--fingerprint", graviton)
    assert none.returncode == 1 and none.stdout == "" and "no image of" in none.stderr


def test_site_from_a_fingerprint_dir(run_cli, tmp_path):
    fps = tmp_path / "fps"
    fps.mkdir()
    save_fingerprint("zen2-epyc7742", fps / "zen2.json")
    (fps / "broken.json").write_text("{\"cpu\": 3}")
    result = run_cli("site", "--fingerprint-dir", fps, "-o", tmp_path / "site.json")
    assert result.returncode == 2 and "broken.json" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_site_with_a_real_slurm(slurm, run_cli, tmp_path):
    out = tmp_path / "site.json"
    result = run_cli("site", "--slurm", "--name", "test", "-o", out, "--json", env=slurm.env, timeout=300)
    assert result.returncode == 0, result.stderr + slurm.logs()
    parts = json.loads(result.stdout)["partitions"]
    assert [p["name"] for p in parts] == ["cpu", "gpu"] and all(p["target"] for p in parts)
    from hpcannotate.host import fingerprint
    from hpcannotate.host.site import Site

    site = Site.load(out)
    assert site.node_types[0].fingerprint.cpu.target == fingerprint().cpu.target  # the node is this machine
    by_features = run_cli("site", "--slurm", "--by-features", "--partition", "gpu", "-o", out, "--json",
                          env=slurm.env, timeout=300)
    assert by_features.returncode == 0, by_features.stderr
    assert [p["name"] for p in json.loads(by_features.stdout)["partitions"]] == ["gpu[avx2,fast]"]
    failing = run_cli("site", "--slurm", "--remote-command", "false", "-o", out, env=slurm.env, timeout=300)
    assert failing.returncode == 1 and "failed: srun --partition=cpu" in failing.stdout


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_report_in_headless_chromium(site_registry, run_cli, tmp_path):
    registry, images, _chosen = site_registry
    catalog = tmp_path / "catalog.json"
    assert run_cli("discover", f"{registry.host}/hpc", "-o", catalog, "--no-progress").returncode == 0
    fps = tmp_path / "fps"
    fps.mkdir()
    save_fingerprint("zen2-epyc7742", fps / "zen2.json")
    save_fingerprint("graviton2-neoverse_n1", fps / "graviton.json")
    save_fingerprint("h100-sapphirerapids-ib", fps / "h100.json")
    site = tmp_path / "site.json"
    assert run_cli("site", "--fingerprint-dir", fps, "-o", site).returncode == 0
    out = tmp_path / "public"
    result = run_cli("report", catalog, "--site", site, "-o", out)
    assert result.returncode == 0, result.stderr

    choices = json.loads((out / "report.json").read_text())
    gromacs = next(a for a in choices["apps"] if a["name"] == "gromacs")
    zen2 = run_cli("resolve", f"{registry.host}/hpc/gromacs:2024", "--fingerprint", fps / "zen2.json")
    # the page and resolve agree on the node: an x86_64_v3 build (several are equally good)
    assert gromacs["use"]["zen2"]["verdict"] == "green"
    v3_digests = {sitedata.sha256(sitedata.manifest_for(i)) for i in images
                  if i.app == "gromacs" and i.target == "x86_64_v3" and not i.gpu}
    assert gromacs["use"]["zen2"]["pull"].split("@")[1] in v3_digests
    assert zen2.stdout.strip().split("@")[1] in v3_digests
    assert gromacs["use"]["graviton"]["pull"] is None or "arm64" not in gromacs["use"]["graviton"]["pull"]

    profile = tmp_path / "profile"
    index = chromium("--dump-dom", (out / "index.html").as_uri(), profile=profile)
    assert index.returncode == 0, index.stderr[-2000:]
    dom = index.stdout
    assert "Which image to use on which partition" in dom
    assert f"srun --container-image={registry.host}#hpc/gromacs@sha256:" in dom
    assert re.search(r'<td data-col="zen2" class="green', dom)
    assert 'class="hidden"' not in dom  # the filter script ran and hid nothing by default
    filtered = chromium("--dump-dom", (out / "index.html").as_uri() + "#app=lammps&hide=h100", profile=profile).stdout
    rows = dict(re.findall(r'<tr data-app="([^"]+)"( class="hidden")?', filtered))
    assert rows == {"gromacs": ' class="hidden"', "lammps": "", "namd": ' class="hidden"'}
    assert re.search(r'<th data-col="h100" class="hidden">', filtered)
    assert re.search(r'<th data-col="zen2"( class="")?>', filtered)

    first = images[0]
    digest = sitedata.sha256(sitedata.manifest_for(first))[7:19]
    pages = [out / "image" / f"hpc_gromacs_{first.tag}_{digest}.html"]
    assert pages[0].exists()
    page = chromium("--dump-dom", pages[0].as_uri(), profile=profile).stdout
    assert "<h2>quickstart</h2>" in page and "<code>gmx mdrun</code>" in page and "<table>" in page
    assert page.count("<script") == 1  # ours only: the doc's script is text
    assert "&lt;script&gt;alert('doc')&lt;/script&gt;" in page
    assert "onerror" not in re.sub(r"&lt;img[^<]*", "", page)  # the img tag is text, not an element
    assert 'href="javascript:' not in page and 'href="https://example.org/docs"' in page

    shot = tmp_path / "index.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1400,900", (out / "index.html").as_uri(),
                     profile=profile)
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
    keep = os.environ.get("HPCANNOTATE_KEEP_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / "report-index.png")
        chromium(f"--screenshot={Path(keep) / 'report-image.png'}", "--window-size=1400,1400", pages[0].as_uri(),
                 profile=profile)
        app_page = next((out / "app").glob("gromacs-*.html"))
        chromium(f"--screenshot={Path(keep) / 'report-app.png'}", "--window-size=1400,900", app_page.as_uri(),
                 profile=profile)


def test_bad_inputs_are_one_line(run_cli, tmp_path):
    neither = run_cli("site", "-o", tmp_path / "s.json")
    assert neither.returncode == 2 and "exactly one of --slurm and --fingerprint-dir" in neither.stderr
    not_catalog = tmp_path / "c.json"
    not_catalog.write_text("{\"images\": []}")
    site = tmp_path / "site.json"
    site.write_text("{}")
    report = run_cli("report", not_catalog, "--site", site, "-o", tmp_path / "out")
    assert report.returncode == 2 and f"{not_catalog}: not an hpcannotate catalog" in report.stderr
    assert report.stderr.count("\n") == 1


def test_markdown_from_an_image_stays_text():
    from hpcannotate.verdict.report import decode_doc, render_markdown

    html = render_markdown(HOSTILE_DOC)
    assert "<script" not in html and "<img" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;" in html and '<a href="https://example.org/docs">ok</a>' in html
    assert decode_doc("not base64!")[1] == "not valid base64"
    assert decode_doc("//79")[1] == "not UTF-8 text"


def test_discover_with_credentials(auth_registry, run_cli, tmp_path):
    import base64

    from hpcannotate.registry import RegistryClient

    host = auth_registry.host
    image = sitedata.generate(1)[0]
    with RegistryClient(username=auth_registry.user, password=auth_registry.password) as client:
        ref = f"{host}/{image.repository}:x"
        client.push_blob(ref, sitedata.empty_layer())
        client.push_blob(ref, sitedata.config_for(image.arch))
        client.put_manifest(f"{host}/{image.repository}:{image.tag}", sitedata.manifest_for(image),
                            sitedata.OCI_MANIFEST)
    token = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    denied = run_cli("discover", host, "-o", tmp_path / "c.json", env={"REGISTRY_AUTH_FILE": str(tmp_path / "none"),
                                                                       "DOCKER_CONFIG": str(tmp_path / "none")})
    assert denied.returncode == 2 and "cannot list repositories" in denied.stderr
    result = run_cli("discover", host, "-o", tmp_path / "c.json", "--authfile", authfile, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["references"] == 1


@pytest.mark.slow
def test_discover_site_report_then_resolve_on_the_node(site_registry, slurm, run_cli, tmp_path):
    """The whole path a new site takes: a catalog, a Slurm site, the page, and resolve run by srun on a node."""
    import sys

    registry, _, _ = site_registry
    catalog, site, out = tmp_path / "catalog.json", tmp_path / "site.json", tmp_path / "public"
    assert run_cli("discover", f"{registry.host}/hpc", "-o", catalog).returncode == 0
    made = run_cli("site", "--slurm", "-o", site, env=slurm.env, timeout=300)
    assert made.returncode == 0, made.stderr + slurm.logs()
    assert run_cli("report", catalog, "--site", site, "-o", out).returncode == 0
    use = next(a for a in json.loads((out / "report.json").read_text())["apps"] if a["name"] == "gromacs")["use"]
    chosen = use["cpu"]
    assert chosen["verdict"] in ("green", "orange")
    on_node = subprocess.run(["srun", "--partition=cpu", "--nodes=1", "--ntasks=1", "--", sys.executable, "-m",
                              "hpcannotate", "resolve", chosen["reference"], "--json"],
                             capture_output=True, text=True, timeout=300, env={**os.environ, **slurm.env})
    assert on_node.returncode == 0, on_node.stderr
    answer = json.loads(on_node.stdout)
    best = answer["candidates"][0]
    assert answer["use"] == chosen["pull"] or (best["verdict"], best["score"]) == (chosen["verdict"], chosen["score"])


def test_large_report_pages_are_bounded(tmp_path, monkeypatch):
    """An application's matrix is split into linked pages; partitions with one verdict share a row."""
    from hpcannotate.host import Fingerprint
    from hpcannotate.host.site import NodeType, Site
    from hpcannotate.verdict import report
    from hpcannotate.verdict.discover import Catalog

    host = "registry.example.org"
    images = []
    for image in sitedata.generate(12, apps=1):
        digest = sitedata.sha256(sitedata.manifest_for(image))
        images.append({"reference": f"{host}/{image.repository}:{image.tag}", "repository": image.repository,
                       "tag": image.tag, "digest": digest, "index": False, "error": None,
                       "entries": [{"digest": digest, "pull": f"{host}/{image.repository}@{digest}",
                                    "platform": {"architecture": image.arch, "os": "linux"}, "app": image.app,
                                    "version": image.version, "annotations": image.annotations(), "problems": [],
                                    "run": {}}]})
    zen2 = json.loads(save_fingerprint("zen2-epyc7742", tmp_path / "zen2.json").read_text())
    site = Site("t", generated="now")
    for name in ("a", "b"):  # two partitions of the same hardware: the same verdicts
        site.node_types.append(NodeType(name, name, fingerprint=Fingerprint.from_json(zen2, name)))
    monkeypatch.setattr(report, "ROWS_PER_PAGE", 5)
    out = tmp_path / "public"
    report.write_report(Catalog(host, images, "now"), site, out)

    pages = sorted((out / "app").glob("*.html"), key=lambda p: len(p.name))
    assert len(pages) == 3  # 12 images, 5 a page
    first = pages[0].read_text()
    second = pages[0].name.replace(".html", "-2.html")
    assert "Images 1 to 5 of 12" in first and f'<a href="{second}">2</a>' in first
    assert first.count('<td data-col="a" class="v ') == 5
    assert "Images 11 to 12 of 12" in (out / "app" / pages[0].name.replace(".html", "-3.html")).read_text()
    page = next((out / "image").glob("*.html")).read_text()
    assert '<span id="p-a">a</span>, <span id="p-b">b</span>' in page  # one row for both partitions
    partitions = page.split("<h2>Partitions</h2>")[1].split("<h2>Annotations</h2>")[0]
    assert partitions.count("<ul>") == 1 and "<li class=" in partitions  # said once, for both
    assert "On every partition:" in partitions


def test_site_leaves_the_job_it_runs_in():
    """Inside a batch job, srun would start a step on the job's own node whatever --partition says."""
    from hpcannotate.host.site import outside_job_env

    env = outside_job_env({"SLURM_JOB_ID": "7", "SLURM_JOBID": "7", "SLURM_NODELIST": "n1", "SLURM_CONF": "/c",
                           "PATH": "/bin"})
    assert env == {"SLURM_CONF": "/c", "PATH": "/bin"}


@pytest.mark.slow
def test_nightly_example_runs_as_written(site_registry, slurm, tmp_path):
    """README's nightly job (examples/site-nightly.sh): submitted with sbatch to a real Slurm, then as cron runs it."""
    import sys

    registry, _images, _chosen = site_registry
    script = Path(__file__).parents[1] / "examples" / "site-nightly.sh"
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert script.read_text() in readme  # the README shows the file as it is
    env = {**os.environ, **slurm.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "SBATCH_PARTITION": "cpu", "SBATCH_TIMELIMIT": "10", "HPCANNOTATE_REGISTRY": f"{registry.host}/hpc"}
    for key in [k for k in env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
        del env[key]
    job = subprocess.run(["sbatch", "--parsable", "--wait", str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    job_id = job.stdout.strip().split(";")[0]
    log = tmp_path / f"hpcannotate-site-{job_id}.out"
    assert job.returncode == 0, job.stderr + (log.read_text() if log.exists() else "") + slurm.logs()
    try:
        pending = subprocess.run(["squeue", "--noheader", "--format=%i|%j|%r"], env=env, capture_output=True,
                                 text=True, timeout=60).stdout.split()
        next_night = [line for line in pending if "|hpcannotate-site|BeginTime" in line]
        assert len(next_night) == 1, pending  # the job queued the next night's run
    finally:
        for line in pending:
            if "|hpcannotate-site|" in line:
                subprocess.run(["scancel", line.split("|")[0]], env=env, timeout=60)
    site = json.loads((tmp_path / "site.json").read_text())
    assert [(p["name"], bool(p.get("fingerprint"))) for p in site["partitions"]] == [("cpu", True), ("gpu", True)]
    index = (tmp_path / "www" / "index.html").read_text()
    assert "Which image to use on which partition" in index and "gromacs" in index

    cron = subprocess.run(["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cron.returncode == 0, cron.stderr
    assert "unchanged" in cron.stderr + cron.stdout  # the second crawl is incremental
    assert (tmp_path / "www" / "index.html").exists() and (tmp_path / "www.old" / "index.html").exists()
