"""Labs in network namespaces: a :class:`~pyvxlan.lab.topology.Topology` built for real.

:func:`open_lab` builds the topology from one plan (:mod:`pyvxlan.kernel.plan`, the same steps
:func:`lab_commands` prints), yields the running :class:`KernelLab` and removes every namespace it
made. Every name carries the lab's prefix (``pvx`` and four hex digits), so labs run side by side,
and the lab holds its prefix's lock while it runs; ``pyvxlan lab cleanup``
(:mod:`pyvxlan.kernel.cleanup`) removes what a crashed run left. Guests are
:class:`~pyvxlan.kernel.guest.KernelGuest`.

>>> from pyvxlan.lab.topology import classic_demo
>>> script = lab_commands(classic_demo(), prefix="pvx0001")  # what open_lab does, as commands
>>> script[0], script[-1]
('ip netns add pvx0001-underlay', 'ip netns del pvx0001-underlay')
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import trio

from pyvxlan.core.entries import FdbEntry, Neighbour
from pyvxlan.errors import BackendError, ConfigError
from pyvxlan.kernel import frr
from pyvxlan.kernel import plan as lab_plan
from pyvxlan.kernel.cleanup import (
    LAB_PREFIX,
    LOCK_DIR,
    CleanupReport,
    LabLock,
    check_prefix,
    cleanup,
    lab_namespaces,
    lab_owner,
    new_prefix,
)
from pyvxlan.kernel.extra import HAVE_NETLINK, require_kernel_extra
from pyvxlan.kernel.guest import KernelGuest
from pyvxlan.kernel.plan import (
    UNDERLAY,
    UNDERLAY_BRIDGE,
    BuildContext,
    LabNames,
    add_bridge,
    lab_commands,
    link_up,
    set_master,
)
from pyvxlan.lab import lab_key_error
from pyvxlan.lab.controller import apply_op, attach_ops
from pyvxlan.lab.iproute2 import UPLINK
from pyvxlan.lab.topology import FdbMode, Topology
from pyvxlan.wire.addr import ZERO_MAC, format_mac, ip_text
from pyvxlan.wire.pcap import PcapWriter

if TYPE_CHECKING or HAVE_NETLINK:
    from pyvxlan.kernel import messages as nlm
    from pyvxlan.kernel import netlink as nl
    from pyvxlan.kernel.vtep import KernelVtep

__all__ = [
    "HAVE_NETLINK",
    "LAB_PREFIX",
    "LOCK_DIR",
    "UPLINK",
    "CleanupReport",
    "KernelGuest",
    "KernelLab",
    "LabLock",
    "EVPN_TIMEOUT",
    "cleanup",
    "lab_commands",
    "lab_namespaces",
    "lab_owner",
    "new_prefix",
    "open_lab",
    "require_kernel_extra",
]


#: How long :meth:`KernelLab.evpn_settled` waits by default (FRR needs a second or two to start).
EVPN_TIMEOUT: Final = 30.0
#: How long a move in evpn mode waits for zebra to take the moved MAC as local (normally a few ms).
_EVPN_SETTLE: Final = 2.0


class KernelLab:
    """A running lab in namespaces (:func:`open_lab`). Implements :class:`~pyvxlan.lab.Lab`
    (the simulator's extras, :class:`~pyvxlan.lab.SimulatedLab`, it has not)."""

    def __init__(
        self, topology: Topology, prefix: str, names: LabNames, nursery: trio.Nursery, ctx: BuildContext
    ) -> None:
        self.topology = topology
        self.prefix = prefix
        self._names = names
        self._nursery = nursery
        self._ctx = ctx
        self._start = trio.current_time()
        self._guest_host = {g.name: g.host for g in topology.guests}
        self._vteps: dict[tuple[str, int], KernelVtep] = {}
        self._guests: dict[str, KernelGuest] = {}
        self._captures: list[_Capture] = []

    @property
    def namespaces(self) -> list[str]:
        """The lab's namespaces that exist now."""
        return lab_namespaces(self.prefix)

    def netns(self, name: str) -> str:
        """The namespace of host or guest ``name`` (``underlay`` for the underlay)."""
        return self._names.underlay if name == UNDERLAY else self._names.ns(name)

    def vtep(self, host: str, vni: int) -> KernelVtep:
        """The vxlan device with ``vni`` on ``host``; :class:`~pyvxlan.errors.LabKeyError` when
        there is none."""
        if (host, vni) not in self._vteps:
            self.topology.host(host).device(vni)  # the LabKeyError naming the missing host or device
        return self._vteps[(host, vni)]

    def vteps(self) -> dict[tuple[str, int], KernelVtep]:
        """Every VTEP, keyed by (host, VNI)."""
        return dict(self._vteps)

    def guest(self, name: str) -> KernelGuest:
        """The guest called ``name``; :class:`~pyvxlan.errors.LabKeyError` when there is none."""
        guest = self._guests.get(name)
        if guest is None:
            raise lab_key_error("guest", name, self._guests)
        return guest

    def guests(self) -> list[KernelGuest]:
        return list(self._guests.values())

    def capture(self, path: str, *, guest: str | None = None) -> None:
        """Record every frame crossing the underlay bridge (each once, as it enters the bridge),
        or with ``guest`` every frame on that guest's ``eth0``, from now until the lab closes,
        into a pcap at ``path``."""
        if guest is not None:
            ns, ifname = self.guest(guest).netns, UPLINK
        else:
            ns, ifname = self._names.underlay, None
        # Opened here, not in the task, so that nothing sent after this call is missed; opening a
        # socket in a namespace takes a few milliseconds.
        raw = nl.open_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        if ifname is not None:
            raw.bind((ifname, 0))
        raw.setblocking(False)
        cap = _Capture(raw, PcapWriter(path), skip_outgoing=guest is None)
        self._captures.append(cap)
        self._nursery.start_soon(cap.run)

    # --- time, as the simulated lab offers it (real time here) ---------------------------------

    @property
    def now(self) -> float:
        """Seconds since the lab opened."""
        return trio.current_time() - self._start

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (real time: the kernel's timers run on their own)."""
        await trio.sleep(max(0.0, seconds))

    # --- reading state ---------------------------------------------------------------------------

    def fdb(self, host: str, vni: int) -> list[FdbEntry]:
        """``bridge fdb show dev DEV`` of a device, read synchronously as the simulated lab's.

        One short netlink dump made inline (well under a millisecond for a lab's tables); in
        async code ``await lab.vtep(host, vni).fdb()`` does the same from a worker thread.
        """
        return self.vtep(host, vni).read_fdb(trio.current_time())

    def fdb_lines(self, host: str, vni: int) -> list[str]:
        """The same in ``bridge fdb show`` form."""
        vtep = self.vtep(host, vni)
        return [e.bridge_line(vtep.name) for e in self.fdb(host, vni)]

    def bridge_neighbours(self, host: str, vni: int) -> list[Neighbour]:
        """The neighbour entries a control plane installed on the bridge of ``host``'s device for
        ``vni`` (externally learned: FRR's zebra in evpn mode, where the bridge answers ARP/ND
        from them), read inline as :meth:`fdb`. The kernel's own ARP cache entries are left out."""
        ns = self._names.ns(host)
        bridge = self.topology.host(host).device(vni).bridge
        index = self._ctx.idx(ns, bridge)
        raw = self._ctx.sock(ns).dump(0, index)
        return [
            Neighbour(ip_text(m.dst), format_mac(m.lladdr))
            for m in nlm.parse_neigh_messages(raw, index)
            if m.flags & nlm.NTF_EXT_LEARNED and m.dst is not None and m.lladdr is not None
        ]

    async def neighbours(self, host: str, vni: int) -> list[Neighbour]:
        """The neighbour entries ``host`` answers ARP/ND from for ``vni``: the vxlan device's (its
        proxy), or in evpn mode the bridge's (:meth:`bridge_neighbours`: zebra's, answered by the
        bridge's ARP/ND suppression; the device has no proxy there)."""
        if self.topology.mode is FdbMode.EVPN:
            return self.bridge_neighbours(host, vni)
        return await self.vtep(host, vni).neighbours()

    def evpn_tables(self, host: str, vni: int) -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[str]]:
        """What EVPN programmed on ``host``'s device for ``vni``, as read now: remote MACs
        ``(mac, vtep)``, the bridge's neighbour entries ``(ip, mac)`` and the flood list (the
        all-zeros entries' VTEPs)."""
        entries = self.fdb(host, vni)
        return (
            {(e.mac, e.dst) for e in entries if e.mac != ZERO_MAC and e.dst is not None},
            {(n.ip, n.mac) for n in self.bridge_neighbours(host, vni)},
            {e.dst for e in entries if e.mac == ZERO_MAC and e.dst is not None},
        )

    def evpn_expected(self, host: str, vni: int) -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[str]]:
        """:meth:`evpn_tables` once EVPN has converged with every guest where it is now."""
        topo = self.topology
        remote = [g for g in topo.guests if g.vni == vni and self._guest_host[g.name] != host]
        return (
            {(g.mac, topo.host(self._guest_host[g.name]).address) for g in remote},
            {(g.address, g.mac) for g in remote},
            set(topo.peers(host, vni)),
        )

    async def evpn_settled(self, timeout: float = EVPN_TIMEOUT) -> float:
        """Wait until every device's :meth:`evpn_tables` are :meth:`evpn_expected` (polled every
        10 ms) and return the seconds that took; :class:`~pyvxlan.errors.BackendError` naming the
        first device still wrong after ``timeout`` seconds. :func:`open_lab` waits for this in
        evpn mode, so a lab is ready when FRR has distributed every route."""
        start = trio.current_time()
        with trio.move_on_after(timeout):
            while True:
                wrong = [k for k in self._vteps if self.evpn_tables(*k) != self.evpn_expected(*k)]
                if not wrong:
                    return trio.current_time() - start
                await trio.sleep(0.01)
        host, vni = wrong[0]
        got, want = self.evpn_tables(host, vni), self.evpn_expected(host, vni)
        raise BackendError(0, "evpn", f"after {timeout:g} s FRR's tables on {host} VNI {vni} are {got}, not {want}")

    def guest_host(self, name: str) -> str:
        """The host a guest is attached to now."""
        self.guest(name)
        return self._guest_host[name]

    # --- faults and changes ----------------------------------------------------------------------

    def link_down(self, host: str) -> None:
        """Take ``host``'s underlay link down (its port on the underlay bridge)."""
        self._set_port(host, False)

    def link_up(self, host: str) -> None:
        """Bring ``host``'s underlay link back up."""
        self._set_port(host, True)

    def partition(self, *sides: Iterable[str]) -> None:
        """Split the hosts into ``sides`` (lists of host names); the rest form one more side.

        Each side's underlay ports move to a bridge of their own (``_ul1``, ``_ul2``, ...), so
        nothing, multicast included, crosses between sides; :meth:`heal` moves them back.
        """
        named = [[self.topology.host(h).name for h in side] for side in sides]
        ctx, ul = self._ctx, self._names.underlay
        self.heal()
        for k, side in enumerate(named, 1):
            bridge = f"{UNDERLAY_BRIDGE}{k}"
            if (ul, bridge) not in ctx.index:
                add_bridge(ctx, ul, bridge, False, None)
                link_up(ctx, ul, bridge)
            for host in side:
                set_master(ctx, ul, host, bridge)

    def heal(self) -> None:
        """End a partition: every host's port back on the one underlay bridge."""
        ctx, ul = self._ctx, self._names.underlay
        for host in self.topology.hosts:
            set_master(ctx, ul, host.name, UNDERLAY_BRIDGE)

    def _set_port(self, host: str, up: bool) -> None:
        self.topology.host(host)
        ul = self._names.underlay
        # One netlink request made inline, as the simulated lab's method is synchronous.
        self._ctx.ipr(ul).set_state(self._ctx.idx(ul, host), up)

    async def vtep_down(self, host: str, vni: int) -> None:
        """``ip link set DEV down`` (leaves the group, flushes learned entries)."""
        await self.vtep(host, vni).down()

    async def vtep_up(self, host: str, vni: int) -> None:
        """``ip link set DEV up`` (joins the group again)."""
        await self.vtep(host, vni).up()

    async def move_guest(self, name: str, host: str) -> None:
        """Move a guest to ``host``'s bridge (a live migration): its veth moves to the other host's
        namespace, the guest keeps its MAC and IP and sends a gratuitous ARP; in controller mode
        every VTEP is reprogrammed first, as the simulated lab's controller does. In evpn mode FRR
        does the rest: the new host's bridge learns the MAC from the announcement, zebra
        advertises it with a higher mobility sequence number, and every other host moves it.

        The guest's link goes down while its veth moves, and Linux forgets its ARP/ND cache when
        the carrier change is processed (linkwatch, asynchronously: sometimes before the next
        ping, sometimes not). The move flushes the cache itself, so a move is the same every time
        and the same as in the simulated lab.
        """
        guest = self.guest(name)
        spec = self.topology.guest(name)
        old = self._guest_host[name]
        bridge = self.topology.host(host).device(spec.vni).bridge
        if old == host:
            return
        await trio.to_thread.run_sync(self._move_veth, name, old, host, bridge)
        self._guest_host[name] = host
        if self.topology.mode is FdbMode.CONTROLLER:
            # What the controller reprograms after a move, as in the simulated lab.
            for op in attach_ops(self.topology, spec, host, old):
                await apply_op(self.vtep(op.host, op.vni), op)
        await guest.announce()
        if self.topology.mode is FdbMode.EVPN:
            await self._evpn_arrived(guest, spec.mac, spec.address, host, spec.vni)

    async def _evpn_arrived(self, guest: KernelGuest, mac: str, ip: str, host: str, vni: int) -> None:
        # The announcement moved the MAC to the guest's port (the bridge takes over an externally
        # learned entry), and zebra advertises it with a higher sequence number. Two things FRR
        # 8.4 leaves behind on the new host, which the simulated lab's machine does not:
        # - the old remote neighbour entry (NOARP, so the kernel ignored the guest's gratuitous
        #   ARP): zebra removes it once the MAC is local, and a second announcement then teaches
        #   the bridge the IP, which zebra advertises with the MAC (as a VM that ARPs again);
        # - the vxlan device's remote FDB entry, unused now the bridge forwards to the local port.
        with trio.move_on_after(_EVPN_SETTLE):
            while any(n.ip == ip for n in self.bridge_neighbours(host, vni)):
                await trio.sleep(0.01)
        await guest.announce()
        vtep = self.vtep(host, vni)
        if any(e.mac == mac for e in await vtep.fdb()):
            await vtep.fdb_del(mac)

    def _move_veth(self, name: str, old: str, host: str, bridge: str) -> None:
        ctx, gif = self._ctx, self._names.guest_if[name]
        old_ns, new_ns = self._names.ns(old), self._names.ns(host)
        if ctx.ipr(new_ns).index(gif) is not None:
            raise ConfigError("host", f"host {host} already has an interface named {gif}")
        ctx.ipr(old_ns).set_netns(ctx.idx(old_ns, gif), new_ns)
        del ctx.index[(old_ns, gif)]
        set_master(ctx, new_ns, gif, bridge)
        link_up(ctx, new_ns, gif)
        gns = self._names.ns(name)
        ctx.ipr(gns).flush_neighbours(ctx.idx(gns, UPLINK))

    async def fdb_tables(self) -> dict[tuple[str, int], list[FdbEntry]]:
        """Every VTEP's FDB (``bridge fdb show``), keyed by (host, VNI)."""
        return {key: await vtep.fdb() for key, vtep in self._vteps.items()}

    async def _attach(self) -> None:
        for host in self.topology.hosts:
            for dev in host.devices:
                name = self.topology.vtep_config(host.name, dev.vni).name
                self._vteps[(host.name, dev.vni)] = await KernelVtep.attach(name, netns=self._names.ns(host.name))
        for guest in self.topology.guests:
            self._guests[guest.name] = KernelGuest(guest, self._names.ns(guest.name))

    async def _announce_guests(self) -> None:
        # Every guest attaches with a gratuitous ARP (as a VM that boots), so its host's bridge
        # learns the MAC and the IP and FRR advertises both before the first ping, as the
        # simulated lab's EVPN machines do when guests attach.
        for guest in self._guests.values():
            await guest.announce()

    async def _close(self) -> None:
        for cap in self._captures:
            cap.finish()
        for vtep in self._vteps.values():
            await vtep.aclose()


