"""The model's data path against a real vxlan device: the same frames and datagrams in, the same
bytes, counters and FDB out (issue 9, points 12-18).

Each test builds a two-namespace rig: namespace A holds the vxlan device under test, namespace B is
its underlay peer on a veth pair. Guest frames go into the device through a packet socket bound to
it (``dev_queue_xmit`` -> ``vxlan_xmit``, as from a bridge), and what leaves is captured on B's
veth; datagrams are sent from B with ordinary UDP sockets, and what the device delivers is read
from the same packet socket. The model (:class:`pyvxlan.Vtep`) gets the same inputs.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import select
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pyvxlan import DeliverFrame, SendDatagram, Vtep, VtepConfig
from pyvxlan.kernel import netlink as nl
from pyvxlan.wire.frame import internet_checksum

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
A_MAC, B_MAC = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
VX_MAC = "02:00:00:00:0a:10"
UNDERLAY = {4: ("198.51.100.1", "198.51.100.2"), 6: ("2001:db8::1", "2001:db8::2")}
THIRD = {4: "198.51.100.3", 6: "2001:db8::3"}
PORT = 4789


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@dataclass(frozen=True, slots=True)
class Outer:
    """One datagram as captured on the underlay: the outer IP and UDP fields a test compares."""

    src: str
    dst: str
    tos: int  # IPv4 TOS or IPv6 traffic class
    ttl: int
    src_port: int
    dst_port: int
    checksum: int
    payload: bytes


def _parse_outer(frame: bytes) -> Outer | None:
    etype = frame[12:14]
    if etype == b"\x08\x00":
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 17:
            return None
        src, dst = socket.inet_ntop(socket.AF_INET, frame[26:30]), socket.inet_ntop(socket.AF_INET, frame[30:34])
        tos, ttl, udp = frame[15], frame[22], 14 + ihl
    elif etype == b"\x86\xdd":
        if frame[20] != 17:
            return None
        src, dst = socket.inet_ntop(socket.AF_INET6, frame[22:38]), socket.inet_ntop(socket.AF_INET6, frame[38:54])
        tos, ttl, udp = (int.from_bytes(frame[14:16], "big") >> 4) & 0xFF, frame[21], 54
    else:
        return None
    sport, dport, length, csum = struct.unpack_from("!HHHH", frame, udp)
    if dport != PORT:
        return None
    return Outer(src, dst, tos, ttl, sport, dport, csum, frame[udp + 8 : udp + length])


class Rig:
    """Namespace A with the vxlan device ``pvh6vx`` (``ip link add ... ARGS``), B its peer."""

    def __init__(self, version: int, args: str, *, remote: bool = True) -> None:
        token = secrets.token_hex(2)
        self.a, self.b = f"pvh6{token}a", f"pvh6{token}b"
        self.version = version
        self.local, self.peer = UNDERLAY[version]
        self.local_link, self.peer_link = "fe80::1", "fe80::2"
        self._socks: list[socket.socket] = []
        nl.netns_create(self.a)
        nl.netns_create(self.b)
        try:
            self._build(args, remote)
        except BaseException:
            self.close()
            raise

    def _build(self, args: str, remote: bool) -> None:
        a, b = self.a, self.b
        _run(
            "ip",
            "-n",
            a,
            "link",
            "add",
            "pvh6u",
            "address",
            A_MAC,
            "type",
            "veth",
            "peer",
            "name",
            "pvh6p",
            "address",
            B_MAC,
            "netns",
            b,
        )
        for ns, ifname, v4, v6, peer_mac, peer4, peer6 in (
            (a, "pvh6u", "198.51.100.1", "2001:db8::1", B_MAC, "198.51.100.2", "2001:db8::2"),
            (b, "pvh6p", "198.51.100.2", "2001:db8::2", A_MAC, "198.51.100.1", "2001:db8::1"),
        ):
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", ifname)
            _run("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", ifname, "nodad")
            _run("ip", "-n", ns, "addr", "add", f"fe80::{v6[-1]}/64", "dev", ifname, "nodad")
            _run("ip", "-n", ns, "link", "set", ifname, "up")
            for ip in (peer4, peer6):
                _run("ip", "-n", ns, "neigh", "replace", ip, "lladdr", peer_mac, "dev", ifname, "nud", "permanent")
        # A second peer address on B, for head-end replication to two remotes.
        for ip, plen in ((THIRD[4], 24), (THIRD[6], 64)):
            _run("ip", "-n", b, "addr", "add", f"{ip}/{plen}", "dev", "pvh6p", "nodad")
            _run("ip", "-n", a, "neigh", "replace", ip, "lladdr", B_MAC, "dev", "pvh6u", "nud", "permanent")
        where = f"remote {self.peer}" if remote else ""
        cmd = f"ip -n {a} link add pvh6vx address {VX_MAC} type vxlan id 10 local {self.local} {where} dstport {PORT} {args}"
        _run(*cmd.split())
        # No addresses of its own: the device then sends only what a test gives it.
        _run("ip", "-n", a, "link", "set", "pvh6vx", "addrgenmode", "none")
        _run("ip", "-n", a, "link", "set", "pvh6vx", "up")
        self.inject = self.open_socket(a, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.inject.bind(("pvh6vx", 0))
        self.capture = self.open_socket(b, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.capture.bind(("pvh6p", 0))
        # A socket on B's side of the port, so the datagrams are taken (no ICMP port unreachable).
        self.sink = self.open_socket(b, socket.AF_INET6, socket.SOCK_DGRAM)
        self.sink.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sink.bind(("::", PORT))
        time.sleep(0.05)
        self.drain(self.capture)
        self.drain(self.inject)

    def open_socket(self, ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
        sock = nl.open_socket(ns, family, kind, proto)
        self._socks.append(sock)
        return sock

    @staticmethod
    def drain(sock: socket.socket) -> None:
        while select.select([sock], [], [], 0)[0]:
            sock.recv(65535)

    @staticmethod
    def _collect(sock: socket.socket, wait: float) -> list[tuple[bytes, int]]:
        got: list[tuple[bytes, int]] = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
            data, addr = sock.recvfrom(65535)
            got.append((data, addr[2]))
        return got

    def transmit(self, frame: bytes, *, mark: int = 0, wait: float = 0.2) -> list[Outer]:
        """``frame`` into the device; the datagrams it sent, as captured on B."""
        self.drain(self.capture)
        self.drain(self.inject)
        self.inject.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, struct.pack("=I", mark))
        self.inject.send(frame)
        outs = [_parse_outer(data) for data, _ in self._collect(self.capture, wait)]
        return [o for o in outs if o is not None]

    def replies(self, wait: float = 0.2) -> list[bytes]:
        """Frames the device handed up since the last transmit (proxy replies, decapsulated frames)."""
        return [data for data, kind in self._collect(self.inject, wait) if kind != PACKET_OUTGOING]

    def receive(
        self, payload: bytes, *, src_port: int = 40000, tos: int = 0, src: str | None = None, wait: float = 0.2
    ) -> list[bytes]:
        """``payload`` sent from B (UDP, from ``src``:``src_port``) to the device; the frames delivered."""
        self.drain(self.inject)
        family = socket.AF_INET if self.version == 4 else socket.AF_INET6
        sock = self.open_socket(self.b, family, socket.SOCK_DGRAM)
        if self.version == 4:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        if src is not None and src.startswith("fe80:"):
            # A link-local source needs its interface, by index: B's side of the veth.
            index = json.loads(_run("ip", "-n", self.b, "-j", "link", "show", "pvh6p"))[0]["ifindex"]
            sock.bind((src, src_port, 0, index))
            sock.sendto(payload, (self.local_link, PORT, 0, index))
        else:
            sock.bind((src or self.peer, src_port))
            sock.sendto(payload, (self.local, PORT))
        sock.close()
        return self.replies(wait)

    def counters(self) -> dict[str, int]:
        """``ip -s link show pvh6vx``: rx_/tx_ packets, bytes, dropped, errors, frame errors."""
        link = json.loads(_run("ip", "-n", self.a, "-s", "-s", "-j", "link", "show", "pvh6vx"))[0]
        rx, tx = link["stats64"]["rx"], link["stats64"]["tx"]
        return {
            "rx_packets": rx["packets"],
            "rx_dropped": rx["dropped"],
            "rx_errors": rx["errors"],
            "rx_frame_errors": rx.get("frame_errors", 0),
            "tx_packets": tx["packets"],
            "tx_dropped": tx["dropped"],
        }

    def fdb(self) -> list[dict[str, object]]:
        """``bridge -j fdb show dev pvh6vx``, as iproute2 prints it."""
        out: list[dict[str, object]] = json.loads(_run("bridge", "-n", self.a, "-j", "fdb", "show", "dev", "pvh6vx"))
        return out

    def ip(self, *args: str) -> str:
        return _run("ip", "-n", self.a, *args)

    def close(self) -> None:
        for sock in self._socks:
            sock.close()
        for ns in (self.a, self.b):
            if nl.netns_exists(ns):
                nl.netns_remove(ns)


@pytest.fixture
def rigs(root: None) -> Iterator[list[Rig]]:
    """Rigs a test opens (append to the list); all closed afterwards."""
    made: list[Rig] = []
    try:
        yield made
    finally:
        for rig in made:
            rig.close()


# --- the model, fed the same ----------------------------------------------------------------------

G1, G2 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
VX = bytes.fromhex(VX_MAC.replace(":", ""))


def model(rig: Rig, remote: bool = True, **settings: object) -> Vtep:
    """The core configured as the rig's device, up, its outputs taken."""
    values: dict[str, object] = {"vni": 10, "local": rig.local, "dst_port": PORT, "mac": VX_MAC}
    if remote:
        values["remote"] = rig.peer
    values.update(settings)
    v = Vtep(VtepConfig(**values))  # type: ignore[arg-type]
    v.up(0.0)
    v.take_outputs()
    return v


