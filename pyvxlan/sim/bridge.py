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

from pyvxlan.errors import ConfigError, LabKeyError
from pyvxlan.sim.ledger import Ledger

__all__ = ["Bridge", "BridgeEntry", "FloodLog"]

_ZERO = bytes(6)

#: The bitmaps a :class:`FloodLog` holds before it has every bridge catch up and starts afresh.
FLOOD_LOG_BYTES = 64 << 20


class FloodLog:
    """Sources that many bridges learned from one flood, written once for all of them.

    A multicast flood in a lab of 10,000 hosts reaches 10,000 bridges, and each learns the flood's
    source on its vxlan port (Linux's ``br_fdb_update``). Written into every bridge's table, that is
    one ``dict`` store per bridge per flood (a sixth of a large lab's run, and most of its bridges'
    memory), for entries nobody may ever read. The lab writes the flood here once instead, with a
    bitmap of the bridges it reached (:meth:`record`), and each bridge applies what it missed, in
    order, before anything reads or changes its table (:meth:`Bridge.catch_up`): so a bridge's
    entries, forwarding and counters are exactly those of the bridge that learned at once
    (tests/sim/test_properties.py compares the two). The bitmaps are bounded: past
    ``FLOOD_LOG_BYTES`` every bridge catches up and the log starts again.
    """

    __slots__ = ("_base", "_bridges", "_bytes", "_entries")

    def __init__(self) -> None:
        self._bridges: list[Bridge] = []
        # (source MAC, (port, time), bitmap of bridge numbers), oldest first; _base is the number
        # of the first one (entries are numbered from 0 over the log's life).
        self._entries: list[tuple[bytes, tuple[str, float], bytearray]] = []
        self._base = 0
        self._bytes = 0

    def register(self, bridge: Bridge) -> int:
        """A number for ``bridge`` (its bit in a flood's bitmap)."""
        self._bridges.append(bridge)
        return len(self._bridges) - 1

    @property
    def end(self) -> int:
        """The number the next flood will have."""
        return self._base + len(self._entries)

    def bitmap(self) -> bytearray:
        """An empty bitmap with a bit for every registered bridge."""
        return bytearray((len(self._bridges) + 7) >> 3)

    def record(self, src: bytes, stamp: tuple[str, float], bits: bytearray) -> None:
        """Every bridge whose bit is set in ``bits`` learned ``src`` at ``stamp`` (port, time) from
        a flood that went no further than its vxlan port (see :meth:`Bridge.flood_refused`)."""
        self._entries.append((src, stamp, bits))
        self._bytes += len(bits)
        if self._bytes > FLOOD_LOG_BYTES:
            for bridge in self._bridges:
                bridge.catch_up()
            self._base = self.end
            self._entries.clear()
            self._bytes = 0

    def since(self, start: int) -> list[tuple[bytes, tuple[str, float], bytearray]]:
        """The floods numbered ``start`` and after (``start`` at least the oldest kept)."""
        return self._entries[start - self._base :]


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

    # Slots: a 10,000-host lab has 10,000 bridges for its whole life, and a flood visits each.
    __slots__ = (
        "_bit",
        "_byte",
        "_drop",
        "_flood",
        "_flooded",
        "_floods",
        "_learned",
        "_ledger",
        "_macs",
        "_ports",
        "_seen",
        "_single",
        "ageing",
        "forwarded",
        "name",
    )

    def __init__(
        self,
        name: str,
        *,
        ageing: float = 300.0,
        drop: Callable[[str, bytes], None],
        ledger: Ledger | None = None,
        macs: dict[bytes, bytes] | None = None,
        floods: FloodLog | None = None,
    ) -> None:
        self.name = name
        self.ageing = ageing
        self._ports: dict[str, Callable[[bytes], None]] = {}
        self._flood: dict[str, list[Callable[[bytes], None]]] = {}  # ingress port -> the others
        self._single: dict[str, Callable[[bytes], None]] = {}
        # mac (6 bytes) -> (port name, last refresh). Tuples, not dataclasses: a large lab has one
        # entry per remote guest per bridge, and this is the memory that grows with it. Read it
        # through :meth:`entries`; only the bridge's own methods change it.
        self._learned: dict[bytes, tuple[str, float]] = {}
        self._drop = drop
        self._ledger = ledger if ledger is not None else Ledger()
        # One bytes object per MAC for all the bridges of a lab: in a flood-and-learn lab of
        # 10,000 hosts every bridge learns the same few thousand MACs.
        self._macs = macs if macs is not None else {}
        self.forwarded = 0
        self._flooded = 0
        # The lab's flood log (the floods this bridge learned from without a store of its own), the
        # bridge's bit in its bitmaps, and the number of the first flood it has not applied yet.
        self._floods = floods if floods is not None else FloodLog()
        number = self._floods.register(self)
        self._byte, self._bit = number >> 3, 1 << (number & 7)
        self._seen = self._floods.end

    @property
    def number(self) -> int:
        """The bridge's number in its :class:`FloodLog` (its bit in a flood's bitmap)."""
        return self._byte << 3 | (self._bit.bit_length() - 1)

    @property
    def flooded(self) -> int:
        """Frames flooded (broadcast, multicast, unknown unicast), the ones the lab's flood log
        holds for this bridge included."""
        self.catch_up()
        return self._flooded

    def catch_up(self) -> None:
        """Apply the floods of the lab's :class:`FloodLog` that reached this bridge since it last
        did, in order: every method that reads or changes the table calls this first."""
        floods = self._floods
        if self._seen == floods.end:
            return
        fdb = self._learned
        byte, bit = self._byte, self._bit
        for src, stamp, bits in floods.since(self._seen):
            if byte < len(bits) and bits[byte] & bit:
                fdb[src] = stamp
                self._flooded += 1
        self._seen = floods.end

    # --- ports ------------------------------------------------------------------------------------

    def attach(self, port: str, deliver: Callable[[bytes], None]) -> None:
        """Add a port (``ip link set PORT master BR``)."""
        self.catch_up()
        if port in self._ports:
            raise ConfigError("port", f"bridge {self.name} already has a port {port!r}")
        self._ports[port] = deliver
        self._rebuild()

    def detach(self, port: str) -> None:
        """Remove a port; its learned entries go with it, as in Linux."""
        self.catch_up()
        if port not in self._ports:
            raise LabKeyError(f"port of bridge {self.name}", port, list(self._ports))
        del self._ports[port]
        self._rebuild()
        for mac in [m for m, (p, _) in self._learned.items() if p == port]:
            del self._learned[mac]

    def _rebuild(self) -> None:
        self._flood = {p: [d for q, d in self._ports.items() if q != p] for p in self._ports}
        # Ingress ports with exactly one other port, and that port's deliver.
        self._single = {p: targets[0] for p, targets in self._flood.items() if len(targets) == 1}

    @property
    def ports(self) -> list[str]:
        return list(self._ports)

    # --- forwarding -------------------------------------------------------------------------------

    def receive(self, port: str, frame: bytes, now: float, stamp: tuple[str, float] | None = None) -> None:
        """A frame came in on ``port``: learn its source, then forward or flood it.

        ``stamp`` may carry ``(port, now)`` ready-made: a lab delivering one datagram to
        thousands of bridges shares one tuple among all their new entries.
        """
        if self._seen != self._floods.end:
            self.catch_up()
        fdb = self._learned
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
        self._flooded += 1
        targets = self._flood.get(port)
        if not targets:
            self._drop("bridge_no_port", frame)
            return
        self._ledger.created += len(targets) - 1  # a copy per port
        for deliver in targets:
            deliver(frame)

    def receive_flood(self, port: str, frame: bytes, src: bytes, stamp: tuple[str, float]) -> None:
        """:meth:`receive` for a frame known to have a multicast or broadcast destination and the
        valid unicast source ``src`` (``frame[6:12]``), at time ``stamp[1]`` on ``stamp[0]`` (``port``).

        A flood reaching thousands of bridges carries the same frame to each: the lab reads the
        addresses once and hands every bridge the same ``src`` object and ``stamp`` tuple, so that
        the entries of 10,000 bridges share them.
        """
        if self._seen != self._floods.end:
            self.catch_up()
        self._learned[src] = stamp  # learned or refreshed, as Linux does on every frame
        self._flooded += 1
        one = self._single.get(port)
        if one is not None:  # the common bridge: the device and one guest
            one(frame)
            return
        targets = self._flood.get(port)
        if not targets:
            self._drop("bridge_no_port", frame)
            return
        self._ledger.created += len(targets) - 1  # a copy per port
        for deliver in targets:
            deliver(frame)

    @staticmethod
    def flood_refused(floods: FloodLog, bits: bytearray, src: bytes, stamp: tuple[str, float]) -> None:
        """:meth:`receive_flood` on each bridge of ``floods`` whose bit is set in ``bits`` (see
        :meth:`FloodLog.bitmap`), for a flood whose only other port is a guest whose NIC refuses
        the frame (see :class:`~pyvxlan.sim.guest.NicIndex`): the source is learned on
        ``stamp[0]`` and the flood counted; the copy ends at the NIC filter, which accounts for it
        (:meth:`~pyvxlan.sim.guest.NicIndex.refused`).

        One call for all the bridges a flood reaches whose guest it is not for, thousands of them
        in a large lab: recorded once in the log, applied by each bridge when it is next used."""
        floods.record(src, stamp, bits)

    def single(self, port: str) -> str | None:
        """The one other port of the bridge, when ``port`` has exactly one (else ``None``)."""
        others = [p for p in self._ports if p != port]
        return others[0] if len(others) == 1 else None

    def entries(self, now: float) -> list[BridgeEntry]:
        """The learned entries that have not aged out, sorted by MAC."""
        self.catch_up()
        return [
            BridgeEntry(mac.hex(":"), port, updated)
            for mac, (port, updated) in sorted(self._learned.items())
            if now - updated <= self.ageing
        ]

    def flush(self) -> None:
        """Forget every learned entry."""
        self.catch_up()
        self._learned.clear()
