"""``FdbMode.EVPN`` in the simulator: an EVPN machine per host and VNI, and a route reflector.

Each host runs one :class:`~pyvxlan.evpn.EvpnMachine` per VNI, configured as FRR derives it
(:func:`evpn_config`): RD ``router-id:index`` (the VNI's 1-based position among the host's
devices, as bgpd hands out ``rd_id``), RT ``(AS & 0xFFFF):VNI``. Local MACs come from the guests
attaching (the devices' learning is off, as in FRR set-ups); what the machines decide is carried
out on each device through its :class:`~pyvxlan.VtepControl` by
:func:`pyvxlan.evpn.apply_actions`, the function the EVPN agent uses on a kernel device: static
(``extern_learn``) FDB entries, all-zeros appends for the type-3 flood lists, neighbour entries
that proxy ARP/ND answers from.

The route reflector runs in virtual time with :class:`RrTimings`. An update passes three BGP
speakers, each taking ``processing`` seconds: the originating host's bgpd, the reflector, the
receiving host's bgpd (which then programs its VTEP). Each sender sends no more often than every
``advertisement_interval`` seconds (MRAI): updates that become ready meanwhile wait and go
together when it runs out. The reflector's clients share one update group, as they do in FRR (same
outbound policy), so one flush goes to every client but the update's originator. Every UPDATE
reaches the reflector as BGP carries it: encoded and decoded again by :mod:`pyvxlan.evpn.codec`
(a host's routes with the same attributes in one UPDATE, as bgpd packs them). FRR's defaults
(``research/evpn-frr.md`` section 3.5): MRAI 0 for iBGP; processing 25 ms, so that the three hops
take the 75 ms the research measured from ``bridge fdb add`` on one host to the entry on another.

After a move (:meth:`SimEvpn.moved`) the lab reports a :class:`Convergence`: the virtual time until
every VTEP's tables equal :func:`expected_tables`, the blackhole window (until every VTEP sends the
guest's frames to its new host) and the frame copies dropped meanwhile.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio

from pyvxlan.core.entries import FdbEntry, Neighbour
from pyvxlan.errors import ConfigError
from pyvxlan.evpn.codec import EvpnRoute, RdType, RouteDistinguisher, Update, decode_message
from pyvxlan.evpn.machine import (
    Action,
    Advertise,
    DuplicateMac,
    EvpnConfig,
    EvpnMachine,
    FdbClear,
    FdbSet,
    FloodAdd,
    FloodClear,
    NeighbourClear,
    NeighbourSet,
    Withdraw,
    apply_actions,
)
from pyvxlan.lab.topology import GuestSpec, Topology
from pyvxlan.sim.device import SimDevice
from pyvxlan.sim.log import EventKind, EventLog
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.wire.addr import ZERO_MAC
from pyvxlan.wire.header import describe

__all__ = [
    "ASN",
    "Convergence",
    "EvpnTables",
    "RrTimings",
    "SimEvpn",
    "evpn_config",
    "expected_tables",
    "router_id",
    "tables_of",
]

#: The AS every simulated host and the reflector are in (iBGP), a private AS number.
ASN = 65000

_VTEP_ACTIONS = (FdbSet, FdbClear, FloodAdd, FloodClear, NeighbourSet, NeighbourClear)


@dataclass(frozen=True, slots=True)
class RrTimings:
    """The route reflector's delays, in seconds (the defaults are FRR's, see the module docstring).

    >>> RrTimings()
    RrTimings(advertisement_interval=0.0, processing=0.025)
    >>> RrTimings(processing=-1)
    Traceback (most recent call last):
    pyvxlan.errors.ConfigError: processing: must be a finite number of seconds >= 0, got int -1
    """

    advertisement_interval: float = 0.0
    processing: float = 0.025

    def __post_init__(self) -> None:
        for name in ("advertisement_interval", "processing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigError(name, f"must be a finite number of seconds >= 0, got {describe(value)}")

    @property
    def end_to_end(self) -> float:
        """An update's time from one host's machine to another's VTEP when no MRAI holds it."""
        return 3 * self.processing


