"""pyvxlan decodes what Linux's vxlan driver really puts on the wire.

Two network namespaces joined by a veth pair carry four real vxlan devices each: IPv4 unicast on
4789, IPv4 multicast (239.1.1.1) on 8472 without UDP checksums, IPv6 unicast on 8472, IPv6
multicast (ff05::100) on 4789 with ``gbp``. Pings between the overlay addresses make the kernel
send ARP and ICMP inside VXLAN; tcpdump captures the underlay (on the veth, and on ``any`` in
Linux cooked form), and every captured packet must decode with pyvxlan to exactly what the kernel
was configured to send: VNI, outer addresses and ports, TTL (1 toward the group), checksums, GBP
bits from the packet mark, and the inner frames (ARP, ICMP echo between the right overlay IPs and
MACs). In the other direction, frames built by ``encapsulate`` are injected with an AF_PACKET
socket: Linux answers the valid ones and drops exactly those strict decoding refuses.

The set-up uses ``ip`` in subprocesses: it is test scaffolding, not the library's kernel backend.
Everything created is named ``pvxc*`` and removed in a ``finally``, also when a step fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyvxlan import (
    LINUX_SOURCE_PORTS,
    Decapsulated,
    DecodeError,
    GroupPolicy,
    MissingIFlagError,
    ReservedBitsError,
    VxlanHeader,
    decapsulate,
    encapsulate,
)
from pyvxlan.wire.addr import format_mac, ip_info, parse_mac
from pyvxlan.wire.frame import internet_checksum
from pyvxlan.wire.pcap import PcapStats, read

pytestmark = pytest.mark.kernel

UNDERLAY = {"a": ("198.51.100.1", "2001:db8::1"), "b": ("198.51.100.2", "2001:db8::2")}


@dataclass(frozen=True)
class Device:
    """One vxlan device, created in both namespaces with mirrored addresses."""

    name: str
    vni: int
    version: int
    port: int
    group: str | None
    subnet: int  # the overlay /28 starts at 203.0.113.<subnet>
    udp_csum: bool = True  # False: created with ``noudpcsum`` (IPv4 only)
    gbp: bool = False  # created with ``gbp``: sends and accepts Group Based Policy headers

    def overlay(self, side: str) -> str:
        return f"203.0.113.{self.subnet + (1 if side == 'a' else 2)}"

    def mac(self, side: str) -> str:
        return f"02:00:5e:00:{1 if side == 'a' else 2:02x}:{self.vni & 0xFF:02x}"

    def local(self, side: str) -> str:
        return UNDERLAY[side][0 if self.version == 4 else 1]


DEVICES = (
    Device("pvxc4u", 1001, 4, 4789, None, 0),
    Device("pvxc4m", 1002, 4, 8472, "239.1.1.1", 16, udp_csum=False),
    Device("pvxc6u", 1003, 6, 8472, None, 32),
    Device("pvxc6m", 1004, 6, 4789, "ff05::100", 48, gbp=True),
)
BY_VNI = {d.vni: d for d in DEVICES}


def run(*args: str) -> None:
    proc = subprocess.run(args, check=False, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")


def requirements() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and vxlan devices")
    for tool in ("ip", "tcpdump", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (dev.py installs it when run as root)")


def build_lab(ns: dict[str, str], veth: dict[str, str]) -> None:
    run("ip", "netns", "add", ns["a"])
    run("ip", "netns", "add", ns["b"])
    run("ip", "link", "add", veth["a"], "type", "veth", "peer", "name", veth["b"])
    for side in ("a", "b"):
        n, dev = ns[side], veth[side]
        v4, v6 = UNDERLAY[side]
        run("ip", "link", "set", dev, "netns", n)
        run("ip", "-n", n, "link", "set", "lo", "up")
        run("ip", "-n", n, "addr", "add", f"{v4}/24", "dev", dev)
        run("ip", "-n", n, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
        run("ip", "-n", n, "link", "set", dev, "up")
        other = "b" if side == "a" else "a"
        for d in DEVICES:
            where = ["group", d.group] if d.group else ["remote", d.local(other)]
            csum = (["noudpcsum"] if not d.udp_csum else []) + (["gbp"] if d.gbp else [])
            run(
                "ip", "-n", n, "link", "add", d.name, "address", d.mac(side), "type", "vxlan",
                "id", str(d.vni), "local", d.local(side), *where, "dev", dev, "dstport", str(d.port), *csum,
            )  # fmt: skip
            # No IPv6 on the overlay devices: only the ARP and ICMP the test sends cross them.
            run("ip", "netns", "exec", n, "sysctl", "-qw", f"net.ipv6.conf.{d.name}.disable_ipv6=1")
            run("ip", "-n", n, "addr", "add", f"{d.overlay(side)}/28", "dev", d.name)
            run("ip", "-n", n, "link", "set", d.name, "up")


def start_capture(ns: str, dev: str, path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "-n", "-U", "-w", str(path), "udp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines = []
    for _ in range(5):  # "tcpdump: listening on ..." means the socket is open
        lines.append(proc.stderr.readline().decode())
        if "listening on" in lines[-1]:
            return proc
    proc.kill()
    proc.wait()
    raise RuntimeError(f"tcpdump did not start: {''.join(lines)!r}")


def stop_capture(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_underlay(ns: str) -> None:
    # IPv6 on the veth needs its link-local address before neighbour discovery works.
    for _ in range(50):
        ping = ["ip", "netns", "exec", ns, "ping", "-6", "-c1", "-W1", "2001:db8::2"]
        if subprocess.run(ping, check=False, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("the IPv6 underlay never came up")


def wait_until_captured(path: Path, done: Callable[[list[Decapsulated]], bool]) -> None:
    """Wait until tcpdump has written what ``done`` looks for: SIGINT drops what it has not read yet."""
    for _ in range(100):
        try:
            if done([d for _, d in read(path)]):
                return
        except DecodeError:  # a record half written
            pass
        time.sleep(0.1)


def echo_replies(packets: list[Decapsulated]) -> dict[int, list[int]]:
    """VNI -> ICMP ids of the echo replies carried in ``packets``."""
    replies: dict[int, list[int]] = {}
    for d in packets:
        inner = bytes(d.inner)
        if inner[12:14] == b"\x08\x00" and len(inner) >= 42 and inner[23] == 1 and inner[34] == 0:
            replies.setdefault(d.header.vni, []).append(struct.unpack_from("!H", inner, 38)[0])
    return replies


@dataclass(frozen=True)
class Lab:
    ns: dict[str, str]
    veth: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    requirements()
    suffix = secrets.token_hex(3)
    ns = {"a": f"pvxc-a-{suffix}", "b": f"pvxc-b-{suffix}"}
    veth = {"a": f"pvxc{suffix}a", "b": f"pvxc{suffix}b"}
    try:
        build_lab(ns, veth)
        wait_for_underlay(ns["a"])
        yield Lab(ns, veth, tmp_path_factory.mktemp("pvxc"))
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        # A veth still in this namespace (set-up failed before moving it) goes too.
        subprocess.run(["ip", "link", "del", veth["a"]], check=False, capture_output=True)


def _three_replies_each(packets: list[Decapsulated]) -> bool:
    return {vni: len(ids) for vni, ids in echo_replies(packets).items()} == dict.fromkeys(BY_VNI, 3)


@dataclass(frozen=True)
class Pings:
    """The same pings captured twice: on the veth (Ethernet) and on ``any`` (Linux cooked)."""

    veth: tuple[list[Decapsulated], PcapStats]
    any_path: Path


@pytest.fixture(scope="module")
def pings(lab: Lab) -> Pings:
    path, any_path = lab.tmp / "pings.pcap", lab.tmp / "pings-any.pcap"
    capture = start_capture(lab.ns["a"], lab.veth["a"], path)
    capture_any: subprocess.Popen[bytes] | None = None
    try:
        capture_any = start_capture(lab.ns["a"], "any", any_path)
        for d in DEVICES:
            run("ip", "netns", "exec", lab.ns["a"], "ping", "-c", "3", "-i", "0.2", "-W", "2", d.overlay("b"))
        wait_until_captured(path, _three_replies_each)
        wait_until_captured(any_path, _three_replies_each)
    finally:
        stop_capture(capture)
        if capture_any is not None:
            stop_capture(capture_any)
    stats = PcapStats()
    packets = [d for _, d in read(path, stats=stats)]
    return Pings((packets, stats), any_path)


@pytest.fixture(scope="module")
def captured(pings: Pings) -> tuple[list[Decapsulated], PcapStats]:
    return pings.veth


def test_every_captured_packet_is_vxlan_and_decodes(captured: tuple[list[Decapsulated], PcapStats]) -> None:
    packets, stats = captured
    assert (stats.not_vxlan, stats.malformed) == (0, 0), stats.examples
    assert stats.packets == stats.vxlan == len(packets) >= 4 * 6  # 3 echo requests + 3 replies each
    for d in packets:
        assert isinstance(d.header, VxlanHeader)
        # Linux sends plain RFC 7348 headers: I flag, no GBP, no reserved bits.
        assert VxlanHeader.decode(d.header.encode(), strict=True) == VxlanHeader(d.header.vni)
        assert d.header.vni in BY_VNI


def test_outer_addresses_ports_and_ttl_as_configured(captured: tuple[list[Decapsulated], PcapStats]) -> None:
    packets, _ = captured
    for d in packets:
        dev = BY_VNI[d.header.vni]
        assert d.ip_version == dev.version
        assert d.dst_port == dev.port
        assert d.outer_src in (dev.local("a"), dev.local("b"))
        other = dev.local("b") if d.outer_src == dev.local("a") else dev.local("a")
        assert d.outer_dst in (other, dev.group)
        # Linux: TTL 1 toward a multicast group, the route's default (64) otherwise.
        assert d.ttl == (1 if d.outer_dst == dev.group else 64)
        assert d.vlans == ()


def test_linux_source_port_from_the_local_port_range(captured: tuple[list[Decapsulated], PcapStats]) -> None:
    packets, _ = captured
    lo, hi = LINUX_SOURCE_PORTS
    assert all(lo <= d.src_port <= hi for d in packets)


def test_linux_udpcsum_on_by_default_and_zero_with_noudpcsum(
    captured: tuple[list[Decapsulated], PcapStats],
) -> None:
    packets, _ = captured
    # Only an explicit ``noudpcsum`` (IFLA_VXLAN_UDP_CSUM = 0) makes Linux send a zero checksum
    # over IPv4; over IPv6 a zero checksum would need udp6zerocsumtx.
    for dev in DEVICES:
        sums = {d.udp_checksum != 0 for d in packets if d.header.vni == dev.vni}
        assert sums == {dev.udp_csum}, dev.name


def test_multicast_devices_flood_to_the_group_with_ttl_1(captured: tuple[list[Decapsulated], PcapStats]) -> None:
    packets, _ = captured
    for dev in DEVICES:
        if dev.group is None:
            continue
        to_group = [d for d in packets if d.header.vni == dev.vni and d.outer_dst == dev.group]
        assert to_group, f"{dev.name}: nothing sent to {dev.group}"
        assert {d.ttl for d in to_group} == {1}
        assert {d.outer_eth_dst for d in to_group} == {"01:00:5e:01:01:01" if dev.version == 4 else "33:33:00:00:01:00"}
        # The first thing flooded is the ARP request for the peer's overlay address.
        inner = bytes(to_group[0].inner)
        assert inner[0:6] == b"\xff" * 6 and inner[12:14] == b"\x08\x06"


def test_inner_frames_as_the_kernel_sent_them(captured: tuple[list[Decapsulated], PcapStats]) -> None:
    packets, _ = captured
    for dev in DEVICES:
        mac_a, mac_b = dev.mac("a"), dev.mac("b")
        ip_a, ip_b = dev.overlay("a"), dev.overlay("b")
        seen: dict[str, int] = {"arp": 0, "request": 0, "reply": 0}
        for d in (p for p in packets if p.header.vni == dev.vni):
            inner = bytes(d.inner)
            dst, src, etype = format_mac(inner[0:6]), format_mac(inner[6:12]), struct.unpack_from("!H", inner, 12)[0]
            from_a = d.outer_src == dev.local("a")
            assert src == (mac_a if from_a else mac_b)
            if etype == 0x0806:
                op = struct.unpack_from("!H", inner, 20)[0]
                sender_ip, target_ip = inner[28:32], inner[38:42]
                assert format_mac(inner[22:28]) == src
                assert (_ip(sender_ip), _ip(target_ip)) == ((ip_a, ip_b) if from_a else (ip_b, ip_a))
                assert dst in ("ff:ff:ff:ff:ff:ff", mac_b if from_a else mac_a) or op == 1
                seen["arp"] += 1
                continue
            assert etype == 0x0800
            assert dst == (mac_b if from_a else mac_a)
            ip = inner[14:34]
            assert ip[9] == 1  # ICMP
            assert (_ip(ip[12:16]), _ip(ip[16:20])) == ((ip_a, ip_b) if from_a else (ip_b, ip_a))
            icmp_type = inner[34]
            assert icmp_type == (8 if from_a else 0)  # echo request from a, reply from b
            seen["request" if icmp_type == 8 else "reply"] += 1
        assert seen["request"] == seen["reply"] == 3, f"{dev.name}: {seen}"
        assert seen["arp"] >= 2, f"{dev.name}: {seen}"


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def _summary(d: Decapsulated) -> tuple[object, ...]:
    return (d.header.vni, d.outer_src, d.outer_dst, d.src_port, d.dst_port, d.ttl, bytes(d.inner))


def test_cooked_capture_of_any_decodes_the_same(pings: Pings) -> None:
    # ``tcpdump -i any`` writes Linux cooked headers (SLL2 with libpcap >= 1.10, SLL before).
    linktype = int.from_bytes(pings.any_path.read_bytes()[20:24], "little")
    assert linktype in (113, 276)
    stats = PcapStats()
    cooked = [d for _, d in read(pings.any_path, stats=stats)]
    assert (stats.not_vxlan, stats.malformed) == (0, 0), stats.examples
    veth_packets, _ = pings.veth
    assert sorted(map(_summary, cooked), key=repr) == sorted(map(_summary, veth_packets), key=repr)


# --- Group Based Policy: Linux takes the policy from the packet mark


GBP_MARK = 0x480007  # VXLAN_GBP_DONT_LEARN (0x400000) | VXLAN_GBP_POLICY_APPLIED (0x80000) | id 7


@pytest.fixture(scope="module")
def gbp_pings(lab: Lab, pings: Pings) -> list[Decapsulated]:
    del pings  # after the first capture, which must not see these packets
    [dev] = [d for d in DEVICES if d.gbp]
    path = lab.tmp / "gbp.pcap"
    capture = start_capture(lab.ns["a"], lab.veth["a"], path)
    try:
        run(
            "ip",
            "netns",
            "exec",
            lab.ns["a"],
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "2",
            "-m",
            str(GBP_MARK),
            dev.overlay("b"),
        )
        wait_until_captured(path, lambda ps: len(echo_replies(ps).get(dev.vni, [])) == 2)
    finally:
        stop_capture(capture)
    return [d for _, d in read(path)]


def test_linux_gbp_policy_from_the_mark_at_wiresharks_bit_positions(gbp_pings: list[Decapsulated]) -> None:
    [dev] = [d for d in DEVICES if d.gbp]
    requests = [d for d in gbp_pings if d.outer_src == dev.local("a") and bytes(d.inner)[12:14] == b"\x08\x00"]
    assert len(requests) == 2
    policy = GroupPolicy(policy_id=7, dont_learn=True, policy_applied=True)
    for d in requests:
        assert d.header.encode().hex() == f"8848000700{dev.vni:04x}00"
        assert d.header == VxlanHeader(dev.vni, group_policy=policy)
        assert VxlanHeader.decode(d.header.encode(), strict=True, gbp=True) == d.header  # a gbp device's rules
        with pytest.raises(ReservedBitsError):
            VxlanHeader.decode(d.header.encode(), strict=True)  # a device without gbp drops it
    # The replies carry no mark, so b's kernel sends them without the G bit.
    replies = [d for d in gbp_pings if d.outer_src == dev.local("b") and bytes(d.inner)[12:14] == b"\x08\x00"]
    assert [d.header for d in replies] == [VxlanHeader(dev.vni)] * 2


# --- the other direction: Linux receives what pyvxlan builds, and drops what strict decoding refuses


SEND_SCRIPT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
    "s.bind((sys.argv[1], 0))\n"
    "for h in sys.argv[2:]:\n"
    "    s.send(bytes.fromhex(h))\n"
)


def link_info(ns: str, dev: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "-s", "link", "show", dev], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    info: dict[str, Any] = json.loads(out)[0]
    return info


def echo_request(dev: Device, ident: int) -> bytes:
    """An ICMP echo request from side b's overlay address to side a's, as b's kernel would send it."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"pyvxlan-kernel-rx"
    icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), ident, 0x4000, 64, 1, 0,
        ip_info(dev.overlay("b")).packed, ip_info(dev.overlay("a")).packed,
    )  # fmt: skip
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return parse_mac(dev.mac("a")) + parse_mac(dev.mac("b")) + b"\x08\x00" + ip + icmp


