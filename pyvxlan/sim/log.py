"""What a simulated lab reports: time-stamped events (``lab.events``) and totals (``lab.stats()``).

Named ``log`` rather than ``events``: :mod:`pyvxlan.core.events` holds the core's outputs, which are
another thing.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = ["EventKind", "EventLog", "LabEvent", "LabStats"]


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


class EventLog:
    """The lab's event record: ``events`` keeps the latest ``keep`` events (all with ``None``,
    none with 0), ``stream`` gets every one as a ``str(event)`` line, and :attr:`counts` counts
    every event by kind whatever is kept.

    :attr:`recording` says whether events are made at all: the hot paths of a large lab skip
    formatting an event nobody keeps, and count it with :meth:`count` instead.
    """

    __slots__ = ("_clock", "counts", "events", "keep", "recording", "stream")

    def __init__(self, clock: Callable[[], float], *, keep: int | None, stream: TextIO | None = None) -> None:
        self._clock = clock
        self.keep = keep != 0
        self.events: deque[LabEvent] = deque(maxlen=keep)
        self.stream = stream
        self.counts: Counter[EventKind] = Counter()
        self.recording = self.keep or stream is not None

    def record(self, kind: EventKind, where: str, detail: str, reason: str | None = None) -> None:
        """Count an event, and keep and stream it when anything records events."""
        self.counts[kind] += 1
        if self.recording:
            event = LabEvent(self._clock(), kind, where, detail, reason)
            if self.keep:
                self.events.append(event)
            if self.stream is not None:
                self.stream.write(f"{event}\n")

    def stream_to(self, stream: TextIO) -> None:
        """Write every event from now on to ``stream`` (closed by :meth:`close`)."""
        self.stream = stream
        self.recording = True

    def count(self, kind: EventKind) -> None:
        """Count an event without making it (nothing records events)."""
        self.counts[kind] += 1

    def close(self) -> None:
        """Close the stream; raises if its last lines could not be written: none is lost quietly."""
        if self.stream is not None:
            stream, self.stream = self.stream, None
            self.recording = self.keep
            stream.close()
