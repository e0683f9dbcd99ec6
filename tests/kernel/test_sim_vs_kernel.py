"""The simulator against the kernel lab: the same topology and scenario on both backends, the
underlay captured on both, decoded with pyvxlan and compared field by field.

Only what is random by nature is normalised: the UDP source port (Linux hashes the flow with a
per-boot key), IPv4 ID values (``__ip_select_ident``'s counters start at random; that they are set
and count up is checked), IPv6 flow label values (a keyed hash too: only set or not is compared),
the ICMP echo identifier (``ping`` picks one), the send time in the echo data and the checksums
that cover those, and the outer unicast MACs (the kernel lab's veths get random ones). The kernel
guests' IPv6 housekeeping (DAD for their link-local address, MLD reports), which simulated guests
do not have, is left out. Everything else must be equal: outer IP version, TTL, DF, TOS, traffic
class, protocol, UDP port, length and checksum presence, the VXLAN header, and the inner Ethernet,
ARP, IPv4/IPv6, neighbour discovery (every byte) and ICMP fields, echo data length and pattern,
sequence numbers.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from pyvxlan import sim
from pyvxlan.core.config import VtepConfig
from pyvxlan.kernel import netlink as nl
from pyvxlan.kernel import open_lab as open_kernel_lab
from pyvxlan.lab.topology import FdbMode, Topology, classic_demo
from pyvxlan.sim.guest import ECHO_DATA
from pyvxlan.wire.frame import decapsulate
from pyvxlan.wire.pcap import raw_records

pytestmark = pytest.mark.kernel

Body = Callable[[Any], Awaitable[Any]]


def run_both(topology: Topology, body: Body, tmp_path: Path) -> tuple[tuple[Any, list[bytes]], tuple[Any, list[bytes]]]:
    """``body(lab)`` on the simulator and on the kernel lab, each with the underlay captured:
    (what body returned, the captured frames) for each."""
    out: dict[str, tuple[Any, list[bytes]]] = {}

    async def in_sim() -> None:
        async with sim.open_lab(topology) as lab:
            lab.capture(str(tmp_path / "sim.pcap"))
            result = await body(lab)
        out["sim"] = (result, frames(tmp_path / "sim.pcap"))

    async def in_kernel() -> None:
        async with open_kernel_lab(topology) as lab:
            lab.capture(str(tmp_path / "kernel.pcap"))
            await trio.sleep(0.1)  # the capture socket is open; let the devices' joins settle
            result = await body(lab)
            await trio.sleep(0.1)
        out["kernel"] = (result, frames(tmp_path / "kernel.pcap"))

    sim.run(in_sim)
    trio.run(in_kernel)
    return out["sim"], out["kernel"]


def frames(path: Path) -> list[bytes]:
    """The VXLAN datagrams of a capture (the kernel's also holds IGMP, MLD and underlay ARP),
    without the kernel guests' own IPv6 housekeeping, which simulated guests do not have (no
    link-local address): duplicate address detection and MLD reports."""
    with path.open("rb") as f:
        raw = [bytes(buf[start:end]) for _, _, buf, start, end, _ in raw_records(f)]
    ipv4 = [f for f in raw if f[12:14] == b"\x08\x00" and f[23] == 17 and f[36:38] == b"\x12\xb5"]
    ipv6 = [f for f in raw if f[12:14] == b"\x86\xdd" and f[20] == 17 and f[56:58] == b"\x12\xb5"]
    return [f for f in ipv4 or ipv6 if not housekeeping(bytes(decapsulate(f).inner))]  # one family per lab


def housekeeping(inner: bytes) -> bool:
    """An inner IPv6 DAD probe (a solicitation from ::), router solicitation, or MLD report (an
    ICMPv6 type 143 after a hop-by-hop header)."""
    if inner[12:14] != b"\x86\xdd":
        return False
    dad = inner[20] == 58 and inner[54] == 135 and inner[22:38] == bytes(16)
    return dad or (inner[20] == 58 and inner[54] == 133) or (inner[20] == 0 and inner[62] == 143)


def fields(frame: bytes) -> dict[str, Any]:
    """Every field of one captured VXLAN frame, the random ones normalised."""
    d = decapsulate(frame)
    f: dict[str, Any] = {
        "outer_eth_dst": d.outer_eth_dst if frame[0] & 1 else "unicast",
        "ip_version": d.ip_version,
        "outer_src": d.outer_src,
        "outer_dst": d.outer_dst,
        "ttl": d.ttl,
        "dst_port": d.dst_port,
        "udp_checksum": "set" if d.udp_checksum else "zero",
        "vxlan": bytes(frame[d.inner_offset - 8 : d.inner_offset]).hex(),
    }
    if d.ip_version == 4:
        ver_ihl, tos, total, _ident, frag, _ttl, proto = struct.unpack_from("!BBHHHBB", frame, 14)
        f.update(ihl=ver_ihl, tos=tos, total=total, df=bool(frag & 0x4000), frag=frag & 0xBFFF, proto=proto)
    else:
        word, plen, nxt = struct.unpack_from("!IHB", frame, 14)
        f.update(tclass=(word >> 20) & 0xFF, flow_label="set" if word & 0xFFFFF else "zero", plen=plen, proto=nxt)
    inner = bytes(d.inner)
    f.update(inner_len=len(inner), inner_eth=inner[:14].hex())
    kind = inner[12:14]
    if kind == b"\x08\x06":
        f["arp"] = inner[14:42].hex()
        f["arp_trailer"] = inner[42:].hex()
        return f
    if kind == b"\x08\x00":
        ip = inner[14:34]
        f.update(
            inner_ip=(ip[0], ip[1], ip[2:4].hex(), ip[6] & 0x40, ip[6:8].hex() if ip[6] & 0xBF else "0", ip[8], ip[9]),
            inner_addrs=ip[12:20].hex(),
            inner_ip_id="set" if ip[4:6] != b"\0\0" else "zero",
        )
        icmp = inner[34:]
    else:
        word, plen, nxt, hops = struct.unpack_from("!IHBB", inner, 14)
        f.update(
            inner_ip6=(word >> 20, "set" if word & 0xFFFFF else "zero", plen, nxt, hops),
            inner_addrs=inner[22:54].hex(),
        )
        icmp = inner[54:]
        if icmp[0] in (135, 136):  # neighbour discovery: nothing random, every byte
            f["nd"] = icmp.hex()
            return f
    kind_code, _csum, _ident, seq = struct.unpack_from("!HHHH", icmp)
    data = icmp[8:]
    f.update(icmp=kind_code, seq=seq, data_len=len(data), data_head=data[: len(ECHO_DATA)])
    return f


def echo_data(frame: bytes) -> bytes:
    inner = bytes(decapsulate(frame).inner)
    return inner[42:] if inner[12:14] == b"\x08\x00" else inner[62:]


def outer_ids(captured: list[bytes]) -> dict[tuple[bytes, bytes], list[int]]:
    """The outer IPv4 IDs per (source, destination), in capture order."""
    ids: dict[tuple[bytes, bytes], list[int]] = {}
    for frame in captured:
        ids.setdefault((frame[26:30], frame[30:34]), []).append(int.from_bytes(frame[18:20], "big"))
    return ids


def with_ipv6_guests(topology: Topology) -> Topology:
    guests = tuple(replace(g, ip=f"2001:db8:10::{i}/64") for i, g in enumerate(topology.guests, 1))
    return Topology(topology.underlay, topology.hosts, guests, topology.mode)


MODES = [FdbMode.MULTICAST, FdbMode.UNICAST, FdbMode.CONTROLLER]


@pytest.mark.parametrize("guests", [4, 6], ids=["ipv4-guests", "ipv6-guests"])
@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4-underlay", "ipv6-underlay"])
@pytest.mark.parametrize("mode", MODES, ids=[m.value for m in MODES])
def test_a_ping_puts_the_same_packets_on_the_underlay(
    root: None, tmp_path: Path, mode: FdbMode, ipv6: bool, guests: int
) -> None:
    topology = classic_demo(2, mode, ipv6=ipv6)
    target = "203.0.113.2"
    if guests == 6:
        topology, target = with_ipv6_guests(topology), "2001:db8:10::2"

    async def ping_three(lab: Any) -> tuple[int, int]:
        result = await lab.guest("guest1").ping(target, count=3, interval=0.2)
        return result.sent, result.received

    (sim_result, sim_frames), (kernel_result, kernel_frames) = run_both(topology, ping_three, tmp_path)
    assert sim_result == kernel_result == (3, 3)
    sim_fields = [fields(f) for f in sim_frames]
    kernel_fields = [fields(f) for f in kernel_frames]
    # ARP (ND) request and reply (in controller mode each VTEP answers them itself), then three
    # echo requests and replies.
    arp = 0 if mode is FdbMode.CONTROLLER else 2
    assert len(kernel_fields) == arp + 6
    for i, (s, k) in enumerate(zip(sim_fields, kernel_fields, strict=True)):
        assert s == k, f"packet {i}"
    # What was normalised still has the kernel's shape.
    for captured in (sim_frames, kernel_frames):
        echoes = [fields(f) for f in captured][arp:]
        assert [e["seq"] for e in echoes] == [0, 0, 1, 1, 2, 2]
        assert [e["data_head"] for e in echoes] == [ECHO_DATA] * 6
        # each reply carries its request's data, the send time included
        for request, reply in zip(captured[arp::2], captured[arp + 1 :: 2], strict=True):
            assert echo_data(request) == echo_data(reply)
        if not ipv6:
            for flow in outer_ids(captured).values():
                # __ip_select_ident: one counter per flow, moving on with every packet
                assert len(set(flow)) == len(flow), flow
                assert all(b - a & 0xFFFF < 0x8000 for a, b in zip(flow, flow[1:], strict=False)), flow


class _Tuned(Topology):
    """A topology whose devices all get ``changes`` to their VtepConfig (settings that Topology
    does not offer); both labs build their devices from ``vtep_config``."""

    __slots__ = ("changes",)
    changes: dict[str, Any]

    def __init__(self, base: Topology, **changes: Any) -> None:
        super().__init__(base.underlay, base.hosts, base.guests, base.mode)
        object.__setattr__(self, "changes", changes)

    def vtep_config(self, host: str, vni: int) -> VtepConfig:
        return replace(super().vtep_config(host, vni), **self.changes)


SETTINGS: list[tuple[dict[str, Any], bool]] = [
    *(
        (settings, ipv6)
        for settings in ({"tos": 0x20}, {"tos": "inherit"}, {"ttl": 5}, {"ttl_inherit": True})
        for ipv6 in (False, True)
    ),
    ({"udp6_zero_csum_tx": True, "udp6_zero_csum_rx": True}, True),  # an IPv6 underlay's option
]


@pytest.mark.parametrize(
    ("settings", "ipv6"),
    SETTINGS,
    ids=[",".join(f"{k}={v}" for k, v in d.items()) + (",ipv6" if v6 else ",ipv4") for d, v6 in SETTINGS],
)
def test_the_devices_outer_header_settings_on_both(
    root: None, tmp_path: Path, settings: dict[str, Any], ipv6: bool
) -> None:
    # The core's transmit decisions for tos, ttl and the IPv6 zero checksum, carried by the
    # simulator onto the wire, are the kernel's (vxlan_xmit_one, udp_tunnel(6)_xmit_skb).
    topology = _Tuned(classic_demo(2, ipv6=ipv6), **settings)

    async def ping(lab: Any) -> tuple[int, int]:
        result = await lab.guest("guest1").ping("203.0.113.2", count=2, interval=0.2)
        return result.sent, result.received

    (sim_result, sim_frames), (kernel_result, kernel_frames) = run_both(topology, ping, tmp_path)
    assert sim_result == kernel_result == (2, 2)
    assert len(kernel_frames) == 6
    for i, (s, k) in enumerate(zip(sim_frames, kernel_frames, strict=True)):
        assert fields(s) == fields(k), f"packet {i}"


def test_set_ageing_on_a_running_device_ages_out_learned_entries_on_both(root: None, tmp_path: Path) -> None:
    # vxlan_changelink re-arms the ageing timer: an entry learned under ageing 300 is gone
    # 3 s after `ip link set vxlan10 type vxlan ageing 1`, in the kernel and in the simulator.
    async def body(lab: Any) -> tuple[list[tuple[str, str, str]], ...]:
        def table() -> list[tuple[str, str, str]]:
            # The kernel lab's devices have `dev eth0` (their default entry shows `via eth0`).
            return sorted((e.mac, e.dst, e.state.value) for e in lab.fdb("host1", 10))

        await lab.guest("guest1").ping("203.0.113.2")
        before = table()
        await lab.vtep("host1", 10).set_ageing(1)
        await lab.sleep(3)
        return before, table()

    (sim_tables, _), (kernel_tables, _) = run_both(classic_demo(), body, tmp_path)
    default = ("00:00:00:00:00:00", "239.1.1.1", "permanent")
    assert sim_tables == kernel_tables == ([default, ("02:00:00:00:00:02", "198.51.100.2", "")], [default])


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.mark.parametrize("payload", [16, 300, 1000])
def test_the_neighbour_queue_holds_what_linux_holds(netns: str, payload: int) -> None:
    # __neigh_event_send: 400 UDP datagrams to a neighbour that answers ARP only after its second
    # probe; Linux sends what unres_qlen_bytes held (each datagram charged its truesize), and the
    # simulated guest's queue (skb_truesize) holds the same number.
    other = netns + "b"
    nl.netns_create(other)
    try:
        _ip("-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", other)
        _ip("-n", netns, "addr", "add", "203.0.113.1/24", "dev", "eth0")
        _ip("-n", other, "addr", "add", "203.0.113.2/24", "dev", "eth0")
        nl.netns_sysctl(other, "net/ipv4/conf/all/arp_ignore", "8")  # answer no ARP for now
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", other, "link", "set", "eth0", "up")
        with (
            nl.open_socket(netns, socket.AF_INET, socket.SOCK_DGRAM) as tx,
            nl.open_socket(other, socket.AF_INET, socket.SOCK_DGRAM) as rx,
        ):
            # Room for everything in the sockets' own buffers: only the neighbour queue limits.
            tx.setsockopt(socket.SOL_SOCKET, 32, 1 << 23)  # SO_SNDBUFFORCE
            rx.setsockopt(socket.SOL_SOCKET, 33, 1 << 23)  # SO_RCVBUFFORCE
            rx.bind(("203.0.113.2", 9))
            rx.setblocking(False)
            for i in range(400):
                tx.sendto(i.to_bytes(2, "big") + bytes(payload - 2), ("203.0.113.2", 9))
            time.sleep(0.5)  # the second probe goes 1 s after the first
            nl.netns_sysctl(other, "net/ipv4/conf/all/arp_ignore", "0")
            time.sleep(1.5)
            got = []
            with contextlib.suppress(BlockingIOError):
                while True:
                    got.append(int.from_bytes(rx.recv(65535)[:2], "big"))
    finally:
        nl.netns_remove(other)

    async def in_sim() -> list[int]:
        async with sim.open_lab(classic_demo()) as lab:
            sock = lab.guest("guest2").udp_socket(9)
            lab.set_link("host2", sim.LinkProfile(loss=1.0))  # the first ARP request is lost
            for i in range(400):
                lab.guest("guest1").send_udp("203.0.113.2", 9, i.to_bytes(2, "big") + bytes(payload - 2))
            await lab.sleep(0.5)
            lab.set_link("host2", sim.LinkProfile())
            received = []
            with trio.move_on_after(2):
                while True:
                    received.append(int.from_bytes((await sock.receive())[0][:2], "big"))
            return received

    assert got == sim.run(in_sim) == list(range(400 - len(got), 400))
    assert len(got) == {16: 256, 300: 166, 1000: 92}[payload]
