"""The events a conformance run feeds to both sides, and the devices it feeds them to.

Each step knows three renderings of itself: the shell command that does it to a real device,
the Python call that does it to the model, and the call itself. Control steps run on the kernel
as exactly that command (``bridge``, ``ip``), so a reproduction is what really ran; datagrams and
guest frames are sent from sockets the engine keeps open in the peer and guest namespaces, and
the reproduction prints a ``python3 -c`` program that sends the same bytes from there.
"""

from __future__ import annotations

import enum
import ipaddress
import random
import shlex
from dataclasses import dataclass
from typing import Any, TypeAlias

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbState
from pyvxlan.wire.header import FLAG_G, FLAG_I, GBP_A, GBP_D, HEADER_WORDS
from pyvxlan.wire.packets import arp_frame, ns_frame

__all__ = [
    "Category",
    "Datagram",
    "Device",
    "FdbOp",
    "Frame",
    "LinkOp",
    "NeighOp",
    "Step",
    "Wait",
    "python_call",
    "random_device",
    "random_step",
]

DEV = "pvh8vx"  # the device under test, in every rig
UNDER = "pvh8u"  # its underlay veth; the peer's end is "pvh8p"
VNI = 4242
DEV_MAC = "02:00:00:00:42:ff"
LOCAL = {4: "198.51.100.1", 6: "2001:db8::1"}
PEERS = {4: ("198.51.100.2", "198.51.100.3", "198.51.100.4"), 6: ("2001:db8::2", "2001:db8::3", "2001:db8::4")}
GROUP = {4: "239.1.1.1", 6: "ff05::100"}
ZERO = "00:00:00:00:00:00"
MCAST = "01:00:5e:01:01:01"
MACS = ("02:00:00:00:42:01", "02:00:00:00:42:02", "02:00:00:00:42:03")
GUESTS = ("02:00:00:00:43:01", "02:00:00:00:43:02")  # behind the bridge; never a destination
PEER_MAC = "02:00:00:00:0b:01"  # the underlay peer's veth
NEIGHBOURS = ("203.0.113.5", "203.0.113.6", "2001:db8:1::5", "2001:db8:1::6")


class Category(enum.Enum):
    """What a step exercises, as ``--only`` names it."""

    CTL = "ctl"
    RX = "rx"
    AGE = "age"
    TX = "tx"
    PROXY = "proxy"
    NEIGH = "neigh"


# What this engine drives today; the others are refused by ``--only`` with a message saying so.
IMPLEMENTED: tuple[Category, ...] = (
    Category.CTL,
    Category.RX,
    Category.AGE,
    Category.TX,
    Category.PROXY,
    Category.NEIGH,
)


def _py(value: object) -> str:
    if isinstance(value, FdbState):
        return f"FdbState.{value.name}"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, bytes):
        return f"bytes.fromhex({value.hex()!r})"
    return repr(value)


