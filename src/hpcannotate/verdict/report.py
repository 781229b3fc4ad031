"""A static web site: which image to use on which partition, per application.

Why static: a nightly job writes plain files that a shared file system (``file://``) or any web
server serves; nothing runs at view time. Pages:

- ``index.html``: per application, the best image for each partition (the verdict, the exact
  ``srun --container-image``, ``podman pull`` lines and the EDF), with filters by application
  and partition (a few lines of the site's own JavaScript; the page works without it);
- ``app/APP.html``: the matrix images x partitions, green/orange/red/unknown, the reasons in
  each cell's tooltip and, one click away, on the image's page;
- ``image/SLUG.html``: one platform entry: its verdict per partition with the reasons, its
  annotations grouped as ``inspect`` groups them, and its docs (quickstart, benchmark, build
  quickstart) decoded and rendered as markdown.

Everything an image says is hostile: values are escaped by Jinja's autoescape, markdown is
rendered by markdown-it-py with raw HTML off (a ``<script>`` in a doc becomes text) and its
link check (no ``javascript:``/``vbscript:``/``data:`` links); no value from an image is ever
placed inside a script. The page sets a Content-Security-Policy that allows only the site's
own inline script and style, so even a missed escape could not load or run anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.model.keynames import (
    DOCS_BENCHMARK_BASE64,
    DOCS_BENCHMARK_LINK,
    DOCS_BUILD_QUICKSTART_BASE64,
    DOCS_BUILD_QUICKSTART_LINK,
    DOCS_QUICKSTART_BASE64,
    DOCS_QUICKSTART_LINK,
    HARDWARE_CPU_OPTIMIZED_VERSION,
)
from hpcannotate.verdict.choose import Verdict, VerdictCache, order_key, validation_problems
from hpcannotate.verdict.discover import Catalog, entries, write_atomic

if TYPE_CHECKING:
    from hpcannotate.host.site import NodeType, Site

DOC_KEYS = (("quickstart", DOCS_QUICKSTART_BASE64),
            ("benchmark", DOCS_BENCHMARK_BASE64),
            ("build quickstart", DOCS_BUILD_QUICKSTART_BASE64))
LINK_KEYS = (("quickstart", DOCS_QUICKSTART_LINK),
             ("benchmark", DOCS_BENCHMARK_LINK),
             ("build quickstart", DOCS_BUILD_QUICKSTART_LINK))
DOC_LIMIT = 256 * 1024
ROWS_PER_PAGE = 100  # an application's matrix is split into pages of this many images
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Cell:
    """One verdict of one entry on one node type; the HTML pieces are built once per distinct verdict.

    Why pre-built: at 10,000 images x 20 partitions, escaping the same reasons again in every cell
    of every page was most of the report's time.
    """

    node_type: str
    verdict: Verdict
    title: str = ""  # the reasons, one a line, already HTML-escaped (Markup): shared by equal verdicts
    head: str = ""  # the matrix cell's opening <td ...> (Markup), shared like the title
    tail: str = ""  # the matrix cell after its link's page: '#p-NODE">verdict score</a></td>' (Markup)


@dataclass
class Row:
    """One platform entry of one tag, judged on every node type."""

    image: dict
    entry: dict
    slug: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def label(self) -> str:
        platform = self.entry.get("platform") or {}
        arch = "/".join(platform.get(k) for k in ("os", "architecture", "variant") if platform.get(k))
        target = self.entry.get("annotations", {}).get(HARDWARE_CPU_OPTIMIZED_VERSION)
        return f"{self.image.get('repository')}:{self.image.get('tag')}" + (
            f" [{target}]" if target and self.image.get("index") else "") + (f" ({arch})" if arch else "")


@dataclass
class Choice:
    """What to use for one application on one node type (None when nothing runs there)."""

    node_type: str
    row: Row | None
    verdict: Verdict | None
    srun: str | None = None
    podman: str | None = None
    resolve: str | None = None  # the job-script form: resolves on the node, at run time
    edf: str | None = None  # path of the EDF file, relative to the site root


def slug(image: dict, entry: dict) -> str:
    base = _SAFE.sub("_", f"{image.get('repository')}_{image.get('tag')}").strip("_")[:80]
    return f"{base}_{(entry.get('digest') or '')[7:19]}"


def app_name(entry: dict, image: dict) -> str:
    return entry.get("app") or str(image.get("repository") or "?").rsplit("/", 1)[-1]


def pyxis_image(pull: str) -> str:
    """Pyxis/Enroot's ``REGISTRY#REPO@DIGEST`` form of ``REGISTRY/REPO@DIGEST``."""
    from hpcannotate.registry.reference import DOCKER_HUB, parse_reference

    ref = parse_reference(pull)
    where = "" if ref.registry == DOCKER_HUB else f"{ref.registry}#"
    return f"{where}{ref.repository}" + (f"@{ref.digest}" if ref.digest else f":{ref.tag or 'latest'}")


