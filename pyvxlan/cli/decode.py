"""``pyvxlan decode FILE``: print every VXLAN packet of a capture, one line each, then totals.

The text lines read like tcpdump's::

    09:00:00.000001 198.51.100.1:49321 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 1 seq 1

Speed matters here (a capture can hold millions of packets), so the loop works on the reader's raw
buffers: the common frame is read by the codec's one fast path, :func:`~pyvxlan.wire.frame.plain_ipv4`
(the one :func:`~pyvxlan.decapsulate` uses), and the text of what repeats from packet to packet
(outer addresses and header, MAC pairs, the second of the timestamp) is formatted once and cached.
Every other packet goes through :func:`~pyvxlan.decapsulate`; both print through the same
functions, and the tests check that they agree. Of the packets that are not VXLAN, TCP to or from
port 179 is read as BGP (reassembled per flow by :class:`pyvxlan.evpn.stream.BgpStreams`): one
line per EVPN route, one per other message.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import errno
import json
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Final

from pyvxlan.cli import UsageError
from pyvxlan.cli.argtypes import udp_port
from pyvxlan.cli.output import OutputError, checked_writer, flush_checked, output_failed
from pyvxlan.errors import ConfigError, DecodeError, NotVxlanError
from pyvxlan.wire.addr import TextCache, format_mac, ip_info, ip_text, parse_mac
from pyvxlan.wire.frame import (
    ETH_P_IPV4,
    ETH_P_IPV6,
    IPPROTO_UDP,
    IPV6_EXTENSION_HEADERS,
    LINUX_VXLAN_PORT,
    PLAIN_IPV4_INNER,
    VLAN_ETHERTYPES,
    VXLAN_GPE_PORT,
    VXLAN_PORT,
    Decapsulated,
    decapsulate,
    internet_checksum,
    plain_ipv4,
    pseudo_header,
)
from pyvxlan.wire.header import (
    FLAG_G,
    FLAG_I,
    GBP_A,
    GBP_D,
    GPE_B,
    GPE_NP_MASK,
    GPE_O,
    GPE_P,
    VNI_MAX,
    GpeHeader,
    GpeNextProtocol,
    VxlanHeader,
    check_bool,
)
from pyvxlan.wire.pcap import PcapStats, frame_of, raw_records

if TYPE_CHECKING:  # pyvxlan.evpn is imported at run time only once BGP is seen (see below)
    from pyvxlan.evpn.codec import Message
    from pyvxlan.evpn.stream import Flow, Item

__all__ = [
    "ChecksumStatus",
    "DecodeOptions",
    "DecodePrinter",
    "OuterDetails",
    "Selection",
    "TimeFormat",
    "bgp_fields",
    "bgp_text",
    "inner_summary",
    "live_records",
    "open_capture",
    "outer_details",
    "register",
    "run",
]

# Entries per text cache, each emptied when full: with 8192, a capture of 300,000 distinct flows
# peaks 25 MB above start-up (96 MB with 65536), and a capture of a few flows is as fast.
_CACHE_MAX: Final = 1 << 13
# At most this many characters go to the output in one write() call. One write of 2.25 GiB to
# stdout once wrote 2 GiB and reported success; bounded chunks never reach such limits.
# Lines are written in batches of this many: memory stays flat whatever the capture holds.
BATCH: Final = 4096
# VLAN tags printed per frame: a frame of thousands of stacked tags must not make a line of megabytes.
_TAGS_SHOWN: Final = 4

# An inner IPv4 header and the first 8 bytes of ICMP: version/IHL, total length, fragment field,
# protocol, addresses, type, code, identifier, sequence number.
_INNER_ICMP4: Final = struct.Struct("!BxH2xHxB2x8sBB2xHH").unpack_from
# The inner Ethernet header of a plain_ipv4 frame: the MAC pair (a cache key as it is) and the ethertype.
_INNER_HEAD: Final = struct.Struct("!12sH").unpack_from
# "000" to "999": two lookups print microseconds faster than a format spec (":06d").
_DIGITS3: Final = tuple(f"{i:03d}" for i in range(1000))
_u16x2 = struct.Struct("!HH").unpack_from
_ICMP_ECHO = struct.Struct("!BB2xHH").unpack_from
# IPv4 version/IHL, total length, fragment field, protocol, the two addresses
_IN4 = struct.Struct("!BxH2xHxB2x8s").unpack_from

ARP: Final = 0x0806
IPV4: Final = ETH_P_IPV4
IPV6: Final = ETH_P_IPV6
# The layers whose NotVxlanError means "IP, but not UDP": where TCP, and so BGP, can be.
_IP_LAYERS: Final = frozenset(("ipv4", "ipv6"))


def _tags_text(vlans: Collection[int]) -> str:
    """``vlan 7 vlan 8 `` for outer tags; past a few, how many more there are."""
    if len(vlans) <= _TAGS_SHOWN:
        return "".join(f"vlan {v} " for v in vlans)
    shown = "".join(f"vlan {v} " for v in list(vlans)[:_TAGS_SHOWN])
    return f"{shown}and {len(vlans) - _TAGS_SHOWN} more vlan tags "


def _mac_pair_text(raw: bytes) -> str:
    """``src > dst`` of the 12 bytes that start an Ethernet frame (destination first)."""
    return f"{format_mac(raw[6:12])} > {format_mac(raw[0:6])}"


# The texts of what repeats from packet to packet, each cache bounded (TextCache).
_mac_pairs: Final = TextCache(_mac_pair_text, _CACHE_MAX)
_mac_pair: Final = _mac_pairs.__getitem__


_ip: Final = TextCache(ip_text, _CACHE_MAX).__getitem__  # an address, 4 or 16 packed bytes


def _ip_port(raw: bytes, port: int) -> str:
    return f"[{_ip(raw)}]:{port}" if len(raw) == 16 else f"{_ip(raw)}:{port}"


def _icmp6(buf: bytes, p: int, end: int) -> str:
    if end - p < 4:
        return "ICMPv6 truncated"
    icmp_type, code = buf[p], buf[p + 1]
    if icmp_type in (128, 129) and end - p >= 8:
        ident, seq = _u16x2(buf, p + 4)
        kind = "request" if icmp_type == 128 else "reply"
        return f"ICMPv6 echo {kind} id {ident} seq {seq}"
    if icmp_type in (135, 136) and end - p >= 24:
        target = _ip(buf[p + 8 : p + 24])
        if icmp_type == 135:
            return f"ICMPv6 neighbor solicitation who-has {target}"
        return f"ICMPv6 neighbor advertisement {target}"
    if icmp_type == 133:
        return "ICMPv6 router solicitation"
    if icmp_type == 134:
        return "ICMPv6 router advertisement"
    return f"ICMPv6 type {icmp_type} code {code}"


def _transport(name: str, addrs: tuple[bytes, bytes], buf: bytes, p: int, end: int) -> str:
    src, dst = addrs
    if end - p < 4:
        return f"{_ip(src)} > {_ip(dst)} {name} truncated"
    sport, dport = _u16x2(buf, p)
    return f"{_ip_port(src, sport)} > {_ip_port(dst, dport)} {name}"


def _ip4_pair_texts(addrs: bytes) -> tuple[str, str, str]:
    """``(src, dst, "src > dst")`` for the 8 address bytes of an IPv4 header."""
    src, dst = _ip(addrs[:4]), _ip(addrs[4:])
    return src, dst, f"{src} > {dst}"


_ip4_pairs: Final = TextCache(_ip4_pair_texts, _CACHE_MAX)


def _ipv4(buf: bytes, p: int, end: int) -> str:
    if end - p < 20:
        return "IPv4 truncated"
    vihl, total, frag, proto, addrs = _IN4(buf, p)
    if vihl >> 4 != 4:
        return f"IPv4 version {vihl >> 4}"
    ihl = (vihl & 0x0F) * 4
    if ihl <= total < end - p:
        end = p + total  # what follows is padding
    texts = _ip4_pairs[addrs]
    if frag & 0x1FFF:
        return f"IPv4 {texts[2]} fragment proto {proto}"
    q = p + ihl
    if proto == 1:
        if end - q < 8:
            return f"IPv4 {texts[2]} ICMP truncated"
        icmp_type, code, ident, seq = _ICMP_ECHO(buf, q)
        if icmp_type == 8 and code == 0:
            return f"IPv4 {texts[2]} ICMP echo request id {ident} seq {seq}"
        if icmp_type == 0 and code == 0:
            return f"IPv4 {texts[2]} ICMP echo reply id {ident} seq {seq}"
        return f"IPv4 {texts[2]} ICMP type {icmp_type} code {code}"
    if proto == 17 or proto == 6:  # noqa: PLR1714 - two compares beat a tuple here
        name = "UDP" if proto == 17 else "TCP"
        if end - q < 4:
            return f"IPv4 {texts[2]} {name} truncated"
        sport, dport = _u16x2(buf, q)
        return f"IPv4 {texts[0]}:{sport} > {texts[1]}:{dport} {name}"
    return f"IPv4 {texts[2]} proto {proto}"


def _ipv6(buf: bytes, p: int, end: int) -> str:
    if end - p < 40 or buf[p] >> 4 != 6:
        return "IPv6 truncated" if end - p < 40 else f"IPv6 version {buf[p] >> 4}"
    src, dst = buf[p + 8 : p + 24], buf[p + 24 : p + 40]
    nh = buf[p + 6]
    q = p + 40
    while nh in IPV6_EXTENSION_HEADERS and end - q >= 8:
        nh, q = buf[q], q + (buf[q + 1] + 1) * 8
    if nh == 44:
        return f"IPv6 {_ip(src)} > {_ip(dst)} fragment"
    if nh == 58:
        return f"IPv6 {_ip(src)} > {_ip(dst)} {_icmp6(buf, q, end)}"
    if nh == 17:
        return "IPv6 " + _transport("UDP", (src, dst), buf, q, end)
    if nh == 6:
        return "IPv6 " + _transport("TCP", (src, dst), buf, q, end)
    return f"IPv6 {_ip(src)} > {_ip(dst)} next header {nh}"


def _arp(buf: bytes, p: int, end: int) -> str:
    if end - p < 8:
        return "ARP truncated"
    htype, ptype = _u16x2(buf, p)
    op = (buf[p + 6] << 8) | buf[p + 7]
    if htype == 1 and ptype == IPV4 and buf[p + 4] == 6 and buf[p + 5] == 4:
        if end - p < 28:
            return "ARP truncated"
        if op == 1:
            return f"ARP who-has {_ip(buf[p + 24 : p + 28])} tell {_ip(buf[p + 14 : p + 18])}"
        if op == 2:
            return f"ARP reply {_ip(buf[p + 14 : p + 18])} is-at {format_mac(buf[p + 8 : p + 14])}"
    return f"ARP op {op}"


def _l3(etype: int, buf: bytes, p: int, end: int) -> str:
    if etype == IPV4:
        return _ipv4(buf, p, end)
    if etype == ARP:
        return _arp(buf, p, end)
    if etype == IPV6:
        return _ipv6(buf, p, end)
    return f"ethertype {etype:#06x}"


def inner_summary(buf: bytes, start: int, end: int) -> str:
    """A short text for the inner Ethernet frame ``buf[start:end]``: MACs, then ARP/IP/ND details.

    >>> inner_summary(bytes.fromhex("ffffffffffff020000000001" "0806" "0001080006040001" "020000000001cb007101"
    ...                             "000000000000cb007102"), 0, 42)
    '02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP who-has 203.0.113.2 tell 203.0.113.1'
    """
    if end - start < 14:
        return f"ethernet truncated ({end - start} bytes)"
    etype = (buf[start + 12] << 8) | buf[start + 13]
    p = start + 14
    tags = ""
    n = 0
    while etype in VLAN_ETHERTYPES and end - p >= 4:
        if n < _TAGS_SHOWN:
            tags += f"vlan {((buf[p] << 8) | buf[p + 1]) & 0x0FFF}, "
        n += 1
        etype = (buf[p + 2] << 8) | buf[p + 3]
        p += 4
    if n > _TAGS_SHOWN:
        tags += f"and {n - _TAGS_SHOWN} more vlan tags, "
    return f"{_mac_pair(buf[start : start + 12])}, {tags}{_l3(etype, buf, p, end)}"


def _gpe_inner(header: GpeHeader, buf: bytes, start: int, end: int) -> str:
    if header.carries_ethernet:
        return inner_summary(buf, start, end)
    np = header.word0 & GPE_NP_MASK
    if np == GpeNextProtocol.IPV4:
        return _ipv4(buf, start, end)
    if np == GpeNextProtocol.IPV6:
        return _ipv6(buf, start, end)
    name = GpeNextProtocol(np).name if np in _GPE_NAMES else f"next protocol {np}"
    return f"{name}, {end - start} bytes"


_GPE_NAMES: Final = frozenset(int(p) for p in GpeNextProtocol)


def header_text(header: VxlanHeader | GpeHeader) -> str:
    """``VXLAN vni 10 flags [I]``, with GBP, GPE and reserved-bit details when present.

    >>> from pyvxlan.wire.header import GroupPolicy
    >>> header_text(VxlanHeader(10, group_policy=GroupPolicy(50000, dont_learn=True)))
    'VXLAN vni 10 flags [G,I] gbp id 50000 dont-learn'
    """
    w0 = header.word0
    if isinstance(header, GpeHeader):
        flags = ",".join(n for bit, n in ((FLAG_I, "I"), (GPE_P, "P"), (GPE_B, "B"), (GPE_O, "O")) if w0 & bit)
        np = w0 & GPE_NP_MASK
        np_text = GpeNextProtocol(np).name if np in _GPE_NAMES else str(np)
        text = f"VXLAN-GPE vni {header.vni} flags [{flags}] next {np_text}"
        if header.version:
            text += f" version {header.version}"
    else:
        flags = ",".join(n for bit, n in ((FLAG_G, "G"), (FLAG_I, "I")) if w0 & bit)
        text = f"VXLAN vni {header.vni} flags [{flags}]"
        gp = header.group_policy
        if gp is not None:
            text += f" gbp id {gp.policy_id}"
            if w0 & GBP_D:
                text += " dont-learn"
            if w0 & GBP_A:
                text += " policy-applied"
    if header.reserved:
        text += f" reserved {header.reserved:#018x}"
    return text


def _outer_text(src: bytes, dst: bytes, ports: tuple[int, int], vlans: tuple[int, ...], header: Any) -> str:
    sport, dport = ports
    tags = _tags_text(vlans) if vlans else ""
    return f"{tags}{_ip_port(src, sport)} > {_ip_port(dst, dport)} {header_text(header)}"


class TimeFormat(enum.Enum):
    """How a text line shows the capture time (``--time-format``); JSON always gives epoch seconds."""

    CLOCK = "clock"  # HH:MM:SS.uuuuuu, tcpdump's default (in UTC here)
    ABS = "abs"  # YYYY-MM-DD HH:MM:SS.uuuuuu, tcpdump -tttt
    REL = "rel"  # HH:MM:SS.uuuuuu since the first packet shown, tcpdump -ttttt
    EPOCH = "epoch"  # seconds since the epoch, tcpdump -tt


class ChecksumStatus(enum.Enum):
    """The outer UDP checksum of a packet, verified over the pseudo-header, as ``-v`` shows it."""

    OK = "ok"
    BAD = "bad"
    NONE = "none"  # zero: no checksum sent (a Linux device with noudpcsum, or udp6zerocsumtx over IPv6)
    UNVERIFIED = "unverified"  # not all of the datagram was captured (snap length, GSO)


@dataclass(frozen=True, slots=True)
class OuterDetails:
    """What ``-v`` adds about the outer headers. IPv4 has ``df`` and ``ip_id``; IPv6 ``flow_label``."""

    tos: int  # IPv4 TOS byte, IPv6 traffic class
    df: bool | None
    ip_id: int | None
    flow_label: int | None
    udp_checksum: ChecksumStatus

    def text(self, ttl: int) -> str:
        """``ttl 64, tos 0x00, id 7, DF, udp sum ok`` (IPv6: ``hlim 64, class 0x00, flowlabel 0x00000, ...``)."""
        if self.flow_label is None:
            df = ", DF" if self.df else ""
            return f"ttl {ttl}, tos {self.tos:#04x}, id {self.ip_id}{df}, udp sum {self.udp_checksum.value}"
        return f"hlim {ttl}, class {self.tos:#04x}, flowlabel {self.flow_label:#07x}, udp sum {self.udp_checksum.value}"

    def json_fields(self) -> str:
        """The keys ``tos``, ``df``, ``ip_id``, ``flow_label``, ``udp_checksum`` as a JSON fragment."""
        fields = {
            "tos": self.tos,
            "df": self.df,
            "ip_id": self.ip_id,
            "flow_label": self.flow_label,
            "udp_checksum": self.udp_checksum.value,
        }
        return json.dumps(fields)[1:-1]


def outer_details(d: Decapsulated, buf: bytes, start: int) -> OuterDetails:
    """The outer TOS, DF, IP ID or flow label and UDP checksum status of ``d``, decoded from ``buf[start:]``.

    The checksum is verified, not only shown: RFC 768's sum over the IPv4 or IPv6 pseudo-header
    and the whole datagram. A capture taken on the sending host shows ``bad`` where the NIC fills
    the checksum in after the capture point (checksum offload), as tcpdump -v shows it too.
    """
    off = start + 14 + 4 * len(d.vlans)  # outer IP header, after the MACs and any VLAN tags
    udp = start + d.inner_offset - 16  # the UDP header precedes the 8-byte VXLAN header
    ulen = (buf[udp + 4] << 8) | buf[udp + 5]
    if d.ip_version == 4:
        tos, ip_id, df, flow = buf[off + 1], (buf[off + 4] << 8) | buf[off + 5], bool(buf[off + 6] & 0x40), None
    else:
        word = int.from_bytes(buf[off : off + 4], "big")
        tos, ip_id, df, flow = (word >> 20) & 0xFF, None, None, word & 0xFFFFF
    end = start + d.inner_offset + len(d.inner)
    if d.udp_checksum == 0:
        status = ChecksumStatus.NONE
    elif ulen < 8 or udp + ulen > end:
        status = ChecksumStatus.UNVERIFIED
    else:
        pseudo = pseudo_header(d.outer_src_packed, d.outer_dst_packed, ulen, IPPROTO_UDP)
        ok = internet_checksum(pseudo + buf[udp : udp + ulen]) == 0
        status = ChecksumStatus.OK if ok else ChecksumStatus.BAD
    return OuterDetails(tos, df, ip_id, flow, status)


def _inner_l3(header: VxlanHeader | GpeHeader, buf: bytes, start: int, end: int) -> tuple[int, int]:
    """The inner network protocol (an ethertype, -1 when none) and where its header starts."""
    if not header.carries_ethernet:
        np = header.word0 & GPE_NP_MASK
        return (IPV4 if np == GpeNextProtocol.IPV4 else IPV6 if np == GpeNextProtocol.IPV6 else -1), start
    if end - start < 14:
        return -1, start
    etype = (buf[start + 12] << 8) | buf[start + 13]
    p = start + 14
    while etype in VLAN_ETHERTYPES and end - p >= 4:
        etype = (buf[p + 2] << 8) | buf[p + 3]
        p += 4
    return etype, p


def inner_addresses(header: VxlanHeader | GpeHeader, buf: bytes, start: int, end: int) -> tuple[bytes, ...]:
    """The packed IP addresses of the inner frame ``buf[start:end]``: IPv4, IPv6 or ARP (sender, target)."""
    etype, p = _inner_l3(header, buf, start, end)
    if etype == IPV4 and end - p >= 20:
        return buf[p + 12 : p + 16], buf[p + 16 : p + 20]
    if etype == IPV6 and end - p >= 40:
        return buf[p + 8 : p + 24], buf[p + 24 : p + 40]
    if etype == ARP and end - p >= 28 and buf[p + 4] == 6 and buf[p + 5] == 4:
        return buf[p + 14 : p + 18], buf[p + 24 : p + 28]
    return ()


def inner_ip_length(header: VxlanHeader | GpeHeader, buf: bytes, start: int, end: int) -> int | None:
    """The inner IPv4 total length or IPv6 length (payload + 40) as its header says; ``None`` if not IP."""
    etype, p = _inner_l3(header, buf, start, end)
    if etype == IPV4 and end - p >= 4:
        return (buf[p + 2] << 8) | buf[p + 3]
    if etype == IPV6 and end - p >= 6:
        return ((buf[p + 4] << 8) | buf[p + 5]) + 40
    return None


@dataclass(frozen=True, slots=True)
class Selection:
    """Which packets are shown, like tcpdump's primitives: a packet must match every kind given
    (AND across kinds) and, within a kind, any one value (OR). An empty selection shows all."""

    vnis: frozenset[int] = frozenset()
    hosts: frozenset[bytes] = frozenset()  # packed addresses: the outer or the inner IP/ARP ones
    macs: frozenset[bytes] = frozenset()  # 6 bytes: the outer or the inner Ethernet addresses

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
            ("vnis", "VNI", lambda v: type(v) is int and 0 <= v <= VNI_MAX),
            ("hosts", "packed IPv4 or IPv6 address", lambda v: type(v) is bytes and len(v) in (4, 16)),
            ("macs", "6-byte MAC address", lambda v: type(v) is bytes and len(v) == 6),
        )
        for name, what, ok in checks:
            values = getattr(self, name)
            if not isinstance(values, frozenset):
                raise ConfigError(name, f"must be a frozenset, got {type(values).__name__}")
            for v in values:
                if not ok(v):
                    raise ConfigError(name, f"holds {v!r:.40}, not a {what}")

    @property
    def empty(self) -> bool:
        """True when every packet matches."""
        return not (self.vnis or self.hosts or self.macs)

    def matches(self, d: Decapsulated, buf: bytes, start: int) -> bool:
        """Whether the packet ``d``, decoded from ``buf[start:]``, is selected."""
        header = d.header
        if self.vnis and header.vni not in self.vnis:
            return False
        istart = start + d.inner_offset
        iend = istart + len(d.inner)
        if self.macs:
            outer = d.outer_macs_packed
            seen = {outer[0:6], outer[6:12]}
            if header.carries_ethernet and iend - istart >= 12:
                seen |= {buf[istart : istart + 6], buf[istart + 6 : istart + 12]}
            if seen.isdisjoint(self.macs):
                return False
        if self.hosts:
            seen = {d.outer_src_packed, d.outer_dst_packed, *inner_addresses(header, buf, istart, iend)}
            if seen.isdisjoint(self.hosts):
                return False
        return True


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What ``pyvxlan decode`` prints: the command's options, checked once."""

    as_json: bool = False
    verbose: bool = False
    strict: bool = False  # Linux's receive rules for the header; dropped packets show the reason
    gbp: bool = False  # with strict: the device has `gbp` (the G bits are not reserved)
    time_format: TimeFormat = TimeFormat.CLOCK
    selection: Selection = Selection()
    count: int | None = None  # stop after this many lines of packets

    def __post_init__(self) -> None:
        for name in ("as_json", "verbose", "strict", "gbp"):
            if type(getattr(self, name)) is not bool:
                raise ConfigError(name, f"must be a bool, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.time_format, TimeFormat):
            raise ConfigError("time_format", f"must be a TimeFormat, got {self.time_format!r:.40}")
        if not isinstance(self.selection, Selection):
            raise ConfigError("selection", f"must be a Selection, got {type(self.selection).__name__}")
        if self.count is not None and (type(self.count) is not int or self.count < 1):
            raise ConfigError("count", f"must be an int >= 1 or None, got {self.count!r:.40}")


def _json_outer(src: bytes, dst: bytes, ports_ttl: tuple[int, int, int], vlans: tuple[int, ...], header: Any) -> str:
    """The outer keys of a JSON line, ``"type"`` to ``"gbp"`` (GPE: to ``"oam"``), without braces.

    ``ports_ttl`` is the UDP source and destination port and the outer TTL.
    """
    gpe = isinstance(header, GpeHeader)
    obj: dict[str, Any] = {
        "type": "vxlan-gpe" if gpe else "vxlan",
        "outer_src": _ip(src),
        "outer_dst": _ip(dst),
        "src_port": ports_ttl[0],
        "dst_port": ports_ttl[1],
        "ttl": ports_ttl[2],
        "vlans": list(vlans),
        "vni": header.vni,
        "flags": header.flags,
        "i_flag": header.i_flag,
        # 64 bits: a JSON number that wide loses its low bits in most readers (jq, JavaScript).
        "reserved": f"{header.reserved:#018x}",
    }
    if gpe:
        np = header.next_protocol
        obj.update(
            next_protocol=np.name if isinstance(np, GpeNextProtocol) else np,
            version=header.version,
            p_flag=header.p_flag,
            bum=header.bum,
            oam=header.oam,
        )
    else:
        gp = header.group_policy
        obj["gbp"] = (
            None
            if gp is None
            else {"policy_id": gp.policy_id, "dont_learn": gp.dont_learn, "policy_applied": gp.policy_applied}
        )
    return json.dumps(obj)[1:-1]


def _json_pair_text(raw: bytes) -> str:
    """``"inner_src": ..., "inner_dst": ...`` of the 12 bytes that start an Ethernet frame."""
    return f'"inner_src": "{format_mac(raw[6:12])}", "inner_dst": "{format_mac(raw[0:6])}"'


_json_pairs: Final = TextCache(_json_pair_text, _CACHE_MAX)
_json_pair: Final = _json_pairs.__getitem__


def _hms(sec: int) -> str:
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}."