def sent(v: Vtep) -> list[SendDatagram]:
    return [o for o in v.take_outputs() if isinstance(o, SendDatagram)]


def delivered(v: Vtep) -> list[bytes]:
    return [o.frame for o in v.take_outputs() if isinstance(o, DeliverFrame)]


def udp(n: int = 20, sport: int = 1000, dport: int = 2000) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + n, 0) + bytes(n)


def ipv4(tos: int = 0, ttl: int = 64, payload: bytes = udp(), src: int = 1) -> bytes:
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + len(payload),
        1,
        0,
        ttl,
        17,
        0,
        bytes((203, 0, 113, src)),
        bytes((203, 0, 113, 200)),
    )
    return head[:10] + internet_checksum(head).to_bytes(2, "big") + head[12:] + payload


def ipv6(tclass: int = 0, hop_limit: int = 64, payload: bytes = udp()) -> bytes:
    addrs = ipaddress.IPv6Address("2001:db8:1::1").packed + ipaddress.IPv6Address("2001:db8:1::2").packed
    return struct.pack("!IHBB", (6 << 28) | (tclass << 20), len(payload), 17, hop_limit) + addrs + payload


def counters_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


VERSIONS = pytest.mark.parametrize("version", [4, 6], ids=["ipv4", "ipv6"])


