"""The kernel lab's evpn mode: FRR's configuration from the topology (no root), and FRR's zebra and
bgpd running every host's tables in namespaces (root, FRR installed): guests ping, every table is
what the topology implies, a moved guest converges, and nothing is left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import trio

from pyvxlan import ConfigError, sim
from pyvxlan.cli import main
from pyvxlan.kernel import frr, lab_commands, open_lab
from pyvxlan.kernel.cleanup import cleanup, new_prefix
from pyvxlan.kernel.lab import KernelLab
from pyvxlan.lab.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice, classic_demo

ZERO = "00:00:00:00:00:00"


def need_frr() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, vxlan devices, FRR's daemons)")
    if not os.access(f"{frr.FRR_BIN}/bgpd", os.X_OK) or shutil.which("vtysh") is None:
        pytest.skip("FRR is not installed (python dev.py test installs Debian's frr)")


def running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie, not reaped yet by init, has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- the configuration: a pure function of the topology ---------------------------------------------


def test_host_config_text() -> None:
    assert frr.host_config(classic_demo(3, FdbMode.EVPN), "host2") == (
        "frr defaults traditional\n"
        "hostname host2\n"
        "service integrated-vtysh-config\n"
        "router bgp 65000\n"
        " bgp router-id 198.51.100.2\n"
        " no bgp default ipv4-unicast\n"
        " neighbor 198.51.100.254 remote-as internal\n"
        " neighbor 198.51.100.254 timers connect 1\n"
        " address-family l2vpn evpn\n"
        "  neighbor 198.51.100.254 activate\n"
        "  advertise-all-vni\n"
        " exit-address-family\n"
    )


def test_reflector_config_text() -> None:
    assert frr.reflector_config(classic_demo(2, FdbMode.EVPN)) == (
        "frr defaults traditional\n"
        "hostname reflector\n"
        "service integrated-vtysh-config\n"
        "router bgp 65000\n"
        " bgp router-id 198.51.100.254\n"
        " no bgp default ipv4-unicast\n"
        " neighbor vteps peer-group\n"
        " neighbor vteps remote-as internal\n"
        " bgp listen range 198.51.100.0/24 peer-group vteps\n"
        " address-family l2vpn evpn\n"
        "  neighbor vteps activate\n"
        "  neighbor vteps route-reflector-client\n"
        " exit-address-family\n"
    )


def test_configs_name_the_reflector_then_every_host() -> None:
    topo = classic_demo(3, FdbMode.EVPN)
    configs = frr.frr_configs(topo)
    assert list(configs) == ["underlay", "host1", "host2", "host3"]
    assert configs["host3"] == frr.host_config(topo, "host3")
    assert configs["underlay"] == frr.reflector_config(topo)


def test_reflector_address_is_the_highest_address_no_host_has() -> None:
    hosts = (Host("a", "198.51.100.254", (VxlanDevice(10),)), Host("b", "198.51.100.253", (VxlanDevice(10),)))
    topo = Topology(Underlay("198.51.100.0/24"), hosts, (), FdbMode.EVPN)
    assert frr.reflector_address(topo) == "198.51.100.252"
    assert frr.reflector_address(classic_demo(2, FdbMode.EVPN)) == "198.51.100.254"


def test_reflector_address_needs_a_free_address() -> None:
    hosts = (Host("a", "198.51.100.1", (VxlanDevice(10),)), Host("b", "198.51.100.2", (VxlanDevice(10),)))
    topo = Topology(Underlay("198.51.100.0/30"), hosts, (), FdbMode.EVPN)
    with pytest.raises(ConfigError) as info:
        frr.reflector_address(topo)
    assert str(info.value) == "underlay: no address left in 198.51.100.0/30 for the route reflector"


def test_an_ipv6_underlay_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        frr.frr_configs(classic_demo(2, FdbMode.EVPN, ipv6=True))
    assert str(info.value) == "underlay: evpn mode in a kernel lab needs an IPv4 underlay (FRR's VTEPs are IPv4)"


def test_print_commands_carry_the_frr_configuration() -> None:
    topo = classic_demo(2, FdbMode.EVPN)
    lines = lab_commands(topo, prefix="pvx0001")
    assert "ip -n pvx0001-underlay addr add 198.51.100.254/24 dev _ul" in lines
    assert "bridge -n pvx0001-host1 link set dev vxlan10 neigh_suppress on learning off" in lines
    assert "ip netns exec pvx0001-host2 sysctl -qw net/ipv4/conf/br10/arp_accept=1" in lines
    # The vxlan device learns nothing and has no proxy of its own: the bridge answers ARP.
    (link,) = [line for line in lines if line.startswith("ip -n pvx0001-host1 link add vxlan10")]
    assert link.endswith(" nolearning")
    script = "\n".join(lines)
    host1 = (
        "mkdir -p /etc/frr/pvx0001-host1 /var/run/frr/pvx0001-host1"
        " && chown frr:frr /etc/frr/pvx0001-host1 /var/run/frr/pvx0001-host1\n"
        "cat > /etc/frr/pvx0001-host1/frr.conf <<'EOF'\n" + frr.host_config(topo, "host1") + "EOF\n"
        "echo 'service integrated-vtysh-config' > /etc/frr/pvx0001-host1/vtysh.conf\n"
        "ip netns exec pvx0001-host1 /usr/lib/frr/zebra -d -N pvx0001-host1 -A 127.0.0.1 -s 90000000\n"
        "ip netns exec pvx0001-host1 /usr/lib/frr/bgpd -d -N pvx0001-host1 -A 127.0.0.1\n"
        "vtysh -N pvx0001-host1 -b\n"
    )
    assert host1 in script
    # The reflector starts first; the daemons stop before their namespaces go.
    assert script.index("vtysh -N pvx0001-underlay -b") < script.index(host1)
    stop = lines.index(
        "kill $(cat /var/run/frr/pvx0001-underlay/bgpd.pid) $(cat /var/run/frr/pvx0001-underlay/zebra.pid)"
    )
    assert lines[stop + 1] == "rm -rf /etc/frr/pvx0001-underlay /var/run/frr/pvx0001-underlay"
    assert lines.index("ip netns del pvx0001-guest1") > stop
    wait = lines.index("sleep 5  # FRR: the BGP sessions come up and every route is distributed")
    assert lines[wait - 1] == "vtysh -N pvx0001-host2 -b"
    assert lines[wait + 1] == "ip netns exec pvx0001-guest1 ping -c 1 -W 1 203.0.113.2"


def test_other_modes_print_no_frr() -> None:
    for mode in (FdbMode.MULTICAST, FdbMode.UNICAST, FdbMode.CONTROLLER):
        text = "\n".join(lab_commands(classic_demo(2, mode), prefix="pvx0001"))
        assert "frr" not in text and "neigh_suppress" not in text


# --- FRR running the lab -------------------------------------------------------------------------------


Table = tuple[set[tuple[str, str]], set[tuple[str, str]], set[str]]
Tables = dict[tuple[str, int], Table]


def implied_tables(topo: Topology) -> Tables:
    """What EVPN puts in every VTEP, worked out from the topology alone: per (host, VNI), each
    remote guest's MAC behind its host and its IP resolving to its MAC (type-2 routes), and every
    other VTEP of the VNI on the flood list (type-3 routes)."""
    tables: Tables = {}
    for host in topo.hosts:
        for dev in host.devices:
            remote = [g for g in topo.guests if g.vni == dev.vni and g.host != host.name]
            tables[(host.name, dev.vni)] = (
                {(g.mac, topo.host(g.host).address) for g in remote},
                {(g.address, g.mac) for g in remote},
                {h.address for h in topo.hosts if h is not host and any(d.vni == dev.vni for d in h.devices)},
            )
    return tables


def sim_tables(topo: Topology, moves: list[tuple[str, str]]) -> Tables:
    """The simulator's evpn mode on the same topology, settled after each move."""

    async def main() -> Tables:
        async with sim.open_lab(topo) as lab:
            assert lab.evpn is not None
            await lab.evpn.settled()
            for guest, host in moves:
                await lab.move_guest(guest, host)
                await lab.evpn.settled()
            keys = [(h.name, d.vni) for h in topo.hosts for d in h.devices]
            tables = {key: lab.evpn.tables(*key) for key in keys}
            return {key: (set(t.fdb), set(t.neighbours), set(t.flood)) for key, t in tables.items()}

    return sim.run(main)