def python_call(method: str, args: tuple[object, ...], kwargs: dict[str, object]) -> str:
    parts = [_py(a) for a in args] + [f"{k}={_py(v)}" for k, v in kwargs.items()]
    return f"vtep.{method}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class Device:
    """The device a run's episode creates: ``ip link add ... type vxlan`` and its :class:`VtepConfig`."""

    version: int = 4
    mode: str = "remote"  # "remote", "remote-dev" (remote with dev) or "group" (group with dev)
    dst_port: int = 4789
    max_entries: int = 0
    ageing: int = 300
    gbp: bool = False
    proxy: bool = False
    l2miss: bool = False
    l3miss: bool = False

    def config(self) -> VtepConfig:
        """The model's configuration of this device."""
        remote = None if self.mode == "group" else PEERS[self.version][0]
        return VtepConfig(
            vni=VNI,
            local=LOCAL[self.version],
            remote=remote,
            group=GROUP[self.version] if self.mode == "group" else None,
            dev=None if self.mode == "remote" else UNDER,
            dst_port=self.dst_port,
            max_entries=self.max_entries,
            ageing=self.ageing,
            gbp=self.gbp,
            proxy=self.proxy,
            l2miss=self.l2miss,
            l3miss=self.l3miss,
            mac=DEV_MAC,
            name=DEV,
        )

    def ip_link_add(self) -> str:
        """The ``ip link add`` arguments (after ``ip -n NS``) that make this device."""
        where = f"group {GROUP[self.version]}" if self.mode == "group" else f"remote {PEERS[self.version][0]}"
        parts = [f"link add {DEV} address {DEV_MAC} type vxlan id {VNI} local {LOCAL[self.version]} {where}"]
        if self.mode != "remote":
            parts.append(f"dev {UNDER}")
        parts.append(f"dstport {self.dst_port}")
        if self.max_entries:
            parts.append(f"maxaddress {self.max_entries}")
        parts.append(f"ageing {self.ageing}")
        if self.gbp:
            parts.append("gbp")
        if self.proxy:
            parts.append("proxy")
        parts += [word for word, on in (("l2miss", self.l2miss), ("l3miss", self.l3miss)) if on]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class FdbOp:
    """``bridge fdb add|append|replace|del``."""

    op: str  # "add", "append", "replace", "del"
    mac: str
    dst: str | None
    port: int | None = None
    vni: int | None = None
    via: str | None = None
    state: FdbState = FdbState.PERMANENT
    extern_learn: bool = False
    router: bool = False
    src_vni: int | None = None

    category = Category.CTL

    def shell(self, device: Device) -> str:
        """The ``bridge`` arguments (after ``bridge -n NS``)."""
        words = ["fdb", self.op, self.mac, "dev", DEV]
        if self.dst is not None:
            words += ["dst", self.dst]
        for name in ("port", "vni", "src_vni", "via"):
            value = getattr(self, name)
            if value is not None:
                words += [name, str(value)]
        words.append("self")
        if self.op != "del":
            if self.router:
                words.append("router")
            if self.extern_learn:
                words.append("extern_learn")
            words.append(self.state.value or "dynamic")
        return " ".join(words)

    def call(self) -> tuple[str, tuple[object, ...], dict[str, Any]]:
        """The model's method, arguments and keywords."""
        kw: dict[str, Any] = {}
        for name in ("port", "vni"):
            if getattr(self, name) is not None:
                kw[name] = getattr(self, name)
        if self.via is not None:
            kw["interface"] = self.via
        if self.src_vni is not None:
            kw["src_vni"] = self.src_vni
        if self.op == "del":
            return "fdb_del", (self.mac, self.dst), kw
        kw["state"] = self.state
        if self.extern_learn:
            kw["extern_learn"] = True
        if self.router:
            kw["router"] = True
        return f"fdb_{self.op}", (self.mac, self.dst), kw


@dataclass(frozen=True, slots=True)
class NeighOp:
    """``ip neigh add IP lladdr MAC dev DEV`` or ``ip neigh del IP dev DEV``."""

    op: str  # "add" or "del"
    ip: str
    mac: str = ""

    category = Category.CTL

    def shell(self, device: Device) -> str:
        """The ``ip`` arguments (after ``ip -n NS``)."""
        if self.op == "add":
            return f"neigh add {self.ip} lladdr {self.mac} dev {DEV}"
        return f"neigh del {self.ip} dev {DEV}"

    def call(self) -> tuple[str, tuple[object, ...], dict[str, Any]]:
        """The model's method, arguments and keywords."""
        if self.op == "add":
            return "neigh_add", (self.ip, self.mac), {}
        return "neigh_del", (self.ip,), {}


@dataclass(frozen=True, slots=True)
class LinkOp:
    """``ip link set DEV up|down`` or ``ip link set DEV type vxlan [no]learning|ageing N|remote A``."""

    op: str  # "up", "down", "learning", "ageing", "remote"
    value: object = None

    category = Category.CTL

    def shell(self, device: Device) -> str:
        """The ``ip`` arguments (after ``ip -n NS``)."""
        if self.op in ("up", "down"):
            return f"link set {DEV} {self.op}"
        if self.op == "learning":
            return f"link set {DEV} type vxlan {'learning' if self.value else 'nolearning'}"
        if self.op == "ageing":
            return f"link set {DEV} type vxlan ageing {self.value}"
        address = str(self.value)
        word = "group" if address in GROUP.values() else "remote"
        # iproute2 wants the device's dev repeated with a group (it checks before asking the kernel).
        dev = f" dev {UNDER}" if device.mode != "remote" else ""
        return f"link set {DEV} type vxlan {word} {address}{dev}"

    def call(self) -> tuple[str, tuple[object, ...], dict[str, Any]]:
        """The model's method, arguments and keywords."""
        if self.op in ("up", "down"):
            return self.op, (), {}
        if self.op == "learning":
            return "set_learning", (bool(self.value),), {}
        if self.op == "ageing":
            return "set_ageing", (self.value,), {}
        return "set_remote", (self.value,), {}


