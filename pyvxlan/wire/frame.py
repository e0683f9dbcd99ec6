"""Whole VXLAN frames: outer Ethernet (optional 802.1Q), IPv4 or IPv6, UDP, VXLAN, inner frame.

``encapsulate`` builds what a Linux VTEP puts on the wire; ``decapsulate`` takes any bytes and
returns either a :class:`Decapsulated` or raises :class:`~pyvxlan.DecodeError` naming the layer and
offset. Nothing else escapes it: that is the invariant ``fuzz/`` checks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Collection
from typing import Any, Final, TypeAlias, final

from pyvxlan.errors import ConfigError, DecodeError, NotVxlanError, TruncatedError
from pyvxlan.wire.addr import IpInfo, format_mac, ip_info, ip_text, multicast_mac_for, parse_mac
from pyvxlan.wire.header import VNI_MAX, GpeHeader, VxlanHeader, byte_view, check_bool, check_int, describe

__all__ = [
    "ETH_P_8021AD",
    "ETH_P_8021Q",
    "ETH_P_IPV4",
    "ETH_P_IPV6",
    "IPPROTO_UDP",
    "IPV6_EXTENSION_HEADERS",
    "IANA_SOURCE_PORTS",
    "IPV4_FLOW_KEY_SIZE",
    "IPV4_FLOW_MASKS",
    "LINUX_SOURCE_PORTS",
    "LINUX_VXLAN_PORT",
    "VXLAN_GPE_PORT",
    "VLAN_ETHERTYPES",
    "VXLAN_PORT",
    "Decapsulated",
    "decapsulate",
    "decapsulate_payload",
    "PLAIN_IPV4",
    "PLAIN_IPV4_INNER",
    "PlainIpv4",
    "encapsulate",
    "ethertype_offset",
    "flow_port",
    "flow_source_port",
    "internet_checksum",
    "ip_text",
    "overhead",
    "plain_ipv4",
    "pseudo_header",
]

VXLAN_PORT: Final = 4789  # IANA
LINUX_VXLAN_PORT: Final = 8472  # Linux's default, "for compatibility with early adopters"
VXLAN_GPE_PORT: Final = 4790
IANA_SOURCE_PORTS: Final = (49152, 65535)  # RFC 7348 section 5
LINUX_SOURCE_PORTS: Final = (32768, 60999)  # Linux: ip_local_port_range's default

ETH_P_IPV4: Final = 0x0800
ETH_P_IPV6: Final = 0x86DD
ETH_P_8021Q: Final = 0x8100
ETH_P_8021AD: Final = 0x88A8
IPPROTO_UDP: Final = 17
_FLOW_PROTOS: Final = frozenset((6, 17, 132, 136))  # TCP, UDP, SCTP, UDP-Lite: have ports
VLAN_ETHERTYPES: Final = frozenset((ETH_P_8021Q, ETH_P_8021AD))
"""The ethertypes of an 802.1Q or 802.1ad tag, which the walks over VLAN tags skip."""
IPV6_EXTENSION_HEADERS: Final = frozenset((0, 43, 60))
"""Hop-by-hop, routing and destination options: the IPv6 extension headers skipped to reach UDP."""

_H: Final = struct.Struct("!H")
_HHHH: Final = struct.Struct("!HHHH")
_IPV4: Final = struct.Struct("!BBHHHBBH4s4s")
_IPV6: Final = struct.Struct("!IHBB16s16s")
_unpack_H = _H.unpack_from
_unpack_udp = _HHHH.unpack_from
_vx_decode = VxlanHeader.decode
_gpe_decode = GpeHeader.decode
_new = object.__new__


def overhead(ip_version: int, vlan: bool = False) -> int:
    """Bytes VXLAN adds in front of the inner frame: 50 over IPv4, 70 over IPv6 (+4 with a tag).

    Counted as Linux counts it (outer IP + UDP + VXLAN + the inner Ethernet header), which is what an
    underlay MTU must leave room for.
    """
    if type(ip_version) is not int or ip_version not in (4, 6):
        raise ConfigError("ip_version", f"must be 4 or 6, got {describe(ip_version)}")
    return (20 if ip_version == 4 else 40) + 8 + 8 + 14 + (4 if check_bool(vlan, "vlan") else 0)


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The RFC 1071 ones'-complement checksum of ``data``, continuing from ``initial``'s sum.

    The ones'-complement sum of 16-bit words equals the whole buffer read as one big-endian integer
    modulo 0xFFFF, so one ``int.from_bytes`` replaces a Python loop over words.

    >>> hex(internet_checksum(bytes.fromhex("4500003c1c4640004006 0000ac100a63ac100a0c".replace(" ", ""))))
    '0xb1e6'
    """
    raw = data if type(data) is bytes else bytes(byte_view(data, "data"))
    if type(initial) is not int or initial < 0:
        check_int(initial, "initial", 0, None)
    if len(raw) & 1:
        raw += b"\x00"
    n = int.from_bytes(raw, "big") + initial
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF
    return ~s & 0xFFFF


