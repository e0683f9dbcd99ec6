"""BGP messages and EVPN routes (RFC 4271, RFC 4760, RFC 7432, RFC 8365) as frozen, typed values.

Every decoder is strict and lossless: it raises only :class:`~pyvxlan.DecodeError` (layer
``"bgp"``, the offset counted from the start of the message) and whatever it accepts encodes back
to the same bytes. What pyvxlan does not model stays raw (:class:`RawAttribute`,
:class:`RawCommunity`, :class:`RawCapability`, :class:`UnknownRoute`), so a message from any
speaker survives a round trip. Constructors check their arguments and raise
:class:`~pyvxlan.ConfigError` naming the field.

The VNI travels in the 24-bit MPLS label fields whole (RFC 8365 section 5.1.3), as FRR's
``vni2label`` and GoBGP's ``labelSerialize`` write it: no shift by 4, no bottom-of-stack bit.

>>> route = MacIpRoute(RouteDistinguisher.ipv4("198.51.100.1", 2), "02:aa:00:00:00:10", labels=(100,))
>>> update = Update.announce([route], next_hop="198.51.100.1", communities=[RouteTarget.as2(65000, 100), ENCAP_VXLAN])
>>> decode_message(update.encode()) == update
True
>>> decode_message(update.encode()).reach.routes[0].vni
100
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from pyvxlan.errors import ConfigError, DecodeError, TruncatedError
from pyvxlan.wire.addr import format_mac, ip_info, normalize_ip, normalize_mac, parse_mac
from pyvxlan.wire.frame import ip_text
from pyvxlan.wire.header import VNI_MAX, byte_view, check_bool, check_int, describe

__all__ = [
    "AFI_L2VPN",
    "AS_TRANS",
    "BGP_PORT",
    "ENCAP_VXLAN",
    "MARKER",
    "SAFI_EVPN",
    "AsPath",
    "AsPathSegment",
    "AttributeFlag",
    "Capability",
    "CapabilityParameter",
    "ClusterList",
    "DefaultGateway",
    "Encapsulation",
    "EvpnRoute",
    "ExtendedCommunities",
    "ExtendedCommunity",
    "FourOctetAs",
    "InclusiveMulticastRoute",
    "IpPrefixRoute",
    "Keepalive",
    "LocalPref",
    "MacIpRoute",
    "MacMobility",
    "Message",
    "MessageType",
    "MpReachNlri",
    "MpUnreachNlri",
    "MultiExitDisc",
    "Multiprotocol",
    "Notification",
    "Open",
    "OpenParameter",
    "Origin",
    "OriginType",
    "OriginatorId",
    "PathAttribute",
    "PmsiTunnel",
    "RawAttribute",
    "RawCapability",
    "RawCommunity",
    "RawParameter",
    "RdType",
    "RouteDistinguisher",
    "RouteRefresh",
    "RouteRefreshCapability",
    "RouteTarget",
    "RouterMac",
    "UnknownRoute",
    "Update",
    "decode_message",
    "decode_routes",
    "encode_routes",
    "split_messages",
]

BGP_PORT: Final = 179
MARKER: Final = b"\xff" * 16
AFI_L2VPN: Final = 25
SAFI_EVPN: Final = 70
AS_TRANS: Final = 23456  # RFC 6793: the 2-byte OPEN field of a speaker whose AS needs 4 bytes
_HEADER: Final = 19
# RFC 8654 (extended messages, which FRR offers) raises the 4096-byte limit to 65535.
_MAX_MESSAGE: Final = 65535
_LAYER: Final = "bgp"


def _fail(offset: int, reason: str) -> DecodeError:
    return DecodeError(_LAYER, offset, reason)


def check_ip_version(value: object, field: str, version: int) -> str:
    """The canonical text of an IPv``version`` address given as text (or an :mod:`ipaddress`
    address); :class:`~pyvxlan.ConfigError` naming ``field`` otherwise. The EVPN fields that hold
    only IPv4 (router IDs, a type-1 route distinguisher) and a prefix's gateway use it.

    >>> check_ip_version("2001:db8::1", "router_id", 4)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: router_id: '2001:db8::1' is not an IPv4 address
    """
    text = normalize_ip(value, field)
    if ip_info(text, field).version != version:
        raise ConfigError(field, f"{text!r} is not an IPv{version} address")
    return text


def _check_bytes(value: object, field: str, length: int | None = None) -> bytes:
    # The field keeps bytes whatever buffer was given, so the value stays hashable.
    raw = value if type(value) is bytes else bytes(byte_view(value, field))
    if length is not None and len(raw) != length:
        raise ConfigError(field, f"must be {length} bytes, got {len(raw)}")
    return raw


def _need(data: bytes, pos: int, n: int, base: int, what: str) -> None:
    if pos + n > len(data):
        raise TruncatedError(_LAYER, base + pos, f"{what} needs {n} bytes, {len(data) - pos} left")


# --- route distinguishers and EVPN routes ---------------------------------------------------


class RdType(enum.IntEnum):
    """The route distinguisher's type field (RFC 4364 section 4.2)."""

    AS2 = 0  # 2-byte AS : 4-byte number
    IPV4 = 1  # IPv4 address : 2-byte number (FRR's auto RD: router-id:rd_id)
    AS4 = 2  # 4-byte AS : 2-byte number