# --- BGP in the underlay -------------------------------------------------------------------
# TCP to or from port 179 is read only on the path of packets that are not VXLAN, so the VXLAN
# fast path pays nothing for it; pyvxlan.evpn is imported the first time a non-UDP IP packet
# shows up (a capture of VXLAN alone never loads it).

_NOTIFICATION_CODES: Final = {
    1: "message header error",
    2: "OPEN error",
    3: "UPDATE error",
    4: "hold timer expired",
    5: "FSM error",
    6: "cease",
    7: "ROUTE-REFRESH error",
}


def bgp_fields(message: Message) -> list[dict[str, Any]]:
    """The fields ``pyvxlan decode`` shows of one BGP message (a :data:`pyvxlan.evpn.Message`):
    one dict per EVPN route of an UPDATE, else one dict. Text lines and JSON lines show these."""
    from pyvxlan.evpn import codec as c  # loaded only once BGP is seen

    if isinstance(message, c.Open):
        return [
            {
                "message": "OPEN",
                "version": message.version,
                "asn": message.asn,
                "hold_time": message.hold_time,
                "router_id": message.router_id,
                "evpn": message.supports(c.AFI_L2VPN, c.SAFI_EVPN),
            }
        ]
    if isinstance(message, c.Keepalive):
        return [{"message": "KEEPALIVE"}]
    if isinstance(message, c.Notification):
        return [
            {"message": "NOTIFICATION", "code": message.code, "subcode": message.subcode, "data": message.data.hex()}
        ]
    if isinstance(message, c.RouteRefresh):
        return [{"message": "ROUTE-REFRESH", "afi": message.afi, "safi": message.safi, "subtype": message.subtype}]
    assert isinstance(message, c.Update)
    reach, unreach = message.reach, message.unreach
    routes = [(r, False) for r in (reach.routes if reach else ())]
    routes += [(r, True) for r in (unreach.routes if unreach else ())]
    if not routes:
        return [{"message": "UPDATE", "end_of_rib": message.is_end_of_rib}]
    rts: list[str] = []
    encap = mobility = router_mac = None
    for com in message.communities:
        if isinstance(com, c.RouteTarget):
            rts.append(f"{com.administrator}:{com.assigned}")
        elif isinstance(com, c.Encapsulation):
            encap = com.tunnel_type
        elif isinstance(com, c.MacMobility):
            mobility = {"sequence": com.sequence, "sticky": com.sticky}
        elif isinstance(com, c.RouterMac):
            router_mac = com.mac
    pmsi: dict[str, Any] | None = None
    if message.pmsi is not None:
        pmsi = {"tunnel_type": 6, "vni": message.pmsi.vni, "endpoint": message.pmsi.tunnel_id}
    else:
        for attr in message.attributes:
            if isinstance(attr, c.RawAttribute) and attr.type_code == 22 and len(attr.data) >= 2:
                pmsi = {"tunnel_type": attr.data[1], "vni": None, "endpoint": None}
    path = {
        "next_hop": reach.next_hop if reach else None,
        "route_targets": rts,
        "encapsulation": encap,
    }
    out: list[dict[str, Any]] = []
    for route, withdrawn in routes:
        common: dict[str, Any] = {"message": "UPDATE", "withdrawn": withdrawn, "route_type": int(route.route_type)}
        if isinstance(route, c.MacIpRoute):
            fields = {
                "rd": str(route.rd),
                "esi": route.esi.hex(),
                "ethernet_tag": route.ethernet_tag,
                "mac": route.mac,
                "ip": route.ip,
                "labels": list(route.labels),
                "vni": route.vni,
                **path,
                "mac_mobility": mobility,
                "router_mac": router_mac,
            }
        elif isinstance(route, c.InclusiveMulticastRoute):
            fields = {
                "rd": str(route.rd),
                "ethernet_tag": route.ethernet_tag,
                "originator": route.originator,
                **path,
                "pmsi": pmsi,
            }
        elif isinstance(route, c.IpPrefixRoute):
            fields = {
                "rd": str(route.rd),
                "esi": route.esi.hex(),
                "ethernet_tag": route.ethernet_tag,
                "prefix": f"{route.prefix}/{route.prefix_len}",
                "gateway": route.gateway,
                "vni": route.label,
                **path,
                "router_mac": router_mac,
            }
        else:
            fields = {"data": route.data.hex(), **path}
        out.append(common | fields)
    return out


