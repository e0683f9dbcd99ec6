"""Replay a capture of underlay traffic through model VTEPs: what every VTEP learned, and when.

A capture shows packets, not state: ``bridge fdb show`` is now, not then, and learned entries age
out. :class:`Replay` reads a pcap or pcapng of underlay traffic (one host's interface, a mirror
port, several merged), infers the VTEPs and their VNIs, and hands every VXLAN datagram, in capture
order and with the capture's timestamps as ``now``, to a model :class:`~pyvxlan.Vtep` per
(receiving address, VNI). What those cores report (learned, migrated, expired, dropped) becomes a
timeline of :class:`TableChange` events; what looks wrong on the wire becomes :class:`Finding`
records, each naming the frame numbers (1-based, as Wireshark numbers them) it rests on.

The file is read twice. The first pass only infers (see :class:`ModelVtep` for what and how), so
that a VTEP that receives a flood before it ever sends is modelled from the first packet on; the
second pass replays. Memory is bounded by the number of VTEPs, VNIs and MACs, not packets.

>>> import io
>>> from pyvxlan import encapsulate, pcap
>>> def arp(host: int) -> bytes:
...     return bytes.fromhex(f"ffffffffffff02000000000{host}") + b"\\x08\\x06" + bytes(28)
>>> buf = io.BytesIO()
>>> pcap.write(buf, [(1.0, encapsulate(arp(1), vni=10, src="198.51.100.1", dst="239.1.1.1")),
...                  (2.0, encapsulate(arp(2), vni=10, src="198.51.100.2", dst="239.1.1.1"))])
2
>>> for event in Replay(buf).events():
...     print(event)
00:00:01.000 198.51.100.2 vni 10 learned 02:00:00:00:00:01 -> 198.51.100.1 [frame 1]
00:00:02.000 198.51.100.1 vni 10 learned 02:00:00:00:00:02 -> 198.51.100.2 [frame 2]
"""

from __future__ import annotations

import enum
import io
import ipaddress
import math
import os
import struct
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, TypeAlias, cast

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbEntry, FdbState
from pyvxlan.core.events import DeliverFrame, Dropped, DropReason, EntryExpired, EntryLearned, EntryMigrated
from pyvxlan.core.vtep import Vtep
from pyvxlan.errors import ConfigError, DecodeError, NotVxlanError
from pyvxlan.wire.addr import TextCache, ip_text
from pyvxlan.wire.frame import (
    ETH_P_IPV4,
    ETH_P_IPV6,
    IPPROTO_UDP,
    LINUX_VXLAN_PORT,
    PLAIN_IPV4_INNER,
    VLAN_ETHERTYPES,
    VXLAN_PORT,
    decapsulate,
    plain_ipv4,
)
from pyvxlan.wire.header import FLAG_I_BYTE0
from pyvxlan.wire.pcap import PcapStats, frame_of, raw_records

__all__ = [
    "DEFAULT_FLAP_WINDOW",
    "ChangeKind",
    "Finding",
    "FindingKind",
    "ModelVtep",
    "Replay",
    "ReplayEvent",
    "TableChange",
    "VtepSpec",
    "format_time",
    "parse_time",
    "replay",
]

# A MAC that comes back to a VTEP it left less than this many seconds earlier is flapping (two
# hosts share it, or a loop): a live migration moves a MAC once, not back and forth.
DEFAULT_FLAP_WINDOW: Final = 10.0
# Per finding, at most this many frame numbers are kept (the count says how many there were).
FRAMES_KEPT: Final = 10
_CACHE_MAX: Final = 1 << 16
_ZERO_MAC: Final = bytes(6)
# The UDP payload of a plain_ipv4 frame: after the outer Ethernet, IPv4 and UDP headers.
_PAYLOAD: Final = PLAIN_IPV4_INNER - 8


class ChangeKind(enum.Enum):
    """What happened to a VTEP's forwarding entry."""

    LEARNED = "learned"
    MIGRATED = "migrated"
    REFRESHED = "refreshed"  # only with ``refreshed=True``: one per received frame, noisy
    EXPIRED = "expired"


class FindingKind(enum.Enum):
    """What looks wrong in a capture."""

    DUPLICATE_MAC = "duplicate_mac"  # a MAC flapping between two VTEPs within the flap window
    BLACKHOLE = "blackhole"  # a unicast frame sent to a VTEP the destination MAC had left
    FLOOD_OUTSIDE_MEMBERSHIP = "flood_outside_membership"  # a flood to a VTEP without that VNI
    MISSING_I_FLAG = "missing_i_flag"  # vxlan_rcv drops it: I flag clear
    RESERVED_BITS = "reserved_bits"  # vxlan_rcv drops it: reserved bits set (rx_frame_errors)
    WRONG_PORT = "wrong_port"  # sent to a UDP port the receiving VTEP does not listen on
    RECEIVE_DROP = "receive_drop"  # another drop of the receive path (the detail names the reason)
    PACKET_TOO_BIG = "packet_too_big"  # an ICMP frag-needed / packet-too-big quotes a VXLAN datagram


