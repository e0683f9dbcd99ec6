"""The lab's data path: what the cores emit, carried out on the underlay, the bridges and the guests.

Every forwarding and learning decision of a VTEP is its core's; this module only moves frames and
datagrams between the pieces and accounts for every copy in the :class:`~pyvxlan.sim.Ledger`:

- a frame leaving a bridge through a vxlan device (:meth:`DataPath.transmit`) goes through the
  device's core and becomes datagrams on the underlay (a head-end run of them as one batch), drops,
  or a proxy reply back into the bridge;
- a datagram arriving at many hosts at once (:meth:`DataPath.receive_many`, the underlay's delivery
  for a multicast group of thousands) goes through each host's core and, as a frame, into the
  device's bridge (:meth:`~pyvxlan.sim.Bridge.receive`, or :meth:`~pyvxlan.sim.Bridge.receive_flood`
  for a flood) and from there to the guests (:meth:`~pyvxlan.sim.SimGuest.deliver`). A flood whose
  bridge has one guest, whose NIC refuses it (nearly every neighbour solicitation in a large lab),
  is not handed over: the guests' :class:`~pyvxlan.sim.guest.NicIndex` says so once per frame, and
  :meth:`~pyvxlan.sim.Bridge.flood_refused` learns its source on all those bridges at once (one
  entry of the lab's :class:`~pyvxlan.sim.bridge.FloodLog`, which each bridge applies when it is
  next used); tests/sim/test_properties.py holds that shortcut to the bridge's and guest's own path;
- notifications become events, counters and the subscribers' streams; joins and leaves go to the
  underlay; a learned entry arms the device's timer (:mod:`pyvxlan.sim.timers`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

from pyvxlan.core.datagram import parse_datagram
from pyvxlan.core.events import (
    Action,
    DeliverFrame,
    Dropped,
    EntryExpired,
    EntryLearned,
    EntryMigrated,
    JoinGroup,
    L2Miss,
    L3Miss,
    LeaveGroup,
    Notification,
    SendDatagram,
)
from pyvxlan.sim.bridge import Bridge, FloodLog
from pyvxlan.sim.capture import Captures
from pyvxlan.sim.device import SimDevice, SimHost
from pyvxlan.sim.guest import NicIndex, SimGuest
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.log import EventKind, EventLog
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.sim.timers import DeviceTimers
from pyvxlan.sim.underlay import Endpoint, Outer, SimUnderlay

__all__ = ["FANOUT_CACHE_MIN", "DataPath"]

#: Fan-outs to this many hosts or more are cached (the property tests lower it to cover the cache).
FANOUT_CACHE_MIN = 9

# One receiver of a fan-out, looked up once per group membership: the host, its device for the
# datagram's VNI (None: none), the core's bound receive_parsed and take_outputs, the device's bridge,
# port name, and the bridge's byte and bit in a FloodLog bitmap. A host without the device gets
# callables that give no output, so that the hot loop sends it to the general path without a test
# of its own.
_Row = tuple[SimHost, "SimDevice | None", Callable[..., None], Callable[[], list[Any]], "Bridge | None", str, int, int]
# A cached fan-out: the member list it is for, its rows, and each host's position among them.
_Cached = tuple[list[Endpoint], list[_Row], dict[SimHost, int]]

_ZERO_MAC = bytes(6)


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    return None


def _no_outputs() -> list[Any]:
    return []


def _outer(act: SendDatagram) -> Outer | None:
    """What the receiving cores must see of ``act``'s outer header besides addresses and ports."""
    return (act.tos, act.zero_checksum) if act.tos or act.zero_checksum else None