# (ICMP id, header word 0, word 1's low byte, what Linux does, what strict decoding raises)
RxCase = tuple[int, int, int, str, type[DecodeError] | None]
RX_CASES: tuple[RxCase, ...] = (
    (0x7001, 0x08000000, 0x00, "delivered", None),
    (0x7002, 0x0A000000, 0x00, "dropped, counted", ReservedBitsError),  # a reserved flag bit
    (0x7003, 0x08000000, 0x01, "dropped, counted", ReservedBitsError),  # the reserved last byte
    (0x7004, 0x88000007, 0x00, "dropped, counted", ReservedBitsError),  # GBP on a device without gbp
    (0x7005, 0x00000000, 0x00, "dropped", MissingIFlagError),  # I flag clear
    (0x7006, 0x08000000, 0x00, "delivered", None),
)
# On a ``gbp`` device G and all of bytes 1-3 are in use (VXLAN_GBP_USED_BITS); strict needs gbp=True.
GBP_RX_CASES: tuple[RxCase, ...] = (
    (0x7001, 0x88480007, 0x00, "delivered", None),  # G, D, A, policy 7
    (0x7002, 0x88200007, 0x00, "delivered", None),  # byte 1 0x20: reserved in the draft, used to Linux
    (0x7003, 0x8A000007, 0x00, "dropped, counted", ReservedBitsError),  # a reserved flag bit
    (0x7004, 0x88000007, 0x01, "dropped, counted", ReservedBitsError),  # the reserved last byte
    (0x7005, 0x80000007, 0x00, "dropped", MissingIFlagError),  # I flag clear
    (0x7006, 0x08000000, 0x00, "delivered", None),  # plain headers stay valid on a gbp device
)
RX_DEVICES = [d for d in DEVICES if d.group is None or d.gbp]