def bgp_text(fields: dict[str, Any]) -> str:
    """The text after ``BGP`` of one line of :func:`bgp_fields`.

    >>> bgp_text({"message": "NOTIFICATION", "code": 6, "subcode": 2, "data": ""})
    'NOTIFICATION code 6 (cease) subcode 2'
    """
    kind = fields["message"]
    if kind == "OPEN":
        evpn = " l2vpn-evpn" if fields["evpn"] else ""
        return f"OPEN version {fields['version']} as {fields['asn']} hold {fields['hold_time']} id {fields['router_id']}{evpn}"
    if kind == "NOTIFICATION":
        name = _NOTIFICATION_CODES.get(fields["code"])
        text = f"NOTIFICATION code {fields['code']}{f' ({name})' if name else ''} subcode {fields['subcode']}"
        return text + (f" data {fields['data']}" if fields["data"] else "")
    if kind == "ROUTE-REFRESH":
        return f"ROUTE-REFRESH afi {fields['afi']} safi {fields['safi']}"
    if kind != "UPDATE" or "route_type" not in fields:
        if kind == "UPDATE":
            return "UPDATE End-of-RIB L2VPN EVPN" if fields["end_of_rib"] else "UPDATE without EVPN routes"
        return str(kind)
    withdrawn = fields["withdrawn"]
    parts = ["UPDATE withdraw" if withdrawn else "UPDATE", f"type {fields['route_type']}"]
    if "rd" in fields:
        parts.append(f"rd {fields['rd']}")
    if fields.get("esi", "0" * 20) != "0" * 20:
        parts.append(f"esi {fields['esi']}")
    if fields.get("ethernet_tag"):
        parts.append(f"etag {fields['ethernet_tag']}")
    for key, name in (("mac", "mac"), ("ip", "ip"), ("originator", "originator"), ("prefix", "prefix")):
        if fields.get(key) is not None:
            parts.append(f"{name} {fields[key]}")
    if "gateway" in fields:
        parts.append(f"gateway {fields['gateway']}")
    if "data" in fields:
        parts.append(f"({len(fields['data']) // 2} bytes)")
    if not withdrawn:
        if "labels" in fields:
            parts.append(f"vni {fields['labels'][0]}")
            if len(fields["labels"]) > 1:
                parts.append(f"l3vni {fields['labels'][1]}")
        elif "vni" in fields:
            parts.append(f"vni {fields['vni']}")
    if fields["next_hop"] is not None:
        parts.append(f"next-hop {fields['next_hop']}")
    if fields["route_targets"]:
        parts.append("rt " + ",".join(fields["route_targets"]))
    if fields["encapsulation"] is not None:
        parts.append("encap vxlan" if fields["encapsulation"] == 8 else f"encap {fields['encapsulation']}")
    mobility = fields.get("mac_mobility")
    if mobility is not None:
        parts.append(f"mobility seq {mobility['sequence']}{' sticky' if mobility['sticky'] else ''}")
    if fields.get("router_mac") is not None:
        parts.append(f"router-mac {fields['router_mac']}")
    pmsi = fields.get("pmsi")
    if pmsi is not None:
        if pmsi["tunnel_type"] == 6:
            parts.append(f"pmsi ingress-replication vni {pmsi['vni']} endpoint {pmsi['endpoint']}")
        else:
            parts.append(f"pmsi tunnel-type {pmsi['tunnel_type']}")
    return " ".join(parts)


