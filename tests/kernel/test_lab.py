"""Labs in network namespaces: the classic demo for real, names, cleanup, captures, notifications."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from pyvxlan import ConfigError, EntryLearned, EntryMigrated, FdbEntry, L3Miss, PrivilegeError, VtepControl
from pyvxlan.errors import LabKeyError
from pyvxlan.kernel import guest as guestmod
from pyvxlan.kernel import lab as labmod
from pyvxlan.kernel import lab_commands, lab_namespaces, open_lab, plan
from pyvxlan.kernel import netlink as nl
from pyvxlan.lab import Lab, SimulatedLab
from pyvxlan.lab.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice, classic_demo
from pyvxlan.wire import pcap as pcapmod

pytestmark = pytest.mark.kernel

MODES = [FdbMode.MULTICAST, FdbMode.UNICAST, FdbMode.CONTROLLER]


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4-underlay", "ipv6-underlay"])
@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_classic_demo_pings(root: None, mode: FdbMode, ipv6: bool) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(mode=mode, ipv6=ipv6)) as lab:
            shared: Lab = lab  # mypy checks the Lab protocol here
            assert isinstance(shared.vtep("host1", 10), VtepControl)
            result = await lab.guest("guest1").ping("203.0.113.2", count=2, interval=0.05)
            assert (result.sent, result.received, len(result.rtts)) == (2, 2, 2)
            back = await lab.guest("guest2").ping("203.0.113.1")
            assert back.received == 1
            assert (await lab.guest("guest1").ping("203.0.113.99", timeout=0.2)).received == 0

    trio.run(main)


def test_lookups_raise_lab_key_errors_as_the_simulated_lab_does(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo()) as lab:
            assert isinstance(lab, Lab) and not isinstance(lab, SimulatedLab)
            for call, message in (
                (lambda: lab.guest("x"), "no guest 'x' (there are: guest1, guest2)"),
                (lambda: lab.vtep("host1", 11), "no vxlan device on host 'host1' with VNI 11 (there are: 10)"),
                (lambda: lab.vtep("host9", 10), "no host 'host9' (there are: host1, host2)"),
                (lambda: lab.guest_host("g"), "no guest 'g' (there are: guest1, guest2)"),
                (lambda: lab.link_down("host9"), "no host 'host9' (there are: host1, host2)"),
            ):
                with pytest.raises(LabKeyError) as info:
                    call()
                assert str(info.value) == message

    trio.run(main)


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_ipv6_guests_ping_over_the_overlay(root: None, mode: FdbMode) -> None:
    device = VxlanDevice(10, group="239.1.1.1")
    topology = Topology(
        Underlay("198.51.100.0/24"),
        (Host("host1", "198.51.100.1", (device,)), Host("host2", "198.51.100.2", (device,))),
        (
            GuestSpec("guest1", "host1", 10, "02:00:00:00:00:01", "2001:db8:10::1/64"),
            GuestSpec("guest2", "host2", 10, "02:00:00:00:00:02", "2001:db8:10::2/64"),
        ),
        mode,
    )

    async def main() -> None:
        async with open_lab(topology) as lab:
            result = await lab.guest("guest1").ping("2001:db8:10::2", count=2, interval=0.05, timeout=2)
            assert (result.sent, result.received) == (2, 2)
            # only the guests' MACs: the devices' own IPv6 stays silent
            assert {e.mac for e in lab.fdb("host1", 10)} <= {"02:00:00:00:00:02", "00:00:00:00:00:00"}

    trio.run(main)


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_two_vnis_on_every_host_stay_apart(root: None, mode: FdbMode) -> None:
    d10, d20 = VxlanDevice(10, group="239.1.1.1"), VxlanDevice(20, group="239.1.1.1")
    guests = (
        GuestSpec("a1", "host1", 10, "02:00:00:00:00:01", "203.0.113.1/24"),
        GuestSpec("a2", "host2", 10, "02:00:00:00:00:02", "203.0.113.2/24"),
        GuestSpec("b1", "host1", 20, "02:00:00:00:01:01", "203.0.113.11/24"),
        GuestSpec("b2", "host2", 20, "02:00:00:00:01:02", "203.0.113.12/24"),
    )
    hosts = tuple(Host(f"host{i}", f"198.51.100.{i}", (d10, d20)) for i in (1, 2))
    topology = Topology(Underlay("198.51.100.0/24"), hosts, guests, mode)

    async def main() -> None:
        async with open_lab(topology) as lab:
            assert (await lab.guest("a1").ping("203.0.113.2")).received == 1
            assert (await lab.guest("b1").ping("203.0.113.12")).received == 1
            assert (await lab.guest("a1").ping("203.0.113.12", timeout=0.3)).received == 0

    trio.run(main)


def test_three_hosts_in_unicast_mode_flood_to_every_peer(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(3, mode=FdbMode.UNICAST)) as lab:
            assert sorted(lab.fdb_lines("host1", 10)) == [
                "00:00:00:00:00:00 dev vxlan10 dst 198.51.100.2 self permanent",
                "00:00:00:00:00:00 dev vxlan10 dst 198.51.100.3 self permanent",
            ]
            assert (await lab.guest("guest3").ping("203.0.113.1")).received == 1
            assert (await lab.guest("guest2").ping("203.0.113.3")).received == 1

    trio.run(main)


def test_lab_names_carry_the_prefix_and_everything_goes_on_exit(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(), prefix="pvx00a1") as lab:
            assert lab.namespaces == [
                "pvx00a1-guest1",
                "pvx00a1-guest2",
                "pvx00a1-host1",
                "pvx00a1-host2",
                "pvx00a1-underlay",
            ]
            with pytest.raises(ConfigError) as exc:
                async with open_lab(classic_demo(), prefix="pvx00a1"):
                    pass
            # the lab's lock says who runs it (this process)
            assert str(exc.value) == f"prefix: a lab with prefix pvx00a1 is running (pid {os.getpid()})"

    trio.run(main)
    assert lab_namespaces("pvx00a1") == []


def test_a_prefix_with_leftovers_and_no_owner_is_refused_with_the_cleanup_command(root: None) -> None:
    nl.netns_create("pvx00a2-underlay")  # what a SIGKILLed lab leaves: namespaces, no owner
    try:

        async def main() -> None:
            with pytest.raises(ConfigError) as exc:
                async with open_lab(classic_demo(), prefix="pvx00a2"):
                    pass
            assert (
                str(exc.value)
                == "prefix: a lab with prefix pvx00a2 exists already (pyvxlan lab cleanup --prefix pvx00a2)"
            )

        trio.run(main)
        assert lab_namespaces("pvx00a2") == ["pvx00a2-underlay"]  # nothing of it was touched
    finally:
        nl.netns_remove("pvx00a2-underlay")


def test_two_labs_run_side_by_side(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo()) as a, open_lab(classic_demo(mode=FdbMode.UNICAST)) as b:
            assert a.prefix != b.prefix
            assert (await a.guest("guest1").ping("203.0.113.2")).received == 1
            assert (await b.guest("guest1").ping("203.0.113.2")).received == 1

    trio.run(main)


def test_everything_goes_on_error(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(), prefix="pvx00a2"):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        trio.run(main)
    assert lab_namespaces("pvx00a2") == []


@pytest.mark.parametrize("at_step", [1, 9, 25])
def test_cancelled_set_up_leaves_nothing_behind(root: None, monkeypatch: pytest.MonkeyPatch, at_step: int) -> None:
    # Cancel the lab's scope from inside step `at_step` (as a timeout or Ctrl-C would arrive).
    real = plan.run_step
    done = 0
    scope = trio.CancelScope()

    def step(s: plan.Step, ctx: plan.BuildContext) -> None:
        nonlocal done
        real(s, ctx)
        done += 1
        if done == at_step:
            trio.from_thread.run_sync(scope.cancel)

    monkeypatch.setattr(plan, "run_step", step)

    async def main() -> None:
        with scope:
            async with open_lab(classic_demo(), prefix="pvx00a3"):
                raise AssertionError("set-up should have been cancelled")

    trio.run(main)
    assert done == at_step
    assert lab_namespaces("pvx00a3") == []


def test_ctrl_c_during_set_up_leaves_nothing_behind(root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = plan.run_step

    def step(s: plan.Step, ctx: plan.BuildContext) -> None:
        real(s, ctx)
        if s.command.startswith("ip -n pvx00a4-host2 link add vxlan10"):
            raise KeyboardInterrupt

    monkeypatch.setattr(plan, "run_step", step)

    async def main() -> None:
        async with open_lab(classic_demo(), prefix="pvx00a4"):
            pass

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)
    assert lab_namespaces("pvx00a4") == []


def test_a_failing_step_names_its_command_and_cleans_up(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(), prefix="pvx00a5"):
            pass

    nl.netns_create("pvx00a5-guest1")  # in the way of the lab's own namespace
    try:
        with pytest.raises(ConfigError) as exc:
            trio.run(main)
        assert str(exc.value) == "netns: network namespace 'pvx00a5-guest1' exists already"
        assert lab_namespaces("pvx00a5") == ["pvx00a5-guest1"]
    finally:
        nl.netns_remove("pvx00a5-guest1")


def test_open_lab_without_privilege_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labmod.nl.os, "geteuid", lambda: 1000)  # type: ignore[attr-defined]
    monkeypatch.setattr(nl, "has_cap_net_admin", lambda status_path="": False)

    async def main() -> None:
        async with open_lab(classic_demo()):
            pass

    with pytest.raises(PrivilegeError) as exc:
        trio.run(main)
    assert str(exc.value) == "root or CAP_NET_ADMIN is needed to build a lab in network namespaces"


def test_learned_entries_arrive_as_notifications(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo()) as lab:
            async with lab.vtep("host2", 10).subscribe() as stream:
                assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
                with trio.fail_after(5):
                    first = await stream.__anext__()
            assert first == EntryLearned("02:00:00:00:00:01", "198.51.100.1")

    trio.run(main)


def test_proxy_without_a_neighbour_raises_l3miss(root: None) -> None:
    device = VxlanDevice(10, l3miss=True)
    topology = Topology(
        Underlay("198.51.100.0/24"),
        (Host("host1", "198.51.100.1", (device,)), Host("host2", "198.51.100.2", (device,))),
        (GuestSpec("guest1", "host1", 10, "02:00:00:00:00:01", "203.0.113.1/24"),),
        FdbMode.CONTROLLER,
    )

    async def main() -> None:
        async with open_lab(topology) as lab, lab.vtep("host1", 10).subscribe() as stream:
            assert (await lab.guest("guest1").ping("203.0.113.7", timeout=0.3)).received == 0
            with trio.fail_after(5):
                assert await stream.__anext__() == L3Miss("203.0.113.7")

    trio.run(main)


def test_capture_records_the_underlay_once_per_frame(root: None, tmp_path: Path) -> None:
    path = tmp_path / "underlay.pcap"

    async def main() -> None:
        async with open_lab(classic_demo(mode=FdbMode.UNICAST)) as lab:
            lab.capture(str(path))
            assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1

    trio.run(main)
    stats = pcapmod.PcapStats()
    frames = [d for _, d in pcapmod.read(str(path), stats=stats)]
    # ARP request, ARP reply, echo request, echo reply: each crossed the underlay once
    assert [(d.outer_src, d.outer_dst, d.header.vni) for d in frames] == [
        ("198.51.100.1", "198.51.100.2", 10),
        ("198.51.100.2", "198.51.100.1", 10),
        ("198.51.100.1", "198.51.100.2", 10),
        ("198.51.100.2", "198.51.100.1", 10),
    ]
    assert (stats.packets, stats.vxlan, stats.not_vxlan) == (6, 4, 2)  # and the hosts' own ARP


def test_capture_of_a_guest_records_its_own_frames(root: None, tmp_path: Path) -> None:
    path = tmp_path / "guest2.pcap"

    async def main() -> None:
        async with open_lab(classic_demo(mode=FdbMode.UNICAST)) as lab:
            lab.capture(str(path), guest="guest2")
            assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1

    trio.run(main)
    stats = pcapmod.PcapStats()
    assert list(pcapmod.read(str(path), stats=stats)) == []  # inner frames: no VXLAN on a guest's link
    # ARP request in, ARP reply out, echo request in, echo reply out
    assert (stats.packets, stats.not_vxlan) == (4, 4)


def test_move_guest_relearns_the_new_host_as_a_migration(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(3)) as lab:
            assert (await lab.guest("guest1").ping("203.0.113.3")).received == 1
            async with lab.vtep("host3", 10).subscribe() as stream:
                await lab.move_guest("guest1", "host2")
                with trio.fail_after(5):
                    note = await stream.__anext__()
            # "vxlan10: MAC migrated from 198.51.100.1 to 198.51.100.2", from the gratuitous ARP
            assert note == EntryMigrated("02:00:00:00:00:01", "198.51.100.1", "198.51.100.2")
            assert lab.guest_host("guest1") == "host2"
            assert (await lab.guest("guest1").ping("203.0.113.3")).received == 1
            assert [e.dst for e in lab.fdb("host3", 10) if e.mac == "02:00:00:00:00:01"] == ["198.51.100.2"]

    trio.run(main)


def test_partition_splits_the_underlay_and_heal_joins_it(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(3)) as lab:
            lab.partition(["host1"])
            assert (await lab.guest("guest1").ping("203.0.113.2", timeout=0.3)).received == 0
            assert (await lab.guest("guest2").ping("203.0.113.3", timeout=2)).received == 1
            lab.heal()
            assert (await lab.guest("guest1").ping("203.0.113.2", timeout=2)).received == 1

    trio.run(main)


def test_link_down_cuts_a_host_off(root: None) -> None:
    async def main() -> None:
        async with open_lab(classic_demo(mode=FdbMode.UNICAST)) as lab:
            lab.link_down("host2")
            assert (await lab.guest("guest1").ping("203.0.113.2", timeout=0.3)).received == 0
            lab.link_up("host2")
            assert (await lab.guest("guest1").ping("203.0.113.2", timeout=2)).received == 1

    trio.run(main)


# --- the same scenario on the simulator and on the kernel ------------------------------------------


def _normalized(tables: dict[tuple[str, int], list[FdbEntry]]) -> dict[tuple[str, int], list[tuple[object, ...]]]:
    # MACs, remotes and states; timers and the `via` interface left out.
    return {key: sorted(e.key() for e in entries) for key, entries in tables.items()}


async def _scenario(lab: Any) -> None:
    # Pings, a guest migration (gratuitous ARP; the controller reprograms), pings again.
    for src, dst in (("guest1", "203.0.113.2"), ("guest3", "203.0.113.1")):
        assert (await lab.guest(src).ping(dst, timeout=2)).received == 1
    await lab.move_guest("guest1", "host2")
    await lab.sleep(0.2)
    assert (await lab.guest("guest3").ping("203.0.113.1", timeout=2)).received == 1
    assert (await lab.guest("guest2").ping("203.0.113.3", timeout=2)).received == 1


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_the_same_scenario_ends_with_the_same_fdb_tables_on_sim_and_kernel(root: None, mode: FdbMode) -> None:
    from pyvxlan import sim

    topology = classic_demo(3, mode=mode)

    async def on_sim() -> dict[tuple[str, int], list[FdbEntry]]:
        async with sim.open_lab(topology) as lab:
            await _scenario(lab)
            return {(h.name, 10): await lab.vtep(h.name, 10).fdb() for h in topology.hosts}

    async def on_kernel() -> dict[tuple[str, int], list[FdbEntry]]:
        async with open_lab(topology) as lab:
            await _scenario(lab)
            return await lab.fdb_tables()

    simulated = _normalized(sim.run(on_sim))
    real = _normalized(trio.run(on_kernel))
    assert real == simulated


# --- lab_commands ---------------------------------------------------------------------------------


def test_lab_commands_need_no_privilege(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labmod.nl.os, "geteuid", lambda: 1000)  # type: ignore[attr-defined]
    lines = lab_commands(classic_demo(mode=FdbMode.CONTROLLER), prefix="pvx0001")
    assert lines[:3] == [
        "ip netns add pvx0001-underlay",
        "ip netns exec pvx0001-underlay sysctl -qw net.ipv6.conf.default.disable_ipv6=1",
        "ip -n pvx0001-underlay link add _ul type bridge mcast_snooping 0 forward_delay 0 stp_state 0",
    ]
    assert (
        "ip -n pvx0001-host1 link add vxlan10 address 02:9f:c7:6a:99:01 type vxlan id 10 local 198.51.100.1 "
        "dev eth0 dstport 4789 srcport 49152 65535 nolearning proxy"
    ) in lines
    assert "bridge -n pvx0001-host1 fdb add 02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2" in lines
    assert "ip -n pvx0001-host1 neigh add 203.0.113.2 lladdr 02:00:00:00:00:02 dev vxlan10 nud permanent" in lines
    assert lines[-7:] == [
        "ip netns exec pvx0001-guest1 ping -c 1 -W 1 203.0.113.2",
        "ip netns exec pvx0001-guest2 ping -c 1 -W 1 203.0.113.1",
        "ip netns del pvx0001-guest1",
        "ip netns del pvx0001-guest2",
        "ip netns del pvx0001-host1",
        "ip netns del pvx0001-host2",
        "ip netns del pvx0001-underlay",
    ]


@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_the_printed_commands_build_a_lab_that_pings(root: None, mode: FdbMode) -> None:
    import shutil

    missing = [tool for tool in ("ip", "bridge", "sysctl", "ping") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the printed script needs {', '.join(missing)} (iproute2, procps, iputils-ping)")
    lines = lab_commands(classic_demo(mode=mode), prefix="pvx00a6")
    try:
        for line in lines:
            done = subprocess.run(line.split(), capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"{line}: {done.stderr}"
    finally:
        for ns in lab_namespaces("pvx00a6"):
            nl.netns_remove(ns)


_INTERRUPTED = """
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the test runner ignores SIGINT
import trio
from pyvxlan.kernel import open_lab
from pyvxlan.lab.topology import classic_demo

