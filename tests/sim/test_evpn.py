"""``FdbMode.EVPN`` in the simulator: EVPN machines on every host, a route reflector in virtual time."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvxlan.cli import main
from pyvxlan.errors import ConfigError
from pyvxlan.evpn import DuplicateMac
from pyvxlan.lab.topology import FdbMode, Topology, classic_demo
from pyvxlan.sim import open_lab, run
from pyvxlan.sim.evpn import Convergence, EvpnTables, RrTimings, evpn_config, router_id
from pyvxlan.sim.lab import SimLab
from pyvxlan.sim.log import EventKind

ZERO = "00:00:00:00:00:00"
# Delays that are exact in binary floating point, so that virtual times compare with ==.
EXACT = RrTimings(processing=0.125)


def model(topology: Topology, where: dict[str, str]) -> dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]]:
    """Each host's (FDB, neighbours) as the routes imply, worked out here from the topology alone:
    an extern_learn entry per guest elsewhere, an all-zeros entry per other host, a neighbour
    entry per guest elsewhere."""
    tables = {}
    for host in topology.hosts:
        fdb = {(ZERO, other.address) for other in topology.hosts if other.name != host.name}
        neigh = set()
        for guest in topology.guests:
            if where[guest.name] != host.name:
                fdb.add((guest.mac, topology.host(where[guest.name]).address))
                neigh.add((guest.ip.split("/")[0], guest.mac))
        tables[host.name] = (fdb, neigh)
    return tables


async def actual(lab: SimLab, topology: Topology) -> dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]]:
    tables = {}
    for host in topology.hosts:
        vtep = lab.vtep(host.name, 10)
        fdb = {(e.mac, e.dst) for e in await vtep.fdb()}
        neigh = {(n.ip, n.mac) for n in await vtep.neighbours()}
        tables[host.name] = (fdb, neigh)
    return tables


def test_ping_with_no_flooding() -> None:
    topo = classic_demo(3, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo) as lab:
            assert lab.now == pytest.approx(0.075)  # the first routes took FRR's 3 x 25 ms
            for other in ("203.0.113.2", "203.0.113.3"):
                r = await lab.guest("guest1").ping(other, count=3)
                assert (r.sent, r.received) == (3, 3)
            s = lab.stats()
            assert (s.flood_datagrams, s.multicast_datagrams, s.learned) == (0, 0, 0)
            assert s.datagrams == 12  # 2 x 3 echo requests and their replies: ARP answered by proxy
            assert s.proxy_answered == 4  # guest1 -> 2 and 3, and their replies' ARP back
            assert s.drops == {}

    run(main_)


def test_tables_equal_what_the_routes_imply() -> None:
    topo = classic_demo(4, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo) as lab:
            assert await actual(lab, topo) == model(topo, {g.name: g.host for g in topo.guests})
            entries = await lab.vtep("host1", 10).fdb()
            guest2 = next(e for e in entries if e.mac == "02:00:00:00:00:02")
            assert (guest2.extern_learn, guest2.state.value) == (True, "")
            assert lab.convergence == []

    run(main_)


def test_move_converges_in_three_processing_times() -> None:
    topo = classic_demo(3, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo, rr=EXACT) as lab:
            assert lab.now == 0.375
            await lab.move_guest("guest1", "host2")
            assert lab.convergence == [Convergence("guest1", "host1", "host2", 0.375, None, None, 0)]
            await lab.sleep(1.0)
            assert lab.convergence == [Convergence("guest1", "host1", "host2", 0.375, 0.375, 0.375, 0)]
            where = {"guest1": "host2", "guest2": "host2", "guest3": "host3"}
            assert await actual(lab, topo) == model(topo, where)
            evpn = lab.evpn
            assert evpn is not None
            assert evpn.machines[("host2", 10)].sequence("02:00:00:00:00:01") == 1
            assert all(evpn.tables(h, 10) == evpn.expected(h, 10) for h in ("host1", "host2", "host3"))
            r = await lab.guest("guest3").ping("203.0.113.1", count=1)
            assert r.received == 1

    run(main_)


def test_move_waits_for_the_advertisement_interval() -> None:
    # The hosts sent at 0.125 and the reflector at 0.25: a move at 0.375 is ready at the new
    # host at 0.5, leaves at 0.125 + 2 (MRAI), is reflected at 2.25 (0.25 + 2 has passed) and
    # programmed at 2.375.
    topo = classic_demo(3, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo, rr=RrTimings(advertisement_interval=2.0, processing=0.125)) as lab:
            await lab.move_guest("guest1", "host3")
            await lab.sleep(5.0)
            assert lab.convergence == [Convergence("guest1", "host1", "host3", 0.375, 2.0, 2.0, 0)]

    run(main_)


def test_blackhole_drops_frames_sent_to_the_old_host() -> None:
    # guest2 pings guest1 every 0.25 s while guest1 moves: the requests sent before host2 hears
    # of the move go to host1, where nobody takes them.
    topo = classic_demo(3, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo, rr=RrTimings(processing=0.5)) as lab:
            await lab.guest("guest2").ping("203.0.113.1", count=1)
            await lab.move_guest("guest1", "host3")
            r = await lab.guest("guest2").ping("203.0.113.1", count=8, interval=0.25, timeout=0.5)
            await lab.sleep(2.0)
            (conv,) = lab.convergence
            assert (conv.time, conv.blackhole) == (1.5, 1.5)
            assert conv.dropped == r.sent - r.received == 6

    run(main_)


def test_five_moves_in_180_seconds_mark_the_mac_duplicate() -> None:
    topo = classic_demo(2, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo, rr=EXACT) as lab:
            evpn = lab.evpn
            assert evpn is not None
            for i in range(4):
                await lab.move_guest("guest1", "host2" if i % 2 == 0 else "host1")
                await lab.sleep(10.0)
            assert evpn.duplicates == []
            await lab.move_guest("guest1", "host2")  # the 5th move, at 40.375
            assert evpn.duplicates == [("host2", 10, DuplicateMac("02:00:00:00:00:01", 5, 40.375))]
            assert evpn.machines[("host2", 10)].is_duplicate("02:00:00:00:00:01")
            assert [e.detail for e in lab.events if e.kind is EventKind.ACTION and e.where == "host2/vxlan10"] == [
                "duplicate MAC 02:00:00:00:00:01: 5 moves"
            ]

    run(main_)


def test_moves_far_apart_are_no_duplicate() -> None:
    topo = classic_demo(2, FdbMode.EVPN)

    async def main_() -> None:
        async with open_lab(topo, rr=EXACT) as lab:
            for i in range(6):
                await lab.move_guest("guest1", "host2" if i % 2 == 0 else "host1")
                await lab.sleep(100.0)
            assert lab.evpn is not None and lab.evpn.duplicates == []

    run(main_)


def test_same_run_same_events_and_figures() -> None:
    def once() -> tuple[list[str], list[Convergence]]:
        async def main_() -> tuple[list[str], list[Convergence]]:
            async with open_lab(classic_demo(4, FdbMode.EVPN), seed=3) as lab:
                await lab.move_guest("guest2", "host4")
                await lab.guest("guest1").ping("203.0.113.2", count=3, interval=0.01)
                await lab.move_guest("guest2", "host1")
                await lab.sleep(1.0)
                return [str(e) for e in lab.events], lab.convergence

        return run(main_)

    first = once()
    assert all(once() == first for _ in range(3))
    assert [c.time for c in first[1]] == [pytest.approx(0.075)] * 2


def test_config_is_frr_auto_derivation() -> None:
    topo = classic_demo(2, FdbMode.EVPN, ipv6=True)
    cfg = evpn_config(topo, "host2", 10)
    assert (str(cfg.route_distinguisher), cfg.local) == ("0.0.0.2:1", "2001:db8::2")
    assert router_id("198.51.100.9") == "198.51.100.9"
    with pytest.raises(
        ConfigError, match=r"^advertisement_interval: must be a finite number of seconds >= 0, got float inf$"
    ):
        RrTimings(advertisement_interval=float("inf"))


def test_ipv6_underlay_pings() -> None:
    topo = classic_demo(2, FdbMode.EVPN, ipv6=True)

    async def main_() -> None:
        async with open_lab(topo) as lab:
            r = await lab.guest("guest1").ping("203.0.113.2", count=2)
            assert r.received == 2
            assert lab.stats().flood_datagrams == 0
            assert lab.evpn is not None
            assert lab.evpn.tables("host1", 10) == EvpnTables(
                frozenset({("02:00:00:00:00:02", "2001:db8::2")}),
                frozenset({("203.0.113.2", "02:00:00:00:00:02")}),
                frozenset({"2001:db8::2"}),
            )

    run(main_)


def test_other_modes_report_no_convergence() -> None:
    async def main_() -> None:
        async with open_lab(classic_demo(2, FdbMode.CONTROLLER)) as lab:
            await lab.move_guest("guest1", "host2")
            assert (lab.convergence, lab.evpn) == ([], None)

    run(main_)


SCENARIO = """
mode = "evpn"