@dataclass(frozen=True, slots=True)
class RouteDistinguisher:
    """An 8-byte route distinguisher; ``administrator`` is an AS number or an IPv4 address text.

    >>> str(RouteDistinguisher.ipv4("198.51.100.1", 2))
    '198.51.100.1:2'
    """

    type: RdType
    administrator: int | str
    assigned: int

    def __post_init__(self) -> None:
        if not isinstance(self.type, RdType):
            if type(self.type) is int and self.type in RdType._value2member_map_:
                object.__setattr__(self, "type", RdType(self.type))
            else:
                raise ConfigError("type", f"must be an RdType (0, 1 or 2), got {describe(self.type)}")
        if self.type is RdType.IPV4:
            object.__setattr__(self, "administrator", check_ip_version(self.administrator, "administrator", 4))
        else:
            check_int(self.administrator, "administrator", 0, 0xFFFF if self.type is RdType.AS2 else 0xFFFFFFFF)
        check_int(self.assigned, "assigned", 0, 0xFFFFFFFF if self.type is RdType.AS2 else 0xFFFF)

    @classmethod
    def as2(cls, asn: int, assigned: int) -> RouteDistinguisher:
        """Type 0: ``ASN:number`` with a 2-byte AS."""
        return cls(RdType.AS2, asn, assigned)

    @classmethod
    def ipv4(cls, address: str, assigned: int) -> RouteDistinguisher:
        """Type 1: ``address:number``."""
        return cls(RdType.IPV4, address, assigned)

    @classmethod
    def as4(cls, asn: int, assigned: int) -> RouteDistinguisher:
        """Type 2: ``ASN:number`` with a 4-byte AS."""
        return cls(RdType.AS4, asn, assigned)

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        if self.type is RdType.AS2:
            return struct.pack("!HHI", 0, self.administrator, self.assigned)
        if self.type is RdType.IPV4:
            return struct.pack("!H4sH", 1, ip_info(str(self.administrator), "administrator").packed, self.assigned)
        return struct.pack("!HIH", 2, self.administrator, self.assigned)

    @classmethod
    def decode(cls, data: bytes, base: int = 0) -> RouteDistinguisher:
        """From exactly 8 bytes; ``base`` is their offset in the message (for errors)."""
        if len(data) != 8:
            raise TruncatedError(_LAYER, base, f"route distinguisher needs 8 bytes, got {len(data)}")
        kind = int.from_bytes(data[:2], "big")
        if kind == 0:
            return cls(RdType.AS2, *struct.unpack("!HI", data[2:]))
        if kind == 1:
            return cls(RdType.IPV4, ip_text(data[2:6]), int.from_bytes(data[6:], "big"))
        if kind == 2:
            return cls(RdType.AS4, *struct.unpack("!IH", data[2:]))
        raise _fail(base, f"route distinguisher type {kind} is not 0, 1 or 2")

    def __str__(self) -> str:
        return f"{self.administrator}:{self.assigned}"


class _RouteType(enum.IntEnum):
    MAC_IP = 2
    INCLUSIVE_MULTICAST = 3
    IP_PREFIX = 5


def _check_rd(value: object) -> None:
    if not isinstance(value, RouteDistinguisher):
        raise ConfigError("rd", f"must be a RouteDistinguisher, got {describe(value)}")


@dataclass(frozen=True, slots=True)
class MacIpRoute:
    """Route type 2, MAC/IP advertisement (RFC 7432 section 7.2).

    ``labels`` holds one VNI (the L2 VNI) or two (L2 and L3 VNI). Only ``key`` (RD, Ethernet tag,
    MAC, IP) identifies the route: a withdrawal carries the same key with zero labels.
    """

    rd: RouteDistinguisher
    mac: str
    ip: str | None = None
    labels: tuple[int, ...] = (0,)
    ethernet_tag: int = 0
    esi: bytes = bytes(10)

    route_type = _RouteType.MAC_IP

    def __post_init__(self) -> None:
        _check_rd(self.rd)
        object.__setattr__(self, "mac", normalize_mac(self.mac, "mac"))
        if self.ip is not None:
            object.__setattr__(self, "ip", normalize_ip(self.ip, "ip"))
        if not isinstance(self.labels, tuple) or len(self.labels) not in (1, 2):
            raise ConfigError("labels", f"must be a tuple of one or two VNIs, got {describe(self.labels)}")
        for label in self.labels:
            check_int(label, "labels", 0, VNI_MAX)
        check_int(self.ethernet_tag, "ethernet_tag", 0, 0xFFFFFFFF)
        object.__setattr__(self, "esi", _check_bytes(self.esi, "esi", 10))

    @property
    def vni(self) -> int:
        """The L2 VNI (the first label)."""
        return self.labels[0]

    @property
    def key(self) -> tuple[RouteDistinguisher, int, str, str | None]:
        """What identifies the route (RFC 7432: RD, Ethernet tag, MAC, IP; not ESI or labels)."""
        return (self.rd, self.ethernet_tag, self.mac, self.ip)

    def body(self) -> bytes:
        ip = b"" if self.ip is None else ip_info(self.ip).packed
        return b"".join(
            (
                self.rd.encode(),
                self.esi,
                self.ethernet_tag.to_bytes(4, "big"),
                b"\x30",
                parse_mac(self.mac),
                bytes((len(ip) * 8,)),
                ip,
                *(label.to_bytes(3, "big") for label in self.labels),
            )
        )


@dataclass(frozen=True, slots=True)
class InclusiveMulticastRoute:
    """Route type 3, inclusive multicast Ethernet tag (RFC 7432 section 7.3): ``originator`` joins
    the flood list of the VNI named by the PMSI tunnel attribute that comes with it."""

    rd: RouteDistinguisher
    originator: str
    ethernet_tag: int = 0

    route_type = _RouteType.INCLUSIVE_MULTICAST

    def __post_init__(self) -> None:
        _check_rd(self.rd)
        object.__setattr__(self, "originator", normalize_ip(self.originator, "originator"))
        check_int(self.ethernet_tag, "ethernet_tag", 0, 0xFFFFFFFF)

    @property
    def key(self) -> tuple[RouteDistinguisher, int, str]:
        """What identifies the route: RD, Ethernet tag, originating router's IP."""
        return (self.rd, self.ethernet_tag, self.originator)

    def body(self) -> bytes:
        ip = ip_info(self.originator).packed
        return self.rd.encode() + self.ethernet_tag.to_bytes(4, "big") + bytes((len(ip) * 8,)) + ip


@dataclass(frozen=True, slots=True)
class IpPrefixRoute:
    """Route type 5, IP prefix (RFC 9136): the prefix and gateway are written full width, so a
    prefix keeps whatever host bits its sender put there."""

    rd: RouteDistinguisher
    prefix: str
    prefix_len: int
    gateway: str
    label: int = 0
    ethernet_tag: int = 0
    esi: bytes = bytes(10)

    route_type = _RouteType.IP_PREFIX

    def __post_init__(self) -> None:
        _check_rd(self.rd)
        object.__setattr__(self, "prefix", normalize_ip(self.prefix, "prefix"))
        version = 4 if ":" not in self.prefix else 6
        check_int(self.prefix_len, "prefix_len", 0, 32 if version == 4 else 128)
        object.__setattr__(self, "gateway", check_ip_version(self.gateway, "gateway", version))
        check_int(self.label, "label", 0, VNI_MAX)
        check_int(self.ethernet_tag, "ethernet_tag", 0, 0xFFFFFFFF)
        object.__setattr__(self, "esi", _check_bytes(self.esi, "esi", 10))

    @property
    def key(self) -> tuple[RouteDistinguisher, int, str, int]:
        """What identifies the route: RD, Ethernet tag, prefix and its length."""
        return (self.rd, self.ethernet_tag, self.prefix, self.prefix_len)

    def body(self) -> bytes:
        return b"".join(
            (
                self.rd.encode(),
                self.esi,
                self.ethernet_tag.to_bytes(4, "big"),
                bytes((self.prefix_len,)),
                ip_info(self.prefix).packed,
                ip_info(self.gateway).packed,
                self.label.to_bytes(3, "big"),
            )
        )


