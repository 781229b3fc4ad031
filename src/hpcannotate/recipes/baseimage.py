"""What a base image's name states about the image, for adapters of every recipe format.

A recipe names its base (``baseimage(image=...)``, ``From:``, ``FROM``) long before anything is built;
where the name states the distribution and its version exactly, the adapter can say so with the
name as provenance. Anything less than exact is left unsaid: the probe reads /etc/os-release later.
"""

from __future__ import annotations

import re

# (pattern searched in the name, ID in /etc/os-release). CentOS's and Debian's VERSION_ID is the major
# alone: a name saying more (centos:7.9) is left unread rather than cut down to a guess.
_OS_IN_NAME = ((re.compile(r"ubuntu:?([0-9]{2}\.[0-9]{2})"), "ubuntu"),
               (re.compile(r"centos:?([0-9]+)(?![.0-9])"), "centos"),
               (re.compile(r"debian:?([0-9]+)(?![.0-9])"), "debian"))


def os_from_image(image: str) -> tuple[str, str] | None:
    """(ID, VERSION_ID) of /etc/os-release where the image name says both exactly
    (``nvcr.io/nvidia/cuda:12.2.0-devel-ubuntu22.04`` -> ubuntu, 22.04); None otherwise."""
    for pattern, name in _OS_IN_NAME:
        match = pattern.search(image)
        if match:
            return name, match.group(1)
    return None
