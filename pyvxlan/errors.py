"""The exceptions pyvxlan raises on purpose.

Every one of them derives from :class:`VxlanError`, so ``except pyvxlan.VxlanError`` catches
everything the library raises deliberately and nothing else.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ClockError",
    "ConfigError",
    "DecodeError",
    "FdbBatchError",
    "FdbEntryExists",
    "FdbEntryNotFound",
    "FdbError",
    "FdbFull",
    "FdbOperationNotSupported",
    "LabKeyError",
    "MissingIFlagError",
    "NeighbourError",
    "NeighbourExists",
    "NeighbourNotFound",
    "NotVxlanError",
    "PrivilegeError",
    "ReservedBitsError",
    "TruncatedError",
    "VxlanError",
]


class VxlanError(Exception):
    """Base of every error pyvxlan raises on purpose."""


class DecodeError(VxlanError, ValueError):
    """Bytes that cannot be decoded.

    ``layer`` names the protocol layer (``"ethernet"``, ``"ipv4"``, ``"ipv6"``, ``"udp"``,
    ``"vxlan"``, ``"vxlan-gpe"``, ``"pcap"``) and ``offset`` the byte offset, counted from the start
    of the buffer handed to the decoder, where the problem was found.

    >>> str(DecodeError("vxlan", 42, "need 8 bytes, got 5"))
    'vxlan at offset 42: need 8 bytes, got 5'
    """

    def __init__(self, layer: str, offset: int, reason: str) -> None:
        super().__init__(f"{layer} at offset {offset}: {reason}")
        self.layer = layer
        self.offset = offset
        self.reason = reason


class TruncatedError(DecodeError):
    """The buffer ends before the layer does."""


class NotVxlanError(DecodeError):
    """A well-formed packet that simply is not VXLAN (not IP, not UDP, or another UDP port)."""


class MissingIFlagError(DecodeError):
    """Strict decoding: the I flag (VNI valid) is clear; Linux drops such packets."""


class ReservedBitsError(DecodeError):
    """Strict decoding: a reserved bit is set; Linux drops such packets (rx_frame_errors)."""


class ConfigError(VxlanError, ValueError):
    """A setting that is invalid; ``field`` names it.

    >>> str(ConfigError("vni", "must be in 0..16777215, got 16777216"))
    'vni: must be in 0..16777215, got 16777216'
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class FdbError(VxlanError):
    """Base of the forwarding-database errors (the netlink errnos of Linux's vxlan FDB)."""


class FdbEntryExists(FdbError):
    """``add`` of an entry that exists (Linux: EEXIST with NLM_F_EXCL)."""


class FdbFull(FdbError):
    """The table holds ``max_entries`` entries (Linux: ENOSPC, ``maxaddress``)."""


class FdbEntryNotFound(FdbError):
    """``delete`` or ``replace`` of an entry that does not exist (Linux: ENOENT)."""


class FdbOperationNotSupported(FdbError):
    """An operation Linux refuses for this kind of entry (EOPNOTSUPP), e.g. replacing all-zeros."""


class FdbBatchError(FdbError):
    """A bulk FDB call failed part-way: ``applied`` entries (the first ones) took effect.

    ``index`` is the position of the entry that failed and ``__cause__`` the error it raised.
    """

    def __init__(self, applied: int, index: int, reason: str) -> None:
        super().__init__(f"entry {index} failed after {applied} applied: {reason}")
        self.applied = applied
        self.index = index
        self.reason = reason


class PrivilegeError(VxlanError, PermissionError):
    """The operation needs root or CAP_NET_ADMIN (network namespaces, vxlan devices)."""


class NeighbourError(VxlanError):
    """A neighbour-table (proxy ARP/ND) operation failed: not an FDB error, the two tables differ.

    Its two kinds are :class:`NeighbourExists` and :class:`NeighbourNotFound`, Linux's EEXIST and ENOENT.
    """


class NeighbourExists(NeighbourError):
    """``neighbour_add`` of an address that has an entry (Linux: EEXIST, as ``ip neigh add`` says)."""


class NeighbourNotFound(NeighbourError):
    """``neighbour_delete`` of an address that has no entry (Linux: ENOENT)."""


class ClockError(VxlanError, ValueError):
    """A time handed to the core that is earlier than one it already saw: time never goes back.

    >>> str(ClockError(5.0, 4.0))
    'time went backwards: 4.0 after 5.0'
    """

    def __init__(self, last: float, now: float) -> None:
        super().__init__(f"time went backwards: {now} after {last}")
        self.last = last
        self.now = now


class BackendError(VxlanError, OSError):
    """The backend (netlink, a namespace, a socket) refused an operation; ``errno`` says why.

    Not a :class:`ConfigError`: the settings may be valid and the kernel still refuse them (a
    missing module, a name in use, an older kernel without the attribute).

    >>> e = BackendError(17, "RTM_NEWLINK vxlan10", "File exists")
    >>> (e.errno, str(e))
    (17, 'RTM_NEWLINK vxlan10: File exists (errno 17)')
    """

    def __init__(self, errno: int, operation: str, reason: str) -> None:
        super().__init__(errno, f"{operation}: {reason} (errno {errno})")
        self.operation = operation
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[1])


class LabKeyError(VxlanError, KeyError):
    """A lab lookup of a name it does not have (a host, a guest, a VTEP); ``what`` and ``name`` say which.

    A :class:`KeyError` too, so ``except KeyError`` written against the ``Lab`` protocol still works.

    >>> str(LabKeyError("guest", "g9", ["g1", "g2"]))
    "no guest 'g9' (there are: g1, g2)"
    """

    def __init__(self, what: str, name: object, known: list[str] | None = None) -> None:
        there = f" (there are: {', '.join(known)})" if known else ""
        super().__init__(f"no {what} {name!r}{there}")
        self.what = what
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])