def _bgp_selected(select: Selection, flow: Flow, fields: dict[str, Any]) -> bool:
    """Whether a BGP line matches a selection: VNIs in the route, addresses of the TCP flow or in
    the route (IP, next hop, originator, gateway, PMSI endpoint), MACs in the route."""
    if select.vnis:
        pmsi = fields.get("pmsi") or {}
        if select.vnis.isdisjoint({*fields.get("labels", ()), fields.get("vni"), pmsi.get("vni")}):
            return False
    if select.hosts:
        texts = {_ip(h) for h in select.hosts}
        pmsi = fields.get("pmsi") or {}
        prefix = fields.get("prefix")
        seen = {_ip(flow.src), _ip(flow.dst), pmsi.get("endpoint"), prefix.split("/")[0] if prefix else None}
        seen |= {fields.get(k) for k in ("ip", "next_hop", "originator", "gateway")}
        if texts.isdisjoint(seen):
            return False
    if select.macs:
        macs = {format_mac(m) for m in select.macs}
        if macs.isdisjoint({fields.get("mac"), fields.get("router_mac")}):
            return False
    return True


class DecodePrinter:
    """Turns records into lines; keeps the caches and the totals of one run.

    Lines wait in :attr:`pending` until a batch is full, the input would block (:meth:`drain`),
    or the records end.
    """

    def __init__(
        self, ports: Collection[int], gpe_ports: Collection[int], options: DecodeOptions | None = None
    ) -> None:
        self.ports = frozenset(ports)
        self.gpe_ports = frozenset(gpe_ports)
        options = DecodeOptions() if options is None else options
        if not isinstance(options, DecodeOptions):
            raise ConfigError("options", f"must be a DecodeOptions, got {type(options).__name__}")
        self.stats = PcapStats()
        self.shown = 0  # lines of packets written (VXLAN, dropped, malformed)
        self.pending: list[str] = []
        self.bgp_messages = 0  # BGP messages decoded from TCP port 179
        self._out: Callable[[str], Any] | None = None
        self._bgp: Any = None  # pyvxlan.evpn.stream.BgpStreams, from the first non-UDP IP packet on
        self._bgp_seen = False  # a TCP segment to or from port 179 was read
        self._bgp_ts = 0.0  # the time of the last one
        self._configure(options)

    def _configure(self, options: DecodeOptions) -> None:
        self.options = options
        self._outer: dict[tuple[Any, ...], str] = {}
        self._as_json = options.as_json
        fmt = TimeFormat.EPOCH if options.as_json else options.time_format
        self._prefix: Callable[[int], str] = {
            TimeFormat.CLOCK: lambda sec: time.strftime("%H:%M:%S.", time.gmtime(sec)),
            TimeFormat.ABS: lambda sec: time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(sec)),
            TimeFormat.REL: _hms,
            TimeFormat.EPOCH: lambda sec: f"{sec}.",
        }[fmt]
        # Wall-clock formats read a negative time as before the epoch; the others need a sign.
        self._signed = fmt in (TimeFormat.REL, TimeFormat.EPOCH)
        self._rel = fmt is TimeFormat.REL
        self._base: int | None = None if self._rel else 0  # microseconds subtracted from each time
        self._sec = -1
        self._sec_text = ""

    def _stamp(self, usec: int) -> str:
        if usec < 0 and self._signed:
            return "-" + self._stamp(-usec)
        sec = usec // 1_000_000
        if sec != self._sec:
            self._sec = sec
            self._sec_text = self._prefix(sec)
        return f"{self._sec_text}{usec - sec * 1_000_000:06d}"

    def time_text(self, ts: float) -> str:
        """The time of a line as ``--time-format`` says (UTC; tcpdump prints local time, UTC keeps
        output reproducible); in JSON, seconds since the epoch to the microsecond."""
        usec = round(ts * 1_000_000)
        if self._base is None:
            self._base = usec  # REL: the first line shown is 00:00:00.000000
        return self._stamp(usec - self._base)

    def outer(self, d: Decapsulated) -> str:
        """The outer text (or JSON keys) of a decoded packet: VLAN tags, addresses, ports, TTL and
        the whole header.

        The cache key holds all 8 header bytes (a header is its bytes, and compares its type too):
        packets of one flow differ in VNI, GBP policy, GPE next protocol or reserved bits.
        """
        key = (d.outer_addresses_packed, d.src_port, d.dst_port, d.ttl, d.vlans, d.header)
        text = self._outer.get(key)
        if text is None:
            src, dst = d.outer_src_packed, d.outer_dst_packed
            if self._as_json:
                text = _json_outer(src, dst, (d.src_port, d.dst_port, d.ttl), d.vlans, d.header)
            else:
                text = _outer_text(src, dst, (d.src_port, d.dst_port), d.vlans, d.header)
            if len(self._outer) >= _CACHE_MAX:
                self._outer.clear()
            self._outer[key] = text
        return text

    def _fast_outer(self, addrs: bytes, ports: tuple[int, int], hdr: bytes, ttl: int) -> str:
        """The outer text of a :func:`~pyvxlan.wire.frame.plain_ipv4` frame, or "" when its
        destination port is not a VXLAN port (decapsulate then says why)."""
        if ports[1] not in self.ports:
            return ""
        header = VxlanHeader.decode(hdr)
        if self._as_json:
            return _json_outer(addrs[:4], addrs[4:], (*ports, ttl), (), header)
        return _outer_text(addrs[:4], addrs[4:], ports, (), header)

    def line(self, ts: float, d: Decapsulated, buf: bytes, start: int) -> str:
        """The line (text or JSON) of a packet that :func:`~pyvxlan.decapsulate` decoded from ``buf[start:]``."""
        istart = start + d.inner_offset
        iend = istart + len(d.inner)
        header = d.header
        ethernet = header.carries_ethernet
        if ethernet or not isinstance(header, GpeHeader):
            inner = inner_summary(buf, istart, iend)
        else:
            inner = _gpe_inner(header, buf, istart, iend)
        verbose = self.options.verbose
        if self._as_json:
            parts = ['{"time": ', self.time_text(ts), ", ", self.outer(d)]
            if verbose:
                parts += (", ", outer_details(d, buf, start).json_fields())
            if ethernet and iend - istart >= 14:
                parts += (", ", _json_pair(buf[istart : istart + 12]))
                inner = inner.split(", ", 1)[1]  # the MAC pair is in the two keys above
            parts.append(f', "inner_length": {iend - istart}')
            if verbose:
                parts.append(f', "inner_ip_length": {json.dumps(inner_ip_length(header, buf, istart, iend))}')
            parts += (', "summary": ', json.dumps(inner), "}\n")
            return "".join(parts)
        if verbose:
            details = outer_details(d, buf, start).text(d.ttl)
            ip_len = inner_ip_length(header, buf, istart, iend)
            lengths = f"inner length {iend - istart}" + (f", ip length {ip_len}" if ip_len is not None else "")
            return f"{self.time_text(ts)} ({details}) {self.outer(d)}: {inner} ({lengths})\n"
        return f"{self.time_text(ts)} {self.outer(d)}: {inner}\n"

    def json_line(self, ts: float, d: Decapsulated, buf: bytes, start: int) -> str:
        """:meth:`line` of a JSON printer (kept for callers of the earlier name)."""
        return self.line(ts, d, buf, start)

    def malformed_line(self, ts: float, exc: DecodeError) -> str:
        """The line of a packet that is VXLAN-shaped but broken."""
        if self._as_json:
            return f'{{"time": {self.time_text(ts)}, "malformed": {json.dumps(str(exc))}}}\n'
        return f"{self.time_text(ts)} malformed: {exc}\n"

    def dropped_line(self, ts: float, d: Decapsulated, exc: DecodeError) -> str:
        """The line of a packet that ``--strict`` drops as Linux would: its outer headers and why."""
        if self._as_json:
            return f'{{"time": {self.time_text(ts)}, {self.outer(d)}, "dropped": {json.dumps(str(exc))}}}\n'
        return f"{self.time_text(ts)} {self.outer(d)}: dropped: {exc}\n"

    def bgp_lines(self, ts: float, buf: bytes, start: int, end: int, room: int | None = None) -> int:
        """Read the Ethernet frame ``buf[start:end]`` as BGP if it is TCP to or from port 179: the
        lines of the messages it completes go to :attr:`pending` (at most ``room`` of them).
        Returns how many lines; 0 also when the frame is not BGP."""
        if self._bgp is None:
            from pyvxlan.evpn.stream import BgpStreams  # see the BGP section above

            self._bgp = BgpStreams()
        from pyvxlan.evpn.stream import tcp_segment  # loaded once, above

        seg = tcp_segment(buf, start, end)
        if seg is None:
            return 0
        self._bgp_seen = True
        self._bgp_ts = ts
        items = self._bgp.feed(seg.flow, seg.seq, seg.payload, syn=seg.syn, end=seg.end, length=seg.length)
        return self._bgp_item_lines(ts, seg.flow, items, room)

    def finish(self) -> None:
        """The end of the input: what the BGP flows still hold (segments past a gap) is decoded,
        and what stays incomplete is counted. The lines are written at once."""
        if self._bgp is None:
            return
        room = None if self.options.count is None else self.options.count - self.shown
        for flow, items in self._bgp.finish().items():
            n = self._bgp_item_lines(self._bgp_ts, flow, items, room)
            self.shown += n
            if room is not None:
                room -= n
        self.drain()

    def _bgp_item_lines(self, ts: float, flow: Flow, items: list[Item], room: int | None) -> int:
        from pyvxlan.evpn.stream import Undecodable, UndecodableKind  # loaded already

        select = None if self.options.selection.empty else self.options.selection
        stats = self.stats
        lines = self.pending
        n = 0
        for item in items:
            if isinstance(item, Undecodable):
                key = f"bgp: {item.kind.value}"
                stats.reasons[key] = stats.reasons.get(key, 0) + 1
                stats.examples.setdefault(key, item.reason)
                if item.kind is not UndecodableKind.MALFORMED or select is not None:
                    continue
                if room is None or n < room:
                    lines.append(self._bgp_line(ts, flow, None, item.reason))
                    n += 1
                continue
            self.bgp_messages += 1
            for fields in bgp_fields(item):
                if select is not None and not _bgp_selected(select, flow, fields):
                    continue
                if room is None or n < room:
                    lines.append(self._bgp_line(ts, flow, fields, None))
                    n += 1
        return n

    def _bgp_line(self, ts: float, flow: Flow, fields: dict[str, Any] | None, malformed: str | None) -> str:
        if self._as_json:
            obj: dict[str, Any] = {
                "type": "bgp",
                "src": _ip(flow.src),
                "dst": _ip(flow.dst),
                "src_port": flow.sport,
                "dst_port": flow.dport,
            }
            obj |= {"malformed": malformed} if fields is None else fields
            return f'{{"time": {self.time_text(ts)}, {json.dumps(obj)[1:]}\n'
        text = f"malformed: {malformed}" if fields is None else bgp_text(fields)
        return f"{self.time_text(ts)} {_ip_port(flow.src, flow.sport)} > {_ip_port(flow.dst, flow.dport)} BGP {text}\n"

    def drain(self) -> None:
        """Write the pending lines now (the input would block: show what has arrived)."""
        if self.pending and self._out is not None:
            text = "".join(self.pending)
            self.pending.clear()
            self._out(text)

    def record_lines(
        self,
        records: Iterable[tuple[float, int, bytes, int, int, int]],
        out: Callable[[str], Any],
        *,
        fast: bool = True,
        batch: int = BATCH,
        as_json: bool | None = None,
    ) -> None:
        """Decode every record, writing lines through ``out`` in batches of at most ``batch`` lines.

        Every kind of line (packet, malformed) counts toward the batch, so memory stays flat
        whatever the capture holds. ``fast=False`` sends every packet through
        :func:`~pyvxlan.decapsulate` (the tests compare); a selection, a count, ``strict`` and
        ``verbose`` do too. ``as_json``, when given, switches the printer to that output from now on.
        """
        if as_json is not None and as_json != self._as_json:
            self._configure(dataclasses.replace(self.options, as_json=check_bool(as_json, "as_json")))
        opts = self.options
        select = None if opts.selection.empty else opts.selection
        count = opts.count
        strict, gbp = opts.strict, opts.gbp
        as_json = self._as_json
        fast = fast and select is None and count is None and not strict and not opts.verbose
        stats = self.stats
        ports, gpe_ports = self.ports, self.gpe_ports
        fast_outer: dict[tuple[bytes, int, int, bytes, int], str] = {}
        self._out = out
        lines = self.pending
        append = lines.append
        plain, inner_at = plain_ipv4, PLAIN_IPV4_INNER
        inner_head = _INNER_HEAD
        inner_unpack = _INNER_ICMP4
        ip4_pairs = _ip4_pairs
        digits = _DIGITS3
        pair_of = _json_pair if as_json else _mac_pair
        prefix = self._prefix
        signed = self._signed
        rel_pending = self._rel
        base = self._base or 0
        negative = False
        packets = vxlan = shown = 0
        last_sec: int | None = None
        sec_text = ""
        try:
            for ts, linktype, buf, start, end, wirelen in records:
                packets += 1
                fields = plain(buf, start, end) if fast and linktype == 1 else None
                # The codec's fast path: the usual frame, read in one unpack (decapsulate reads it
                # there too); not on a VXLAN port, or anything else, goes through decapsulate below.
                outer = None
                if fields is not None:
                    _tos, ttl, addrs, sport, dport, _csum, hdr = fields
                    # Addresses and the VXLAN header come out as bytes: a cache key without parsing.
                    key = (addrs, sport, dport, hdr, ttl)
                    outer = fast_outer.get(key)
                    if outer is None:
                        outer = self._fast_outer(addrs, (sport, dport), hdr, ttl)  # "" when not a VXLAN port
                        if len(fast_outer) >= _CACHE_MAX:
                            fast_outer.clear()
                        fast_outer[key] = outer
                if outer:
                    vxlan += 1
                    shown += 1
                    i = start + inner_at
                    macs, ietype = inner_head(buf, i)
                    pair = pair_of(macs)
                    p = i + 14
                    inner = ""
                    if ietype == IPV4:
                        if end - p >= 28:
                            # Inlined from _ipv4 for its most common case, an ICMP echo.
                            vihl, total, frag, proto, iaddrs, itype, icode, ident, seq = inner_unpack(buf, p)
                            if (
                                vihl == 0x45
                                and proto == 1
                                and not frag & 0x1FFF
                                and icode == 0
                                and (itype == 8 or itype == 0)  # noqa: PLR1714 - faster than a tuple
                                and (total >= 28 or total >= end - p)
                            ):
                                texts = ip4_pairs[iaddrs]
                                kind = "request" if itype == 8 else "reply"
                                inner = f"IPv4 {texts[2]} ICMP echo {kind} id {ident} seq {seq}"
                        if not inner:
                            inner = _ipv4(buf, p, end)
                    elif ietype in VLAN_ETHERTYPES:
                        inner = inner_summary(buf, i, end).split(", ", 1)[1]
                    else:
                        inner = _l3(ietype, buf, p, end)
                    usec = round(ts * 1_000_000) - base
                    sec = usec // 1_000_000
                    if sec != last_sec:
                        # Once a second of capture: the text of the second, and what is rare.
                        if rel_pending:  # REL: the first line shown is the origin
                            if self._base is None:
                                self._base = round(ts * 1_000_000)
                            base = self._base
                            rel_pending = False
                            usec = round(ts * 1_000_000) - base
                            sec = usec // 1_000_000
                        last_sec = sec
                        sec_text = prefix(sec)
                        negative = usec < 0 and signed  # the same for every time of this second
                    usec -= sec * 1_000_000
                    if negative:
                        stamp = self._stamp(sec * 1_000_000 + usec)
                        if as_json:
                            append(
                                f'{{"time": {stamp}, {outer}, {pair}, "inner_length": {end - i},'
                                f' "summary": "{inner}"}}\n'
                            )
                        else:
                            append(f"{stamp} {outer}: {pair}, {inner}\n")
                    elif as_json:
                        append(
                            f'{{"time": {sec_text}{digits[usec // 1000]}{digits[usec % 1000]}, {outer}, {pair}, '
                            f'"inner_length": {end - i}, "summary": "{inner}"}}\n'
                        )
                    else:
                        append(f"{sec_text}{digits[usec // 1000]}{digits[usec % 1000]} {outer}: {pair}, {inner}\n")
                    if len(lines) >= batch:
                        out("".join(lines))
                        lines.clear()
                    continue
                if linktype == 1:
                    fbuf, fstart = buf, start
                    frame: bytes | memoryview = memoryview(buf)[start:end]
                else:
                    cooked = frame_of(linktype, buf, start, end, stats)
                    if cooked is None:
                        continue
                    fbuf, fstart = bytes(cooked), 0
                    frame = fbuf
                wire = wirelen + len(frame) - (end - start) if wirelen > end - start else 0  # snapped
                try:
                    d = decapsulate(frame, ports=ports, gpe_ports=gpe_ports, wire_length=wire)
                except DecodeError as exc:
                    stats.count_error(exc)
                    if isinstance(exc, NotVxlanError):
                        if exc.layer not in _IP_LAYERS:
                            continue  # not IP, or UDP on another port: not BGP either
                        # TCP (or another IP protocol): BGP when to or from port 179.
                        n = self.bgp_lines(
                            ts, fbuf, fstart, fstart + len(frame), None if count is None else count - shown
                        )
                        if not n:
                            continue
                        shown += n
                        if len(lines) >= batch:
                            out("".join(lines))
                            lines.clear()
                        if shown == count:
                            break
                        continue
                    if select is not None:
                        continue  # a selection cannot match what did not decode
                    append(self.malformed_line(ts, exc))
                else:
                    dropped: DecodeError | None = None
                    if strict:
                        # The library's Linux rules on every packet: the totals do not depend on
                        # what is selected.
                        try:
                            decapsulate(frame, ports=ports, gpe_ports=gpe_ports, strict=True, gbp=gbp, wire_length=wire)
                        except DecodeError as exc:
                            stats.count_error(exc)
                            dropped = exc
                    if dropped is None:
                        vxlan += 1
                    if select is not None and not select.matches(d, fbuf, fstart):
                        continue
                    append(self.line(ts, d, fbuf, fstart) if dropped is None else self.dropped_line(ts, d, dropped))
                shown += 1
                if len(lines) >= batch:
                    out("".join(lines))
                    lines.clear()
                if shown == count:
                    break
        finally:
            # Also when the file turns out to be cut: what was decoded is printed and counted.
            if lines:
                text = "".join(lines)
                lines.clear()
                out(text)
            stats.packets += packets
            stats.vxlan += vxlan
            self.shown += shown

    def totals_text(self) -> str:
        """The last line: how many packets were read, of which kinds (and shown, when selecting)."""
        s = self.stats
        text = f"{s.packets} packets: {s.vxlan} VXLAN, {s.not_vxlan} not VXLAN, {s.malformed} malformed"
        if self._bgp_seen:
            text += f", {self.bgp_messages} BGP messages"
        if not self.options.selection.empty or self.options.count is not None:
            text += f", {self.shown} shown"
        return text + "\n"

    def totals_json(self) -> str:
        """The last JSON line: the totals, lines shown and the skip reasons."""
        s = self.stats
        totals = {
            "packets": s.packets,
            "vxlan": s.vxlan,
            "not_vxlan": s.not_vxlan,
            "malformed": s.malformed,
            "shown": self.shown,
        }
        if self._bgp_seen:
            totals["bgp"] = self.bgp_messages
        return json.dumps({"totals": totals, "reasons": dict(sorted(s.reasons.items()))}) + "\n"


