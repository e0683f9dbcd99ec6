"""pyvxlan: a typed Python library for VXLAN (RFC 7348) overlay networks.

Codecs (:mod:`pyvxlan.header`, :mod:`pyvxlan.frame`, :mod:`pyvxlan.pcap`), a sans-I/O VTEP
(:class:`Vtep`), a deterministic trio simulator (:mod:`pyvxlan.sim`) and a Linux kernel backend
(:mod:`pyvxlan.kernel`) behind one control API (:class:`VtepControl`).
"""

from __future__ import annotations

import importlib
from typing import Any

from pyvxlan.config import VtepConfig
from pyvxlan.control import VtepControl
from pyvxlan.entries import FdbEntry, FdbState, Neighbour
from pyvxlan.errors import (
    ConfigError,
    DecodeError,
    FdbBatchError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbError,
    FdbFull,
    FdbOperationNotSupported,
    MissingIFlagError,
    NotVxlanError,
    PrivilegeError,
    ReservedBitsError,
    TruncatedError,
    VxlanError,
)
from pyvxlan.events import (
    DeliverFrame,
    Direction,
    Dropped,
    DropReason,
    EntryExpired,
    EntryLearned,
    EntryMigrated,
    JoinGroup,
    L2Miss,
    L3Miss,
    LeaveGroup,
    SendDatagram,
    VtepCounters,
)
from pyvxlan.fdb import ForwardingDatabase
from pyvxlan.frame import (
    IANA_SOURCE_PORTS,
    LINUX_SOURCE_PORTS,
    LINUX_VXLAN_PORT,
    VXLAN_GPE_PORT,
    VXLAN_PORT,
    Decapsulated,
    decapsulate,
    decapsulate_payload,
    encapsulate,
    flow_source_port,
)
from pyvxlan.header import GpeHeader, GpeNextProtocol, GroupPolicy, VxlanHeader
from pyvxlan.vtep import Vtep

__version__ = "0.1.0"

__all__ = [
    "IANA_SOURCE_PORTS",
    "LINUX_SOURCE_PORTS",
    "LINUX_VXLAN_PORT",
    "VXLAN_GPE_PORT",
    "VXLAN_PORT",
    "ConfigError",
    "Decapsulated",
    "DecodeError",
    "DeliverFrame",
    "Direction",
    "DropReason",
    "Dropped",
    "EntryExpired",
    "EntryLearned",
    "EntryMigrated",
    "FdbBatchError",
    "FdbEntry",
    "FdbEntryExists",
    "FdbEntryNotFound",
    "FdbError",
    "FdbFull",
    "FdbOperationNotSupported",
    "FdbState",
    "ForwardingDatabase",
    "GpeHeader",
    "GpeNextProtocol",
    "GroupPolicy",
    "JoinGroup",
    "L2Miss",
    "L3Miss",
    "LeaveGroup",
    "MissingIFlagError",
    "Neighbour",
    "NotVxlanError",
    "PrivilegeError",
    "ReservedBitsError",
    "SendDatagram",
    "TruncatedError",
    "Vtep",
    "VtepConfig",
    "VtepControl",
    "VtepCounters",
    "VxlanError",
    "VxlanHeader",
    "decapsulate",
    "decapsulate_payload",
    "encapsulate",
    "flow_source_port",
]

# Submodules with optional or heavier dependencies load on first use: ``pyvxlan.strategies``
# needs hypothesis (the ``testing`` extra) and ``pyvxlan.kernel`` needs pyroute2 (``kernel``).
_LAZY_SUBMODULES = frozenset({"pcap", "strategies", "testing", "sim", "kernel", "topology", "dpkt_vxlan", "memory", "replay"})


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"pyvxlan.{name}")
    raise AttributeError(f"module 'pyvxlan' has no attribute {name!r}")
