"""The simulated lab: the classic demo in each mode, migration, ageing, membership, faults, I/O."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from pyvxlan import ConfigError, EntryLearned, FdbState
from pyvxlan.errors import LabKeyError
from pyvxlan.lab.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice, classic_demo
from pyvxlan.sim import EventKind, LinkProfile, SimLab, open_lab, run
from pyvxlan.wire.pcap import raw_records


def in_lab(topology: Topology, body: Callable[[SimLab], Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        async with open_lab(topology, **kw) as lab:
            return await body(lab)

    return run(main)


def events(lab: SimLab, kind: EventKind) -> list[str]:
    return [f"{e.time:.3f} {e.where} {e.detail}" for e in lab.events if e.kind is kind]


def test_classic_demo_multicast_floods_once_then_learns() -> None:
    async def body(lab: SimLab) -> None:
        r = await lab.guest("guest1").ping("203.0.113.2", count=3)
        assert (r.sent, r.received, r.rtts) == (3, 3, (0.004, 0.002, 0.002))
        assert lab.fdb_lines("host1", 10) == [
            "00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent",
            "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self",
        ]
        assert lab.fdb_lines("host2", 10) == [
            "00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent",
            "02:00:00:00:00:01 dev vxlan10 dst 198.51.100.1 self",
        ]
        assert events(lab, EventKind.LEARNED) == [
            "0.001 host2/vxlan10 02:00:00:00:00:01 dst 198.51.100.1",
            "0.002 host1/vxlan10 02:00:00:00:00:02 dst 198.51.100.2",
        ]
        s = lab.stats()
        # One ARP broadcast to the group, then the reply and three echo pairs by unicast.
        assert (s.datagrams, s.multicast_datagrams, s.flood_datagrams, s.deliveries) == (8, 1, 1, 8)
        assert s.drops == {}
        assert lab.ledger.balance() == 0

    in_lab(classic_demo(), body)


def test_classic_demo_unicast_replicates_floods_to_every_peer() -> None:
    async def body(lab: SimLab) -> None:
        assert lab.fdb_lines("host1", 10) == [
            "00:00:00:00:00:00 dev vxlan10 dst 198.51.100.2 self permanent",
            "00:00:00:00:00:00 dev vxlan10 dst 198.51.100.3 self permanent",
        ]
        r = await lab.guest("guest1").ping("203.0.113.3", count=3)
        assert (r.sent, r.received) == (3, 3)
        s = lab.stats()
        assert (s.multicast_datagrams, s.flood_datagrams) == (0, 2)  # one ARP request, two copies
        assert lab.group_members("239.1.1.1") == []
        assert "02:00:00:00:00:03 dev vxlan10 dst 198.51.100.3 self" in lab.fdb_lines("host1", 10)

    in_lab(classic_demo(3, FdbMode.UNICAST), body)


def test_head_end_copies_leave_and_arrive_in_peer_order(tmp_path: Any) -> None:
    # The copies of one flood travel together (one scheduler event when the links allow it), in
    # the order of the all-zeros entries, with or without jitter on some link.
    for jitter in (0.0, 0.0001):

        async def body(lab: SimLab, jitter: float = jitter) -> None:
            lab.capture(str(tmp_path / f"u{jitter}.pcap"))
            if jitter:
                lab.set_link("host5", LinkProfile(jitter=jitter))
            await lab.guest("guest1").ping("203.0.113.4")
            learned = [e.where for e in lab.events if e.kind is EventKind.LEARNED][:4]
            expected = ["host2/vxlan10", "host3/vxlan10", "host4/vxlan10", "host5/vxlan10"]
            if jitter:  # each copy on its own, arriving when its jitter says
                assert sorted(learned) == expected
            else:
                assert learned == expected
            assert (lab.stats().flood_datagrams, lab.ledger.balance()) == (4, 0)

        in_lab(classic_demo(5, FdbMode.UNICAST), body)
        with (tmp_path / f"u{jitter}.pcap").open("rb") as f:
            first = [buf[start:end] for _, _, buf, start, end, _ in raw_records(f)][:4]
        assert [".".join(str(b) for b in frame[30:34]) for frame in first] == [f"198.51.100.{i}" for i in (2, 3, 4, 5)]


def test_classic_demo_controller_programs_entries_and_answers_arp_locally() -> None:
    async def body(lab: SimLab) -> None:
        assert lab.fdb_lines("host1", 10) == [
            "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self permanent",
            "02:00:00:00:00:03 dev vxlan10 dst 198.51.100.3 self permanent",
        ]
        neighbours = await lab.vtep("host1", 10).neighbours()
        assert sorted((n.ip, n.mac) for n in neighbours) == [
            ("203.0.113.2", "02:00:00:00:00:02"),
            ("203.0.113.3", "02:00:00:00:00:03"),
        ]
        r = await lab.guest("guest1").ping("203.0.113.2", count=3)
        assert (r.sent, r.received, r.rtts) == (3, 3, (0.002, 0.002, 0.002))
        s = lab.stats()
        # guest1's ARP request, and guest2's for the echo reply: each answered by its own VTEP.
        assert (s.flood_datagrams, s.learned, s.proxy_answered) == (0, 0, 2)
        assert events(lab, EventKind.LEARNED) == []

    in_lab(classic_demo(3, FdbMode.CONTROLLER), body)


def test_ipv6_underlay_and_ipv6_guests_with_neighbour_discovery() -> None:
    topo = classic_demo(2, ipv6=True)
    guests = (
        GuestSpec("a", "host1", 10, "02:00:00:00:00:0a", "2001:db8:1::a/64"),
        GuestSpec("b", "host2", 10, "02:00:00:00:00:0b", "2001:db8:1::b/64"),
    )
    topo = Topology(topo.underlay, topo.hosts, guests, FdbMode.MULTICAST)

    async def body(lab: SimLab) -> None:
        r = await lab.guest("a").ping("2001:db8:1::b", count=2)
        assert (r.sent, r.received) == (2, 2)
        assert lab.fdb_lines("host2", 10)[1] == "02:00:00:00:00:0a dev vxlan10 dst 2001:db8::1 self"

    in_lab(topo, body)

    # The controller's proxy answers neighbour solicitations too.
    async def controller(lab: SimLab) -> None:
        r = await lab.guest("a").ping("2001:db8:1::b", count=1)
        assert (r.sent, r.received) == (1, 1)
        assert lab.stats().proxy_answered == 2  # a's solicitation, and b's for the reply

    in_lab(topo.with_mode(FdbMode.CONTROLLER), controller)


def test_echo_reply_resolves_the_pinger_through_arp_so_it_fails_behind_a_flushed_proxy() -> None:
    # Linux: a guest answering an echo resolves the sender's IP through its neighbour cache; it
    # does not reply to the request's source MAC. ``ip link set DEV down`` flushed host3's proxy
    # neighbours, so guest3's ARP request for guest2 goes unanswered (as
    # tests/kernel/test_lab.py::test_down_flushes_the_proxy_neighbours_so_arp_behind_that_vtep_fails
    # shows on the kernel).
    async def body(lab: SimLab) -> None:
        await lab.vtep_down("host3", 10)
        await lab.vtep_up("host3", 10)
        assert await lab.vtep("host3", 10).neighbours() == []
        r = await lab.guest("guest2").ping("203.0.113.3", timeout=0.5)
        assert (r.sent, r.received) == (1, 0)
        assert lab.guest("guest3").received == 1  # the request arrived; no reply left
        await lab.sleep(3.0)  # guest3's three ARP tries
        assert lab.stats().drops == {"proxy_unresolved": 3, "guest:arp_failed": 1}
        await lab.vtep("host3", 10).neigh_add("203.0.113.2", "02:00:00:00:00:02")
        r = await lab.guest("guest2").ping("203.0.113.3", timeout=2)
        assert (r.sent, r.received) == (1, 1)
        assert lab.ledger.balance() == 0

    in_lab(classic_demo(3, FdbMode.CONTROLLER), body)


def test_a_guest_learns_the_pinger_from_its_arp_request_and_replies_without_asking() -> None:
    # Linux creates a neighbour entry from an ARP request addressed to it, so the echo reply needs
    # no ARP of its own: one flood in all.
    async def body(lab: SimLab) -> None:
        r = await lab.guest("guest1").ping("203.0.113.2")
        assert r.received == 1
        assert lab.guest("guest2").arp_cache[bytes([203, 0, 113, 1])][0] == bytes.fromhex("020000000001")
        assert lab.stats().flood_datagrams == 1

    in_lab(classic_demo(3), body)


def test_mac_migration_after_a_guest_moves() -> None:
    async def body(lab: SimLab) -> None:
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        await lab.move_guest("guest2", "host3")
        await lab.sleep(0.5)
        assert lab.guest_host("guest2") == "host3"
        assert events(lab, EventKind.MIGRATED) == [
            "0.005 host1/vxlan10 02:00:00:00:00:02 from 198.51.100.2 to 198.51.100.3",
        ]
        r = await lab.guest("guest1").ping("203.0.113.2")
        # 4 ms, not 2: the moved guest lost its ARP cache with its link (as in the kernel lab),
        # so it resolves guest1 before it can answer.
        assert (r.received, r.rtts) == (1, (0.004,))
        assert "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.3 self" in lab.fdb_lines("host1", 10)
        assert lab.ledger.balance() == 0

    in_lab(classic_demo(3), body)


def test_a_moved_guest_announces_at_the_move_instant_and_a_ping_in_flight_is_lost() -> None:
    # The gratuitous ARP leaves at the move instant and reaches host1 one underlay hop (1 ms)
    # later; a ping sent before that goes to the old host, as on real hosts (docs/scenarios.md).
    async def body(lab: SimLab) -> None:
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        moved_at = lab.now
        await lab.move_guest("guest2", "host3")
        assert lab.now == moved_at
        assert (await lab.guest("guest1").ping("203.0.113.2", timeout=0.5)).received == 0
        assert events(lab, EventKind.MIGRATED) == [
            f"{moved_at + 0.001:.3f} host1/vxlan10 02:00:00:00:00:02 from 198.51.100.2 to 198.51.100.3",
        ]
        assert lab.stats().drops == {"bridge_no_port": 2}  # the announcement at host2, the echo
        await lab.move_guest("guest2", "host2")
        await lab.sleep(0.002)
        assert (await lab.guest("guest1").ping("203.0.113.2", timeout=0.5)).received == 1

    in_lab(classic_demo(3), body)


def test_controller_reprograms_every_vtep_when_a_guest_moves() -> None:
    async def body(lab: SimLab) -> None:
        await lab.move_guest("guest2", "host3")
        assert "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.3 self permanent" in lab.fdb_lines("host1", 10)
        assert not any(line.startswith("02:00:00:00:00:02") for line in lab.fdb_lines("host3", 10))
        assert "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.3 self permanent" in lab.fdb_lines("host2", 10)
        r = await lab.guest("guest1").ping("203.0.113.2")
        assert r.received == 1

    in_lab(classic_demo(3, FdbMode.CONTROLLER), body)


def test_learned_entries_age_out_after_300_virtual_seconds() -> None:
    async def body(lab: SimLab) -> None:
        await lab.guest("guest1").ping("203.0.113.2")
        start = trio.current_time()
        await lab.sleep(299.0)
        assert len(lab.fdb_lines("host1", 10)) == 2
        await lab.sleep(2.0)
        assert lab.fdb_lines("host1", 10) == ["00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent"]
        assert trio.current_time() - start == 301.0
        assert events(lab, EventKind.EXPIRED) == [
            # 300 s after the last frame that refreshed them (the echo request and its reply).
            "300.003 host2/vxlan10 02:00:00:00:00:01 dst 198.51.100.1",
            "300.004 host1/vxlan10 02:00:00:00:00:02 dst 198.51.100.2",
        ]
        # The bridge's own entries age too (Linux's 300 s default).
        assert lab.bridge("host1", 10).entries(lab.now) == []

    in_lab(classic_demo(), body)


def test_a_vtep_that_left_the_group_gets_no_floods() -> None:
    async def body(lab: SimLab) -> None:
        await lab.vtep_down("host3", 10)
        assert lab.group_members("239.1.1.1") == ["198.51.100.1", "198.51.100.2"]
        before = await lab.vtep("host3", 10).counters()
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        after = await lab.vtep("host3", 10).counters()
        assert after == before
        assert lab.stats().deliveries == 4  # ARP to host2 only, then three unicasts
        assert events(lab, EventKind.LEFT) == ["0.000 host3/vxlan10 239.1.1.1"]

    in_lab(classic_demo(3), body)


def test_recovery_after_loss() -> None:
    async def body(lab: SimLab) -> None:
        lab.set_link("host2", LinkProfile(loss=1.0))
        r = await lab.guest("guest1").ping("203.0.113.2", count=2)
        assert (r.sent, r.received) == (2, 0)
        await lab.sleep(2.0)  # the ARP resolution gives up after its third request
        assert lab.stats().drops["loss"] == 3  # three ARP requests, no reply
        assert lab.stats().drops["guest:arp_failed"] == 2  # both echo requests waited for it
        lab.set_link("host2", LinkProfile())
        r = await lab.guest("guest1").ping("203.0.113.2", count=2)
        assert (r.sent, r.received) == (2, 2)
        assert lab.ledger.balance() == 0

    in_lab(classic_demo(), body)


def test_recovery_after_partition_and_link_down() -> None:
    async def body(lab: SimLab) -> None:
        lab.partition(["host1"], ["host2"])
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 0
        await lab.sleep(3.0)
        lab.heal()
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        lab.link_down("host2")
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 0
        lab.link_up("host2")
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        drops = lab.stats().drops
        assert drops["partition"] >= 1 and drops["link_down"] >= 1

    in_lab(classic_demo(), body)


def test_recovery_after_a_vtep_restart() -> None:
    async def body(lab: SimLab) -> None:
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        await lab.vtep_down("host2", 10)
        assert lab.fdb_lines("host2", 10) == ["00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent"]
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 0
        assert lab.stats().drops["device_down"] >= 1
        await lab.vtep_up("host2", 10)
        assert lab.group_members("239.1.1.1") == ["198.51.100.1", "198.51.100.2"]
        # guest2's ARP entry for guest1 still stands, the host1 VTEP still knows guest2: the
        # reply travels by the group until host2's VTEP learns guest1 again.
        assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
        assert "02:00:00:00:00:01 dev vxlan10 dst 198.51.100.1 self" in lab.fdb_lines("host2", 10)

    in_lab(classic_demo(), body)


def test_oversize_outer_packets_are_dropped_and_counted() -> None:
    base = classic_demo()
    topo = Topology(Underlay("198.51.100.0/24", mtu=1500), base.hosts, base.guests)

    async def body(lab: SimLab) -> None:
        sock = lab.guest("guest2").udp_socket(7000)
        lab.guest("guest1").send_udp("203.0.113.2", 7000, b"x" * 1422)  # inner IP 1450: fits exactly
        payload, sender = await sock.receive()
        assert (len(payload), sender) == (1422, ("203.0.113.1", 40000))
        lab.guest("guest1").send_udp("203.0.113.2", 7000, b"x" * 1423)  # one byte over: 1501 outer
        await lab.sleep(1.0)
        assert lab.stats().drops == {"mtu": 1}
        assert [e.detail for e in lab.events if e.reason == "mtu"] == ["mtu 1501 bytes > mtu 1500"]

    in_lab(topo, body)


def test_a_flood_reaches_lone_shared_tapped_and_empty_bridges_alike(tmp_path: Any) -> None:
    # The lab sends a flood from the underlay straight to a bridge's only guest; a bridge with two
    # guests, none, or a guest someone listens to takes the bridge's own flood path. Ten hosts:
    # the group's fan-out is cached, so the move must still be seen.
    async def body(lab: SimLab) -> None:
        await lab.move_guest("guest2", "host3")  # host3: guest2 and guest3; host2: nobody
        await lab.sleep(0.01)
        lab.capture(str(tmp_path / "g5.pcap"), guest="guest5")
        before = {name: lab.guest(name).received for name in ("guest2", "guest3", "guest4", "guest5")}
        drops = dict(lab.stats().drops)
        r = await lab.guest("guest1").ping("203.0.113.4")
        assert r.received == 1
        after = {name: lab.guest(name).received - before[name] for name in before}
        # The ARP broadcast reaches every guest (guest4 then gets its echo request too).
        assert after == {"guest2": 1, "guest3": 1, "guest4": 2, "guest5": 1}
        assert lab.stats().drops["bridge_no_port"] == drops["bridge_no_port"] + 1  # host2's empty bridge
        assert lab.ledger.balance() == 0
        # A flood to a guest's solicited-node group passes only that guest's NIC filter; a raw
        # socket opened after the group's fan-out was cached still sees it.
        g6 = lab.guest("guest6")
        g6.open_raw()
        ended = lab.ledger.ended["not_for_guest"]
        frame = bytes.fromhex("3333ff000004020000000001") + b"\x86\xdd" + bytes(46)
        lab.guest("guest1").send_frame(frame)
        with trio.fail_after(1.0):  # virtual time
            assert await g6.receive_frame() == frame
        await lab.sleep(0.01)
        assert lab.ledger.ended["not_for_guest"] == ended + 9  # all ten guests but the sender
        assert lab.ledger.balance() == 0

    in_lab(classic_demo(10), body)
    # guest5's capture, started after the fan-out was cached: the ARP broadcast, the echo
    # request is not for it, and the frame above.
    with (tmp_path / "g5.pcap").open("rb") as f:
        captured = [buf[start:end] for _, _, buf, start, end, _ in raw_records(f)]
    assert [f[12:14].hex() for f in captured] == ["0806", "86dd"]


def test_raw_frames_and_guest_capture(tmp_path: Any) -> None:
    async def body(lab: SimLab) -> None:
        lab.capture(str(tmp_path / "g2.pcap"), guest="guest2")
        g2 = lab.guest("guest2")
        g2.open_raw()
        frame = bytes.fromhex("ffffffffffff020000000001") + b"\x88\xb5" + b"hello".ljust(46, b"\0")
        lab.guest("guest1").send_frame(frame)
        assert await g2.receive_frame() == frame

    in_lab(classic_demo(), body)
    data = (tmp_path / "g2.pcap").read_bytes()
    assert len(data) == 24 + 16 + 60


def test_vtep_notifications_stream() -> None:
    async def body(lab: SimLab) -> None:
        async with lab.vtep("host2", 10).subscribe() as stream:
            await lab.guest("guest1").ping("203.0.113.2")
            async for note in stream:
                assert note == EntryLearned("02:00:00:00:00:01", "198.51.100.1")
                break

    in_lab(classic_demo(), body)


def test_a_plain_trio_sleep_wakes_between_the_labs_events() -> None:
    # The scheduler runs instants that wake no user code without going through trio's run loop,
    # but never past a trio deadline: a task sleeping 1.5 ms sees the ARP request arrived (1 ms)
    # and the reply not yet (2 ms).
    async def body(lab: SimLab) -> None:
        seen: list[tuple[float, list[str]]] = []

        async def watch() -> None:
            await trio.sleep(0.0015)
            seen.append((round(lab.now, 6), [line.split()[0] for line in lab.fdb_lines("host1", 10)]))
            seen.append((round(lab.now, 6), [line.split()[0] for line in lab.fdb_lines("host2", 10)]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await lab.guest("guest1").ping("203.0.113.2")
        assert seen == [
            (0.0015, ["00:00:00:00:00:00"]),
            (0.0015, ["00:00:00:00:00:00", "02:00:00:00:00:01"]),
        ]

    in_lab(classic_demo(), body)


def test_open_lab_needs_the_virtual_clock() -> None:
    async def main() -> None:
        async with open_lab(classic_demo()):
            pass

    with pytest.raises(ConfigError, match=r"^clock: the simulator runs in virtual time"):
        trio.run(main)


def test_lab_lookups_raise_lab_key_errors_naming_what_there_is() -> None:
    async def body(lab: SimLab) -> None:
        with pytest.raises(LabKeyError) as info:
            lab.guest("x")
        assert (str(info.value), info.value.what, info.value.name) == (
            "no guest 'x' (there are: guest1, guest2)",
            "guest",
            "x",
        )
        with pytest.raises(LabKeyError) as info:
            lab.vtep("host1", 11)
        assert str(info.value) == "no vxlan device on host 'host1' with VNI 11 (there are: 10)"
        with pytest.raises(LabKeyError) as info:
            lab.vtep("host9", 10)
        assert str(info.value) == "no host 'host9' (there are: host1, host2)"
        for call in (lambda: lab.link_down("host9"), lambda: lab.bridge("host9", 10), lambda: lab.guest_host("g")):
            with pytest.raises(KeyError):  # a LabKeyError is a KeyError too, for code written to the Lab protocol
                call()

    in_lab(classic_demo(), body)


def test_a_large_lab_does_not_list_every_name_in_a_lookup_error() -> None:
    async def body(lab: SimLab) -> None:
        with pytest.raises(LabKeyError) as info:
            lab.guest("x")
        assert str(info.value) == "no guest 'x'"

    in_lab(classic_demo(hosts=21), body)


def test_static_entries_survive_learning_from_elsewhere() -> None:
    async def body(lab: SimLab) -> None:
        await lab.vtep("host1", 10).fdb_add("02:00:00:00:00:02", "198.51.100.3", state=FdbState.STATIC)
        await lab.guest("guest2").ping("203.0.113.1")
        # Linux never overwrites a static entry by learning: the frames from host2 are dropped.
        assert "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.3 self static" in lab.fdb_lines("host1", 10)
        assert lab.stats().drops.get("entry_exists", 0) >= 1

    in_lab(classic_demo(3), body)


def test_two_vnis_share_hosts_without_mixing() -> None:
    u = Underlay("198.51.100.0/24")
    devs = (VxlanDevice(10, group="239.1.1.1"), VxlanDevice(20, group="239.1.1.1"))
    hosts = (Host("host1", "198.51.100.1", devs), Host("host2", "198.51.100.2", devs))
    guests = (
        GuestSpec("a10", "host1", 10, "02:00:00:00:10:01", "203.0.113.1/24"),
        GuestSpec("b10", "host2", 10, "02:00:00:00:10:02", "203.0.113.2/24"),
        GuestSpec("a20", "host1", 20, "02:00:00:00:20:01", "203.0.113.1/24"),
        GuestSpec("b20", "host2", 20, "02:00:00:00:20:02", "203.0.113.2/24"),
    )

    async def body(lab: SimLab) -> None:
        r = await lab.guest("a10").ping("203.0.113.2")
        assert r.received == 1
        assert lab.guest("b20").received == 0  # same group, same IPs: another VNI hears nothing
        assert [line.split()[0] for line in lab.fdb_lines("host2", 20)] == ["00:00:00:00:00:00"]

    in_lab(Topology(u, hosts, guests), body)


def test_on_miss_controller_programs_only_what_a_vtep_asks_for() -> None:
    async def body(lab: SimLab) -> None:
        assert lab.fdb_lines("host1", 10) == []
        r = await lab.guest("guest1").ping("203.0.113.2", count=3)
        # The first ARP request goes unanswered (l3miss); the retry a second later is answered
        # and the two queued echoes go out at 1 s. guest2 resolves guest1 before replying, as
        # Linux does: its first ARP request is host2's l3miss, its retry at 2.001 is answered,
        # and the two replies come 1.002 s and more after their requests (late). Only the third
        # echo is answered in time. Nothing is ever flooded.
        assert (r.sent, r.received, r.rtts) == (3, 1, (0.002,))
        assert events(lab, EventKind.MISSED) == [
            "0.000 host1/vxlan10 l3miss 203.0.113.2",
            "1.001 host2/vxlan10 l3miss 203.0.113.1",
        ]
        assert lab.stats().drops == {"proxy_unresolved": 2, "guest:late_echo_reply": 2}
        assert lab.fdb_lines("host1", 10) == ["02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self permanent"]
        assert lab.fdb_lines("host3", 10) == []
        s = lab.stats()
        assert (s.flood_datagrams, s.learned) == (0, 0)
        assert lab.vtep("host1", 10).config.l3miss

    in_lab(classic_demo(3, FdbMode.CONTROLLER), body, controller="on-miss")


def test_controller_setting_is_checked() -> None:
    async def main() -> None:
        async with open_lab(classic_demo(), controller="lazy"):
            pass

    with pytest.raises(ConfigError, match=r"^controller: must be 'eager' or 'on-miss', got 'lazy'$"):
        run(main)


def test_arp_cache_entries_expire_and_are_resolved_again() -> None:
    async def body(lab: SimLab) -> None:
        await lab.guest("guest1").ping("203.0.113.2")
        assert lab.stats().flood_datagrams == 1
        await lab.sleep(20.0)
        await lab.guest("guest1").ping("203.0.113.2")
        assert lab.stats().flood_datagrams == 1  # still cached
        await lab.sleep(40.0)
        r = await lab.guest("guest1").ping("203.0.113.2")
        assert (r.received, r.rtts) == (1, (0.004,))  # resolved again first
        assert lab.stats().flood_datagrams == 2

    in_lab(classic_demo(), body)


def test_duplicated_and_jittered_datagrams_are_counted() -> None:
    async def body(lab: SimLab) -> None:
        lab.set_link("host2", LinkProfile(duplicate=1.0, jitter=0.004))
        r = await lab.guest("guest1").ping("203.0.113.2", count=3, interval=0.5)
        await lab.sleep(1.0)
        assert r.received == 3
        drops = lab.stats().drops
        # Each request arrives twice (two replies), and each reply twice: 4 replies, 3 extra.
        assert drops["guest:unexpected_echo_reply"] == 9
        assert lab.ledger.balance() == 0
        assert len(set(r.rtts)) > 1  # jitter: not all round trips are equal

    in_lab(classic_demo(), body, seed=3)


def test_udp_between_ipv6_guests() -> None:
    topo = classic_demo(2)
    guests = (
        GuestSpec("a", "host1", 10, "02:00:00:00:00:0a", "2001:db8:1::a/64"),
        GuestSpec("b", "host2", 10, "02:00:00:00:00:0b", "2001:db8:1::b/64"),
    )

    async def body(lab: SimLab) -> None:
        server = lab.guest("b").udp_socket(5353)
        client = lab.guest("a").udp_socket(40001)
        client.send(b"query", ("2001:db8:1::b", 5353))
        payload, sender = await server.receive()
        assert (payload, sender) == (b"query", ("2001:db8:1::a", 40001))
        server.send(b"answer", sender)
        assert await client.receive() == (b"answer", ("2001:db8:1::b", 5353))

    in_lab(Topology(topo.underlay, topo.hosts, guests), body)


def test_on_miss_controller_moves_only_what_a_vtep_asked_for() -> None:
    """After a move the on-miss controller corrects the VTEPs that know the guest (host1 asked
    for guest2), clears the new host's entries, and programs nobody else (host4 never asked)."""

    async def body(lab: SimLab) -> None:
        await lab.guest("guest1").ping("203.0.113.2", count=3)
        await lab.move_guest("guest2", "host3")
        assert lab.fdb_lines("host1", 10) == ["02:00:00:00:00:02 dev vxlan10 dst 198.51.100.3 self permanent"]
        assert lab.fdb_lines("host3", 10) == []
        assert lab.fdb_lines("host4", 10) == []
        assert [n.ip for n in await lab.vtep("host1", 10).neighbours()] == ["203.0.113.2"]

    in_lab(classic_demo(4, FdbMode.CONTROLLER), body, controller="on-miss")


def test_underlay_lookups_of_an_unknown_address_raise_lab_key_error() -> None:
    async def body(lab: SimLab) -> None:
        with pytest.raises(LabKeyError) as info:
            lab.underlay.set_link("198.51.100.9", LinkProfile(loss=0.5))
        assert str(info.value) == "no host with underlay address '198.51.100.9'"

    in_lab(classic_demo(), body)


def test_a_lab_runs_once() -> None:
    async def body(lab: SimLab) -> None:
        with pytest.raises(ConfigError, match=r"^lab: a simulated lab runs once: open another with open_lab$"):
            async with lab.running():
                pass

    in_lab(classic_demo(), body)
