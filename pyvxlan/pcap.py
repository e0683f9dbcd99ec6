"""Capture files: write Ethernet pcaps, read pcap and pcapng as VXLAN packets.

The writer produces classic microsecond pcap files that tcpdump, tshark and Wireshark open; the same
records always give the same bytes. The reader (:func:`read`) is added below.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Iterable
from types import TracebackType
from typing import IO, Final

from pyvxlan.errors import ConfigError

__all__ = [
    "ETHERNET",
    "LINUX_SLL",
    "LINUX_SLL2",
    "LinkType",
    "PcapWriter",
    "write",
]


class LinkType(enum.IntEnum):
    """The link-layer header types (tcpdump.org/linktypes.html) this module reads or writes."""

    ETHERNET = 1
    LINUX_SLL = 113  # "Linux cooked" v1: what `tcpdump -i any` wrote before libpcap 1.10
    LINUX_SLL2 = 276  # "Linux cooked" v2: `tcpdump -i any` with libpcap >= 1.10


ETHERNET: Final = LinkType.ETHERNET
LINUX_SLL: Final = LinkType.LINUX_SLL
LINUX_SLL2: Final = LinkType.LINUX_SLL2

PCAP_MAGIC_USEC: Final = 0xA1B2C3D4
PCAP_MAGIC_NSEC: Final = 0xA1B23C4D
_GLOBAL_LE: Final = struct.Struct("<IHHiIII")
_RECORD_LE: Final = struct.Struct("<IIII")


def _usec(ts: float) -> tuple[int, int]:
    # Round once to whole microseconds, then split with integers: 1.9999999 must not give usec=1000000.
    total = round(ts * 1_000_000)
    if total < 0:
        raise ConfigError("ts", f"must not be negative, got {ts!r}")
    return divmod(total, 1_000_000)


class PcapWriter:
    """Write frames to a classic (microsecond, little-endian) pcap file.

    ``target`` is a path (the file is created or truncated) or a binary file object opened for
    writing (left open on :meth:`close`). Frames longer than ``snaplen`` are cut to ``snaplen``
    bytes, and the record keeps the original length, as tcpdump does.

    >>> import io
    >>> buf = io.BytesIO()
    >>> with PcapWriter(buf) as w:
    ...     w.write(bytes(60), ts=1.5)
    >>> len(buf.getvalue())  # 24-byte file header, 16-byte record header, 60 bytes
    100
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[bytes],
        *,
        linktype: LinkType | int = ETHERNET,
        snaplen: int = 262144,
    ) -> None:
        if not 0 < snaplen <= 0x7FFFFFFF:
            raise ConfigError("snaplen", f"must be in 1..2147483647, got {snaplen}")
        if not 0 <= int(linktype) <= 0xFFFF:
            raise ConfigError("linktype", f"must be in 0..65535, got {int(linktype)}")
        self._snaplen = snaplen
        self.count = 0
        if isinstance(target, (str, os.PathLike)):
            self._file: IO[bytes] = open(target, "wb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._closed = False
        self._file.write(_GLOBAL_LE.pack(PCAP_MAGIC_USEC, 2, 4, 0, 0, snaplen, int(linktype)))

    def write(self, frame: bytes | bytearray | memoryview, ts: float) -> None:
        """Append one record: ``frame`` captured at ``ts`` (seconds since the epoch, >= 0)."""
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        sec, usec = _usec(ts)
        if sec > 0xFFFFFFFF:
            raise ConfigError("ts", f"{ts!r} does not fit a 32-bit pcap timestamp")
        n = len(frame)
        cap = min(n, self._snaplen)
        f = self._file
        f.write(_RECORD_LE.pack(sec, usec, cap, n))
        f.write(frame if cap == n else bytes(frame[:cap]))
        self.count += 1

    def close(self) -> None:
        """Flush, and close the file if this writer opened it."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write(
    target: str | os.PathLike[str] | IO[bytes],
    records: Iterable[tuple[float, bytes | bytearray | memoryview]],
    *,
    linktype: LinkType | int = ETHERNET,
    snaplen: int = 262144,
) -> int:
    """Write ``(timestamp, frame)`` records to a pcap file; returns how many were written.

    >>> import io
    >>> write(io.BytesIO(), [(0.0, bytes(14)), (0.5, bytes(14))])
    2
    """
    with PcapWriter(target, linktype=linktype, snaplen=snaplen) as w:
        for ts, frame in records:
            w.write(frame, ts)
        return w.count