@dataclass(frozen=True, slots=True)
class UnknownRoute:
    """A route type pyvxlan does not model (1, 4 and others), kept as its body bytes."""

    route_type: int
    data: bytes

    def __post_init__(self) -> None:
        check_int(self.route_type, "route_type", 0, 255)
        if self.route_type in _RouteType._value2member_map_:
            raise ConfigError("route_type", f"type {self.route_type} has its own class")
        object.__setattr__(self, "data", _check_bytes(self.data, "data"))
        if len(self.data) > 255:
            raise ConfigError("data", f"an EVPN route body is at most 255 bytes, got {len(self.data)}")

    @property
    def key(self) -> tuple[int, bytes]:
        """The whole route: pyvxlan does not know which of its bytes form the key."""
        return (self.route_type, self.data)

    def body(self) -> bytes:
        return self.data


EvpnRoute: TypeAlias = MacIpRoute | InclusiveMulticastRoute | IpPrefixRoute | UnknownRoute


def _decode_type2(body: bytes, base: int) -> MacIpRoute:
    if len(body) < 30:
        raise TruncatedError(_LAYER, base, f"MAC/IP route needs at least 30 bytes, got {len(body)}")
    if body[22] != 48:
        raise _fail(base + 22, f"MAC length {body[22]} bits is not 48")
    ip_bits = body[29]
    if ip_bits not in (0, 32, 128):
        raise _fail(base + 29, f"IP length {ip_bits} bits is not 0, 32 or 128")
    ip_end = 30 + ip_bits // 8
    rest = len(body) - ip_end
    if rest not in (3, 6):
        raise _fail(
            base,
            f"MAC/IP route of {len(body)} bytes with a {ip_bits}-bit IP leaves {rest} bytes for labels, not 3 or 6",
        )
    labels = tuple(int.from_bytes(body[i : i + 3], "big") for i in range(ip_end, len(body), 3))
    return MacIpRoute(
        rd=RouteDistinguisher.decode(body[:8], base),
        esi=body[8:18],
        ethernet_tag=int.from_bytes(body[18:22], "big"),
        mac=format_mac(body[23:29]),
        ip=ip_text(body[30:ip_end]) if ip_bits else None,
        labels=labels,
    )


def _decode_type3(body: bytes, base: int) -> InclusiveMulticastRoute:
    if len(body) not in (17, 29):
        raise _fail(base, f"inclusive multicast route body is {len(body)} bytes, not 17 or 29")
    bits = body[12]
    if bits != (len(body) - 13) * 8:
        raise _fail(base + 12, f"IP length {bits} bits does not match a {len(body)}-byte route")
    return InclusiveMulticastRoute(
        rd=RouteDistinguisher.decode(body[:8], base),
        ethernet_tag=int.from_bytes(body[8:12], "big"),
        originator=ip_text(body[13:]),
    )


def _decode_type5(body: bytes, base: int) -> IpPrefixRoute:
    if len(body) not in (34, 58):
        raise _fail(base, f"IP prefix route body is {len(body)} bytes, not 34 or 58")
    width = 4 if len(body) == 34 else 16
    plen = body[22]
    if plen > width * 8:
        raise _fail(base + 22, f"prefix length {plen} is longer than an IPv{4 if width == 4 else 6} address")
    return IpPrefixRoute(
        rd=RouteDistinguisher.decode(body[:8], base),
        esi=body[8:18],
        ethernet_tag=int.from_bytes(body[18:22], "big"),
        prefix_len=plen,
        prefix=ip_text(body[23 : 23 + width]),
        gateway=ip_text(body[23 + width : 23 + 2 * width]),
        label=int.from_bytes(body[-3:], "big"),
    )


def decode_routes(data: bytes, base: int = 0) -> tuple[EvpnRoute, ...]:
    """The EVPN NLRIs packed in ``data`` (``type | length | body`` each, no ADD-PATH ids)."""
    routes: list[EvpnRoute] = []
    pos = 0
    while pos < len(data):
        _need(data, pos, 2, base, "EVPN route header")
        kind, length = data[pos], data[pos + 1]
        _need(data, pos + 2, length, base, f"EVPN route type {kind}")
        body = data[pos + 2 : pos + 2 + length]
        at = base + pos + 2
        if kind == 2:
            routes.append(_decode_type2(body, at))
        elif kind == 3:
            routes.append(_decode_type3(body, at))
        elif kind == 5:
            routes.append(_decode_type5(body, at))
        else:
            routes.append(UnknownRoute(kind, body))
        pos += 2 + length
    return tuple(routes)


def encode_routes(routes: Iterable[EvpnRoute]) -> bytes:
    """The NLRI bytes of ``routes``."""
    out = bytearray()
    for route in routes:
        body = route.body()
        out += bytes((int(route.route_type), len(body))) + body
    return bytes(out)


def _check_routes(value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(r, (MacIpRoute, InclusiveMulticastRoute, IpPrefixRoute, UnknownRoute)) for r in value
    ):
        raise ConfigError("routes", f"must be a tuple of EVPN routes, got {describe(value)}")


# --- extended communities --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """A route target extended community (type 0x00, 0x01 or 0x02, subtype 0x02).

    FRR's automatic RT for a VNI is ``RouteTarget.as2(AS & 0xFFFF, VNI)``.
    """

    type: RdType
    administrator: int | str
    assigned: int

    def __post_init__(self) -> None:
        rd = RouteDistinguisher(self.type, self.administrator, self.assigned)  # same field rules
        object.__setattr__(self, "type", rd.type)
        object.__setattr__(self, "administrator", rd.administrator)

    @classmethod
    def as2(cls, asn: int, assigned: int) -> RouteTarget:
        """``RT:ASN:number`` with a 2-byte AS."""
        return cls(RdType.AS2, asn, assigned)

    @classmethod
    def ipv4(cls, address: str, assigned: int) -> RouteTarget:
        """``RT:address:number``."""
        return cls(RdType.IPV4, address, assigned)

    @classmethod
    def as4(cls, asn: int, assigned: int) -> RouteTarget:
        """``RT:ASN:number`` with a 4-byte AS."""
        return cls(RdType.AS4, asn, assigned)

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        raw = RouteDistinguisher(self.type, self.administrator, self.assigned).encode()
        return bytes((raw[1], 0x02)) + raw[2:]

    def __str__(self) -> str:
        return f"RT:{self.administrator}:{self.assigned}"


@dataclass(frozen=True, slots=True)
class Encapsulation:
    """The encapsulation extended community (RFC 9012, type 0x03 subtype 0x0c); tunnel type 8 is
    VXLAN."""

    tunnel_type: int = 8

    def __post_init__(self) -> None:
        check_int(self.tunnel_type, "tunnel_type", 0, 0xFFFF)

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        return b"\x03\x0c" + bytes(4) + self.tunnel_type.to_bytes(2, "big")


ENCAP_VXLAN: Final = Encapsulation(8)


@dataclass(frozen=True, slots=True)
class MacMobility:
    """MAC mobility (RFC 7432 section 7.7, type 0x06 subtype 0x00): a move's sequence number and
    the sticky (static) flag."""

    sequence: int = 0
    sticky: bool = False

    def __post_init__(self) -> None:
        check_int(self.sequence, "sequence", 0, 0xFFFFFFFF)
        check_bool(self.sticky, "sticky")

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        return bytes((0x06, 0x00, 1 if self.sticky else 0, 0)) + self.sequence.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class RouterMac:
    """The EVPN router's MAC extended community (type 0x06 subtype 0x03), for IRB and type 5."""

    mac: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", normalize_mac(self.mac, "mac"))

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        return b"\x06\x03" + parse_mac(self.mac)