class DataPath:
    """Carries out the cores' outputs for a lab's devices; owns the lab's underlay.

    ``on_miss(dev, miss)`` is told every l2miss/l3miss (the on-miss controller), when given.
    The counters (:attr:`learned`, :attr:`migrated`, :attr:`expired`, :attr:`missed`) count
    notifications whether or not anything records events.
    """

    def __init__(
        self,
        sched: Scheduler,
        rng: random.Random,
        ledger: Ledger,
        log: EventLog,
        captures: Captures,
        *,
        mtu: int,
        ip_version: int,
        on_miss: Callable[[SimDevice, L2Miss | L3Miss], None] | None = None,
    ) -> None:
        self._sched = sched
        self._ledger = ledger
        self._log = log
        self._captures = captures
        self._on_miss = on_miss
        self.timers = DeviceTimers(sched, self.output)
        self.underlay = SimUnderlay(
            sched,
            rng,
            mtu=mtu,
            ip_version=ip_version,
            ledger=ledger,
            drop=self.underlay_drop,
            deliver=self.receive_many,
        )
        self.hosts: dict[str, SimHost] = {}  # by underlay address
        # One bytes object per MAC for all the bridges of a lab: in a flood-and-learn lab of
        # 10,000 hosts every bridge learns the same few thousand MACs (see Bridge's ``macs``).
        self.macs: dict[bytes, bytes] = {}
        # The floods that bridges learned from without a store each (see Bridge.flood_refused).
        self.floods = FloodLog()
        self.nics = NicIndex(ledger)  # the guests' NIC filters, looked up once per flooded frame
        self.listening = 0  # open subscribe() streams, over all devices
        self._fanout_cache: dict[Any, _Cached] = {}
        self.learned = 0  # plain ints, not Counter keys: counted millions of times
        self.migrated = 0
        self.expired = 0
        self.missed = 0
        self.stack_drops: Counter[str] = Counter()  # the guests' stacks: packets, not frame copies

    # --- what the pieces report ---------------------------------------------------------------------

    def count_listeners(self, delta: int) -> None:
        self.listening += delta

    def underlay_drop(self, reason: str, detail: str, copies: int) -> None:
        self._ledger.ended[reason] += copies
        self._log.record(
            EventKind.DROPPED, "underlay", f"{reason} {detail}" + (f" x{copies}" if copies != 1 else ""), reason
        )

    def bridge_drop(self, label: str) -> Callable[[str, bytes], None]:
        """The ``drop`` callback of the bridge called ``label`` (``host/bridge``)."""

        def drop(reason: str, frame: bytes) -> None:
            self._ledger.ended[reason] += 1
            self._log.record(EventKind.DROPPED, label, f"{reason} {frame[0:6].hex(':')}", reason)

        return drop

    def guest_drop(self, guest: str, reason: str) -> None:
        self.stack_drops[reason] += 1
        self._log.record(EventKind.DROPPED, guest, reason, reason)

    def arm_timer(self, dev: SimDevice) -> None:
        self.timers.arm(dev)

    # --- frames from the bridges, and control calls' actions ------------------------------------------

    def transmit(self, dev: SimDevice, frame: bytes) -> None:
        """A frame leaves ``dev``'s bridge through the device: one copy becomes a datagram per
        remote, drops, or (proxy ARP) a reply frame going back into the bridge."""
        vtep = dev.vtep
        vtep.transmit(frame, self._sched.time)
        outs: list[Any] = vtep.take_outputs()
        # Head-end replication gives one SendDatagram per peer, all with the same payload: a run
        # of them goes to the underlay as one batch (in order; one scheduler event when it can).
        units = 0
        replies: list[bytes] = []
        host = dev.host
        first: Any = None  # the first SendDatagram of the current run, and the run's destinations
        dsts: list[str] = []
        for out in outs:
            kind = type(out)
            if kind is SendDatagram:
                units += 1
                if (
                    first is not None
                    and out.payload is first.payload
                    and out.src == first.src
                    and out.src_port == first.src_port
                    and out.dst_port == first.dst_port
                    and out.ttl == first.ttl
                    and out.tos == first.tos
                    and out.zero_checksum == first.zero_checksum
                ):
                    dsts.append(out.dst)
                    continue
                if first is not None:
                    self._send_run(host, first, dsts)
                first, dsts = out, [out.dst]
                continue
            if first is not None:
                self._send_run(host, first, dsts)
                first = None
            if kind is DeliverFrame:
                replies.append(out.frame)
            else:
                if kind is Dropped:
                    units += 1
                self.output(dev, out)
        if first is not None:
            self._send_run(host, first, dsts)
        if units:
            self._ledger.created += units - 1
        elif replies:
            self._ledger.ended["proxy_answered"] += 1
        else:
            self._unbalanced(dev, 0, "transmit")
        for reply in replies:
            self._ledger.created += 1
            dev.bridge.receive(dev.port_name, reply, self._sched.time)

    def _send_run(self, host: SimHost, first: SendDatagram, dsts: list[str]) -> None:
        src = first.src or host.address
        if self._captures.underlay:
            for dst in dsts:
                self._captures.datagram(first, src, dst)
        if len(dsts) == 1:
            self.underlay.send(src, dsts[0], first.src_port, first.dst_port, first.ttl, first.payload, _outer(first))
        else:
            self.underlay.send_many(src, dsts, first.src_port, first.dst_port, first.ttl, first.payload, _outer(first))

    def carry_out(self, dev: SimDevice, actions: list[Action]) -> None:
        """The actions a control call on ``dev`` caused (``up`` joins the group, ...)."""
        host = dev.host
        for act in actions:
            if type(act) is SendDatagram:
                self._ledger.created += 1  # datagrams a control call caused start their own copy
                src = act.src or host.address
                if self._captures.underlay:
                    self._captures.datagram(act, src, act.dst)
                self.underlay.send(src, act.dst, act.src_port, act.dst_port, act.ttl, act.payload, _outer(act))
            elif type(act) is DeliverFrame:
                self._ledger.created += 1
                dev.bridge.receive(dev.port_name, act.frame, self._sched.time)
            elif type(act) is JoinGroup:
                self.underlay.join(act.group, host.address)
                self._log.record(EventKind.JOINED, dev.label, act.group)
            elif type(act) is LeaveGroup:
                self.underlay.leave(act.group, host.address)
                self._log.record(EventKind.LEFT, dev.label, act.group)
        self.timers.arm(dev)

    # --- datagrams from the underlay --------------------------------------------------------------------

    def receive_many(  # noqa: PLR0917 - the underlay's fields
        self,
        receivers: list[Endpoint],
        payload: bytes,
        src: str,
        src_port: int,
        dst_port: int,
        outer: Outer | None = None,
    ) -> int:
        """One datagram arrives at every host in ``receivers`` (a multicast datagram: thousands).

        The hot loop of a flood-and-learn lab. The datagram is read once (port and VNI pick the
        device, as Linux's ``vxlan_vs_find_vni``), then each host's core decides, and the common
        outcomes (deliver; learn and deliver) take the shortest path into the bridge; anything
        else goes to :meth:`_receive_rest`. The sender, when it is in ``receivers`` (a group
        member), is skipped; returns the number of hosts delivered to.
        """
        now = self._sched.time
        key = (dst_port, payload[4:7]) if len(payload) >= 8 else None
        rows = self._fanout(receivers, key, self.hosts.get(src))
        parsed = parse_datagram(payload)  # once, for every receiving core
        # A broadcast or multicast frame from a unicast source (ARP, ND: what floods are made
        # of) is learned by each bridge as one shared MAC object with a shared (port, time) tuple.
        smac = payload[14:20] if len(payload) >= 22 else b"\x01"
        flood = not smac[0] & 1 and bool(payload[8] & 1) and smac != _ZERO_MAC
        if flood:
            smac = self.macs.setdefault(smac, smac)
        notify = self._log.recording or self.listening
        inf = math.inf
        learned = 0
        stamp_port = ""
        stamp = ("", now)
        seen: bytes | None = None  # the last flooded frame whose destination was looked up
        takers: AbstractSet[SimGuest] | None = None  # the guests whose NICs take it; None: all
        # Bridges whose one guest refuses the flood: the bridge learns the source and the copy
        # ends at the NIC, done for all of them in one call (nothing reads those bridges before):
        # their bits in a bitmap of the lab's bridges, and how many.
        refused: bytearray | None = None
        refusals = 0
        for host, dev, receive, take, bridge, port, byte, bit in rows:
            if outer is None:
                receive(parsed, src, src_port, now)
            else:
                receive(parsed, src, src_port, now, tos=outer[0], zero_checksum=outer[1])
            outs: list[Any] = take()
            count = len(outs)
            if count == 1:
                out = outs[0]
                if type(out) is not DeliverFrame:
                    self._receive_rest(host, dev, outs, now, src=src, dst_port=dst_port)
                    continue
            elif count == 2 and type(outs[0]) is EntryLearned and type(outs[1]) is DeliverFrame:
                out = outs[1]
                learned += 1
                assert dev is not None
                if notify:
                    self._notify(dev, outs[0])
                if dev.timer_at == inf:
                    self.timers.arm(dev)
            else:
                self._receive_rest(host, dev, outs, now, src=src, dst_port=dst_port)
                continue
            # One datagram copy became one frame for the bridge.
            assert bridge is not None and dev is not None
            if port is not stamp_port:
                # New bridge entries share one (port, time) tuple: in a flood to 10,000 hosts
                # that is one object instead of 10,000.
                if refused is not None:
                    self._refuse(refused, refusals, smac, stamp)
                    refused, refusals = None, 0
                stamp_port = port
                stamp = (port, now)
            frame = out.frame
            if not flood:
                bridge.receive(port, frame, now, stamp)
                continue
            lone = dev.lone
            if lone is not None:
                if frame is not seen:
                    seen = frame
                    takers = self.nics.takers(frame[0:6])
                if takers is not None and lone not in takers:
                    if refused is None:
                        refused = self.floods.bitmap()
                    refused[byte] |= bit
                    refusals += 1
                    continue
            bridge.receive_flood(port, frame, smac, stamp)
        if refused is not None:
            self._refuse(refused, refusals, smac, stamp)
        self.learned += learned
        return len(rows)

    def _refuse(self, bridges: bytearray, count: int, smac: bytes, stamp: tuple[str, float]) -> None:
        Bridge.flood_refused(self.floods, bridges, smac, stamp)
        self.nics.refused(count)

    def _receive_rest(
        self, host: SimHost, dev: SimDevice | None, outs: list[Any], now: float, *, src: str, dst_port: int
    ) -> None:
        """The core's outputs for one received datagram copy, when they are not the common shape."""
        if dev is None:
            self._ledger.ended["unknown_vni"] += 1
            if self._log.recording:
                self._log.record(EventKind.DROPPED, host.name, f"unknown_vni port {dst_port} from {src}", "unknown_vni")
            else:
                self._log.count(EventKind.DROPPED)
            return
        units = 0
        for out in outs:
            if type(out) is DeliverFrame:
                units += 1
                dev.bridge.receive(dev.port_name, out.frame, now)
            else:
                if type(out) is Dropped:
                    units += 1
                self.output(dev, out)
        if units != 1:
            self._unbalanced(dev, units, "receive")

    def _fanout(self, receivers: list[Endpoint], key: tuple[int, bytes] | None, sender: SimHost | None) -> list[_Row]:
        """Each receiver's row (see ``_Row``) for a datagram to ``key`` (port, VNI), without the
        ``sender``'s (multicast loop is off).

        A group's member list is a new list whenever membership changes, so the rows for the
        same list and key are cached, with each host's position: every later flood to the group
        skips the lookups.
        """
        cached = self._fanout_cache.get(key)
        if cached is not None and cached[0] is receivers:
            rows, where = cached[1], cached[2]
        else:
            hosts = self.hosts
            rows = []
            for ep in receivers:
                host = hosts[ep[1]]
                dev = host.by_vni.get(key) if key is not None else None
                if dev is None:
                    rows.append((host, None, _ignore, _no_outputs, None, "", 0, 0))
                else:
                    vtep = dev.vtep
                    bridge, number = dev.bridge, dev.bridge.number
                    rows.append(
                        (
                            host,
                            dev,
                            vtep.receive_parsed,
                            vtep.take_outputs,
                            bridge,
                            dev.port_name,
                            number >> 3,
                            1 << (number & 7),
                        )
                    )
            if len(rows) < FANOUT_CACHE_MIN:  # unicast, small groups: not worth a cache entry
                return [row for row in rows if row[0] is not sender]
            where = {row[0]: i for i, row in enumerate(rows)}
            self._fanout_cache[key] = (receivers, rows, where)
        skip = where.get(sender) if sender is not None else None
        return rows if skip is None else rows[:skip] + rows[skip + 1 :]

    # --- notifications ----------------------------------------------------------------------------------

    def output(self, dev: SimDevice, out: Any) -> None:
        """One output of ``dev``'s core that is neither a datagram to send nor a frame to deliver."""
        kind = type(out)
        if kind is Dropped:
            reason = out.reason.value
            self._ledger.ended[reason] += 1
            if self._log.recording:
                self._log.record(EventKind.DROPPED, dev.label, f"{reason} {out.direction.value} {out.detail}", reason)
            else:
                self._log.count(EventKind.DROPPED)
            self._notify(dev, out)
        elif kind is EntryMigrated:
            self.migrated += 1
            self._notify(dev, out)
        elif kind is EntryExpired:
            self.expired += 1
            self._notify(dev, out)
        elif kind is L2Miss or kind is L3Miss:
            self.missed += 1
            self._notify(dev, out)
            if self._on_miss is not None:
                self._on_miss(dev, out)
        elif kind is JoinGroup or kind is LeaveGroup:
            self.carry_out(dev, [out])
        elif kind is EntryLearned:
            self.learned += 1
            self._notify(dev, out)
            if dev.timer_at == math.inf:
                self.timers.arm(dev)

    def _notify(self, dev: SimDevice, note: Notification) -> None:
        log = self._log
        if log.recording and type(note) is not Dropped:
            kind = type(note)
            if kind is EntryLearned:
                assert isinstance(note, EntryLearned)
                log.record(EventKind.LEARNED, dev.label, f"{note.mac} dst {note.dst}")
            elif kind is EntryMigrated:
                assert isinstance(note, EntryMigrated)
                log.record(EventKind.MIGRATED, dev.label, f"{note.mac} from {note.old_dst} to {note.new_dst}")
            elif kind is EntryExpired:
                assert isinstance(note, EntryExpired)
                log.record(EventKind.EXPIRED, dev.label, f"{note.mac} dst {note.dst}")
            elif kind is L2Miss:
                assert isinstance(note, L2Miss)
                log.record(EventKind.MISSED, dev.label, f"l2miss {note.mac}")
            elif kind is L3Miss:
                assert isinstance(note, L3Miss)
                log.record(EventKind.MISSED, dev.label, f"l3miss {note.ip}")
        if dev.control.listeners:
            dev.control.dispatch((note,))

    def _unbalanced(self, dev: SimDevice, units: int, what: str) -> None:
        if units == 0:
            self._ledger.ended["vanished"] += 1
            self._log.record(EventKind.DROPPED, dev.label, f"vanished: the core's {what} gave no output", "vanished")
        else:
            self._ledger.created += units - 1