[underlay]
subnet = "198.51.100.0/24"

[[hosts]]
name = "host1"
address = "198.51.100.1"
devices = [{ vni = 10 }]

[[hosts]]
name = "host2"
address = "198.51.100.2"
devices = [{ vni = 10 }]

[[hosts]]
name = "host3"
address = "198.51.100.3"
devices = [{ vni = 10 }]

[[guests]]
name = "a"
host = "host1"
vni = 10
mac = "02:00:00:00:00:0a"
ip = "203.0.113.10/24"

[[guests]]
name = "b"
host = "host2"
vni = 10
mac = "02:00:00:00:00:0b"
ip = "203.0.113.11/24"

[[steps]]
action = "ping"
from = "a"
to = "b"
expect = "all"

[[steps]]
action = "move"
guest = "b"
to = "host3"

[[steps]]
action = "expect-converged"
within = 0.1

[[steps]]
action = "ping"
from = "a"
to = "b"
expect = "all"

[[steps]]
action = "expect-counter"
counter = "flood_datagrams"
equals = 0
"""


def test_run_a_scenario_in_evpn_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evpn.toml"
    path.write_text(SCENARIO)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "converged in 0.075 s (blackhole 0.075 s, 0 frames dropped; expected within 0.1 s)" in out


def test_demo_prints_the_move_and_its_convergence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--mode", "evpn", "--hosts", "3"]) == 0
    out = capsys.readouterr().out
    assert "  vni 10: rd 198.51.100.3:1 route-target 65000:10 (FRR's auto derivation)\n" in out
    assert (
        "guest3 moves to host1 (its MAC's new route carries a higher mobility sequence)\n"
        "  every VTEP's tables right again after 75.000 ms (blackhole 75.000 ms, 0 frames dropped)\n"
        "host1: bridge fdb show dev vxlan10\n"
    ) in out
    assert "  02:00:00:00:00:03 dev vxlan10 dst 198.51.100.1 self extern_learn\n" in out  # host2 follows


def test_expect_converged_fails_when_too_slow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "slow.toml"
    path.write_text(SCENARIO.replace("within = 0.1", "within = 0.05"))
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL   3. expect-converged within=0.05: not converged after 0.05 s (0 frames dropped)\n" in out
    # The next ping's first request still goes to the guest's old host.
    assert "FAIL   4. ping from=a to=b expect=all: 3 sent, 2 received" in out


def test_expect_converged_needs_evpn_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "controller.toml"
    path.write_text(SCENARIO.replace('mode = "evpn"', 'mode = "controller"'))
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"pyvxlan: error: {path}: step 3.action: expect-converged needs mode = \"evpn\", not 'controller'\n"
    )


def test_reflector_delays_need_evpn_mode() -> None:
    async def main_() -> None:
        async with open_lab(classic_demo(2, FdbMode.UNICAST), rr=RrTimings()):
            pass

    with pytest.raises(ConfigError, match=r"^rr: route reflector delays are for mode evpn, not unicast$"):
        run(main_)
