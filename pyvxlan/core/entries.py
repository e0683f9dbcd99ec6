"""Forwarding-database and neighbour records, as ``bridge fdb show`` and ``ip neigh`` print them."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from pyvxlan.errors import ConfigError
from pyvxlan.wire.addr import ip_info, normalize_mac

__all__ = ["FdbEntry", "FdbState", "Neighbour", "check_interface"]


class FdbState(enum.Enum):
    """An entry's state, with the word ``bridge fdb show`` prints for it.

    PERMANENT (NUD_PERMANENT|NUD_NOARP, ``bridge fdb add``'s default) and STATIC
    (NUD_REACHABLE|NUD_NOARP) are never overwritten by learning and never age; REACHABLE is a
    learned or ``dynamic`` entry: it migrates and ages.
    """

    PERMANENT = "permanent"
    STATIC = "static"
    REACHABLE = ""  # learned or dynamic: bridge prints no state word

    @property
    def is_sticky(self) -> bool:
        """True for states that learning never overwrites and ageing never removes."""
        return self is not FdbState.REACHABLE


@dataclass(frozen=True, slots=True)
class FdbEntry:
    """One FDB record: a MAC and one of its remotes (a MAC with two remotes gives two records).

    ``port`` and ``vni`` are ``None`` when they equal the device's (``bridge fdb show`` omits them
    then); ``interface`` is the underlay device (``via``). ``updated`` and ``used`` are the times
    of the last refresh by received traffic and by transmit lookups, in the clock of whoever owns
    the table (``None`` when unknown). ``router`` is ``bridge fdb``'s ``router`` flag (NTF_ROUTER).

    Every field is checked at construction (:class:`~pyvxlan.ConfigError` names the field; a
    ``bool`` is not a number here), and the MAC and address are kept in canonical form.

    >>> FdbEntry("02:00:00:00:00:01", "198.51.100.2").bridge_line("vxlan10")
    '02:00:00:00:00:01 dev vxlan10 dst 198.51.100.2 self permanent'
    >>> FdbEntry("02:00:00:00:00:01", "198.51.100.2", port=70000)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: port: must be in 1..65535, got 70000
    """

    mac: str
    dst: str
    port: int | None = None
    vni: int | None = None
    interface: str | None = None
    state: FdbState = FdbState.PERMANENT
    extern_learn: bool = False
    updated: float | None = None
    used: float | None = None
    router: bool = False

    def __post_init__(self) -> None:
        _set = object.__setattr__
        _set(self, "mac", normalize_mac(self.mac, "mac"))
        if not isinstance(self.dst, str):
            raise ConfigError("dst", f"{self.dst!r} is not an IPv4 or IPv6 address")
        _set(self, "dst", ip_info(self.dst, "dst").text)
        port, vni = self.port, self.vni
        if port is not None and (type(port) is not int or not 0 < port <= 65535):
            raise ConfigError("port", f"must be in 1..65535, got {port!r}")
        if vni is not None and (type(vni) is not int or not 0 <= vni < 1 << 24):
            raise ConfigError("vni", f"must be in 0..16777215, got {vni!r}")
        if self.interface is not None:
            check_interface(self.interface, "interface")
        if not isinstance(self.state, FdbState):
            raise ConfigError("state", f"must be an FdbState, got {self.state!r}")
        for name in ("extern_learn", "router"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"must be True or False, got {getattr(self, name)!r}")
        for name in ("updated", "used"):
            t = getattr(self, name)
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t)):
                raise ConfigError(name, f"must be a finite time in seconds or None, got {t!r}")

    def bridge_line(self, device: str) -> str:
        """This record in ``bridge fdb show`` form."""
        parts = [self.mac, "dev", device, "dst", self.dst]
        if self.port is not None:
            parts += ["port", str(self.port)]
        if self.vni is not None:
            parts += ["vni", str(self.vni)]
        if self.interface is not None:
            parts += ["via", self.interface]
        parts.append("self")
        if self.router:
            parts.append("router")
        if self.extern_learn:
            parts.append("extern_learn")
        if self.state.value:
            parts.append(self.state.value)
        return " ".join(parts)

    def key(self) -> tuple[str, str, int | None, int | None, str]:
        """What identifies the record across backends: timers and interface left out."""
        return (self.mac, self.dst, self.port, self.vni, self.state.value)


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A neighbour (proxy ARP/ND) entry on the vxlan device: ``ip`` resolves to ``mac``.

    Both are checked at construction and kept in canonical form.

    >>> Neighbour("203.0.113.5", "zz")
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: mac: 'zz' is not a MAC address
    """

    ip: str
    mac: str

    def __post_init__(self) -> None:
        if not isinstance(self.ip, str):
            raise ConfigError("ip", f"{self.ip!r} is not an IPv4 or IPv6 address")
        object.__setattr__(self, "ip", ip_info(self.ip, "ip").text)
        object.__setattr__(self, "mac", normalize_mac(self.mac, "mac"))


def check_interface(name: object, field: str) -> str:
    """``name`` if it can name a Linux interface (1 to 15 bytes, no ``/``, no whitespace)."""
    if (
        not isinstance(name, str)
        or not 0 < len(name.encode()) <= 15
        or "/" in name
        or any(c.isspace() for c in name)
        or "\0" in name
    ):
        raise ConfigError(field, f"{name!r} is not an interface name (1 to 15 bytes, no '/' or whitespace)")
    return name