def pseudo_header(src: bytes, dst: bytes, length: int, protocol: int) -> bytes:
    """The pseudo-header that UDP, TCP and ICMPv6 checksums cover: RFC 768's for 4-byte addresses,
    RFC 8200's for 16-byte ones (``length`` is the upper-layer length, ``protocol`` its number).

    The checksum of a segment is then ``internet_checksum(pseudo_header(...) + segment)``; a
    received segment is intact when that is 0. The arguments are not checked: both addresses are
    packed and of one family.

    >>> pseudo_header(bytes(4), bytes(4), 8, IPPROTO_UDP).hex()
    '000000000000000000110008'
    """
    if len(src) == 4:
        return src + dst + _PSEUDO4(protocol, length)
    return src + dst + _PSEUDO6(length, protocol)


_PSEUDO4 = struct.Struct("!HH").pack  # zero byte and protocol as one word, then the length
_PSEUDO6 = struct.Struct("!II").pack  # the length, then three zero bytes and the next header


def ethertype_offset(inner: bytes | bytearray | memoryview) -> tuple[int, int]:
    """The ethertype of an Ethernet frame after its 802.1Q/802.1ad tags, and where that layer starts.

    ``inner`` must hold at least the 14-byte Ethernet header; a tag cut by the end of the frame
    ends the walk (its ethertype is returned, with the offset before it).

    >>> ethertype_offset(bytes(12) + bytes.fromhex("8100 0007 0800".replace(" ", "")))
    (2048, 18)
    """
    off, etype = 14, (inner[12] << 8) | inner[13]
    while etype in VLAN_ETHERTYPES and len(inner) >= off + 4:
        etype = (inner[off + 2] << 8) | inner[off + 3]
        off += 4
    return etype, off


def flow_source_port(inner: bytes | bytearray | memoryview, port_range: tuple[int, int] = IANA_SOURCE_PORTS) -> int:
    """The UDP source port for ``inner``: a stable hash of its flow mapped into ``port_range``.

    The flow is the inner MACs, plus the IP addresses, protocol and ports when present, so every
    packet of one flow takes one underlay path under ECMP (RFC 7348 section 5). The hash is CRC-32
    followed by a multiplicative finaliser (CRC-32 alone is linear, so flows that differ in one port
    got nearby ports), identical from run to run (unlike ``hash()``). The port is chosen as Linux's
    ``udp_flow_src_port`` does: ``low + hash * (high - low) >> 32``, so ``high`` itself is never used,
    and an empty range (``low == high``, ``srcport 0 0`` included) means the namespace's local port
    range, 32768-60999 by default (:data:`LINUX_SOURCE_PORTS`).

    >>> frame = bytes.fromhex("02000000000102000000000208060001")
    >>> flow_source_port(frame) == flow_source_port(frame)
    True
    >>> flow_source_port(frame, (5000, 5001))
    5000
    """
    lo, hi = check_port_range(port_range, "port_range")
    if lo == hi:
        lo, hi = LINUX_SOURCE_PORTS
    return flow_port(inner if type(inner) is bytes else byte_view(inner, "inner"), lo, hi - lo)


