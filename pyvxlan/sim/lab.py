"""``open_lab``: a :class:`~pyvxlan.lab.topology.Topology` running in trio's virtual time.

Each host gets, per vxlan device, a :class:`~pyvxlan.Vtep` core (wrapped in a
:class:`~pyvxlan.sim.SimVtep` for the :class:`~pyvxlan.VtepControl` API) and a
:class:`~pyvxlan.sim.bridge.Bridge` with the device as one port and the guests as the others. The
underlay, the bridges and the guests only carry out what the cores decide: every forwarding and
learning decision of a VTEP is the core's.

The lab is put together from modules that each do one thing: :mod:`~pyvxlan.sim.device` (hosts and
devices), :mod:`~pyvxlan.sim.datapath` (the cores' outputs carried out: transmit, the flood path,
notifications), :mod:`~pyvxlan.sim.timers` (ageing), :mod:`~pyvxlan.sim.controller` (the
controller's entries), :mod:`~pyvxlan.sim.capture` (pcaps) and :mod:`~pyvxlan.sim.log` (events).
This module is the :class:`SimLab` users hold and the :func:`open_lab` factory.
"""

from __future__ import annotations

import functools
import os
import random
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace

import trio
import trio.testing

from pyvxlan.core.entries import FdbEntry, Neighbour
from pyvxlan.core.fdb import RemotePool
from pyvxlan.errors import ConfigError
from pyvxlan.lab.protocol import lab_key_error
from pyvxlan.lab.topology import FdbMode, LinkProfile, Topology
from pyvxlan.sim.bridge import Bridge
from pyvxlan.sim.capture import Captures
from pyvxlan.sim.controller import SimController
from pyvxlan.sim.datapath import DataPath
from pyvxlan.sim.device import SimDevice, SimHost, SimVtep
from pyvxlan.sim.evpn import Convergence, RrTimings, SimEvpn
from pyvxlan.sim.guest import SimGuest
from pyvxlan.sim.ipid import IpIdents
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.log import EventKind, EventLog, LabEvent, LabStats
from pyvxlan.sim.scheduler import Scheduler

__all__ = ["KEPT_EVENTS", "SimLab", "SimVtep", "open_lab"]

#: How many of the latest events ``lab.events`` keeps by default (``keep_events``).
KEPT_EVENTS = 10_000

_NOT_DROPS = frozenset({"delivered", "proxy_answered"})  # how a frame copy may end without a drop