def cases_for(dev: Device) -> tuple[RxCase, ...]:
    return GBP_RX_CASES if dev.gbp else RX_CASES


@dataclass(frozen=True)
class Injected:
    replies: dict[int, list[int]]
    rx_errors: dict[int, int]  # VNI -> rx_errors added on side a's device
    frames: dict[tuple[int, int], bytes]  # (VNI, ICMP id) -> the frame sent


@pytest.fixture(scope="module")
def injected(lab: Lab, gbp_pings: list[Decapsulated]) -> Injected:
    del gbp_pings  # runs after the ping captures: they must not see these frames
    a, b = lab.ns["a"], lab.ns["b"]
    mac_a = link_info(a, lab.veth["a"])["address"]
    mac_b = link_info(b, lab.veth["b"])["address"]
    before = {d.vni: link_info(a, d.name)["stats64"]["rx"]["errors"] for d in RX_DEVICES}
    frames: dict[tuple[int, int], bytes] = {}
    for dev in RX_DEVICES:
        for base, word0, low, _, _ in cases_for(dev):
            ident = base + (dev.vni << 4)  # distinct ids per device
            header = VxlanHeader.from_words(word0, (dev.vni << 8) | low)
            frames[(dev.vni, ident)] = encapsulate(
                echo_request(dev, ident), header=header, src=dev.local("b"), dst=dev.local("a"),
                dst_port=dev.port, eth_src=mac_b, eth_dst=mac_a,
            )  # fmt: skip
    path = lab.tmp / "injected.pcap"
    capture = start_capture(a, lab.veth["a"], path)
    last_ids = {dev.vni: cases_for(dev)[-1][0] + (dev.vni << 4) for dev in RX_DEVICES}
    try:
        send = [sys.executable, "-c", SEND_SCRIPT, lab.veth["b"], *(f.hex() for f in frames.values())]
        run("ip", "netns", "exec", b, *send)
        wait_until_captured(path, lambda ps: all(last_ids[v] in echo_replies(ps).get(v, []) for v in last_ids))
    finally:
        stop_capture(capture)
    after = {d.vni: link_info(a, d.name)["stats64"]["rx"]["errors"] for d in RX_DEVICES}
    return Injected(
        replies=echo_replies([d for _, d in read(path)]),
        rx_errors={v: after[v] - before[v] for v in before},
        frames=frames,
    )


