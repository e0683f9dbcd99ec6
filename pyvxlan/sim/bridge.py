"""A Linux-style learning bridge: the vxlan device is one port, the guests are the others.

As Linux's bridge does: the source MAC of every frame is learned on the port it came in on (a MAC
seen on another port moves there), entries age out ``ageing`` seconds after they were last
refreshed (Linux's default 300 s), a frame to a known unicast MAC goes out of that one port, and
broadcast, multicast and unknown unicast are flooded to every port but the one they came in on. A
frame whose destination was learned on its own ingress port is dropped (Linux: it never leaves
the port it came from).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyvxlan.sim.ledger import Ledger

__all__ = ["Bridge", "BridgeEntry"]

_ZERO = bytes(6)


@dataclass(frozen=True, slots=True)
class BridgeEntry:
    """One row of ``bridge fdb show br BR`` for a learned MAC."""

    mac: str
    port: str
    updated: float


class Bridge:
    """Ports are named; each has a ``deliver(frame)`` callable that carries a frame out of it.

    ``drop(reason, frame)`` is called for every frame the bridge does not forward, and the
    ``ledger`` counts the extra copies a flood makes, so that every frame is accounted for.
    """

    def __init__(
        self,
        name: str,
        *,
        ageing: float = 300.0,
        drop: Callable[[str, bytes], None],
        ledger: Ledger | None = None,
        macs: dict[bytes, bytes] | None = None,
    ) -> None:
        self.name = name
        self.ageing = ageing
        self._ports: dict[str, Callable[[bytes], None]] = {}
        self._flood: dict[str, list[Callable[[bytes], None]]] = {}  # ingress port -> the others
        # mac (6 bytes) -> (port name, last refresh). Tuples, not dataclasses: a large lab has one
        # entry per remote guest per bridge, and this is the memory that grows with it. Public for
        # the lab's flood loop, which learns a flood's source on thousands of bridges in one
        # dict store each (see ``SimLab._receive_many``).
        self.learned: dict[bytes, tuple[str, float]] = {}
        self._drop = drop
        self._ledger = ledger if ledger is not None else Ledger()
        # One bytes object per MAC for all the bridges of a lab: in a flood-and-learn lab of
        # 10,000 hosts every bridge learns the same few thousand MACs.
        self._macs = macs if macs is not None else {}
        self.forwarded = 0
        self.flooded = 0

    # --- ports ------------------------------------------------------------------------------------

    def attach(self, port: str, deliver: Callable[[bytes], None]) -> None:
        """Add a port (``ip link set PORT master BR``)."""
        if port in self._ports:
            raise ValueError(f"bridge {self.name} already has a port {port!r}")
        self._ports[port] = deliver
        self._rebuild()

    def detach(self, port: str) -> None:
        """Remove a port; its learned entries go with it, as in Linux."""
        del self._ports[port]
        self._rebuild()
        for mac in [m for m, (p, _) in self.learned.items() if p == port]:
            del self.learned[mac]

    def _rebuild(self) -> None:
        self._flood = {p: [d for q, d in self._ports.items() if q != p] for p in self._ports}

    @property
    def ports(self) -> list[str]:
        return list(self._ports)

    # --- forwarding -------------------------------------------------------------------------------

    def receive(self, port: str, frame: bytes, now: float, stamp: tuple[str, float] | None = None) -> None:
        """A frame came in on ``port``: learn its source, then forward or flood it.

        ``stamp`` may carry ``(port, now)`` ready-made: a lab delivering one datagram to
        thousands of bridges shares one tuple among all their new entries.
        """
        fdb = self.learned
        src = frame[6:12]
        if not src[0] & 1 and src != _ZERO:  # Linux learns only valid unicast sources
            old = fdb.get(src)
            if old is None:
                fdb[self._macs.setdefault(src, src)] = stamp or (port, now)
            elif old[0] != port or old[1] != now:
                # Linux refreshes an entry on every frame (br_fdb_update, once per jiffy).
                fdb[src] = stamp or (port, now)
        dst = frame[0:6]
        if not dst[0] & 1:
            hit = fdb.get(dst)
            if hit is not None:
                if now - hit[1] > self.ageing:
                    del fdb[dst]
                else:
                    out = hit[0]
                    if out == port:
                        self._drop("bridge_same_port", frame)
                        return
                    self.forwarded += 1
                    self._ports[out](frame)
                    return
        self.flooded += 1
        targets = self._flood.get(port)
        if not targets:
            self._drop("bridge_no_port", frame)
            return
        self._ledger.created += len(targets) - 1  # a copy per port
        for deliver in targets:
            deliver(frame)

    def flood_from(self, port: str, frame: bytes, src: bytes, stamp: tuple[str, float]) -> None:
        """:meth:`receive` for a frame known to have a multicast or broadcast destination and the
        unicast source ``src`` (``frame[6:12]``), at time ``stamp[1]``.

        A flood reaching thousands of bridges carries the same frame to each: the lab reads the
        addresses once and hands every bridge the same ``src`` object and ``stamp`` tuple.
        """
        self.learned[src] = stamp
        self.flood_out(port, frame)

    def flood_out(self, port: str, frame: bytes) -> None:
        """The second half of :meth:`flood_from`: the source is learned, send the frame to every
        port but ``port``."""
        self.flooded += 1
        targets = self._flood.get(port)
        if not targets:
            self._drop("bridge_no_port", frame)
            return
        if len(targets) > 1:
            self._ledger.created += len(targets) - 1
        for deliver in targets:
            deliver(frame)

    def entries(self, now: float) -> list[BridgeEntry]:
        """The learned entries that have not aged out, sorted by MAC."""
        return [
            BridgeEntry(mac.hex(":"), port, updated)
            for mac, (port, updated) in sorted(self.learned.items())
            if now - updated <= self.ageing
        ]

    def flush(self) -> None:
        """Forget every learned entry."""
        self.learned.clear()
