"""``hpcannotate check``: the seeds' expected image behaviour, as named checks with pass/fail and a reason.

Seed 001 asks of an HPC container: mandatory annotations present and valid; an ENTRYPOINT
that is absent or a tiny script that exec's its arguments, with no runtime selection of
binaries; a CMD that is a shell or a usage message; the application's environment available
without the entrypoint (the CSCS Container Engine and ``apptainer exec`` skip it), as ENV or
in /etc/profile.d; one CPU target per image.

Subjects: an image reference (registry or ``oci:PATH``; only manifests and configs are read,
so an entrypoint script is judged by its name, the image's annotations and its embedded
Dockerfile, never by reading a layer), a Dockerfile, or a directory (a build context with a
Dockerfile/Containerfile, a recipe directory with hpcannotate.yaml, or an OCI layout). The
judgements shared by images and Dockerfiles are here; reading Dockerfiles and build contexts,
and ``check`` itself (which picks the reader for a subject), are in ``check_dockerfile``, which
builds on this module (never the other way round).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.keynames import (
    CONTAINER_ENTRYPOINT_PROFILE,
    DOCS_BUILD_DOCKERFILE,
    HARDWARE_CPU_OPTIMIZED_VERSION,
)
from hpcannotate.model.knowledge import shells

if TYPE_CHECKING:
    from hpcannotate.dockerfile.reader import Dockerfile
    from hpcannotate.image.check_layers import LoginProfile
    from hpcannotate.image.read import PlatformEntry, Transport
    from hpcannotate.model.annotations import Annotations

TARGET = HARDWARE_CPU_OPTIMIZED_VERSION
PROFILE_MARKER = CONTAINER_ENTRYPOINT_PROFILE
DOCKERFILE_DOC = DOCS_BUILD_DOCKERFILE

TITLES = {
    "annotations": "mandatory annotations present and valid",
    "entrypoint": "ENTRYPOINT absent or a small script that exec's its arguments",
    "runtime-selection": "no runtime binary selection",
    "cmd": "CMD a shell or a usage message",
    "environment": "environment available without the entrypoint (ENV or profile.d)",
    "one-target": "one CPU target per image",
}

SHELLS = frozenset(shells())  # data/shells.yaml
SHELL_FLAGS = frozenset({"-l", "-i", "--login", "-il", "-li", "--norc", "--noprofile", "-"})
USAGE_WORDS = frozenset({"--help", "-h", "-help", "help", "usage", "--usage", "-?"})
# Small entrypoints known by name: (what it is, whether it sets the application's environment).
KNOWN_ENTRYPOINTS = {
    "hpcannotate-entrypoint": ("hpcannotate's entrypoint: sources /etc/profile.d/hpcannotate.sh and exec's its "
                               "arguments", True),
    "tini": ("tini, a minimal init that exec's its arguments", False),
    "tini-static": ("tini, a minimal init that exec's its arguments", False),
    "dumb-init": ("dumb-init, a minimal init that exec's its arguments", False),
    "catatonit": ("catatonit, a minimal init that exec's its arguments", False),
}
INIT_FLAGS = re.compile(r"^(--|-[a-zA-Z]+|--[a-z-]+)$")
MAX_SCRIPT_LINES = 40
EXEC_ARGS = re.compile(r'^\s*exec\s+(?:"\$@"|"\$\{@\}"|\$@|\$\{@\})\s*$', re.M)
# What a script reads or calls to pick a binary for the CPU or GPU it finds at run time.
SELECTION = (
    ("/proc/cpuinfo", re.compile(r"/proc/cpuinfo")),
    ("lscpu", re.compile(r"\blscpu\b")),
    ("cpuid", re.compile(r"\bcpuid\b")),
    ("archspec", re.compile(r"\barchspec\b")),
    ("uname -m", re.compile(r"\buname\s+(-[a-z]*m|--machine)")),
    ("CPU flag names", re.compile(r"\b(avx512\w*|avx2|avx|sse4_?[12]|fma|neon|asimd|sve2?)\b", re.I)),
    ("glibc hwcaps", re.compile(r"ld\.so\s+--help|ld-linux\S*\s+--help")),
    ("nvidia-smi", re.compile(r"\bnvidia-smi\b")),
    ("rocminfo", re.compile(r"\brocm(info|-smi)\b")),
)
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# Variables every image has, or that say nothing about the application.
NEUTRAL_ENV = frozenset({"HOME", "HOSTNAME", "TERM", "LANG", "LANGUAGE", "TZ", "SHELL", "USER", "PWD", "container",
                         "DEBIAN_FRONTEND", "PS1", "HISTFILE", "OLDPWD", "SHLVL", "_"})
TARGET_FLAGS = (
    ("-march", re.compile(r"(?<![\w:])-march=([\w.+-]+)")),
    ("-mcpu", re.compile(r"(?<![\w:])-mcpu=([\w.+-]+)")),
    ("spack target", re.compile(r"\btarget=([\w.+-]+)")),
    ("GMX_SIMD", re.compile(r"\bGMX_SIMD=([\w.+-]+)")),
    ("--optarch", re.compile(r"--optarch=([^\s\"']+)")),
    ("-x (Intel)", re.compile(r"\s-x(CORE-AVX\w*|COMMON-AVX512|AVX\w*|SSE\w*|HOST)\b")),
    ("-tp (NVHPC)", re.compile(r"\s-tp[= ]([\w-]+)")),
)
BUILD_HOST_TARGETS = frozenset({"native", "host"})


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str
    details: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return TITLES[self.name]

    def to_json(self) -> dict:
        data = {"name": self.name, "title": self.title, "status": "pass" if self.passed else "fail",
                "reason": self.reason}
        if self.details:
            data["details"] = list(self.details)
        return data


@dataclass
class CheckReport:
    """The checks of one subject; an index or a recipe directory holds one report per image."""

    subject: str
    kind: str  # image | index | dockerfile | context | recipe
    checks: list[Check] = field(default_factory=list)
    parts: list[CheckReport] = field(default_factory=list)
    label: str | None = None  # platform and target of an index entry, target of a rendered recipe

    @property
    def conformant(self) -> bool:
        return all(c.passed for c in self.checks) and all(p.conformant for p in self.parts) and \
            bool(self.checks or self.parts)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed] + [c for p in self.parts for c in p.failed()]

    def to_json(self) -> dict:
        data: dict = {"subject": self.subject, "kind": self.kind, "conformant": self.conformant}
        if self.label:
            data["label"] = self.label
        if self.checks:
            data["checks"] = [c.to_json() for c in self.checks]
        if self.parts:
            data["images"] = [p.to_json() for p in self.parts]
        return data


# -- scripts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """An entrypoint or profile script read from a build context (or a Dockerfile heredoc)."""

    where: str
    text: str

    def code(self) -> list[tuple[int, str]]:
        """(line number, line) of the lines that are not blank, comments or the shebang."""
        return [(n, line) for n, line in enumerate(self.text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]

    def execs_arguments(self) -> bool:
        return bool(EXEC_ARGS.search(self.text))

    def selections(self) -> list[str]:
        found = []
        for n, line in self.code():
            for name, pattern in SELECTION:
                if pattern.search(line):
                    found.append(f"{name} ({self.where}:{n})")
                    break
        return found

    def sourced(self) -> list[str]:
        """Files the script sources (``. FILE`` / ``source FILE``), literal paths only."""
        paths = []
        for _, line in self.code():
            for found in re.finditer(r'(?:^|[;&|]\s*|\bthen\s+)(?:\.|source)\s+["\']?(/[^\s"\';]+)', line.strip()):
                paths.append(found.group(1))
        return paths

    def sets(self) -> set[str]:
        """Variables the script exports or assigns at the start of a command."""
        names = set()
        for _, line in self.code():
            for found in re.finditer(r"(?:^|[;&|]\s*|\bexport\s+)([A-Za-z_][A-Za-z0-9_]*)=", line.strip()):
                names.add(found.group(1))
            for found in re.finditer(r"\bexport\s+((?:[A-Za-z_][A-Za-z0-9_]*\s*)+)(?:$|;)", line.strip()):
                names.update(found.group(1).split())
        return names


# -- shared judgements ---------------------------------------------------------------------------


def _show(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def judge_entrypoint(entrypoint: list[str], marker: str | None, script: Script | None,
                     unreadable: str | None = None) -> tuple[Check, Check]:
    """The ``entrypoint`` and ``runtime-selection`` checks for an ENTRYPOINT argv.

    ``script`` is its text when it could be read (a build context, a heredoc); ``unreadable`` says
    why it could not (an image: layers are not read; a file made by RUN or copied from a stage).
    """
    if not entrypoint:
        return (Check("entrypoint", True, "no ENTRYPOINT: `docker run IMAGE gmx mdrun` runs gmx as given"),
                Check("runtime-selection", True, "no entrypoint to choose binaries at run time"))
    name = posixpath.basename(entrypoint[0])
    shown = _show(entrypoint)
    if name in SHELLS and "-c" in entrypoint:
        return (Check("entrypoint", False, f"ENTRYPOINT {shown} runs only its first argument as shell code: "
                                           "`docker run IMAGE gmx mdrun -v` loses mdrun -v"),
                Check("runtime-selection", True, "the entrypoint is a shell, not a script that picks binaries"))
    if name in SHELLS and all(a in SHELL_FLAGS for a in entrypoint[1:]):
        return (Check("entrypoint", False, f"ENTRYPOINT {shown} is a shell: `docker run IMAGE gmx mdrun` runs "
                                           f"{name} gmx mdrun, which reads gmx as a script file"),
                Check("runtime-selection", True, "the entrypoint is a shell, not a script that picks binaries"))
    known = KNOWN_ENTRYPOINTS.get(name)
    if known and all(INIT_FLAGS.match(a) for a in entrypoint[1:]) and script is None:
        return (Check("entrypoint", True, f"ENTRYPOINT {shown}: {known[0]}"),
                Check("runtime-selection", True, f"{name} makes no choice of binaries"))
    if script is not None:
        return _judge_script(entrypoint, script)
    if len(entrypoint) == 1 and marker:
        return (Check("entrypoint", True, f"ENTRYPOINT {shown}: the image declares it sources {marker} and exec's "
                                          "its arguments (container.entrypoint.profile)"),
                Check("runtime-selection", True, f"{shown} is declared a profile-sourcing entrypoint "
                                                 "(container.entrypoint.profile)"))
    why = unreadable or "its script cannot be read here"
    if len(entrypoint) > 1:
        return (Check("entrypoint", False, f"ENTRYPOINT runs {shown}: `docker run IMAGE CMD` hands the command to it "
                                           "as arguments instead of running it"),
                Check("runtime-selection", False, f"cannot tell whether {shown} picks binaries at run time ({why})"))
    return (Check("entrypoint", False, f"ENTRYPOINT {shown} is not a known small entrypoint and {why}"),
            Check("runtime-selection", False, f"cannot tell whether {shown} picks binaries at run time ({why})"))


def _judge_script(entrypoint: list[str], script: Script) -> tuple[Check, Check]:
    lines = len(script.code())
    shown = _show(entrypoint)
    if not script.execs_arguments():
        entry = Check("entrypoint", False, f"ENTRYPOINT {shown} ({script.where}) does not exec its arguments "
                                           '(no `exec "$@"`): the command given to the image does not replace it')
    elif lines > MAX_SCRIPT_LINES:
        entry = Check("entrypoint", False, f"ENTRYPOINT {shown} ({script.where}) has {lines} lines of code: not a "
                                           f"small script (at most {MAX_SCRIPT_LINES})")
    else:
        sources = script.sourced()
        also = f", sources {', '.join(sources)}" if sources else ""
        entry = Check("entrypoint", True, f'ENTRYPOINT {shown} ({script.where}): {lines} lines{also}, exec "$@"')
    found = script.selections()
    if found:
        selection = Check("runtime-selection", False, f"the entrypoint inspects the machine to pick binaries: "
                                                      f"{', '.join(found[:3])}", tuple(found))
    else:
        selection = Check("runtime-selection", True, f"{script.where} reads no CPU or GPU facts")
    return entry, selection


def judge_cmd(cmd: list[str], entrypoint: list[str], inherited_from: str | None = None,
              login: LoginProfile | None = None, profiles: Iterable[str] = ()) -> Check:
    """CMD a shell (a login shell is best) or a usage message.

    ``inherited_from`` names the base image when the Dockerfile sets no CMD and the base's
    CMD is known to be a shell. ``login``: what the image's /etc/profile does, when its layers
    were read; only then is "the profile loads" said. A login-shell CMD whose /etc/profile does
    not load the image's ``profiles`` (in /etc/profile.d) fails: it shows no PATH and no usage.
    """
    if not cmd:
        if inherited_from:
            return Check("cmd", True, f"no CMD: inherits {inherited_from}'s, a shell")
        if entrypoint:
            return Check("cmd", False, f"no CMD: {_show(entrypoint)} gets no command, so `docker run IMAGE` does "
                                       "not drop into a shell")
        return Check("cmd", False, "no CMD and no ENTRYPOINT: `docker run IMAGE` has nothing to run")
    shown = _show(cmd)
    name = posixpath.basename(cmd[0])
    args = cmd[1:]
    if name in SHELLS:
        if all(a in SHELL_FLAGS for a in args):
            if not any(a in ("-l", "--login", "-il", "-li") for a in args):
                return Check("cmd", True, f"CMD {shown}: a shell")
            if login is None:
                return Check("cmd", True, f"CMD {shown}: a login shell (/etc/profile not read, so whether it "
                                           "sources the profile is unchecked)")
            if login.loads:
                return Check("cmd", True, f"CMD {shown}: a login shell; {login.reason}")
            if profiles:
                return Check("cmd", False, f"CMD {shown}: a login shell, but {login.reason}: "
                                           f"{', '.join(profiles)} never loads")
            return Check("cmd", True, f"CMD {shown}: a login shell ({login.reason})")
        if "-c" in args and _is_usage(args[args.index("-c") + 1:]):
            return Check("cmd", True, f"CMD {shown}: prints a usage message")
        return Check("cmd", False, f"CMD {shown} runs shell code, neither a shell nor a usage message")
    if name in ("cat", "echo", "printf") or any(a in USAGE_WORDS for a in args):
        return Check("cmd", True, f"CMD {shown}: prints a usage message")
    return Check("cmd", False, f"CMD {shown} starts a program: neither a shell nor a usage message (`docker run "
                               "IMAGE` should drop into a shell, like logging into a compute node)")


def _is_usage(words: list[str]) -> bool:
    text = " ".join(words)
    return bool(re.match(r"\s*(echo|cat|printf)\b", text)) or any(w.strip("'\"") in USAGE_WORDS for w in text.split())


def env_extras(env: Mapping[str, str]) -> list[str]:
    """What ENV adds for the application: PATH directories beyond the defaults, and its variables."""
    extras = []
    path = [d for d in env.get("PATH", "").split(":") if d and d not in DEFAULT_PATH and not d.startswith("$")]
    if path:
        extras.append("PATH +" + ":".join(path))
    extras += [k for k in env if k != "PATH" and k not in NEUTRAL_ENV]
    return extras


def judge_environment(entrypoint: list[str], env: Mapping[str, str], profiles: list[str],
                      script_sets: set[str] | None = None) -> Check:
    """The environment must not exist only inside the entrypoint (seed 001; Spack containerize's mistake)."""
    extras = env_extras(env)
    in_profile = f"; {', '.join(profiles)} for login shells" if profiles else ""
    if script_sets is not None:
        missing = sorted(n for n in script_sets - set(env) - NEUTRAL_ENV if not n.startswith("HPCANNOTATE_"))
        if missing:
            return Check("environment", False, f"the entrypoint (with the profiles it sources) sets "
                                               f"{', '.join(missing)} but ENV does not: the CSCS Container Engine "
                                               "and `apptainer exec` skip the entrypoint and miss them",
                         tuple(missing))
    if extras:
        return Check("environment", True, f"ENV sets {', '.join(extras)}: runtimes that skip the entrypoint see "
                                          f"the application{in_profile}", tuple(extras))
    if not entrypoint:
        return Check("environment", True, "no ENTRYPOINT, so nothing holds the environment but ENV" + in_profile)
    if profiles:
        return Check("environment", True, f"the environment is in {', '.join(profiles)} (login shells); ENV adds "
                                          "nothing for `apptainer exec`")
    known = KNOWN_ENTRYPOINTS.get(posixpath.basename(entrypoint[0]))
    if known and not known[1]:
        return Check("environment", True, f"{posixpath.basename(entrypoint[0])} sets no environment of its own")
    return Check("environment", False, f"ENV adds nothing beyond the default PATH and there is no /etc/profile.d "
                                       f"script: the environment can only come from ENTRYPOINT {_show(entrypoint)}, "
                                       "which the CSCS Container Engine and `apptainer exec` skip")


def target_flags(texts: Iterable[str]) -> dict[str, list[str]]:
    """Compiler/build-tool CPU target settings found in build commands: kind -> distinct values."""
    found: dict[str, list[str]] = {}
    for text in texts:
        for kind, pattern in TARGET_FLAGS:
            for match in pattern.finditer(text):
                value = match.group(1)
                if "$" not in value and value not in found.setdefault(kind, []):
                    found[kind].append(value)
    return {k: v for k, v in found.items() if v}


def judge_one_target(targets: list[tuple[str, str]], flags: dict[str, list[str]]) -> Check:
    """One CPU target: annotations agree, and the build commands name one target of each kind."""
    distinct = sorted({value for value, _ in targets})
    native = [f"{kind}={v}" for kind, values in flags.items() for v in values if v in BUILD_HOST_TARGETS]
    if native:
        return Check("one-target", False, f"builds with {', '.join(native)}: the target is whatever CPU ran the "
                                          "build, not one the image can name")
    several = {kind: values for kind, values in flags.items() if len(values) > 1}
    if several:
        shown = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in several.items())
        return Check("one-target", False, f"builds for several CPU targets ({shown}): one image per target, "
                                          "several images per application")
    if len(distinct) > 1:
        shown = ", ".join(f"{value} ({where})" for value, where in targets)
        return Check("one-target", False, f"names several CPU targets: {shown}")
    if not distinct:
        return Check("one-target", False, "no hardware.cpu.optimized.version: the image does not say which CPU it "
                                          "is built for")
    via = "; ".join(f"{kind} {values[0]}" for kind, values in flags.items())
    return Check("one-target", True, f"one CPU target: {distinct[0]}" + (f" (build: {via})" if via else ""))


