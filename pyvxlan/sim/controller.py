"""The simulator's controller hooks: :mod:`pyvxlan.lab.controller`'s operations, carried out on the
simulated devices.

The policy (which entries a mode implies, what a move changes) is the lab layer's, shared with the
kernel lab and the demo's printed commands; here it is only applied, through each device's
:class:`~pyvxlan.VtepControl`. Two things are the simulator's own:

- head-end replication lists go to a device as one ``fdb_append_many`` batch, with one entry value
  per peer shared by every device (a lab of N hosts would otherwise build and check N x N entries);
- the on-miss controller (``controller="on-miss"``: flannel's first design, Docker's overlay driver
  outside swarm mode) answers each l2miss/l3miss a VTEP reports with the two entries that reach the
  guest it asked about, and on a move only corrects the VTEPs that asked before.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from pyvxlan.core.entries import FdbEntry
from pyvxlan.core.events import L2Miss, L3Miss
from pyvxlan.lab.controller import FdbOp, FloodOp, NeighbourOp, OpKind, apply_op, attach_ops, initial_ops, peer_ops
from pyvxlan.lab.topology import GuestSpec, Topology
from pyvxlan.sim.device import SimDevice
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.wire.addr import ZERO_MAC

__all__ = ["SimController"]


class SimController:
    """Programs a lab's devices as its topology's mode says.

    ``device(host, vni)`` finds a device; ``where(guest)`` is the host a guest is on now.
    """

    def __init__(
        self,
        topology: Topology,
        sched: Scheduler,
        *,
        on_miss: bool,
        device: Callable[[str, int], SimDevice],
        where: Callable[[str], str],
    ) -> None:
        self.topology = topology
        self.on_miss = on_miss
        self._sched = sched
        self._device = device
        self._where = where
        self._misses: list[tuple[SimDevice, L2Miss | L3Miss]] = []
        self._miss_ready = trio.Event()
        self._by_ip = {(g.vni, g.address): g for g in topology.guests}
        self._by_mac = {g.mac: g for g in topology.guests}

    async def program(self) -> None:
        """What the mode programs once every device is up (nothing for the on-miss controller)."""
        if self.on_miss:
            return
        # Head-end replication: each peer's entry one checked value shared by every device (a lab
        # of N hosts lists N x (N - 1) destinations), each device's list one batch.
        shared: dict[str, FdbEntry] = {}
        for op in initial_ops(self.topology):
            control = self._device(op.host, op.vni).control
            if type(op) is FloodOp:
                batch: list[FdbEntry] = []
                for dst in op.dsts:
                    entry = shared.get(dst)
                    if entry is None:
                        entry = shared[dst] = FdbEntry(ZERO_MAC, dst)
                    batch.append(entry)
                await control.fdb_append_many(batch)
            else:
                await apply_op(control, op)

    async def attach(self, guest: GuestSpec, host: str, old: str | None) -> None:
        """Reprogram the VTEPs after ``guest`` moved from ``old`` to ``host``."""
        for op in attach_ops(self.topology, guest, host, old):
            dev = self._device(op.host, op.vni)
            if self.on_miss and op.kind is not OpKind.DELETE:
                # Only the VTEPs that asked before know the guest: they get its new place.
                if isinstance(op, FdbOp) and dev.vtep.fdb.get(op.mac):
                    await dev.control.fdb_replace(op.mac, op.dst)
                continue
            await apply_op(dev.control, op)

    def missed(self, dev: SimDevice, miss: L2Miss | L3Miss) -> None:
        """A VTEP reported a miss (called from a scheduler handler): answered by :meth:`serve`."""
        self._misses.append((dev, miss))
        self._sched.wake(self._miss_ready)

    async def serve(self) -> None:
        """The on-miss controller's task: answer each miss by programming the VTEP that missed
        (a static FDB entry and a neighbour entry for the guest it asked about)."""
        while True:
            await self._miss_ready.wait()
            self._miss_ready = trio.Event()
            misses, self._misses = self._misses, []
            for dev, miss in misses:
                vni = dev.vtep.config.vni
                spec = self._by_ip.get((vni, miss.ip)) if isinstance(miss, L3Miss) else self._by_mac.get(miss.mac)
                if spec is None or spec.vni != vni:
                    continue  # nobody has that address: the miss stays unanswered
                where = self._where(spec.name)
                if where == dev.host.name:
                    continue
                for op in peer_ops(self.topology, spec, dev.host.name, where):
                    if not await self._has(dev, op):
                        await apply_op(dev.control, op)

    @staticmethod
    async def _has(dev: SimDevice, op: FdbOp | NeighbourOp) -> bool:
        if isinstance(op, NeighbourOp):
            return any(n.ip == op.ip for n in await dev.control.neighbours())
        return bool(dev.vtep.fdb.get(op.mac))