@dataclass(frozen=True, slots=True)
class TableChange:
    """A change of the forwarding table of VTEP ``vtep`` (its address) for ``vni``.

    ``dst`` is where ``mac`` lives now (for EXPIRED: lived); ``old_dst`` is where it lived before a
    migration. ``frame`` is the 1-based number of the frame that caused it (``None`` for an
    expiry, which the passing of time causes).
    """

    time: float
    vtep: str
    vni: int
    kind: ChangeKind
    mac: str
    dst: str
    old_dst: str | None = None
    frame: int | None = None

    def __str__(self) -> str:
        where = f"{format_time(self.time)} {self.vtep} vni {self.vni} {self.kind.value} {self.mac}"
        what = f"{self.old_dst} -> {self.dst}" if self.old_dst is not None else f"-> {self.dst}"
        return f"{where} {what}" + (f" [frame {self.frame}]" if self.frame is not None else "")


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that looks wrong, with the frames (1-based numbers) it rests on.

    ``time`` is the first offending packet's; ``count`` how many packets showed it (``frames``
    keeps the first :data:`FRAMES_KEPT` of them, after any evidence frames the detail names).
    """

    time: float
    kind: FindingKind
    frames: tuple[int, ...]
    detail: str
    count: int = 1
    vni: int | None = None
    mac: str | None = None
    vtep: str | None = None

    def __str__(self) -> str:
        frames = ", ".join(map(str, self.frames))
        more = f" ({self.count} packets)" if self.count > 1 else ""
        return f"{format_time(self.time)} {self.kind.value}: {self.detail}{more} [frames {frames}]"


ReplayEvent: TypeAlias = TableChange | Finding


@dataclass(frozen=True, slots=True)
class VtepSpec:
    """What the user says about a VTEP that the capture cannot show (``--vtep``).

    ``vni=None`` applies to every VNI of ``address``; ``static`` holds ``(mac, dst)`` pairs added
    as ``bridge fdb add MAC dst DST static``.
    """

    address: str
    vni: int | None = None
    port: int | None = None
    ageing: float | None = None
    learning: bool | None = None
    group: str | None = None
    static: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        _set = object.__setattr__
        _set(self, "address", _address(self.address, "address", multicast=False))
        if self.vni is not None and (type(self.vni) is not int or not 0 <= self.vni < 1 << 24):
            raise ConfigError("vni", f"must be in 0..16777215, got {self.vni!r}")
        if self.port is not None and (type(self.port) is not int or not 0 < self.port <= 0xFFFF):
            raise ConfigError("port", f"must be in 1..65535, got {self.port!r}")
        if self.ageing is not None and (type(self.ageing) not in (int, float) or not 0 < self.ageing < math.inf):
            raise ConfigError("ageing", f"must be a number of seconds > 0, got {self.ageing!r}")
        if self.learning is not None and type(self.learning) is not bool:
            raise ConfigError("learning", f"must be True or False, got {self.learning!r}")
        if self.group is not None:
            _set(self, "group", _address(self.group, "group", multicast=True))
        if not isinstance(self.static, tuple):
            raise ConfigError("static", f"must be a tuple of (mac, dst) pairs, got {type(self.static).__name__}")
        pairs = []
        for pair in self.static:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ConfigError("static", f"must be a tuple of (mac, dst) pairs, got {pair!r}")
            entry = FdbEntry(pair[0], pair[1])  # checks and normalizes both, naming the field
            pairs.append((entry.mac, entry.dst))
        _set(self, "static", tuple(pairs))

    @classmethod
    def parse(cls, text: str) -> VtepSpec:
        """``ADDR[,vni=N][,port=N][,ageing=S][,learning=on|off][,group=G][,static=MAC@DST]...``."""
        if not isinstance(text, str):
            raise ConfigError("vtep", f"must be text, got {type(text).__name__}")
        address, *options = text.split(",")
        kw: dict[str, object] = {}
        static: list[tuple[str, str]] = []
        for option in options:
            key, eq, value = option.partition("=")
            if not eq or not value:
                raise ConfigError("vtep", f"{option!r} is not KEY=VALUE")
            if key in ("vni", "port"):
                try:
                    kw[key] = int(value, 10)
                except ValueError:
                    raise ConfigError(key, f"{value!r} is not a number") from None
            elif key == "ageing":
                try:
                    kw[key] = float(value)
                except ValueError:
                    raise ConfigError(key, f"{value!r} is not a number of seconds") from None
            elif key == "learning":
                if value not in ("on", "off"):
                    raise ConfigError(key, f"must be on or off, got {value!r}")
                kw[key] = value == "on"
            elif key == "group":
                kw[key] = value
            elif key == "static":
                mac, at, dst = value.partition("@")
                if not at:
                    raise ConfigError("static", f"{value!r} is not MAC@DST")
                static.append((mac, dst))
            else:
                raise ConfigError("vtep", f"unknown option {key!r} (vni, port, ageing, learning, group, static)")
        return cls(address, static=tuple(static), **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ModelVtep:
    """One modelled VTEP and what the replay assumed about it.

    Inferred from the capture: a VTEP for (address, VNI) exists when the address sent a valid
    VXLAN datagram with that VNI, received a unicast (not flooded) frame with it, or a ``--vtep``
    names it. Its ``port`` is the UDP destination port it sends to (a Linux device listens on its
    ``dstport``), else the one it receives most on; its ``group`` the multicast group it sends to
    (a device floods to its own group, so it is a member); ``remotes`` the addresses it floods to
    by unicast (head-end replication: all-zeros entries). ``ageing`` and ``learning`` are Linux's
    defaults (300 s, on) unless a ``--vtep`` says otherwise; ``assumed`` lists, in words, what the
    capture could not show.
    """

    address: str
    vni: int
    port: int
    ageing: float
    learning: bool
    group: str | None
    remotes: tuple[str, ...]
    static: tuple[tuple[str, str], ...]
    assumed: tuple[str, ...]


def _address(value: object, field: str, *, multicast: bool | None = None) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, f"must be an IPv4 or IPv6 address, got {type(value).__name__}")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(field, f"{value!r} is not an IPv4 or IPv6 address") from None
    if multicast is True and not ip.is_multicast:
        raise ConfigError(field, f"{ip} is not a multicast address")
    if multicast is False and ip.is_multicast:
        raise ConfigError(field, f"{ip} is a multicast address")
    return str(ip)


def format_time(ts: float) -> str:
    """``HH:MM:SS.mmm`` in UTC, as the timeline prints a capture timestamp."""
    ms = round(ts * 1000)
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}"


def parse_time(text: str, first: float | None) -> float:
    """A moment of the capture: seconds since the epoch (``1700000000.5``), ``+S`` seconds after
    the first packet (``first``), or ``HH:MM:SS[.fff]`` UTC on the day of the first packet."""
    if not isinstance(text, str):
        raise ConfigError("at", f"must be text, got {type(text).__name__}")
    base = first if first is not None else 0.0
    try:
        if text.startswith("+"):
            value = base + float(text[1:])
        elif ":" in text:
            hms, _, frac = text.partition(".")
            h, m, s = (int(p, 10) for p in hms.split(":"))
            if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60) or (frac and not frac.isdigit()):
                raise ValueError
            day = math.floor(base / 86400) * 86400
            value = day + h * 3600 + m * 60 + s + (float("0." + frac) if frac else 0.0)
        else:
            value = float(text)
    except ValueError:
        raise ConfigError("at", f"{text!r} is not a time (HH:MM:SS[.fff], +SECONDS or SECONDS)") from None
    if not math.isfinite(value):
        raise ConfigError("at", f"{text!r} is not a finite time")
    return value


# --- reading --------------------------------------------------------------------------------------

# Who receives a datagram and what the loop needs of it: source and destination as text, VNI,
# receivers (address, core, port), the VNI's MAC locations, to a group?, packed source, destination.
_Route: TypeAlias = tuple[str, str, int, list[tuple[str, Vtep, int]], dict[bytes, "_Location"], bool, bytes, bytes]
# A datagram as both passes see it: number, time, outer source and destination (packed), ports,
# the VXLAN header (8 bytes), the UDP payload (header + inner frame), the outer TOS.
_Datagram: TypeAlias = tuple[int, float, bytes, bytes, int, int, bytes, bytes, int]


@dataclass(frozen=True, slots=True)
class _IcmpTooBig:
    """An ICMP error quoting a UDP datagram: its frame, time, the quoted addresses and ports, the
    MTU it reports and the quoted datagram's IP length."""

    n: int
    ts: float
    src: bytes
    dst: bytes
    sport: int
    dport: int
    mtu: int
    qlen: int


