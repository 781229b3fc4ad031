"""``hpcannotate fingerprint``: describe this host (or a captured tree) in the image vocabulary."""

from __future__ import annotations

from pathlib import Path

import click

from hpcannotate import console
from hpcannotate.host import fingerprint
from hpcannotate.host.capture import capture

# Flags worth showing in the table: what decides which SIMD code runs.
NOTABLE_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
    "asimd", "asimddp", "sve", "sve2", "vsx",
)


@click.group("fingerprint", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (save it for `match --fingerprint FILE`).")
@click.option("--sysroot", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Read proc/, sys/, etc/ and captured command outputs (commands/NAME.txt) from DIR "
                   "instead of this host; nothing is run.")
@click.pass_context
def fingerprint_cmd(ctx: click.Context, as_json: bool, sysroot: Path | None) -> None:
    """Describe this host: CPU target, GPUs, interconnect, OS, MPI and container runtimes.

    The annotations at the end use the same keys as images, so an image and a
    host compare key by key. `fingerprint capture DIR` saves this node as a
    sysroot for `--sysroot` and `match --sysroot` elsewhere.

    \b
    Examples:
      hpcannotate fingerprint
      hpcannotate fingerprint --json > host.json
      hpcannotate fingerprint --sysroot captured-node/
      hpcannotate fingerprint capture captured-node/
    """
    if ctx.invoked_subcommand is not None:
        return

    fp = fingerprint(sysroot)
    if as_json:
        console.emit_json(fp.to_json())
        return
    print_fingerprint(fp)


def _section(title: str, rows: list[list[str]]) -> None:
    console.heading(title)
    console.table(rows or [["(none found)"]], indent=2)
    click.echo()


def print_fingerprint(fp) -> None:
    where = "this host" if fp.source == "live" else fp.source
    console.heading(f"host fingerprint of {where}")
    click.echo()
    cpu = fp.cpu
    notable = [f for f in NOTABLE_FLAGS if f in set(cpu.features)]
    _section("CPU", [
        ["target", f"{cpu.target} ({cpu.mode})"],
        ["generic level", cpu.generic],
        ["family", cpu.family],
        ["vendor", cpu.vendor],
        *([["model", cpu.model]] if cpu.model else []),
        ["features", f"{len(cpu.features)} flags" + (f"; {' '.join(notable)}" if notable else "")],
    ])
    rows: list[list[str]] = []
    nvidia = fp.gpu.nvidia if fp.gpu else None
    if nvidia:
        cuda = nvidia.cuda_version or "unknown"
        how = f" ({nvidia.cuda_version_source})" if nvidia.cuda_version_source else ""
        rows.append(["NVIDIA driver", f"{nvidia.driver_version or 'unknown'}, runs CUDA <= {cuda}{how}"])
        for name, count, arch in _grouped((d.name, d.architecture or "unknown arch") for d in nvidia.devices):
            rows.append(["NVIDIA GPU", f"{count} x {name} ({arch})"])
    amd = fp.gpu.amd if fp.gpu else None
    if amd:
        rows.append(["AMD GPU", f"{len(amd.devices)} x {', '.join(amd.architectures)} (kfd)"])
    _section("GPU", rows)
    net = fp.interconnect
    rows = []
    for device in net.rdma:
        ports = ", ".join(f"port {p.port} {p.state or '?'} {p.rate or ''}".strip() for p in device.ports)
        rows.append([device.name, f"{device.kind} {device.hca_type or ''}".strip() + (f": {ports}" if ports else "")])
    if net.cxi:
        rows.append(["slingshot", f"{', '.join(net.cxi)} (HPE CXI)"])
    if net.libfabric:
        providers = f"; providers {', '.join(net.libfabric.providers)}" if net.libfabric.providers else ""
        rows.append(["libfabric", f"{net.libfabric.version or 'unknown version'}{providers}"])
    if net.ucx:
        rows.append(["UCX", net.ucx.version or "unknown version"])
    rows.append(["fast network", "yes" if net.fast else "no (TCP only)"])
    _section("Interconnect", rows)
    osi = fp.os
    userns = osi.user_namespaces
    userns_text = {True: "enabled", False: "disabled", None: "unknown"}[userns.enabled]
    if userns.max_user_namespaces is not None:
        userns_text += f" (max_user_namespaces={userns.max_user_namespaces})"
    _section("OS", [
        ["kernel", osi.kernel_release or "unknown"],
        ["C library", f"{osi.libc or 'unknown'} {osi.libc_version or ''}".strip()],
        ["user namespaces", userns_text],
        ["file systems", ", ".join(osi.filesystems) or "none of overlay, squashfs, fuse"],
        *([["distribution", osi.distribution.get("PRETTY_NAME", "")]] if osi.distribution else []),
    ])
    rows = []
    for n, mpi in enumerate(fp.software.mpi):
        abi = f", ABI {mpi.abi_version}" if mpi.abi_version else ""
        label = "MPI" if n == 0 else "MPI (also)"
        rows.append([label, f"{mpi.implementation} {mpi.version or ''}{abi} [{mpi.source}]"])
    for runtime in fp.software.container_runtimes:
        rows.append([runtime.name, runtime.version or runtime.banner or "version unknown"])
    _section("Software", rows)
    console.heading("As annotations (the image vocabulary)")
    console.table(sorted(fp.annotations.items()), indent=2)


def _grouped(items):
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return [(name, count, arch) for (name, arch), count in counts.items()]


@fingerprint_cmd.command("capture")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--force", is_flag=True, help="Replace an earlier capture in DIRECTORY.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written and the fingerprint as JSON.")
def capture_cmd(directory: Path, force: bool, as_json: bool) -> None:
    """Save this node as a sysroot: the /proc, /sys and /etc files and the command outputs fingerprint reads.

    Run it once on a node of each type (each Slurm partition); then
    `hpcannotate fingerprint --sysroot DIR` and `hpcannotate match --sysroot DIR REF ...`
    describe that node from any machine, without running anything there. Only what the
    probes read is written (no home directories, no environment). The capture is read
    back and must give the same fingerprint before the command succeeds.

    \b
    Examples:
      hpcannotate fingerprint capture nodes/gpu-a100
      srun -p gpu -N1 hpcannotate fingerprint capture nodes/gpu
    """

    written = capture(directory, force=force)
    fp = fingerprint(sysroot=directory)
    if as_json:
        console.emit_json({"directory": str(directory), "files": written, "fingerprint": fp.to_json()})
        return
    click.echo(f"captured this node ({fp.cpu.target}) into {directory}: {len(written)} files")
    for name in written:
        click.echo(f"  {name}")
    click.echo(f"read it back with: hpcannotate fingerprint --sysroot {directory}")
