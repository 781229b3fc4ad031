"""``render --script build.sh``: a standalone POSIX sh script that builds the rendered targets with buildah.

For a build node without Python (or without hpcannotate): the script runs ``buildah bud --format
oci`` for every target with the same annotations and labels ``hpcannotate build`` passes, then
makes the index with ``buildah manifest`` (each entry's annotations with ``manifest add``; the
index's own with ``manifest annotate --index`` where buildah has it, 1.33 and later; older
buildah says so on stderr). Every value is one single-quoted sh word (``shlex.quote``): quotes,
``$``, backslashes, backquotes and line breaks reach buildah byte for byte. The build contexts
are found next to the script, so the directory can be copied to the build node as it is.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from hpcannotate.build.builders.buildah import metadata_args
from hpcannotate.dockerfile.render import RenderedContext
from hpcannotate.errors import InputError
from hpcannotate.model.targets import family_of
from hpcannotate.oci.index import _platform, arrange, descriptor_annotations
from hpcannotate.registry.platform import platform_for

CONTINUATION = " \\\n    "


def sh_word(value: str) -> str:
    """``value`` as one sh word, read back exactly by any POSIX shell."""
    if "\x00" in value:
        raise InputError(f"{value[:40]!r}...: a NUL byte cannot be passed to a program")
    return shlex.quote(value)


def slice_flag(key: str, value: str) -> str:
    """``key=value`` for a pflag string-slice flag (``buildah manifest add/annotate --annotation``),
    which reads each argument as a CSV record: quoted when it holds a comma, quote or line break."""
    pair = f"{key}={value}"
    if "\r\n" in pair:
        raise InputError(f"{key}: a CR LF in the value would reach buildah manifest as LF; refusing to change it")
    if any(c in pair for c in ',"\r\n'):
        return '"' + pair.replace('"', '""') + '"'
    return pair


def sh_lines(words: list[str]) -> list[str]:
    """The words quoted, a flag and its value (``--annotation 'k=v'``) on one line."""
    lines: list[str] = []
    pending: str | None = None
    for word in words:
        if pending is not None:
            lines.append(f"{pending} {sh_word(word)}")
            pending = None
        elif word.startswith("--") and "=" not in word and word not in ("--all", "--index"):
            pending = sh_word(word)
        else:
            lines.append(sh_word(word))
    if pending is not None:
        lines.append(pending)
    return lines


def sh_command(words: list[str], *, raw_prefix: str = "") -> str:
    """One command, continued over lines; ``raw_prefix`` (``$buildah``) is left for the shell to expand."""
    lines = sh_lines(words)
    if raw_prefix:
        lines[0] = f"{raw_prefix} {lines[0]}"
    return CONTINUATION.join(lines)


def _relative(path: Path, script: Path) -> str:
    return os.path.relpath(path.resolve(), script.resolve().parent)


def script_text(script: Path, app: str, variant: str, tag: str, contexts: list[RenderedContext],
                index_values: dict[str, str]) -> str:
    """The whole script (see the module docstring)."""
    list_name = "localhost/hpcannotate-" + (re.sub(r"[^a-z0-9]+", "-", app.lower()).strip("-") or "app")
    lines = [
        "#!/bin/sh",
        f"# Written by `hpcannotate render --script`: builds {app} ({variant}) for "
        f"{', '.join(c.target for c in contexts)} with buildah, no Python needed.",
        "#",
        "#   sh build.sh [oci:PATH | docker://REGISTRY/REPOSITORY]     (default: oci:$PWD/build/APP/oci)",
        "#",
        f"# Images go to DEST:{tag}-<target>, the annotated index to DEST:{tag}.",
        '# BUILDAH is the command to run (e.g. BUILDAH="buildah --root /scratch/store"); TLS_VERIFY=false',
        "# talks plain HTTP to the registry; REGISTRY_AUTH_FILE names the credentials, as for buildah.",
        "set -eu",
        'here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)',
        f"dest=${{1:-oci:$PWD/build/{sh_word(app)}/oci}}",
        'case $dest in oci:?*|docker://?*) ;; *) echo "usage: $0 [oci:PATH | docker://REGISTRY/REPOSITORY]" >&2; '
        "exit 2 ;; esac",
        'buildah=${BUILDAH:-buildah}',
        'tls="--tls-verify=${TLS_VERIFY:-true}"',
        f"tag={sh_word(tag)}",
        f'list={sh_word(list_name)}-$$',
        "",
    ]
    for context in contexts:
        platform = platform_for(family_of(context.target))
        context_dir = _relative(context.directory, script)
        target_tag = f"{tag}-{context.target}"
        lines.append(f"echo {sh_word(f'build.sh: building {context.target} ({platform})')} >&2")
        bud = sh_command(["bud", "--format", "oci", "--isolation", "chroot", "--platform", platform],
                         raw_prefix="$buildah")
        bud += CONTINUATION + '"$tls"'
        bud += CONTINUATION + f'-f "$here"/{sh_word(context_dir + "/Dockerfile")}'
        bud += CONTINUATION + CONTINUATION.join(sh_lines(metadata_args(context)))
        bud += CONTINUATION + f'-t "$dest:"{sh_word(target_tag)}'
        bud += CONTINUATION + f'"$here"/{sh_word(context_dir)}'
        lines += [bud, ""]
    lines += [
        'trap \'$buildah manifest rm "$list" >/dev/null 2>&1 || true\' EXIT',
        '$buildah manifest create "$list" >/dev/null',
    ]
    for context, platform in _pulled_entries(contexts):
        add = ["manifest", "add"]
        if platform.get("variant"):  # the x86-64 level, as `hpcannotate build` writes it (oci.index)
            add += ["--variant", platform["variant"]]
        for key, value in descriptor_annotations(context.oci_annotations()).items():
            add += ["--annotation", slice_flag(key, value)]
        lines.append(sh_command(add, raw_prefix="$buildah") + CONTINUATION + '"$tls" "$list" "$dest:"'
                     + sh_word(f"{tag}-{context.target}") + " >/dev/null")
    for context in _left_out(contexts):
        note = (f"build.sh: {context.target} shares a platform with a more generic target: it is not in the "
                f"index clients pull, only under its own tag {tag}-{context.target}")
        lines.append(f"echo {sh_word(note)} >&2")
    annotate = ["manifest", "annotate", "--index"]
    for key, value in index_values.items():
        annotate += ["--annotation", slice_flag(key, value)]
    lines += [
        "if $buildah manifest annotate --help 2>/dev/null | grep -q -- '--index'; then",
        "  " + sh_command(annotate, raw_prefix="$buildah") + ' "$list" >/dev/null',
        "else",
        "  echo 'build.sh: this buildah cannot annotate an index itself (1.33 and later can): the index has no "
        "annotations of its own; its entries and images carry them all' >&2",
        "fi",
        '$buildah manifest push --all --format oci "$tls" "$list" "$dest:$tag"',
        'echo "build.sh: $dest:$tag" >&2',
        "",
    ]
    return "\n".join(lines)


def write_script(script: Path, app: str, variant: str, tag: str, contexts: list[RenderedContext],
                 index_values: dict[str, str]) -> Path:
    if script.is_dir():
        raise InputError(f"--script {script}: is a directory; name the script file to write")
    try:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(script_text(script, app, variant, tag, contexts, index_values), encoding="utf-8")
        script.chmod(0o755)
    except OSError as exc:
        raise InputError(f"--script {script}: cannot write: {exc.strerror or exc}") from None
    return script


def _descriptors(contexts: list[RenderedContext]) -> list[dict]:
    return [{"platform": _platform(platform_for(family_of(c.target)), c.target),
             "annotations": descriptor_annotations(c.oci_annotations()), "context": n}
            for n, c in enumerate(contexts)]


def _pulled_entries(contexts: list[RenderedContext]) -> list[tuple[RenderedContext, dict]]:
    """The entries of the index clients pull, in ``hpcannotate build``'s order (``oci.index.arrange``):
    most generic first, one per os/architecture/variant."""
    _, pulled = arrange(_descriptors(contexts))
    return [(contexts[d["context"]], d["platform"]) for d in pulled]


def _left_out(contexts: list[RenderedContext]) -> list[RenderedContext]:
    _, pulled = arrange(_descriptors(contexts))
    kept = {d["context"] for d in pulled}
    return [c for n, c in enumerate(contexts) if n not in kept]