@dataclass(frozen=True, slots=True)
class DefaultGateway:
    """The default gateway extended community (RFC 7432 section 7.8, type 0x03 subtype 0x0d)."""

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        return b"\x03\x0d" + bytes(6)


@dataclass(frozen=True, slots=True)
class RawCommunity:
    """An extended community pyvxlan does not model (or one with reserved bits set), as its bytes."""

    data: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _check_bytes(self.data, "data", 8))

    def encode(self) -> bytes:
        """The 8 bytes on the wire."""
        return self.data


ExtendedCommunity: TypeAlias = RouteTarget | Encapsulation | MacMobility | RouterMac | DefaultGateway | RawCommunity
_COMMUNITY_TYPES: Final = (RouteTarget, Encapsulation, MacMobility, RouterMac, DefaultGateway, RawCommunity)


def _decode_community(raw: bytes) -> ExtendedCommunity:
    kind, sub = raw[0], raw[1]
    # A community is typed only when its reserved bytes are zero: otherwise the typed value could
    # not give the same bytes back, so it stays raw.
    if kind in (0x00, 0x01, 0x02) and sub == 0x02:
        rd = RouteDistinguisher.decode(b"\x00" + bytes((kind,)) + raw[2:])
        return RouteTarget(rd.type, rd.administrator, rd.assigned)
    if kind == 0x03 and sub == 0x0C and raw[2:6] == bytes(4):
        return Encapsulation(int.from_bytes(raw[6:], "big"))
    if kind == 0x03 and sub == 0x0D and raw[2:] == bytes(6):
        return DefaultGateway()
    if kind == 0x06 and sub == 0x00 and raw[2] in (0, 1) and raw[3] == 0:
        return MacMobility(int.from_bytes(raw[4:], "big"), raw[2] == 1)
    if kind == 0x06 and sub == 0x03:
        return RouterMac(format_mac(raw[2:]))
    return RawCommunity(raw)


# --- path attributes -------------------------------------------------------------------------


class AttributeFlag(enum.IntFlag):
    """The path attribute flags byte (RFC 4271 section 4.3)."""

    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


def _check_flags(value: object) -> None:
    check_int(value, "flags", 0, 255)


class OriginType(enum.IntEnum):
    """ORIGIN's value."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


@dataclass(frozen=True, slots=True)
class Origin:
    """ORIGIN (type 1)."""

    origin: OriginType = OriginType.IGP
    flags: int = 0x40

    type_code = 1

    def __post_init__(self) -> None:
        if not isinstance(self.origin, OriginType):
            if type(self.origin) is int and self.origin in OriginType._value2member_map_:
                object.__setattr__(self, "origin", OriginType(self.origin))
            else:
                raise ConfigError("origin", f"must be an OriginType, got {describe(self.origin)}")
        _check_flags(self.flags)

    def value(self) -> bytes:
        return bytes((self.origin,))


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    """One AS_PATH segment: ``kind`` 1 is AS_SET, 2 AS_SEQUENCE; 4-byte AS numbers."""

    kind: int
    asns: tuple[int, ...]

    def __post_init__(self) -> None:
        check_int(self.kind, "kind", 0, 255)
        if not isinstance(self.asns, tuple) or not 1 <= len(self.asns) <= 255:
            raise ConfigError("asns", f"must be a tuple of 1 to 255 AS numbers, got {describe(self.asns)}")
        for asn in self.asns:
            check_int(asn, "asns", 0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class AsPath:
    """AS_PATH (type 2) with 4-byte AS numbers: pyvxlan always offers the 4-octet AS capability,
    and FRR does too, so this is the only form a session sees. iBGP sends it empty."""

    segments: tuple[AsPathSegment, ...] = ()
    flags: int = 0x40

    type_code = 2

    def __post_init__(self) -> None:
        if not isinstance(self.segments, tuple) or not all(isinstance(s, AsPathSegment) for s in self.segments):
            raise ConfigError("segments", f"must be a tuple of AsPathSegment, got {describe(self.segments)}")
        _check_flags(self.flags)

    def value(self) -> bytes:
        return b"".join(
            bytes((s.kind, len(s.asns))) + b"".join(a.to_bytes(4, "big") for a in s.asns) for s in self.segments
        )


@dataclass(frozen=True, slots=True)
class MultiExitDisc:
    """MULTI_EXIT_DISC (type 4)."""

    med: int
    flags: int = 0x80

    type_code = 4

    def __post_init__(self) -> None:
        check_int(self.med, "med", 0, 0xFFFFFFFF)
        _check_flags(self.flags)

    def value(self) -> bytes:
        return self.med.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class LocalPref:
    """LOCAL_PREF (type 5); FRR's default is 100."""

    preference: int = 100
    flags: int = 0x40

    type_code = 5

    def __post_init__(self) -> None:
        check_int(self.preference, "preference", 0, 0xFFFFFFFF)
        _check_flags(self.flags)

    def value(self) -> bytes:
        return self.preference.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class OriginatorId:
    """ORIGINATOR_ID (type 9, RFC 4456): what a route reflector adds."""

    router_id: str
    flags: int = 0x80

    type_code = 9

    def __post_init__(self) -> None:
        object.__setattr__(self, "router_id", check_ip_version(self.router_id, "router_id", 4))
        _check_flags(self.flags)

    def value(self) -> bytes:
        return ip_info(self.router_id).packed


