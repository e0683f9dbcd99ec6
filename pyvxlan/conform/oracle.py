"""The two sides of a conformance run: a real vxlan device read back through iproute2's JSON, and
the model (:class:`pyvxlan.Vtep` or anything shaped like it).

The kernel side never uses pyvxlan's netlink code for what it compares: steps are ``bridge`` and
``ip`` commands, datagrams come from UDP sockets in a peer namespace, and the state is parsed from
``bridge -j -d -s fdb show``, ``ip -j -s -s -d link show`` and ``ip -j neigh show``. (Namespaces
are made with ``ip netns add``, sockets in them with :mod:`pyvxlan.kernel.netns`: plumbing, not state.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import select
import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from pyvxlan.conform.steps import (
    DEV,
    LOCAL,
    PEER_MAC,
    PEERS,
    UNDER,
    Datagram,
    Device,
    FdbOp,
    Frame,
    LinkOp,
    NeighOp,
    Step,
    Wait,
)
from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbEntry, Neighbour
from pyvxlan.core.events import DeliverFrame, L2Miss, L3Miss, SendDatagram, VtepCounters
from pyvxlan.errors import (
    ConfigError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    NeighbourExists,
    NeighbourNotFound,
    PrivilegeError,
)
from pyvxlan.kernel.netns import socket_in

__all__ = [
    "FDB_AGE_INTERVAL",
    "KernelOracle",
    "ModelFactory",
    "ModelOracle",
    "Oracle",
    "Row",
    "Snapshot",
    "outcome_of",
    "render",
    "rig_commands",
    "socket_in",
]

# vxlan_cleanup runs at most this often (FDB_AGE_INTERVAL, 10 s): an entry can outlive its
# ageing time by up to that much in the kernel. Half a second more for the scheduler.
FDB_AGE_INTERVAL = 10.5
RX_COUNTERS = ("rx_packets", "rx_bytes", "rx_dropped", "rx_errors", "rx_frame_errors", "rx_length_errors")
TX_COUNTERS = ("tx_packets", "tx_bytes", "tx_dropped", "tx_errors")
COUNTERS = RX_COUNTERS + TX_COUNTERS

# One datagram the device sent: destination, port, outer TTL, and the UDP payload (VXLAN header and
# inner frame) in hex. The source port is left out: the kernel's comes from a per-boot random hash.
Sent: TypeAlias = tuple[str, int, int, str]

Row: TypeAlias = tuple[str, str, int | None, int | None, str | None, str, bool, bool]


def _row_order(row: Row) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything compared after a step. ``updated`` holds each row's seconds since its last
    refresh (only filled in the ``age`` category); ``maybe`` rows may be on the kernel's side only
    (entries past their ageing time that ``vxlan_cleanup`` has not swept yet)."""

    up: bool
    remote: str | None
    group: str | None
    learning: bool
    ageing: int
    rows: tuple[Row, ...]
    neighbours: tuple[tuple[str, str], ...]
    counters: tuple[tuple[str, int], ...] = ()
    updated: tuple[tuple[str, str, int], ...] = ()
    sent: tuple[Sent, ...] = ()
    replies: tuple[str, ...] = ()
    misses: tuple[str, ...] = ()
    maybe: tuple[Row, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready values (``maybe`` left out)."""
        out = dataclasses.asdict(self)
        del out["maybe"]
        return out


def outcome_of(exc: BaseException | None) -> str:
    """The errno a model's exception stands for, as the kernel side reports it; ``ok`` for none."""
    if exc is None:
        return "ok"
    for kind, name in (
        (FdbEntryExists, "EEXIST"),
        (FdbFull, "ENOSPC"),
        (FdbEntryNotFound, "ENOENT"),
        (NeighbourExists, "EEXIST"),
        (NeighbourNotFound, "ENOENT"),
        (FdbOperationNotSupported, "EOPNOTSUPP"),
        (ConfigError, "refused"),
    ):
        if isinstance(exc, kind):
            return name
    return f"{type(exc).__name__}: {exc}"


# iproute2's messages for each errno (or the kernel's extack text that replaces it), and its own
# refusals. EINVAL, EAFNOSUPPORT and iproute2's usage errors are one outcome, "refused": the model
# raises ConfigError for all of them.
_MESSAGES: tuple[tuple[str, str], ...] = (
    ("File exists", "EEXIST"),
    ("No space left on device", "ENOSPC"),
    ("No such file or directory", "ENOENT"),
    ("Operation not supported", "EOPNOTSUPP"),
    ("Cannot replace non-unicast fdb entries", "EOPNOTSUPP"),
    ("Invalid argument", "refused"),
    ("Address family not supported", "refused"),
    ("does not match old group", "refused"),
    ("requires 'dev'", "refused"),
    ("Local interface required", "refused"),
)


def _kernel_outcome(rc: int, stderr: str) -> str:
    if rc == 0:
        return "ok"
    for text, name in _MESSAGES:
        if text in stderr:
            return name
    return f"error: {stderr.strip()}"


class Oracle(Protocol):
    """One side of the comparison (the kernel, or a model standing in for it in tests)."""

    def reset(self, device: Device) -> None:
        """A fresh ``device``, down, as ``ip link add`` makes it; its clock restarts at 0."""

    def apply(self, step: Step) -> str:
        """Do ``step``; its outcome (``ok``, an errno name or ``refused``)."""

    def snapshot(self, detail: bool) -> Snapshot:
        """The state now; ``detail`` adds the rx counters and the rows' ``updated``."""

    def now(self) -> float:
        """Seconds since the last reset, as this side counts them."""

    def close(self) -> None:
        """Remove everything this side made."""


class ModelVtep(Protocol):
    """What the engine calls on a model: :class:`pyvxlan.Vtep`'s control and data-path methods."""

    @property
    def config(self) -> VtepConfig: ...

    @property
    def is_up(self) -> bool: ...

    def fdb_dump(self, now: float | None = None) -> list[FdbEntry]: ...

    def neighbours(self, now: float | None = None) -> list[Neighbour]: ...

    def counters(self) -> VtepCounters: ...

    def handle_timer(self, now: float) -> None: ...

    def next_timer(self) -> float | None: ...

    def take_outputs(self) -> list[Any]: ...


ModelFactory: TypeAlias = Callable[[VtepConfig], ModelVtep]


def _rows(entries: list[FdbEntry]) -> tuple[Row, ...]:
    rows = [(e.mac, e.dst, e.port, e.vni, e.interface, e.state.value, e.extern_learn, e.router) for e in entries]
    return tuple(sorted(rows, key=_row_order))


class ModelOracle:
    """A model as one side: :class:`pyvxlan.Vtep` by default, or what ``factory`` makes.

    Its clock is virtual (``now`` moves only by :class:`Wait` steps and by ``tick``), so a run
    against another model is deterministic; against the kernel the engine ticks it with the
    kernel's elapsed time.
    """

    def __init__(self, factory: ModelFactory) -> None:
        self._factory = factory
        self._vtep: ModelVtep | None = None
        self._now = 0.0
        self._expired: list[tuple[Row, float]] = []
        self._sent: tuple[Sent, ...] = ()
        self._replies: tuple[str, ...] = ()
        self._misses: tuple[str, ...] = ()

    @property
    def vtep(self) -> ModelVtep:
        """The model's device of the current episode."""
        if self._vtep is None:
            raise RuntimeError("reset() first")
        return self._vtep

    def reset(self, device: Device) -> None:
        self._vtep = self._factory(device.config())
        self._now = 0.0
        self._expired = []

    def tick(self, now: float) -> None:
        """Move the clock to ``now`` (never backwards) and run the ageing timer, remembering what it
        removed and when each removed row's ageing time ran out."""
        vtep = self.vtep
        self._now = max(self._now, now)
        before = {(_rows([e])[0]): e.updated for e in vtep.fdb_dump()}
        vtep.handle_timer(self._now)
        after = set(_rows(vtep.fdb_dump()))
        ageing = float(vtep.config.ageing)
        for row, updated in before.items():
            if row not in after:
                self._expired.append((row, (updated or 0.0) + ageing))
        vtep.take_outputs()

    def apply(self, step: Step) -> str:
        vtep = self.vtep
        if isinstance(step, Wait):
            self.tick(self._now + step.seconds)
            return "ok"
        method, args, kw = step.call()
        self._sent = ()
        self._replies = ()
        self._misses = ()
        if isinstance(step, (Datagram, Frame)):
            if not vtep.is_up:
                # No socket is open for a device that is down, and a bridge forwards nothing to a
                # port that is down: a driver hands it nothing.
                return "ok"
            kw = {"now": self._now}
        outcome = "ok"
        try:
            getattr(vtep, method)(*args, **kw)
        except Exception as exc:  # every exception is an outcome to compare
            outcome = outcome_of(exc)
        finally:
            outputs = vtep.take_outputs()
            self._sent = tuple(
                sorted((o.dst, o.dst_port, o.ttl, o.payload.hex()) for o in outputs if isinstance(o, SendDatagram))
            )
            if isinstance(step, Frame):
                # What a frame from the bridge side gets back: proxy ARP and ND replies.
                self._replies = tuple(sorted(o.frame.hex() for o in outputs if isinstance(o, DeliverFrame)))
            self._misses = tuple(
                sorted(
                    [f"l2miss {o.mac}" for o in outputs if isinstance(o, L2Miss)]
                    + [f"l3miss {o.ip}" for o in outputs if isinstance(o, L3Miss)]
                )
            )
        # A driver runs the timer whenever next_timer() is due, and a step can make it due at once
        # (ageing shortened: Linux's changelink re-arms vxlan_cleanup to run now).
        due = vtep.next_timer()
        if due is not None and due <= self._now:
            self.tick(self._now)
        return outcome

    def snapshot(self, detail: bool) -> Snapshot:
        vtep = self.vtep
        cfg = vtep.config
        entries = vtep.fdb_dump()
        counters: tuple[tuple[str, int], ...] = ()
        updated: tuple[tuple[str, str, int], ...] = ()
        maybe: tuple[Row, ...] = ()
        if detail:
            c = vtep.counters()
            counters = tuple((name, getattr(c, name)) for name in COUNTERS)
            updated = tuple(
                sorted((e.mac, e.dst, int(self._now - e.updated)) for e in entries if e.updated is not None)
            )
            maybe = tuple(row for row, expiry in self._expired if self._now < expiry + FDB_AGE_INTERVAL)
        return Snapshot(
            up=vtep.is_up,
            remote=cfg.remote,
            group=cfg.group,
            learning=cfg.learning,
            ageing=int(cfg.ageing),
            rows=_rows(entries),
            neighbours=tuple(sorted((n.ip, n.mac) for n in vtep.neighbours())),
            counters=counters,
            updated=updated,
            sent=self._sent if detail else (),
            replies=self._replies if detail else (),
            misses=self._misses if detail else (),
            maybe=maybe,
        )

    def now(self) -> float:
        return self._now

    def close(self) -> None:
        self._vtep = None


BRIDGE = "pvh8br"
BRIDGE_MAC = "02:00:00:00:4b:01"
FENCE = "192.0.2.254"  # a neighbour of the bridge, added and deleted to fence ip monitor's output
TX_PORTS = frozenset({4789, 8472, 5555})  # the devices' ports and the one fdb entries name


def rig_commands(a: str, b: str) -> list[str]:
    """The shell commands that build the rig: namespace ``a`` holds the device under test and one
    end of a veth, namespace ``b`` the other end with the peers' addresses (no DAD: they are usable
    at once)."""
    commands = [f"ip netns add {a}", f"ip netns add {b}", f"ip -n {a} link set lo up", f"ip -n {b} link set lo up"]
    commands.append(f"ip -n {a} link add {UNDER} type veth peer name pvh8p address {PEER_MAC} netns {b}")
    commands += [f"ip -n {a} addr add {LOCAL[4]}/24 dev {UNDER}", f"ip -n {a} addr add {LOCAL[6]}/64 dev {UNDER} nodad"]
    commands += [f"ip -n {b} addr add {p}/24 dev pvh8p" for p in PEERS[4]]
    commands += [f"ip -n {b} addr add {p}/64 dev pvh8p nodad" for p in PEERS[6]]
    commands += [f"ip -n {a} link set {UNDER} up", f"ip -n {b} link set pvh8p up"]
    # Known peers: the device's datagrams leave at once, with no ARP or ND before them.
    commands += [
        f"ip -n {a} neigh replace {p} lladdr {PEER_MAC} dev {UNDER} nud permanent" for p in (*PEERS[4], *PEERS[6])
    ]
    # The guest behind a bridge (STP off: a port forwards at once), everything without IPv6
    # addresses so that nothing but the guest's frames reaches the vxlan port.
    c = guest_namespace(b)
    commands += [
        f"ip netns add {c}",
        # Its own MAC, or it would take the lowest port's (maybe the vxlan device's); no multicast
        # snooping (it would drop multicast frames it cannot parse, and send queries).
        f"ip -n {a} link add {BRIDGE} address {BRIDGE_MAC} type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
        f"ip -n {a} link set {BRIDGE} addrgenmode none",
        f"ip netns exec {a} sysctl -qw net.ipv6.conf.{BRIDGE}.disable_ipv6=1",
        f"ip -n {a} link add pvh8g type veth peer name pvh8gc netns {c}",
        f"ip -n {a} link set pvh8g addrgenmode none",
        f"ip -n {c} link set pvh8gc addrgenmode none",
        f"ip netns exec {c} sysctl -qw net.ipv6.conf.pvh8gc.disable_ipv6=1",
        f"ip -n {a} link set pvh8g master {BRIDGE}",
        f"ip -n {a} link set pvh8g up",
        f"ip -n {c} link set pvh8gc up",
        f"ip -n {a} link set {BRIDGE} up",
        # br_netfilter, where loaded, would hand bridged frames to iptables, which drops what it
        # cannot parse (a cut IPv4 header) before the vxlan port sees it.
        f"ip netns exec {a} sh -c 'test ! -d /proc/sys/net/bridge || sysctl -qw "
        "net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 "
        "net.bridge.bridge-nf-call-arptables=0'",
    ]
    return commands


def device_commands(device: Device, a: str) -> list[str]:
    """The commands that make ``device`` in namespace ``a``: created, without addresses of its own
    (so it sends nothing by itself: no DAD, no MLD), a port of the guest's bridge."""
    return [
        f"ip -n {a} {device.ip_link_add()}",
        f"ip -n {a} link set {DEV} addrgenmode none",
        f"ip -n {a} link set {DEV} master {BRIDGE}",
    ]


_ETH_P_ALL = 0x0003
_PACKET_OUTGOING = 4


def _outer(frame: bytes) -> Sent | None:
    """A captured underlay frame as (destination, port, TTL, UDP payload), if it is a datagram
    to one of the ports a device or an entry uses."""
    kind = frame[12:14]
    if kind == b"\x08\x00" and frame[23] == 17:
        udp = 14 + (frame[14] & 0x0F) * 4
        dst, ttl = socket.inet_ntop(socket.AF_INET, frame[30:34]), frame[22]
    elif kind == b"\x86\xdd" and frame[20] == 17:
        udp = 54
        dst, ttl = socket.inet_ntop(socket.AF_INET6, frame[38:54]), frame[21]
    else:
        return None
    dport, length = int.from_bytes(frame[udp + 2 : udp + 4], "big"), int.from_bytes(frame[udp + 4 : udp + 6], "big")
    if dport not in TX_PORTS:
        return None
    return (dst, dport, ttl, frame[udp + 8 : udp + length].hex())


def guest_namespace(b: str) -> str:
    """The guest's namespace: the peer's name with its last letter ``c`` (``PREFIXb``: ``PREFIXc``)."""
    return b[:-1] + "c"


def render(step: Step, device: Device, a: str, b: str) -> str:
    """The shell command that does ``step`` to ``device`` in namespace ``a`` (datagrams: from ``b``)."""
    if isinstance(step, FdbOp):
        return f"bridge -n {a} {step.shell(device)}"
    if isinstance(step, (NeighOp, LinkOp)):
        return f"ip -n {a} {step.shell(device)}"
    if isinstance(step, Datagram):
        return f"ip netns exec {b} {step.shell(device)}"
    if isinstance(step, Frame):
        return f"ip netns exec {guest_namespace(b)} {step.shell(device)}"
    return step.shell(device)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


class KernelOracle:
    """A real vxlan device in a scratch namespace ``PREFIX-a``, its underlay peer ``PREFIX-b``.

    Every command it runs is recorded (``setup`` for the rig, ``episode`` for the current
    device's creation and steps), so a reproduction prints exactly what ran.
    """

    def __init__(self, prefix: str | None = None, *, keep: bool = False) -> None:
        if os.geteuid() != 0:
            raise PrivilegeError("pyvxlan conform needs root (network namespaces and vxlan devices)")
        self.prefix = prefix or "pvc" + secrets.token_hex(3)
        self.a, self.b = f"{self.prefix}a", f"{self.prefix}b"
        self.keep = keep
        self.setup: list[str] = []
        self.episode: list[str] = []
        self._made: list[str] = []
        self._pid = os.getpid()
        self._socks: dict[str, socket.socket] = {}
        self._t0 = time.monotonic()
        self._device = Device()
        self._sent: tuple[Sent, ...] = ()
        self._replies: tuple[str, ...] = ()
        self._misses: tuple[str, ...] = ()
        self._monitor: subprocess.Popen[bytes] | None = None
        self._monitor_buf = b""
        self._fenced = False
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _sh(self, command: str, *, record: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        (self.setup if record is None else record).append(command)
        return _run(shlex.split(command))

    def _must(self, command: str) -> None:
        done = self._sh(command)
        if done.returncode != 0:
            raise ConfigError("netns", f"{command!r} failed: {done.stderr.strip()}")

    def _build(self) -> None:
        for command in rig_commands(self.a, self.b):
            self._must(command)
            if command.startswith("ip netns add "):
                self._made.append(command.split()[-1])
        # l2miss and l3miss are netlink notifications (RTM_GETNEIGH): iproute2 prints them as "miss".
        self._monitor = subprocess.Popen(["ip", "-n", self.a, "monitor", "neigh"], stdout=subprocess.PIPE)
        assert self._monitor.stdout is not None
        os.set_blocking(self._monitor.stdout.fileno(), False)

    def _miss_lines(self, *, fence: bool = False) -> list[str]:
        """The ``miss`` lines ``ip monitor neigh`` printed since the last call, as ``l2miss MAC`` or
        ``l3miss IP``. With ``fence``, a neighbour of the bridge is added or deleted first and the
        lines are read up to its own: netlink delivers notifications in order, so every miss the
        last frame caused is then in (a loaded machine may schedule ``ip monitor`` late)."""
        if self._monitor is None or self._monitor.stdout is None:
            return []
        lines: list[bytes] = []
        if fence:
            self._fenced = not self._fenced
            if self._fenced:
                _run(
                    ["ip", "-n", self.a, "neigh", "add", FENCE, "lladdr", BRIDGE_MAC, "dev", BRIDGE, "nud", "permanent"]
                )
            else:
                _run(["ip", "-n", self.a, "neigh", "del", FENCE, "dev", BRIDGE])
        deadline = time.monotonic() + 2.0
        while True:
            try:
                chunk = os.read(self._monitor.stdout.fileno(), 65536)
            except BlockingIOError:
                chunk = None
            if chunk:
                self._monitor_buf += chunk
                continue
            *done, self._monitor_buf = self._monitor_buf.split(b"\n")
            lines += done
            if not fence or any(FENCE.encode() in line for line in lines) or time.monotonic() > deadline:
                break
            select.select([self._monitor.stdout], [], [], 0.05)
        out = []
        for raw in lines:
            words = raw.decode(errors="replace").split()
            if not words or words[0] != "miss":
                continue
            if "lladdr" in words:
                out.append(f"l2miss {words[words.index('lladdr') + 1]}")
            else:
                out.append(f"l3miss {words[1]}")
        return out

    @property
    def kernel_release(self) -> str:
        """``uname -r``."""
        return os.uname().release

    @staticmethod
    def iproute2_version() -> str:
        """``ip -V``."""
        return _run(["ip", "-V"]).stdout.strip()

    def reset(self, device: Device) -> None:
        self._device = device
        self.episode = []
        _run(["ip", "-n", self.a, "link", "del", DEV])
        for command in device_commands(device, self.a):
            done = self._sh(command, record=self.episode)
            if done.returncode != 0:
                raise ConfigError("device", f"{command!r} failed: {done.stderr.strip()}")
        self._drain()
        self._t0 = time.monotonic()

    def render(self, step: Step) -> str:
        """The shell command that does ``step`` here."""
        return render(step, self._device, self.a, self.b)

    def apply(self, step: Step) -> str:
        command = self.render(step)
        if isinstance(step, Wait):
            self.episode.append(command)
            time.sleep(step.seconds)
            return "ok"
        self._sent = ()
        self._replies = ()
        self._misses = ()
        if isinstance(step, Datagram):
            self.episode.append(command)
            self._send(step)
            return "ok"
        if isinstance(step, Frame):
            self.episode.append(command)
            self._transmit(step)
            return "ok"
        done = self._sh(command, record=self.episode)
        return _kernel_outcome(done.returncode, done.stderr)

    def _packet_socket(self, key: str, netns: str, ifname: str) -> socket.socket:
        sock = self._socks.get(key)
        if sock is None:
            sock = socket_in(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
            sock.bind((ifname, 0))
            self._socks[key] = sock
        return sock

    def _drain(self) -> list[bytes]:
        """What reached the peer's veth since the last call (frames it sent itself left out)."""
        capture = self._packet_socket("capture", self.b, "pvh8p")
        got: list[bytes] = []
        while select.select([capture], [], [], 0)[0]:
            data, address = capture.recvfrom(65535)
            if address[2] != _PACKET_OUTGOING:
                got.append(data)
        return got

    def _guest_replies(self) -> list[bytes]:
        guest = self._packet_socket("guest", guest_namespace(self.b), "pvh8gc")
        got: list[bytes] = []
        while select.select([guest], [], [], 0)[0]:
            data, address = guest.recvfrom(65535)
            if address[2] != _PACKET_OUTGOING:
                got.append(data)
        return got

    def _transmit(self, step: Frame) -> None:
        self._drain()
        self._guest_replies()
        self._miss_lines()
        guest = self._packet_socket("guest", guest_namespace(self.b), "pvh8gc")
        guest.send(step.frame)
        # The bridge and the device run in the sender's softirq; what is not there after a quiet
        # spell of 20 ms was not sent.
        frames: list[bytes] = []
        deadline = time.monotonic() + 0.5
        capture = self._packet_socket("capture", self.b, "pvh8p")
        while time.monotonic() < deadline and select.select([capture], [], [], 0.02)[0]:
            frames += self._drain()
        frames += self._drain()
        self._sent = tuple(sorted(s for s in (_outer(f) for f in frames) if s is not None))
        self._replies = tuple(sorted(f.hex() for f in self._guest_replies()))
        self._misses = tuple(sorted(self._miss_lines(fence=True)))

    def _send(self, step: Datagram) -> None:
        sock = self._socks.get(step.src)
        if sock is None:
            family = socket.AF_INET6 if ":" in step.src else socket.AF_INET
            sock = socket_in(self.b, family, socket.SOCK_DGRAM)
            sock.bind((step.src, 0))
            self._socks[step.src] = sock
        sock.sendto(step.payload, (LOCAL[self._device.version], self._device.dst_port))
        # The veth hands the datagram to the receiving namespace's backlog; let it be processed.
        time.sleep(0.002)

    def snapshot(self, detail: bool) -> Snapshot:
        link = json.loads(_run(["ip", "-n", self.a, "-j", "-s", "-s", "-d", "link", "show", DEV]).stdout)[0]
        data = link["linkinfo"]["info_data"]
        fdb = json.loads(_run(["bridge", "-n", self.a, "-j", "-d", "-s", "fdb", "show", "dev", DEV]).stdout)
        neigh = json.loads(_run(["ip", "-n", self.a, "-j", "neigh", "show", "dev", DEV]).stdout)
        rows: list[Row] = []
        updated: list[tuple[str, str, int]] = []
        for r in fdb:
            flags = r.get("flags", [])
            if "self" not in flags:
                continue
            rows.append(
                (
                    r["mac"],
                    r["dst"],
                    r.get("port"),
                    r.get("vni"),
                    r.get("viaIf"),
                    r.get("state", ""),
                    "extern_learn" in flags,
                    "router" in flags,
                )
            )
            updated.append((r["mac"], r["dst"], int(r.get("updated", 0))))
        counters: tuple[tuple[str, int], ...] = ()
        if detail:
            rx = link["stats64"]["rx"]
            tx = link["stats64"]["tx"]
            counters = (
                ("rx_packets", rx["packets"]),
                ("rx_bytes", rx["bytes"]),
                ("rx_dropped", rx["dropped"]),
                ("rx_errors", rx["errors"]),
                ("rx_frame_errors", rx.get("frame_errors", 0)),
                ("rx_length_errors", rx.get("length_errors", 0)),
                ("tx_packets", tx["packets"]),
                ("tx_bytes", tx["bytes"]),
                ("tx_dropped", tx["dropped"]),
                ("tx_errors", tx["errors"]),
            )
        return Snapshot(
            up="UP" in link.get("flags", []),
            remote=data.get("remote") or data.get("remote6"),
            group=data.get("group") or data.get("group6"),
            learning=bool(data.get("learning")),
            ageing=int(data.get("ageing", 0)),
            rows=tuple(sorted(rows, key=_row_order)),
            neighbours=tuple(sorted((n["dst"], n.get("lladdr", "")) for n in neigh)),
            counters=counters,
            updated=tuple(sorted(updated)) if detail else (),
            sent=self._sent if detail else (),
            replies=self._replies if detail else (),
            misses=self._misses if detail else (),
        )

    def now(self) -> float:
        return time.monotonic() - self._t0

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.terminate()
            self._monitor.wait()
            self._monitor = None
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        if self.keep or os.getpid() != self._pid:
            # A forked child (a library's helper process) unwinding must not remove our namespaces.
            return
        for ns in self._made:
            _run(["ip", "netns", "del", ns])
        self._made.clear()
