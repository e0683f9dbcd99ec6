"""Capture files: write Ethernet pcaps, read pcap and pcapng as VXLAN packets.

The writer produces classic microsecond pcap files that tcpdump, tshark and Wireshark open; the same
records always give the same bytes. The reader takes classic pcap (either byte order, microsecond or
nanosecond) and pcapng (section, interface, enhanced, simple and obsolete packet blocks; each
interface with its own link type and timestamp resolution), with Ethernet, Linux cooked (SLL, SLL2:
what ``tcpdump -i any`` writes) and raw IP link types, and yields every VXLAN packet decoded.
Packets that are not VXLAN, or are malformed, are counted in a :class:`PcapStats` and skipped;
only a file that is not a capture (or is cut inside a record) raises
:class:`~pyvxlan.DecodeError` with layer ``"pcap"``.
"""

from __future__ import annotations

import enum
import errno
import io
import math
import os
import select
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Final

from pyvxlan.errors import (
    ConfigError,
    DecodeError,
    MissingIFlagError,
    NotVxlanError,
    ReservedBitsError,
    TruncatedError,
)
from pyvxlan.wire.frame import LINUX_VXLAN_PORT, VXLAN_GPE_PORT, VXLAN_PORT, Decapsulated, decapsulate

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


class LinkType(enum.IntEnum):
    """The link-layer header types (tcpdump.org/linktypes.html) this module reads or writes."""

    ETHERNET = 1
    LINUX_SLL = 113  # "Linux cooked" v1: what `tcpdump -i any` wrote before libpcap 1.10
    LINUX_SLL2 = 276  # "Linux cooked" v2: `tcpdump -i any` with libpcap >= 1.10
    RAW = 101  # bare IPv4 or IPv6 packets, version in the first nibble
    IPV4 = 228
    IPV6 = 229

    @classmethod
    def _missing_(cls, value: object) -> LinkType:
        # Enum raises an exception from here as it is (a ConfigError is a ValueError too).
        known = ", ".join(str(int(t)) for t in sorted(cls))
        raise ConfigError("linktype", f"{value!r} is not a link type this module knows ({known})")


ETHERNET: Final = LinkType.ETHERNET
LINUX_SLL: Final = LinkType.LINUX_SLL
LINUX_SLL2: Final = LinkType.LINUX_SLL2

PCAP_MAGIC_USEC: Final = 0xA1B2C3D4
PCAP_MAGIC_NSEC: Final = 0xA1B23C4D
_GLOBAL_LE: Final = struct.Struct("<IHHiIII")
_RECORD_LE: Final = struct.Struct("<IIII")


def _usec(ts: float) -> tuple[int, int]:
    if isinstance(ts, bool) or not isinstance(ts, (int, float)):  # bool is an int to Python, not a time
        raise ConfigError("ts", f"must be a number of seconds (int or float), got {type(ts).__name__}")
    if not math.isfinite(ts):
        raise ConfigError("ts", f"must be a finite number of seconds, got {ts!r}")
    if ts >= 1 << 32:  # a huge finite float times 1e6 is inf, which round() cannot take
        raise ConfigError("ts", f"{ts!r} does not fit a 32-bit pcap timestamp")
    if ts <= -1:  # likewise for a huge negative one; above -1 the rounding below decides
        raise ConfigError("ts", f"must not be negative, got {ts!r}")
    # Round once to whole microseconds, then split with integers: 1.9999999 must not give usec=1000000.
    total = round(ts * 1_000_000)
    if total < 0:
        raise ConfigError("ts", f"must not be negative, got {ts!r}")
    return divmod(total, 1_000_000)


def _put(f: IO[bytes], data: bytes | bytearray | memoryview) -> None:
    # A raw file may take fewer bytes than it is given; a capture with a hole in it is garbage.
    try:
        n = f.write(data)
    except ValueError:
        if getattr(f, "closed", False) is True:  # io's "I/O operation on closed file."
            raise ConfigError("target", "the file object is closed") from None
        raise
    if n is not None and n != len(data):
        raise OSError(errno.EIO, f"short write to the pcap file: {n} of {len(data)} bytes written")