def kernel_tables(lab: KernelLab) -> Tables:
    return {key: lab.evpn_tables(*key) for key in lab.vteps()}


def two_vni_topology() -> Topology:
    """Four hosts, VNI 10 on all, VNI 20 on two of them; guests on both VNIs."""
    hosts = tuple(
        Host(f"host{i}", f"198.51.100.{i}", (VxlanDevice(10),) + ((VxlanDevice(20),) if i <= 2 else ()))
        for i in range(1, 5)
    )
    guests = (
        GuestSpec("guest1", "host1", 10, "02:00:00:00:00:01", "203.0.113.1/24"),
        GuestSpec("guest2", "host2", 10, "02:00:00:00:00:02", "203.0.113.2/24"),
        GuestSpec("guest3", "host3", 10, "02:00:00:00:00:03", "203.0.113.3/24"),
        GuestSpec("guest4", "host4", 10, "02:00:00:00:00:04", "203.0.113.4/24"),
        GuestSpec("guest5", "host1", 20, "02:00:00:00:00:05", "192.0.2.5/24"),
        GuestSpec("guest6", "host2", 20, "02:00:00:00:00:06", "192.0.2.6/24"),
    )
    return Topology(Underlay("198.51.100.0/24"), hosts, guests, FdbMode.EVPN)


