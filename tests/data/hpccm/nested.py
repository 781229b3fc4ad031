"""Nested building blocks: a recipe-defined block holding hpccm blocks, full module paths, lists."""
import hpccm
from hpccm.building_blocks.base import bb_base


class fabric_stack(bb_base):
    """A site's own block: libfabric built from source, then MPICH on top of it (ch4:ofi)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self += hpccm.building_blocks.generic_autotools(
            url='https://github.com/ofiwg/libfabric/releases/download/v1.19.0/libfabric-1.19.0.tar.bz2',
            prefix='/usr/local/libfabric')
        self += hpccm.building_blocks.mpich(
            version='4.1.2', configure_opts=['--with-device=ch4:ofi', '--with-libfabric=/usr/local/libfabric'])


Stage0 += hpccm.primitives.baseimage(image='docker.io/library/rockylinux:9')
Stage0 += [hpccm.building_blocks.llvm(version='17'), hpccm.building_blocks.cmake(eula=True)]
Stage0 += fabric_stack()