def judge_annotations(annotations: Annotations) -> Check:
    problems = annotations.validate()
    if not problems:
        managed = [k for k in annotations if k.startswith(P)]
        return Check("annotations", True, f"HPC Container Compliant: mandatory keys present, {len(managed)} "
                                          "org.supercontainers keys valid")
    shown = [str(p).removeprefix(P) for p in problems]
    return Check("annotations", False, f"{len(problems)} problem{'s' if len(problems) > 1 else ''}: {shown[0]}"
                 + (f" (and {len(shown) - 1} more)" if len(shown) > 1 else ""), tuple(shown))


# -- images ---------------------------------------------------------------------------------------


def _env_mapping(items: Iterable[str]) -> dict[str, str]:
    env = {}
    for item in items:
        name, _, value = str(item).partition("=")
        env[name] = value
    return env


def embedded_dockerfile(annotations: Mapping[str, str], where: str) -> Dockerfile | None:
    """The Dockerfile an image carries in docs.build.dockerfile (hpcannotate build writes it), if readable."""
    import base64
    import binascii

    from hpcannotate.dockerfile.reader import parse

    text = annotations.get(DOCKERFILE_DOC)
    if not text:
        return None
    try:
        return parse(base64.b64decode(text, validate=True).decode("utf-8"), f"{where} docs.build.dockerfile")
    except (binascii.Error, UnicodeDecodeError, InputError):
        return None