@dataclass(frozen=True, slots=True)
class ClusterList:
    """CLUSTER_LIST (type 10, RFC 4456)."""

    clusters: tuple[str, ...]
    flags: int = 0x80

    type_code = 10

    def __post_init__(self) -> None:
        if not isinstance(self.clusters, tuple):
            raise ConfigError("clusters", f"must be a tuple of IPv4 addresses, got {describe(self.clusters)}")
        object.__setattr__(self, "clusters", tuple(check_ip_version(c, "clusters", 4) for c in self.clusters))
        _check_flags(self.flags)

    def value(self) -> bytes:
        return b"".join(ip_info(c).packed for c in self.clusters)


@dataclass(frozen=True, slots=True)
class MpReachNlri:
    """MP_REACH_NLRI (type 14) for L2VPN EVPN: the VTEP address and the routes it announces.
    FRR sends it with flags 0x90 (optional, extended length), the default here."""

    next_hop: str
    routes: tuple[EvpnRoute, ...]
    flags: int = 0x90

    type_code = 14

    def __post_init__(self) -> None:
        object.__setattr__(self, "next_hop", normalize_ip(self.next_hop, "next_hop"))
        _check_routes(self.routes)
        _check_flags(self.flags)

    def value(self) -> bytes:
        nh = ip_info(self.next_hop).packed
        return struct.pack("!HBB", AFI_L2VPN, SAFI_EVPN, len(nh)) + nh + b"\x00" + encode_routes(self.routes)


@dataclass(frozen=True, slots=True)
class MpUnreachNlri:
    """MP_UNREACH_NLRI (type 15) for L2VPN EVPN; with no routes it is the End-of-RIB marker."""

    routes: tuple[EvpnRoute, ...] = ()
    flags: int = 0x90

    type_code = 15

    def __post_init__(self) -> None:
        _check_routes(self.routes)
        _check_flags(self.flags)

    def value(self) -> bytes:
        return struct.pack("!HB", AFI_L2VPN, SAFI_EVPN) + encode_routes(self.routes)


@dataclass(frozen=True, slots=True)
class ExtendedCommunities:
    """EXTENDED_COMMUNITIES (type 16)."""

    communities: tuple[ExtendedCommunity, ...]
    flags: int = 0xC0

    type_code = 16

    def __post_init__(self) -> None:
        if not isinstance(self.communities, tuple) or not all(
            isinstance(c, _COMMUNITY_TYPES) for c in self.communities
        ):
            raise ConfigError(
                "communities", f"must be a tuple of extended communities, got {describe(self.communities)}"
            )
        _check_flags(self.flags)

    def value(self) -> bytes:
        return b"".join(c.encode() for c in self.communities)


@dataclass(frozen=True, slots=True)
class PmsiTunnel:
    """PMSI_TUNNEL (type 22, RFC 6514) with ingress replication (tunnel type 6): the VNI in the
    label field (RFC 8365) and the VTEP to replicate to. Other tunnel types stay raw."""

    tunnel_id: str
    label: int
    tunnel_flags: int = 0
    flags: int = 0xC0

    type_code = 22
    tunnel_type = 6

    def __post_init__(self) -> None:
        object.__setattr__(self, "tunnel_id", normalize_ip(self.tunnel_id, "tunnel_id"))
        check_int(self.label, "label", 0, VNI_MAX)
        check_int(self.tunnel_flags, "tunnel_flags", 0, 255)
        _check_flags(self.flags)

    @property
    def vni(self) -> int:
        """The VNI (the whole 24-bit label)."""
        return self.label

    def value(self) -> bytes:
        return bytes((self.tunnel_flags, 6)) + self.label.to_bytes(3, "big") + ip_info(self.tunnel_id).packed


@dataclass(frozen=True, slots=True)
class RawAttribute:
    """A path attribute pyvxlan does not model, or models only for EVPN (an IPv4 MP_REACH_NLRI,
    say), kept as its flags, type code and value."""

    flags: int
    type_code: int
    data: bytes

    def __post_init__(self) -> None:
        _check_flags(self.flags)
        check_int(self.type_code, "type_code", 0, 255)
        object.__setattr__(self, "data", _check_bytes(self.data, "data"))
        if len(self.data) > 0xFFFF:
            raise ConfigError("data", f"an attribute value is at most 65535 bytes, got {len(self.data)}")

    def value(self) -> bytes:
        return self.data


PathAttribute: TypeAlias = (
    Origin
    | AsPath
    | MultiExitDisc
    | LocalPref
    | OriginatorId
    | ClusterList
    | MpReachNlri
    | MpUnreachNlri
    | ExtendedCommunities
    | PmsiTunnel
    | RawAttribute
)
_ATTRIBUTE_TYPES: Final = (
    Origin,
    AsPath,
    MultiExitDisc,
    LocalPref,
    OriginatorId,
    ClusterList,
    MpReachNlri,
    MpUnreachNlri,
    ExtendedCommunities,
    PmsiTunnel,
    RawAttribute,
)


def _encode_attribute(attr: PathAttribute) -> bytes:
    value = attr.value()
    flags = attr.flags
    if len(value) > 255:
        flags |= AttributeFlag.EXTENDED_LENGTH
    if flags & AttributeFlag.EXTENDED_LENGTH:
        return struct.pack("!BBH", flags, attr.type_code, len(value)) + value
    return struct.pack("!BBB", flags, attr.type_code, len(value)) + value


