"""MAC and IP address helpers shared by the codecs, the core and the drivers.

pyvxlan's values hold addresses as text in canonical form: MACs as lowercase ``aa:bb:cc:dd:ee:ff``
and IP addresses as :mod:`ipaddress` prints them (``198.51.100.1``, ``2001:db8::1``), which is also
how ``bridge fdb show`` prints them. Parsing is cached because drivers parse the same few addresses
over and over.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Final, NamedTuple

from pyvxlan.errors import ConfigError

__all__ = [
    "BROADCAST_MAC",
    "ZERO_MAC",
    "IpInfo",
    "format_mac",
    "ip_info",
    "is_multicast_mac",
    "multicast_mac_for",
    "normalize_ip",
    "normalize_mac",
    "parse_mac",
]

ZERO_MAC: Final = "00:00:00:00:00:00"
BROADCAST_MAC: Final = "ff:ff:ff:ff:ff:ff"


class IpInfo(NamedTuple):
    """What the codecs need to know of an IP address."""

    text: str  # canonical form
    packed: bytes  # 4 or 16 bytes
    version: int  # 4 or 6
    is_multicast: bool
    is_unspecified: bool


@functools.lru_cache(maxsize=65536)
def ip_info(address: str, field: str = "address") -> IpInfo:
    """Parse an IPv4 or IPv6 address; :class:`~pyvxlan.ConfigError` names ``field`` when it is bad.

    >>> ip_info("2001:DB8::1").text
    '2001:db8::1'
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(field, f"{address!r} is not an IPv4 or IPv6 address") from None
    return IpInfo(str(ip), ip.packed, ip.version, ip.is_multicast, ip.is_unspecified)


def normalize_ip(address: object, field: str = "address") -> str:
    """The canonical text of an address given as text or as an :mod:`ipaddress` object."""
    if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(address)
    if not isinstance(address, str):
        raise ConfigError(field, f"{address!r} is not an IPv4 or IPv6 address")
    return ip_info(address, field).text


@functools.lru_cache(maxsize=65536)
def _parse_mac_text(text: str, field: str) -> bytes:
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ConfigError(field, f"{text!r} is not a MAC address")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ConfigError(field, f"{text!r} is not a MAC address") from None


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
        raise ConfigError(field, f"{mac!r} is not a MAC address")
    return _parse_mac_text(mac, field)


def format_mac(raw: bytes | bytearray | memoryview) -> str:
    """``aa:bb:cc:dd:ee:ff`` text of 6 bytes.

    >>> format_mac(b"\\x02\\x00\\x00\\x00\\x00\\x0a")
    '02:00:00:00:00:0a'
    """
    return bytes(raw).hex(":")


def normalize_mac(mac: str | bytes, field: str = "mac") -> str:
    """Canonical lowercase text of a MAC address."""
    return format_mac(parse_mac(mac, field))


def is_multicast_mac(raw: bytes | bytearray | memoryview) -> bool:
    """True for multicast and broadcast MACs (the I/G bit of the first byte)."""
    return bool(raw[0] & 1)


def multicast_mac_for(info: IpInfo) -> bytes:
    """The Ethernet destination of an IP multicast group (RFC 1112 and RFC 2464 mappings)."""
    p = info.packed
    if info.version == 4:
        return bytes((0x01, 0x00, 0x5E, p[1] & 0x7F, p[2], p[3]))
    return b"\x33\x33" + p[12:16]