def router_id(address: str) -> str:
    """The BGP router ID of a host: its underlay address, or for an IPv6 host its low 32 bits
    (a router ID is a 32-bit number written as an IPv4 address).

    >>> router_id("198.51.100.7"), router_id("2001:db8::1:2")
    ('198.51.100.7', '0.1.0.2')
    """
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))


def evpn_config(topology: Topology, host: str, vni: int, *, asn: int = ASN) -> EvpnConfig:
    """The EVPN machine's settings for ``host``'s device for ``vni``, derived as FRR's
    ``advertise-all-vni`` does: RD ``router-id:index`` (index: the VNI's 1-based position among
    the host's devices), RT ``(asn & 0xFFFF):vni`` (the machine's default).

    >>> from pyvxlan.lab.topology import FdbMode, classic_demo
    >>> cfg = evpn_config(classic_demo(2, FdbMode.EVPN), "host2", 10)
    >>> str(cfg.route_distinguisher), [str(t) for t in cfg.export_targets or ()]
    ('198.51.100.2:1', ['RT:65000:10'])
    """
    h = topology.host(host)
    index = next(i for i, dev in enumerate(h.devices, 1) if dev.vni == vni)
    rd = RouteDistinguisher(RdType.IPV4, router_id(h.address), index)
    return EvpnConfig(vni=vni, local=h.address, asn=asn, rd=rd)


@dataclass(frozen=True, slots=True)
class EvpnTables:
    """What EVPN programs on one device: remote MACs (MAC -> VTEP), neighbour entries (IP ->
    MAC) and the flood list (VTEPs)."""

    fdb: frozenset[tuple[str, str]]
    neighbours: frozenset[tuple[str, str]]
    flood: frozenset[str]


def tables_of(entries: list[FdbEntry], neighbours: list[Neighbour]) -> EvpnTables:
    """A device's tables as read from it (``bridge fdb show``, ``ip neigh show``)."""
    return EvpnTables(
        fdb=frozenset((e.mac, e.dst) for e in entries if e.mac != ZERO_MAC),
        neighbours=frozenset((n.ip, n.mac) for n in neighbours),
        flood=frozenset(e.dst for e in entries if e.mac == ZERO_MAC),
    )


def expected_tables(topology: Topology, where: Mapping[str, str], host: str, vni: int) -> EvpnTables:
    """What EVPN converges to on ``host``'s device for ``vni`` when each guest is on the host
    ``where`` says: every guest of the VNI on another host behind that host's address, its IP
    resolving to its MAC, and every other host of the VNI on the flood list."""
    fdb = set()
    neighbours = set()
    for guest in topology.guests:
        at = where[guest.name]
        if guest.vni == vni and at != host:
            fdb.add((guest.mac, topology.host(at).address))
            neighbours.add((guest.address, guest.mac))
    return EvpnTables(frozenset(fdb), frozenset(neighbours), frozenset(topology.peers(host, vni)))


@dataclass(frozen=True, slots=True)
class Convergence:
    """What one move cost (virtual seconds from the move; ``None``: not (yet) reached).

    ``time``: until every VTEP's tables equal :func:`expected_tables` again. ``blackhole``: until
    every other VTEP sends the guest's frames to its new host (the new host's bridge delivers them
    locally). ``dropped``: frame copies dropped anywhere from the move until convergence
    (or until now), which includes frames sent to the guest's old place.
    """

    guest: str
    source: str
    target: str
    moved_at: float
    time: float | None
    blackhole: float | None
    dropped: int


def _over_the_wire(update: Update) -> Update:
    """``update`` encoded as BGP sends it and decoded again: what reaches the reflector is what
    the codec reads from the wire (once per UPDATE, not per client: the reflector passes the same
    message on)."""
    message = decode_message(update.encode())
    assert isinstance(message, Update)  # an UPDATE's bytes decode to an UPDATE
    return message


class _Outbox:
    """One sender's MRAI state: the updates waiting and when it last sent."""

    __slots__ = ("last", "pending", "scheduled")

    def __init__(self) -> None:
        self.pending: list[tuple[str, Update]] = []  # (originating host, update)
        self.last = -math.inf
        self.scheduled = False


