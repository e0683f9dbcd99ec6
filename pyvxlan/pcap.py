"""The public import path of :mod:`pyvxlan.wire.pcap`, where the code lives.

``from pyvxlan.pcap import ...`` is what the README and the docs show; the module sits with its
layer (``pyvxlan/wire/``) so the tree shows the architecture.
"""

from __future__ import annotations

from pyvxlan.wire.pcap import (
    ETHERNET,
    LINUX_SLL,
    LINUX_SLL2,
    LinkType,
    PcapStats,
    PcapWriter,
    frame_of,
    raw_records,
    read,
    write,
)

__all__ = [
    "ETHERNET",
    "LINUX_SLL",
    "LINUX_SLL2",
    "LinkType",
    "PcapStats",
    "PcapWriter",
    "frame_of",
    "raw_records",
    "read",
    "write",
]