class SimLab:
    """A running simulated lab (see :func:`open_lab`); implements :class:`pyvxlan.lab.Lab`."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 0,
        keep_events: bool | int = KEPT_EVENTS,
        events_file: str | os.PathLike[str] | None = None,
        link: LinkProfile | None = None,
        controller: str = "eager",
        rr: RrTimings | None = None,
    ) -> None:
        if controller not in ("eager", "on-miss"):
            raise ConfigError("controller", f"must be 'eager' or 'on-miss', got {controller!r}")
        if type(keep_events) is not bool and (type(keep_events) is not int or keep_events < 0):
            raise ConfigError(
                "keep_events", f"must be True (all), False (none) or a number of events >= 0, got {keep_events!r}"
            )
        if rr is not None and topology.mode is not FdbMode.EVPN:
            raise ConfigError("rr", f"route reflector delays are for mode evpn, not {topology.mode.value}")
        self.topology = topology
        self.controller = controller
        on_miss = topology.mode is FdbMode.CONTROLLER and controller == "on-miss"
        self.seed = seed
        self.keep_events = keep_events
        self._ran = False
        self._sched = sched = Scheduler()
        clock = lambda: sched.now  # noqa: E731 - the virtual clock, one callable for every device
        self._log = EventLog(clock, keep=None if keep_events is True else int(keep_events))
        # IPv4 IDs, for the guests' packets and the captured outer headers: their own generator,
        # so that a capture draws nothing from the random choices of the underlay.
        self._idents = IpIdents(seed)
        self._ledger = Ledger()
        self._captures = Captures(clock, self._idents)
        self._control = SimController(topology, sched, on_miss=on_miss, device=self._device, where=self.guest_host)
        self._path = DataPath(
            sched,
            random.Random(seed),
            self._ledger,
            self._log,
            self._captures,
            mtu=topology.underlay.mtu,
            ip_version=topology.underlay.ip_version,
            on_miss=self._control.missed if on_miss else None,
        )
        self.underlay = self._path.underlay
        self._evpn = (
            SimEvpn(
                topology, sched, self._log, device=self._device, where=self.guest_host, drops=self._dropped, timings=rr
            )
            if topology.mode is FdbMode.EVPN
            else None
        )
        # One pool of remotes for all the cores: thousands of VTEPs learning the same sources from
        # the same floods share one remote object per address (it changes no result, only memory).
        pool = RemotePool()
        self._hosts: dict[str, SimHost] = {}
        self._devices: dict[tuple[str, int], SimDevice] = {}
        self._guests: dict[str, SimGuest] = {}
        self._guest_host: dict[str, str] = {}
        source = 0
        for host in topology.hosts:
            source += 1
            h = SimHost(host.name, host.address, source)
            self._hosts[host.name] = h
            self._path.hosts[host.address] = h
            self.underlay.attach(source, host.address)
            if link is not None:
                self.underlay.set_link(host.address, link)
            for dev in host.devices:
                config = topology.vtep_config(host.name, dev.vni)
                if on_miss:
                    # The controller learns what a VTEP lacks from its misses.
                    config = replace(config, l2miss=True, l3miss=True)
                bridge = Bridge(
                    dev.bridge,
                    ageing=dev.bridge_ageing,
                    drop=self._path.bridge_drop(f"{host.name}/{dev.bridge}"),
                    ledger=self._ledger,
                    macs=self._path.macs,
                    floods=self._path.floods,
                )
                d = SimDevice(h, config, bridge, sched, self._path, clock=clock, pool=pool)
                h.add(d)
                self._devices[(host.name, dev.vni)] = d
        for spec in topology.guests:
            source += 1
            guest = SimGuest(
                spec.name,
                spec.mac,
                spec.ip,
                source=source,
                sched=sched,
                ledger=self._ledger,
                drop=self._path.guest_drop,
                idents=self._idents,
                nics=self._path.nics,
            )
            self._guests[spec.name] = guest
            self._plug(guest, spec.host, spec.vni)
        if events_file is not None:  # last: nothing after it can fail and leave the file open
            try:
                stream = open(events_file, "w", encoding="utf-8")  # noqa: SIM115 - closed with the lab
            except OSError as exc:
                raise ConfigError("events_file", f"cannot write {os.fspath(events_file)!r}: {exc.strerror}") from None
            self._log.stream_to(stream)

    @property
    def events(self) -> deque[LabEvent]:
        """The latest events (``keep_events`` of them), oldest first."""
        return self._log.events

    @property
    def learned(self) -> int:
        """FDB entries the cores learned since the lab opened."""
        return self._path.learned

    # --- the Lab protocol -------------------------------------------------------------------------

    def vtep(self, host: str, vni: int) -> SimVtep:
        """The :class:`~pyvxlan.VtepControl` of ``host``'s device for ``vni``."""
        return self._device(host, vni).control

    def guest(self, name: str) -> SimGuest:
        """The guest called ``name``."""
        guest = self._guests.get(name)
        if guest is None:
            raise lab_key_error("guest", name, self._guests)
        return guest

    def capture(self, path: str, *, guest: str | None = None) -> None:
        """Write every underlay packet from now on (or, with ``guest``, every frame on that
        guest's interface) to a pcap at ``path``; closed when the lab closes."""
        g = self.guest(guest) if guest is not None else None
        self._captures.open(path, guest)
        if g is not None:
            g.observe = self._captures.guest_frame

    # --- time -------------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Virtual seconds since the lab opened."""
        return self._sched.now

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass; wakes at a fixed point of the event order."""
        done = trio.Event()
        self._sched.call_later(max(0.0, seconds), 0, self._sched.wake, done)
        await done.wait()

    # --- reading state ----------------------------------------------------------------------------

    def fdb(self, host: str, vni: int) -> list[FdbEntry]:
        """``bridge fdb show dev DEV`` of a device, read synchronously."""
        return self._device(host, vni).vtep.fdb_dump(now=self._sched.now)

    def fdb_lines(self, host: str, vni: int) -> list[str]:
        """The same in ``bridge fdb show`` form."""
        dev = self._device(host, vni)
        return [e.bridge_line(dev.port_name) for e in self.fdb(host, vni)]

    async def neighbours(self, host: str, vni: int) -> list[Neighbour]:
        """The neighbour entries proxy ARP/ND of ``host``'s device for ``vni`` answers from (in
        every mode: the simulated device answers for evpn's too)."""
        return await self.vtep(host, vni).neighbours()

    def bridge(self, host: str, vni: int) -> Bridge:
        """The bridge that ``host``'s device for ``vni`` is a port of."""
        return self._device(host, vni).bridge

    def group_members(self, group: str) -> list[str]:
        """The underlay addresses that joined ``group``."""
        return self.underlay.members(group)

    def guest_host(self, name: str) -> str:
        """The host a guest is attached to now."""
        self.guest(name)
        return self._guest_host[name]

    @property
    def evpn(self) -> SimEvpn | None:
        """The hosts' EVPN machines and the route reflector (``FdbMode.EVPN`` only)."""
        return self._evpn

    @property
    def convergence(self) -> list[Convergence]:
        """What each guest move cost so far, in order (``FdbMode.EVPN``; empty in other modes)."""
        return [] if self._evpn is None else list(self._evpn.convergence)

    def _dropped(self) -> int:
        # A guest's ARP/ND that proxy could not answer (a gratuitous ARP after a move) is not
        # traffic lost to a blackhole.
        return sum(v for k, v in self._ledger.ended.items() if k not in _NOT_DROPS and not k.startswith("proxy_"))

    @property
    def ledger(self) -> Ledger:
        """Created and ended frame copies (see :mod:`pyvxlan.sim.ledger`)."""
        return self._ledger

    @property
    def event_counts(self) -> dict[EventKind, int]:
        """How many events of each kind happened since the lab opened, kept in ``events`` or not."""
        counts = dict(self._log.counts)
        # Counted where they happen: the hot paths make no event object when nothing records them.
        path = self._path
        counts[EventKind.LEARNED] = path.learned
        counts[EventKind.MIGRATED] = path.migrated
        counts[EventKind.EXPIRED] = path.expired
        counts[EventKind.MISSED] = path.missed
        return {kind: counts[kind] for kind in EventKind if counts.get(kind)}

    def stats(self) -> LabStats:
        u = self.underlay
        path = self._path
        drops = {k: v for k, v in sorted(self._ledger.ended.items()) if k not in _NOT_DROPS}
        for k, v in path.stack_drops.items():
            drops[f"guest:{k}"] = v
        return LabStats(
            datagrams=u.datagrams,
            multicast_datagrams=u.multicast_datagrams,
            unicast_datagrams=u.datagrams - u.multicast_datagrams,
            flood_datagrams=u.flood_datagrams,
            deliveries=u.deliveries,
            bytes=u.bytes,
            learned=path.learned,
            migrated=path.migrated,
            expired=path.expired,
            missed=path.missed,
            drops=drops,
            delivered=self._ledger.ended["delivered"],
            proxy_answered=self._ledger.ended["proxy_answered"],
        )

    # --- faults and changes -----------------------------------------------------------------------

    def link_down(self, host: str) -> None:
        """Take ``host``'s underlay link down: every datagram to or from it is dropped."""
        self.underlay.set_link_up(self._host(host).address, False)
        self._log.record(EventKind.ACTION, "lab", f"link {host} down")

    def link_up(self, host: str) -> None:
        self.underlay.set_link_up(self._host(host).address, True)
        self._log.record(EventKind.ACTION, "lab", f"link {host} up")

    def set_link(self, host: str, profile: LinkProfile) -> None:
        """Give ``host``'s link another latency, jitter, loss, duplication or reordering."""
        self.underlay.set_link(self._host(host).address, profile)
        self._log.record(EventKind.ACTION, "lab", f"link {host} {profile}")

    def partition(self, *sides: Iterable[str]) -> None:
        """Split the hosts into ``sides`` (lists of host names); the rest form one more side."""
        named = [[self._host(h).address for h in side] for side in sides]
        self.underlay.partition(*named)
        self._log.record(
            EventKind.ACTION, "lab", "partition " + " | ".join(",".join(side) for side in map(list, sides))
        )

    def heal(self) -> None:
        """End a partition."""
        self.underlay.heal()
        self._log.record(EventKind.ACTION, "lab", "partition healed")

    async def vtep_down(self, host: str, vni: int) -> None:
        """``ip link set DEV down`` (leaves the group, flushes learned entries)."""
        self._log.record(EventKind.ACTION, "lab", f"{self._device(host, vni).label} down")
        await self.vtep(host, vni).down()

    async def vtep_up(self, host: str, vni: int) -> None:
        """``ip link set DEV up`` (joins the group again)."""
        self._log.record(EventKind.ACTION, "lab", f"{self._device(host, vni).label} up")
        await self.vtep(host, vni).up()

    async def move_guest(self, name: str, host: str) -> None:
        """Move a guest to ``host``'s bridge (a live migration): it keeps its MAC and IP, loses its
        ARP/ND cache as a Linux guest whose link goes down does (the kernel lab moves its veth,
        so both labs put the same frames on the wire), and announces itself with a gratuitous ARP;
        in controller mode the controller reprograms every VTEP first, as Docker's overlay driver
        does on leave and join."""
        guest = self.guest(name)
        spec = self.topology.guest(name)
        old = self._guest_host[name]
        self._device(host, spec.vni)
        if old == host:
            return
        self._log.record(EventKind.ACTION, "lab", f"move {name} from {old} to {host}")
        self._unplug(guest, old, spec.vni)
        guest.flush_arp()
        self._plug(guest, host, spec.vni)
        if self.topology.mode is FdbMode.CONTROLLER:
            await self._control.attach(spec, host, old)
        elif self._evpn is not None:
            await self._evpn.moved(spec, old, host)
        guest.announce()

    # --- wiring -----------------------------------------------------------------------------------

    def _host(self, name: str) -> SimHost:
        host = self._hosts.get(name)
        if host is None:
            raise lab_key_error("host", name, self._hosts)
        return host

    def _device(self, host: str, vni: int) -> SimDevice:
        dev = self._devices.get((host, vni))
        if dev is None:
            raise lab_key_error(f"vxlan device on host {host!r} with VNI", vni, self._host(host).devices)
        return dev

    def _plug(self, guest: SimGuest, host: str, vni: int) -> None:
        dev = self._device(host, vni)
        dev.bridge.attach(guest.name, guest.deliver)
        guest.attach(functools.partial(self._from_guest, dev.bridge, guest.name))
        self._guest_host[guest.name] = host
        self._find_lone(dev)

    def _from_guest(self, bridge: Bridge, port: str, frame: bytes) -> None:
        """A frame a guest sends enters its bridge port (the guest's ``attach`` callable)."""
        bridge.receive(port, frame, self._sched.time)

    def _unplug(self, guest: SimGuest, host: str, vni: int) -> None:
        dev = self._device(host, vni)
        dev.bridge.detach(guest.name)
        guest.attach(None)
        self._find_lone(dev)

    def _find_lone(self, dev: SimDevice) -> None:
        other = dev.bridge.single(dev.port_name)
        dev.lone = self._guests.get(other) if other is not None else None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SimLab]:
        """Run the lab's world for the duration of the block: the scheduler (and the on-miss
        controller) in a nursery, every device brought up and the mode's entries programmed
        first; the lab's captures and event file are closed at the end. :func:`open_lab` is this
        around a new lab; a lab runs once."""
        if self._ran:
            raise ConfigError("lab", "a simulated lab runs once: open another with open_lab")
        self._ran = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sched.run)
                if self._control.on_miss:
                    nursery.start_soon(self._control.serve)
                for dev in self._devices.values():
                    await dev.control.up()
                await self._control.program()
                if self._evpn is not None:
                    nursery.start_soon(self._evpn.serve)
                    await self._evpn.start()
                yield self
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The scheduler task never fails on its own, so a group holds the body's one exception:
            # raise that, so that ``pytest.raises(KeyError)`` around a lab block works as it reads.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self._captures.close()
            self._log.close()