@pytest.mark.kernel
def test_evpn_lab_pings_tables_and_moves_as_the_simulator() -> None:
    need_frr()
    topo = two_vni_topology()
    moves = [("guest1", "host3"), ("guest5", "host2")]
    steps = [implied_tables(topo)]
    for guest, host in moves:
        steps.append(implied_tables(topo := topo.with_guest_on(guest, host)))
    topo = two_vni_topology()
    # The simulator's evpn mode agrees with the topology, before and after the moves.
    assert sim_tables(topo, []) == steps[0]
    assert sim_tables(topo, moves) == steps[-1]

    async def main() -> None:
        async with open_lab(topo) as lab:  # open_lab waits until FRR has distributed every route
            assert kernel_tables(lab) == steps[0]
            for src, dst in (("guest1", "203.0.113.4"), ("guest3", "203.0.113.2"), ("guest6", "192.0.2.5")):
                assert (await lab.guest(src).ping(dst, timeout=2.0)).received == 1, (src, dst)
            # ARP was answered by the bridges (neigh_suppress) from zebra's entries: nothing new.
            assert kernel_tables(lab) == steps[0]
            times = []
            for (guest, host), want in zip(moves, steps[1:], strict=True):
                start = trio.current_time()
                await lab.move_guest(guest, host)
                await lab.evpn_settled()
                times.append(trio.current_time() - start)
                assert kernel_tables(lab) == want
            assert (await lab.guest("guest4").ping("203.0.113.1", timeout=2.0)).received == 1
            assert (await lab.guest("guest1").ping("203.0.113.2", timeout=2.0)).received == 1
            assert (await lab.guest("guest6").ping("192.0.2.5", timeout=2.0)).received == 1
            print(f"\nevpn kernel lab, 4 hosts: moves converged in {', '.join(f'{t * 1000:.0f} ms' for t in times)}")

    trio.run(main)