def _icmp_too_big(n: int, ts: float, frame: bytes | memoryview) -> _IcmpTooBig | None:
    """An ICMP frag-needed (IPv4 type 3 code 4) or ICMPv6 packet-too-big quoting UDP, else None."""
    off, etype = 12, 0
    while off + 2 <= len(frame):
        etype = (frame[off] << 8) | frame[off + 1]
        if etype not in VLAN_ETHERTYPES:
            break
        off += 4
    p = off + 2
    if etype == ETH_P_IPV4 and len(frame) >= p + 20 and frame[p + 9] == 1:
        ihl = (frame[p] & 0x0F) * 4
        icmp = p + ihl
        if len(frame) < icmp + 8 + 20 or frame[icmp] != 3 or frame[icmp + 1] != 4:
            return None
        mtu = (frame[icmp + 6] << 8) | frame[icmp + 7]
        q = icmp + 8
        qihl = (frame[q] & 0x0F) * 4
        if frame[q + 9] != IPPROTO_UDP or len(frame) < q + qihl + 4:
            return None
        sport, dport = struct.unpack_from("!HH", frame, q + qihl)
        qlen = (frame[q + 2] << 8) | frame[q + 3]
        return _IcmpTooBig(n, ts, bytes(frame[q + 12 : q + 16]), bytes(frame[q + 16 : q + 20]), sport, dport, mtu, qlen)
    if etype == ETH_P_IPV6 and len(frame) >= p + 40 + 8 + 40 + 4 and frame[p + 6] == 58:
        icmp = p + 40
        if frame[icmp] != 2 or frame[icmp + 1] != 0:
            return None
        mtu = int.from_bytes(frame[icmp + 4 : icmp + 8], "big")
        q = icmp + 8
        if frame[q + 6] != IPPROTO_UDP:
            return None
        sport, dport = struct.unpack_from("!HH", frame, q + 40)
        qlen = 40 + ((frame[q + 4] << 8) | frame[q + 5])
        return _IcmpTooBig(n, ts, bytes(frame[q + 8 : q + 24]), bytes(frame[q + 24 : q + 40]), sport, dport, mtu, qlen)
    return None