def check_image_entry(entry: PlatformEntry, config: dict, login: LoginProfile | None = None) -> list[Check]:
    """The checks of one image, from its annotations and config (and its embedded Dockerfile, if any);
    ``login`` is what its /etc/profile does, when the layers were read."""
    inner = config.get("config") or {}
    entrypoint = [str(a) for a in inner.get("Entrypoint") or []]
    cmd = [str(a) for a in inner.get("Cmd") or []]
    env = _env_mapping(inner.get("Env") or [])
    history = [str(h.get("created_by") or "") for h in config.get("history") or [] if isinstance(h, dict)]
    embedded = embedded_dockerfile(entry.annotations, entry.pull)
    profiles = sorted({m.group(0) for line in history for m in re.finditer(r"/etc/profile\.d/[\w.+-]+", line)})
    entry_check, selection = judge_entrypoint(entrypoint, entry.annotations.get(PROFILE_MARKER), None,
                                              "its script is in a layer, which check does not read (check the "
                                              "Dockerfile or build context instead)")
    targets = [(entry.annotations[TARGET], entry.annotations.entry(TARGET).provenance.describe())] \
        if TARGET in entry.annotations else []
    if targets:
        for lost in entry.annotations.entry(TARGET).overridden:
            targets.append((lost.value, lost.provenance.describe()))
    builds = [i.args + "".join(b for _, b in i.heredocs) for s in embedded.stages for i in s.instructions
              if i.keyword == "RUN"] if embedded else history
    return [
        judge_annotations(entry.annotations),
        entry_check,
        selection,
        judge_cmd(cmd, entrypoint, login=login, profiles=profiles),
        judge_environment(entrypoint, env, profiles),
        judge_one_target(targets, target_flags(builds)),
    ]