@pytest.mark.kernel
def test_evpn_lab_stops_its_daemons_and_removes_their_files() -> None:
    need_frr()
    prefix = new_prefix()

    async def main() -> list[frr.FrrDaemon]:
        async with open_lab(classic_demo(2, FdbMode.EVPN), prefix=prefix) as lab:
            assert [ns[len(prefix) + 1 :] for ns in frr.lab_pathspaces(prefix)] == ["host1", "host2", "underlay"]
            daemons = frr.leftover_daemons(prefix)
            assert sorted((d.ns[len(prefix) + 1 :], d.daemon) for d in daemons) == [
                (ns, d) for ns in ("host1", "host2", "underlay") for d in ("bgpd", "zebra")
            ]
            assert all(running(d.pid) for d in daemons)
            assert lab.prefix == prefix
            return daemons

    daemons = trio.run(main)
    assert [d.pid for d in daemons if running(d.pid)] == []
    assert frr.lab_pathspaces(prefix) == []


@pytest.mark.kernel
def test_cleanup_stops_the_daemons_a_crashed_lab_left() -> None:
    need_frr()
    prefix = new_prefix()
    ns = f"{prefix}-underlay"
    from pyvxlan.kernel import netlink as nl

    nl.netns_create(ns)
    try:
        # What a lab killed mid-run leaves: a namespace, its FRR pathspace and daemons.
        frr.write_config(ns, frr.reflector_config(classic_demo(2, FdbMode.EVPN)))
        daemons = [frr.start_daemon(ns, d) for d in frr.DAEMONS]
        report = cleanup(prefix)
        assert report.removed == (
            f"zebra pid {daemons[0].pid} in {ns}",
            f"bgpd pid {daemons[1].pid} in {ns}",
            f"namespace {ns}",
        )
        assert [d.pid for d in daemons if running(d.pid)] == []
        assert frr.lab_pathspaces(prefix) == []
    finally:
        frr.stop_daemons(frr.leftover_daemons(prefix))
        for path in frr.lab_pathspaces(prefix):
            frr.remove_pathspace(path)
        if nl.netns_exists(ns):
            nl.netns_remove(ns)


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
name = "web"
host = "host1"
vni = 10
mac = "02:00:00:00:00:01"
ip = "203.0.113.1/24"

[[guests]]
name = "db"
host = "host2"
vni = 10
mac = "02:00:00:00:00:02"
ip = "203.0.113.2/24"

[[steps]]
action = "ping"
from = "web"
to = "db"
expect = "all"

[[steps]]
action = "move"
guest = "db"
to = "host3"

[[steps]]
action = "ping"
from = "web"
to = "db"
expect = "all"