def _slow(  # noqa: PLR0917 - the record's fields, in raw_records' order
    n: int,
    ts: float,
    linktype: int,
    buf: bytes,
    start: int,
    end: int,
    wirelen: int,
    ports: frozenset[int],
    stats: PcapStats,
) -> _Datagram | _IcmpTooBig | None:
    """A record the fast path does not read (IPv6, VLAN tags, options, cooked or raw link types, a
    snapped frame): a VXLAN datagram on ``ports`` (any header bits: the receive checks are the
    model's), an ICMP error quoting a UDP datagram, or ``None``."""
    frame = frame_of(linktype, buf, start, end, stats)
    if frame is None:
        return None
    wire = wirelen + len(frame) - (end - start) if wirelen > end - start else 0
    try:
        d = decapsulate(frame, ports=ports, gpe_ports=(), wire_length=wire)
    except NotVxlanError:
        return _icmp_too_big(n, ts, frame)
    except DecodeError as exc:
        stats.count_error(exc)
        return None
    header = d.header.encode()
    return (n, ts, d.outer_src_packed, d.outer_dst_packed, d.src_port, d.dst_port, header, header + bytes(d.inner), 0)


_text: Final = TextCache(ip_text, _CACHE_MAX).__getitem__  # an address, 4 or 16 packed bytes, cached


def _shown(value: object) -> object:
    """A finding's argument as text: packed MACs (6 bytes) and addresses (4 or 16), else as is."""
    if type(value) is bytes:
        return value.hex(":") if len(value) == 6 else _text(value)
    return value


def _is_multicast(packed: bytes) -> bool:
    return (packed[0] >> 4 == 14) if len(packed) == 4 else packed[0] == 0xFF


# --- the replay -----------------------------------------------------------------------------------


class _Location:
    """Where a MAC was last seen (the outer source of frames it sent), and where before."""

    __slots__ = ("first_frame", "last_frame", "last_time", "prev", "prev_last_frame", "prev_last_time", "src")

    def __init__(self, src: bytes, frame: int, ts: float) -> None:
        self.src = src
        self.first_frame = self.last_frame = frame
        self.last_time = ts
        self.prev: bytes | None = None
        self.prev_last_frame = 0
        self.prev_last_time = -math.inf


class _Acc:
    """A finding being gathered: its first time, evidence, the first frames and how many."""

    __slots__ = ("count", "detail", "evidence", "frames", "kind", "mac", "time", "vni", "vtep")

    def __init__(
        self,
        kind: FindingKind,
        ts: float,
        detail: str,
        *,
        vni: int | None = None,
        mac: str | None = None,
        vtep: str | None = None,
    ) -> None:
        self.kind = kind
        self.time = ts
        self.detail = detail
        self.vni = vni
        self.mac = mac
        self.vtep = vtep
        self.evidence: tuple[int, ...] = ()
        self.frames: list[int] = []
        self.count = 0


_DROP_KINDS: Final = {
    DropReason.MISSING_I_FLAG: FindingKind.MISSING_I_FLAG,
    DropReason.RESERVED_BITS: FindingKind.RESERVED_BITS,
}
# Drops that say nothing wrong about the network: the model's own MAC cannot be in a capture.
_QUIET_DROPS: Final = frozenset({DropReason.LOCAL_MAC, DropReason.UNKNOWN_VNI})