def _proxy_rig(rigs: list[Rig], version: int) -> tuple[Rig, Vtep]:
    """A ``proxy`` device and its model, both with the neighbours 2001:db8:1::2 and 203.0.113.2."""
    rig = Rig(version, "proxy")
    rigs.append(rig)
    v = model(rig, proxy=True)
    for ip in ("2001:db8:1::2", "203.0.113.2"):
        rig.ip("neigh", "add", ip, "lladdr", "02:00:00:00:00:02", "dev", "pvh6vx", "nud", "permanent")
        v.neigh_add(ip, "02:00:00:00:00:02")
    return rig, v


# --- point 12: proxy replies, byte for byte -------------------------------------------------------


def _ns(tc_flow: int, options: bytes, src_mac: bytes = G1, pad: int = 0) -> bytes:
    target = ipaddress.IPv6Address("2001:db8:1::2").packed
    src = ipaddress.IPv6Address("2001:db8:1::1").packed
    dst = ipaddress.IPv6Address("ff02::1:ff00:2").packed
    icmp = bytes((135, 0, 0x12, 0x34, 0, 0, 0, 0)) + target + options
    ip6 = struct.pack("!IHBB", tc_flow, len(icmp), 58, 255) + src + dst
    return bytes.fromhex("3333ff000002") + src_mac + b"\x86\xdd" + ip6 + icmp + bytes(pad)


