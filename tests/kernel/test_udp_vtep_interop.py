"""The userspace VTEP (``pyvxlan.udp``) against Linux's vxlan devices in network namespaces.

Every rig has an underlay namespace with a bridge (snooping off, so a group's datagrams reach
every host as on a plain segment), host namespaces on it, and guests: a namespace behind a kernel
host's bridge and vxlan device, and behind the userspace host either an in-process guest or a
namespace on a bridge with the VTEP's TAP device. The userspace VTEP runs in this process, its
sockets and TAP made in its host's namespace (``open_vtep(netns=...)``).
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio

from pyvxlan import FdbState, VtepConfig
from pyvxlan.core.events import EntryMigrated, Notification
from pyvxlan.udp import UdpVtep, open_vtep
from pyvxlan.udp.syscalls import in_netns
from pyvxlan.wire.pcap import PcapWriter

pytestmark = pytest.mark.usefixtures("root")

UNDERLAY = {4: ["198.51.100.1", "198.51.100.2", "198.51.100.3"], 6: ["2001:db8::1", "2001:db8::2", "2001:db8::3"]}
GROUP = {4: "239.1.1.1", 6: "ff05::100"}
GUEST_IP = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
GUEST_MAC = ["02:00:00:00:99:01", "02:00:00:00:99:02", "02:00:00:00:99:03"]
ZERO = "00:00:00:00:00:00"
ETH_P_ALL = 0x0003


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@dataclass
class Rig:
    """Namespaces ``pvh9<hex>-...``: ``ul`` (the underlay bridge), hosts and guest namespaces."""

    family: int
    port: int
    prefix: str = field(default_factory=lambda: "pvh9" + secrets.token_hex(2))
    namespaces: list[str] = field(default_factory=list)

    def ns(self, name: str) -> str:
        full = f"{self.prefix}-{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def __post_init__(self) -> None:
        self.ul = self.ns("ul")
        sh("ip", "-n", self.ul, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        sh("ip", "-n", self.ul, "link", "set", "br0", "up")

    def addr(self, i: int) -> str:
        return UNDERLAY[self.family][i]

    def host(self, i: int) -> str:
        """Host ``i`` on the underlay, with ``eth0`` at underlay address ``i``."""
        host = self.ns(f"h{i}")
        sh("ip", "-n", self.ul, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0", "netns", host)
        sh("ip", "-n", self.ul, "link", "set", f"p{i}", "master", "br0", "up")
        plen = "24" if self.family == 4 else "64"
        extra = ["nodad"] if self.family == 6 else []
        sh("ip", "-n", host, "addr", "add", f"{self.addr(i)}/{plen}", "dev", "eth0", *extra)
        sh("ip", "-n", host, "link", "set", "eth0", "up")
        sh("ip", "-n", host, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", host, "link", "set", "br0", "up")
        return host

    def guest(self, host: str, i: int, name: str | None = None) -> str:
        """A guest namespace with ``eth0`` (guest MAC and IP ``i``) on ``host``'s bridge."""
        guest = self.ns(name or f"g{i}")
        self.plug(host, guest, i)
        return guest

    def plug(self, host: str, guest: str, i: int, port: str = "") -> None:
        port = port or f"v{i}"
        sh("ip", "-n", host, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", guest)
        sh("ip", "-n", guest, "link", "set", "eth0", "address", GUEST_MAC[i])
        sh("ip", "-n", guest, "addr", "add", f"{GUEST_IP[i]}/24", "dev", "eth0")
        sh("ip", "-n", guest, "link", "set", "eth0", "up")
        sh("ip", "-n", host, "link", "set", port, "master", "br0", "up")

    def kernel_vtep(self, host: str, i: int, *how: str) -> None:
        """``vx`` on ``host`` (local address ``i``), a port of its bridge."""
        sh("ip", "-n", host, "link", "add", "vx", "type", "vxlan", "id", "10", "local", self.addr(i),
           "dstport", str(self.port), *how)  # fmt: skip
        sh("ip", "-n", host, "link", "set", "vx", "master", "br0", "up")

    def kernel_fdb(self, host: str) -> set[tuple[str, str, str]]:
        rows = json.loads(sh("bridge", "-n", host, "-j", "fdb", "show", "dev", "vx") or "[]")
        return {(r["mac"], r.get("dst", ""), r.get("state", "")) for r in rows if "dst" in r}

    def close(self) -> None:
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def rig_factory() -> Iterator[list[Rig]]:
    rigs: list[Rig] = []
    yield rigs
    for rig in rigs:
        rig.close()


async def ping_from(guest: str, ip: str, count: int = 2) -> int:
    """Echo replies a guest namespace got (``ping -c COUNT``)."""
    proc = await trio.run_process(
        ["ip", "netns", "exec", guest, "ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "2", ip],
        capture_stdout=True,
        check=False,
    )
    out = proc.stdout.decode()
    line = next(x for x in out.splitlines() if "received" in x)
    return int(line.split(",")[1].split()[0])


async def ping_userspace(vtep: UdpVtep, tap_guest: str | None, ip: str, count: int = 2) -> int:
    if tap_guest is not None:
        return await ping_from(tap_guest, ip, count)
    result = await vtep.guest("guest1").ping(ip, count=count, interval=0.2, timeout=2.0)
    return result.received


@dataclass(frozen=True)
class Case:
    mode: str  # flood (a group), unicast (head-end replication), static (static entries, no learning)
    family: int
    port: int
    side: str  # guest (in-process) or tap
    busy_poll: int = 0  # µs the TAP's data thread polls without sleeping

    def __str__(self) -> str:
        busy = f"-busy{self.busy_poll}" if self.busy_poll else ""
        return f"{self.mode}-v{self.family}-{self.port}-{self.side}{busy}"


# Each mode over both underlays, both ports on each, both local sides on each: six rigs, not 24
# (and one more with busy polling).
CASES = [
    Case("flood", 4, 4789, "guest"),
    Case("flood", 6, 8472, "tap"),
    Case("unicast", 4, 8472, "tap"),
    Case("unicast", 6, 4789, "guest"),
    Case("static", 4, 4789, "tap"),
    Case("static", 6, 8472, "guest"),
    # Busy polling: the same on a group joined while the thread spins.
    Case("flood", 4, 8472, "tap", busy_poll=50_000),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernel_and_userspace_vteps_ping_both_ways(rig_factory: list[Rig], case: Case) -> None:
    rig = Rig(case.family, case.port)
    rig_factory.append(rig)
    k, u = rig.host(0), rig.host(1)
    kguest = rig.guest(k, 0)
    kaddr, uaddr = rig.addr(0), rig.addr(1)
    group = GROUP[case.family]
    if case.mode == "flood":
        rig.kernel_vtep(k, 0, "group", group, "dev", "eth0")
        config = VtepConfig(vni=10, local=uaddr, group=group, dev="eth0", dst_port=case.port)
    elif case.mode == "unicast":
        rig.kernel_vtep(k, 0)
        sh("bridge", "-n", k, "fdb", "append", ZERO, "dev", "vx", "dst", uaddr)
        config = VtepConfig(vni=10, local=uaddr, remote=kaddr, dst_port=case.port)
    else:
        rig.kernel_vtep(k, 0, "nolearning")
        sh("bridge", "-n", k, "fdb", "append", ZERO, "dev", "vx", "dst", uaddr)
        sh("bridge", "-n", k, "fdb", "add", GUEST_MAC[1], "dev", "vx", "dst", uaddr, "static")
        config = VtepConfig(vni=10, local=uaddr, remote=kaddr, dst_port=case.port, learning=False)
    tap_guest = None
    if case.side == "tap":
        tap_guest = rig.ns("g1")

    async def main() -> None:
        guests = [f"{GUEST_MAC[1]},{GUEST_IP[1]}/24"] if case.side == "guest" else []
        tap = "tap0" if case.side == "tap" else None
        async with open_vtep(config, netns=u, tap=tap, guests=guests, busy_poll=case.busy_poll) as vtep:
            if tap_guest is not None:
                sh("ip", "-n", u, "link", "set", "tap0", "master", "br0")
                rig.plug(u, tap_guest, 1)
            if case.mode == "static":
                await vtep.fdb_add(GUEST_MAC[0], kaddr, state=FdbState.STATIC)
            await vtep.up()
            assert await ping_from(kguest, GUEST_IP[1]) == 2
            assert await ping_userspace(vtep, tap_guest, GUEST_IP[0]) == 2
            table = {(e.mac, e.dst, e.state) for e in await vtep.fdb()}
            kernel = rig.kernel_fdb(k)
            if case.mode == "static":
                assert table == {(ZERO, kaddr, FdbState.PERMANENT), (GUEST_MAC[0], kaddr, FdbState.STATIC)}
                assert {(m, d) for m, d, _ in kernel} == {(ZERO, uaddr), (GUEST_MAC[1], uaddr)}
            else:
                assert (GUEST_MAC[0], kaddr, FdbState.REACHABLE) in table
                assert (GUEST_MAC[1], uaddr, "") in kernel
            stats = vtep.stats()
            assert stats.tx_errors == 0 and stats.source_port_fallbacks == 0
            if tap_guest is not None:
                assert stats.tap_rx >= 2 and stats.tap_tx >= 2

    trio.run(main)


def test_three_vteps_on_one_group_reach_each_other_and_follow_a_moving_guest(rig_factory: list[Rig]) -> None:
    """Two kernel VTEPs and the userspace one on 239.1.1.1: every guest pings every other, each
    learns every other's guests (``bridge fdb show`` on the kernels); then guest 0 moves from host
    0 to host 1 and the userspace VTEP follows it ("MAC migrated", as vxlan_snoop)."""
    rig = Rig(4, 4789)
    rig_factory.append(rig)
    k0, k1, u = rig.host(0), rig.host(1), rig.host(2)
    g0, g1 = rig.guest(k0, 0), rig.guest(k1, 1)
    for host, i in ((k0, 0), (k1, 1)):
        rig.kernel_vtep(host, i, "group", GROUP[4], "dev", "eth0")
    config = VtepConfig(vni=10, local=rig.addr(2), group=GROUP[4], dev="eth0", dst_port=4789)
    notes: list[Notification] = []

    async def collect(vtep: UdpVtep, *, task_status: trio.TaskStatus[None]) -> None:
        async with vtep.subscribe() as stream:
            task_status.started()
            async for note in stream:
                notes.append(note)

    async def main() -> None:
        async with (
            open_vtep(config, netns=u, guests=[f"{GUEST_MAC[2]},{GUEST_IP[2]}/24"], up=True) as vtep,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(collect, vtep)
            me = vtep.guest("guest1")
            assert await ping_from(g0, GUEST_IP[1]) == 2
            assert await ping_from(g0, GUEST_IP[2]) == 2
            assert await ping_from(g1, GUEST_IP[2]) == 2
            assert (await me.ping(GUEST_IP[0], count=2, interval=0.2)).received == 2
            assert (await me.ping(GUEST_IP[1], count=2, interval=0.2)).received == 2
            for host in (k0, k1):
                assert (GUEST_MAC[2], rig.addr(2), "") in rig.kernel_fdb(host)
            table = {(e.mac, e.dst) for e in await vtep.fdb()}
            assert {(GUEST_MAC[0], rig.addr(0)), (GUEST_MAC[1], rig.addr(1))} <= table
            # The move: guest 0's cable goes from host 0's bridge to host 1's.
            sh("ip", "-n", k0, "link", "del", "v0")
            rig.plug(k1, g0, 0, port="v0")
            assert await ping_from(g0, GUEST_IP[2], count=1) == 1
            assert EntryMigrated(GUEST_MAC[0], rig.addr(0), rig.addr(1)) in notes
            assert (GUEST_MAC[0], rig.addr(1)) in {(e.mac, e.dst) for e in await vtep.fdb()}
            me.flush_arp()
            assert (await me.ping(GUEST_IP[0], count=2, interval=0.2)).received == 2
            nursery.cancel_scope.cancel()

    trio.run(main)


# What differs between any two VTEPs by nature: addresses, the IP ID (and so the IPv4 checksum),
# the UDP source port (a flow hash) and with it the UDP checksum; the inner frame (udp.payload, from
# a different guest on each side); and tshark's own bookkeeping.
_VARYING = (
    "ip.src", "ip.dst", "ip.addr", "ip.host", "ip.src_host", "ip.dst_host", "ip.id", "ip.checksum",
    "ipv6.src", "ipv6.dst", "ipv6.addr", "ipv6.host", "ipv6.src_host", "ipv6.dst_host",
    "udp.srcport", "udp.port", "udp.checksum", "udp.stream", "udp.time_relative", "udp.time_delta",
    "udp.stream.pnum", "udp.payload", "ip.stream", "ipv6.stream",
)  # fmt: skip


def _flatten(layer: Any, into: dict[str, str]) -> dict[str, str]:
    if isinstance(layer, dict):
        for key, value in layer.items():
            if isinstance(value, (dict, list)):
                _flatten(value, into)
            elif not key.startswith(_VARYING) and not key.endswith(("_tree", "Timestamps")):
                into[key] = str(value)
    elif isinstance(layer, list):
        for item in layer:
            _flatten(item, into)
    return into


def _outer_fields(packet: dict[str, Any], family: int) -> dict[str, str]:
    layers = packet["_source"]["layers"]
    net = "ip" if family == 4 else "ipv6"
    fields: dict[str, str] = {}
    outer_eth = layers["eth"][0] if isinstance(layers["eth"], list) else layers["eth"]
    fields["eth.type"] = outer_eth["eth.type"]
    for name in (net, "udp", "vxlan"):
        layer = layers[name]
        _flatten(layer[0] if name == "ip" and isinstance(layer, list) else layer, fields)
    return fields


@pytest.mark.parametrize("family", [4, 6])
def test_tshark_reads_the_userspace_vteps_packets_as_the_kernels(
    rig_factory: list[Rig], family: int, tmp_path: Path
) -> None:
    """The same traffic (a 100-byte echo request from a guest behind each VTEP, head-end
    replication) captured on the underlay: every field tshark shows of the outer IP, UDP and VXLAN
    layers is the same for both senders, but for addresses, IP ID and source port."""
    rig = Rig(family, 4789)
    rig_factory.append(rig)
    k, u = rig.host(0), rig.host(1)
    kguest = rig.guest(k, 0)
    rig.kernel_vtep(k, 0)
    sh("bridge", "-n", k, "fdb", "append", ZERO, "dev", "vx", "dst", rig.addr(1))
    config = VtepConfig(vni=10, local=rig.addr(1), remote=rig.addr(0), dst_port=4789)
    uguest = rig.ns("g1")
    capture = in_netns(u, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)))
    pcap = tmp_path / "underlay.pcap"

    async def main() -> None:
        with capture:
            capture.bind(("eth0", 0))
            capture.setblocking(False)
            async with open_vtep(config, netns=u, tap="tap0", up=True):
                sh("ip", "-n", u, "link", "set", "tap0", "master", "br0")
                rig.plug(u, uguest, 1)
                assert await ping_from(kguest, GUEST_IP[1], count=1) == 1
                assert await ping_from(uguest, GUEST_IP[0], count=1) == 1
            with PcapWriter(pcap) as writer:
                while True:
                    try:
                        writer.write(capture.recv(65535), time.time())
                    except BlockingIOError:
                        break

    trio.run(main)
    out = sh("tshark", "-r", str(pcap), "-T", "json", "--no-duplicate-keys", "-Y", "vxlan && icmp.type == 8")
    packets = json.loads(out)
    senders: dict[str, dict[str, str]] = {}
    for packet in packets:
        layers = packet["_source"]["layers"]
        net = layers["ip"] if family == 4 else layers["ipv6"]
        src = (net[0] if isinstance(net, list) else net)["ip.src" if family == 4 else "ipv6.src"]
        senders.setdefault(src, _outer_fields(packet, family))
    kernel, userspace = senders[rig.addr(0)], senders[rig.addr(1)]
    assert len(kernel) > 15
    assert userspace == kernel


@pytest.mark.parametrize("zero", [True, False])
def test_ipv6_datagrams_carry_the_actions_checksum_hop_limit_and_traffic_class(netns: str, zero: bool) -> None:
    """udp6zerocsumtx: the action's zero_checksum clears the UDP checksum (UDP_NO_CHECK6_TX), as
    Linux's udp_tunnel6_xmit_skb does; else the host computes it. Hop limit and traffic class are
    the action's, the flow label 0 (vxlan's default ``flowlabel 0``)."""
    sh("ip", "-n", netns, "link", "set", "lo", "up")
    capture = in_netns(netns, lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)))
    config = VtepConfig(vni=10, local="::1", remote="::1", dst_port=4789, udp6_zero_csum_tx=zero, ttl=7, tos=0x20)

    async def main() -> None:
        async with open_vtep(config, netns=netns, up=True) as vtep:
            await vtep.send_frame(bytes.fromhex("020000000902020000000901") + b"\x88\xb5" + bytes(50))
            with trio.fail_after(2):
                while vtep.stats().tx_datagrams < 1:
                    await trio.sleep(0.01)

    with capture:
        capture.bind(("lo", 0))
        capture.setblocking(False)
        trio.run(main)
        frame = capture.recv(65535)
    assert frame[12:14] == b"\x86\xdd" and frame[20] == 17
    assert (frame[14:18], frame[21]) == (bytes.fromhex("62000000"), 7)  # version 6, class 0x20, label 0
    checksum = int.from_bytes(frame[60:62], "big")
    assert (checksum == 0) is zero


def test_without_a_local_address_its_own_multicast_is_not_looped_back_to_it(rig_factory: list[Rig]) -> None:
    """Bound to any address, a VTEP cannot tell its own looped-back multicast from a peer's; the
    host keeps it (IP_MULTICAST_LOOP off), so the core never learns its own guest as remote."""
    rig = Rig(4, 4789)
    rig_factory.append(rig)
    host = rig.host(0)
    config = VtepConfig(vni=10, group=GROUP[4], dev="eth0", dst_port=4789)

    async def main() -> None:
        async with open_vtep(config, netns=host, guests=[f"{GUEST_MAC[0]},{GUEST_IP[0]}/24"], up=True) as vtep:
            await vtep.guest("guest1").ping(GUEST_IP[1], count=1, timeout=0.3)
            assert vtep.stats().tx_datagrams >= 1
            assert vtep.stats().rx_datagrams == 0
            assert [e.mac for e in await vtep.fdb()] == [ZERO]

    trio.run(main)