def decode_doc(value: str) -> tuple[str | None, str | None]:
    """(markdown text, None) or (None, why it could not be decoded)."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None, "not valid base64"
    if len(raw) > DOC_LIMIT:
        return None, f"{len(raw)} bytes, more than the {DOC_LIMIT} shown"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"


def render_markdown(text: str) -> str:
    """Markdown to HTML with raw HTML escaped and unsafe link schemes refused (markdown-it-py)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    return md.render(text)


def build_rows(catalog: Catalog, node_types: Sequence[NodeType]) -> list[Row]:
    """Judge every entry on every node type; entries the matcher cannot tell apart are judged once,
    and the HTML of a verdict is built once per (verdict, node type)."""
    verdicts = VerdictCache()
    pieces: dict[tuple[int, str], tuple[str, str, str]] = {}
    rows = []
    for image, entry in entries(catalog):
        row = Row(image, entry, slug(image, entry))
        values = entry.get("annotations") or {}
        problems = validation_problems(values)
        for node in node_types:
            found = verdicts.judge(values, entry.get("platform"), node.name, node.fingerprint, problems)
            key = (id(found), node.name)
            built = pieces.get(key)
            if built is None:
                built = pieces[key] = _pieces(found, node.name)
            row.cells.append(Cell(node.name, found, *built))
        rows.append(row)
    return rows


def _pieces(verdict: Verdict, node: str) -> tuple[str, str, str]:
    """(tooltip, matrix <td> opening, matrix cell tail) of one verdict on one node type, escaped."""
    from markupsafe import Markup, escape

    title = escape("\n".join(r["message"] for r in verdict.reasons))
    head = Markup('<td data-col="{}" class="v {}" title="{}">').format(node, verdict.verdict, title)
    tail = Markup('#p-{}">{} {}</a></td>').format(node, verdict.verdict, verdict.score)
    return title, head, tail


def matrix_row(row: Row, root: str) -> str:
    """One image's row of an application's matrix (Markup): built here, not in the template, from
    pieces escaped once per verdict, because a large site has millions of cells."""
    from markupsafe import Markup, escape

    page = escape(f"{root}image/{row.slug}.html")
    cells = "".join([f'{c.head}<a href="{page}{c.tail}' for c in row.cells])
    text = (f'<tr><th><a href="{page}">{escape(row.label)}</a></th>'
            f"<td><code>{escape((row.entry.get('digest') or '')[:19])}</code></td>{cells}</tr>")
    return Markup(text)  # noqa: S704 - every value in it went through escape() here or in _pieces


def _reason_key(reason: dict) -> tuple[str, str, str]:
    return str(reason.get("level") or ""), str(reason["message"]), str(reason.get("detail") or "")


