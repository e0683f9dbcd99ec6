"""MAC and IP address helpers shared by the codecs, the core and the drivers.

pyvxlan's values hold addresses as text in canonical form: MACs as lowercase ``aa:bb:cc:dd:ee:ff``
and IP addresses as :mod:`ipaddress` prints them (``198.51.100.1``, ``2001:db8::1``), which is also
how ``bridge fdb show`` prints them. Parsing is cached because drivers parse the same few addresses
over and over.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable
from typing import Final, NamedTuple, TypeVar

from pyvxlan.errors import ConfigError

__all__ = [
    "BROADCAST_MAC",
    "ZERO_MAC",
    "IpInfo",
    "TextCache",
    "format_mac",
    "ip_info",
    "ip_text",
    "is_multicast_mac",
    "multicast_mac_for",
    "normalize_ip",
    "normalize_mac",
    "parse_mac",
]

ZERO_MAC: Final = "00:00:00:00:00:00"
_HEX: Final = frozenset("0123456789abcdefABCDEF")
BROADCAST_MAC: Final = "ff:ff:ff:ff:ff:ff"


class IpInfo(NamedTuple):
    """What the codecs need to know of an IP address."""

    text: str  # canonical form
    packed: bytes  # 4 or 16 bytes
    version: int  # 4 or 6
    is_multicast: bool
    is_unspecified: bool


def ip_info(address: str, field: str = "address") -> IpInfo:
    """Parse an IPv4 or IPv6 address; :class:`~pyvxlan.ConfigError` names ``field`` when it is bad.

    The address is text, or an :mod:`ipaddress` address object. An int or packed bytes are refused:
    :func:`ipaddress.ip_address` would read ``5`` as ``0.0.0.5``.

    >>> ip_info("2001:DB8::1").text
    '2001:db8::1'
    >>> ip_info(5, "dst")
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: dst: must be an IPv4 or IPv6 address as text, got int 5
    """
    if type(address) is not str and not isinstance(address, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        raise ConfigError(field, f"must be an IPv4 or IPv6 address as text, got {_describe(address)}")
    if type(field) is not str:
        raise ConfigError("field", f"must be a str, got {_describe(field)}")
    return _ip_info(address, field)


@functools.lru_cache(maxsize=65536)
def _ip_info(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, field: str) -> IpInfo:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(field, f"{address!r} is not an IPv4 or IPv6 address") from None
    return IpInfo(str(ip), ip.packed, ip.version, ip.is_multicast, ip.is_unspecified)


def _describe(value: object) -> str:
    import reprlib  # only on the error path

    return f"{type(value).__name__} {reprlib.repr(value)}"


def normalize_ip(address: object, field: str = "address") -> str:
    """The canonical text of an address given as text or as an :mod:`ipaddress` object."""
    if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(address)
    return ip_info(address, field).text  # type: ignore[arg-type]  # ip_info refuses what is not an address


@functools.lru_cache(maxsize=65536)
def _parse_mac_text(text: str, field: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    # Hex digits only: int(p, 16) alone would also take " a", "+a" and "a_".
    if len(parts) != 6 or not all(1 <= len(p) <= 2 and _HEX.issuperset(p) for p in parts):
        raise ConfigError(field, f"{text!r} is not a MAC address")
    return bytes(int(p, 16) for p in parts)


def parse_mac(mac: str | bytes, field: str = "mac") -> bytes:
    """Six bytes from ``aa:bb:cc:dd:ee:ff`` (or ``-`` separated) text, or from 6 bytes.

    >>> parse_mac("02:00:00:00:00:0A").hex()
    '02000000000a'
    """
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ConfigError(field, f"a MAC address is 6 bytes, got {len(mac)}")
        return bytes(mac)
    if not isinstance(mac, str):
        raise ConfigError(field, f"must be a MAC address as text or 6 bytes, got {_describe(mac)}")
    if type(field) is not str:
        raise ConfigError("field", f"must be a str, got {_describe(field)}")
    return _parse_mac_text(mac, field)


def format_mac(raw: bytes | bytearray | memoryview) -> str:
    """``aa:bb:cc:dd:ee:ff`` text of 6 bytes.

    >>> format_mac(b"\\x02\\x00\\x00\\x00\\x00\\x0a")
    '02:00:00:00:00:0a'
    """
    # bytes(5) would be five zero bytes: only a buffer of exactly 6 bytes is a MAC.
    if (
        not isinstance(raw, (bytes, bytearray, memoryview))
        or len(raw) != 6
        or (type(raw) is memoryview and raw.nbytes != 6)
    ):
        raise ConfigError("mac", f"must be 6 bytes, got {_describe(raw)}")
    return bytes(raw).hex(":")


def normalize_mac(mac: str | bytes, field: str = "mac") -> str:
    """Canonical lowercase text of a MAC address."""
    return format_mac(parse_mac(mac, field))


def is_multicast_mac(raw: bytes | bytearray | memoryview) -> bool:
    """True for multicast and broadcast MACs (the I/G bit of the first byte).

    Only the first byte is read (the core calls it on whole frames); it must be a buffer.
    """
    if type(raw) is not bytes and not isinstance(raw, (bytes, bytearray, memoryview)) or not raw:
        raise ConfigError("mac", f"must be a non-empty bytes-like object, got {_describe(raw)}")
    return bool(raw[0] & 1)


def multicast_mac_for(info: IpInfo) -> bytes:
    """The Ethernet destination of an IP multicast group (RFC 1112 and RFC 2464 mappings)."""
    if type(info) is not IpInfo:
        raise ConfigError("info", f"must be an IpInfo (from ip_info), got {_describe(info)}")
    p = info.packed
    if info.version == 4:
        return bytes((0x01, 0x00, 0x5E, p[1] & 0x7F, p[2], p[3]))
    return b"\x33\x33" + p[12:16]


_ntop = socket.inet_ntop
_AF_INET: Final = socket.AF_INET


def ip_text(packed: bytes) -> str:
    """Canonical text of a 4- or 16-byte address, as :mod:`ipaddress` prints it.

    >>> ip_text(bytes((198, 51, 100, 1)))
    '198.51.100.1'
    """
    if len(packed) == 4:
        return _ntop(_AF_INET, packed)  # what ipaddress prints, at a tenth of its cost
    return str(ipaddress.ip_address(packed))


_V = TypeVar("_V")


class TextCache(dict[bytes, _V]):
    """A bounded cache of ``make(raw)``, owned by whoever makes it: ``cache[raw]`` is the value,
    made on the first lookup (a capture repeats a few addresses, MAC pairs and headers).

    A hit is one ``dict`` lookup; past ``limit`` entries the cache starts afresh. No cache lives in
    the module itself: two owners never share one.

    >>> texts = TextCache(ip_text, limit=2)
    >>> texts[bytes((198, 51, 100, 1))], len(texts)
    ('198.51.100.1', 1)
    """

    __slots__ = ("limit", "make")

    def __init__(self, make: Callable[[bytes], _V], limit: int = 65536) -> None:
        super().__init__()
        if not callable(make):
            raise ConfigError("make", f"must be a function of the bytes, got {_describe(make)}")
        if type(limit) is not int or limit < 1:
            raise ConfigError("limit", f"must be an int >= 1, got {_describe(limit)}")
        self.make = make
        self.limit = limit

    def __missing__(self, raw: bytes) -> _V:
        value = self.make(raw)
        if len(self) >= self.limit:
            self.clear()
        self[raw] = value
        return value
