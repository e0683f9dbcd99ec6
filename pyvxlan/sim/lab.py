"""``open_lab``: a :class:`~pyvxlan.lab.topology.Topology` running in trio's virtual time.

Each host gets, per vxlan device, a :class:`~pyvxlan.Vtep` core (wrapped in a
:class:`~pyvxlan.sim.memory.MemoryVtep` for the :class:`~pyvxlan.VtepControl` API) and a
:class:`~pyvxlan.sim.bridge.Bridge` with the device as one port and the guests as the others. The
underlay, the bridges and the guests only carry out what the cores decide: every forwarding and
learning decision of a VTEP is the core's.
"""

from __future__ import annotations

import functools
import math
import os
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from collections.abc import Set as AbstractSet
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Concatenate, ParamSpec, TextIO, TypeVar

import trio
import trio.testing

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbEntry
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
from pyvxlan.core.vtep import Vtep
from pyvxlan.errors import ConfigError
from pyvxlan.lab.topology import FdbMode, GuestSpec, Topology
from pyvxlan.sim.bridge import Bridge
from pyvxlan.sim.events import EventKind, LabEvent, LabStats
from pyvxlan.sim.guest import SimGuest
from pyvxlan.sim.ipid import IpIdents
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.memory import MemoryVtep
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.sim.underlay import Endpoint, LinkProfile, Outer, SimUnderlay
from pyvxlan.wire.addr import ip_info
from pyvxlan.wire.frame import encapsulate
from pyvxlan.wire.header import VxlanHeader
from pyvxlan.wire.packets import BROADCAST
from pyvxlan.wire.pcap import PcapWriter

__all__ = ["KEPT_EVENTS", "SimLab", "SimVtep", "open_lab"]

#: How many of the latest events ``lab.events`` keeps by default (``keep_events``).
KEPT_EVENTS = 10_000