@dataclass(frozen=True, slots=True)
class Datagram:
    """A UDP datagram from the peer namespace's ``src`` to the device's port: ``payload`` is the
    VXLAN header and the inner frame, crafted byte by byte."""

    src: str
    payload: bytes
    what: str = ""  # why it was drawn, for the report

    category = Category.RX

    def program(self, device: Device) -> str:
        """The Python program that sends it (run in the peer namespace)."""
        family = "AF_INET6" if ":" in self.src else "AF_INET"
        return (
            f"import socket; s = socket.socket(socket.{family}, socket.SOCK_DGRAM); "
            f's.bind(("{self.src}", 0)); '
            f's.sendto(bytes.fromhex("{self.payload.hex()}"), ("{LOCAL[device.version]}", {device.dst_port}))'
        )

    def shell(self, device: Device) -> str:
        """``python3 -c PROGRAM`` (run with ``ip netns exec PEER``)."""
        return f"python3 -c {shlex.quote(self.program(device))}"

    def call(self) -> tuple[str, tuple[object, ...], dict[str, Any]]:
        """The model's method, arguments and keywords (``now`` is added by the engine)."""
        return "receive", (bytes(self.payload), self.src, 0), {}


@dataclass(frozen=True, slots=True)
class Wait:
    """Let time pass: the kernel sleeps, the model's clock moves on and its timer runs."""

    seconds: float

    category = Category.AGE

    def shell(self, device: Device) -> str:
        """``sleep N``."""
        return f"sleep {self.seconds:g}"

    def call(self) -> tuple[str, tuple[object, ...], dict[str, Any]]:
        """The model's method (``now`` is added by the engine)."""
        return "handle_timer", (), {}


@dataclass(frozen=True, slots=True)
class Frame:
    """An Ethernet frame sent by the guest namespace behind the device's bridge (a packet socket on
    its veth): the bridge floods or forwards it to the vxlan port, which encapsulates it."""

    frame: bytes
    what: str = ""
    category: Category = Category.TX  # PROXY for ARP requests, NEIGH for neighbour solicitations

    def program(self) -> str:
        """The Python program that sends it (run in the guest namespace)."""
        return (
            "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
            f's.bind(("pvh8gc", 0)); s.send(bytes.fromhex("{self.frame.hex()}"))'
        )

    def shell(self, device: Device) -> str:
        """``python3 -c PROGRAM`` (run with ``ip netns exec GUEST``)."""
        return f"python3 -c {shlex.quote(self.program())}"

    def call(self) -> tuple[str, tuple[object, ...], dict[str, Any]]:
        """The model's method and arguments (``now`` is added by the engine)."""
        return "transmit", (bytes(self.frame),), {}


Step: TypeAlias = FdbOp | NeighOp | LinkOp | Datagram | Wait | Frame


# --- random draws ---------------------------------------------------------------------------------


def random_device(rng: random.Random, categories: frozenset[Category]) -> Device:
    """A device for one episode: family, remote/dev/group, port, maxaddress."""
    version = rng.choice((4, 6))
    mode = rng.choice(("remote", "remote", "remote-dev", "group"))
    port = rng.choice((4789, 4789, 8472))
    limit = rng.choice((0, 0, 0, 3, 5))
    ageing = 300
    if Category.AGE in categories:
        ageing = rng.choice((2, 3))
        # Until vxlan_cleanup sweeps it (up to 10 s late), an expired entry still counts toward
        # maxaddress in the kernel: which learn is refused would depend on the sweep's timing.
        limit = 0
    gbp = Category.AGE not in categories and rng.random() < 0.2
    proxy = bool({Category.PROXY, Category.NEIGH} & categories) and rng.random() < 0.7
    frames = bool({Category.TX, Category.PROXY, Category.NEIGH} & categories)
    l2miss = frames and rng.random() < 0.5
    l3miss = frames and rng.random() < 0.5
    return Device(
        version=version,
        mode=mode,
        dst_port=port,
        max_entries=limit,
        ageing=ageing,
        gbp=gbp,
        proxy=proxy,
        l2miss=l2miss,
        l3miss=l3miss,
    )