def _decode_attribute(flags: int, code: int, value: bytes, base: int) -> PathAttribute:
    n = len(value)
    if code == 1 and n == 1 and value[0] <= 2:
        return Origin(OriginType(value[0]), flags)
    if code == 2:
        segments: list[AsPathSegment] = []
        pos = 0
        while pos < n:
            _need(value, pos, 2, base, "AS_PATH segment header")
            count = value[pos + 1]
            if count == 0:
                raise _fail(base + pos + 1, "AS_PATH segment with no AS numbers")
            _need(value, pos + 2, 4 * count, base, "AS_PATH segment")
            asns = struct.unpack(f"!{count}I", value[pos + 2 : pos + 2 + 4 * count])
            segments.append(AsPathSegment(value[pos], asns))
            pos += 2 + 4 * count
        return AsPath(tuple(segments), flags)
    if code == 4 and n == 4:
        return MultiExitDisc(int.from_bytes(value, "big"), flags)
    if code == 5 and n == 4:
        return LocalPref(int.from_bytes(value, "big"), flags)
    if code == 9 and n == 4:
        return OriginatorId(ip_text(value), flags)
    if code == 10 and n % 4 == 0:
        return ClusterList(tuple(ip_text(value[i : i + 4]) for i in range(0, n, 4)), flags)
    if code in (14, 15) and n >= 3 and value[:3] == b"\x00\x19\x46":
        if code == 15:
            return MpUnreachNlri(decode_routes(value[3:], base + 3), flags)
        _need(value, 3, 1, base, "MP_REACH_NLRI next hop length")
        nh_len = value[3]
        if nh_len not in (4, 16):
            raise _fail(base + 3, f"EVPN next hop length {nh_len} is not 4 or 16")
        _need(value, 4, nh_len + 1, base, "MP_REACH_NLRI next hop")
        if value[4 + nh_len] != 0:
            raise _fail(base + 4 + nh_len, f"MP_REACH_NLRI reserved byte is {value[4 + nh_len]}, not 0")
        start = 5 + nh_len
        return MpReachNlri(ip_text(value[4 : 4 + nh_len]), decode_routes(value[start:], base + start), flags)
    if code == 16:
        if n % 8:
            raise _fail(base, f"EXTENDED_COMMUNITIES length {n} is not a multiple of 8")
        return ExtendedCommunities(tuple(_decode_community(value[i : i + 8]) for i in range(0, n, 8)), flags)
    if code == 22 and n in (9, 21) and value[1] == 6:
        return PmsiTunnel(ip_text(value[5:]), int.from_bytes(value[2:5], "big"), value[0], flags)
    return RawAttribute(flags, code, value)


def _decode_attributes(data: bytes, base: int) -> tuple[PathAttribute, ...]:
    attrs: list[PathAttribute] = []
    seen: set[int] = set()
    pos = 0
    while pos < len(data):
        _need(data, pos, 3, base, "path attribute header")
        flags, code = data[pos], data[pos + 1]
        if flags & AttributeFlag.EXTENDED_LENGTH:
            _need(data, pos, 4, base, "path attribute header")
            length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
        else:
            length, head = data[pos + 2], 3
        _need(data, pos + head, length, base, f"path attribute {code}")
        if code in seen:
            # RFC 7606 section 3(g): a repeated attribute is malformed.
            raise _fail(base + pos + 1, f"path attribute {code} appears twice")
        seen.add(code)
        attrs.append(_decode_attribute(flags, code, data[pos + head : pos + head + length], base + pos + head))
        pos += head + length
    return tuple(attrs)


# --- capabilities and OPEN -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Multiprotocol:
    """Multiprotocol extensions capability (code 1, RFC 4760); EVPN is AFI 25 SAFI 70."""

    afi: int = AFI_L2VPN
    safi: int = SAFI_EVPN

    code = 1

    def __post_init__(self) -> None:
        check_int(self.afi, "afi", 0, 0xFFFF)
        check_int(self.safi, "safi", 0, 255)

    def value(self) -> bytes:
        return struct.pack("!HBB", self.afi, 0, self.safi)