def check_port_range(value: object, field: str) -> tuple[int, int]:
    """``value`` as a source port range ``(low, high)`` with 0 <= low <= high <= 65535, else
    :class:`~pyvxlan.ConfigError` naming ``field`` (``bool`` is not a port)."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise ConfigError(field, f"must be a (low, high) tuple of ports, got {describe(value)}")
    lo, hi = check_int(value[0], field, 0, 65535), check_int(value[1], field, 0, 65535)
    if lo > hi:  # the kernel's "Invalid source port range" (vxlan_nl2conf)
        raise ConfigError(field, f"must be (low, high) with low <= high, got {value!r}")
    return lo, hi


def flow_port(inner: bytes | bytearray | memoryview, low: int, span: int) -> int:
    """:func:`flow_source_port` of ``inner`` in ``low .. low + span`` (``span`` = high - low > 0),
    without checking its arguments: for a transmit path whose range was checked once, up front.

    >>> frame = bytes.fromhex("02000000000102000000000208060001")
    >>> flow_port(frame, 49152, 65535 - 49152) == flow_source_port(frame)
    True
    """
    # It runs once per transmitted frame: slices of bytes are bytes already (no copies), and an
    # untagged frame skips the VLAN walk.
    lo = low
    if type(inner) is not bytes:
        inner = bytes(inner)
    size = len(inner)
    if size < 14:
        key = inner
    else:
        etype = (inner[12] << 8) | inner[13]
        if etype in VLAN_ETHERTYPES:
            etype, off = ethertype_offset(inner)
        else:
            off = 14
        if etype == ETH_P_IPV4 and size >= off + 20:
            proto = inner[off + 9]
            # MACs, addresses, protocol: the key's layout is the hash's input, kept as it was.
            key = inner[0:12] + inner[off + 12 : off + 20] + inner[off + 9 : off + 10]
            if proto in _FLOW_PROTOS and not (((inner[off + 6] << 8) | inner[off + 7]) & 0x3FFF):
                ihl = (inner[off] & 0x0F) * 4
                if size >= off + ihl + 4:
                    key += inner[off + ihl : off + ihl + 4]
        elif etype == ETH_P_IPV6 and size >= off + 40:
            key = inner[0:12] + inner[off + 8 : off + 40] + inner[off + 6 : off + 7]
            if inner[off + 6] in _FLOW_PROTOS and size >= off + 44:
                key += inner[off + 40 : off + 44]
        else:
            key = inner[0:12]
    # CRC-32 is linear: flows one port apart differ in a few fixed low bits, which a range mapping
    # (it reads the top bits) hardly sees. A Fibonacci multiply carries every bit into the top
    # ones, at the cost of one multiplication on the transmit path.
    return lo + ((((zlib.crc32(key) * 0x9E3779B1) & 0xFFFFFFFF) * span) >> 32)


IPV4_FLOW_KEY_SIZE: Final = 38
"""An untagged Ethernet frame with a 20-byte IPv4 header holds every byte :func:`flow_port` reads
in its first 38 (the MACs, the EtherType, the version and header length, the fragment field, the
protocol, the addresses and the ports)."""


def _flow_mask(ports: bool) -> int:
    keep = bytearray(IPV4_FLOW_KEY_SIZE)
    # The bytes flow_port reads (or decides by) in such a frame; TOS, length, ID, TTL and the
    # header checksum change from packet to packet of one flow and are left out.
    for start, end in ((0, 15), (20, 22), (23, 24), (26, 34), *(((34, 38),) if ports else ())):
        keep[start:end] = b"\xff" * (end - start)
    return int.from_bytes(keep, "big")


IPV4_FLOW_MASKS: Final = tuple(_flow_mask(proto in _FLOW_PROTOS) for proto in range(256))
"""By IPv4 protocol number: the mask that, applied to the first :data:`IPV4_FLOW_KEY_SIZE` bytes of
an untagged frame of at least that size whose IPv4 header is 20 bytes long (read as one
big-endian integer), keeps the
bytes :func:`flow_port` reads and clears the rest (the ports too when the protocol has none). Two
such frames with equal masked values get the same source port: a memo's key
(``Vtep.transmit_many`` keeps one; tests/core/test_vtep_flow_memo.py holds it to this function).
"""


def _default_mac(info: IpInfo) -> bytes:
    # A locally administered MAC derived from the IP, so frames built without MACs are stable.
    if info.is_multicast:
        return multicast_mac_for(info)
    return b"\x02\x00" + info.packed[-4:]


def encapsulate(
    inner: bytes | bytearray | memoryview,
    *,
    src: str,
    dst: str,
    vni: int | None = None,
    header: VxlanHeader | GpeHeader | None = None,
    src_port: int | None = None,
    dst_port: int = VXLAN_PORT,
    port_range: tuple[int, int] = IANA_SOURCE_PORTS,
    ttl: int | None = None,
    tos: int = 0,
    df: bool = False,
    ip_id: int = 0,
    vlan: int | None = None,
    eth_src: str | bytes | None = None,
    eth_dst: str | bytes | None = None,
    udp_checksum: bool = True,
) -> bytes:
    """Build the outer Ethernet frame that carries ``inner`` to VTEP ``dst``.

    Give ``vni`` (an RFC 7348 header is built) or a whole ``header``. As Linux does, the TTL is 64,
    or 1 toward a multicast group; the UDP checksum is computed unless ``udp_checksum=False``
    (over IPv6 too, as Linux's ``udp6zerocsumtx`` does: RFC 6935 lets tunnels send a zero UDP
    checksum over IPv6); the source port is :func:`flow_source_port` of ``inner``
    in ``port_range`` unless ``src_port`` is given. Without ``eth_dst`` a multicast group's MAC is
    used, and for unicast a locally administered MAC derived from the address (likewise ``eth_src``).

    >>> frame = encapsulate(bytes(60), vni=10, src="198.51.100.1", dst="198.51.100.2")
    >>> d = decapsulate(frame)
    >>> (d.header.vni, d.outer_src, d.outer_dst, d.dst_port, d.ttl, len(d.inner))
    (10, '198.51.100.1', '198.51.100.2', 4789, 64, 60)
    """
    # Every argument is checked here, once, before anything is built: a wrong type or range is a
    # ConfigError naming the argument, never a bare TypeError or a value silently wrapped.
    inner_bytes = bytes(byte_view(inner, "inner"))
    s = ip_info(src, "src")
    d = ip_info(dst, "dst")
    if s.version != d.version:
        raise ConfigError("dst", f"{d.text} is IPv{d.version} but src {s.text} is IPv{s.version}")
    if header is None:
        if vni is None:
            raise ConfigError("vni", "give vni or header")
        header = VxlanHeader(vni)
    elif type(header) is not VxlanHeader and type(header) is not GpeHeader:
        raise ConfigError("header", f"must be a VxlanHeader or a GpeHeader, got {describe(header)}")
    elif vni is not None and check_int(vni, "vni", 0, VNI_MAX) != header.vni:
        raise ConfigError("vni", f"{vni} disagrees with header.vni {header.vni}")
    if not isinstance(port_range, tuple) or len(port_range) != 2:
        raise ConfigError("port_range", f"must be a (low, high) tuple of ports, got {describe(port_range)}")
    lo, hi = check_int(port_range[0], "port_range", 1, 65535), check_int(port_range[1], "port_range", 1, 65535)
    if not lo <= hi:
        raise ConfigError("port_range", f"must be 1 <= low <= high <= 65535, got {port_range}")
    if src_port is None:
        src_port = flow_source_port(inner_bytes, port_range)
    else:
        check_int(src_port, "src_port", 0, 65535)
    # Port 0 is no destination: nothing can listen there, and Linux never sends to it (a vxlan
    # device created with ``dstport 0`` uses its default, 8472; checked on Linux 6.18).
    check_int(dst_port, "dst_port", 1, 65535)
    if ttl is None:
        ttl = 1 if d.is_multicast else 64
    else:
        check_int(ttl, "ttl", 0, 255)
    check_int(tos, "tos", 0, 255)
    check_bool(df, "df")
    check_int(ip_id, "ip_id", 0, 0xFFFF)
    if vlan is not None:
        check_int(vlan, "vlan", 0, 4095)
    check_bool(udp_checksum, "udp_checksum")

    payload = header.encode() + inner_bytes
    udp_len = 8 + len(payload)
    if udp_len > 0xFFFF:
        raise ConfigError("inner", f"{len(inner_bytes)} bytes do not fit in one UDP datagram")
    udp_hdr = _HHHH.pack(src_port, dst_port, udp_len, 0)
    if udp_checksum:
        csum = internet_checksum(pseudo_header(s.packed, d.packed, udp_len, IPPROTO_UDP) + udp_hdr + payload) or 0xFFFF
        udp_hdr = udp_hdr[:6] + _H.pack(csum)

    if d.version == 4:
        total = 20 + udp_len
        if total > 0xFFFF:
            raise ConfigError("inner", f"{len(inner_bytes)} bytes do not fit in one IPv4 packet")
        ip_hdr = _IPV4.pack(0x45, tos, total, ip_id, 0x4000 if df else 0, ttl, IPPROTO_UDP, 0, s.packed, d.packed)
        ip_hdr = ip_hdr[:10] + _H.pack(internet_checksum(ip_hdr)) + ip_hdr[12:]
        etype = ETH_P_IPV4
    else:
        ip_hdr = _IPV6.pack(0x60000000 | (tos << 20), udp_len, IPPROTO_UDP, ttl, s.packed, d.packed)
        etype = ETH_P_IPV6

    mac_dst = parse_mac(eth_dst, "eth_dst") if eth_dst is not None else _default_mac(d)
    mac_src = parse_mac(eth_src, "eth_src") if eth_src is not None else _default_mac(s)
    if vlan is None:
        eth = mac_dst + mac_src + _H.pack(etype)
    else:
        eth = mac_dst + mac_src + struct.pack("!HHH", ETH_P_8021Q, vlan, etype)
    return eth + ip_hdr + udp_hdr + payload


@final
class Decapsulated:
    """A decoded VXLAN frame: outer addresses and ports, the header, and the inner frame.

    ``inner`` is a :class:`memoryview` into the buffer given to :func:`decapsulate` (no copy);
    ``bytes(d.inner)`` copies it. Addresses are formatted only when read.

    An immutable value: its fields are read-only properties. :func:`decapsulate` builds these
    without this constructor (it sets the fields it read from the wire, which are checked); calling the class builds one from its fields (checked), which is
    what ``repr`` prints, so ``eval(repr(d)) == d``. Two are equal when every field is (``inner``
    compared as bytes). A ``Decapsulated`` is not hashable: it holds a view of a buffer that may
    change.
    """

    __slots__ = (
        "_header",
        "_inner",
        "_addrs",
        "_src_port",
        "_dst_port",
        "_ttl",
        "_vlans",
        "_frame",
        "_inner_offset",
        "_udp_checksum",
    )

    def __init__(
        self,
        *,
        header: VxlanHeader | GpeHeader,
        inner: bytes | bytearray | memoryview,
        outer_src: str,
        outer_dst: str,
        src_port: int,
        dst_port: int,
        ttl: int,
        vlans: tuple[int, ...] = (),
        outer_eth_dst: str = "00:00:00:00:00:00",
        outer_eth_src: str = "00:00:00:00:00:00",
        inner_offset: int = 0,
        udp_checksum: int = 0,
    ) -> None:
        if type(header) is not VxlanHeader and type(header) is not GpeHeader:
            raise ConfigError("header", f"must be a VxlanHeader or a GpeHeader, got {describe(header)}")
        view = memoryview(bytes(byte_view(inner, "inner")))
        s, d = ip_info(outer_src, "outer_src"), ip_info(outer_dst, "outer_dst")
        if s.version != d.version:
            raise ConfigError("outer_dst", f"{d.text} is IPv{d.version} but outer_src {s.text} is IPv{s.version}")
        if not isinstance(vlans, tuple):
            raise ConfigError("vlans", f"must be a tuple of VLAN ids, got {describe(vlans)}")
        for vid in vlans:
            check_int(vid, "vlans", 0, 4095)
        macs = parse_mac(outer_eth_dst, "outer_eth_dst") + parse_mac(outer_eth_src, "outer_eth_src")
        self._header: VxlanHeader | GpeHeader = header
        self._inner: memoryview = view
        self._addrs: bytes = s.packed + d.packed
        self._src_port: int = check_int(src_port, "src_port", 0, 65535)
        self._dst_port: int = check_int(dst_port, "dst_port", 0, 65535)
        self._ttl: int = check_int(ttl, "ttl", 0, 255)
        self._vlans: tuple[int, ...] = vlans
        self._frame: bytes | memoryview = macs  # what a decoded frame's outer MACs are read from
        self._inner_offset: int = check_int(inner_offset, "inner_offset", 0, None)
        self._udp_checksum: int = check_int(udp_checksum, "udp_checksum", 0, 0xFFFF)

    def __reduce__(self) -> tuple[object, ...]:
        # Through the checked constructor, from the fields repr prints: memoryviews do not pickle.
        return (_rebuild_decapsulated, (self._fields(),))

    def _fields(self) -> dict[str, object]:
        return {
            "header": self._header,
            "inner": bytes(self._inner),
            "outer_src": self.outer_src,
            "outer_dst": self.outer_dst,
            "src_port": self._src_port,
            "dst_port": self._dst_port,
            "ttl": self._ttl,
            "vlans": self._vlans,
            "outer_eth_dst": self.outer_eth_dst,
            "outer_eth_src": self.outer_eth_src,
            "inner_offset": self._inner_offset,
            "udp_checksum": self._udp_checksum,
        }

    @property
    def header(self) -> VxlanHeader | GpeHeader:
        """The VXLAN header, or a :class:`~pyvxlan.GpeHeader` for a VXLAN-GPE port."""
        return self._header

    @property
    def inner(self) -> memoryview:
        """The encapsulated frame (Ethernet for VXLAN; GPE: what ``next_protocol`` says)."""
        return self._inner

    @property
    def outer_src(self) -> str:
        return ip_text(self.outer_src_packed)

    @property
    def outer_dst(self) -> str:
        return ip_text(self.outer_dst_packed)

    @property
    def outer_src_packed(self) -> bytes:
        """The outer source address, 4 or 16 bytes."""
        addrs = self._addrs
        return addrs[: len(addrs) >> 1]

    @property
    def outer_dst_packed(self) -> bytes:
        """The outer destination address, 4 or 16 bytes."""
        addrs = self._addrs
        return addrs[len(addrs) >> 1 :]

    @property
    def outer_addresses_packed(self) -> bytes:
        """Both outer addresses, source then destination (8 or 32 bytes): one key for a pair."""
        return self._addrs

    @property
    def src_port(self) -> int:
        return self._src_port

    @property
    def dst_port(self) -> int:
        return self._dst_port

    @property
    def ttl(self) -> int:
        """The outer IPv4 TTL or IPv6 hop limit."""
        return self._ttl

    @property
    def ip_version(self) -> int:
        return 4 if len(self._addrs) == 8 else 6

    @property
    def vlans(self) -> tuple[int, ...]:
        """The outer 802.1Q/802.1ad VLAN ids, outermost first (empty when untagged)."""
        return self._vlans

    @property
    def outer_eth_dst(self) -> str:
        return format_mac(self._frame[0:6])

    @property
    def outer_eth_src(self) -> str:
        return format_mac(self._frame[6:12])

    @property
    def outer_macs_packed(self) -> bytes:
        """The outer destination and source MACs, 12 bytes as on the wire."""
        return bytes(self._frame[0:12])

    @property
    def inner_offset(self) -> int:
        """Where ``inner`` starts in the decoded buffer."""
        return self._inner_offset

    @property
    def udp_checksum(self) -> int:
        """The UDP checksum field as sent (0: none)."""
        return self._udp_checksum

    def __repr__(self) -> str:
        # Every field, the inner bytes included: the repr is the constructor call that rebuilds it.
        return (
            f"Decapsulated(header={self.header!r}, inner={bytes(self.inner)!r}, outer_src={self.outer_src!r}, "
            f"outer_dst={self.outer_dst!r}, src_port={self.src_port}, dst_port={self.dst_port}, "
            f"ttl={self.ttl}, vlans={self.vlans!r}, outer_eth_dst={self.outer_eth_dst!r}, "
            f"outer_eth_src={self.outer_eth_src!r}, inner_offset={self.inner_offset}, "
            f"udp_checksum={self.udp_checksum:#06x})"
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not Decapsulated:
            return False
        return (
            self._header == other._header
            and bytes(self._inner) == bytes(other._inner)
            and self._addrs == other._addrs
            and (self._src_port, self._dst_port, self._ttl, self._vlans, self._inner_offset, self._udp_checksum)
            == (other._src_port, other._dst_port, other._ttl, other._vlans, other._inner_offset, other._udp_checksum)
            and bytes(self._frame[0:12]) == bytes(other._frame[0:12])
        )

    __hash__ = None  # type: ignore[assignment]  # holds a memoryview


def _rebuild_decapsulated(fields: dict[str, Any]) -> Decapsulated:
    # Unpickling: the checked constructor, from the fields repr prints.
    return Decapsulated(**fields)


_PORTS: Final = (VXLAN_PORT, LINUX_VXLAN_PORT)
_GPE_PORTS: Final = (VXLAN_GPE_PORT,)


def _check_ports(ports: object, field: str) -> None:
    if isinstance(ports, (str, bytes, bytearray)) or not isinstance(ports, Collection):
        raise ConfigError(field, f"must be a collection of UDP ports, got {describe(ports)}")
    for port in ports:
        if type(port) is not int or not 0 < port <= 0xFFFF:
            check_int(port, field, 1, 65535)


PLAIN_IPV4: Final = struct.Struct("!12xHBBH2xHBB2x8sHHHH8s")
"""The layout of a plain VXLAN-over-IPv4 frame, read by :func:`plain_ipv4` in one unpack:
ethertype, version/IHL, TOS, total length, fragment field, TTL, protocol, the two addresses (8
bytes), UDP ports, length and checksum, the 8 VXLAN header bytes. The inner frame starts at 50."""
PLAIN_IPV4_INNER: Final = 50
_unpack_plain = PLAIN_IPV4.unpack_from

PlainIpv4: TypeAlias = tuple[int, int, bytes, int, int, int, bytes]
"""What :func:`plain_ipv4` reads: TOS, TTL, addresses (source then destination, 8 bytes), UDP source
and destination port, UDP checksum, the 8 VXLAN header bytes."""


def plain_ipv4(buf: bytes | bytearray | memoryview, start: int, end: int) -> PlainIpv4 | None:
    """The outer fields of the frame ``buf[start:end]`` when it is the usual VXLAN frame, else ``None``.

    The usual frame: untagged Ethernet, IPv4 without options and not a fragment, UDP, exact IP and
    UDP lengths (no padding, not cut), and an inner frame of at least an Ethernet header (the frame
    is at least 64 bytes). Such a frame is read in one unpack; :func:`decapsulate`, ``pyvxlan
    decode`` and ``pyvxlan replay`` all read it here, and decode every other frame on
    :func:`decapsulate`'s general path, which gives the same result for these
    (``tests/wire/test_frame_fast_path.py``). The UDP destination port is not checked: the caller
    knows its ports. The inner frame is ``buf[start + PLAIN_IPV4_INNER : end]``. The arguments are
    not checked (this runs once per packet): ``buf[start:end]`` must be a record within ``buf``, as a
    capture reader's records are; use :func:`decapsulate` for anything else.

    >>> frame = encapsulate(bytes(14), vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=49152)
    >>> tos, ttl, addrs, sport, dport, csum, header = plain_ipv4(frame, 0, len(frame))
    >>> (ttl, addrs.hex(), sport, dport, VxlanHeader.decode(header).vni)
    (64, 'c6336401c6336402', 49152, 4789, 10)
    >>> plain_ipv4(frame + bytes(4), 0, len(frame) + 4) is None  # padded: the general path's
    True
    """
    if end - start < 64:
        return None
    etype, vihl, tos, total, frag, ttl, proto, addrs, sport, dport, ulen, csum, header = _unpack_plain(buf, start)
    if (
        etype == ETH_P_IPV4
        and vihl == 0x45
        and proto == IPPROTO_UDP
        and not frag & 0x3FFF
        and total == end - start - 14
        and ulen == total - 20
    ):
        return tos, ttl, addrs, sport, dport, csum, header
    return None


def decapsulate(  # noqa: PLR0917 - positional-or-keyword on purpose: see the docstring
    frame: bytes | bytearray | memoryview,
    ports: Collection[int] = _PORTS,
    gpe_ports: Collection[int] = _GPE_PORTS,
    strict: bool = False,
    gbp: bool = False,
    wire_length: int = 0,
) -> Decapsulated:
    """Decode an Ethernet frame carrying VXLAN (or VXLAN-GPE) over IPv4 or IPv6.

    Outer 802.1Q/802.1ad tags and IPv6 extension headers are skipped. A zero IPv4 total length or
    UDP length (GSO and BIG TCP captures) means "to the end of the frame". Anything that is not
    VXLAN on one of ``ports`` (default 4789 and 8472) raises :class:`~pyvxlan.NotVxlanError`;
    malformed input raises another :class:`~pyvxlan.DecodeError`. ``gpe_ports`` (default 4790)
    carry VXLAN-GPE. ``strict`` and ``gbp`` apply to the header as in :meth:`VxlanHeader.decode`.
    ``wire_length``, when larger than ``frame``, says the frame was cut by a capture's snap length:
    IP and UDP lengths up to it are then accepted, and ``inner`` is what was captured of the inner
    frame (it may then be shorter than an Ethernet header). (The parameters are not keyword-only:
    CPython 3.11 does not specialise calls to such functions, about 25 ns a call.)

    The usual frame (:func:`plain_ipv4`) is read in one unpack; every other frame, and every
    ``strict`` decode, goes through the general path below.

    >>> decapsulate(b"\\x00" * 13)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.TruncatedError: ethernet at offset 0: need 14 bytes, got 13
    """
    # The arguments, checked by identity first: the usual call (default ports) costs a few compares
    # (bench/codec.py).
    if ports is not _PORTS:
        _check_ports(ports, "ports")
    if gpe_ports is not _GPE_PORTS:
        _check_ports(gpe_ports, "gpe_ports")
    if strict is not False and strict is not True:
        check_bool(strict, "strict")
    if gbp is not False and gbp is not True:
        check_bool(gbp, "gbp")
    if type(wire_length) is not int or wire_length < 0:
        check_int(wire_length, "wire_length", 0, None)
    if type(frame) is bytes:
        mv = memoryview(frame)
    else:
        mv = frame if type(frame) is memoryview else byte_view(frame, "frame")
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
    n = len(mv)
    plain = None if strict else plain_ipv4(mv, 0, n)
    if plain is not None and plain[4] in ports:
        _tos, ttl, addrs, sport, dport, csum, raw = plain
        header: VxlanHeader | GpeHeader = _vx_decode(raw)
        inner_offset = PLAIN_IPV4_INNER
        inner = mv[PLAIN_IPV4_INNER:]
        vlans: tuple[int, ...] = ()
    else:
        header, inner_offset, end, addrs, sport, dport, ttl, vlans, csum = _general(
            mv, n, ports, gpe_ports, strict, gbp, wire_length
        )
        inner = mv[inner_offset:end]
    # The class's constructor for wire input: every field was read from the frame and checked.
    d = _new(Decapsulated)
    d._header = header
    d._inner = inner
    d._addrs = addrs
    d._src_port = sport
    d._dst_port = dport
    d._ttl = ttl
    d._vlans = vlans
    d._frame = mv  # the outer MACs are read from it when asked for
    d._inner_offset = inner_offset
    d._udp_checksum = csum
    return d


_General: TypeAlias = tuple[VxlanHeader | GpeHeader, int, int, bytes, int, int, int, tuple[int, ...], int]


def _general(  # noqa: PLR0917 - decapsulate's arguments, checked
    mv: memoryview,
    n: int,
    ports: Collection[int],
    gpe_ports: Collection[int],
    strict: bool,
    gbp: bool,
    wire_length: int,
) -> _General:
    # decapsulate's general path: any layout. The header, where the inner frame starts and ends,
    # the addresses, ports, TTL, VLAN ids and UDP checksum.
    if n < 14:
        raise TruncatedError("ethernet", 0, f"need 14 bytes, got {n}")
    etype = (mv[12] << 8) | mv[13]
    off = 14
    vlans: tuple[int, ...] = ()
    while etype in VLAN_ETHERTYPES:
        if n < off + 4:
            raise TruncatedError("ethernet", off, f"802.1Q tag needs 4 bytes, got {n - off}")
        vlans += (((mv[off] << 8) | mv[off + 1]) & 0x0FFF,)
        etype = (mv[off + 2] << 8) | mv[off + 3]
        off += 4

    if etype == ETH_P_IPV4:
        if n < off + 20:
            raise TruncatedError("ipv4", off, f"need 20 bytes, got {n - off}")
        vihl = mv[off]
        if vihl >> 4 != 4:
            raise DecodeError("ipv4", off, f"version {vihl >> 4} is not 4")
        ihl = (vihl & 0x0F) * 4
        if ihl < 20:
            raise DecodeError("ipv4", off, f"header length {ihl} is under 20")
        if n < off + ihl:
            raise TruncatedError("ipv4", off, f"header needs {ihl} bytes, got {n - off}")
        total = (mv[off + 2] << 8) | mv[off + 3]
        if total == 0:
            end = n  # GSO / BIG TCP: the length lives elsewhere
        elif total < ihl:
            raise DecodeError("ipv4", off, f"total length {total} is under the header length {ihl}")
        else:
            end = off + total
            if end > n:
                if not n < end <= wire_length:
                    raise TruncatedError("ipv4", off, f"total length {total} exceeds the {n - off} bytes captured")
                end = n  # cut by the snap length
        frag = ((mv[off + 6] << 8) | mv[off + 7]) & 0x3FFF
        if mv[off + 9] != IPPROTO_UDP:
            raise NotVxlanError("ipv4", off + 9, f"protocol {mv[off + 9]} is not UDP")
        if frag:
            raise DecodeError("ipv4", off + 6, "a fragment cannot be decoded without reassembly")
        ttl = mv[off + 8]
        src = bytes(mv[off + 12 : off + 16])
        dst = bytes(mv[off + 16 : off + 20])
        uoff = off + ihl
    elif etype == ETH_P_IPV6:
        if n < off + 40:
            raise TruncatedError("ipv6", off, f"need 40 bytes, got {n - off}")
        if mv[off] >> 4 != 6:
            raise DecodeError("ipv6", off, f"version {mv[off] >> 4} is not 6")
        plen = (mv[off + 4] << 8) | mv[off + 5]
        if plen == 0:
            end = n  # jumbogram or GSO
        else:
            end = off + 40 + plen
            if end > n:
                if not n < end <= wire_length:
                    raise TruncatedError(
                        "ipv6", off, f"payload length {plen} exceeds the {n - off - 40} bytes captured"
                    )
                end = n  # cut by the snap length
        nh = mv[off + 6]
        ttl = mv[off + 7]
        src = bytes(mv[off + 8 : off + 24])
        dst = bytes(mv[off + 24 : off + 40])
        uoff = off + 40
        while nh in IPV6_EXTENSION_HEADERS:
            if end < uoff + 8:
                raise TruncatedError("ipv6", uoff, "extension header needs 8 bytes")
            nh, uoff = mv[uoff], uoff + (mv[uoff + 1] + 1) * 8
        if nh == 44:
            raise DecodeError("ipv6", uoff, "a fragment cannot be decoded without reassembly")
        if nh != IPPROTO_UDP:
            raise NotVxlanError("ipv6", uoff, f"next header {nh} is not UDP")
    else:
        raise NotVxlanError("ethernet", off - 2, f"ethertype {etype:#06x} is not IPv4 or IPv6")

    if end < uoff + 8:
        raise TruncatedError("udp", uoff, f"need 8 bytes, got {max(end - uoff, 0)}")
    sport, dport, ulen, csum = _unpack_udp(mv, uoff)
    if ulen:
        if ulen < 8:
            raise DecodeError("udp", uoff, f"length {ulen} is under 8")
        if uoff + ulen > end:
            if not (end == n < uoff + ulen <= wire_length):
                raise TruncatedError("udp", uoff, f"length {ulen} exceeds the {end - uoff} bytes of the IP payload")
        else:
            end = uoff + ulen  # what follows is Ethernet padding
    voff = uoff + 8
    header: VxlanHeader | GpeHeader
    if dport in ports:
        header = _vx_decode(mv, strict=strict, gbp=gbp, offset=voff) if end >= voff + 8 else _short(end, voff, "vxlan")
        if end - voff - 8 < 14 and not n < wire_length:  # a snapped frame keeps what it has
            raise TruncatedError("ethernet", voff + 8, f"inner frame needs 14 bytes, got {end - voff - 8}")
    elif dport in gpe_ports:
        header = _gpe_decode(mv, strict=strict, offset=voff) if end >= voff + 8 else _short(end, voff, "vxlan-gpe")
    else:
        raise NotVxlanError("udp", uoff + 2, f"destination port {dport} is not a VXLAN port")
    return header, voff + 8, end, src + dst, sport, dport, ttl, vlans, csum


def _short(end: int, voff: int, layer: str) -> VxlanHeader:
    raise TruncatedError(layer, voff, f"need 8 bytes, got {max(end - voff, 0)}")


def decapsulate_payload(
    payload: bytes | bytearray | memoryview, *, strict: bool = False, gbp: bool = False
) -> tuple[VxlanHeader, memoryview]:
    """Split a UDP payload (as a socket returns it) into the header and the inner frame.

    >>> header, inner = decapsulate_payload(bytes.fromhex("0800000000000a00") + bytes(14))
    >>> (header.vni, len(inner))
    (10, 14)
    """
    mv = payload if type(payload) is memoryview else byte_view(payload, "payload")
    header = _vx_decode(mv, strict=strict, gbp=gbp)  # checks strict and gbp
    if len(mv) < 22:
        raise TruncatedError("ethernet", 8, f"inner frame needs 14 bytes, got {len(mv) - 8}")
    return header, mv[8:]
