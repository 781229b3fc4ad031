"""The merged view of an image's file system, as far as the probe needs it.

Layers are applied bottom to top (``layers.apply_layer``); this module keeps
what they leave: every directory and symbolic link, the files the extraction
table asks for (with their bytes in the scratch directory when needed), and for
every other file only a count per directory, so that a directory on PATH can be
told empty without holding a million names in memory.

Paths are relative to the image root, without a leading ``/`` (``usr/bin/sh``).
Symbolic links are data here, never followed on the host: ``resolve`` walks
them inside this tree, with ``..`` stopping at the image root, as a chroot
would. Whiteouts follow the OCI image spec: they hide what lower layers hold,
never what their own layer adds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DIR = "dir"
FILE = "file"
SYMLINK = "symlink"
MAX_HOPS = 40  # symbolic links followed in one lookup, as Linux's ELOOP limit


@dataclass(slots=True)
class Node:
    kind: str
    layer: int
    size: int = 0
    link: str | None = None  # target of a symbolic link, as stored in the layer
    blob: Path | None = None  # the extracted bytes, when the table asked for them
    implicit: bool = False  # a directory only implied by a path below it


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


class ImageTree:
    """Recorded nodes by path, children by directory, and counts of files not recorded."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {"": Node(DIR, -1)}
        self.children: dict[str, set[str]] = {}
        # directory -> layer -> number of regular files that are not recorded individually
        self.unrecorded: dict[str, dict[int, int]] = {}

    # -- lookups ---------------------------------------------------------------------------------

    def _walk(self, path: str, follow_last: bool, strict: bool) -> str | None:
        """The literal path ``path`` names after following links; None if missing (strict) or looping.

        Not strict: the part from the first missing component on is appended as written, which is
        where a tar extractor would create it (``MkdirAll`` through an existing link).
        """
        parts = deque(split(path))
        current: list[str] = []
        hops = 0
        while parts:
            name = parts.popleft()
            if name == "..":
                if current:
                    current.pop()
                continue
            candidate = join("/".join(current), name)
            node = self.nodes.get(candidate)
            if node is None:
                if strict:
                    return None
                return "/".join([*current, name, *(p for p in parts if p != "..")])
            if node.kind == SYMLINK and (parts or follow_last):
                hops += 1
                if hops > MAX_HOPS:
                    return None
                target = node.link or ""
                if target.startswith("/"):
                    current = []
                parts.extendleft(reversed(split(target)))
                continue
            if parts and node.kind != DIR:
                return None if strict else "/".join([*current, name, *parts])
            current.append(name)
        return "/".join(current)

    def resolve(self, path: str, follow_last: bool = True) -> str | None:
        """The literal path a path names inside the image, following links; None when it does not exist."""
        return self._walk(path, follow_last, strict=True)

    def lookup(self, path: str, follow_last: bool = True) -> Node | None:
        real = self.resolve(path, follow_last)
        return None if real is None else self.nodes.get(real)

    def chain(self, path: str) -> list[str]:
        """``path`` and every link hop after it (``/bin/sh -> /usr/bin/dash``), for provenance."""
        hops = ["/" + "/".join(split(path))]
        current = path
        for _ in range(MAX_HOPS):
            literal = self.resolve(current, follow_last=False)
            node = self.nodes.get(literal) if literal is not None else None
            if node is None or node.kind != SYMLINK:
                break
            target = node.link or ""
            current = target if target.startswith("/") else join(parent_of(literal), target)
            hops.append("/" + "/".join(split(self.resolve(current, follow_last=False) or current)))
        return hops

    def read_bytes(self, path: str) -> bytes | None:
        """The bytes of a file whose content was extracted; None if absent or not extracted."""
        node = self.lookup(path)
        if node is None or node.kind != FILE or node.blob is None:
            return None
        return node.blob.read_bytes()

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def is_dir(self, path: str) -> bool:
        node = self.lookup(path)
        return node is not None and node.kind == DIR

    def is_file(self, path: str) -> bool:
        node = self.lookup(path)
        return node is not None and node.kind == FILE

    def list_dir(self, path: str) -> list[str]:
        """Recorded names in a directory (files the table did not ask for are only counted)."""
        real = self.resolve(path)
        return sorted(self.children.get(real, ())) if real is not None else []

    def is_empty_dir(self, path: str) -> bool:
        real = self.resolve(path)
        if real is None or self.nodes[real].kind != DIR:
            return False
        return not self.children.get(real) and not any(self.unrecorded.get(real, {}).values())

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every recorded path except the root, in no particular order."""
        for path, node in self.nodes.items():
            if path:
                yield path, node

    # -- changes (one layer at a time, from layers.py) ---------------------------------------------

    def real_dir(self, path: str) -> str:
        """A directory named in a layer, resolved through the links already there (missing parts as written)."""
        return self._walk(path, follow_last=True, strict=False) or path if path else ""

    def placed(self, path: str) -> str:
        """Where an entry of a layer lands: its directory resolved through the links already there."""
        parent, _, name = path.rpartition("/")
        if not parent:
            return name
        real_parent = self._walk(parent, follow_last=True, strict=False)
        return join(real_parent or parent, name)

    def _ensure_parents(self, path: str, layer: int) -> bool:
        """Create the directories a path implies; False if a non-directory is in the way."""
        parts = split(path)[:-1]
        current = ""
        for name in parts:
            current = join(current, name)
            node = self.nodes.get(current)
            if node is None:
                self._put(current, Node(DIR, layer, implicit=True))
            elif node.kind != DIR:
                return False
        return True

    def _put(self, path: str, node: Node) -> None:
        self.nodes[path] = node
        self.children.setdefault(parent_of(path), set()).add(path.rpartition("/")[2])

    def add(self, path: str, node: Node) -> bool:
        """Put one entry of layer ``node.layer``; what it replaces from lower layers goes. False: blocked."""
        if not self._ensure_parents(path, node.layer):
            return False
        old = self.nodes.get(path)
        if old is not None and (node.kind != DIR or old.kind != DIR):
            # a non-directory replaces a whole lower subtree, a directory replaces a lower file or link
            self._remove_subtree(path, below=node.layer, keep_root=False)
        if old is not None and old.kind == DIR and node.kind == DIR:
            old.layer, old.implicit = node.layer, False
            return True
        self._put(path, node)
        return True

    def count_unrecorded(self, path: str, layer: int) -> bool:
        """A regular file the table does not want: counted in its directory, replacing a lower entry."""
        if not self._ensure_parents(path, layer):
            return False
        if path in self.nodes:
            self._remove_subtree(path, below=layer, keep_root=False)
        counts = self.unrecorded.setdefault(parent_of(path), {})
        counts[layer] = counts.get(layer, 0) + 1
        return True

    def whiteout(self, path: str, layer: int) -> None:
        """``.wh.NAME``: NAME from lower layers is gone (with everything below it)."""
        node = self.nodes.get(path)
        if node is not None:
            if node.layer < layer:
                self._remove_subtree(path, below=layer, keep_root=False)
            return
        counts = self.unrecorded.get(parent_of(path))
        if counts:  # the name was one of the uncounted files: one of them is gone
            lower = [n for n, count in counts.items() if n < layer and count > 0]
            if lower:
                counts[max(lower)] -= 1

    def opaque(self, path: str, layer: int) -> None:
        """``.wh..wh..opq``: the directory keeps only what this layer (and upper ones) put in it."""
        node = self.nodes.get(path)
        if node is None:  # the marker came before its directory's own entry
            self._ensure_parents(join(path, ".wh..wh..opq"), layer)
            return
        if node.kind != DIR:
            return
        self._remove_subtree(path, below=layer, keep_root=True)

    def _remove_subtree(self, path: str, below: int, keep_root: bool) -> None:
        """Remove ``path`` and what is under it that comes from layers below ``below``.

        A directory that still holds entries of layer ``below`` or higher stays (as an implicit one).
        """
        todo = [path]
        order: list[str] = []
        while todo:
            current = todo.pop()
            order.append(current)
            todo.extend(join(current, name) for name in self.children.get(current, ()))
        for current in reversed(order):  # children before their parents
            counts = self.unrecorded.get(current)
            if counts:
                for n in [n for n in counts if n < below]:
                    del counts[n]
                if not counts:
                    del self.unrecorded[current]
            if current == path and keep_root:
                continue
            node = self.nodes.get(current)
            if node is None:
                continue
            if node.layer >= below and current != path:
                continue
            if node.kind == DIR and (self.children.get(current) or self.unrecorded.get(current)):
                node.implicit = True
                continue
            del self.nodes[current]
            self.children.pop(current, None)
            siblings = self.children.get(parent_of(current))
            if siblings is not None:
                siblings.discard(current.rpartition("/")[2])
