"""The files a recipe directory names, and the environment it declares: the part of a recipe
directory that the recipe formats (``formats/``) need, below the loader (``recipedir``) that
asks those formats how to check and locate a recipe.

Every path a recipe directory names goes through ``confined``: a recipe directory may come from
anyone, and what it names is read into the build context, the Dockerfile and the annotations.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.errors import InputError


@dataclass(frozen=True)
class EnvSpec:
    """The application's environment: written to /etc/profile.d and, identically, as ENV."""

    path: tuple[str, ...] = ()
    ld_library_path: tuple[str, ...] = ()
    vars: dict[str, str] = field(default_factory=dict)

    def merged(self, other: EnvSpec) -> EnvSpec:
        def joined(mine: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[str, ...]:
            return theirs + tuple(p for p in mine if p not in theirs)

        return EnvSpec(joined(self.path, other.path), joined(self.ld_library_path, other.ld_library_path),
                       {**self.vars, **other.vars})


EASYCONFIGS_EXTRA = "pip install 'hpcannotate[easyconfigs]'"


def confined(directory: Path, name: str, where: str, *, directories: bool = False) -> Path:
    """The file ``name`` (as written in ``where``) inside the recipe directory ``directory``.

    A recipe directory may come from anyone, and what it names is read into the build context,
    the Dockerfile and the image's annotations: so it must name a regular file inside the
    directory (a directory too, when ``directories``). An absolute path, a ``..`` that climbs
    out, a symlink that resolves outside, a symlink loop and a special file (a FIFO would hang
    the read, a device never ends) are each an InputError naming ``where``.
    """
    if os.path.isabs(name) or name.startswith("~"):
        raise InputError(f"{where}: {name} is an absolute path; name a file inside the recipe directory "
                         f"{directory}")
    path = directory / name
    if not _within(os.path.normpath(os.path.abspath(path)), os.path.abspath(directory)):
        raise InputError(f"{where}: {name} climbs out of the recipe directory {directory}; name a file inside it")
    if not _within(os.path.realpath(path), os.path.realpath(directory)):
        raise InputError(f"{where}: {name} is a symlink to {os.path.realpath(path)}, outside the recipe directory "
                         f"{directory}; copy the file in instead")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{where}: {name} is a symlink loop") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(f"{where}: {name} does not exist") from None
        raise InputError(f"{where}: {name}: cannot read: {exc.strerror}") from None
    if stat.S_ISREG(mode) or (directories and stat.S_ISDIR(mode)):
        return path
    kind = "a directory" if stat.S_ISDIR(mode) else "a special file (FIFO, socket or device)"
    raise InputError(f"{where}: {name} is {kind}, not a regular file")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def spack_includes(recipe: Path) -> list[Path]:
    """The existing files and directories a Spack environment's ``include:`` names, inside its directory.

    They go into the build context (and the Spack adapter reads them): one that is absolute or
    leaves the environment's directory is an InputError, as for any file a recipe directory names.
    """
    import yaml

    from hpcannotate.files import read_text

    try:
        data = yaml.safe_load(read_text(recipe, "Spack environment"))
    except yaml.YAMLError as exc:
        raise InputError(f"{recipe}: cannot read the Spack environment: {exc}") from None
    except RecursionError:
        raise InputError(f"{recipe}: YAML nested too deeply to be a Spack environment") from None
    entries = data.get("spack", {}).get("include") if isinstance(data, dict) and isinstance(
        data.get("spack"), dict) else None
    if isinstance(entries, str):
        entries = [entries]
    found = []
    for entry in entries if isinstance(entries, list) else []:
        raw = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(raw, str) or not raw.strip() or "$" in raw or "://" in raw:
            continue  # a Spack variable or a URL: resolved by Spack in the build, nothing of this machine's
        if not os.path.lexists(recipe.parent / raw) and not os.path.isabs(raw) and ".." not in Path(raw).parts:
            continue  # missing: the Spack adapter warns about it
        include = confined(recipe.parent, raw, f"{recipe}: include: {raw}", directories=True)
        if os.path.realpath(include) != os.path.realpath(recipe.parent):
            found.append(recipe.parent / os.path.relpath(os.path.normpath(include), recipe.parent))
    return found


def spack_lock(recipe: Path) -> Path:
    """The Spack environment's own lock file (``<stem>.lock``), inside its directory (InputError if not)."""
    return confined(recipe.parent, recipe.with_suffix(".lock").name, f"{recipe}: its lock file")


def check_spack_names(recipe: Path) -> Path:
    """``recipe``, after checking that its includes and lock file stay in its directory: before the
    Spack adapter reads them for ``infer`` or ``render``."""
    spack_includes(recipe)
    if os.path.lexists(recipe.with_suffix(".lock")):
        spack_lock(recipe)
    return recipe