def _fdb_op(rng: random.Random, device: Device, vias: tuple[str, ...]) -> FdbOp:
    v = device.version
    other = 6 if v == 4 else 4
    mac = rng.choice((ZERO, MCAST, *MACS))
    roll = rng.random()
    if roll < 0.04:
        dst: str | None = None
    elif roll < 0.08:
        dst = "::" if v == 6 else "0.0.0.0"
    elif roll < 0.11:
        dst = PEERS[other][1]
    else:
        dst = rng.choice(PEERS[v])
    port = 5555 if rng.random() < 0.15 else None
    vni = rng.choice((99, VNI)) if rng.random() < 0.15 else None
    via = rng.choice(vias) if rng.random() < 0.15 else None
    op = rng.choice(("add", "add", "append", "append", "replace", "del", "del"))
    if op == "del":
        return FdbOp("del", mac, rng.choice((None, dst, dst)), port, vni, via)
    src_vni = rng.choice((VNI, 77)) if rng.random() < 0.08 else None
    state = rng.choice((FdbState.PERMANENT, FdbState.STATIC, FdbState.REACHABLE))
    return FdbOp(op, mac, dst, port, vni, via, state, rng.random() < 0.25, rng.random() < 0.15, src_vni)


def _link_op(rng: random.Random, device: Device) -> LinkOp:
    v = device.version
    op = rng.choice(("up", "down", "learning", "ageing", "remote", "remote"))
    if op == "learning":
        return LinkOp(op, rng.random() < 0.6)
    if op == "ageing":
        # Long enough that nothing expires within a ctl episode (the kernel runs in real time).
        return LinkOp(op, rng.choice((120, 300)) if device.ageing >= 60 else device.ageing)
    if op == "remote":
        choices = [*PEERS[v], "::" if v == 6 else "0.0.0.0", PEERS[6 if v == 4 else 4][1], GROUP[v]]
        return LinkOp(op, rng.choice(choices))
    return LinkOp(op)


def _neigh_op(rng: random.Random) -> NeighOp:
    ip = rng.choice(NEIGHBOURS)
    if rng.random() < 0.6:
        return NeighOp("add", ip, rng.choice(MACS))
    return NeighOp("del", ip)


def _ipv4_udp(size: int) -> bytes:
    from pyvxlan.wire.frame import internet_checksum

    total = 28 + size
    header = bytearray(
        bytes((0x45, 0))
        + total.to_bytes(2, "big")
        + bytes(4)
        + bytes((64, 17, 0, 0))
        + bytes((203, 0, 113, 1, 203, 0, 113, 9))
    )
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    return (
        bytes(header)
        + (40000).to_bytes(2, "big")
        + (9).to_bytes(2, "big")
        + (8 + size).to_bytes(2, "big")
        + bytes(2 + size)
    )


def _inner(rng: random.Random, src_mac: str) -> bytes:
    dst = bytes.fromhex(rng.choice(("ffffffffffff", "020000004299", DEV_MAC.replace(":", ""))))
    src = bytes.fromhex(src_mac.replace(":", ""))
    kind = rng.random()
    if kind < 0.5:
        # ARP request: 28 bytes, nothing the IP layer looks into.
        body = (
            bytes.fromhex("08060001080006040001") + src + bytes((203, 0, 113, 1)) + bytes(6) + bytes((203, 0, 113, 2))
        )
    elif kind < 0.8:
        # IPv4/UDP to an overlay address nobody here has: the stack drops it without a counter. (An
        # unknown ethertype would be counted in rx_dropped by __netif_receive_skb_core, not by vxlan.)
        body = b"\x08\x00" + _ipv4_udp(rng.randrange(0, 40))
    else:
        # An IPv4 ethertype with less than a whole header: learned from, then dropped.
        body = b"\x08\x00" + bytes((0x45,)) + bytes(rng.randrange(0, 18))
    return dst + src + body