def test_linux_answers_frames_built_by_encapsulate(injected: Injected) -> None:
    # The kernel checks the UDP checksum of what arrives from an AF_PACKET socket: a reply proves
    # that encapsulate's outer headers and checksums are what Linux accepts, over IPv4 and IPv6.
    for dev in RX_DEVICES:
        delivered = {i + (dev.vni << 4) for i, *_, rule in cases_for(dev) if rule is None}
        assert set(injected.replies.get(dev.vni, [])) == delivered, dev.name


def test_strict_decoding_matches_linux_vxlan_rcv(injected: Injected) -> None:
    for (vni, ident), frame in injected.frames.items():
        dev = BY_VNI[vni]
        [(_, _, _, linux, error)] = [case for case in cases_for(dev) if case[0] == ident - (vni << 4)]
        if error is None:
            assert linux == "delivered"
            decapsulate(frame, strict=True, gbp=dev.gbp)
        else:
            assert ident not in injected.replies.get(vni, []), f"Linux answered a frame it should drop: {linux}"
            with pytest.raises(error):
                decapsulate(frame, strict=True, gbp=dev.gbp)
            assert decapsulate(frame).header.vni == vni  # lenient decoding still reads it


def test_linux_counts_reserved_bit_drops_as_rx_errors(injected: Injected) -> None:
    for dev in RX_DEVICES:
        counted = sum(1 for case in cases_for(dev) if case[3] == "dropped, counted")
        assert injected.rx_errors[dev.vni] == counted, dev.name