def reasons_html(keys: Sequence[tuple[str, str, str]], cache: dict) -> str:
    """A list of reasons as HTML (Markup), escaped once per distinct list for the whole site."""
    from markupsafe import Markup

    key = tuple(keys)
    html = cache.get(key)
    if html is None:
        items = Markup("").join(
            Markup('<li class="{}">{}{}</li>').format(level, message, Markup(" ({})").format(detail) if detail else "")
            for level, message, detail in key)
        html = cache[key] = Markup("<ul>{}</ul>").format(items) if key else Markup("")
    return html


def partition_groups(row: Row, cache: dict) -> tuple[str, list[tuple[list[str], Cell, str]]]:
    """The image page's partitions: the reasons every partition shares, listed once (HTML), and rows of
    partitions with the very same verdict and remaining reasons (names, a cell, reasons HTML).

    Why: an image's page says the same thing (its MPI, its GPU build) on each of 20 partitions; said
    once, the page is a third shorter and the differences between partitions stand out.
    """
    keys = [[_reason_key(r) for r in c.verdict.reasons] for c in row.cells]
    common = set.intersection(*(set(k) for k in keys)) if len(keys) > 1 else set()
    groups: dict[tuple[str, object, str], tuple[list[str], Cell, str]] = {}
    for cell, cell_keys in zip(row.cells, keys, strict=True):
        html = reasons_html([k for k in cell_keys if k not in common], cache)
        key = (cell.verdict.verdict, cell.verdict.score, str(html))
        if key in groups:
            groups[key][0].append(cell.node_type)
        else:
            groups[key] = ([cell.node_type], cell, html)
    shared = reasons_html([k for k in (keys[0] if keys else []) if k in common], cache)
    return shared, list(groups.values())


def choose(rows: Sequence[Row], column: int) -> tuple[Row | None, Verdict | None]:
    """The best row for one node type (stable: the catalog's order breaks ties)."""
    if not rows:
        return None, None
    best = min(rows, key=lambda r: order_key(r.cells[column].verdict))
    return best, best.cells[column].verdict


def edf_text(row: Row) -> str:
    """An EDF for this entry, written by ``edf``'s own functions from the catalog's facts."""
    import tomli_w

    from hpcannotate.registry.reference import parse_reference
    from hpcannotate.verdict.edf import hook_annotations, image_name

    values = row.entry.get("annotations") or {}
    data: dict = {"image": image_name(parse_reference(row.image["reference"]))}
    facts = row.entry.get("run") or {}
    if facts.get("workdir"):
        data["workdir"] = facts["workdir"]
    if "entrypoint" in facts:
        data["entrypoint"] = bool(facts["entrypoint"])
    data["mounts"] = []
    data["env"] = {}
    hooks, _ = hook_annotations(values)
    data["annotations"] = hooks
    header = f"# CSCS Environment Definition File written by hpcannotate report from {row.entry.get('pull')}\n"
    if row.image.get("index"):
        header += ("# Enroot pulls by tag and takes the index entry of its architecture: "
                   f"check that {row.image.get('tag')} gives this image\n")
    return header + tomli_w.dumps(data)


def _env():
    import jinja2

    from hpcannotate.resources import templates_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "report")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    css = (templates_dir() / "report" / "site.css").read_text(encoding="utf-8")
    js = (templates_dir() / "report" / "filters.js").read_text(encoding="utf-8")
    env.globals.update(css=css, js=js, csp={"style": _csp_hash(css), "script": _csp_hash(js)})
    return env