async def main():
    async with open_lab(classic_demo(4), prefix="PREFIX") as lab:
        await lab.guest("guest1").ping("203.0.113.2")
        await trio.sleep_forever()

trio.run(main)
"""


def test_sigint_to_a_real_process_during_set_up_leaves_nothing_behind(root: None) -> None:
    import signal
    import sys
    import time

    prefix = labmod.new_prefix()  # not a fixed one: a leftover of another run would end the wait at once
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED.replace("PREFIX", prefix)], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not lab_namespaces(prefix) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert lab_namespaces(prefix), "the lab never started"
        os.kill(proc.pid, signal.SIGINT)  # its first namespace exists: set-up is under way
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # KeyboardInterrupt went through open_lab's clean-up and ended the process
    assert proc.returncode == -signal.SIGINT, err
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert lab_namespaces(prefix) == []


def test_down_flushes_the_proxy_neighbours_so_arp_behind_that_vtep_fails(root: None) -> None:
    # Linux: `ip link set DEV down` flushes the device's neighbours, permanent ones included, and
    # a guest answering an echo resolves the sender with ARP first (it learns nothing from the
    # request itself): behind a proxy with no entry, that ARP goes unanswered.
    async def main() -> None:
        async with open_lab(classic_demo(3, mode=FdbMode.CONTROLLER)) as lab:
            await lab.vtep_down("host3", 10)
            await lab.vtep_up("host3", 10)
            assert await lab.vtep("host3", 10).neighbours() == []
            assert (await lab.guest("guest2").ping("203.0.113.3", timeout=0.5)).received == 0
            await lab.vtep("host3", 10).neigh_add("203.0.113.2", "02:00:00:00:00:02")
            assert (await lab.guest("guest2").ping("203.0.113.3", timeout=2)).received == 1

    trio.run(main)


def test_the_demo_page_shows_exactly_the_commands_lab_commands_gives() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "kernel-demo.md").read_text()
    section = page.split("## The commands it corresponds to", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.splitlines() == lab_commands(classic_demo(), prefix="pvx0001")


def test_a_guest_socket_that_never_opens_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyroute2's helper for a socket in a namespace was seen never to answer when the namespace
    went meanwhile (``lab cleanup --force``): the wait is bounded, and a cancellation ends it."""
    import threading
    import time

    released = threading.Event()

    def never_answers(*_args: Any) -> Any:
        released.wait(5)  # the old code waited for this thread: it failed after 5 s, not at once
        raise RuntimeError("the helper answered late")

    monkeypatch.setattr(nl, "open_socket", never_answers)
    monkeypatch.setattr(guestmod, "SOCKET_TIMEOUT", 0.2)
    guest = labmod.KernelGuest(classic_demo().guests[0], "pvx3a50-guest1")

    async def main() -> None:
        start = time.monotonic()
        with pytest.raises(ConfigError) as info:
            await guest.ping("203.0.113.2")
        assert str(info.value) == (
            "netns: no socket could be opened in network namespace 'pvx3a50-guest1' within 0.2 s"
        )
        with trio.move_on_after(0.05):  # as Ctrl-C or SIGTERM cancels it
            await guest.announce()
        assert time.monotonic() - start < 2

    try:
        trio.run(main)
    finally:
        released.set()


def test_the_lab_modules_doctests_pass() -> None:
    # tests/test_docs.py leaves pyvxlan.kernel out of its doctest sweep; these need no root.
    import doctest

    from pyvxlan.kernel import cleanup, extra, guest

    results = [doctest.testmod(m, optionflags=doctest.ELLIPSIS) for m in (labmod, plan, cleanup, guest, extra)]
    assert [r.failed for r in results] == [0] * 5
    assert results[0].attempted >= 1 and results[1].attempted >= 1
