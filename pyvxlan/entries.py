"""Forwarding-database and neighbour records, as ``bridge fdb show`` and ``ip neigh`` print them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["FdbEntry", "FdbState", "Neighbour"]


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
    the table (``None`` when unknown).

    >>> FdbEntry("02:00:00:00:00:01", "198.51.100.2").bridge_line("vxlan10")
    '02:00:00:00:00:01 dev vxlan10 dst 198.51.100.2 self permanent'
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
    """A neighbour (proxy ARP/ND) entry on the vxlan device: ``ip`` resolves to ``mac``."""

    ip: str
    mac: str