class _Capture:
    _OUTGOING: Final = 4  # PACKET_OUTGOING: the copy leaving a port; the incoming one is kept

    def __init__(self, sock: socket.socket, writer: PcapWriter, *, skip_outgoing: bool) -> None:
        self.sock = sock
        self.writer = writer
        self.skip_outgoing = skip_outgoing
        self._done = False

    async def run(self) -> None:
        try:
            while not self._done:
                await trio.lowlevel.wait_readable(self.sock)
                self._drain()
        except trio.ClosedResourceError:
            pass  # finish() closed the socket: the lab is closing
        finally:
            self.finish()

    def _drain(self) -> None:
        while True:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, OSError):
                return
            # On the underlay, a frame is seen entering one port and leaving another (and
            # multicast once more on the bridge device): keep the copy entering the bridge.
            if not self.skip_outgoing or (addr[2] != self._OUTGOING and not addr[0].startswith(UNDERLAY_BRIDGE)):
                self.writer.write(frame, time.time())

    def finish(self) -> None:
        if not self._done:
            self._done = True
            self._drain()
            self.writer.close()
            trio.lowlevel.notify_closing(self.sock)  # wakes run() if it waits on the socket
            self.sock.close()


@asynccontextmanager
async def open_lab(topology: Topology, *, prefix: str | None = None) -> AsyncIterator[KernelLab]:
    """Build ``topology`` in network namespaces, yield the running :class:`KernelLab`, and
    remove every namespace (and so every interface) it made, on exit, on error and on
    cancellation, Ctrl-C during set-up included.

    ``prefix`` (``pvx`` and four hex digits) names the lab; by default a random one.
    """
    if not isinstance(topology, Topology):
        raise ConfigError("topology", f"must be a Topology, got {type(topology).__name__}")
    require_kernel_extra()
    nl.require_privilege("build a lab in network namespaces")
    prefix = check_prefix(prefix) if prefix is not None else new_prefix()
    steps, names = lab_plan.plan(topology, prefix)
    if topology.mode is FdbMode.EVPN:
        frr.require_frr()
    lock = LabLock.acquire(prefix)
    if lock is None:
        pid = lab_owner(prefix)
        raise ConfigError("prefix", f"a lab with prefix {prefix} is running (pid {pid or 'unknown'})")
    if nl.netns_exists(names.underlay):
        lock.release()
        raise ConfigError(
            "prefix", f"a lab with prefix {prefix} exists already (pyvxlan lab cleanup --prefix {prefix})"
        )
    ctx = BuildContext()
    lab: KernelLab | None = None
    try:
        for step in steps:
            await trio.to_thread.run_sync(lab_plan.run_step, step, ctx)
        try:
            async with trio.open_nursery() as nursery:  # the captures' tasks
                lab = KernelLab(topology, prefix, names, nursery, ctx)
                await lab._attach()
                if topology.mode is FdbMode.EVPN:
                    await lab._announce_guests()
                    await lab.evpn_settled()
                try:
                    yield lab
                finally:
                    with trio.CancelScope(shield=True):
                        await lab._close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The caller's own error, not a group the caller never asked for (the nursery
            # only holds captures, which end quietly).
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    finally:
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lab_plan.teardown, ctx, prefix)
        finally:
            # Let go only once the namespaces are gone: until then the lab is still ours.
            lock.release()