def _int_setting(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``low..high`` (bool refused: ``True`` is not a length), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"must be an int in {low}..{high}, got {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(name, f"must be in {low}..{high}, got {value}")
    return int(value)


_BYTES_TYPES: Final = (bytes, bytearray, memoryview)


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
        snaplen = _int_setting("snaplen", snaplen, 1, 0x7FFFFFFF)
        linktype = _int_setting("linktype", linktype, 0, 0xFFFF)
        if not isinstance(target, (str, os.PathLike)) and not callable(getattr(target, "write", None)):
            raise ConfigError("target", f"must be a path or a binary file object, got {type(target).__name__}")
        if isinstance(target, io.TextIOBase):
            raise ConfigError("target", f"must be a binary file object, got a text one ({type(target).__name__})")
        self._snaplen = snaplen
        self.count = 0
        if isinstance(target, (str, os.PathLike)):
            self._file: IO[bytes] = open(target, "wb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._file = target
            self._owned = False
        self._closed = False
        _put(self._file, _GLOBAL_LE.pack(PCAP_MAGIC_USEC, 2, 4, 0, 0, snaplen, int(linktype)))

    def write(self, frame: bytes | bytearray | memoryview, ts: float) -> None:
        """Append one record: ``frame`` captured at ``ts`` (seconds since the epoch, >= 0)."""
        if self._closed:
            raise ConfigError("writer", "write after close()")
        if not isinstance(frame, _BYTES_TYPES):
            raise ConfigError("frame", f"must be bytes, bytearray or memoryview, got {type(frame).__name__}")
        sec, usec = _usec(ts)
        if sec > 0xFFFFFFFF:
            raise ConfigError("ts", f"{ts!r} does not fit a 32-bit pcap timestamp")
        if type(frame) is memoryview and (frame.itemsize != 1 or not frame.c_contiguous):
            frame = frame.tobytes()  # its length in bytes, not in items
        n = len(frame)
        cap = min(n, self._snaplen)
        f = self._file
        _put(f, _RECORD_LE.pack(sec, usec, cap, n))
        _put(f, frame if cap == n else bytes(frame[:cap]))
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
    try:
        items = iter(records)
    except TypeError:
        raise ConfigError(
            "records", f"must be an iterable of (timestamp, frame), got {type(records).__name__}"
        ) from None
    with PcapWriter(target, linktype=linktype, snaplen=snaplen) as w:
        for record in items:
            if not isinstance(record, (tuple, list)) or len(record) != 2:
                raise ConfigError("records", f"record {w.count} is not a (timestamp, frame) pair: {record!r:.60}")
            ts, frame = record
            w.write(frame, ts)
        return w.count


# --- reading ---------------------------------------------------------------------------------

PCAPNG_SHB: Final = 0x0A0D0D0A
PCAPNG_BOM: Final = 0x1A2B3C4D
_CHUNK: Final = 1 << 20
# Larger than any real frame (BIG TCP goes to 512 KiB); a bigger length means the file is garbage.
_MAX_RECORD: Final = 1 << 26
# Interfaces one pcapng section may describe. The obsolete packet block numbers them in 16 bits; a
# host with this many is rare, and a file with millions is an attack on memory.
MAX_INTERFACES: Final = 1 << 16
# Timestamps a reader hands out: those a datetime holds (years 1 to 9999). A pcapng interface with
# if_tsresol 0 counts whole seconds in 64 bits, far beyond what time.gmtime and datetime accept.
_TS_MIN: Final = -62135596800.0
_TS_MAX: Final = 253402300800.0
_ETH_P_IPV4: Final = b"\x08\x00"
_ETH_P_IPV6: Final = b"\x86\xdd"
_ZERO_MAC: Final = bytes(6)


@dataclass(slots=True)
class PcapStats:
    """Counts kept while reading a capture (mutable: :func:`read` updates it as it goes).

    ``reasons`` counts the packets that were skipped by a short reason such as ``"udp: not VXLAN"``
    or ``"ipv4: truncated"``; ``examples`` keeps the first full error message of each reason.
    """

    packets: int = 0
    vxlan: int = 0
    not_vxlan: int = 0
    malformed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("packets", "vxlan", "not_vxlan", "malformed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(name, f"must be a count (an int >= 0), got {value!r:.60}")
        for name in ("reasons", "examples"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(name, f"must be a dict, got {type(getattr(self, name)).__name__}")

    def count_error(self, exc: DecodeError) -> None:
        """Count a packet that :func:`~pyvxlan.decapsulate` refused."""
        if isinstance(exc, NotVxlanError):
            self.not_vxlan += 1
            kind = "not VXLAN"
        else:
            self.malformed += 1
            if isinstance(exc, TruncatedError):
                kind = "truncated"
            elif isinstance(exc, MissingIFlagError):
                kind = "I flag clear"
            elif isinstance(exc, ReservedBitsError):
                kind = "reserved bits set"
            else:
                kind = "invalid"
        key = f"{exc.layer}: {kind}"
        n = self.reasons.get(key)
        if n is None:
            self.reasons[key] = 1
            self.examples[key] = str(exc)
        else:
            self.reasons[key] = n + 1


class _Source:
    """A binary file read in large chunks; records are offsets into the chunks (no copy).

    A read returns what the file has ready (``read1``, or one ``read`` of a raw file), so records
    from a pipe reach the reader as they arrive instead of when a whole chunk has come. ``idle``,
    when given, is called before a read that would block (a pipe or socket with nothing ready):
    the moment for a streaming consumer to flush what it holds.
    """

    __slots__ = ("_fd", "_read", "buf", "eof", "file", "idle", "offset")

    def __init__(self, file: IO[bytes], idle: Callable[[], object] | None = None) -> None:
        self.file = file
        self.buf = b""
        self.offset = 0  # file offset of buf[0]
        self.eof = False
        self.idle = idle
        read1 = getattr(file, "read1", None)
        self._read: Callable[[int], object] = read1 if callable(read1) else file.read
        self._fd = -1  # polled before each read when there is an idle callback and it can block
        if idle is not None:
            try:
                fd = file.fileno()
                if not stat.S_ISREG(os.fstat(fd).st_mode):  # a regular file never makes a reader wait
                    self._fd = fd
            except (OSError, ValueError, AttributeError):
                pass  # no descriptor (BytesIO): reads do not block

    def fill(self, pos: int, need: int) -> int:
        """Make ``need`` bytes available from ``pos``; returns the new position of that byte (0)."""
        rest = self.buf[pos:]
        self.offset += pos
        parts = [rest]
        have = len(rest)
        while have < need and not self.eof:
            if self._fd >= 0 and self.idle is not None and not select.select([self._fd], [], [], 0)[0]:
                self.idle()
            data = self._read(max(_CHUNK, need - have))
            if data is None:  # a non-blocking file with nothing ready
                select.select([self._fd if self._fd >= 0 else self.file], [], [])
                continue
            if not isinstance(data, (bytes, bytearray)):
                raise ConfigError("source", f"must be opened in binary mode: read() gave {type(data).__name__}")
            if not data:
                self.eof = True
                break
            parts.append(bytes(data))
            have += len(data)
        self.buf = b"".join(parts) if len(parts) > 1 else rest
        return 0


def _synth(sll_addr: bytes, proto: bytes) -> bytes:
    return _ZERO_MAC + (sll_addr if len(sll_addr) == 6 else _ZERO_MAC) + proto


def _to_ethernet(linktype: int, data: memoryview) -> memoryview | bytes | None:
    """An Ethernet frame equivalent to ``data`` of ``linktype``; ``None`` when the type is unknown.

    Linux cooked captures carry the protocol type and the sender's link address but no Ethernet
    header: a header is synthesized (destination 00:00:00:00:00:00, source the sender's MAC when it
    has 6 bytes, else zeros) so that :func:`~pyvxlan.decapsulate` reads them like any frame.
    """
    if linktype == 1:
        return data
    if linktype == 113:  # SLL: pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
        if len(data) < 16:
            raise TruncatedError("sll", 0, f"need 16 bytes, got {len(data)}")
        halen = (data[4] << 8) | data[5]
        return _synth(bytes(data[6 : 6 + min(halen, 8)]), bytes(data[14:16])) + data[16:]
    if linktype == 276:  # SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
        if len(data) < 20:
            raise TruncatedError("sll2", 0, f"need 20 bytes, got {len(data)}")
        return _synth(bytes(data[12 : 12 + min(data[11], 8)]), bytes(data[0:2])) + data[20:]
    if linktype in (101, 228, 229):
        if not data:
            raise TruncatedError("ip", 0, "need 1 byte, got 0")
        version = data[0] >> 4
        proto = _ETH_P_IPV4 if version == 4 else _ETH_P_IPV6 if version == 6 else None
        if proto is None:
            raise DecodeError("ip", 0, f"version {version} is neither 4 nor 6")
        return _ZERO_MAC + _ZERO_MAC + proto + data
    return None


def read(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT),
    gpe_ports: Collection[int] = (VXLAN_GPE_PORT,),
    strict: bool = False,
    stats: PcapStats | None = None,
) -> Iterator[tuple[float, Decapsulated]]:
    """Yield ``(timestamp, Decapsulated)`` for every VXLAN packet of a pcap or pcapng capture.

    ``source`` is a path or a binary file object (not closed). ``ports`` and ``gpe_ports`` are the
    UDP destination ports read as VXLAN and VXLAN-GPE; ``strict`` applies Linux's receive rules to
    the header (a packet that breaks them counts as malformed). Pass a :class:`PcapStats` to learn
    how many packets were skipped and why. Timestamps are seconds since the epoch (pcapng simple
    packet blocks carry none: they read as 0.0).

    >>> import io
    >>> from pyvxlan.wire.frame import encapsulate
    >>> buf = io.BytesIO()
    >>> write(buf, [(1.25, encapsulate(bytes(14), vni=7, src="198.51.100.1", dst="198.51.100.2"))])
    1
    >>> _ = buf.seek(0)
    >>> [(ts, d.header.vni) for ts, d in read(buf)]
    [(1.25, 7)]
    """
    # Checked here, at the call, not at the first packet: read() is not a generator itself.
    _check_source(source)
    ports = _port_set("ports", ports)
    gpe_ports = _port_set("gpe_ports", gpe_ports)
    if not isinstance(strict, bool):
        raise ConfigError("strict", f"must be a bool, got {type(strict).__name__}")
    if stats is None:
        stats = PcapStats()
    elif not isinstance(stats, PcapStats):
        raise ConfigError("stats", f"must be a PcapStats or None, got {type(stats).__name__}")
    return _read_path_or_file(source, ports, gpe_ports, strict, stats)


def _read_path_or_file(
    source: str | os.PathLike[str] | IO[bytes],
    ports: Collection[int],
    gpe_ports: Collection[int],
    strict: bool,
    stats: PcapStats,
) -> Iterator[tuple[float, Decapsulated]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield from _read_file(f, ports, gpe_ports, strict, stats)
    else:
        yield from _read_file(source, ports, gpe_ports, strict, stats)


def _check_source(source: object) -> None:
    if not isinstance(source, (str, os.PathLike)) and not callable(getattr(source, "read", None)):
        raise ConfigError("source", f"must be a path or a binary file object, got {type(source).__name__}")


def _port_set(name: str, ports: object) -> frozenset[int]:
    if isinstance(ports, (str, bytes)) or not isinstance(ports, Collection):
        raise ConfigError(name, f"must be a collection of UDP ports, got {type(ports).__name__}")
    for port in ports:
        _int_setting(name, port, 1, 0xFFFF)
    return frozenset(ports)


def raw_records(
    source: IO[bytes], *, idle: Callable[[], object] | None = None
) -> Iterator[tuple[float, int, bytes, int, int, int]]:
    """The records of an open capture file as ``(timestamp, linktype, buffer, start, end, wire_length)``.

    The captured bytes are ``buffer[start:end]``: ``buffer`` is a chunk of the file shared by
    many records, so nothing is copied per record. ``wire_length`` is the packet's length on the
    wire, more than ``end - start`` when the capture's snap length cut it. This is the low-level
    loop under :func:`read`, for tools that want every packet (VXLAN or not) or their own fast path.

    A pipe streams: each record is yielded as soon as its bytes have arrived (``tcpdump -U -w - |``),
    and ``idle`` is called whenever the next read would wait for the writer, so that a consumer
    can show what it has before it blocks.
    """
    _check_source(source)
    if isinstance(source, (str, os.PathLike)):
        raise ConfigError("source", "must be an open binary file object (read() takes a path)")
    if idle is not None and not callable(idle):
        raise ConfigError("idle", f"must be callable or None, got {type(idle).__name__}")
    src = _Source(source, idle)
    src.fill(0, 24)
    if len(src.buf) < 4:
        raise TruncatedError("pcap", 0, f"file header needs 24 bytes, got {len(src.buf)}")
    magic_le = int.from_bytes(src.buf[:4], "little")
    if magic_le == PCAPNG_SHB:
        # Checked here, not on the first record, so that a bad file fails before any output.
        if len(src.buf) < 12:
            raise TruncatedError("pcap", 0, f"pcapng section header needs 12 bytes, got {len(src.buf)}")
        if src.buf[8:12] not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            raise DecodeError("pcap", 8, f"pcapng byte-order magic {src.buf[8:12].hex()} is invalid")
        return _pcapng_records(src)
    if magic_le in (PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC) or int.from_bytes(src.buf[:4], "big") in (
        PCAP_MAGIC_USEC,
        PCAP_MAGIC_NSEC,
    ):
        return _pcap_records(src, *_pcap_header(src.buf))
    raise DecodeError("pcap", 0, f"not a pcap or pcapng file (magic {src.buf[:4].hex()})")


def frame_of(linktype: int, buf: bytes, start: int, end: int, stats: PcapStats) -> memoryview | bytes | None:
    """The Ethernet frame of a record (see :func:`raw_records`), or ``None`` (counted in ``stats``)."""
    try:
        view = memoryview(buf)[start:end]
    except TypeError:
        # Found out only when slicing fails: the checks cost nothing on the per-packet path.
        _check_record_args(buf, start, end)
        raise
    if linktype == 1:
        return view
    if not isinstance(stats, PcapStats):
        raise ConfigError("stats", f"must be a PcapStats, got {type(stats).__name__}")
    try:
        frame = _to_ethernet(linktype, view)
    except DecodeError as exc:
        stats.count_error(exc)
        return None
    if frame is None:
        stats.not_vxlan += 1
        key = f"linktype {linktype}: not supported"
        stats.reasons[key] = stats.reasons.get(key, 0) + 1
        stats.examples.setdefault(key, f"link type {linktype} is not Ethernet, Linux cooked or raw IP")
    return frame


def _check_record_args(buf: object, start: object, end: object) -> None:
    if not isinstance(buf, _BYTES_TYPES):
        raise ConfigError("buf", f"must be bytes, bytearray or memoryview, got {type(buf).__name__}")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"must be an int, got {type(value).__name__}")


def _read_file(
    f: IO[bytes], ports: Collection[int], gpe_ports: Collection[int], strict: bool, stats: PcapStats
) -> Iterator[tuple[float, Decapsulated]]:
    for ts, linktype, buf, start, end, wirelen in raw_records(f):
        stats.packets += 1
        if linktype == 1:
            frame: memoryview | bytes = memoryview(buf)[start:end]
        else:
            cooked = frame_of(linktype, buf, start, end, stats)
            if cooked is None:
                continue
            frame = cooked
        # Cut by the snap length: the wire length of the Ethernet frame decapsulate sees (a cooked
        # header's length differs from Ethernet's).
        wire = wirelen + len(frame) - (end - start) if wirelen > end - start else 0
        try:
            d = decapsulate(frame, ports=ports, gpe_ports=gpe_ports, strict=strict, wire_length=wire)
        except DecodeError as exc:
            stats.count_error(exc)
            continue
        stats.vxlan += 1
        yield ts, d


def _pcap_header(buf: bytes) -> tuple[str, int, int]:
    """Byte order, timestamp units per second and link type of a classic pcap file header."""
    if len(buf) < 24:
        raise TruncatedError("pcap", 0, f"file header needs 24 bytes, got {len(buf)}")
    order = "<" if int.from_bytes(buf[:4], "little") in (PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC) else ">"
    magic, _major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack_from(order + "IHHiIII", buf, 0)
    scale = 1_000_000_000 if magic == PCAP_MAGIC_NSEC else 1_000_000
    linktype = network & 0x0FFFFFFF  # the upper bits are FCS flags (pcap-linktype(7))
    if linktype not in _SUPPORTED:
        raise DecodeError("pcap", 20, f"link type {linktype} is not supported (Ethernet, Linux SLL/SLL2, raw IP)")
    return order, scale, linktype


def _pcap_records(
    src: _Source, order: str, scale: int, linktype: int
) -> Iterator[tuple[float, int, bytes, int, int, int]]:
    buf = src.buf
    unpack = struct.Struct(order + "IIII").unpack_from
    pos = 24
    n = len(buf)
    while True:
        if n - pos < 16:
            pos = src.fill(pos, 16)
            buf = src.buf
            n = len(buf)
            if n == 0:
                return
            if n < 16:
                raise TruncatedError("pcap", src.offset, f"record header needs 16 bytes, got {n}")
        sec, frac, caplen, wirelen = unpack(buf, pos)
        if caplen > _MAX_RECORD:
            raise DecodeError("pcap", src.offset + pos, f"record length {caplen} is not plausible")
        end = pos + 16 + caplen
        if end > n:
            pos = src.fill(pos, 16 + caplen)
            buf = src.buf
            n = len(buf)
            end = 16 + caplen
            if end > n:
                raise TruncatedError("pcap", src.offset, f"record of {caplen} bytes is cut after {n - 16} bytes")
        yield sec + frac / scale, linktype, buf, pos + 16, end, wirelen
        pos = end


_SUPPORTED: Final = frozenset(int(t) for t in LinkType)


def _pcapng_records(src: _Source) -> Iterator[tuple[float, int, bytes, int, int, int]]:
    pos = 0
    order = "<"
    u32 = struct.Struct("<I").unpack_from
    # per interface: (linktype, timestamp units per second, offset in seconds, snaplen); the same
    # tuple is shared by the interfaces that are alike, and there are at most MAX_INTERFACES.
    interfaces: list[tuple[int, int, int, int]] = []
    alike: dict[tuple[int, int, int, int], tuple[int, int, int, int]] = {}
    while True:
        if len(src.buf) - pos < 12:
            pos = src.fill(pos, 12)
            if not src.buf:
                return
            if len(src.buf) < 12:
                raise TruncatedError("pcap", src.offset, f"block header needs 12 bytes, got {len(src.buf)}")
        buf = src.buf
        btype_le = int.from_bytes(buf[pos : pos + 4], "little")
        if btype_le == PCAPNG_SHB:
            bom = buf[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise DecodeError("pcap", src.offset + pos + 8, f"pcapng byte-order magic {bom.hex()} is invalid")
            u32 = struct.Struct(order + "I").unpack_from
            interfaces = []
            alike = {}
        (btype,) = u32(buf, pos)
        (blen,) = u32(buf, pos + 4)
        if blen < 12 or blen % 4 or blen > _MAX_RECORD:
            raise DecodeError("pcap", src.offset + pos + 4, f"pcapng block length {blen} is invalid")
        if len(buf) - pos < blen:
            pos = src.fill(pos, blen)
            buf = src.buf
            if len(buf) < blen:
                raise TruncatedError("pcap", src.offset, f"pcapng block of {blen} bytes is cut after {len(buf)} bytes")
        body = pos + 8
        if btype == 1:  # interface description
            if blen < 20:
                raise DecodeError("pcap", src.offset + pos, "pcapng interface block is too short")
            if len(interfaces) >= MAX_INTERFACES:
                raise DecodeError(
                    "pcap",
                    src.offset + pos,
                    f"pcapng interface block: the section describes more than {MAX_INTERFACES} interfaces",
                )
            linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, body)
            unit, offset = _idb_options(buf, body + 8, pos + blen - 4, order, src.offset)
            iface = (linktype, unit, offset, snaplen)
            interfaces.append(alike.setdefault(iface, iface))
        elif btype in (6, 2):  # enhanced packet, obsolete packet
            if btype == 6:
                if blen < 32:
                    raise DecodeError("pcap", src.offset + pos, "pcapng enhanced packet block is too short")
                ifid, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "IIIII", buf, body)
            else:
                if blen < 32:
                    raise DecodeError("pcap", src.offset + pos, "pcapng packet block is too short")
                ifid, _drops, ts_hi, ts_lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", buf, body)
            if caplen > blen - 32:
                raise DecodeError("pcap", src.offset + pos, f"captured length {caplen} exceeds the block")
            if ifid >= len(interfaces):
                raise DecodeError("pcap", src.offset + body, f"interface {ifid} was not described")
            linktype, unit, offset, _snap = interfaces[ifid]
            # One division of the exact integer: nanosecond ticks times a float would round twice.
            ts = ((ts_hi << 32) | ts_lo) / unit + offset
            if not _TS_MIN <= ts < _TS_MAX:
                raise DecodeError("pcap", src.offset + body + 4, _timestamp_reason(ts_hi, ts_lo, unit, offset))
            yield ts, linktype, buf, body + 20, body + 20 + caplen, wirelen
        elif btype == 3:  # simple packet: interface 0, no timestamp
            if not interfaces:
                raise DecodeError("pcap", src.offset + body, "interface 0 was not described")
            linktype, _unit, _offset, snap = interfaces[0]
            (wirelen,) = u32(buf, body)
            caplen = min(wirelen, blen - 16, snap or wirelen)
            yield 0.0, linktype, buf, body + 4, body + 4 + caplen, wirelen
        pos += blen


def _timestamp_reason(ts_hi: int, ts_lo: int, unit: int, offset: int) -> str:
    ticks = (ts_hi << 32) | ts_lo
    per = f"1/{unit} s" if unit != 1 else "1 s"
    when = "after the year 9999" if ticks / unit + offset > 0 else "before the year 1"
    return f"packet timestamp {ticks} (units of {per}, if_tsoffset {offset} s) is {when}"


def _idb_options(buf: bytes, pos: int, end: int, order: str, base: int) -> tuple[int, int]:
    """Timestamp units per second and offset (s) from the options between ``pos`` and ``end``."""
    unit, offset = 1_000_000, 0  # pcapng's default resolution is microseconds
    hh = struct.Struct(order + "HH").unpack_from
    while pos + 4 <= end:
        code, length = hh(buf, pos)
        if code == 0:
            break
        if pos + 4 + length > end:
            # What follows would be read as the option (tshark calls such a file damaged too).
            raise DecodeError(
                "pcap", base + pos, f"pcapng interface option {code} of {length} bytes runs past the end of its block"
            )
        value = buf[pos + 4 : pos + 4 + length]
        if code == 9:  # if_tsresol: 10^-n, or 2^-n with the top bit set
            if length != 1:
                raise DecodeError("pcap", base + pos, f"pcapng option if_tsresol has {length} bytes, not 1")
            r = value[0]
            unit = 1 << (r & 0x7F) if r & 0x80 else 10**r
        elif code == 14:  # if_tsoffset, whole seconds
            if length != 8:
                raise DecodeError("pcap", base + pos, f"pcapng option if_tsoffset has {length} bytes, not 8")
            offset = int.from_bytes(value, "little" if order == "<" else "big", signed=True)
        pos += 4 + ((length + 3) & ~3)
    return unit, offset