def _arp(hrd: int = 1, pad: int = 18) -> bytes:
    body = (
        struct.pack("!HHBBH", hrd, 0x0800, 6, 4, 1) + G1 + bytes((203, 0, 113, 1)) + bytes(6) + bytes((203, 0, 113, 2))
    )
    return b"\xff" * 6 + G1 + b"\x08\x06" + body + bytes(pad)


PROXY_REQUESTS = [
    _ns(0x61212345, b"\x01\x01" + G1),
    _ns(0x6FF00001, b""),  # no source link-layer option: answered to the Ethernet source
    _ns(0x60000000, b"\x0e\x01" + bytes(6) + b"\x01\x01" + bytes.fromhex("020000000077")),  # nonce first
    _ns(0x60000000, b"\x01\x01" + G1, pad=10),
    _ns(0x6ABCDEF0, b"\x01\x01" + G1, src_mac=bytes.fromhex("020000000055")),
    _arp(),
    _arp(hrd=6, pad=0),
]


@VERSIONS
def test_neigh_reduce_and_arp_reduce_replies_are_the_kernels(rigs: list[Rig], version: int) -> None:
    """vxlan_na_create / arp_create: for each NS and ARP request (traffic class and flow label,
    options or none, padding), the model's reply is the kernel's byte for byte; with a ``router``
    FDB entry for the neighbour's MAC too."""
    rig, v = _proxy_rig(rigs, version)
    for router in (False, True):
        if router:
            _run(
                "bridge",
                "-n",
                rig.a,
                "fdb",
                "add",
                "02:00:00:00:00:02",
                "dev",
                "pvh6vx",
                "dst",
                THIRD[version],
                "router",
            )
            v.fdb_add("02:00:00:00:00:02", THIRD[version], router=True)
        for request in PROXY_REQUESTS:
            rig.transmit(request, wait=0.0)
            kernel = rig.replies()
            v.transmit(request, now=1.0)
            assert delivered(v) == kernel, request.hex()
            assert len(kernel) == 1


# --- point 13: inner network header cut short -----------------------------------------------------


@VERSIONS
def test_cut_inner_headers_are_dropped_once_per_remote_as_the_kernel(rigs: list[Rig], version: int) -> None:
    """skb_vlan_inet_prepare in vxlan_xmit_one: tx_dropped once per remote, nothing sent."""
    rig = Rig(version, "")
    rigs.append(rig)
    _run("bridge", "-n", rig.a, "fdb", "append", "00:00:00:00:00:00", "dev", "pvh6vx", "dst", THIRD[version])
    v = model(rig)
    v.fdb_append("00:00:00:00:00:00", THIRD[version])
    frames = [
        G2 + G1 + b"\x08\x00" + bytes(19),
        G2 + G1 + b"\x86\xdd" + bytes(39),
        G2 + G1 + b"\x81\x00\x00\x05\x08\x00" + bytes(19),
        G2 + G1 + b"\x88\xa8\x00\x05\x81\x00\x00\x06\x86\xdd" + bytes(39),
        G2 + G1 + b"\x08\x00" + bytes(20),  # whole: sent
        G2 + G1 + b"\x08\x06" + bytes(2),  # not IP: sent
    ]
    for frame in frames:
        before = rig.counters()
        kernel = rig.transmit(frame)
        delta = counters_delta(before, rig.counters())
        c0 = v.counters()
        v.transmit(frame, now=1.0)
        core = sent(v)
        c1 = v.counters()
        assert (delta["tx_dropped"], delta["tx_packets"]) == (
            c1.tx_dropped - c0.tx_dropped,
            c1.tx_packets - c0.tx_packets,
        )
        assert sorted(o.payload for o in kernel) == sorted(d.payload for d in core)


# --- point 14 and 17: source ports ----------------------------------------------------------------


def _flows(n: int) -> list[bytes]:
    return [G2 + G1 + b"\x08\x00" + ipv4(payload=udp(sport=1000 + i)) for i in range(n)]


