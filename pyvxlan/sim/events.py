"""What a simulated lab reports: time-stamped events (``lab.events``) and totals (``lab.stats()``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["EventKind", "LabEvent", "LabStats"]


class EventKind(enum.Enum):
    """What a :class:`LabEvent` reports."""

    LEARNED = "learned"  # a VTEP learned a remote MAC
    MIGRATED = "migrated"  # a learned MAC moved to another VTEP
    EXPIRED = "expired"  # a learned entry aged out
    MISSED = "missed"  # l2miss / l3miss
    DROPPED = "dropped"  # a frame or datagram was dropped; the detail starts with the reason
    JOINED = "joined"  # a VTEP joined its multicast group
    LEFT = "left"  # ... and left it
    ACTION = "action"  # something the lab was told to do (move a guest, take a link down, ...)


@dataclass(frozen=True, slots=True)
class LabEvent:
    """One time-stamped line of ``lab.events``.

    ``where`` is ``host/device`` for VTEPs, ``host/bridge`` for bridges, ``underlay``, a guest's
    name, or ``lab``; ``reason`` is set for drops.
    """

    time: float
    kind: EventKind
    where: str
    detail: str
    reason: str | None = None

    def __str__(self) -> str:
        return f"{self.time:12.6f} {self.where} {self.kind.value} {self.detail}".rstrip()


@dataclass(frozen=True, slots=True)
class LabStats:
    """Totals since the lab opened."""

    datagrams: int  # underlay datagrams sent (a multicast datagram counts once)
    multicast_datagrams: int  # sent to a multicast group (once, whatever the number of receivers)
    unicast_datagrams: int
    flood_datagrams: int  # carrying a broadcast or multicast frame (ARP requests, ND): floods
    deliveries: int  # datagram copies handed to receiving hosts
    bytes: int  # outer IP bytes sent
    learned: int
    migrated: int
    expired: int
    missed: int
    drops: dict[str, int]  # reason -> frame copies dropped
    delivered: int  # frame copies that reached a guest
    proxy_answered: int  # ARP requests a VTEP answered itself (proxy)