class Replay:
    """A capture replayed through model VTEPs; iterate :meth:`events` once, then read
    :meth:`tables`.

    ``source`` is a path or a binary file object that can be read twice (it is rewound).
    ``ports`` are the UDP destination ports read as VXLAN; ``vteps`` what the user knows that the
    capture cannot show; ``flap_window`` the seconds within which a MAC returning to a VTEP it
    left is a :data:`FindingKind.DUPLICATE_MAC`; ``refreshed`` adds a REFRESHED change for every
    frame that refreshes an entry. Errors in the file raise :class:`~pyvxlan.DecodeError`; bad
    settings :class:`~pyvxlan.ConfigError`.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT),
        vteps: Sequence[VtepSpec] = (),
        flap_window: float = DEFAULT_FLAP_WINDOW,
        refreshed: bool = False,
    ) -> None:
        if not isinstance(source, (str, os.PathLike)) and not callable(getattr(source, "read", None)):
            raise ConfigError("source", f"must be a path or a binary file object, got {type(source).__name__}")
        if isinstance(ports, (str, bytes)) or not isinstance(ports, Collection) or not ports:
            raise ConfigError("ports", f"must be a non-empty collection of UDP ports, got {ports!r:.60}")
        for port in ports:
            if type(port) is not int or not 0 < port <= 0xFFFF:
                raise ConfigError("ports", f"must be in 1..65535, got {port!r}")
        if isinstance(vteps, (str, bytes)) or not all(isinstance(v, VtepSpec) for v in vteps):
            raise ConfigError("vteps", "must be a sequence of VtepSpec")
        if type(flap_window) not in (int, float) or not 0 <= flap_window < math.inf:
            raise ConfigError("flap_window", f"must be a number of seconds >= 0, got {flap_window!r}")
        if type(refreshed) is not bool:
            raise ConfigError("refreshed", f"must be True or False, got {refreshed!r}")
        self._source = source
        self._ports = frozenset(ports)
        self._specs = tuple(vteps)
        self._flap_window = float(flap_window)
        self._refreshed = refreshed
        self.stats = PcapStats()
        self.first_time: float | None = None
        self.last_time: float | None = None
        self._models = self._infer()
        self._vteps: dict[tuple[str, int], Vtep] = {}
        self._used = False

    # --- pass 1: inference ----------------------------------------------------------------------

    def _open(self) -> IO[bytes]:
        if isinstance(self._source, (str, os.PathLike)):
            return open(self._source, "rb")
        self._source.seek(0)
        return cast(IO[bytes], _Unclosed(self._source))

    def _infer(self) -> tuple[ModelVtep, ...]:
        # Distinct (source, destination, port, VNI, flood?) of valid datagrams: as many as VTEP
        # pairs, whatever the number of packets.
        seen: set[tuple[bytes, int, bytes, int]] = set()
        first: float | None = None
        ts = 0.0
        ports = self._ports
        plain = plain_ipv4
        stats = PcapStats()
        n = 0
        with self._open() as f:
            for ts, linktype, buf, start, end, wirelen in raw_records(f):
                n += 1
                if first is None:
                    first = ts
                fields = plain(buf, start, end) if linktype == 1 else None
                if fields is not None:  # the codec's fast path; the rest through decapsulate
                    _tos, _ttl, addrs, _sport, dport, _csum, hdr = fields
                    if dport in ports and hdr[0] & FLAG_I_BYTE0:
                        seen.add((addrs, dport, hdr, buf[start + PLAIN_IPV4_INNER] & 1))
                    continue
                rec = _slow(n, ts, linktype, buf, start, end, wirelen, ports, stats)
                if type(rec) is tuple and rec[6][0] & FLAG_I_BYTE0 and len(rec[7]) >= 22:
                    seen.add((rec[2] + rec[3], rec[5], rec[6], rec[7][8] & 1))
        self.first_time, self.last_time = first, (ts if first is not None else None)
        sends: dict[tuple[str, int], Counter[int]] = {}
        receives: dict[str, Counter[int]] = {}
        groups: dict[tuple[str, int], str] = {}
        remotes: dict[tuple[str, int], set[str]] = {}
        members: set[tuple[str, int]] = set()
        for addrs, dport, hdr, flood in seen:
            half = len(addrs) // 2
            src_b, dst_b = addrs[:half], addrs[half:]
            vni = int.from_bytes(hdr[4:7], "big")
            src, dst = _text(src_b), _text(dst_b)
            members.add((src, vni))
            sends.setdefault((src, vni), Counter())[dport] += 1
            if _is_multicast(dst_b):
                groups[(src, vni)] = dst
                continue
            receives.setdefault(dst, Counter())[dport] += 1
            if flood:
                remotes.setdefault((src, vni), set()).add(dst)
            else:
                members.add((dst, vni))
        vni_groups: dict[int, set[str]] = {}
        for (_, vni), flooded_to in groups.items():
            vni_groups.setdefault(vni, set()).add(flooded_to)
        for spec in self._specs:
            if spec.vni is not None:  # without a VNI, a spec applies to the VNIs the capture shows
                members.add((spec.address, spec.vni))
        models = []
        for address, vni in sorted(members, key=lambda k: (ipaddress.ip_address(k[0]).packed, k[1])):
            specs = [s for s in self._specs if s.address == address and s.vni in (None, vni)]
            assumed: list[str] = []
            port = next((s.port for s in specs if s.port is not None), None)
            if port is None:
                counts = sends.get((address, vni)) or receives.get(address)
                if counts:
                    port = max(sorted(counts), key=lambda p: counts[p])
                    how = "sends to" if sends.get((address, vni)) else "receives most on"
                    assumed.append(f"port {port}: the port it {how}")
                else:
                    port = VXLAN_PORT
                    assumed.append(f"port {port}: IANA's, nothing in the capture says")
            ageing = next((s.ageing for s in specs if s.ageing is not None), None)
            if ageing is None:
                ageing = 300.0
                assumed.append("ageing 300 s: Linux's default")
            learning = next((s.learning for s in specs if s.learning is not None), None)
            if learning is None:
                learning = True
                assumed.append("learning on: Linux's default")
            group = next((s.group for s in specs if s.group is not None), None)
            if group is None:
                group = groups.get((address, vni))
                if group is not None:
                    assumed.append(f"group {group}: it floods to it")
                elif len(vni_groups.get(vni, ())) == 1:
                    # A VTEP that never floods still joined its group: devices of one VNI share one.
                    (group,) = vni_groups[vni]
                    assumed.append(f"group {group}: the one group vni {vni} floods to")
            her = tuple(sorted(remotes.get((address, vni), ()), key=lambda a: ipaddress.ip_address(a).packed))
            if her:
                assumed.append("all-zeros entries to " + ", ".join(her) + ": it floods to them by unicast")
            static = tuple(pair for s in specs for pair in s.static)
            if not static:
                assumed.append("no static entries")
            models.append(ModelVtep(address, vni, port, float(ageing), learning, group, her, static, tuple(assumed)))
        return tuple(models)

    @property
    def models(self) -> tuple[ModelVtep, ...]:
        """The modelled VTEPs, with what was assumed about each (known before :meth:`events`)."""
        return self._models

    # --- pass 2: the replay ----------------------------------------------------------------------

    def _build(self, now: float) -> None:
        for m in self._models:
            config = VtepConfig(
                vni=m.vni, local=m.address, group=m.group, dst_port=m.port, ageing=m.ageing, learning=m.learning
            )
            vtep = Vtep(config, now=now)
            for dst in m.remotes:
                vtep.fdb_append("00:00:00:00:00:00", dst, now=now)
            for mac, dst in m.static:
                vtep.fdb_add(mac, dst, state=FdbState.STATIC, now=now)
            vtep.up(now=now)
            vtep.take_outputs()
            self._vteps[(m.address, m.vni)] = vtep

    def tables(self) -> dict[tuple[str, int], list[FdbEntry]]:
        """Every modelled VTEP's table, by (address, VNI), as ``bridge fdb show`` would list it at
        the moment :meth:`events` stopped."""
        return {key: vtep.fdb.dump() for key, vtep in self._vteps.items()}

    def events(self, *, until: float | None = None) -> Iterator[ReplayEvent]:
        """The timeline, in capture order, then the findings (by time).

        With ``until``, the replay stops at that moment (packets after it are not read; entries
        due to expire by then do), so :meth:`tables` is the state at ``until``.
        """
        if self._used:
            raise ConfigError("events", "a Replay runs once; make a new one to replay again")
        if until is not None and (type(until) not in (int, float) or not math.isfinite(until)):
            raise ConfigError("until", f"must be a finite time in seconds, got {until!r}")
        self._used = True
        return self._run(until)

    def _run(self, until: float | None) -> Iterator[ReplayEvent]:
        self._build(self.first_time if self.first_time is not None else 0.0)
        vteps = self._vteps
        members_by_group: dict[tuple[str, int], list[tuple[str, Vtep, int]]] = {}
        for m in self._models:
            if m.group is not None:
                members_by_group.setdefault((m.group, m.vni), []).append((m.address, vteps[(m.address, m.vni)], m.port))
        refreshed = self._refreshed
        flap_window = self._flap_window
        ports = self._ports
        stats = self.stats
        accs: dict[tuple[object, ...], _Acc] = {}
        # Where the capture sees each MAC, per VNI: behind the outer source of the frames it sends.
        locations: dict[int, dict[bytes, _Location]] = {}
        # The last datagram between two addresses (packed, source then destination), for ICMP errors.
        last_sent: dict[bytes, int] = {}
        routes: dict[tuple[bytes, int, bytes], _Route] = {}
        pending: list[ReplayEvent] = []
        ageing = {(m.address, m.vni): m.ageing for m in self._models}
        addresses = {m.address for m in self._models}
        next_check = math.inf
        plain = plain_ipv4
        learned, migrated, dropped, deliver = EntryLearned, EntryMigrated, Dropped, DeliverFrame

        def add(key: tuple[object, ...], n: int, ts: float, text: str, args: tuple[object, ...], **kw: Any) -> _Acc:
            acc = accs.get(key)
            if acc is None:
                # Formatted once, here: a finding seen a million times costs a count after that.
                if "mac" in kw:
                    kw["mac"] = _shown(kw["mac"])
                acc = accs[key] = _Acc(key[0], ts, text.format(*map(_shown, args)), **kw)  # type: ignore[arg-type]
            acc.count += 1
            if len(acc.frames) < FRAMES_KEPT:
                acc.frames.append(n)
            return acc

        def timers(now: float) -> float:
            due: list[TableChange] = []
            soonest = math.inf
            for (address, vni), vtep in vteps.items():
                t = vtep.next_timer()
                while t is not None and t <= now:
                    vtep.handle_timer(t if t > vtep.now else vtep.now)
                    for o in vtep.take_outputs():
                        if type(o) is EntryExpired:
                            due.append(TableChange(t, address, vni, ChangeKind.EXPIRED, o.mac, o.dst))
                    t = vtep.next_timer()
                if t is not None and t < soonest:
                    soonest = t
            due.sort(key=lambda c: c.time)
            pending.extend(due)
            return soonest

        n = 0
        with self._open() as f:
            for ts, linktype, buf, start, end, wirelen in raw_records(f):
                n += 1
                # The codec's fast path (plain_ipv4, which decapsulate uses too); the rest through
                # decapsulate, both arriving at the same variables below.
                fields = plain(buf, start, end) if linktype == 1 else None
                if fields is not None:
                    tos, _ttl, addrs, sport, dport, _csum, hdr = fields
                    if dport not in ports:
                        continue
                    payload = buf[start + _PAYLOAD : end]
                    dmac, smac = payload[8:14], payload[14:20]
                else:
                    rec = _slow(n, ts, linktype, buf, start, end, wirelen, ports, stats)
                    if rec is None:
                        continue
                    if isinstance(rec, _IcmpTooBig):
                        if until is not None and ts > until:
                            n -= 1  # counted: the packets replayed
                            break
                        if rec.dport in ports:
                            self._too_big(rec, add, last_sent.get(rec.src + rec.dst))
                        continue
                    _, _, src_b, dst_b, sport, dport, hdr, payload, tos = rec
                    addrs = src_b + dst_b
                    dmac, smac = payload[8:14], payload[14:20]
                if until is not None and ts > until:
                    n -= 1
                    break
                if ts >= next_check:
                    next_check = timers(ts)
                route = routes.get((addrs, dport, hdr))
                if route is None:
                    route = self._route(addrs, hdr, vteps, members_by_group, locations)
                    if len(routes) >= _CACHE_MAX:
                        routes.clear()
                    routes[(addrs, dport, hdr)] = route
                src, dst, vni, receivers, locs, to_group, src_b, dst_b = route
                if len(last_sent) >= _CACHE_MAX:
                    last_sent.clear()
                last_sent[addrs] = n
                if not hdr[0] & FLAG_I_BYTE0:
                    # vxlan_rcv checks the I flag before it looks the VNI up: every device drops it.
                    if dst in addresses or to_group:
                        add(
                            (FindingKind.MISSING_I_FLAG, addrs),
                            n,
                            ts,
                            "{} > {}: I flag clear (header {}); Linux drops it",
                            (src, dst, hdr.hex()),
                            vtep=dst,
                        )
                    continue
                if len(payload) < 22:
                    smac = dmac = b"\x01"  # no inner Ethernet header: nothing to track
                if not smac[0] & 1:
                    loc = locs.get(smac)
                    if loc is None:
                        if len(locs) >= 1 << 20:
                            locs.clear()  # a bound against a capture of random MACs
                        locs[smac] = _Location(src_b, n, ts)
                    elif loc.src == src_b:
                        loc.last_frame = n
                        loc.last_time = ts
                    else:
                        self._moved(loc, src_b, n, ts, vni=vni, smac=smac, add=add, window=flap_window)
                if not dmac[0] & 1 and not to_group:
                    dloc = locs.get(dmac)
                    if dloc is not None and dloc.prev == dst_b:
                        self._blackhole(dloc, src, dst, vni=vni, dmac=dmac, n=n, ts=ts, add=add)
                if not receivers:
                    if dmac[0] & 1 and not to_group:
                        add(
                            (FindingKind.FLOOD_OUTSIDE_MEMBERSHIP, addrs, vni),
                            n,
                            ts,
                            "{} floods vni {} to {}, which has no VTEP for vni {}",
                            (src, vni, dst, vni),
                            vni=vni,
                            vtep=dst,
                        )
                    continue
                for address, vtep, port in receivers:
                    if port != dport:
                        add(
                            (FindingKind.WRONG_PORT, addrs, address, dport, vni),
                            n,
                            ts,
                            "{} > {}:{} vni {}, but {} listens on port {}",
                            (src, address, dport, vni, address, port),
                            vni=vni,
                            vtep=address,
                        )
                        continue
                    # A capture's clock can step back (merged or reordered records); the core's never does.
                    vtep.receive(payload, src, sport, ts if ts > vtep.now else vtep.now, tos=tos)
                    outs = vtep.take_outputs()
                    if len(outs) == 1 and type(outs[0]) is deliver:
                        if refreshed:
                            pending.extend(self._refreshes(vtep, address, vni=vni, smac=smac, src=src, n=n, ts=ts))
                        continue
                    for o in outs:
                        t = type(o)
                        if t is learned:
                            pending.append(TableChange(ts, address, vni, ChangeKind.LEARNED, o.mac, o.dst, None, n))  # type: ignore[union-attr]
                            expiry = ts + ageing[(address, vni)]
                            next_check = min(next_check, expiry)
                        elif t is migrated:
                            pending.append(
                                TableChange(ts, address, vni, ChangeKind.MIGRATED, o.mac, o.new_dst, o.old_dst, n)  # type: ignore[union-attr]
                            )
                        elif t is dropped:
                            self._drop_finding(o, add, n, ts, src=src, address=address, vni=vni)  # type: ignore[arg-type]
                if pending:
                    yield from pending
                    pending.clear()
            stats.packets = n
            end_time = until if until is not None else self.last_time
            if end_time is not None and end_time >= next_check:
                timers(end_time)
                yield from pending
                pending.clear()
        findings = [
            Finding(
                a.time,
                a.kind,
                tuple(dict.fromkeys([*a.evidence, *a.frames])),
                a.detail,
                a.count,
                a.vni,
                a.mac,
                a.vtep,
            )
            for a in accs.values()
        ]
        findings.sort(key=lambda x: (x.time, x.frames))
        yield from findings

    @staticmethod
    def _moved(
        loc: _Location,
        src_b: bytes,
        n: int,
        ts: float,
        *,
        vni: int,
        smac: bytes,
        add: Callable[..., _Acc],
        window: float,
    ) -> None:
        """``smac`` is seen behind a new VTEP; back behind the one it left within ``window``: a flap."""
        if loc.prev == src_b and ts - loc.prev_last_time <= window:
            acc = add(
                (FindingKind.DUPLICATE_MAC, vni, smac),
                n,
                ts,
                "vni {} {} seen behind {} and {} alternately within {:g} s",
                (vni, smac, src_b, loc.src, window),
                vni=vni,
                mac=smac,
            )
            if not acc.evidence:
                acc.evidence = (loc.prev_last_frame, loc.first_frame)
        loc.prev, loc.prev_last_frame, loc.prev_last_time = loc.src, loc.last_frame, loc.last_time
        loc.src, loc.first_frame, loc.last_frame, loc.last_time = src_b, n, n, ts

    @staticmethod
    def _blackhole(
        dloc: _Location, src: str, dst: str, *, vni: int, dmac: bytes, n: int, ts: float, add: Callable[..., _Acc]
    ) -> None:
        """A unicast frame for ``dmac`` went to ``dst``, which the MAC had left for ``dloc.src``."""
        moved = dloc.first_frame
        acc = add(
            (FindingKind.BLACKHOLE, src, dst, vni, dmac),
            n,
            ts,
            "{} sent vni {} frames for {} to {} after it moved to {} (frame {})",
            (src, vni, dmac, dst, dloc.src, moved),
            vni=vni,
            mac=dmac,
            vtep=src,
        )
        if not acc.evidence:
            acc.evidence = (moved,)

    @staticmethod
    def _refreshes(
        vtep: Vtep, address: str, *, vni: int, smac: bytes, src: str, n: int, ts: float
    ) -> list[TableChange]:
        """The learned entry of ``smac`` that this frame refreshed (Linux: ``f->updated = now``)."""
        mac = smac.hex(":")
        return [
            TableChange(ts, address, vni, ChangeKind.REFRESHED, mac, src, None, n)
            for e in vtep.fdb.get(mac)
            if e.dst == src and e.updated == ts and e.state is FdbState.REACHABLE
        ]

    @staticmethod
    def _too_big(rec: _IcmpTooBig, add: Callable[..., _Acc], sent: int | None) -> None:
        src, dst = _text(rec.src), _text(rec.dst)
        extra = f" (frame {sent} is the last one sent before the ICMP error)" if sent else ""
        acc = add(
            (FindingKind.PACKET_TOO_BIG, rec.src, rec.dst, rec.mtu),
            rec.n,
            rec.ts,
            "{} > {}:{} datagrams of {} bytes exceed the path MTU {}{}",
            (src, dst, rec.dport, rec.qlen, rec.mtu, extra),
            vtep=src,
        )
        if sent and not acc.evidence:
            acc.evidence = (sent,)

    @staticmethod
    def _drop_finding(
        o: Dropped, add: Callable[..., _Acc], n: int, ts: float, *, src: str, address: str, vni: int
    ) -> None:
        if o.reason in _QUIET_DROPS:
            return
        kind = _DROP_KINDS.get(o.reason, FindingKind.RECEIVE_DROP)
        why = f"{o.reason.value}" + (f" ({o.detail})" if o.detail else "")
        add(
            (kind, o.reason, src, address, vni),
            n,
            ts,
            "{} vni {} drops datagrams from {}: {}",
            (address, vni, src, why),
            vni=vni,
            vtep=address,
        )

    @staticmethod
    def _route(
        addrs: bytes,
        hdr: bytes,
        vteps: dict[tuple[str, int], Vtep],
        members_by_group: dict[tuple[str, int], list[tuple[str, Vtep, int]]],
        locations: dict[int, dict[bytes, _Location]],
    ) -> _Route:
        """Who receives a datagram: its destination's VTEP for the VNI, or a group's members."""
        half = len(addrs) // 2
        src_b, dst_b = addrs[:half], addrs[half:]
        src, dst = _text(src_b), _text(dst_b)
        vni = int.from_bytes(hdr[4:7], "big")
        to_group = _is_multicast(dst_b)
        if to_group:
            receivers = [r for r in members_by_group.get((dst, vni), []) if r[0] != src]
        else:
            vtep = vteps.get((dst, vni))
            receivers = [(dst, vtep, vtep.config.dst_port)] if vtep is not None else []
        return src, dst, vni, receivers, locations.setdefault(vni, {}), to_group, src_b, dst_b


class _Unclosed(io.RawIOBase):
    """A caller's file object, read through without closing it at the end of a pass."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._f.read(size)

    def close(self) -> None:
        pass  # the caller's file stays open


def replay(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT),
    vteps: Sequence[VtepSpec] = (),
    flap_window: float = DEFAULT_FLAP_WINDOW,
    refreshed: bool = False,
    until: float | None = None,
) -> Iterator[ReplayEvent]:
    """The events of :class:`Replay` ``(source, ...)``: the timeline, then the findings."""
    return Replay(source, ports=ports, vteps=vteps, flap_window=flap_window, refreshed=refreshed).events(until=until)