# --- live capture --------------------------------------------------------------------------

ETH_P_ALL: Final = 0x0003
_PACKET_OUTGOING: Final = 4
_ARPHRD_LOOPBACK: Final = 772
_SO_TIMESTAMPNS: Final = 35  # <asm-generic/socket.h>; Python 3.11 does not name it
# Link-layer types by ARPHRD: Ethernet and loopback (a zero Ethernet header) give Ethernet frames;
# tun devices (ARPHRD_NONE) give bare IP. Anything else is counted as an unsupported link type.
_LINKTYPES: Final = {1: 1, 772: 1, 65534: 101}
_SNAPLEN: Final = 262144


def open_capture(interface: str) -> socket.socket:
    """A packet socket that receives every frame of ``interface`` (root or CAP_NET_RAW).

    Raises :class:`~pyvxlan.cli.UsageError` with one line when privilege or the interface is missing.
    """
    try:
        # Protocol 0 receives nothing until bind: no frame of another interface slips in between.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise UsageError(f"capturing on {interface} needs root (CAP_NET_RAW): permission denied") from None
    try:
        sock.bind((interface, ETH_P_ALL))  # Python puts the protocol in network order itself
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENODEV, errno.ENXIO, errno.EINVAL):
            raise UsageError(f"{interface}: no such interface") from None
        raise UsageError(f"{interface}: cannot capture: {exc.strerror}") from None
    except UnicodeError:
        sock.close()
        raise UsageError(f"{interface!r}: no such interface") from None
    sock.setblocking(False)
    return sock