class _Track:
    """A move whose convergence is being measured."""

    __slots__ = ("blackhole", "drops_at", "guest", "guests", "index", "moved_at", "peers", "stale", "wrong")

    def __init__(self, index: int, guest: GuestSpec, moved_at: float, drops_at: int) -> None:
        self.index = index
        self.guest = guest
        self.moved_at = moved_at
        self.drops_at = drops_at
        self.wrong: set[str] = set()  # hosts whose tables differ from the expected ones
        self.stale: set[str] = set()  # hosts that send the guest's frames to the wrong place
        self.blackhole: float | None = None
        # What the tables of the VNI converge to, worked out once per move (the guests stay put
        # until the next move, which starts another track): (host, MAC, its address, IP) per
        # guest of the VNI, and each host of the VNI's address.
        self.guests: list[tuple[str, str, str, str]] = []
        self.peers: dict[str, str] = {}

    def expected(self, host: str) -> EvpnTables:
        return EvpnTables(
            frozenset((mac, address) for at, mac, address, _ip in self.guests if at != host),
            frozenset((ip, mac) for at, mac, _address, ip in self.guests if at != host),
            frozenset(address for name, address in self.peers.items() if name != host),
        )


class SimEvpn:
    """Every host's EVPN machines and the route reflector between them (see the module docstring).

    ``device(host, vni)`` finds a device, ``where(guest)`` is the host a guest is on now,
    ``drops()`` counts the frame copies dropped so far.
    """

    def __init__(
        self,
        topology: Topology,
        sched: Scheduler,
        log: EventLog,
        *,
        device: Callable[[str, int], SimDevice],
        where: Callable[[str], str],
        drops: Callable[[], int],
        timings: RrTimings | None = None,
    ) -> None:
        timings = RrTimings() if timings is None else timings
        if not isinstance(timings, RrTimings):
            raise ConfigError("timings", f"must be an RrTimings or None, got {describe(timings)}")
        self.topology = topology
        self.timings = timings
        self._sched = sched
        self._log = log
        self._device = device
        self._where = where
        self._drops = drops
        self.machines: dict[tuple[str, int], EvpnMachine] = {}
        self._by_host: dict[str, list[tuple[int, EvpnMachine]]] = {}
        self._source: dict[str, int] = {}
        for i, host in enumerate(topology.hosts, 1):
            self._source[host.name] = i
            for dev in host.devices:
                machine = EvpnMachine(evpn_config(topology, host.name, dev.vni))
                self.machines[(host.name, dev.vni)] = machine
                self._by_host.setdefault(host.name, []).append((dev.vni, machine))
        self._outboxes = {host.name: _Outbox() for host in topology.hosts}
        self._reflector = _Outbox()
        self._work: list[tuple[str, int, list[Action]]] = []
        self._work_ready = trio.Event()
        self._inflight = 0  # updates scheduled or queued, and work not yet carried out
        self._idle = trio.Event()
        self.duplicates: list[tuple[str, int, DuplicateMac]] = []
        self.convergence: list[Convergence] = []
        self._track: _Track | None = None
        self._flood_entries: dict[str, FdbEntry] = {}

    # --- the lab's calls ------------------------------------------------------------------------

    async def start(self) -> None:
        """Every machine joins its VNI's flood list and advertises the guests attached to its
        host; returns once every route has reached every host and been programmed."""
        now = self._sched.now
        for (host, vni), machine in self.machines.items():
            actions = machine.start(now)
            for guest in self.topology.guests:
                if guest.vni == vni and self._where(guest.name) == host:
                    actions += machine.local_learned(guest.mac, now, ip=guest.address)
            await self._local(host, vni, actions)
        await self.settled()

    async def settled(self) -> None:
        """Wait until no update is on its way and every VTEP is programmed."""
        while self._inflight:
            self._idle = trio.Event()
            await self._idle.wait()

    async def moved(self, guest: GuestSpec, old: str, new: str) -> None:
        """``guest`` left ``old``'s bridge and joined ``new``'s: the new host's machine advertises
        it with a higher MAC mobility sequence; the old host's gives it up when that route reaches
        it (RFC 7432 section 15), so each move counts toward duplicate detection on both hosts, as
        FRR counts a MAC that two VTEPs claim in turn. Measure the convergence from now."""
        now = self._sched.now
        self._start_track(guest, old, now)
        vni = guest.vni
        await self._local(new, vni, self.machines[(new, vni)].local_learned(guest.mac, now, ip=guest.address))
        self._check(old, vni)
        self._check(new, vni)

    def tables(self, host: str, vni: int) -> EvpnTables:
        """``host``'s device for ``vni`` as it is now."""
        vtep = self._device(host, vni).vtep
        now = self._sched.now
        return tables_of(vtep.fdb_dump(now=now), vtep.neighbours(now=now))

    def expected(self, host: str, vni: int) -> EvpnTables:
        """What ``host``'s device for ``vni`` converges to with the guests where they are now."""
        where = {g.name: self._where(g.name) for g in self.topology.guests}
        return expected_tables(self.topology, where, host, vni)

    async def serve(self) -> None:
        """The lab's task that programs the VTEPs with what the machines decided (the scheduler's
        handlers only queue it: ``VtepControl`` is async)."""
        while True:
            await self._work_ready.wait()
            self._work_ready = trio.Event()
            work, self._work = self._work, []
            for host, vni, decided in work:
                control = self._device(host, vni).control
                actions = decided
                if not any(isinstance(a, FloodClear) for a in actions):
                    # The type-3 routes of a start, one batch per device with one entry value per
                    # peer (what apply_actions would append one by one; no clear to order them by).
                    floods = [self._flood_entry(a.dst) for a in actions if isinstance(a, FloodAdd)]
                    if floods:
                        await control.fdb_append_many(floods)
                        actions = [a for a in actions if not isinstance(a, FloodAdd)]
                await apply_actions(actions, control)
                self._check(host, vni)
            self._done(len(work))

    def _flood_entry(self, dst: str) -> FdbEntry:
        entry = self._flood_entries.get(dst)
        if entry is None:
            entry = self._flood_entries[dst] = FdbEntry(ZERO_MAC, dst)
        return entry

    # --- routes ---------------------------------------------------------------------------------

    async def _local(self, host: str, vni: int, actions: list[Action]) -> None:
        """Carry out what a machine decided on a local event: its VTEP at once, its routes to the
        reflector after the host's processing time."""
        self._note(host, vni, actions)
        await apply_actions(actions, self._device(host, vni).control)
        updates = self._updates(host, vni, actions)
        if updates:
            self._inflight += 1
            self._sched.call_later(
                self.timings.processing, self._source[host], self._ready, self._outboxes[host], updates, host
            )

    def _updates(self, host: str, vni: int, actions: list[Action]) -> list[tuple[str, Update]]:
        """The UPDATEs carrying a machine's routes: as bgpd packs them, routes with the same
        attributes (a MAC's MAC-only and MAC/IP routes) share one, and withdrawals go together."""
        local = self.machines[(host, vni)].config.local
        groups: dict[tuple[object, ...], list[Advertise]] = {}
        withdrawn: list[EvpnRoute] = []
        for action in actions:
            if isinstance(action, Advertise):
                groups.setdefault((action.communities, action.pmsi), []).append(action)
            elif isinstance(action, Withdraw):
                unreach = action.update().unreach
                assert unreach is not None  # Withdraw.update is an MP_UNREACH_NLRI
                withdrawn += unreach.routes
        out: list[tuple[str, Update]] = []
        if withdrawn:
            out.append((host, Update.withdraw(withdrawn)))
        for group in groups.values():
            first = group[0]
            update = Update.announce(
                [a.route for a in group], next_hop=local, communities=first.communities, pmsi=first.pmsi
            )
            out.append((host, update))
        return out

    def _ready(self, box: _Outbox, updates: list[tuple[str, Update]], host: str | None) -> None:
        """Updates a speaker has processed: sent now, or when its MRAI runs out."""
        box.pending += updates
        if not box.scheduled:
            box.scheduled = True
            self._inflight += 1
            source = 0 if host is None else self._source[host]
            when = max(self._sched.now, box.last + self.timings.advertisement_interval)
            self._sched.call_at(when, source, self._flush, box, host)
        self._done(1)

    def _flush(self, box: _Outbox, host: str | None) -> None:
        batch, box.pending = box.pending, []
        box.scheduled = False
        box.last = self._sched.now
        self._inflight += 1
        if host is None:  # the reflector sent: its clients process the batch
            self._sched.call_later(self.timings.processing, 0, self._receive, batch)
        else:  # a host sent: the reflector processes it, as the bytes of a BGP session carry it
            batch = [(origin, _over_the_wire(update)) for origin, update in batch]
            self._sched.call_later(self.timings.processing, 0, self._ready, self._reflector, batch, None)
        self._done(1)

    def _receive(self, batch: list[tuple[str, Update]]) -> None:
        """Every client of the reflector but each update's originator takes the batch in."""
        now = self._sched.now
        for host, machines in self._by_host.items():
            for vni, machine in machines:
                actions: list[Action] = []
                for origin, update in batch:
                    if origin != host:
                        actions += machine.routes_received(update, now)
                if actions:
                    self._note(host, vni, actions)
                    if any(isinstance(a, _VTEP_ACTIONS) for a in actions):
                        self._work.append((host, vni, actions))
                        self._inflight += 1
        if self._work:
            self._sched.wake(self._work_ready)
        self._done(1)

    def _note(self, host: str, vni: int, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, DuplicateMac):
                self.duplicates.append((host, vni, action))
                dev = self._device(host, vni)
                self._log.record(EventKind.ACTION, dev.label, f"duplicate MAC {action.mac}: {action.moves} moves")

    def _done(self, count: int) -> None:
        self._inflight -= count
        if not self._inflight:
            self._sched.wake(self._idle)

    # --- convergence ----------------------------------------------------------------------------

    def _start_track(self, guest: GuestSpec, old: str, now: float) -> None:
        track = self._track
        if track is not None:
            self._record(track, None)  # superseded by this move before it converged
        track = _Track(len(self.convergence), guest, now, self._drops())
        self.convergence.append(Convergence(guest.name, old, self._where(guest.name), now, None, None, 0))
        self._track = track
        # Every device of the VNI is checked at once after the local changes (moved), and again
        # each time the reflector's routes change it.
        for host in self.topology.hosts:
            if any(dev.vni == guest.vni for dev in host.devices):
                track.wrong.add(host.name)
                track.stale.add(host.name)
                track.peers[host.name] = host.address
        for spec in self.topology.guests:
            if spec.vni == guest.vni:
                at = self._where(spec.name)
                track.guests.append((at, spec.mac, track.peers[at], spec.address))

    def _check(self, host: str, vni: int) -> None:
        track = self._track
        if track is None or vni != track.guest.vni:
            return
        vtep = self._device(host, vni).vtep
        now = self._sched.now
        dump = vtep.fdb_dump(now=now)
        if host in track.stale:
            guest = track.guest
            at = self._where(guest.name)
            have = [e.dst for e in dump if e.mac == guest.mac]
            # The new host's bridge delivers the guest's frames locally, whatever its VTEP holds.
            if at == host or have == [track.peers[at]]:
                track.stale.discard(host)
                if not track.stale:
                    track.blackhole = now - track.moved_at
        if host in track.wrong and tables_of(dump, vtep.neighbours(now=now)) == track.expected(host):
            track.wrong.discard(host)
        if not track.wrong and not track.stale:
            self._record(track, self._sched.now - track.moved_at)
            self._track = None
        else:
            self._record(track, None)

    def _record(self, track: _Track, time: float | None) -> None:
        guest = track.guest
        old = self.convergence[track.index]
        self.convergence[track.index] = Convergence(
            guest.name,
            old.source,
            old.target,
            track.moved_at,
            time,
            track.blackhole,
            self._drops() - track.drops_at,
        )