[[steps]]
action = "expect-fdb"
host = "host1"
vni = 10
mac = "02:00:00:00:00:02"
dst = "198.51.100.3"
"""


@pytest.mark.kernel
def test_demo_and_run_in_evpn_mode_on_the_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_frr()
    assert main(["demo", "--backend", "kernel", "--mode", "evpn"]) == 0
    out = capsys.readouterr().out
    assert "3 packets transmitted, 3 received, 0% packet loss" in out
    assert "  02:00:00:00:00:01 dev vxlan10 dst 198.51.100.1 self extern_learn" in out
    assert "  00:00:00:00:00:00 dev vxlan10 dst 198.51.100.1 self permanent" in out
    # The simulated demo's move: guest2 to host1, which host2's VTEP follows.
    assert "guest2 moves to host1 (its MAC's new route carries a higher mobility sequence)\n" in out
    assert "  every VTEP's tables right again after " in out
    assert "  02:00:00:00:00:02 dev vxlan10 dst 198.51.100.1 self extern_learn" in out
    path = tmp_path / "move.toml"
    path.write_text(SCENARIO)
    assert main(["run", str(path), "--backend", "kernel"]) == 0
    out = capsys.readouterr().out
    assert "4 steps, 3 expectations, 0 failed" in out
    assert "found: 02:00:00:00:00:02 dev vxlan10 dst 198.51.100.3 self extern_learn" in out


@pytest.mark.kernel
def test_evpn_lab_with_ipv6_guests() -> None:
    """IPv6 guests: the bridges learn their addresses from unsolicited neighbour advertisements,
    zebra advertises them, and ND is answered from the entries it installs elsewhere."""
    need_frr()
    hosts = tuple(Host(f"host{i}", f"198.51.100.{i}", (VxlanDevice(10),)) for i in (1, 2, 3))
    guests = (
        GuestSpec("guest1", "host1", 10, "02:00:00:00:00:01", "2001:db8:1::1/64"),
        GuestSpec("guest2", "host2", 10, "02:00:00:00:00:02", "2001:db8:1::2/64"),
    )
    topo = Topology(Underlay("198.51.100.0/24"), hosts, guests, FdbMode.EVPN)

    async def main() -> None:
        async with open_lab(topo) as lab:
            assert kernel_tables(lab) == implied_tables(topo)
            assert (await lab.guest("guest1").ping("2001:db8:1::2", timeout=2.0)).received == 1
            await lab.move_guest("guest2", "host3")
            await lab.evpn_settled()
            assert kernel_tables(lab) == implied_tables(topo.with_guest_on("guest2", "host3"))
            assert (await lab.guest("guest1").ping("2001:db8:1::2", timeout=2.0)).received == 1

    trio.run(main)


# --- both backends in step -----------------------------------------------------------------------------


@pytest.mark.kernel
def test_lab_neighbours_are_the_bridges_in_the_kernel_and_the_devices_in_the_simulator() -> None:
    """``Lab.neighbours``: what each host answers ARP/ND from. FRR's zebra puts them on the bridge
    (ARP/ND suppression there, no proxy on the vxlan device); the simulated device answers itself.
    Both labs name the same entries: the other hosts' guests of the VNI."""
    need_frr()
    topo = two_vni_topology()
    want = {key: table[1] for key, table in implied_tables(topo).items()}

    async def on_sim() -> dict[tuple[str, int], set[tuple[str, str]]]:
        async with sim.open_lab(topo) as lab:
            return {key: {(n.ip, n.mac) for n in await lab.neighbours(*key)} for key in want}

    async def on_kernel() -> tuple[dict[tuple[str, int], set[tuple[str, str]]], list[tuple[str, str]]]:
        async with open_lab(topo) as lab:
            found = {key: {(n.ip, n.mac) for n in await lab.neighbours(*key)} for key in want}
            device = [(n.ip, n.mac) for n in await lab.vtep("host1", 10).neighbours()]
            return found, device

    assert sim.run(on_sim) == want
    found, device = trio.run(on_kernel)
    assert found == want
    assert want[("host1", 10)] == {(f"203.0.113.{i}", f"02:00:00:00:00:0{i}") for i in (2, 3, 4)}
    assert device == []  # why lab_state reads Lab.neighbours, not the device's


@pytest.mark.kernel
def test_run_backend_both_agrees_in_evpn_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``pyvxlan run FILE --backend both`` on an evpn lab: a ping, a move, a ping, an expect-fdb,
    compared after each step (neighbours too) with no divergence: each side waits for the move's
    route to cross its reflector before the comparison."""
    need_frr()
    path = tmp_path / "move.toml"
    path.write_text(SCENARIO)
    assert main(["run", str(path), "--backend", "both"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("3 hosts, 2 guests, mode evpn, 4 steps, backend both")
    assert [line.split()[0] for line in out[1:9]] == ["sim"] * 4 + ["kernel"] * 4
    assert sum("3 sent, 3 received" in line for line in out) == 4
    assert out[-2:] == ["no divergence in 4 steps", "4 steps, 0 failed expectations, 0 divergence"]