LOCAL_PREFIXES = ("oci:", "oci-archive:", "docker-archive:")


def check_reference(ref: str, transport: Transport | None = None, layers: bool | None = None) -> CheckReport:
    """Check every image of ``ref`` from its manifests and configs; with ``layers`` (default: for local
    images, a layout or an archive) its layers are read too, for what /etc/profile does."""
    from hpcannotate.image.read import Transport, image_config, read_one

    transport = transport or Transport()
    client = None if ref.startswith(LOCAL_PREFIXES) else transport.client()
    try:
        read = read_one(ref, client, transport)
    finally:
        if client is not None:
            client.close()
    if read.error:
        raise HpcAnnotateError(read.error)
    report = CheckReport(read.reference, "index" if read.is_index else "image")
    if layers is None:
        layers = ref.startswith(LOCAL_PREFIXES)
    for entry in read.entries:
        config = image_config(ref, entry, transport)
        checks = check_image_entry(entry, config, _login_profile(entry, config, transport) if layers else None)
        if not read.is_index:
            report.checks = checks
            return report
        label = f"{entry.platform_text} {entry.annotations.get(TARGET, '?')}"
        report.parts.append(CheckReport(entry.pull, "image", checks, label=label))
    return report


def _login_profile(entry: PlatformEntry, config: dict, transport: Transport) -> LoginProfile | None:
    """/etc/profile of the image, read from its layers, when its CMD is a login shell (else nothing to read)."""
    from hpcannotate.image.check_layers import login_profile

    cmd = [str(a) for a in (config.get("config") or {}).get("Cmd") or []]
    if not cmd or not any(a in ("-l", "--login", "-il", "-li") for a in cmd[1:]):
        return None
    platform = entry.platform or {}
    text = "/".join(p for p in (platform.get("os") or "linux", platform.get("architecture") or "amd64",
                                platform.get("variant")) if p)
    return login_profile(entry.pull, text, transport)
