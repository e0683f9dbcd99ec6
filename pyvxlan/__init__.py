"""pyvxlan: a typed Python library for VXLAN (RFC 7348) overlay networks.

Codecs (:mod:`pyvxlan.wire.header`, :mod:`pyvxlan.wire.frame`, :mod:`pyvxlan.wire.pcap`), a sans-I/O VTEP
(:class:`Vtep`), a deterministic trio simulator (:mod:`pyvxlan.sim`) and a Linux kernel backend
(:mod:`pyvxlan.kernel`) behind one control API (:class:`VtepControl`).
"""

from __future__ import annotations

# typing.TYPE_CHECKING without importing typing (a few milliseconds of every command's start);
# type checkers read a module-level TYPE_CHECKING as typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:  # the names as type checkers see them; at run time they load on first use
    from pyvxlan.core.config import VtepConfig
    from pyvxlan.core.control import VtepControl
    from pyvxlan.core.entries import FdbEntry, FdbState, Neighbour
    from pyvxlan.core.events import (
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
    from pyvxlan.core.fdb import ForwardingDatabase
    from pyvxlan.core.vtep import Vtep
    from pyvxlan.errors import (
        BackendError,
        ClockError,
        ConfigError,
        DecodeError,
        FdbBatchError,
        FdbEntryExists,
        FdbEntryNotFound,
        FdbError,
        FdbFull,
        FdbOperationNotSupported,
        LabKeyError,
        MissingIFlagError,
        NeighbourError,
        NeighbourExists,
        NeighbourNotFound,
        NotVxlanError,
        PrivilegeError,
        ReservedBitsError,
        TruncatedError,
        VxlanError,
    )
    from pyvxlan.wire.frame import (
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
    from pyvxlan.wire.header import GpeHeader, GpeNextProtocol, GroupPolicy, VxlanHeader

__version__ = "0.1.0"

__all__ = [
    "IANA_SOURCE_PORTS",
    "LINUX_SOURCE_PORTS",
    "LINUX_VXLAN_PORT",
    "VXLAN_GPE_PORT",
    "VXLAN_PORT",
    "BackendError",
    "ClockError",
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
    "LabKeyError",
    "LeaveGroup",
    "MissingIFlagError",
    "Neighbour",
    "NeighbourError",
    "NeighbourExists",
    "NeighbourNotFound",
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

# Every public name loads its module on first use: ``import pyvxlan`` (and so every ``pyvxlan``
# command's start) costs next to nothing, and a Ctrl-C in the first tenth of a second reaches the
# CLI's handlers instead of a half-imported package. Submodules with optional or heavier
# dependencies load the same way: ``pyvxlan.strategies`` needs hypothesis (the ``testing`` extra)
# and ``pyvxlan.kernel`` needs pyroute2 (``kernel``).
_HOMES: dict[str, str] = {
    "VtepConfig": "pyvxlan.core.config",
    "VtepControl": "pyvxlan.core.control",
    "FdbEntry": "pyvxlan.core.entries",
    "FdbState": "pyvxlan.core.entries",
    "Neighbour": "pyvxlan.core.entries",
    "BackendError": "pyvxlan.errors",
    "ClockError": "pyvxlan.errors",
    "ConfigError": "pyvxlan.errors",
    "LabKeyError": "pyvxlan.errors",
    "NeighbourError": "pyvxlan.errors",
    "NeighbourExists": "pyvxlan.errors",
    "NeighbourNotFound": "pyvxlan.errors",
    "DecodeError": "pyvxlan.errors",
    "FdbBatchError": "pyvxlan.errors",
    "FdbEntryExists": "pyvxlan.errors",
    "FdbEntryNotFound": "pyvxlan.errors",
    "FdbError": "pyvxlan.errors",
    "FdbFull": "pyvxlan.errors",
    "FdbOperationNotSupported": "pyvxlan.errors",
    "MissingIFlagError": "pyvxlan.errors",
    "NotVxlanError": "pyvxlan.errors",
    "PrivilegeError": "pyvxlan.errors",
    "ReservedBitsError": "pyvxlan.errors",
    "TruncatedError": "pyvxlan.errors",
    "VxlanError": "pyvxlan.errors",
    "DeliverFrame": "pyvxlan.core.events",
    "Direction": "pyvxlan.core.events",
    "Dropped": "pyvxlan.core.events",
    "DropReason": "pyvxlan.core.events",
    "EntryExpired": "pyvxlan.core.events",
    "EntryLearned": "pyvxlan.core.events",
    "EntryMigrated": "pyvxlan.core.events",
    "JoinGroup": "pyvxlan.core.events",
    "L2Miss": "pyvxlan.core.events",
    "L3Miss": "pyvxlan.core.events",
    "LeaveGroup": "pyvxlan.core.events",
    "SendDatagram": "pyvxlan.core.events",
    "VtepCounters": "pyvxlan.core.events",
    "ForwardingDatabase": "pyvxlan.core.fdb",
    "IANA_SOURCE_PORTS": "pyvxlan.wire.frame",
    "LINUX_SOURCE_PORTS": "pyvxlan.wire.frame",
    "LINUX_VXLAN_PORT": "pyvxlan.wire.frame",
    "VXLAN_GPE_PORT": "pyvxlan.wire.frame",
    "VXLAN_PORT": "pyvxlan.wire.frame",
    "Decapsulated": "pyvxlan.wire.frame",
    "decapsulate": "pyvxlan.wire.frame",
    "decapsulate_payload": "pyvxlan.wire.frame",
    "encapsulate": "pyvxlan.wire.frame",
    "flow_source_port": "pyvxlan.wire.frame",
    "GpeHeader": "pyvxlan.wire.header",
    "GpeNextProtocol": "pyvxlan.wire.header",
    "GroupPolicy": "pyvxlan.wire.header",
    "VxlanHeader": "pyvxlan.wire.header",
    "Vtep": "pyvxlan.core.vtep",
}
_LAZY_SUBMODULES = frozenset(
    {
        "pcap",
        "strategies",
        "testing",
        "sim",
        "kernel",
        "topology",
        "dpkt_vxlan",
        "memory",
        "replay",
        "scenario",
        "lab",
        "wire",
        "core",
    }
)


def __getattr__(name: str) -> object:
    import importlib

    if name in _HOMES:
        # The first public name used loads them all, as plain attributes from then on: vars(pyvxlan)
        # is then the whole API (eval(repr(value), vars(pyvxlan)) rebuilds any value).
        for each, home in _HOMES.items():
            globals()[each] = getattr(importlib.import_module(home), each)
        return globals()[name]
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"pyvxlan.{name}")
    raise AttributeError(f"module 'pyvxlan' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The API only: not the helpers above, nor ``annotations`` from the __future__ import.
    return sorted([*__all__, "__version__"])
