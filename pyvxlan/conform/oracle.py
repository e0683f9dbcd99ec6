"""The two sides of a conformance run: a real vxlan device read back through iproute2's JSON, and
the model (:class:`pyvxlan.Vtep` or anything shaped like it).

The kernel side never uses pyvxlan's netlink code for what it compares: steps are ``bridge`` and
``ip`` commands, datagrams come from UDP sockets in a peer namespace, and the state is parsed from
``bridge -j -d -s fdb show``, ``ip -j -s -s -d link show`` and ``ip -j neigh show``. (Namespaces
and sockets in them are made with :mod:`pyvxlan.kernel.netlink`'s helpers: plumbing, not state.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from pyvxlan.config import VtepConfig
from pyvxlan.conform.steps import DEV, LOCAL, PEERS, UNDER, Datagram, Device, FdbOp, LinkOp, NeighOp, Step, Wait
from pyvxlan.entries import FdbEntry, Neighbour
from pyvxlan.errors import (
    ConfigError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    PrivilegeError,
)
from pyvxlan.events import VtepCounters

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
        if isinstance(step, Datagram):
            if not vtep.is_up:
                # No socket is open for a device that is down: a driver hands it nothing.
                return "ok"
            kw = {"now": self._now}
        try:
            getattr(vtep, method)(*args, **kw)
        except Exception as exc:
            return outcome_of(exc)
        finally:
            vtep.take_outputs()
        return "ok"

    def snapshot(self, detail: bool) -> Snapshot:
        vtep = self.vtep
        cfg = vtep.config
        entries = vtep.fdb_dump()
        counters: tuple[tuple[str, int], ...] = ()
        updated: tuple[tuple[str, str, int], ...] = ()
        maybe: tuple[Row, ...] = ()
        if detail:
            c = vtep.counters()
            counters = tuple((name, getattr(c, name)) for name in RX_COUNTERS)
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
            maybe=maybe,
        )

    def now(self) -> float:
        return self._now

    def close(self) -> None:
        self._vtep = None


_CLONE_NEWNET = 0x40000000


def socket_in(netns: str, family: int, kind: int) -> socket.socket:
    """A socket in namespace ``netns``, made by a short-lived thread that enters it (``setns``
    changes only the calling thread's namespace; a socket keeps the one it was made in). No fork:
    a forked helper would inherit the command's signal handlers and unwind its clean-up."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter() -> None:
        try:
            with open(f"/run/netns/{netns}", "rb") as handle:
                if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns({netns}): {os.strerror(code)}")
            made.append(socket.socket(family, kind))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=enter, name=f"setns-{netns}")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def rig_commands(a: str, b: str) -> list[str]:
    """The shell commands that build the rig: namespace ``a`` holds the device under test and one
    end of a veth, namespace ``b`` the other end with the peers' addresses (no DAD: they are usable
    at once)."""
    commands = [f"ip netns add {a}", f"ip netns add {b}", f"ip -n {a} link set lo up", f"ip -n {b} link set lo up"]
    commands.append(f"ip -n {a} link add {UNDER} type veth peer name pvh8p netns {b}")
    commands += [f"ip -n {a} addr add {LOCAL[4]}/24 dev {UNDER}", f"ip -n {a} addr add {LOCAL[6]}/64 dev {UNDER} nodad"]
    commands += [f"ip -n {b} addr add {p}/24 dev pvh8p" for p in PEERS[4]]
    commands += [f"ip -n {b} addr add {p}/64 dev pvh8p nodad" for p in PEERS[6]]
    commands += [f"ip -n {a} link set {UNDER} up", f"ip -n {b} link set pvh8p up"]
    return commands


def render(step: Step, device: Device, a: str, b: str) -> str:
    """The shell command that does ``step`` to ``device`` in namespace ``a`` (datagrams: from ``b``)."""
    if isinstance(step, FdbOp):
        return f"bridge -n {a} {step.shell(device)}"
    if isinstance(step, (NeighOp, LinkOp)):
        return f"ip -n {a} {step.shell(device)}"
    if isinstance(step, Datagram):
        return f"ip netns exec {b} {step.shell(device)}"
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
        done = self._sh(f"ip -n {self.a} {device.ip_link_add()}", record=self.episode)
        if done.returncode != 0:
            raise ConfigError("device", f"ip link add failed: {done.stderr.strip()}")
        # No addresses of its own, so the device sends nothing by itself (no DAD, no MLD).
        self._sh(f"ip -n {self.a} link set {DEV} addrgenmode none", record=self.episode)
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
        if isinstance(step, Datagram):
            self.episode.append(command)
            self._send(step)
            return "ok"
        done = self._sh(command, record=self.episode)
        return _kernel_outcome(done.returncode, done.stderr)

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
            counters = (
                ("rx_packets", rx["packets"]),
                ("rx_bytes", rx["bytes"]),
                ("rx_dropped", rx["dropped"]),
                ("rx_errors", rx["errors"]),
                ("rx_frame_errors", rx.get("frame_errors", 0)),
                ("rx_length_errors", rx.get("length_errors", 0)),
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
        )

    def now(self) -> float:
        return time.monotonic() - self._t0

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        if self.keep or os.getpid() != self._pid:
            # A forked child (a library's helper process) unwinding must not remove our namespaces.
            return
        for ns in self._made:
            _run(["ip", "netns", "del", ns])
        self._made.clear()
