"""How a topology's forwarding tables get filled: the FDB and neighbour entries its mode implies.

One policy for every lab: the simulator, the kernel lab and the commands ``pyvxlan demo`` prints
all carry out the operations this module yields, so they program the same entries in the same
order. Operations are values (:class:`FdbOp`, :class:`NeighbourOp`, :class:`FloodOp`); a driver
turns each into a ``VtepControl`` call or a netlink request, and its ``command`` (``commands``)
into the ``bridge``/``ip`` line(s) a reader would type.

- ``MULTICAST`` (flood-and-learn): nothing; the group does the flooding and learning the rest.
- ``UNICAST`` (head-end replication): on every device, one all-zeros entry per peer VTEP of its
  VNI (``bridge fdb append 00:00:00:00:00:00 dst PEER``), as one :class:`FloodOp` per device.
- ``CONTROLLER`` (Docker's overlay driver, an EVPN control plane): when a guest attaches, every
  other VTEP of its VNI gets a static entry (the guest's MAC behind its host) and a neighbour entry
  (its IP to its MAC) for proxy ARP/ND; :func:`attach_ops` with ``old`` says what a move changes.

>>> from pyvxlan.lab.topology import FdbMode, classic_demo
>>> [op.commands("vxlan10") for op in initial_ops(classic_demo(3, FdbMode.UNICAST)) if op.host == "host1"]
[['bridge fdb append 00:00:00:00:00:00 dev vxlan10 dst 198.51.100.2', 'bridge fdb append 00:00:00:00:00:00 dev vxlan10 dst 198.51.100.3']]
>>> [op.command("vxlan10") for op in initial_ops(classic_demo(2, FdbMode.CONTROLLER)) if op.host == "host1"]
['bridge fdb add 02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2', 'ip neigh add 203.0.113.2 lladdr 02:00:00:00:00:02 dev vxlan10 nud permanent']
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from pyvxlan.core.control import VtepControl
from pyvxlan.core.entries import FdbEntry
from pyvxlan.lab.topology import FdbMode, GuestSpec, Host, Topology
from pyvxlan.wire.addr import ZERO_MAC

__all__ = ["FdbOp", "FloodOp", "NeighbourOp", "Op", "OpKind", "apply_op", "attach_ops", "initial_ops", "peer_ops"]


class OpKind(enum.Enum):
    """What an operation does to an entry (the ``bridge fdb``/``ip neigh`` verb)."""

    ADD = "add"  # a new entry (an error where one exists)
    APPEND = "append"  # one more destination for the MAC (head-end replication's list)
    REPLACE = "replace"  # the MAC's entry now points at ``dst`` (made if missing)
    DELETE = "del"  # the entry goes; a driver skips one that is not there


@dataclass(frozen=True, slots=True)
class FdbOp:
    """``bridge fdb KIND MAC dev DEV dst DST`` on ``host``'s device for ``vni``.

    Entries are static (``permanent``, as ``bridge fdb add`` makes them). A :attr:`OpKind.DELETE`
    has no ``dst``: every entry of the MAC goes.
    """

    host: str
    vni: int
    mac: str
    dst: str | None
    kind: OpKind = OpKind.ADD

    def command(self, device: str, *, netns: str | None = None) -> str:
        """The ``bridge`` command for this operation on ``device`` (the host's vxlan device), in
        namespace ``netns`` when given."""
        tool = "bridge" if netns is None else f"bridge -n {netns}"
        line = f"{tool} fdb {self.kind.value} {self.mac} dev {device}"
        return line if self.dst is None else f"{line} dst {self.dst}"


@dataclass(frozen=True, slots=True)
class NeighbourOp:
    """``ip neigh KIND IP lladdr MAC dev DEV nud permanent`` on ``host``'s device for ``vni``:
    what proxy ARP/ND answers from. Only :attr:`OpKind.ADD` and :attr:`OpKind.DELETE`."""

    host: str
    vni: int
    ip: str
    mac: str
    kind: OpKind = OpKind.ADD

    def command(self, device: str, *, netns: str | None = None) -> str:
        """The ``ip`` command for this operation on ``device``, in namespace ``netns`` when given."""
        tool = "ip" if netns is None else f"ip -n {netns}"
        if self.kind is OpKind.DELETE:
            return f"{tool} neigh del {self.ip} dev {device}"
        return f"{tool} neigh {self.kind.value} {self.ip} lladdr {self.mac} dev {device} nud permanent"


@dataclass(frozen=True, slots=True)
class FloodOp:
    """A head-end replication list: ``bridge fdb append 00:00:00:00:00:00 dev DEV dst DST`` on
    ``host``'s device for ``vni``, once for each of ``dsts`` in order (:meth:`appends`).

    One value per device rather than one :class:`FdbOp` per peer: a lab of N hosts lists N x (N - 1)
    destinations, and a driver hands each list over in one call (``fdb_append_many``).
    """

    host: str
    vni: int
    dsts: tuple[str, ...]

    def appends(self) -> list[FdbOp]:
        """The same as one :attr:`OpKind.APPEND` :class:`FdbOp` per destination, in order."""
        return [FdbOp(self.host, self.vni, ZERO_MAC, dst, OpKind.APPEND) for dst in self.dsts]

    def commands(self, device: str, *, netns: str | None = None) -> list[str]:
        """The ``bridge`` commands, one per destination, on ``device`` (in ``netns`` when given)."""
        return [op.command(device, netns=netns) for op in self.appends()]


#: One operation of any kind.
Op = FdbOp | NeighbourOp | FloodOp


def initial_ops(topology: Topology) -> Iterator[Op]:
    """What the topology's mode programs once every device is up, in order: head-end replication
    lists host by host (each :meth:`~pyvxlan.lab.topology.Topology.peers`), or the controller's
    entries guest by guest (as each attaches, :func:`attach_ops`)."""
    if topology.mode is FdbMode.UNICAST:
        # Every VNI's hosts found once: Topology.peers per device would walk every host's devices
        # for each of N devices (N x N ``any`` calls, most of a second at N = 1,000).
        members: dict[int, list[Host]] = {}
        for host in topology.hosts:
            for vni in dict.fromkeys(dev.vni for dev in host.devices):
                members.setdefault(vni, []).append(host)
        for host in topology.hosts:
            for dev in host.devices:
                dsts = tuple(h.address for h in members[dev.vni] if h.name != host.name)
                yield FloodOp(host.name, dev.vni, dsts)
    elif topology.mode is FdbMode.CONTROLLER:
        for guest in topology.guests:
            yield from attach_ops(topology, guest, guest.host)


def peer_ops(topology: Topology, guest: GuestSpec, host: str, where: str) -> tuple[FdbOp, NeighbourOp]:
    """The two entries that let ``host`` reach ``guest`` behind host ``where``: a static FDB
    entry and a neighbour entry (what an on-miss controller answers a miss with too)."""
    address = topology.host(where).address
    return (
        FdbOp(host, guest.vni, guest.mac, address),
        NeighbourOp(host, guest.vni, guest.address, guest.mac),
    )


def attach_ops(
    topology: Topology, guest: GuestSpec, host: str, old: str | None = None
) -> Iterator[FdbOp | NeighbourOp]:
    """What a controller programs when ``guest`` attaches to ``host`` (Docker's peerAdd on every
    other VTEP of its VNI), host by host.

    After a move from ``old``: ``host`` forgets the guest (it is local now), ``old`` learns it
    afresh, and every other VTEP's entry is replaced to point at ``host``.

    >>> from pyvxlan.lab.topology import FdbMode, classic_demo
    >>> topo = classic_demo(3, FdbMode.CONTROLLER)
    >>> for op in attach_ops(topo, topo.guest("guest1"), "host2", old="host1"):
    ...     print(op.host, op.command("vxlan10"))
    host1 bridge fdb add 02:00:00:00:00:01 dev vxlan10 dst 198.51.100.2
    host1 ip neigh add 203.0.113.1 lladdr 02:00:00:00:00:01 dev vxlan10 nud permanent
    host2 bridge fdb del 02:00:00:00:00:01 dev vxlan10
    host2 ip neigh del 203.0.113.1 dev vxlan10
    host3 bridge fdb replace 02:00:00:00:00:01 dev vxlan10 dst 198.51.100.2
    """
    address = topology.host(host).address
    for other in topology.hosts:
        if all(dev.vni != guest.vni for dev in other.devices):
            continue
        name = other.name
        if name == host:
            if old is not None:
                yield FdbOp(name, guest.vni, guest.mac, None, OpKind.DELETE)
                yield NeighbourOp(name, guest.vni, guest.address, guest.mac, OpKind.DELETE)
        elif old is None or name == old:
            yield from peer_ops(topology, guest, name, host)
        else:
            yield FdbOp(name, guest.vni, guest.mac, address, OpKind.REPLACE)


async def apply_op(vtep: VtepControl, op: Op) -> None:
    """Carry out ``op`` on ``vtep`` (the device of ``op.host`` and ``op.vni``) through the
    :class:`~pyvxlan.VtepControl` both labs implement. A :attr:`OpKind.DELETE` of an entry that
    is not there does nothing. A :class:`FloodOp` goes as one ``fdb_append_many`` call."""
    if isinstance(op, FloodOp):
        await vtep.fdb_append_many([FdbEntry(ZERO_MAC, dst) for dst in op.dsts])
    elif isinstance(op, NeighbourOp):
        if op.kind is OpKind.DELETE:
            if any(n.ip == op.ip for n in await vtep.neighbours()):
                await vtep.neigh_del(op.ip)
        else:
            await vtep.neigh_add(op.ip, op.mac)
    elif op.kind is OpKind.DELETE:
        if any(e.mac == op.mac for e in await vtep.fdb()):
            await vtep.fdb_del(op.mac)
    elif op.kind is OpKind.APPEND:
        await vtep.fdb_append(op.mac, op.dst)
    elif op.kind is OpKind.REPLACE:
        await vtep.fdb_replace(op.mac, op.dst)
    else:
        await vtep.fdb_add(op.mac, op.dst)