def live_records(
    sock: socket.socket, idle: Callable[[], object] | None = None
) -> Iterator[tuple[float, int, bytes, int, int, int]]:
    """The frames a packet socket receives, as :func:`~pyvxlan.wire.pcap.raw_records` gives records.

    ``idle`` is called whenever no frame is waiting, before blocking for the next one.
    """
    unpack_ts = _TIMESPEC.unpack_from
    while True:
        try:
            data, ancillary, _flags, address = sock.recvmsg(_SNAPLEN, 64)
        except BlockingIOError:
            if idle is not None:
                idle()
            select.select([sock], [], [])
            continue
        hatype = address[3]
        if address[2] == _PACKET_OUTGOING and hatype == _ARPHRD_LOOPBACK:
            continue  # loopback shows each frame twice, going out and coming in; libpcap keeps one
        ts = 0.0
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = unpack_ts(value)
                ts = sec + nsec / 1e9
        if not ts:
            ts = time.time()
        yield ts, _LINKTYPES.get(hatype, 0), data, 0, len(data), len(data)


_TIMESPEC: Final = struct.Struct("@qq")


@contextlib.contextmanager
def open_records(
    path: str | None, interface: str | None = None, idle: Callable[[], object] | None = None
) -> Iterator[Iterator[tuple[float, int, bytes, int, int, int]]]:
    """The records of a capture file (``-``: standard input) or of a live ``interface``."""
    if interface is not None:
        sock = open_capture(interface)
        try:
            yield live_records(sock, idle)
        finally:
            sock.close()
    elif path == "-":
        # Unbuffered: each read returns what the pipe holds, so records stream as they arrive.
        with open(sys.stdin.fileno(), "rb", buffering=0, closefd=False) as f:
            yield raw_records(f, idle=idle)  # raises at once when the input is not a capture
    else:
        if path is None:
            raise ConfigError("path", "give a capture file, - for standard input, or an interface")
        with open(path, "rb") as f:
            yield raw_records(f, idle=idle)