def _chi_square(ports: list[int], low: int, high: int, buckets: int) -> float:
    counts = [0] * buckets
    for p in ports:
        counts[(p - low) * buckets // (high - low)] += 1
    expected = len(ports) / buckets
    return sum((c - expected) ** 2 / expected for c in counts)


@VERSIONS
def test_srcport_range_max_unused_and_empty_range_as_the_kernel(rigs: list[Rig], version: int) -> None:
    """udp_flow_src_port: ``srcport 5000 5001`` sends from 5000 only, ``5000 5010`` never from
    5010, ``5000 5000`` from the local port range; the model's ports obey the same bounds."""
    flows = _flows(60)
    for low, high in ((5000, 5001), (5000, 5010), (5000, 5000)):
        rig = Rig(version, f"srcport {low} {high}")
        rigs.append(rig)
        kernel = [o.src_port for f in flows for o in rig.transmit(f, wait=0.05)]
        v = model(rig, src_port_range=(low, high))
        for f in flows:
            v.transmit(f, now=1.0)
        core = [d.src_port for d in sent(v)]
        assert len(kernel) == len(core) == 60
        if low == high:
            assert min(kernel) >= 32768 and max(kernel) < 60999
            assert min(core) >= 32768 and max(core) < 60999
        else:
            assert set(kernel) <= set(range(low, high)) and set(core) <= set(range(low, high))
            assert low in kernel and low in core
        if high - low == 1:
            assert set(kernel) == set(core) == {low}


@VERSIONS
def test_flow_ports_spread_over_the_range_like_the_kernels(rigs: list[Rig], version: int) -> None:
    """256 flows over ``srcport 40000 41000``: chi-square over 8 buckets below 24.3 (p = 0.001,
    7 degrees of freedom) for the kernel's ports and for the model's, and both use most of the
    range. The kernel's hash has a per-boot seed, so the ports themselves differ."""
    flows = _flows(256)
    rig = Rig(version, "srcport 40000 41000")
    rigs.append(rig)
    kernel = [o.src_port for f in flows for o in rig.transmit(f, wait=0.02)]
    v = model(rig, src_port_range=(40000, 41000))
    for f in flows:
        v.transmit(f, now=1.0)
    core = [d.src_port for d in sent(v)]
    assert len(kernel) == len(core) == 256
    for ports in (kernel, core):
        assert _chi_square(ports, 40000, 41000, 8) < 24.3
        assert max(ports) - min(ports) > 900


# --- point 16: GBP after a change of the link ------------------------------------------------------


@VERSIONS
@pytest.mark.parametrize("change", [("ageing", "200"), ("learning",), ("nolearning",)])
def test_gbp_is_lost_on_receive_after_a_link_change_as_the_kernel(
    rigs: list[Rig], version: int, change: tuple[str, ...]
) -> None:
    """Linux 6.13+ vxlan_nl2conf: after ``ip link set DEV type vxlan CHANGE`` a gbp device counts
    GBP datagrams as frame errors, delivers and learns nothing; the model (gbp_lost_on_change,
    the default) does the same; datagrams without GBP bits still pass."""
    rig = Rig(version, "gbp")
    rigs.append(rig)
    v = model(rig, gbp=True)
    gbp_header, plain = bytes.fromhex("8800123400000a00"), bytes.fromhex("0800000000000a00")
    steps = [
        (gbp_header, bytes.fromhex("020000000011")),
        ("change", b""),
        (gbp_header, bytes.fromhex("020000000012")),
        (plain, bytes.fromhex("020000000013")),
        (bytes.fromhex("8800000000000a00"), bytes.fromhex("020000000014")),
    ]
    for header, src in steps:
        if header == "change":
            rig.ip("link", "set", "pvh6vx", "type", "vxlan", *change)
            if change[0] == "ageing":
                v.set_ageing(200)
            else:
                v.set_learning(change[0] == "learning")
            continue
        assert isinstance(header, bytes)
        payload = header + VX + src + b"\x08\x00" + ipv4()
        kernel = rig.receive(payload)
        v.receive(payload, rig.peer, 40000, now=1.0)
        assert delivered(v) == kernel
    c = v.counters()
    k = rig.counters()
    assert (c.rx_packets, c.rx_errors, c.rx_frame_errors) == (k["rx_packets"], k["rx_errors"], k["rx_frame_errors"])
    assert sorted(e.mac for e in v.fdb_dump()) == sorted(str(e["mac"]) for e in rig.fdb())
    assert " gbp " in rig.ip("-d", "link", "show", "pvh6vx")


# --- point 18: mark, ttl/tos inherit, ECN, link-local learning, zero UDP checksums ---------------


@VERSIONS
def test_gbp_header_from_the_packet_mark_as_the_kernel(rigs: list[Rig], version: int) -> None:
    """vxlan_build_gbp_hdr: the header for each skb->mark is the kernel's."""
    rig = Rig(version, "gbp")
    rigs.append(rig)
    v = model(rig, gbp=True)
    frame = G2 + G1 + b"\x08\x00" + ipv4()
    for mark in (0, 0x1234, 1 << 22, 1 << 19, (1 << 22) | (1 << 19) | 0xABCD, 1 << 20, (1 << 31) | 5, 0xFFFFFFFF):
        [kernel] = rig.transmit(frame, mark=mark)
        v.transmit(frame, now=1.0, mark=mark)
        [core] = sent(v)
        assert core.payload == kernel.payload, hex(mark)


TOS_FRAMES = [
    G2 + G1 + b"\x08\x00" + ipv4(tos=0xB9, ttl=9),
    G2 + G1 + b"\x08\x00" + ipv4(tos=0xA3, ttl=0),
    G2 + G1 + b"\x08\x00" + ipv4(tos=0x02, ttl=1),
    G2 + G1 + b"\x86\xdd" + ipv6(tclass=0xB7, hop_limit=7),
    G2 + G1 + b"\x86\xdd" + ipv6(tclass=0x01, hop_limit=255),
    G2 + G1 + b"\x81\x00\x00\x05\x08\x00" + ipv4(tos=0x48, ttl=5),
    G2 + G1 + b"\x08\x06" + bytes(28),
]


@VERSIONS
@pytest.mark.parametrize("args", ["", "ttl inherit tos inherit", "ttl 20 tos 0x10", "ttl inherit"])
def test_outer_ttl_and_tos_as_the_kernel(rigs: list[Rig], version: int, args: str) -> None:
    """ip_tunnel_get_ttl, ip_tunnel_get_dsfield and INET_ECN_encapsulate, toward a unicast remote
    and a group: the outer TTL/hop limit and TOS/traffic class the kernel sent, frame by frame."""
    rig = Rig(version, args, remote=False)
    rigs.append(rig)
    group = "239.1.1.1" if version == 4 else "ff05::100"
    _run("bridge", "-n", rig.a, "fdb", "append", "00:00:00:00:00:00", "dev", "pvh6vx", "dst", rig.peer)
    _run("bridge", "-n", rig.a, "fdb", "append", "00:00:00:00:00:00", "dev", "pvh6vx", "dst", group, "via", "pvh6u")
    words = args.split()
    settings: dict[str, object] = {}
    if "ttl" in words:
        ttl = words[words.index("ttl") + 1]
        settings["ttl_inherit" if ttl == "inherit" else "ttl"] = True if ttl == "inherit" else int(ttl)
    if "tos" in words:
        tos = words[words.index("tos") + 1]
        settings["tos"] = "inherit" if tos == "inherit" else int(tos, 16)
    v = model(rig, remote=False, **settings)
    v.fdb_append("00:00:00:00:00:00", rig.peer)
    v.fdb_append("00:00:00:00:00:00", group, interface="pvh6u")
    for frame in TOS_FRAMES:
        kernel = sorted((o.dst, o.ttl, o.tos) for o in rig.transmit(frame))
        v.transmit(frame, now=1.0)
        core = sorted((d.dst, d.ttl, d.tos) for d in sent(v))
        assert core == kernel, frame.hex()


@VERSIONS
def test_ecn_decapsulation_as_the_kernel(rigs: list[Rig], version: int) -> None:
    """IP_ECN_decapsulate in vxlan_rcv: outer CE over a not-ECT inner packet is learned, then a
    frame error; over an ECT one it is delivered marked CE; the rest pass unchanged."""
    rig = Rig(version, "")
    rigs.append(rig)
    v = model(rig)
    cases = [
        (3, b"\x08\x00" + ipv4(tos=0x00)),
        (3, b"\x08\x00" + ipv4(tos=0x02)),
        (3, b"\x08\x00" + ipv4(tos=0xB9)),
        (3, b"\x08\x00" + ipv4(tos=0x03)),
        (3, b"\x86\xdd" + ipv6(tclass=0x00)),
        (3, b"\x86\xdd" + ipv6(tclass=0xB6)),
        (2, b"\x08\x00" + ipv4(tos=0x00)),
        (1, b"\x86\xdd" + ipv6(tclass=0x00)),
        (3, b"\x08\x06" + bytes(28)),
    ]
    for i, (tos, body) in enumerate(cases):
        payload = bytes.fromhex("0800000000000a00") + VX + bytes((2, 0, 0, 0, 0, 0x20 + i)) + body
        kernel = rig.receive(payload, tos=tos)
        v.receive(payload, rig.peer, 40000, now=1.0, tos=tos)
        assert delivered(v) == kernel, i
    c, k = v.counters(), rig.counters()
    assert (
        (c.rx_packets, c.rx_errors, c.rx_frame_errors)
        == (k["rx_packets"], k["rx_errors"], k["rx_frame_errors"])
        == (7, 2, 2)
    )
    assert sorted(e.mac for e in v.fdb_dump()) == sorted(str(e["mac"]) for e in rig.fdb())


def test_link_local_source_learned_via_the_receiving_interface_as_the_kernel(rigs: list[Rig]) -> None:
    """vxlan_snoop: ``dst fe80::2 via pvh6u``; a later global source migrates it and keeps via."""
    rig = Rig(6, "")
    rigs.append(rig)
    v = model(rig)
    payload = bytes.fromhex("0800000000000a00") + VX + bytes.fromhex("020000000021") + b"\x08\x00" + ipv4()

    def table() -> tuple[list[tuple[str, str | None]], list[tuple[str, str | None]]]:
        kernel = sorted((str(e["dst"]), e.get("viaIf")) for e in rig.fdb() if e["mac"] == "02:00:00:00:00:21")
        core = sorted((e.dst, e.interface) for e in v.fdb.get("02:00:00:00:00:21"))
        return kernel, core  # type: ignore[return-value]

    rig.receive(payload, src=rig.peer_link)
    v.receive(payload, rig.peer_link, 40000, now=1.0, interface="pvh6u")
    kernel, core = table()
    assert kernel == core == [("fe80::2", "pvh6u")]
    rig.receive(payload)
    v.receive(payload, rig.peer, 40000, now=2.0, interface="pvh6u")
    kernel, core = table()
    assert kernel == core == [("2001:db8::2", "pvh6u")]


@pytest.mark.parametrize("args", ["", "udp6zerocsumtx", "udp6zerocsumrx"])
def test_udp6_zero_checksums_as_the_kernel(rigs: list[Rig], args: str) -> None:
    """IFLA_VXLAN_UDP_ZERO_CSUM6_TX/RX: checksum 0 sent only with udp6zerocsumtx; a zero-checksum
    datagram delivered only with udp6zerocsumrx."""
    rig = Rig(6, args)
    rigs.append(rig)
    v = model(rig, udp6_zero_csum_tx=args == "udp6zerocsumtx", udp6_zero_csum_rx=args == "udp6zerocsumrx")
    frame = G2 + G1 + b"\x08\x00" + ipv4()
    [kernel] = rig.transmit(frame)
    v.transmit(frame, now=1.0)
    [core] = sent(v)
    assert core.zero_checksum is (kernel.checksum == 0)
    raw = rig.open_socket(rig.b, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
    payload = bytes.fromhex("0800000000000a00") + VX + bytes.fromhex("020000000031") + b"\x08\x00" + ipv4()
    rig.drain(rig.inject)
    raw.sendto(struct.pack("!HHHH", 40001, PORT, 8 + len(payload), 0) + payload, (rig.local, 0))
    got = rig.replies()
    v.receive(payload, rig.peer, 40001, now=1.0, zero_checksum=True)
    assert delivered(v) == got
    assert len(got) == (args == "udp6zerocsumrx")


def test_the_new_settings_reach_the_kernel_both_ways(netns: str) -> None:
    """ttl_inherit, tos, udp6_zero_csum_tx/rx through netlink (KernelVtep's path) and through the
    ``ip link`` words of the kernel lab: ``ip -d link show`` prints them back."""
    from pyvxlan.lab.iproute2 import vxlan_options

    common: dict[str, Any] = {"local": "2001:db8::1", "remote": "2001:db8::2"}
    by_netlink = VtepConfig(
        vni=10, name="pvh6a", ttl_inherit=True, tos="inherit", udp6_zero_csum_tx=True, udp6_zero_csum_rx=True, **common
    )
    by_words = VtepConfig(vni=11, name="pvh6b", dst_port=4790, tos=0x10, udp6_zero_csum_tx=True, **common)
    rtnl = nl.Rtnl(netns)
    rtnl.add_vxlan(by_netlink, None)
    _run("ip", "-n", netns, "link", "add", "pvh6b", "type", "vxlan", *" ".join(vxlan_options(by_words)).split())
    a = _run("ip", "-n", netns, "-d", "link", "show", "pvh6a")
    b = _run("ip", "-n", netns, "-d", "link", "show", "pvh6b")
    assert " ttl inherit " in a and " tos inherit " in a and " udp6zerocsumtx udp6zerocsumrx " in a
    assert " ttl auto " in b and " tos 0x10 " in b and " udp6zerocsumtx noudp6zerocsumrx " in b
    info = rtnl.link(name="pvh6a").vxlan
    rtnl.close()
    assert (info["tos"], info["udp6_zero_csum_tx"], info["udp6_zero_csum_rx"]) == (1, 1, 1)


@VERSIONS
def test_proxy_requests_the_kernel_does_not_answer_are_not_answered(rigs: list[Rig], version: int) -> None:
    """vxlan_na_create returns NULL for an NS option of length 0; an NS or ARP request for an
    address without a neighbour, or for a multicast target, gets no reply either."""
    rig = Rig(version, "proxy")
    rigs.append(rig)
    rig.ip("neigh", "add", "2001:db8:1::2", "lladdr", "02:00:00:00:00:02", "dev", "pvh6vx", "nud", "permanent")
    v = model(rig, proxy=True)
    v.neigh_add("2001:db8:1::2", "02:00:00:00:00:02")
    unknown = bytearray(_ns(0x60000000, b"\x01\x01" + G1))
    unknown[62 + 15] = 9  # target 2001:db8:1::9
    unknown_arp = bytearray(_arp())
    unknown_arp[41] = 9  # target 203.0.113.9
    for request in (_ns(0x60000000, b"\x0e\x00" + bytes(6)), bytes(unknown), bytes(unknown_arp)):
        rig.transmit(request, wait=0.0)
        kernel = rig.replies()
        v.transmit(request, now=1.0)
        assert delivered(v) == kernel == [], request.hex()


@VERSIONS
def test_random_proxy_requests_are_answered_as_the_kernel(rigs: list[Rig], version: int) -> None:
    """60 neighbour solicitations and ARP requests from a fixed seed (any traffic class and flow
    label, options in any order and length, source link-layer option or not, padding, sender
    MACs): the model's replies (or silence) are the kernel's, byte for byte."""
    import random

    rng = random.Random(9_12)
    rig, v = _proxy_rig(rigs, version)
    answered = 0
    for _ in range(60):
        sender = bytes((rng.randrange(0, 256) & 0xFE | 0x02, *rng.randbytes(5)))
        if rng.random() < 0.3:
            request = bytearray(_arp(hrd=rng.choice((1, 6)), pad=rng.randrange(0, 20)))
            request[6:12] = request[22:28] = sender
        else:
            options = b""
            for _ in range(rng.randrange(0, 4)):
                kind = rng.choice((1, 1, 2, 14, 3))
                units = rng.choice((1, 1, 2))
                body = sender if kind == 1 and units == 1 else rng.randbytes(units * 8 - 2)
                options += bytes((kind, units)) + body
            request = bytearray(
                _ns(0x60000000 | rng.randrange(1 << 28), options, src_mac=sender, pad=rng.choice((0, 0, 6)))
            )
        rig.transmit(bytes(request), wait=0.0)
        kernel = rig.replies(wait=0.1)
        v.transmit(bytes(request), now=1.0)
        assert delivered(v) == kernel, bytes(request).hex()
        answered += len(kernel)
    assert answered > 40
