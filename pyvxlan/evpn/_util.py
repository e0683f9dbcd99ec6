"""Small helpers shared by the EVPN modules: addresses and MACs as text, checked arguments."""

from __future__ import annotations

import ipaddress

from pyvxlan.errors import ConfigError

__all__: list[str] = []


def describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(field: str, value: object, low: int, high: int) -> int:
    # bool is an int subclass, and True as an AS number is always a caller's mistake.
    if type(value) is not int:
        raise ConfigError(field, f"must be an int, got {describe(value)}")
    if not low <= value <= high:
        raise ConfigError(field, f"must be in {low}..{high}, got {value}")
    return value


def check_bytes(field: str, value: object, length: int | None = None) -> bytes:
    if not isinstance(value, (bytes, bytearray)):
        raise ConfigError(field, f"must be bytes, got {describe(value)}")
    if length is not None and len(value) != length:
        raise ConfigError(field, f"must be {length} bytes, got {len(value)}")
    return bytes(value)


def check_mac(field: str, value: object) -> str:
    """Canonical lowercase ``aa:bb:cc:dd:ee:ff`` text."""
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a MAC address as text, got {describe(value)}")
    parts = value.replace("-", ":").split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        raise ConfigError(field, f"{value!r} is not a MAC address")
    return ":".join(f"{int(p, 16):02x}" for p in parts)


def check_ip(field: str, value: object, version: int | None = None) -> str:
    """Canonical text of an IPv4 or IPv6 address (of ``version`` when given)."""
    if not isinstance(value, str):
        raise ConfigError(field, f"must be an IP address as text, got {describe(value)}")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(field, f"{value!r} is not an IP address") from None
    if version is not None and addr.version != version:
        raise ConfigError(field, f"must be an IPv{version} address, got {value!r}")
    return str(addr)


def ip_bytes(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def mac_text(raw: bytes) -> str:
    return raw.hex(":")