def run(
    path: str | None,
    out: IO[str],
    *,
    ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT),
    gpe_ports: Collection[int] = (VXLAN_GPE_PORT,),
    options: DecodeOptions | None = None,
    interface: str | None = None,
) -> PcapStats:
    """Decode the capture at ``path`` (``-``: standard input, streamed) or live from ``interface``
    to ``out``; returns the totals. Lines are flushed whenever the input would block.

    Raises DecodeError (the file), OSError (opening it), :class:`OutputError` (writing ``out``) or
    KeyboardInterrupt (after writing the totals of what was read).
    """
    printer = DecodePrinter(ports, gpe_ports, options)
    write = checked_writer(out)

    def idle() -> None:
        printer.drain()
        flush_checked(out)

    with open_records(path, interface, idle) as records:
        output_failed = False
        try:
            printer.record_lines(records, write)
            printer.finish()
        except OutputError:
            output_failed = True
            raise
        finally:
            # A file cut inside a record, or Ctrl-C: what came before is still reported.
            if not output_failed:
                write(printer.totals_json() if printer.options.as_json else printer.totals_text())
    return printer.stats


def _vni(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid VNI {text!r}: not a number") from None
    if not 0 <= value <= VNI_MAX:
        raise argparse.ArgumentTypeError(f"invalid VNI {text!r}: must be in 0..{VNI_MAX}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be at least 1")
    return value


def _host(text: str) -> bytes:
    try:
        return ip_info(text, "host").packed
    except ConfigError:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: not an IPv4 or IPv6 address") from None


def _mac(text: str) -> bytes:
    try:
        return parse_mac(text, "mac")
    except ConfigError:
        raise argparse.ArgumentTypeError(f"invalid MAC address {text!r}") from None


def register(subparsers: Any) -> None:
    """Add ``decode`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "decode",
        help="print the VXLAN packets of a pcap or pcapng capture, standard input or an interface",
        description="Print every VXLAN packet of a pcap or pcapng file (- for standard input, streamed) "
        "or of a live interface (-i), one line each, then totals.",
    )
    p.add_argument("file", metavar="FILE", nargs="?", help="a pcap or pcapng capture; - reads standard input")
    p.add_argument("-i", "--interface", metavar="IFACE", help="capture live from this interface (root)")
    p.add_argument(
        "--port",
        action="append",
        type=udp_port,
        metavar="N",
        help=f"a UDP destination port carrying VXLAN (repeatable; default {VXLAN_PORT} and {LINUX_VXLAN_PORT})",
    )
    p.add_argument(
        "--gpe-port",
        action="append",
        type=udp_port,
        metavar="N",
        help=f"a UDP destination port carrying VXLAN-GPE (repeatable; default {VXLAN_GPE_PORT})",
    )
    p.add_argument("--vni", action="append", type=_vni, metavar="N", help="only this VNI (repeatable: any of them)")
    p.add_argument(
        "--host",
        action="append",
        type=_host,
        metavar="ADDR",
        help="only packets with this outer or inner IP address (repeatable)",
    )
    p.add_argument(
        "--mac",
        action="append",
        type=_mac,
        metavar="MAC",
        help="only packets with this outer or inner MAC address (repeatable)",
    )
    p.add_argument("-c", "--count", type=_count, metavar="N", help="stop after N packets shown")
    p.add_argument(
        "--strict", action="store_true", help="apply Linux's receive rules; show dropped packets with the reason"
    )
    p.add_argument("--gbp", action="store_true", help="with --strict: the device has gbp (the G bits are not reserved)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="outer TTL, TOS, DF, IP ID, UDP checksum status; inner lengths"
    )
    p.add_argument(
        "--time-format",
        choices=[f.value for f in TimeFormat],
        default=TimeFormat.CLOCK.value,
        help="clock (HH:MM:SS.uuuuuu, the default), abs (with the date), rel (since the first packet), epoch",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, then a totals object")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    prog = "pyvxlan decode"
    if args.file is None and args.interface is None:
        raise UsageError("give a capture FILE (- for standard input) or -i IFACE", prog=prog)
    if args.file is not None and args.interface is not None:
        raise UsageError("give a capture FILE or -i IFACE, not both", prog=prog)
    if args.gbp and not args.strict:
        raise UsageError("--gbp applies to --strict only", prog=prog)
    ports: list[int] = args.port or [VXLAN_PORT, LINUX_VXLAN_PORT]
    # `--port 4790` means VXLAN on 4790: the GPE default then steps aside.
    gpe_ports: list[int] = args.gpe_port or [p for p in (VXLAN_GPE_PORT,) if p not in ports]
    both = set(ports) & set(gpe_ports)
    if both:
        raise UsageError(f"port {min(both)} is given both as --port and --gpe-port", prog=prog)
    options = DecodeOptions(
        as_json=args.json,
        verbose=args.verbose,
        strict=args.strict,
        gbp=args.gbp,
        time_format=TimeFormat(args.time_format),
        selection=Selection(frozenset(args.vni or ()), frozenset(args.host or ()), frozenset(args.mac or ())),
        count=args.count,
    )
    try:
        try:
            run(args.file, sys.stdout, ports=ports, gpe_ports=gpe_ports, options=options, interface=args.interface)
        finally:
            flush_checked(sys.stdout)  # lines before an error in the file are shown before it
    except OutputError as exc:
        return output_failed(exc)
    except KeyboardInterrupt:
        if args.interface is not None:
            return 0  # Ctrl-C is how a live capture ends, as tcpdump's: the totals are out
        raise  # a file or a pipe not read to its end: "interrupted", 130
    except DecodeError as exc:
        # Name the file, as tcpdump does: "pyvxlan: error: FILE: pcap at offset 0: ..."
        name = "standard input" if args.file == "-" else args.file
        exc.args = (f"{name}: {exc}",)
        raise
    return 0
