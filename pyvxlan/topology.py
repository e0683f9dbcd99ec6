"""The public import path of :mod:`pyvxlan.lab.topology`, where the code lives.

``from pyvxlan.topology import ...`` is what the README and the docs show; the module sits with its
layer (``pyvxlan/lab/``) so the tree shows the architecture.
"""

from __future__ import annotations

from pyvxlan.lab.topology import (
    MAX_COUNT,
    MAX_FILE_SIZE,
    FdbMode,
    GuestSpec,
    Host,
    Topology,
    TopologyFileError,
    Underlay,
    VxlanDevice,
    classic_demo,
    load_topology,
    parse_toml,
    parse_topology,
)

__all__ = [
    "MAX_COUNT",
    "MAX_FILE_SIZE",
    "FdbMode",
    "GuestSpec",
    "Host",
    "Topology",
    "TopologyFileError",
    "Underlay",
    "VxlanDevice",
    "classic_demo",
    "load_topology",
    "parse_toml",
    "parse_topology",
]