_NOT_DROPS = frozenset({"delivered", "proxy_answered"})  # how a frame copy may end without a drop


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _rearming(
    method: Callable[Concatenate[MemoryVtep, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[SimVtep, _P], Coroutine[Any, Any, _R]]:
    """``method``, after which the lab re-arms the device's timer from the core's ``next_timer()``
    (as Linux's ``vxlan_changelink`` re-arms its ageing timer). Also when the call fails: a
    refused call may still have changed an entry (``bridge fdb replace`` on the all-zeros entry
    does in Linux)."""

    @functools.wraps(method)
    async def call(self: SimVtep, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        finally:
            self._on_change()

    return call


class SimVtep(MemoryVtep):
    """The :class:`~pyvxlan.VtepControl` of a simulated device: :class:`~pyvxlan.sim.memory.MemoryVtep`
    on the lab's virtual clock, which also tells the lab whether anyone listens, so that a large
    lab does not publish millions of notifications to nobody, and re-arms the device's timer after
    every control call."""

    def __init__(
        self,
        vtep: Vtep,
        *,
        clock: Callable[[], float],
        on_actions: Callable[[list[Action]], None],
        on_listen: Callable[[int], None] = lambda _delta: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(vtep, clock=clock, on_actions=on_actions)
        self.listeners = 0
        self._on_listen = on_listen
        self._on_change = on_change

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Notification]]:
        """The notifications emitted while the context is open, as an async iterator."""
        self.listeners += 1
        self._on_listen(1)
        try:
            async with super().subscribe() as stream:
                yield stream
        finally:
            self.listeners -= 1
            self._on_listen(-1)

    # Every call that can change the core's next timer (an entry's expiry, the ageing time, the
    # device's state). ``test_every_control_call_rearms`` holds this list to VtepControl's.
    fdb_add = _rearming(MemoryVtep.fdb_add)
    fdb_append = _rearming(MemoryVtep.fdb_append)
    fdb_append_many = _rearming(MemoryVtep.fdb_append_many)
    fdb_replace = _rearming(MemoryVtep.fdb_replace)
    fdb_del = _rearming(MemoryVtep.fdb_del)
    neigh_add = _rearming(MemoryVtep.neigh_add)
    neigh_del = _rearming(MemoryVtep.neigh_del)
    set_learning = _rearming(MemoryVtep.set_learning)
    set_ageing = _rearming(MemoryVtep.set_ageing)
    set_remote = _rearming(MemoryVtep.set_remote)
    up = _rearming(MemoryVtep.up)
    down = _rearming(MemoryVtep.down)


class _Device:
    """One vxlan device on a simulated host, with its core, control adapter and bridge."""

    __slots__ = ("bridge", "control", "host", "label", "lone", "port_name", "timer_at", "vtep")

    def __init__(self, host: _Host, config: VtepConfig, bridge: Bridge, lab: SimLab) -> None:
        self.host = host
        self.vtep = Vtep(config, now=lab._sched.now)
        self.control = SimVtep(
            self.vtep,
            clock=lambda: lab._sched.now,
            on_actions=self._on_actions,
            on_listen=lab._count_listeners,
            on_change=lambda: lab._arm_timer(self),
        )
        self.bridge = bridge
        self.label = f"{host.name}/{config.name}"
        self.port_name = config.name
        self.timer_at = math.inf
        # The guest, when it is the bridge's only port besides this device: a flood from the
        # underlay then goes to it straight, without the bridge's port loop (set by the lab).
        self.lone: SimGuest | None = None

    def _on_actions(self, actions: list[Action]) -> None:
        self.host.lab._actions(self, actions)


class _Host:
    __slots__ = ("address", "by_vni", "devices", "lab", "name", "source")

    def __init__(self, lab: SimLab, name: str, address: str, source: int) -> None:
        self.lab = lab
        self.name = name
        self.address = address
        self.source = source
        self.devices: dict[int, _Device] = {}
        self.by_vni: dict[tuple[int, bytes], _Device] = {}  # (dst port, 3 VNI bytes) -> device

    def receive(self, payload: bytes, src: str, src_port: int, dst_port: int, outer: Outer | None) -> None:
        self.lab._receive_many([(self.source, self.address, self.receive)], payload, src, src_port, dst_port, outer)


# One receiver of a fan-out, looked up once per group membership: host, device (None: no device
# for the VNI), the core's bound receive and take_outputs, the bridge's learned-MAC dict and the
# device's port name. A host without the device gets callables that give no output, so that the
# hot loop sends it to the general path without a test of its own.
# ... and the device's guest when it is the bridge's only one and nothing taps it (else None).
_Fanout = tuple[
    _Host, "_Device | None", Callable[..., None], Callable[[], list[Any]], dict[bytes, Any], str, "SimGuest | None"
]
# A cached fan-out: the member list it is for, its rows, and each host's position among them.
_Cached = tuple[list[Endpoint], list[_Fanout], dict[_Host, int]]


_NOBODY: frozenset[Any] = frozenset()
# Fan-outs to this many hosts or more are cached (the property tests lower it to cover the cache).
FANOUT_CACHE_MIN = 9


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    return None


def _outer(act: SendDatagram) -> Outer | None:
    """What the receiving cores must see of ``act``'s outer header besides addresses and ports."""
    return (act.tos, act.zero_checksum) if act.tos or act.zero_checksum else None


def _no_outputs() -> list[Any]:
    return []


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
    ) -> None:
        if controller not in ("eager", "on-miss"):
            raise ConfigError("controller", f"must be 'eager' or 'on-miss', got {controller!r}")
        if type(keep_events) is not bool and (type(keep_events) is not int or keep_events < 0):
            raise ConfigError(
                "keep_events", f"must be True (all), False (none) or a number of events >= 0, got {keep_events!r}"
            )
        self.topology = topology
        self.controller = controller
        self._on_miss = topology.mode is FdbMode.CONTROLLER and controller == "on-miss"
        self._misses: list[tuple[_Device, L2Miss | L3Miss]] = []
        self._miss_ready = trio.Event()
        self._directory = {(g.vni, g.address): g for g in topology.guests}
        self._directory_mac = {g.mac: g for g in topology.guests}
        self.seed = seed
        self.keep_events = keep_events
        kept = None if keep_events is True else int(keep_events)
        # The latest events (all of them with keep_events=True); event_counts counts every one.
        self.events: deque[LabEvent] = deque(maxlen=kept)
        self._kinds: Counter[EventKind] = Counter()
        self._stream: TextIO | None = None
        self._keep = kept != 0
        # Whether events are made at all: the hot paths skip formatting them when not.
        self._recording = self._keep or events_file is not None
        self._sched = Scheduler()
        self._rng = random.Random(seed)
        # IPv4 IDs, for the guests' packets and the captured outer headers: their own generator,
        # so that a capture draws nothing from the random choices of the underlay.
        self._idents = IpIdents(seed)
        self._ledger = Ledger()
        self._stack_drops: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self.learned = 0  # an int, not a Counter key: counted once per learned entry, millions of times
        self._writers: list[PcapWriter] = []  # every open capture, closed with the lab
        self._underlay_writers: list[PcapWriter] = []
        self._guest_captures: dict[str, list[PcapWriter]] = {}
        self.underlay = SimUnderlay(
            self._sched,
            self._rng,
            mtu=topology.underlay.mtu,
            ip_version=topology.underlay.ip_version,
            ledger=self._ledger,
            drop=self._underlay_drop,
        )
        self.underlay.receive_many = self._receive_many
        self._hosts: dict[str, _Host] = {}
        self._macs: dict[bytes, bytes] = {}
        self._listening = 0  # open subscribe() streams, over all devices
        self._fanout_cache: dict[Any, _Cached] = {}
        self._by_address: dict[str, _Host] = {}
        # Destination MAC -> the guests whose NIC accepts it (broadcast aside: every guest does).
        # A flood's destination is looked up once, so the flood loop need not touch each guest.
        self._nic_index: dict[bytes, set[SimGuest]] = {}
        self._devices: dict[tuple[str, int], _Device] = {}
        self._guests: dict[str, SimGuest] = {}
        self._guest_host: dict[str, str] = {}
        source = 0
        for host in topology.hosts:
            source += 1
            h = _Host(self, host.name, host.address, source)
            self._hosts[host.name] = h
            self._by_address[host.address] = h
            self.underlay.attach(source, host.address, h.receive)
            if link is not None:
                self.underlay.set_link(host.address, link)
            for dev in host.devices:
                config = topology.vtep_config(host.name, dev.vni)
                if self._on_miss:
                    # The controller learns what a VTEP lacks from its misses (flannel's first
                    # design, Docker's overlay driver outside swarm mode).
                    config = replace(config, l2miss=True, l3miss=True)
                bridge = Bridge(
                    dev.bridge,
                    ageing=dev.bridge_ageing,
                    drop=self._bridge_drop_for(f"{host.name}/{dev.bridge}"),
                    ledger=self._ledger,
                    macs=self._macs,
                )
                d = _Device(h, config, bridge, self)
                bridge.attach(config.name, self._vxlan_port(d))
                h.devices[dev.vni] = d
                h.by_vni[(config.dst_port, config.vni.to_bytes(3, "big"))] = d
                self._devices[(host.name, dev.vni)] = d
        for spec in topology.guests:
            source += 1
            guest = SimGuest(
                spec.name,
                spec.mac,
                spec.ip,
                source=source,
                sched=self._sched,
                ledger=self._ledger,
                drop=self._guest_drop,
                idents=self._idents,
            )
            self._guests[spec.name] = guest
            for mac in guest.accepts - {BROADCAST}:
                self._nic_index.setdefault(mac, set()).add(guest)
            guest.on_tap = self._fanout_cache.clear  # the rows hold untapped lone guests
            self._plug(guest, spec.host, spec.vni)
        if events_file is not None:  # last: nothing after it can fail and leave the file open
            try:
                self._stream = open(events_file, "w", encoding="utf-8")  # noqa: SIM115 - closed with the lab
            except OSError as exc:
                raise ConfigError("events_file", f"cannot write {os.fspath(events_file)!r}: {exc.strerror}") from None

    # --- the Lab protocol -------------------------------------------------------------------------

    def vtep(self, host: str, vni: int) -> SimVtep:
        """The :class:`~pyvxlan.VtepControl` of ``host``'s device for ``vni``."""
        try:
            return self._devices[(host, vni)].control
        except KeyError:
            raise KeyError(f"host {host!r} has no vxlan device with VNI {vni}") from None

    def guest(self, name: str) -> SimGuest:
        """The guest called ``name``."""
        try:
            return self._guests[name]
        except KeyError:
            raise KeyError(f"no guest is called {name!r}") from None

    def capture(self, path: str, *, guest: str | None = None) -> None:
        """Write every underlay packet from now on (or, with ``guest``, every frame on that
        guest's interface) to a pcap at ``path``; closed when the lab closes."""
        g = self.guest(guest) if guest is not None else None
        writer = PcapWriter(path)
        self._writers.append(writer)
        if g is None:
            self._underlay_writers.append(writer)
        else:
            self._guest_captures.setdefault(g.name, []).append(writer)
            g.observe = self._capture_guest

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
    def ledger(self) -> Ledger:
        """Created and ended frame copies (see :mod:`pyvxlan.sim.ledger`)."""
        return self._ledger

    def stats(self) -> LabStats:
        u = self.underlay
        drops = {k: v for k, v in sorted(self._ledger.ended.items()) if k not in _NOT_DROPS}
        for k, v in self._stack_drops.items():
            drops[f"guest:{k}"] = v
        return LabStats(
            datagrams=u.datagrams,
            multicast_datagrams=u.multicast_datagrams,
            unicast_datagrams=u.datagrams - u.multicast_datagrams,
            flood_datagrams=u.flood_datagrams,
            deliveries=u.deliveries,
            bytes=u.bytes,
            learned=self.learned,
            migrated=self._counts["migrated"],
            expired=self._counts["expired"],
            missed=self._counts["missed"],
            drops=drops,
            delivered=self._ledger.ended["delivered"],
            proxy_answered=self._ledger.ended["proxy_answered"],
        )

    # --- faults and changes -----------------------------------------------------------------------

    def link_down(self, host: str) -> None:
        """Take ``host``'s underlay link down: every datagram to or from it is dropped."""
        self.underlay.set_link_up(self._host(host).address, False)
        self._log(EventKind.ACTION, "lab", f"link {host} down")

    def link_up(self, host: str) -> None:
        self.underlay.set_link_up(self._host(host).address, True)
        self._log(EventKind.ACTION, "lab", f"link {host} up")

    def set_link(self, host: str, profile: LinkProfile) -> None:
        """Give ``host``'s link another latency, jitter, loss, duplication or reordering."""
        self.underlay.set_link(self._host(host).address, profile)
        self._log(EventKind.ACTION, "lab", f"link {host} {profile}")

    def partition(self, *sides: Iterable[str]) -> None:
        """Split the hosts into ``sides`` (lists of host names); the rest form one more side."""
        named = [[self._host(h).address for h in side] for side in sides]
        self.underlay.partition(*named)
        self._log(EventKind.ACTION, "lab", "partition " + " | ".join(",".join(side) for side in map(list, sides)))

    def heal(self) -> None:
        """End a partition."""
        self.underlay.heal()
        self._log(EventKind.ACTION, "lab", "partition healed")

    async def vtep_down(self, host: str, vni: int) -> None:
        """``ip link set DEV down`` (leaves the group, flushes learned entries)."""
        self._log(EventKind.ACTION, "lab", f"{self._device(host, vni).label} down")
        await self.vtep(host, vni).down()

    async def vtep_up(self, host: str, vni: int) -> None:
        """``ip link set DEV up`` (joins the group again)."""
        self._log(EventKind.ACTION, "lab", f"{self._device(host, vni).label} up")
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
        self._log(EventKind.ACTION, "lab", f"move {name} from {old} to {host}")
        self._unplug(guest, old, spec.vni)
        guest.flush_arp()
        self._plug(guest, host, spec.vni)
        if self.topology.mode is FdbMode.CONTROLLER:
            await self._controller_attach(spec, host, old)
        guest.announce()

    # --- wiring -----------------------------------------------------------------------------------

    def _host(self, name: str) -> _Host:
        try:
            return self._hosts[name]
        except KeyError:
            raise KeyError(f"no host is called {name!r}") from None

    def _device(self, host: str, vni: int) -> _Device:
        try:
            return self._devices[(host, vni)]
        except KeyError:
            raise KeyError(f"host {host!r} has no vxlan device with VNI {vni}") from None

    def _plug(self, guest: SimGuest, host: str, vni: int) -> None:
        bridge = self._device(host, vni).bridge
        sched = self._sched
        bridge.attach(guest.name, guest.deliver)
        name = guest.name
        guest.attach(lambda frame: bridge.receive(name, frame, sched.time))
        self._guest_host[guest.name] = host
        self._find_lone(self._device(host, vni))
        self._fanout_cache.clear()

    def _unplug(self, guest: SimGuest, host: str, vni: int) -> None:
        dev = self._device(host, vni)
        dev.bridge.detach(guest.name)
        guest.attach(None)
        self._find_lone(dev)
        self._fanout_cache.clear()

    def _find_lone(self, dev: _Device) -> None:
        others = [port for port in dev.bridge.ports if port != dev.port_name]
        dev.lone = self._guests[others[0]] if len(others) == 1 and others[0] in self._guests else None

    def _vxlan_port(self, dev: _Device) -> Any:
        lab = self

        def transmit(frame: bytes) -> None:
            vtep = dev.vtep
            vtep.transmit(frame, lab._sched.time)
            lab._tx_outputs(dev, vtep.take_outputs())

        return transmit

    async def _start(self) -> None:
        for dev in self._devices.values():
            await dev.control.up()
        mode = self.topology.mode
        if mode is FdbMode.UNICAST:
            # One (checked) entry value per peer, shared by every device that lists it: N x N
            # entries would be built and checked N times over.
            entries: dict[str, FdbEntry] = {}
            for (host, vni), dev in self._devices.items():
                peers = self.topology.peers(host, vni)
                batch = [entries.get(p) or entries.setdefault(p, FdbEntry("00:00:00:00:00:00", p)) for p in peers]
                await dev.control.fdb_append_many(batch)
        elif mode is FdbMode.CONTROLLER and not self._on_miss:
            for spec in self.topology.guests:
                await self._controller_attach(spec, spec.host, None)

    async def _serve_misses(self) -> None:
        """The on-miss controller: answer each l2miss/l3miss by programming the VTEP that missed
        (a neighbour entry and a static FDB entry for the guest it asked about)."""
        while True:
            await self._miss_ready.wait()
            self._miss_ready = trio.Event()
            misses, self._misses = self._misses, []
            for dev, miss in misses:
                if isinstance(miss, L3Miss):
                    spec = self._directory.get((dev.vtep.config.vni, miss.ip))
                else:
                    spec = self._directory_mac.get(miss.mac)
                if spec is None or spec.vni != dev.vtep.config.vni:
                    continue  # nobody has that address: the miss stays unanswered
                where = self._guest_host[spec.name]
                if where == dev.host.name:
                    continue
                if not dev.vtep.fdb.get(spec.mac):
                    await dev.control.fdb_add(spec.mac, self._host(where).address)
                if all(n.ip != spec.address for n in await dev.control.neighbours()):
                    await dev.control.neigh_add(spec.address, spec.mac)

    async def _controller_attach(self, spec: GuestSpec, host: str, old: str | None) -> None:
        """What Docker's overlay driver does when an endpoint joins (peerAdd on every other node:
        a static FDB entry and a neighbour entry), and, after a move, on the new node (peerDelete)."""
        address = self._host(host).address
        for (h, vni), dev in self._devices.items():
            if vni != spec.vni:
                continue
            ctl = dev.control
            if h == host:
                if old is not None and dev.vtep.fdb.get(spec.mac):
                    await ctl.fdb_del(spec.mac)
                if old is not None and any(n.ip == spec.address for n in await ctl.neighbours()):
                    await ctl.neigh_del(spec.address)
                continue
            if self._on_miss:
                if dev.vtep.fdb.get(spec.mac):  # only VTEPs that asked before know the guest
                    await ctl.fdb_replace(spec.mac, address)
            elif old is None or h == old:
                await ctl.fdb_add(spec.mac, address)
                await ctl.neigh_add(spec.address, spec.mac)
            else:
                await ctl.fdb_replace(spec.mac, address)

    # --- carrying out the cores' outputs ----------------------------------------------------------

    def _actions(self, dev: _Device, actions: list[Action]) -> None:
        host = dev.host
        for act in actions:
            if type(act) is SendDatagram:
                self._ledger.created += 1  # datagrams a control call caused start their own copy
                src = act.src or host.address
                if self._underlay_writers:
                    self._capture_underlay(act, src, act.dst)
                self.underlay.send(src, act.dst, act.src_port, act.dst_port, act.ttl, act.payload, _outer(act))
            elif type(act) is DeliverFrame:
                self._ledger.created += 1
                dev.bridge.receive(dev.port_name, act.frame, self._sched.time)
            elif type(act) is JoinGroup:
                self.underlay.join(act.group, host.address)
                self._log(EventKind.JOINED, dev.label, act.group)
            elif type(act) is LeaveGroup:
                self.underlay.leave(act.group, host.address)
                self._log(EventKind.LEFT, dev.label, act.group)
        self._arm_timer(dev)

    def _receive_many(  # noqa: PLR0917 - the underlay's fields
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
        outcomes (deliver; learn and deliver) take the shortest path; anything else goes to
        :meth:`_receive_rest`. The sender, when it is in ``receivers`` (a group member), is
        skipped; returns the number of hosts delivered to.
        """
        now = self._sched.time
        key = (dst_port, payload[4:7]) if len(payload) >= 8 else None
        rows = self._fanout(receivers, key, self._by_address.get(src))
        # A broadcast or multicast frame from a unicast source (ARP, ND: what floods are made
        # of) is learned by each bridge with one store of a shared MAC object and a shared
        # (port, time) tuple, and reaches a bridge's lone guest straight.
        smac = payload[14:20] if len(payload) >= 22 else b"\x01"
        flood = not smac[0] & 1 and bool(payload[8] & 1) and smac != b"\0" * 6
        if flood:
            smac = self._macs.setdefault(smac, smac)
        notify = self._recording or self._listening
        inf = math.inf
        learned = 0
        rejected = 0  # flood copies the lone guest's NIC filter refused
        stamp_port = ""
        stamp = ("", now)
        seen: bytes | None = None  # the last frame whose destination MAC was read, and that MAC
        dmac = b""
        takers: AbstractSet[SimGuest] | None = None  # the guests accepting ``dmac``; None: all (broadcast)
        dismissed = 0  # ARP frames for another address that the lone guest took in and ignored
        arp = False
        tip = sip = b""
        for host, dev, receive, take, fdb, port, lone in rows:
            if outer is None:
                receive(payload, src, src_port, now)
            else:
                receive(payload, src, src_port, now, tos=outer[0], zero_checksum=outer[1])
            outs: list[Any] = take()
            if len(outs) == 1:
                out = outs[0]
                if type(out) is not DeliverFrame:
                    self._receive_rest(host, dev, outs, now, src=src, dst_port=dst_port)
                    continue
            elif len(outs) == 2 and type(outs[0]) is EntryLearned and type(outs[1]) is DeliverFrame:
                out = outs[1]
                learned += 1
                assert dev is not None
                if notify:
                    self._notify(dev, outs[0])
                if dev.timer_at == inf:
                    self._arm_timer(dev)
            else:
                self._receive_rest(host, dev, outs, now, src=src, dst_port=dst_port)
                continue
            # One datagram copy became one frame for the bridge.
            assert dev is not None
            if port is not stamp_port:
                # New bridge entries share one (port, time) tuple: in a flood to 10,000 hosts
                # that is one object instead of 10,000.
                stamp_port = port
                stamp = (port, now)
            if not flood:
                dev.bridge.receive(port, out.frame, now, stamp)
                continue
            fdb[smac] = stamp  # learn (or refresh) the source on the vxlan port, as Linux does
            if lone is None:
                dev.bridge.flood_out(port, out.frame)
                continue
            # The bridge's one other port is ``lone``: what SimGuest.deliver does, without the
            # call and without touching the guest unless its NIC accepts the frame.
            frame = out.frame
            if frame is not seen:
                seen = frame
                dmac = frame[0:6]
                takers = None if dmac == BROADCAST else self._nic_index.get(dmac, _NOBODY)
                arp = frame[12:14] == b"\x08\x06" and len(frame) >= 42
                tip = frame[38:42]
                sip = frame[28:32]
            if takers is not None and lone not in takers:
                rejected += 1  # the NIC's filter
            elif arp and tip != lone.ip_bytes and sip not in lone.arp_cache:
                # Someone else's ARP request: Linux would only refresh an entry for the sender.
                dismissed += 1
                lone.received += 1
            else:
                lone.deliver(frame)
        if rejected:
            self._ledger.ended["not_for_guest"] += rejected
        if dismissed:
            self._ledger.ended["delivered"] += dismissed
        self.learned += learned
        return len(rows)

    def _receive_rest(
        self, host: _Host, dev: _Device | None, outs: list[Any], now: float, *, src: str, dst_port: int
    ) -> None:
        """The core's outputs for one received datagram copy, when they are not the common shape."""
        if dev is None:
            self._ledger.ended["unknown_vni"] += 1
            if self._recording:
                self._log(EventKind.DROPPED, host.name, f"unknown_vni port {dst_port} from {src}", "unknown_vni")
            else:
                self._kinds[EventKind.DROPPED] += 1
            return
        units = 0
        for out in outs:
            if type(out) is DeliverFrame:
                units += 1
                dev.bridge.receive(dev.port_name, out.frame, now)
            else:
                if type(out) is Dropped:
                    units += 1
                self._other_output(dev, out)
        if units != 1:
            self._unbalanced(dev, units, "receive")

    def _count_listeners(self, delta: int) -> None:
        self._listening += delta

    def _fanout(self, receivers: list[Endpoint], key: tuple[int, bytes] | None, sender: _Host | None) -> list[_Fanout]:
        """Each receiver's row (see ``_Fanout``) for a datagram to ``key`` (port, VNI), without
        the ``sender``'s (multicast loop is off).

        A group's member list is a new list whenever membership changes, so the rows for the
        same list and key are cached, with each host's position: every later flood to the group
        skips the lookups. The cache is cleared when a guest is plugged, unplugged or tapped.
        """
        cached = self._fanout_cache.get(key)
        if cached is not None and cached[0] is receivers:
            rows, where = cached[1], cached[2]
        else:
            hosts = self._by_address
            rows = []
            for ep in receivers:
                host = hosts[ep[1]]
                dev = host.by_vni.get(key) if key is not None else None
                if dev is None:
                    rows.append((host, None, _ignore, _no_outputs, {}, "", None))
                else:
                    lone = dev.lone if dev.lone is not None and not dev.lone.tapped else None
                    vtep = dev.vtep
                    rows.append((host, dev, vtep.receive, vtep.take_outputs, dev.bridge.learned, dev.port_name, lone))
            if len(rows) < FANOUT_CACHE_MIN:  # unicast, small groups: not worth a cache entry
                return [row for row in rows if row[0] is not sender]
            where = {row[0]: i for i, row in enumerate(rows)}
            self._fanout_cache[key] = (receivers, rows, where)
        skip = where.get(sender) if sender is not None else None
        return rows if skip is None else rows[:skip] + rows[skip + 1 :]

    def _tx_outputs(self, dev: _Device, outs: list[Any]) -> None:
        # One frame copy from the bridge: it becomes a datagram per remote, drops, or (proxy ARP)
        # a reply frame going back into the bridge.
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
                self._other_output(dev, out)
        if first is not None:
            self._send_run(host, first, dsts)
        if units:
            self._ledger.created += units - 1
        elif replies:
            self._ledger.ended["proxy_answered"] += 1
        else:
            self._unbalanced(dev, 0, "transmit")
        for frame in replies:
            self._ledger.created += 1
            dev.bridge.receive(dev.port_name, frame, self._sched.time)

    def _send_run(self, host: _Host, first: SendDatagram, dsts: list[str]) -> None:
        src = first.src or host.address
        if self._underlay_writers:
            for dst in dsts:
                self._capture_underlay(first, src, dst)
        if len(dsts) == 1:
            self.underlay.send(src, dsts[0], first.src_port, first.dst_port, first.ttl, first.payload, _outer(first))
        else:
            self.underlay.send_many(src, dsts, first.src_port, first.dst_port, first.ttl, first.payload, _outer(first))

    def _other_output(self, dev: _Device, out: Any) -> None:
        kind = type(out)
        if kind is Dropped:
            reason = out.reason.value
            self._ledger.ended[reason] += 1
            self._counts["dropped"] += 1
            if self._recording:
                self._log(EventKind.DROPPED, dev.label, f"{reason} {out.direction.value} {out.detail}", reason)
            else:
                self._kinds[EventKind.DROPPED] += 1
            self._notify(dev, out)
        elif kind is EntryMigrated:
            self._counts["migrated"] += 1
            self._notify(dev, out)
        elif kind is EntryExpired:
            self._counts["expired"] += 1
            self._notify(dev, out)
        elif kind is L2Miss or kind is L3Miss:
            self._counts["missed"] += 1
            self._notify(dev, out)
            if self._on_miss:
                self._misses.append((dev, out))
                self._sched.wake(self._miss_ready)
        elif kind is JoinGroup or kind is LeaveGroup:
            self._actions(dev, [out])
        elif kind is EntryLearned:
            self.learned += 1
            self._notify(dev, out)
            if dev.timer_at == math.inf:
                self._arm_timer(dev)

    def _notify(self, dev: _Device, note: Notification) -> None:
        if self._recording and type(note) is not Dropped:
            kind = type(note)
            if kind is EntryLearned:
                assert isinstance(note, EntryLearned)
                self._log(EventKind.LEARNED, dev.label, f"{note.mac} dst {note.dst}")
            elif kind is EntryMigrated:
                assert isinstance(note, EntryMigrated)
                self._log(EventKind.MIGRATED, dev.label, f"{note.mac} from {note.old_dst} to {note.new_dst}")
            elif kind is EntryExpired:
                assert isinstance(note, EntryExpired)
                self._log(EventKind.EXPIRED, dev.label, f"{note.mac} dst {note.dst}")
            elif kind is L2Miss:
                assert isinstance(note, L2Miss)
                self._log(EventKind.MISSED, dev.label, f"l2miss {note.mac}")
            elif kind is L3Miss:
                assert isinstance(note, L3Miss)
                self._log(EventKind.MISSED, dev.label, f"l3miss {note.ip}")
        if dev.control.listeners:
            dev.control.dispatch((note,))

    def _unbalanced(self, dev: _Device, units: int, what: str) -> None:
        if units == 0:
            self._ledger.ended["vanished"] += 1
            self._log(EventKind.DROPPED, dev.label, f"vanished: the core's {what} gave no output", "vanished")
        else:
            self._ledger.created += units - 1

    # --- timers -----------------------------------------------------------------------------------

    def _arm_timer(self, dev: _Device) -> None:
        when = dev.vtep.next_timer()
        if when is not None and when < dev.timer_at:
            dev.timer_at = when
            # Not before now: a control call can move an expiry into the past (set_ageing).
            self._sched.call_at(max(when, self._sched.now), dev.host.source, self._fire_timer, dev, when)

    def _fire_timer(self, dev: _Device, when: float) -> None:
        if dev.timer_at != when:
            return  # superseded by an earlier timer
        dev.timer_at = math.inf
        vtep = dev.vtep
        vtep.handle_timer(self._sched.time)
        for out in vtep.take_outputs():
            self._other_output(dev, out)
        self._arm_timer(dev)

    # --- drops and captures -------------------------------------------------------------------------

    @property
    def event_counts(self) -> dict[EventKind, int]:
        """How many events of each kind happened since the lab opened, kept in ``events`` or not."""
        counts = dict(self._kinds)
        # Counted where they happen: the hot paths make no event object when nothing records them.
        counts[EventKind.LEARNED] = self.learned
        counts[EventKind.MIGRATED] = self._counts["migrated"]
        counts[EventKind.EXPIRED] = self._counts["expired"]
        counts[EventKind.MISSED] = self._counts["missed"]
        return {kind: counts[kind] for kind in EventKind if counts.get(kind)}

    def _log(self, kind: EventKind, where: str, detail: str, reason: str | None = None) -> None:
        self._kinds[kind] += 1
        if self._recording:
            event = LabEvent(self._sched.now, kind, where, detail, reason)
            if self._keep:
                self.events.append(event)
            if self._stream is not None:
                self._stream.write(f"{event}\n")

    def _underlay_drop(self, reason: str, detail: str, copies: int) -> None:
        self._ledger.ended[reason] += copies
        self._log(EventKind.DROPPED, "underlay", f"{reason} {detail}" + (f" x{copies}" if copies != 1 else ""), reason)

    def _bridge_drop_for(self, label: str) -> Callable[[str, bytes], None]:
        def drop(reason: str, frame: bytes) -> None:
            self._ledger.ended[reason] += 1
            self._log(EventKind.DROPPED, label, f"{reason} {frame[0:6].hex(':')}", reason)

        return drop

    def _guest_drop(self, guest: str, reason: str) -> None:
        self._stack_drops[reason] += 1
        self._log(EventKind.DROPPED, guest, reason, reason)

    def _capture_underlay(self, act: SendDatagram, src: str, dst: str) -> None:
        """Write the datagram as Linux's ``udp_tunnel_xmit_skb`` puts it on the wire, when it
        leaves ``src`` (so also when the underlay then drops it): the core's TTL, TOS and UDP
        checksum choice, DF clear (``df unset``, the default), an IPv4 ID from the host's
        ``__ip_select_ident`` counter for the destination."""
        payload = act.payload
        src_info, dst_info = ip_info(src), ip_info(dst)
        ip_id = self._idents.take(src_info.packed, dst_info.packed, 17) if src_info.version == 4 else 0
        frame = encapsulate(
            payload[8:],
            header=VxlanHeader.decode(payload[:8]),
            src=src,
            dst=dst,
            src_port=act.src_port,
            dst_port=act.dst_port,
            ttl=act.ttl,
            tos=act.tos,
            df=False,
            ip_id=ip_id,
            udp_checksum=not act.zero_checksum,
        )
        for writer in self._underlay_writers:
            writer.write(frame, self._sched.time)

    def _capture_guest(self, guest: str, frame: bytes, outgoing: bool) -> None:
        for writer in self._guest_captures.get(guest, ()):
            writer.write(frame, self._sched.time)

    def _close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        if self._stream is not None:
            self._stream.close()  # raises if the last lines could not be written: none is lost quietly
            self._stream = None


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
    ARP for a guest goes unanswered; the guest's retry a second later is answered).
    """
    _check_clock()
    lab = SimLab(
        topology, seed=seed, keep_events=keep_events, events_file=events_file, link=link, controller=controller
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lab._sched.run)
            if lab._on_miss:
                nursery.start_soon(lab._serve_misses)
            await lab._start()
            yield lab
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The scheduler task never fails on its own, so a group holds the body's one exception:
        # raise that, so that ``pytest.raises(KeyError)`` around a lab block works as it reads.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        lab._close()