@dataclass(frozen=True, slots=True)
class RouteRefreshCapability:
    """Route refresh capability (code 2, RFC 2918)."""

    code = 2

    def value(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class FourOctetAs:
    """4-octet AS number capability (code 65, RFC 6793): the speaker's real AS."""

    asn: int

    code = 65

    def __post_init__(self) -> None:
        check_int(self.asn, "asn", 0, 0xFFFFFFFF)

    def value(self) -> bytes:
        return self.asn.to_bytes(4, "big")


@dataclass(frozen=True, slots=True)
class RawCapability:
    """A capability pyvxlan does not model (FRR also offers ADD-PATH, graceful restart, hostname
    and others), kept as its code and value."""

    code: int
    data: bytes

    def __post_init__(self) -> None:
        check_int(self.code, "code", 0, 255)
        object.__setattr__(self, "data", _check_bytes(self.data, "data"))
        if len(self.data) > 255:
            raise ConfigError("data", f"a capability value is at most 255 bytes, got {len(self.data)}")

    def value(self) -> bytes:
        return self.data


Capability: TypeAlias = Multiprotocol | RouteRefreshCapability | FourOctetAs | RawCapability
_CAPABILITY_TYPES: Final = (Multiprotocol, RouteRefreshCapability, FourOctetAs, RawCapability)


def _decode_capability(code: int, value: bytes) -> Capability:
    if code == 1 and len(value) == 4 and value[2] == 0:
        return Multiprotocol(int.from_bytes(value[:2], "big"), value[3])
    if code == 2 and not value:
        return RouteRefreshCapability()
    if code == 65 and len(value) == 4:
        return FourOctetAs(int.from_bytes(value, "big"))
    return RawCapability(code, value)


@dataclass(frozen=True, slots=True)
class CapabilityParameter:
    """An OPEN optional parameter of type 2 holding capabilities (FRR sends one per parameter)."""

    capabilities: tuple[Capability, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.capabilities, tuple) or not all(
            isinstance(c, _CAPABILITY_TYPES) for c in self.capabilities
        ):
            raise ConfigError("capabilities", f"must be a tuple of capabilities, got {describe(self.capabilities)}")

    def value(self) -> bytes:
        return b"".join(bytes((c.code, len(c.value()))) + c.value() for c in self.capabilities)


@dataclass(frozen=True, slots=True)
class RawParameter:
    """An OPEN optional parameter of another type, kept raw."""

    type: int
    data: bytes

    def __post_init__(self) -> None:
        check_int(self.type, "type", 0, 255)
        if self.type == 2:
            raise ConfigError("type", "type 2 is a CapabilityParameter")
        object.__setattr__(self, "data", _check_bytes(self.data, "data"))
        if len(self.data) > 254:
            raise ConfigError("data", f"a parameter value is at most 254 bytes, got {len(self.data)}")

    def value(self) -> bytes:
        return self.data


OpenParameter: TypeAlias = CapabilityParameter | RawParameter


class MessageType(enum.IntEnum):
    """The BGP message type (RFC 4271 section 4.1, RFC 2918)."""

    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


def _frame(kind: MessageType, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", _HEADER + len(body), kind) + body


@dataclass(frozen=True, slots=True)
class Open:
    """OPEN. ``my_as`` is the 2-byte field (``AS_TRANS`` for a 4-byte AS); :meth:`build` fills
    it and the capabilities an EVPN speaker offers."""

    my_as: int
    hold_time: int
    router_id: str
    parameters: tuple[OpenParameter, ...] = ()
    version: int = 4

    type = MessageType.OPEN

    def __post_init__(self) -> None:
        check_int(self.my_as, "my_as", 0, 0xFFFF)
        check_int(self.hold_time, "hold_time", 0, 0xFFFF)
        if self.hold_time in (1, 2):
            raise ConfigError("hold_time", f"must be 0 or at least 3 seconds, got {self.hold_time}")
        object.__setattr__(self, "router_id", check_ip_version(self.router_id, "router_id", 4))
        if not isinstance(self.parameters, tuple) or not all(
            isinstance(p, (CapabilityParameter, RawParameter)) for p in self.parameters
        ):
            raise ConfigError("parameters", f"must be a tuple of OPEN parameters, got {describe(self.parameters)}")
        check_int(self.version, "version", 0, 255)
        if len(b"".join(p.value() for p in self.parameters)) + 2 * len(self.parameters) > 255:
            raise ConfigError("parameters", "more than 255 bytes of optional parameters")

    @classmethod
    def build(cls, asn: int, router_id: str, hold_time: int = 180, *, extra: Sequence[Capability] = ()) -> Open:
        """An OPEN offering L2VPN EVPN, route refresh and the 4-octet AS capability."""
        check_int(asn, "asn", 1, 0xFFFFFFFF)
        caps: list[Capability] = [Multiprotocol(), RouteRefreshCapability(), FourOctetAs(asn), *extra]
        return cls(
            asn if asn <= 0xFFFF else AS_TRANS,
            hold_time,
            router_id,
            tuple(CapabilityParameter((c,)) for c in caps),
        )

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """Every capability, in order, from every parameter."""
        return tuple(c for p in self.parameters if isinstance(p, CapabilityParameter) for c in p.capabilities)

    @property
    def asn(self) -> int:
        """The speaker's AS: the 4-octet capability's when present, else ``my_as``."""
        for cap in self.capabilities:
            if isinstance(cap, FourOctetAs):
                return cap.asn
        return self.my_as

    def supports(self, afi: int, safi: int) -> bool:
        """Whether the multiprotocol capability offers ``afi``/``safi``."""
        return Multiprotocol(afi, safi) in self.capabilities

    def encode(self) -> bytes:
        """The whole message, header included."""
        params = b"".join(
            bytes((2 if isinstance(p, CapabilityParameter) else p.type, len(p.value()))) + p.value()
            for p in self.parameters
        )
        return _frame(
            MessageType.OPEN,
            struct.pack(
                "!BHH4sB", self.version, self.my_as, self.hold_time, ip_info(self.router_id).packed, len(params)
            )
            + params,
        )


def _decode_open(body: bytes) -> Open:
    base = _HEADER
    _need(body, 0, 10, base, "OPEN")
    version, my_as, hold, rid, plen = struct.unpack("!BHH4sB", body[:10])
    if version != 4:
        raise _fail(base, f"BGP version {version} is not 4")
    if hold in (1, 2):
        raise _fail(base + 3, f"hold time {hold} is not 0 or at least 3")
    if plen == 255 and len(body) > 10 and body[10] == 255:
        raise _fail(base + 9, "extended optional parameters (RFC 9072) are not supported")
    if 10 + plen != len(body):
        raise _fail(base + 9, f"optional parameters length {plen} does not match the {len(body) - 10} bytes left")
    params: list[OpenParameter] = []
    pos = 10
    while pos < len(body):
        _need(body, pos, 2, base, "OPEN parameter header")
        kind, length = body[pos], body[pos + 1]
        _need(body, pos + 2, length, base, f"OPEN parameter {kind}")
        value = body[pos + 2 : pos + 2 + length]
        if kind == 2:
            caps: list[Capability] = []
            cpos = 0
            while cpos < len(value):
                _need(value, cpos, 2, base + pos + 2, "capability header")
                code, clen = value[cpos], value[cpos + 1]
                _need(value, cpos + 2, clen, base + pos + 2, f"capability {code}")
                caps.append(_decode_capability(code, value[cpos + 2 : cpos + 2 + clen]))
                cpos += 2 + clen
            params.append(CapabilityParameter(tuple(caps)))
        else:
            params.append(RawParameter(kind, value))
        pos += 2 + length
    return Open(my_as, hold, ip_text(rid), tuple(params), version)


def _find(attributes: tuple[PathAttribute, ...], kind: type) -> PathAttribute | None:
    for attr in attributes:
        if type(attr) is kind:
            return attr
    return None


@dataclass(frozen=True, slots=True)
class Update:
    """UPDATE. EVPN routes travel in the MP_REACH_NLRI and MP_UNREACH_NLRI attributes; the IPv4
    withdrawn-routes and NLRI fields are kept raw (an EVPN session leaves them empty)."""

    attributes: tuple[PathAttribute, ...] = ()
    withdrawn: bytes = b""
    nlri: bytes = b""

    type = MessageType.UPDATE

    def __post_init__(self) -> None:
        if not isinstance(self.attributes, tuple) or not all(isinstance(a, _ATTRIBUTE_TYPES) for a in self.attributes):
            raise ConfigError("attributes", f"must be a tuple of path attributes, got {describe(self.attributes)}")
        codes = [a.type_code for a in self.attributes]
        if len(set(codes)) != len(codes):
            raise ConfigError("attributes", f"each attribute type at most once, got type codes {codes}")
        object.__setattr__(self, "withdrawn", _check_bytes(self.withdrawn, "withdrawn"))
        object.__setattr__(self, "nlri", _check_bytes(self.nlri, "nlri"))

    @classmethod
    def announce(
        cls,
        routes: Sequence[EvpnRoute],
        *,
        next_hop: str,
        communities: Sequence[ExtendedCommunity] = (),
        pmsi: PmsiTunnel | None = None,
        local_pref: int | None = 100,
    ) -> Update:
        """An UPDATE announcing ``routes`` the way FRR writes one (MP_REACH_NLRI first, then
        ORIGIN IGP, an empty AS_PATH, LOCAL_PREF, the extended communities, PMSI)."""
        # AS_PATH with FRR's flags (extended length on an empty value), so the bytes match FRR's.
        attrs: list[PathAttribute] = [MpReachNlri(next_hop, tuple(routes)), Origin(), AsPath((), 0x50)]
        if local_pref is not None:
            attrs.append(LocalPref(local_pref))
        if communities:
            attrs.append(ExtendedCommunities(tuple(communities)))
        if pmsi is not None:
            attrs.append(pmsi)
        return cls(tuple(attrs))

    @classmethod
    def withdraw(cls, routes: Sequence[EvpnRoute]) -> Update:
        """An UPDATE withdrawing ``routes`` (MP_UNREACH_NLRI alone)."""
        return cls((MpUnreachNlri(tuple(routes)),))

    @classmethod
    def end_of_rib(cls) -> Update:
        """The End-of-RIB marker for L2VPN EVPN (RFC 4724): an empty MP_UNREACH_NLRI."""
        return cls((MpUnreachNlri(),))

    @property
    def reach(self) -> MpReachNlri | None:
        """The EVPN MP_REACH_NLRI attribute, if any."""
        found = _find(self.attributes, MpReachNlri)
        return found if isinstance(found, MpReachNlri) else None

    @property
    def unreach(self) -> MpUnreachNlri | None:
        """The EVPN MP_UNREACH_NLRI attribute, if any."""
        found = _find(self.attributes, MpUnreachNlri)
        return found if isinstance(found, MpUnreachNlri) else None

    @property
    def communities(self) -> tuple[ExtendedCommunity, ...]:
        """The extended communities (empty without the attribute)."""
        found = _find(self.attributes, ExtendedCommunities)
        return found.communities if isinstance(found, ExtendedCommunities) else ()

    @property
    def pmsi(self) -> PmsiTunnel | None:
        """The ingress-replication PMSI tunnel attribute, if any."""
        found = _find(self.attributes, PmsiTunnel)
        return found if isinstance(found, PmsiTunnel) else None

    @property
    def is_end_of_rib(self) -> bool:
        """Whether this is the L2VPN EVPN End-of-RIB marker."""
        only = self.attributes[0] if len(self.attributes) == 1 else None
        return isinstance(only, MpUnreachNlri) and not only.routes and not self.withdrawn and not self.nlri

    def encode(self) -> bytes:
        """The whole message, header included."""
        attrs = b"".join(_encode_attribute(a) for a in self.attributes)
        return _frame(
            MessageType.UPDATE,
            struct.pack("!H", len(self.withdrawn)) + self.withdrawn + struct.pack("!H", len(attrs)) + attrs + self.nlri,
        )


def _decode_update(body: bytes) -> Update:
    base = _HEADER
    _need(body, 0, 2, base, "UPDATE withdrawn routes length")
    wlen = int.from_bytes(body[:2], "big")
    _need(body, 2, wlen + 2, base, "UPDATE withdrawn routes and attributes length")
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    start = 4 + wlen
    _need(body, start, alen, base, "UPDATE path attributes")
    attrs = _decode_attributes(body[start : start + alen], base + start)
    return Update(attrs, body[2 : 2 + wlen], body[start + alen :])


@dataclass(frozen=True, slots=True)
class Notification:
    """NOTIFICATION: an error code, subcode and data; the session closes after it.

    Codes (RFC 4271): 1 message header, 2 OPEN, 3 UPDATE, 4 hold timer expired, 5 FSM, 6 cease.
    """

    code: int
    subcode: int = 0
    data: bytes = b""

    type = MessageType.NOTIFICATION

    def __post_init__(self) -> None:
        check_int(self.code, "code", 0, 255)
        check_int(self.subcode, "subcode", 0, 255)
        object.__setattr__(self, "data", _check_bytes(self.data, "data"))

    def encode(self) -> bytes:
        """The whole message, header included."""
        return _frame(MessageType.NOTIFICATION, bytes((self.code, self.subcode)) + self.data)


@dataclass(frozen=True, slots=True)
class Keepalive:
    """KEEPALIVE: the header alone."""

    type = MessageType.KEEPALIVE

    def encode(self) -> bytes:
        """The whole message (19 bytes)."""
        return _frame(MessageType.KEEPALIVE, b"")


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    """ROUTE-REFRESH (RFC 2918; ``subtype`` from RFC 7313's enhanced route refresh)."""

    afi: int = AFI_L2VPN
    safi: int = SAFI_EVPN
    subtype: int = 0

    type = MessageType.ROUTE_REFRESH

    def __post_init__(self) -> None:
        check_int(self.afi, "afi", 0, 0xFFFF)
        check_int(self.safi, "safi", 0, 255)
        check_int(self.subtype, "subtype", 0, 255)

    def encode(self) -> bytes:
        """The whole message (23 bytes)."""
        return _frame(MessageType.ROUTE_REFRESH, struct.pack("!HBB", self.afi, self.subtype, self.safi))


Message: TypeAlias = Open | Update | Notification | Keepalive | RouteRefresh


def _message_length(data: bytes, pos: int) -> int:
    if data[pos : pos + 16] != MARKER:
        raise _fail(pos, f"marker is {data[pos : pos + 16].hex()}, not 16 bytes of ff")
    length = int.from_bytes(data[pos + 16 : pos + 18], "big")
    if not _HEADER <= length <= _MAX_MESSAGE:
        raise _fail(pos + 16, f"message length {length} is not in {_HEADER}..{_MAX_MESSAGE}")
    return length


def decode_message(data: bytes) -> Message:
    """One BGP message occupying all of ``data``.

    >>> decode_message(bytes.fromhex("ff" * 16 + "001304"))
    Keepalive()
    """
    data = _check_bytes(data, "data")
    if len(data) < _HEADER:
        raise TruncatedError(_LAYER, 0, f"message header needs {_HEADER} bytes, got {len(data)}")
    length = _message_length(data, 0)
    if length != len(data):
        raise _fail(16, f"message length {length} but {len(data)} bytes given")
    kind, body = data[18], data[_HEADER:]
    if kind == MessageType.OPEN:
        return _decode_open(body)
    if kind == MessageType.UPDATE:
        return _decode_update(body)
    if kind == MessageType.NOTIFICATION:
        _need(body, 0, 2, _HEADER, "NOTIFICATION")
        return Notification(body[0], body[1], body[2:])
    if kind == MessageType.KEEPALIVE:
        if body:
            raise _fail(16, f"KEEPALIVE length is {length}, not 19")
        return Keepalive()
    if kind == MessageType.ROUTE_REFRESH:
        if len(body) != 4:
            raise _fail(16, f"ROUTE-REFRESH length is {length}, not 23")
        return RouteRefresh(int.from_bytes(body[:2], "big"), body[3], body[2])
    raise _fail(18, f"message type {kind} is not 1..5")


def split_messages(buffer: bytes) -> tuple[list[Message], bytes]:
    """The complete messages at the start of a TCP stream's ``buffer``, and the bytes left over
    (an incomplete message). Errors name offsets in ``buffer``."""
    messages: list[Message] = []
    pos = 0
    while len(buffer) - pos >= _HEADER:
        length = _message_length(buffer, pos)
        if len(buffer) - pos < length:
            break
        try:
            messages.append(decode_message(buffer[pos : pos + length]))
        except DecodeError as e:
            raise type(e)(_LAYER, pos + e.offset, e.reason) from None
        pos += length
    return messages, bytes(buffer[pos:])
