"""``KernelVtep`` on real vxlan devices: creation, attaching, the pyroute2 traps, errors, bulk paths."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
from collections.abc import Awaitable, Callable

import pytest
import trio

from pyvxlan import (
    BackendError,
    ConfigError,
    EntryExpired,
    EntryLearned,
    FdbBatchError,
    FdbEntry,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    FdbState,
    L2Miss,
    NeighbourError,
    NeighbourExists,
    NeighbourNotFound,
    PrivilegeError,
    Vtep,
    VtepConfig,
)
from pyvxlan.core.events import Notification
from pyvxlan.kernel import KernelVtep, open_vtep
from pyvxlan.kernel import netlink as nl

pytestmark = pytest.mark.kernel


def sh(netns: str, command: str) -> str:
    """Run ``ip``/``bridge`` in ``netns`` and return its output (what a user would type)."""
    tool, _, rest = command.partition(" ")
    out = subprocess.run([tool, "-n", netns, *rest.split()], capture_output=True, text=True, check=True)
    return out.stdout


def udp_to(netns: str, ip: str) -> None:
    """One UDP datagram from ``netns`` to ``ip`` (port 9, discard)."""
    with nl.open_socket(netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"pyvxlan", (ip, 9))


def run(netns: str, body: Callable[[KernelVtep], Awaitable[None]], config: VtepConfig) -> None:
    async def main() -> None:
        async with open_vtep(config, netns=netns) as vtep:
            await body(vtep)

    trio.run(main)


def keys(entries: list[FdbEntry]) -> list[tuple[str, str, int | None, int | None, str]]:
    return sorted(e.key() for e in entries)


# --- creating and attaching ----------------------------------------------------------------------


def test_create_sets_every_option_and_attach_reads_them_back(netns: str) -> None:
    config = VtepConfig(
        vni=4242,
        local="198.51.100.1",
        remote="198.51.100.2",
        dst_port=4790,
        src_port_range=(5000, 5010),
        ttl=16,
        learning=False,
        ageing=120,
        max_entries=100,
        proxy=True,
        l2miss=True,
        l3miss=True,
        gbp=True,
        mac="02:00:00:00:42:42",
        name="pvxkvx",
    )

    async def main() -> None:
        async with open_vtep(config, netns=netns):
            attached = await KernelVtep.attach("pvxkvx", netns=netns)
            try:
                assert attached.config == config
            finally:
                await attached.aclose()

    trio.run(main)


def test_ageing_is_whole_seconds_rounded_up_never_to_zero(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        info = json.loads(sh(netns, "ip -j -d link show vxlan7"))[0]["linkinfo"]["info_data"]
        assert info["ageing"] == 1  # 0.4 s: 1, where int() would give 0, which Linux reads as 300
        assert vtep.config.ageing == 1.0
        await vtep.set_ageing(2.5)
        assert vtep.config.ageing == 3.0
        info = json.loads(sh(netns, "ip -j -d link show vxlan7"))[0]["linkinfo"]["info_data"]
        assert info["ageing"] == 3

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", ageing=0.4))


def test_explicit_dst_port_is_sent_where_linux_would_pick_8472(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        info = json.loads(sh(netns, "ip -j -d link show vxlan7"))[0]["linkinfo"]["info_data"]
        assert info["port"] == 4789

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_a_vni_already_in_use_says_so_as_iproute2_does_vxlan_vni_in_use(netns: str) -> None:
    """vxlan_vni_in_use: a second device with the same VNI and port in one namespace is EEXIST, and
    the kernel's extended ack says why; pyvxlan gives that reason, as `ip link add` prints it."""

    async def body(vtep: KernelVtep) -> None:
        with pytest.raises(BackendError) as refused:  # the kernel's refusal, not a bad setting
            await KernelVtep.create(VtepConfig(vni=7, local="198.51.100.1", name="vxlan7b"), netns=netns)
        assert (refused.value.errno, refused.value.operation, str(refused.value)) == (
            errno.EEXIST,
            "create vxlan device vxlan7b",
            "create vxlan device vxlan7b: A VXLAN device with the specified VNI already exists (errno 17)",
        )
        with pytest.raises(ConfigError) as info:  # the same name is about the name, not the VNI
            await KernelVtep.create(VtepConfig(vni=8, local="198.51.100.1", name="vxlan7"), netns=netns)
        assert (info.value.field, str(info.value)) == (
            "name",
            f"name: an interface named 'vxlan7' exists already in namespace {netns}",
        )

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_unicast_remote_goes_in_the_group_attribute_and_becomes_the_all_zeros_entry(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        assert "remote 198.51.100.2" in sh(netns, "ip -d link show vxlan7")
        assert sh(netns, "bridge fdb show dev vxlan7").splitlines() == [
            "00:00:00:00:00:00 dst 198.51.100.2 self permanent"
        ]

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2"))


def test_multicast_group_needs_dev_and_gets_a_via_entry(netns: str) -> None:
    sh(netns, "ip link add pvxkul type bridge")

    async def main() -> None:
        with pytest.raises(ConfigError) as exc:
            await KernelVtep.create(VtepConfig(vni=7, local="198.51.100.1", group="239.1.1.1"), netns=netns)
        assert str(exc.value) == "dev: a multicast group (239.1.1.1) needs an underlay interface (dev)"
        config = VtepConfig(vni=7, local="198.51.100.1", group="239.1.1.1", dev="pvxkul")
        async with open_vtep(config, netns=netns) as vtep:
            assert [e.bridge_line("vxlan7") for e in await vtep.fdb()] == [
                "00:00:00:00:00:00 dev vxlan7 dst 239.1.1.1 via pvxkul self permanent"
            ]

    trio.run(main)


def test_attach_to_a_device_made_by_ip_link_add(netns: str) -> None:
    sh(
        netns,
        "ip link add vx5 type vxlan id 5 dstport 4789 local 198.51.100.1 remote 198.51.100.9 nolearning ageing 77",
    )

    async def main() -> None:
        vtep = await KernelVtep.attach("vx5", netns=netns)
        try:
            c = vtep.config
            assert (c.vni, c.local, c.remote, c.group, c.dst_port, c.learning, c.ageing) == (
                5,
                "198.51.100.1",
                "198.51.100.9",
                None,
                4789,
                False,
                77.0,
            )
            await vtep.fdb_add("02:00:00:00:00:05", "198.51.100.5", port=5555)
            await vtep.up()
            assert await vtep.is_up()
        finally:
            await vtep.aclose()

    trio.run(main)
    assert sorted(sh(netns, "bridge fdb show dev vx5").splitlines()) == [
        "00:00:00:00:00:00 dst 198.51.100.9 self permanent",
        "02:00:00:00:00:05 dst 198.51.100.5 port 5555 self permanent",
    ]


def test_attach_errors_name_what_is_wrong(netns: str) -> None:
    async def main() -> None:
        with pytest.raises(ConfigError) as exc:
            await KernelVtep.attach("nope", netns=netns)
        assert str(exc.value) == f"name: no interface named 'nope' in namespace {netns}"
        with pytest.raises(ConfigError) as exc:
            await KernelVtep.attach("lo", netns=netns)
        assert str(exc.value) == "name: 'lo' is not a vxlan device (it is of no kind)"
        with pytest.raises(ConfigError) as exc:
            await KernelVtep.attach("a" * 16, netns=netns)
        assert str(exc.value) == f"name: {'a' * 16!r} is not a valid interface name (at most 15 bytes)"

    trio.run(main)


def test_a_missing_namespace_is_an_error_and_is_not_created(root: None) -> None:
    # pyroute2's default (flags=O_CREAT) would create "pvxk-typo" silently.
    async def main() -> None:
        with pytest.raises(ConfigError) as exc:
            await KernelVtep.attach("vxlan7", netns="pvxk-typo")
        assert str(exc.value) == "netns: no network namespace named 'pvxk-typo'"
        with pytest.raises(ConfigError):
            await KernelVtep.create(VtepConfig(vni=7), netns="pvxk-typo")

    trio.run(main)
    assert not nl.netns_exists("pvxk-typo")
    with pytest.raises(ConfigError):
        nl.NeighSocket("pvxk-typo")
    assert not nl.netns_exists("pvxk-typo")


def test_create_refuses_a_name_in_use(netns: str) -> None:
    async def main() -> None:
        async with open_vtep(VtepConfig(vni=7), netns=netns):
            with pytest.raises(ConfigError) as exc:
                await KernelVtep.create(VtepConfig(vni=8, name="vxlan7"), netns=netns)
            assert str(exc.value) == f"name: an interface named 'vxlan7' exists already in namespace {netns}"

    trio.run(main)


# --- validation before sending --------------------------------------------------------------------


def test_inputs_are_validated_before_anything_is_sent(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        cases: list[tuple[Awaitable[None], str]] = [
            (vtep.fdb_add("zz", "198.51.100.3"), "mac: 'zz' is not a MAC address"),
            (vtep.fdb_add("02:00:00:00:00:01", "nowhere"), "dst: 'nowhere' is not an IPv4 or IPv6 address"),
            (vtep.fdb_add("02:00:00:00:00:01", "2001:db8::3"), "dst: 2001:db8::3 is IPv6 but the device is IPv4"),
            (vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3", port=0), "port: must be in 1..65535, got 0"),
            (
                vtep.fdb_append("02:00:00:00:00:01", "198.51.100.3", vni=1 << 24),
                "vni: must be in 0..16777215, got 16777216",
            ),
            (vtep.neigh_add("239.1.1.1", "02:00:00:00:00:01"), "ip: 239.1.1.1 is not a unicast address"),
            (vtep.set_ageing(-1), "ageing: must be in 0..4294967295 seconds, got -1"),
        ]
        for action, message in cases:
            with pytest.raises(ConfigError) as exc:
                await action
            assert str(exc.value) == message
        assert await vtep.fdb() == []
        assert await vtep.neighbours() == []

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_config_checks_vni_range_and_name_length() -> None:
    with pytest.raises(ConfigError) as exc:
        VtepConfig(vni=1 << 24)
    assert str(exc.value) == "vni: must be in 0..16777215, got 16777216"
    with pytest.raises(ConfigError) as exc:
        VtepConfig(vni=1, name="x" * 16)
    assert str(exc.value) == f"name: {'x' * 16!r} is not a valid interface name (at most 15 bytes)"


# --- errors ----------------------------------------------------------------------------------------


def test_netlink_errnos_become_the_simulated_vteps_exceptions(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        await vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3")
        cases: list[tuple[Awaitable[None], type[Exception], str]] = [
            (
                vtep.fdb_add("02:00:00:00:00:01", "198.51.100.4"),
                FdbEntryExists,
                "02:00:00:00:00:01 already has an entry",
            ),
            (vtep.fdb_del("02:00:00:00:00:09"), FdbEntryNotFound, "02:00:00:00:00:09 has no entry"),
            (
                vtep.fdb_replace("00:00:00:00:00:00", "198.51.100.4"),
                FdbOperationNotSupported,
                "cannot replace non-unicast fdb entry 00:00:00:00:00:00",
            ),
            (vtep.neigh_del("203.0.113.9"), NeighbourNotFound, "neighbour 203.0.113.9 does not exist"),
        ]
        for action, kind, message in cases:
            with pytest.raises(kind) as exc:
                await action
            assert type(exc.value) is kind
            assert str(exc.value) == message
        await vtep.neigh_add("203.0.113.9", "02:00:00:00:00:09")
        with pytest.raises(NeighbourError) as exc2:  # the neighbour table's error, not the FDB's
            await vtep.neigh_add("203.0.113.9", "02:00:00:00:00:08")
        assert (type(exc2.value), str(exc2.value)) == (NeighbourExists, "neighbour 203.0.113.9 already exists")

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2"))


def test_other_refusals_are_one_backend_error_with_the_errno(netns: str) -> None:
    """A refusal no table explains (here ENODEV: the device was deleted under the VtepControl)
    is a BackendError carrying the errno, whichever operation met it."""

    async def main() -> None:
        vtep = await KernelVtep.create(VtepConfig(vni=7, local="198.51.100.1"), netns=netns)
        try:
            sh(netns, "ip link del vxlan7")
            gone = f"vxlan7 no longer exists in namespace {netns}"
            cases: list[tuple[Awaitable[object], str, str]] = [
                (vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3"), "fdb add 02:00:00:00:00:01 on vxlan7", gone),
                (vtep.neigh_add("203.0.113.9", "02:00:00:00:00:09"), "neigh add 203.0.113.9 on vxlan7", gone),
                (vtep.up(), "bring vxlan7 up", "No such device"),
                (vtep.set_learning(False), "set learning off on vxlan7", "No such device"),
            ]
            for action, operation, reason in cases:
                with pytest.raises(BackendError) as exc:
                    await action
                assert (type(exc.value), exc.value.errno, exc.value.operation, exc.value.reason) == (
                    BackendError,
                    errno.ENODEV,
                    operation,
                    reason,
                )
                assert str(exc.value) == f"{operation}: {reason} (errno 19)"
        finally:
            await vtep.aclose()

    trio.run(main)


def test_max_entries_gives_fdb_full_enospc(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        # maxaddress counts the all-zeros default entry too.
        await vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3")
        with pytest.raises(FdbFull) as exc:
            await vtep.fdb_add("02:00:00:00:00:02", "198.51.100.3")
        assert str(exc.value) == "the table holds max_entries=2 entries; cannot add 02:00:00:00:00:02"
        # replacing an existing entry works when full, as in Linux
        await vtep.fdb_replace("02:00:00:00:00:01", "198.51.100.4")

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2", max_entries=2))


def test_refused_replace_makes_the_default_entry_dynamic_and_it_ages_out_vxlan_fdb_update_existing(
    netns: str,
) -> None:
    """Linux's vxlan_fdb_update_existing writes the request's state before it refuses to replace
    a non-unicast entry (EOPNOTSUPP): the permanent default entry becomes dynamic and ages out
    (vxlan_cleanup), and the core does the same."""

    async def body(vtep: KernelVtep) -> None:
        await vtep.up()
        await trio.sleep(1.2)  # the default entry's ``updated`` is now more than 1 s ago
        with pytest.raises(FdbOperationNotSupported) as exc:
            await vtep.fdb_replace("00:00:00:00:00:00", "198.51.100.3", state=FdbState.REACHABLE)
        assert str(exc.value) == "cannot replace non-unicast fdb entry 00:00:00:00:00:00"
        assert sh(netns, "bridge fdb show dev vxlan7") == "00:00:00:00:00:00 dst 198.51.100.2 self \n"
        async with vtep.subscribe() as stream:
            await vtep.set_ageing(1)  # a new value re-arms the ageing timer (changelink): vxlan_cleanup runs now
            assert await _next(stream, 5.0) == EntryExpired("00:00:00:00:00:00", "198.51.100.2")
        assert await vtep.fdb() == []

    config = VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2", ageing=2)
    run(netns, body, config)
    core = Vtep(config)
    core.up(now=0.0)
    with pytest.raises(FdbOperationNotSupported):
        core.fdb_replace("00:00:00:00:00:00", "198.51.100.3", state=FdbState.REACHABLE, now=1.2)
    core.set_ageing(1, now=1.2)
    assert core.next_timer() == 1.0
    core.handle_timer(1.2)
    assert core.fdb_dump() == []
    assert core.take_outputs()[-1] == EntryExpired("00:00:00:00:00:00", "198.51.100.2")


def test_via_names_an_interface_and_unknown_ones_are_config_errors(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        await vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3", interface="lo", router=True)
        assert (
            sh(netns, "bridge fdb show dev vxlan7")
            == "02:00:00:00:00:01 dst 198.51.100.3 via lo self router permanent\n"
        )
        with pytest.raises(ConfigError) as exc:
            await vtep.fdb_add("02:00:00:00:00:02", "198.51.100.3", interface="pvxknone")
        assert str(exc.value) == f"interface: no interface named 'pvxknone' in namespace {netns}"
        with pytest.raises(ConfigError) as exc:
            await vtep.fdb_del("02:00:00:00:00:01", "198.51.100.3", interface="pvxknone")
        assert str(exc.value) == f"interface: no interface named 'pvxknone' in namespace {netns}"
        with pytest.raises(ConfigError) as exc:
            await vtep.fdb_add("02:00:00:00:00:02", None)
        assert str(exc.value) == "dst: fdb add needs a remote address (Linux: EINVAL)"
        await vtep.fdb_del("02:00:00:00:00:01", "198.51.100.3", interface="lo")
        assert await vtep.fdb() == []

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def _groups(netns: str) -> list[str]:
    """The IPv4 groups joined on ``lo`` in ``netns`` (from /proc/net/igmp, little-endian hex)."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "cat", "/proc/net/igmp"], capture_output=True, text=True, check=True
    ).stdout
    groups: list[str] = []
    on_lo = False
    for line in out.splitlines():
        if not line.startswith("\t"):
            on_lo = line.split()[1] == "lo" if line[:1].isdigit() else False
        elif on_lo:
            raw = bytes.fromhex(line.split()[0])[::-1]
            groups.append(".".join(str(b) for b in raw))
    return sorted(g for g in groups if g != "224.0.0.1")


def test_set_remote_swaps_the_group_joined_vxlan_changelink(netns: str) -> None:
    """vxlan_changelink on a running device leaves the old group and joins the new one, as the
    core's set_remote says (LeaveGroup, JoinGroup)."""
    sh(netns, "ip link set lo up")

    async def body(vtep: KernelVtep) -> None:
        await vtep.up()
        assert _groups(netns) == ["239.1.1.1"]
        await vtep.set_remote("239.1.1.2")
        assert _groups(netns) == ["239.1.1.2"]
        assert (vtep.config.group, vtep.config.remote, vtep.config.dev) == ("239.1.1.2", None, "lo")
        await vtep.set_remote("198.51.100.2")
        assert _groups(netns) == []
        assert sh(netns, "bridge fdb show dev vxlan7") == "00:00:00:00:00:00 dst 198.51.100.2 via lo self permanent\n"
        await vtep.set_remote(None)
        assert sh(netns, "bridge fdb show dev vxlan7") == ""

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", group="239.1.1.1", dev="lo"))


def test_privilege_error_says_plainly_what_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PrivilegeError) as exc:
        nl.require_privilege("create vxlan device vxlan7", euid=1000, cap_net_admin=False)
    assert str(exc.value) == "root or CAP_NET_ADMIN is needed to create vxlan device vxlan7"
    nl.require_privilege("anything", euid=1000, cap_net_admin=True)  # CAP_NET_ADMIN is enough
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(nl, "has_cap_net_admin", lambda status_path="": False)
    with pytest.raises(PrivilegeError) as exc:
        trio.run(KernelVtep.create, VtepConfig(vni=7))
    assert str(exc.value) == "root or CAP_NET_ADMIN is needed to create vxlan device vxlan7"


def test_a_failing_netlink_socket_is_the_one_backend_error() -> None:
    sock = nl.NeighSocket()  # our own namespace: no privilege needed to open it
    sock.close()
    for action, operation in (
        (lambda: sock.dump(7), "RTM_GETNEIGH dump of family 7"),
        (lambda: sock.transact([(28, 0, {"family": 7, "ifindex": 1, "state": 0, "ntf": 0})]), "RTM_*NEIGH requests"),
    ):
        with pytest.raises(BackendError) as exc:
            action()
        assert (exc.value.errno, str(exc.value)) == (errno.EBADF, f"{operation}: Bad file descriptor (errno 9)")


def test_cap_net_admin_is_read_from_proc_status(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "status"  # type: ignore[operator]
    path.write_text("Name:\tx\nCapEff:\t0000000000001000\n")
    assert nl.has_cap_net_admin(str(path))
    path.write_text("Name:\tx\nCapEff:\t0000000000000000\n")
    assert not nl.has_cap_net_admin(str(path))


# --- bulk programming and dumps --------------------------------------------------------------------


def test_fdb_append_many_programs_10000_entries_in_batches_and_reads_them_back(netns: str) -> None:
    entries = [FdbEntry(f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}", f"198.51.100.{i % 200 + 3}") for i in range(10_000)]

    async def body(vtep: KernelVtep) -> None:
        await vtep.fdb_append_many(entries)
        got = await vtep.fdb()
        assert len(got) == 10_001
        assert keys([e for e in got if e.mac != "00:00:00:00:00:00"]) == keys(entries)
        assert len(sh(netns, "bridge fdb show dev vxlan7").splitlines()) == 10_001

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2"))


def test_a_batch_failing_part_way_says_which_entries_were_applied(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        batch = [
            FdbEntry("02:00:00:00:00:01", "198.51.100.3"),
            FdbEntry("02:00:00:00:00:02", "198.51.100.3"),  # the table is full: ENOSPC
            FdbEntry("00:00:00:00:00:00", "198.51.100.4"),  # one more remote of an existing MAC: fine
        ]
        with pytest.raises(FdbBatchError) as exc:
            await vtep.fdb_append_many(batch)
        assert (exc.value.applied, exc.value.index) == (1, 1)
        assert isinstance(exc.value.__cause__, FdbFull)
        assert str(exc.value) == (
            "entry 1 failed after 1 applied: the table holds max_entries=2 entries; cannot add 02:00:00:00:00:02"
            " (the kernel also applied 1 later entry of the batch)"
        )
        assert keys(await vtep.fdb()) == [
            ("00:00:00:00:00:00", "198.51.100.2", None, None, "permanent"),
            ("00:00:00:00:00:00", "198.51.100.4", None, None, "permanent"),
            ("02:00:00:00:00:01", "198.51.100.3", None, None, "permanent"),
        ]

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2", max_entries=2))


def test_an_invalid_entry_in_a_batch_is_never_sent(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        batch = [FdbEntry("02:00:00:00:00:01", "198.51.100.3"), FdbEntry("02:00:00:00:00:02", "2001:db8::1")]
        with pytest.raises(FdbBatchError) as exc:
            await vtep.fdb_append_many(batch)
        assert str(exc.value) == "entry 1 failed after 1 applied: dst: 2001:db8::1 is IPv6 but the device is IPv4"
        assert isinstance(exc.value.__cause__, ConfigError)
        assert keys(await vtep.fdb()) == [("02:00:00:00:00:01", "198.51.100.3", None, None, "permanent")]

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_dump_keeps_the_devices_own_entries_not_the_bridges(netns: str) -> None:
    sh(netns, "ip link add pvxkbr type bridge")

    async def body(vtep: KernelVtep) -> None:
        sh(netns, "ip link set vxlan7 master pvxkbr")
        await vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3", state=FdbState.STATIC, extern_learn=True)
        # `bridge fdb show dev vxlan7` also lists the bridge's "master" entry for the port's MAC
        assert any("master pvxkbr" in line for line in sh(netns, "bridge fdb show dev vxlan7").splitlines())
        assert [e.bridge_line("vxlan7") for e in await vtep.fdb()] == [
            "02:00:00:00:00:01 dev vxlan7 dst 198.51.100.3 self extern_learn static"
        ]

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_neigh_dump_is_filtered_to_the_device(netns: str) -> None:
    sh(netns, "ip link add pvxkbr type bridge")
    sh(netns, "ip neigh add 203.0.113.50 lladdr 02:00:00:00:00:50 dev pvxkbr nud permanent")

    async def body(vtep: KernelVtep) -> None:
        await vtep.neigh_add("203.0.113.5", "02:00:00:00:00:05")
        assert [(n.ip, n.mac) for n in await vtep.neighbours()] == [("203.0.113.5", "02:00:00:00:00:05")]

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_counters_come_from_the_kernels_link_statistics(netns: str) -> None:
    # No all-zeros entry and no group: every frame the device is given is dropped (tx_dropped).
    async def body(vtep: KernelVtep) -> None:
        sh(netns, "ip addr add 192.0.2.1/24 dev vxlan7")
        await vtep.up()
        sh(netns, "ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:02 dev vxlan7 nud permanent")
        udp_to(netns, "192.0.2.2")
        counters = await vtep.counters()
        stats = json.loads(sh(netns, "ip -j -s link show vxlan7"))[0]["stats64"]
        assert counters.tx_dropped == stats["tx"]["dropped"] == 1
        assert counters.tx_packets == stats["tx"]["packets"] == 0

    # IPv6 off: the device's own router solicitations would be dropped (and counted) too.
    nl.netns_sysctl(netns, "net/ipv6/conf/default/disable_ipv6", "1")
    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", learning=False))


# --- notifications ------------------------------------------------------------------------------------


async def _next(stream: object, seconds: float = 10.0) -> Notification:
    with trio.fail_after(seconds):
        return await stream.__anext__()  # type: ignore[attr-defined, no-any-return]


def test_l2miss_arrives_as_an_l2miss_notification(netns: str) -> None:
    # RTM_GETNEIGH, family AF_INET, NDA_LLADDR only: vxlan_xmit found no entry and no default.
    async def body(vtep: KernelVtep) -> None:
        sh(netns, "ip addr add 192.0.2.1/24 dev vxlan7")
        await vtep.up()
        sh(netns, "ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:77 dev vxlan7 nud permanent")
        async with vtep.subscribe() as stream:
            udp_to(netns, "192.0.2.2")
            assert await _next(stream) == L2Miss("02:00:00:00:00:77")

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", l2miss=True, learning=False))


def test_the_users_own_changes_are_not_reported_as_learned_or_expired(netns: str) -> None:
    async def body(vtep: KernelVtep) -> None:
        sh(netns, "ip addr add 192.0.2.1/24 dev vxlan7")
        await vtep.up()
        sh(netns, "ip neigh add 192.0.2.2 lladdr 02:00:00:00:00:77 dev vxlan7 nud permanent")
        async with vtep.subscribe() as stream:
            await vtep.fdb_add("02:00:00:00:00:01", "198.51.100.3", state=FdbState.REACHABLE)  # "dynamic"
            await vtep.fdb_add("02:00:00:00:00:02", "198.51.100.3", state=FdbState.REACHABLE)
            await vtep.fdb_del("02:00:00:00:00:01")
            await vtep.down()  # flushes 02:00:00:00:00:02
            await vtep.up()
            sh(netns, "ip neigh replace 192.0.2.2 lladdr 02:00:00:00:00:77 dev vxlan7 nud permanent")
            udp_to(netns, "192.0.2.2")  # a sentinel: the first notification must be this miss
            assert await _next(stream) == L2Miss("02:00:00:00:00:77")

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1", l2miss=True, learning=False))


def test_learned_entry_that_ages_out_arrives_as_learned_then_expired(netns: str) -> None:
    # Two namespaces joined by a veth: vxlan7 in the first learns what vxlan7 in the second sends.
    # (IPv6 off, or link-up router solicitations would be learned first.)
    peer = netns + "p"
    nl.netns_create(peer)
    try:
        for ns in (netns, peer):
            nl.netns_sysctl(ns, "net/ipv6/conf/default/disable_ipv6", "1")
        sh(netns, f"ip link add pvxka type veth peer name pvxkb netns {peer}")
        sh(netns, "ip addr add 198.51.100.1/24 dev pvxka")
        sh(peer, "ip addr add 198.51.100.2/24 dev pvxkb")
        sh(netns, "ip link set pvxka up")
        sh(peer, "ip link set pvxkb up")

        async def main() -> None:
            a = VtepConfig(vni=7, local="198.51.100.1", remote="198.51.100.2", dev="pvxka", ageing=1)
            b = VtepConfig(vni=7, local="198.51.100.2", remote="198.51.100.1", dev="pvxkb")
            async with (
                open_vtep(a, netns=netns, up=True) as va,
                open_vtep(b, netns=peer, up=True),
                va.subscribe() as stream,
            ):
                frame = bytes.fromhex("ffffffffffff" + "020000000008" + "88b5") + bytes(46)
                sock = await trio.to_thread.run_sync(lambda: nl.open_socket(peer, socket.AF_PACKET, socket.SOCK_RAW, 0))
                with sock:
                    sock.bind(("vxlan7", 0))
                    sock.send(frame)
                assert await _next(stream) == EntryLearned("02:00:00:00:00:08", "198.51.100.2")
                # ageing 1 s; vxlan_cleanup runs at most every 10 s
                assert await _next(stream, 30) == EntryExpired("02:00:00:00:00:08", "198.51.100.2")

        trio.run(main)
    finally:
        nl.netns_remove(peer)


def test_netlink_calls_leave_the_trio_loop_free(netns: str) -> None:
    # 10,000 entries take tens of milliseconds of validation, encoding and kernel work; all of it
    # happens in a worker thread, so another task keeps running meanwhile.
    entries = [FdbEntry(f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}", "198.51.100.3") for i in range(10_000)]

    async def body(vtep: KernelVtep) -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await trio.sleep(0)
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await trio.sleep(0)
            start = ticks
            await vtep.fdb_append_many(entries)
            during_append = ticks - start
            start = ticks
            assert len(await vtep.fdb()) == 10_000
            during_dump = ticks - start
            nursery.cancel_scope.cancel()
        assert during_append > 10 and during_dump > 10

    run(netns, body, VtepConfig(vni=7, local="198.51.100.1"))


def test_the_kernel_modules_doctests_pass() -> None:
    # tests/test_docs.py leaves pyvxlan.kernel out of its doctest sweep; these need no root.
    import doctest

    from pyvxlan.kernel import lab, vtep

    results = [doctest.testmod(module, optionflags=doctest.ELLIPSIS) for module in (nl, lab, vtep)]
    assert [r.failed for r in results] == [0, 0, 0]
    assert results[0].attempted >= 1 and results[1].attempted >= 1