def _csp_hash(text: str) -> str:
    """The CSP source for one inline block: only that exact text may run or style the page."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@dataclass
class ReportStats:
    apps: int = 0
    images: int = 0
    node_types: int = 0
    files: int = 0
    bytes: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)


def write_report(catalog: Catalog, site: Site, out: Path) -> ReportStats:
    """Write the site into ``out`` (created); returns what was written."""
    from hpcannotate.image.inspect import grouped

    node_types = site.usable()
    names = [n.name for n in node_types]
    rows = build_rows(catalog, node_types)
    by_app: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_app[app_name(row.entry, row.image)].append(row)
    env = _env()
    stats = ReportStats(len(by_app), len(rows), len(names))
    generated = {"catalog": catalog.source, "catalog_time": catalog.generated, "site": site.name,
                 "site_time": site.generated}
    skipped = [n for n in site.node_types if n.fingerprint is None]

    def put(rel: str, text: str) -> None:
        write_atomic(out / rel, text)
        stats.files += 1
        stats.bytes += len(text.encode())

    apps = []
    app_template, image_template = env.get_template("app.html.j2"), env.get_template("image.html.j2")
    reason_html: dict = {}
    for app in sorted(by_app, key=str.lower):
        app_rows = by_app[app]
        app_file = f"app/{_SAFE.sub('_', app)}-{hashlib.sha256(app.encode()).hexdigest()[:6]}.html"
        choices = []
        for column, name in enumerate(names):
            best, verdict = choose(app_rows, column)
            choice = Choice(name, best, verdict)
            if best is not None and verdict is not None and verdict.runs:
                pull = best.entry["pull"]
                choice.srun = f"srun --container-image={pyxis_image(pull)} ..."
                choice.podman = f"podman pull {pull}"
                choice.resolve = (f"srun --container-image=$(hpcannotate resolve --format pyxis "
                                  f"{best.image['reference']}) ...")
                choice.edf = f"edf/{best.slug}.toml"
            choices.append(choice)
        apps.append({"name": app, "file": app_file, "choices": choices, "count": len(app_rows)})
        pages = [app_rows[i:i + ROWS_PER_PAGE] for i in range(0, len(app_rows), ROWS_PER_PAGE)] or [[]]
        files = [app_file] + [app_file.replace(".html", f"-{n}.html") for n in range(2, len(pages) + 1)]
        links = [(n + 1, f.rsplit("/", 1)[-1]) for n, f in enumerate(files)]
        for number, (page_rows, rel) in enumerate(zip(pages, files, strict=True), start=1):
            first = (number - 1) * ROWS_PER_PAGE
            put(rel, app_template.render(
                app=app, rows=[matrix_row(r, "../") for r in page_rows], names=names, root="../",
                generated=generated, page=number, pages=links, first=first + 1, last=first + len(page_rows),
                total=len(app_rows)))
    edfs = {c.edf: c.row for a in apps for c in a["choices"] if c.edf and c.row is not None}
    for rel, row in edfs.items():
        put(rel, edf_text(row))
    for row in rows:
        values = row.entry.get("annotations") or {}
        docs, doc_errors = [], []
        for title, key in DOC_KEYS:
            if values.get(key):
                text, why = decode_doc(values[key])
                if text is None:
                    doc_errors.append(f"{title}: {why}")
                else:
                    docs.append((title, render_markdown(text)))
        links = [(title, values[key]) for title, key in LINK_KEYS if values.get(key)]
        shown = {k: (v if len(v) <= 200 else v[:199] + "…") for k, v in values.items()}
        shared, partitions = partition_groups(row, reason_html)
        put(f"image/{row.slug}.html", image_template.render(
            row=row, shared=shared, partitions=partitions, groups=grouped(shown), docs=docs, doc_errors=doc_errors,
            links=links, root="../",
            generated=generated, app=app_name(row.entry, row.image), pyxis=pyxis_image(row.entry["pull"]),
            problems=row.entry.get("problems") or []))
    put("index.html", env.get_template("index.html.j2").render(
        apps=apps, names=names, root="", generated=generated, skipped=skipped, stats=stats))
    put("report.json", json.dumps({
        "generated": generated,
        "partitions": names,
        "apps": [{"name": a["name"], "use": {c.node_type: {
            "pull": c.row.entry["pull"] if c.row is not None and c.verdict is not None and c.verdict.runs else None,
            "reference": c.row.image["reference"] if c.row is not None else None,
            "verdict": c.verdict.verdict if c.verdict else None,
            "score": c.verdict.score if c.verdict else None} for c in a["choices"]}} for a in apps],
    }, indent=1))
    return stats
