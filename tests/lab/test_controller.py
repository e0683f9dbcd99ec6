"""pyvxlan.lab.controller: the one policy that fills the forwarding tables, for every lab."""

from __future__ import annotations

from pyvxlan.lab.controller import FdbOp, FloodOp, NeighbourOp, OpKind, apply_op, attach_ops, initial_ops, peer_ops
from pyvxlan.lab.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice, classic_demo

Z = "00:00:00:00:00:00"


def test_multicast_programs_nothing() -> None:
    assert list(initial_ops(classic_demo(3))) == []


def test_unicast_is_one_flood_list_per_device_host_by_host() -> None:
    ops = list(initial_ops(classic_demo(3, FdbMode.UNICAST)))
    assert ops == [
        FloodOp("host1", 10, ("198.51.100.2", "198.51.100.3")),
        FloodOp("host2", 10, ("198.51.100.1", "198.51.100.3")),
        FloodOp("host3", 10, ("198.51.100.1", "198.51.100.2")),
    ]
    flood = [op for op in ops if isinstance(op, FloodOp)]
    assert flood[1].appends() == [
        FdbOp("host2", 10, Z, "198.51.100.1", OpKind.APPEND),
        FdbOp("host2", 10, Z, "198.51.100.3", OpKind.APPEND),
    ]
    assert flood[2].commands("vx", netns="ns3") == [
        "bridge -n ns3 fdb append 00:00:00:00:00:00 dev vx dst 198.51.100.1",
        "bridge -n ns3 fdb append 00:00:00:00:00:00 dev vx dst 198.51.100.2",
    ]
    assert FloodOp("host1", 10, ()).commands("vx") == []


def test_a_flood_list_is_the_topologys_peers() -> None:
    topo = _two_vnis().with_mode(FdbMode.UNICAST)
    ops = [op for op in initial_ops(topo) if isinstance(op, FloodOp)]
    assert [(op.host, op.vni) for op in ops] == [("a", 10), ("a", 20), ("b", 10), ("c", 20)]
    assert [op.dsts for op in ops] == [tuple(topo.peers(op.host, op.vni)) for op in ops]


def _two_vnis() -> Topology:
    dev10, dev20 = VxlanDevice(10), VxlanDevice(20)
    hosts = (
        Host("a", "198.51.100.1", (dev10, dev20)),
        Host("b", "198.51.100.2", (dev10,)),
        Host("c", "198.51.100.3", (dev20,)),
    )
    guests = (
        GuestSpec("g1", "a", 10, "02:00:00:00:00:01", "203.0.113.1/24"),
        GuestSpec("g2", "b", 10, "02:00:00:00:00:02", "203.0.113.2/24"),
        GuestSpec("g3", "c", 20, "02:00:00:00:00:03", "192.0.2.3/24"),
    )
    return Topology(Underlay("198.51.100.0/24"), hosts, guests, FdbMode.CONTROLLER)


def test_controller_programs_only_other_vteps_of_the_guests_vni() -> None:
    assert list(initial_ops(_two_vnis())) == [
        FdbOp("b", 10, "02:00:00:00:00:01", "198.51.100.1"),
        NeighbourOp("b", 10, "203.0.113.1", "02:00:00:00:00:01"),
        FdbOp("a", 10, "02:00:00:00:00:02", "198.51.100.2"),
        NeighbourOp("a", 10, "203.0.113.2", "02:00:00:00:00:02"),
        FdbOp("a", 20, "02:00:00:00:00:03", "198.51.100.3"),
        NeighbourOp("a", 20, "192.0.2.3", "02:00:00:00:00:03"),
    ]
    # Unicast on the same devices: per-VNI peers only.
    unicast = list(initial_ops(_two_vnis().with_mode(FdbMode.UNICAST)))
    assert unicast == [
        FloodOp("a", 10, ("198.51.100.2",)),
        FloodOp("a", 20, ("198.51.100.3",)),
        FloodOp("b", 10, ("198.51.100.1",)),
        FloodOp("c", 20, ("198.51.100.1",)),
    ]


def test_a_move_deletes_on_the_new_host_adds_on_the_old_and_replaces_elsewhere() -> None:
    topo = classic_demo(4, FdbMode.CONTROLLER)
    g = topo.guest("guest2")
    mac, ip = g.mac, g.address
    assert list(attach_ops(topo, g, "host3", old="host2")) == [
        FdbOp("host1", 10, mac, "198.51.100.3", OpKind.REPLACE),
        FdbOp("host2", 10, mac, "198.51.100.3"),
        NeighbourOp("host2", 10, ip, mac),
        FdbOp("host3", 10, mac, None, OpKind.DELETE),
        NeighbourOp("host3", 10, ip, mac, OpKind.DELETE),
        FdbOp("host4", 10, mac, "198.51.100.3", OpKind.REPLACE),
    ]


def test_peer_ops_and_commands() -> None:
    topo = classic_demo(2, FdbMode.CONTROLLER)
    fdb, neigh = peer_ops(topo, topo.guest("guest2"), "host1", "host2")
    assert fdb.command("vx") == "bridge fdb add 02:00:00:00:00:02 dev vx dst 198.51.100.2"
    assert neigh.command("vx") == "ip neigh add 203.0.113.2 lladdr 02:00:00:00:00:02 dev vx nud permanent"
    gone = NeighbourOp("host1", 10, "203.0.113.2", "02:00:00:00:00:02", OpKind.DELETE)
    assert gone.command("vx") == "ip neigh del 203.0.113.2 dev vx"
    assert FdbOp("host1", 10, "02:00:00:00:00:02", None, OpKind.DELETE).command("vx") == (
        "bridge fdb del 02:00:00:00:00:02 dev vx"
    )


def test_apply_op_carries_a_move_out_on_a_vtep_control() -> None:
    import trio

    from pyvxlan import Vtep
    from pyvxlan.memory import MemoryVtep

    topo = classic_demo(3, FdbMode.CONTROLLER)
    g1 = topo.guest("guest1")

    async def main() -> None:
        controls = {h.name: MemoryVtep(Vtep(topo.vtep_config(h.name, 10))) for h in topo.hosts}
        for op in initial_ops(topo):
            await apply_op(controls[op.host], op)
        # A move of guest1 to host2, then back: the DELETEs on a VTEP without the entry do nothing.
        for new, old in (("host2", "host1"), ("host1", "host2")):
            for op in attach_ops(topo, g1, new, old):
                await apply_op(controls[op.host], op)
            for name, control in controls.items():
                fdb = [(e.mac, e.dst) for e in await control.fdb() if e.mac == g1.mac]
                neigh = [(n.ip, n.mac) for n in await control.neighbours() if n.ip == g1.address]
                here = topo.host(new).address
                assert (fdb, neigh) == (([], []) if name == new else ([(g1.mac, here)], [(g1.address, g1.mac)]))
        await apply_op(controls["host3"], FdbOp("host3", 10, Z, "198.51.100.1", OpKind.APPEND))
        assert [e.dst for e in await controls["host3"].fdb() if e.mac == Z] == ["198.51.100.1"]
        # A flood list goes as one batch, appended in order after what is there.
        await apply_op(controls["host3"], FloodOp("host3", 10, ("198.51.100.4", "198.51.100.2")))
        assert [e.dst for e in await controls["host3"].fdb() if e.mac == Z] == [
            "198.51.100.1",
            "198.51.100.4",
            "198.51.100.2",
        ]

    trio.run(main)
