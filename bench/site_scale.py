"""How large and slow the site report gets: 10,000 images x 20 partitions, generated.

The catalog is generated as `discover` writes it (tests/fixtures/sitedata.py images: 10 applications
over x86-64 levels, named CPUs, a CUDA build and Arm targets), without a registry: this measures
`report`, not the crawl (bench/discover.py measures that). The partitions are the captured nodes of
tests/data/sysroots with their CPU target set to 20 archspec targets. Printed: catalog size, load
time, verdicts per second, the site's file count and size, and the time of each step; the baseline
is `match`'s own `assess` called on the same pairs in a plain loop (what any report must pay).

    python bench/site_scale.py [--images 10000] [--partitions 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from tests.fixtures import sitedata  # noqa: E402

from hpcannotate.host import Fingerprint, fingerprint  # noqa: E402
from hpcannotate.host.site import NodeType, Site  # noqa: E402
from hpcannotate.verdict.discover import Catalog  # noqa: E402
from hpcannotate.verdict.report import write_report  # noqa: E402

TARGETS = ("x86_64_v2", "x86_64_v3", "x86_64_v4", "haswell", "broadwell", "skylake", "skylake_avx512",
           "cascadelake", "icelake", "sapphirerapids", "zen", "zen2", "zen3", "zen4", "neoverse_n1",
           "neoverse_v1", "neoverse_v2", "a64fx", "thunderx2", "zen5")
SYSROOTS = REPO / "tests" / "data" / "sysroots"


def catalog_of(count: int) -> Catalog:
    host = "registry.example.org"
    images = []
    for image in sitedata.generate(count):
        digest = sitedata.sha256(sitedata.manifest_for(image))
        values = image.annotations()
        images.append({"reference": f"{host}/{image.repository}:{image.tag}", "repository": image.repository,
                       "tag": image.tag, "digest": digest, "mediaType": sitedata.OCI_MANIFEST, "index": False,
                       "entries": [{"digest": digest, "pull": f"{host}/{image.repository}@{digest}",
                                    "platform": {"architecture": image.arch, "os": "linux"}, "app": image.app,
                                    "version": image.version, "annotations": values, "problems": [],
                                    "run": {"entrypoint": False}}], "error": None})
    return Catalog(host, images, "generated")


def site_of(count: int) -> Site:
    bases = {"x86_64": fingerprint(SYSROOTS / "zen2-epyc7742").to_json(),
             "aarch64": fingerprint(SYSROOTS / "graviton2-neoverse_n1").to_json()}
    import archspec.cpu

    site = Site("generated", generated="generated")
    for target in TARGETS[:count]:
        family = archspec.cpu.TARGETS[target].family.name
        data = json.loads(json.dumps(bases[family]))
        data["cpu"]["target"] = target
        data.pop("annotations", None)
        site.node_types.append(NodeType(target, target, fingerprint=Fingerprint.from_json(data, target)))
    return site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        catalog = catalog_of(args.images)
        site = site_of(args.partitions)
        path = tmpdir / "catalog.json"
        catalog.save(path)
        start = time.perf_counter()
        catalog = Catalog.load(path)
        load = time.perf_counter() - start

        from hpcannotate.verdict.match import assess

        sample = catalog.images[: max(1, args.images // 20)]
        start = time.perf_counter()
        for image in sample:
            entry = image["entries"][0]
            for node in site.node_types:
                assess(entry["annotations"], node.fingerprint, entry["platform"], ())
        per_pair = (time.perf_counter() - start) / (len(sample) * len(site.node_types))

        start, cpu0 = time.perf_counter(), time.process_time()
        stats = write_report(catalog, site, tmpdir / "public")
        took, cpu = time.perf_counter() - start, time.process_time() - cpu0
        files = list((tmpdir / "public").rglob("*"))
        size = sum(f.stat().st_size for f in files if f.is_file())
        biggest = max((f for f in files if f.is_file()), key=lambda f: f.stat().st_size)
        biggest_size = biggest.stat().st_size
    pairs = args.images * args.partitions
    print(f"{args.images} images x {args.partitions} partitions = {pairs} verdicts")
    print(f"catalog: {len(json.dumps(catalog.to_json())) / 1e6:.1f} MB, "
          f"loaded in {load:.2f} s")
    print(f"report: {took:.1f} s ({pairs / took:.0f} verdicts/s incl. writing), {stats.files} files, "
          f"{size / 1e6:.1f} MB (largest {biggest.name}: {biggest_size / 1e6:.1f} MB); {cpu:.1f} CPU-s, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"baseline, match.assess alone in a loop: {per_pair * 1e6:.0f} us/verdict -> {per_pair * pairs:.1f} s "
          f"for {pairs}; report/baseline = {took / (per_pair * pairs):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