def _datagram(rng: random.Random, device: Device) -> Datagram:
    v = device.version
    src = rng.choice(PEERS[v])
    flags, vni, reserved = FLAG_I, VNI, 0
    mac = rng.choice(MACS)
    what = "learn or refresh"
    roll = rng.random()
    if roll < 0.06:
        flags, what = 0, "I flag clear"
    elif roll < 0.12:
        vni, what = 99, "wrong VNI"
    elif roll < 0.17:
        reserved, what = rng.choice((1, 0x80)), "reserved bits"
    elif roll < 0.21 or (device.gbp and roll < 0.4):
        # On a gbp device: a policy, and the D and A bits; learned from until a link change
        # (vxlan_nl2conf's lost GBP mask), a frame error after it.
        word0 = FLAG_G | FLAG_I | rng.choice((0, GBP_D, GBP_A)) | rng.randrange(1 << 16)
        return Datagram(src, HEADER_WORDS.pack(word0, vni << 8) + _inner(rng, mac), "G flag (GBP)")
    elif roll < 0.27:
        mac, what = DEV_MAC, "the device's own MAC"
    elif roll < 0.33:
        mac, what = rng.choice((ZERO, MCAST)), "multicast or zero source"
    header = HEADER_WORDS.pack(flags, (vni << 8) | reserved)
    inner = _inner(rng, mac)
    if rng.random() < 0.06:
        inner, what = inner[: rng.randrange(0, 14)], "truncated"
    return Datagram(src, header + inner, what)


def _frame(rng: random.Random) -> Frame:
    # Not the device's own MAC (the bridge keeps it as a local entry) nor a guest's (learned on
    # the guest's port): every destination here is forwarded or flooded to the vxlan port.
    dst = rng.choice((*MACS, "ff:ff:ff:ff:ff:ff", "01:00:5e:01:01:01", "02:00:00:00:42:99"))
    frame = _inner(rng, rng.choice(GUESTS))
    frame = bytes.fromhex(dst.replace(":", "")) + frame[6:]
    what = "unicast, broadcast or multicast"
    return Frame(frame, what)


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def random_step(rng: random.Random, device: Device, categories: frozenset[Category]) -> Step:
    """One step of a category in ``categories``, drawn for ``device``."""
    kinds: list[str] = []
    if Category.CTL in categories:
        kinds += ["fdb"] * 6 + ["link", "neigh"]
    if Category.RX in categories:
        kinds += ["rx"] * 5
    if Category.AGE in categories:
        kinds += ["rx", "wait"] * 3 + ["ageing"]
    if Category.TX in categories:
        kinds += ["tx"] * 4
    if Category.PROXY in categories:
        kinds += ["arp"] * 3 + ["neigh"] * 2
    if Category.NEIGH in categories:
        kinds += ["ns"] * 3 + ["neigh"] * 2
    kind = rng.choice(kinds)
    if kind == "fdb":
        # With frames to send, only the underlay as via: the model has no routing table, and a
        # remote via lo is a route lookup that fails (tx_errors), not vxlan behaviour.
        return _fdb_op(rng, device, (UNDER,) if Category.TX in categories else ("lo", UNDER))
    if kind == "link":
        return _link_op(rng, device)
    if kind == "ageing":
        # In seconds, both ways: the kernel's next sweep uses the new time for every entry.
        return LinkOp("ageing", rng.choice((1, 2, 4)))
    if kind == "neigh":
        return _neigh_op(rng)
    if kind == "rx":
        return _datagram(rng, device)
    if kind == "tx":
        return _frame(rng)
    if kind == "arp":
        target = rng.choice(("203.0.113.5", "203.0.113.6", "203.0.113.7"))
        frame = arp_frame(1, _mac(rng.choice(GUESTS)), bytes((203, 0, 113, 1)), ipaddress.IPv4Address(target).packed)
        return Frame(frame, f"ARP request for {target}", Category.PROXY)
    if kind == "ns":
        target = rng.choice(("2001:db8:1::5", "2001:db8:1::6", "2001:db8:1::7"))
        src = ipaddress.IPv6Address("2001:db8:1::1").packed
        frame = ns_frame(_mac(rng.choice(GUESTS)), src, ipaddress.IPv6Address(target).packed)
        return Frame(frame, f"neighbour solicitation for {target}", Category.NEIGH)
    return Wait(rng.choice((0.5, 1.0, 1.5)))