def _check_clock() -> None:
    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock) or clock.autojump_threshold != 0 or clock.rate != 0:
        raise ConfigError(
            "clock",
            "the simulator runs in virtual time: use trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) "
            "or pyvxlan.sim.run(main)",
        )


@asynccontextmanager
async def open_lab(
    topology: Topology,
    *,
    seed: int = 0,
    keep_events: bool | int = KEPT_EVENTS,
    events_file: str | os.PathLike[str] | None = None,
    link: LinkProfile | None = None,
    controller: str = "eager",
    rr: RrTimings | None = None,
) -> AsyncIterator[SimLab]:
    """Build ``topology`` in the simulator and bring every vxlan device up.

    Needs trio's ``MockClock(autojump_threshold=0)`` (see :func:`pyvxlan.sim.run`). ``seed``
    seeds every random choice (loss, jitter, ...): the same topology, seed and actions give the
    same events and byte-identical captures. ``link`` is every host's initial
    :class:`~pyvxlan.sim.LinkProfile`.

    ``lab.events`` keeps the latest ``keep_events`` events (``KEPT_EVENTS``, 10,000, by default,
    so that a long run stays in bounded memory), every one with ``keep_events=True``, none with
    ``False`` (the fastest: large labs); ``lab.event_counts`` counts every event by kind whatever
    is kept. ``events_file`` streams every event, one ``str(event)`` line each, to a file.

    In ``UNICAST`` mode each device then gets an all-zeros entry per peer; in ``CONTROLLER``
    mode the controller programs every guest's static FDB and neighbour entries on every other
    VTEP of its VNI (``controller="eager"``, Docker's swarm mode: N x N entries), or, with
    ``controller="on-miss"``, only what a VTEP asks for through l2miss/l3miss (the VTEP's first
    ARP for a guest goes unanswered; the guest's retry a second later is answered). In ``EVPN``
    mode every host runs an EVPN machine per VNI and a route reflector with the delays ``rr``
    (:class:`~pyvxlan.sim.evpn.RrTimings`, FRR's by default) distributes their routes; the lab
    opens once the first routes are programmed everywhere (``lab.now`` is then 75 ms with FRR's
    delays), and ``lab.convergence`` reports each move (:mod:`pyvxlan.sim.evpn`).
    """
    _check_clock()
    lab = SimLab(
        topology,
        seed=seed,
        keep_events=keep_events,
        events_file=events_file,
        link=link,
        controller=controller,
        rr=rr,
    )
    async with lab.running():
        yield lab
