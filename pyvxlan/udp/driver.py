"""``UdpVtep``: the sans-I/O core on real UDP sockets, a VTEP that Linux's vxlan devices talk to.

The core decides everything (what to send where, what to learn, what to drop); this driver only
carries its actions out on the host's network stack and feeds it what arrives:

* ``SendDatagram`` goes out of a UDP socket bound to the device's ``local`` address and the
  action's source port (one socket per source port in use, opened on first use), with the action's
  TTL (``IP_TTL``/``IP_MULTICAST_TTL``, ``IPV6_UNICAST_HOPS``/``IPV6_MULTICAST_HOPS``), TOS or
  traffic class, and a zero IPv6 checksum when the action says so (``UDP_NO_CHECK6_TX``). The
  kernel fills in the IPv4 ID, the IP checksum and the UDP checksum; DF stays clear and the IPv6
  flow label 0, as the vxlan device sends by default (``df unset``, ``flowlabel 0``).
* ``JoinGroup``/``LeaveGroup`` join and leave on the device's ``dev`` (a socket bound to the group
  address and port, so that it sees that group's datagrams only).
* Datagrams read on the port go to ``Vtep.receive_many`` with their source, source port and outer
  TOS (``IP_RECVTOS``/``IPV6_RECVTCLASS``, for ECN); the frames it delivers go to the local
  side: a TAP device, in-process guests (the simulator's guest stack on a learning bridge, in real
  time), or :meth:`UdpVtep.receive_frame`.
* The core's timer (``next_timer``) is armed as a trio deadline; ageing runs ``handle_timer``.

With a TAP device (and no in-process guests) the data path runs on a thread of its own: a plain
``epoll`` loop over the TAP and the sockets, each read until it would block (up to ``batch`` at a
time) into the core, under a lock that the trio side takes too (the control calls, the ageing
timer, closing). A trio wake-up costs more than the whole relay of a frame (trio's wake-up path
alone adds tens of µs to a ping round trip), so the frames never pass through trio. A frame
written to the TAP is often answered inside that write: after a lone datagram the thread reads
the TAP at once, so a round trip costs one wake-up. That wake-up is the price of sleeping: on a
virtual machine whose idle CPU halts, it costs about 100 µs, most of a ping's round trip. With
``busy_poll`` (µs, as Linux's ``SO_BUSY_POLL``) the thread polls without sleeping for that long
after the last frame or datagram: while traffic keeps coming within it, nothing waits on a
wake-up, at the price of one busy core. What the core says
besides datagrams and frames (notifications, joins) is handed to trio with
``TrioToken.run_sync_soon``, in order. Closing or cancelling wakes the thread through an eventfd
and joins it before any socket is closed.

The in-process guests run on trio (the simulator's scheduler), and so does their data path: the
sockets are read by trio tasks, in the same bursts. TAP frames go through ``Vtep.transmit_many``
and datagrams through ``Vtep.receive_many``, in chunks of ``CHUNK``.
"""

from __future__ import annotations

import array
import errno
import fcntl
import ipaddress
import math
import os
import secrets
import select
import socket
import struct
import termios
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import trio

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.events import Action, DeliverFrame, JoinGroup, Output, SendBatch, SendDatagram
from pyvxlan.core.vtep import Vtep
from pyvxlan.errors import ConfigError, LabKeyError
from pyvxlan.sim.bridge import Bridge
from pyvxlan.sim.guest import SimGuest
from pyvxlan.sim.ipid import IpIdents
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.memory import MemoryVtep
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.udp.syscalls import (
    UDP_NO_CHECK6_RX,
    UDP_NO_CHECK6_TX,
    DriverError,
    in_netns,
    interface_index,
    open_tap,
    open_udp_socket,
)
from pyvxlan.wire.addr import normalize_mac

__all__ = ["DEFAULT_BATCH", "DriverStats", "GuestSpec", "UdpVtep", "open_vtep"]

DEFAULT_BATCH: Final = 256
# Frames or datagrams taken through the core and out again at a time, within a batch: 256 frames
# of 1,400 bytes in flight (each read, its payload, its datagram) outgrow the CPU's cache, and the
# relay of large frames then ran at half its speed.
CHUNK: Final = 32
# Source-port sockets kept open at once; the least recently opened is closed beyond it (a flow
# that comes back opens its socket again).
MAX_SOURCE_SOCKETS: Final = 1024
FRAME_QUEUE: Final = 1024  # frames kept for receive_frame() when nothing else is on the local side
_CMSG_SPACE: Final = socket.CMSG_SPACE(4)
_FIONREAD: Final = termios.FIONREAD  # on a UDP socket: the next datagram's size, 0 when none
_TAP_PORT: Final = "tap"
_T = TypeVar("_T")
_P = ParamSpec("_P")
_Port = Callable[[bytes], None]
_VXLAN_PORT: Final = "vxlan"


@dataclass(frozen=True, slots=True)
class GuestSpec:
    """An in-process guest: ``mac`` and ``ip`` with its prefix (``203.0.113.2/24``)."""

    mac: str
    ip: str
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", normalize_mac(self.mac, "guest"))
        try:
            iface = ipaddress.ip_interface(self.ip)
        except ValueError:
            raise ConfigError("guest", f"{self.ip!r} is not an address with a prefix (203.0.113.2/24)") from None
        if "/" not in self.ip:
            raise ConfigError("guest", f"{self.ip!r} has no prefix length (203.0.113.2/24)")
        object.__setattr__(self, "ip", str(iface))

    @classmethod
    def parse(cls, text: str) -> GuestSpec:
        """``MAC,IP/PREFIX`` (the command's ``--guest``)."""
        mac, sep, ip = text.partition(",")
        if not sep:
            raise ConfigError("guest", f"{text!r} is not MAC,IP/PREFIX")
        return cls(mac.strip(), ip.strip())


@dataclass(frozen=True, slots=True)
class DriverStats:
    """What the driver itself counted (the core's counters are :meth:`UdpVtep.counters`)."""

    rx_datagrams: int = 0  # read from the sockets and handed to the core
    rx_own: int = 0  # our own multicast datagrams, looped back by the host: not handed to the core
    tx_datagrams: int = 0  # sent
    tx_errors: int = 0  # refused by the host (a full buffer, no route): the datagram is lost
    source_port_fallbacks: int = 0  # sent from the device's port because the flow's was taken
    tap_rx: int = 0  # frames read from the TAP device
    tap_tx: int = 0  # frames written to it
    tap_tx_errors: int = 0  # frames it refused (its queue full): lost
    local_dropped: int = 0  # frames for receive_frame() dropped because nobody read them


class _TxSocket:
    __slots__ = ("opts", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # (destination, TTL, TOS, zero checksum) the options were last set for: a new destination
        # may be a group, whose TTL is IP_MULTICAST_TTL.
        self.opts: tuple[str, int, int, bool] | None = None


def _under_lock(
    method: Callable[Concatenate[MemoryVtep, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[UdpVtep, _P], Coroutine[Any, Any, _T]]:
    """A control call of :class:`MemoryVtep` that holds the core's lock, so that the data thread
    never runs the core at the same time."""

    async def locked(self: UdpVtep, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        # Held across the call's checkpoint too: the lock is reentrant and owned by the trio
        # thread, so other trio tasks (and run_sync_soon callbacks) take it again freely while the
        # data thread waits out one pass of trio's scheduler at most.
        with self.core_lock:
            return await method(self, *args, **kwargs)

    locked.__name__ = locked.__qualname__ = method.__name__
    locked.__doc__ = method.__doc__
    return locked


class UdpVtep(MemoryVtep):
    """A VTEP on the host's UDP sockets; a :class:`~pyvxlan.VtepControl`. Made by :func:`open_vtep`."""

    def __init__(
        self,
        config: VtepConfig,
        *,
        netns: str | None = None,
        batch: int = DEFAULT_BATCH,
        busy_poll: int = 0,
    ) -> None:
        # trio's clock read directly: the data thread has no trio context, and both sides must
        # give the core the same time.
        now = trio.lowlevel.current_clock().current_time
        super().__init__(Vtep(config, now=now()), clock=now, on_actions=self._carry_out)
        self._now = now
        self.core_lock = threading.RLock()
        # The data thread's state (a TAP and no guests): its epoll, what each descriptor is (None:
        # the TAP), the eventfd that wakes it to stop, and how it ended.
        self._epoll: select.epoll | None = None
        self._readers: dict[int, socket.socket | None] = {}
        self._wake: int | None = None
        self._stopping = False
        self._token: trio.lowlevel.TrioToken | None = None
        self._data_flush: Callable[[], None] = self._flush
        self._netns = netns
        self._batch = batch
        self._busy_poll = busy_poll
        self._family = socket.AF_INET6 if config.local is not None and ":" in config.local else socket.AF_INET
        if config.local is None and any(a is not None and ":" in a for a in (config.group, config.remote)):
            self._family = socket.AF_INET6
        self._local = config.local
        self._nursery: trio.Nursery | None = None
        self._main: socket.socket | None = None
        self._groups: dict[str, socket.socket | None] = {}  # group -> its socket (None: the main one)
        self._tx: dict[int, _TxSocket] = {}  # source port -> socket
        self._own_ports: set[int] = set()
        self._tap: int | None = None
        self._tap_poll: tuple[int, select.poll] | None = None  # (the TAP, a poll object on it alone)
        self._waiting = array.array("i", [0])  # FIONREAD's answer
        self._tap_name: str | None = None
        self._bridge: Bridge | None = None
        self._sched: Scheduler | None = None
        self._guests: dict[str, SimGuest] = {}
        self._frames: deque[bytes] = deque()
        self._frames_ready = trio.Event()
        self._timer_scope: trio.CancelScope | None = None
        self._closed = False
        self.guest_drops: Counter[str] = Counter()  # (reason) frames the guests or bridge gave up on
        self._rx = self._rx_own = self._tx_n = self._tx_err = self._fallbacks = 0
        self._tap_rx = self._tap_tx = self._tap_err = self._local_dropped = 0

    # The control calls, each under the core's lock.
    fdb_add = _under_lock(MemoryVtep.fdb_add)
    fdb_append = _under_lock(MemoryVtep.fdb_append)
    fdb_append_many = _under_lock(MemoryVtep.fdb_append_many)
    fdb_replace = _under_lock(MemoryVtep.fdb_replace)
    fdb_del = _under_lock(MemoryVtep.fdb_del)
    fdb = _under_lock(MemoryVtep.fdb)
    neigh_add = _under_lock(MemoryVtep.neigh_add)
    neigh_del = _under_lock(MemoryVtep.neigh_del)
    neighbours = _under_lock(MemoryVtep.neighbours)
    set_learning = _under_lock(MemoryVtep.set_learning)
    set_ageing = _under_lock(MemoryVtep.set_ageing)
    set_remote = _under_lock(MemoryVtep.set_remote)
    up = _under_lock(MemoryVtep.up)
    down = _under_lock(MemoryVtep.down)
    is_up = _under_lock(MemoryVtep.is_up)
    counters = _under_lock(MemoryVtep.counters)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("up" if self.vtep.is_up else "down")
        return f"<UdpVtep {self.config.name} vni={self.config.vni} port={self.config.dst_port} {state}>"

    # --- public extras ----------------------------------------------------------------------------

    @property
    def tap(self) -> str | None:
        """The TAP device's name, when the VTEP has one."""
        return self._tap_name

    @property
    def guests(self) -> list[SimGuest]:
        """The in-process guests, in the order given."""
        return list(self._guests.values())

    def guest(self, name: str) -> SimGuest:
        """The in-process guest called ``name`` (``guest1``, ... unless named);
        :class:`~pyvxlan.errors.LabKeyError` (a ``KeyError``) if none, naming the guests there are."""
        guest = self._guests.get(name)
        if guest is None:
            raise LabKeyError("guest", name, list(self._guests))
        return guest

    @property
    def source_ports(self) -> list[int]:
        """The source ports with a socket open now (the flows sent recently)."""
        return sorted(self._tx)

    def stats(self) -> DriverStats:
        """The driver's own counters."""
        with self.core_lock:  # one burst's figures, not half of one
            return self._stats()

    def _stats(self) -> DriverStats:
        return DriverStats(
            rx_datagrams=self._rx,
            rx_own=self._rx_own,
            tx_datagrams=self._tx_n,
            tx_errors=self._tx_err,
            source_port_fallbacks=self._fallbacks,
            tap_rx=self._tap_rx,
            tap_tx=self._tap_tx,
            tap_tx_errors=self._tap_err,
            local_dropped=self._local_dropped,
        )

    async def send_frame(self, frame: bytes) -> None:
        """Hand an Ethernet frame to the VTEP as if it came from the local side."""
        await trio.lowlevel.checkpoint()
        with self.core_lock:
            self._local_transmit(bytes(frame))
            self._flush()

    async def receive_frame(self) -> bytes:
        """The next frame the core delivered to the local side, when there is no TAP device and
        no guest (the latest ``FRAME_QUEUE`` are kept)."""
        while not self._frames:
            self._frames_ready = trio.Event()
            await self._frames_ready.wait()
        await trio.lowlevel.checkpoint()
        return self._frames.popleft()

    # --- opening and closing ----------------------------------------------------------------------

    def _open(self, tap: str | None, guests: Sequence[GuestSpec]) -> None:
        cfg = self.config
        if cfg.dev is not None:
            self._in_ns(lambda: interface_index(cfg.dev or ""))
        self._main = self._in_ns(
            lambda: open_udp_socket(self._family, self._local, cfg.dst_port, what=cfg.name, reuse=False)
        )
        self._prepare_rx(self._main)
        self._set_multicast_if(self._main)
        self._own_ports.add(cfg.dst_port)
        self._tx[cfg.dst_port] = _TxSocket(self._main)
        if tap is not None:
            self._tap, self._tap_name = self._in_ns(lambda: open_tap(tap))
        if guests:
            self._make_guests(guests)

    def _start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        assert self._main is not None
        if self._tap is not None and self._bridge is None:
            # Made here, not in the thread's task: up() may join a group before that task runs.
            self._epoll = select.epoll()
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._token = trio.lowlevel.current_trio_token()
            self._data_flush = self._flush_from_thread
            self._epoll.register(self._wake, select.EPOLLIN)
            self._watch(self._main)
            self._epoll.register(self._tap, select.EPOLLIN)
            self._readers[self._tap] = None
            nursery.start_soon(self._data_thread)
        else:
            nursery.start_soon(self._rx_loop, self._main)
            if self._tap is not None:
                nursery.start_soon(self._tap_loop, self._tap)
        if self._sched is not None:
            nursery.start_soon(self._sched.run)
        nursery.start_soon(self._timer_loop)

    def _in_ns(self, fn: Callable[[], _T]) -> _T:
        return in_netns(self._netns, fn)

    def _make_guests(self, guests: Sequence[GuestSpec]) -> None:
        sched = self._sched = Scheduler()
        ledger = Ledger()
        bridge = self._bridge = Bridge("br0", drop=lambda reason, _frame: self._guest_drop(reason), ledger=ledger)
        bridge.attach(_VXLAN_PORT, self._local_transmit)
        if self._tap is not None:
            bridge.attach(_TAP_PORT, self._tap_write)
        idents = IpIdents(secrets.randbits(63))
        for i, spec in enumerate(guests):
            name = spec.name or f"guest{i + 1}"
            if name in self._guests:
                raise ConfigError("guest", f"two guests are called {name!r}")
            g = SimGuest(
                name,
                spec.mac,
                spec.ip,
                source=i + 1,
                sched=sched,
                ledger=ledger,
                drop=lambda _name, reason: self._guest_drop(reason),
                idents=idents,
            )
            bridge.attach(name, g.deliver)
            g.attach(self._guest_port(name))
            self._guests[name] = g

    def _guest_drop(self, reason: str) -> None:
        self.guest_drops[reason] += 1

    def _guest_port(self, name: str) -> _Port:
        def port(frame: bytes) -> None:
            assert self._bridge is not None and self._sched is not None
            self._bridge.receive(name, frame, self._sched.now)
            self._flush()

        return port

    def _close(self) -> None:
        """Down (leaving the groups, as ``ip link set down``), then every socket and the TAP."""
        if self._closed:
            return
        self._closed = True
        try:
            with self.core_lock:
                self.vtep.down(self._now())
                self._flush()
        finally:
            if self._epoll is not None:
                self._epoll.close()
            if self._wake is not None:
                os.close(self._wake)
                self._wake = None
            for sock in {*(s for s in self._groups.values() if s is not None), *(t.sock for t in self._tx.values())}:
                sock.close()
            self._groups.clear()
            self._tx.clear()
            if self._main is not None:
                self._main.close()
            if self._tap is not None:
                os.close(self._tap)
                self._tap = None

    # --- the core's outputs -----------------------------------------------------------------------

    def _flush(self) -> None:
        outputs = self.vtep.take_outputs()
        if not outputs:
            return
        # The data path's actions first, in this one pass (the fewer lines a datagram runs, the
        # less a sparse flow waits on a cold cache); the rest (notifications, joins) takes the
        # general route through dispatch.
        send = self._send
        deliver = self._deliver
        rest = None
        for out in outputs:
            kind = type(out)
            if kind is SendDatagram:
                send(out)  # type: ignore[arg-type]
            elif kind is DeliverFrame:
                deliver(out.frame)  # type: ignore[union-attr]
            elif rest is None:
                rest = [out]
            else:
                rest.append(out)
        if rest is not None:
            self._carry_out_rest(rest)

    def _carry_out_rest(self, rest: list[Output]) -> None:
        actions = self.dispatch(rest)
        if actions:
            self._carry_out(actions)
        else:
            self._rearm()  # a learned entry may be the first that can age

    def _flush_from_thread(self) -> None:
        """``_flush`` on the data thread: datagrams and frames out here, the rest (notifications
        to trio's channels, joins, the timer's deadline) handed to the trio thread, in order.
        The thread runs only with a TAP device and no guests: frames are written to it here."""
        outputs = self.vtep.take_outputs()
        if not outputs:
            return
        send = self._send
        tap = self._tap
        assert tap is not None
        write = os.write
        written = lost = 0
        rest = None
        for out in outputs:
            kind = type(out)
            if kind is DeliverFrame:
                try:
                    write(tap, out.frame)  # type: ignore[union-attr]
                except OSError:
                    lost += 1  # as in _tap_write
                    continue
                written += 1
            elif kind is SendDatagram:
                send(out)  # type: ignore[arg-type]
            elif rest is None:
                rest = [out]
            else:
                rest.append(out)
        self._tap_tx += written
        self._tap_err += lost
        if rest is not None:
            assert self._token is not None
            try:
                self._token.run_sync_soon(self._rest_from_thread, rest)
            except trio.RunFinishedError:
                pass  # closing: nobody is listening any more

    def _rest_from_thread(self, rest: list[Output]) -> None:
        if self._closed:
            return
        with self.core_lock:
            self._carry_out_rest(rest)

    def _carry_out(self, actions: Iterable[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is SendDatagram:
                self._send(action)  # type: ignore[arg-type]
            elif kind is DeliverFrame:
                self._deliver(action.frame)  # type: ignore[union-attr]
            elif kind is JoinGroup:
                self._join(action.group)  # type: ignore[union-attr]
            else:
                self._leave(action.group)  # type: ignore[union-attr]
        self._rearm()

    def _rearm(self) -> None:
        scope = self._timer_scope
        if scope is not None:
            due = self.vtep.next_timer()
            if due is not None and due < scope.deadline:
                scope.deadline = due

    def _send(self, d: SendDatagram) -> None:
        tx = self._tx.get(d.src_port)
        if tx is None:
            tx = self._source_socket(d.src_port)
        opts = (d.dst, d.ttl, d.tos, d.zero_checksum)
        if tx.opts != opts:
            self._set_options(tx, opts)
        try:
            tx.sock.sendto(d.payload, (d.dst, d.dst_port))
        except OSError:
            # A full send buffer (the kernel's qdisc would drop too), no route, an ICMP error
            # reported on this socket: the datagram is lost, as on a kernel VTEP.
            self._tx_err += 1
            return
        self._tx_n += 1

    def _send_batch(self, batch: SendBatch) -> None:
        """A burst of datagrams with one route: a socket's options are compared when the burst
        moves to another socket, not for every datagram."""
        addr = (batch.dst, batch.dst_port)
        opts = (batch.dst, batch.ttl, batch.tos, batch.zero_checksum)
        sockets = self._tx
        last: _TxSocket | None = None
        last_port = -1
        sendto = None
        datagrams = batch.datagrams
        errors = 0
        for sport, payload in datagrams:
            if sport != last_port:  # a burst is mostly one flow: one source port
                tx = sockets.get(sport)
                if tx is None:
                    tx = self._source_socket(sport)
                if tx is not last:
                    if tx.opts != opts:
                        self._set_options(tx, opts)
                    last, sendto = tx, tx.sock.sendto
                last_port = sport
            try:
                sendto(payload, addr)  # type: ignore[misc]
            except OSError:
                errors += 1  # lost, as in _send
        self._tx_n += len(datagrams) - errors
        self._tx_err += errors

    def _set_options(self, tx: _TxSocket, opts: tuple[str, int, int, bool]) -> None:
        dst, ttl, tos, zero = opts
        multicast = ipaddress.ip_address(dst).is_multicast
        sock = tx.sock
        if self._family == socket.AF_INET6:
            name = socket.IPV6_MULTICAST_HOPS if multicast else socket.IPV6_UNICAST_HOPS
            sock.setsockopt(socket.IPPROTO_IPV6, name, ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
            sock.setsockopt(socket.IPPROTO_UDP, UDP_NO_CHECK6_TX, int(zero))
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL if multicast else socket.IP_TTL, ttl)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
        tx.opts = opts

    def _source_socket(self, port: int) -> _TxSocket:
        """The socket for source port ``port``, opened now; the device's own socket when another
        program holds the port (counted in ``source_port_fallbacks``)."""
        while len(self._tx) >= MAX_SOURCE_SOCKETS:
            oldest = next(p for p in self._tx if p != self.config.dst_port)
            gone = self._tx.pop(oldest)
            if gone.sock is not self._main:  # a port that fell back to the device's socket
                gone.sock.close()
            self._own_ports.discard(oldest)
        try:
            sock = self._in_ns(lambda: open_udp_socket(self._family, self._local, port, what="source port", reuse=True))
        except OSError:
            self._fallbacks += 1
            main = self._tx[self.config.dst_port]
            self._tx[port] = main
            return main
        # Nothing is sent to a source port: a small buffer, never read.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 0)
        self._set_multicast_if(sock)
        tx = self._tx[port] = _TxSocket(sock)
        self._own_ports.add(port)
        return tx

    def _set_multicast_if(self, sock: socket.socket) -> None:
        if self._local is None:
            # Without a local address our own looped-back multicast cannot be told from a peer's
            # (the core would learn our guests behind our own address): the host keeps it.
            if self._family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        dev = self.config.dev
        if dev is None:
            return
        index = self._in_ns(lambda: interface_index(dev))
        if self._family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        else:
            local = socket.inet_aton(self._local or "0.0.0.0")
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, struct.pack("4s4si", bytes(4), local, index))

    def _membership(self, group: str) -> bytes:
        dev = self.config.dev
        index = self._in_ns(lambda: interface_index(dev)) if dev is not None else 0
        if self._family == socket.AF_INET6:
            return struct.pack("16sI", socket.inet_pton(socket.AF_INET6, group), index)
        local = socket.inet_aton(self._local or "0.0.0.0") if index == 0 else bytes(4)
        return struct.pack("4s4si", socket.inet_aton(group), local, index)

    def _join(self, group: str) -> None:
        if group in self._groups:
            return
        assert self._main is not None and self._nursery is not None
        if self._local is None:
            # The device's socket is bound to any address: it receives the group's datagrams.
            sock, own = self._main, None
        else:
            sock = self._in_ns(
                lambda: open_udp_socket(self._family, group, self.config.dst_port, what=f"group {group}", reuse=True)
            )
            own = sock
        try:
            if self._family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, self._membership(group))
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, self._membership(group))
        except OSError as exc:
            if own is not None:
                own.close()
            # The kernel's refusal (ENODEV: no interface for the group), not a bad setting.
            raise DriverError(exc.errno or 0, "group", f"cannot join {group}: {exc.strerror}") from None
        self._groups[group] = own
        if own is not None:
            self._prepare_rx(own)
            if self._epoll is not None:
                self._watch(own)
            else:
                self._nursery.start_soon(self._rx_loop, own)

    def _leave(self, group: str) -> None:
        if group not in self._groups:
            return
        own = self._groups.pop(group)
        sock = own if own is not None else self._main
        assert sock is not None
        try:
            if self._family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP, self._membership(group))
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, self._membership(group))
        except OSError:
            pass  # the interface went away, and the membership with it
        if own is not None:
            if self._epoll is not None:
                self._unwatch(own.fileno())
            else:
                trio.lowlevel.notify_closing(own)
            own.close()

    def _deliver(self, frame: bytes) -> None:
        if self._bridge is not None:
            assert self._sched is not None
            self._bridge.receive(_VXLAN_PORT, frame, self._sched.now)
        elif self._tap is not None:
            self._tap_write(frame)
        else:
            if len(self._frames) >= FRAME_QUEUE:
                self._frames.popleft()
                self._local_dropped += 1
            self._frames.append(frame)
            self._frames_ready.set()

    def _deliver_frames(self, frames: list[bytes]) -> None:
        """``_deliver`` of each of ``frames``; to the TAP device in one loop when it is the local side."""
        tap = self._tap
        if tap is None or self._bridge is not None:
            for frame in frames:
                self._deliver(frame)
            return
        write = os.write
        lost = 0
        for frame in frames:
            try:
                write(tap, frame)
            except OSError:
                lost += 1  # as in _tap_write
        self._tap_tx += len(frames) - lost
        self._tap_err += lost

    def _tap_write(self, frame: bytes) -> None:
        assert self._tap is not None
        try:
            os.write(self._tap, frame)
        except OSError:
            self._tap_err += 1  # the TAP's queue is full, or nobody has it up: lost, as on a NIC
            return
        self._tap_tx += 1

    def _local_transmit(self, frame: bytes) -> None:
        self.vtep.transmit(frame, self._now())

    # --- tasks ------------------------------------------------------------------------------------

    def _prepare_rx(self, sock: socket.socket) -> None:
        if self._family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
            if self.config.udp6_zero_csum_rx:
                sock.setsockopt(socket.IPPROTO_UDP, UDP_NO_CHECK6_RX, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)

    async def _rx_loop(self, sock: socket.socket) -> None:
        try:
            while True:
                await trio.lowlevel.wait_readable(sock)
                written = self._tap_tx
                if not self._rx_burst(sock):
                    return
                if self._tap_tx != written and self._tap is not None:
                    # A frame written to the TAP is often answered before write() returns (the
                    # bridge, veth and the guest's stack run in that call): read the answer now
                    # rather than after one more trip through trio's loop, which costs more than
                    # the whole relay of a frame.
                    self._tap_burst(self._tap)
        except (trio.ClosedResourceError, OSError):
            return  # the socket was closed: a group left, or the VTEP closing

    def _rx_burst(self, sock: socket.socket, chase: int | None = None) -> bool:
        """Read ``sock`` until it would block (at most ``batch`` datagrams) into the core, and
        carry out what it decided; False when the socket is closed. The first datagram goes
        through alone, then chunks of ``CHUNK``, each read first and then taken through the core
        in one ``Vtep.receive_many`` call (its code stays in the cache from one datagram to the
        next, as it does not across a system call). With ``chase`` (the TAP), a lone datagram (the
        socket empty after it) whose frame went to the TAP has the TAP read right after (the answer
        is often there already, made inside ``write()``): a ping's round trip costs one wake-up. A
        burst does not (the answers to bulk traffic, if any, wake the thread as they come).

        Whether another datagram waits after the first is asked with ``FIONREAD`` (the next
        datagram's size; 0 when none): for a lone datagram, the usual request, that is a cheap
        system call in place of a failed ``recvmsg`` and its exception before the chase. A
        zero-length datagram looks like none: it is read on the next wake-up, which level-triggered
        polling brings at once."""
        receive_many = self.vtep.receive_many
        deliver = self._deliver_frames
        recvmsg = sock.recvmsg
        local = self._local
        own = self._own_ports
        flush = self._data_flush
        ioctl = fcntl.ioctl
        waiting = self._waiting
        fileno = sock.fileno()
        left = self._batch
        size = 1
        received = 0
        closed = False
        chasing = False
        try:
            while left > 0:
                items: list[tuple[bytes, str, int, int, str | None]] = []
                read = 0
                for _ in range(min(left, size)):
                    try:
                        data, ancillary, _flags, addr = recvmsg(65535, _CMSG_SPACE)
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        if exc.errno == errno.EBADF:
                            closed = True
                            break
                        continue  # an ICMP error queued on the socket: nothing to read
                    read += 1
                    src: str = addr[0]
                    if src == local and addr[1] in own:
                        self._rx_own += 1  # our own multicast, looped back by the host
                        continue
                    tos = ancillary[0][2][0] if ancillary else 0
                    if "%" in src:
                        src, _, interface = src.partition("%")
                        items.append((data, src, addr[1], tos, interface))
                    else:
                        items.append((data, src, addr[1], tos, None))
                if read and size > 1:
                    chasing = False  # more came: a burst, not a lone request
                if items:
                    received += len(items)
                    written = self._tap_tx
                    frames = receive_many(items, self._now())
                    if frames:
                        deliver(frames)
                    flush()
                    if chase is not None and size == 1 and self._tap_tx != written:
                        chasing = True
                if closed:
                    return False
                if read < size:
                    break  # the socket would block
                if size == 1:
                    try:
                        ioctl(fileno, _FIONREAD, waiting, True)
                    except OSError:
                        break  # closed under us: the next read says so
                    if not waiting[0]:
                        break  # a lone datagram
                left -= size
                size = CHUNK
        finally:
            self._rx += received
        if chasing:
            assert chase is not None
            self._tap_burst(chase)
        return True

    async def _tap_loop(self, fd: int) -> None:
        while True:
            await trio.lowlevel.wait_readable(fd)
            sent = self._tx_n
            if not self._tap_burst(fd):
                return
            main = self._main
            if self._tx_n != sent and main is not None:
                # The same for the other direction: a datagram sent to a peer on this host may be
                # answered already (a TCP ACK from a kernel VTEP's guest is).
                try:
                    self._rx_burst(main)
                except OSError:
                    pass  # closed: the rx task sees it too and ends

    def _tap_burst(self, fd: int) -> bool:
        """Read the TAP device until it would block (at most ``batch`` frames) into the core, and
        carry out what it decided; False when the device is gone. The first frame goes through
        alone, then chunks of ``CHUNK``: a lone frame (a ping) leaves before anything else is read,
        and a burst pays one more core call. Whether another frame waits after the first is asked
        of a ``poll`` object on the TAP alone (a TAP has no ``FIONREAD``): a cheap system call in
        place of a failed ``read`` and its exception."""
        read = os.read
        bridge = self._bridge
        transmit_many = self.vtep.transmit_many
        send_batch = self._send_batch
        flush = self._data_flush
        now = self._now()
        left = self._batch
        size = 1
        while left > 0:
            frames: list[bytes] = []
            for _ in range(min(left, size)):
                try:
                    frames.append(read(fd, 65536))
                except BlockingIOError:
                    break
                except OSError:
                    flush()
                    return False  # the TAP device was closed or removed under us: no more frames
            if not frames:
                break  # the TAP would block: no core call for nothing (a cold one costs µs)
            self._tap_rx += len(frames)
            if bridge is not None:
                for frame in frames:
                    bridge.receive(_TAP_PORT, frame, now)
            else:
                # A chunk goes through the core in one call and out in one loop per route.
                for sends in transmit_many(frames, now):
                    send_batch(sends)
            flush()
            if len(frames) < size:
                break  # the TAP would block
            if size == 1 and not self._tap_waiting(fd):
                break  # a lone frame
            left -= size
            size = CHUNK
        return True

    def _tap_waiting(self, fd: int) -> bool:
        """Whether TAP ``fd`` has a frame to read, without reading it."""
        poller = self._tap_poll
        if poller is None or poller[0] != fd:
            ready = select.poll()
            ready.register(fd, select.POLLIN)
            poller = self._tap_poll = (fd, ready)
        return bool(poller[1].poll(0))

    async def _timer_loop(self) -> None:
        vtep = self.vtep
        while True:
            now = self._now()
            with self.core_lock:
                due = vtep.next_timer()
            # At least once a second: a control call (set_ageing) can bring the next expiry closer
            # without any action that would re-arm the timer.
            deadline = min(due if due is not None else math.inf, now + 1.0)
            with trio.CancelScope(deadline=deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            with self.core_lock:
                vtep.handle_timer(self._now())
                self._flush()

    # --- the data thread (a TAP and no guests) ----------------------------------------------------

    def _watch(self, sock: socket.socket) -> None:
        assert self._epoll is not None
        self._epoll.register(sock.fileno(), select.EPOLLIN)
        self._readers[sock.fileno()] = sock

    def _unwatch(self, fd: int) -> None:
        assert self._epoll is not None
        if self._readers.pop(fd, False) is not False:
            self._epoll.unregister(fd)

    async def _data_thread(self) -> None:
        """Run the data path on its own thread until cancelled; what it raises is raised here."""
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        failed: list[BaseException] = []

        def run() -> None:
            try:
                self._data_loop()
            except BaseException as exc:  # handed to the trio task below
                failed.append(exc)
            finally:
                try:
                    token.run_sync_soon(done.set)
                except trio.RunFinishedError:
                    pass

        thread = threading.Thread(target=run, name=f"pyvxlan-udp-{self.config.name}", daemon=True)
        thread.start()
        try:
            await done.wait()
        finally:
            self._stop_data_thread(thread)
        if failed:
            raise failed[0]

    def _stop_data_thread(self, thread: threading.Thread) -> None:
        self._stopping = True
        assert self._wake is not None
        os.eventfd_write(self._wake, 1)
        thread.join()

    def _data_loop(self) -> None:
        """Wait on epoll, then, under the core's lock, read each ready descriptor until it would
        block; level-triggered, so what a burst's bound left behind is ready again at once. With
        ``busy_poll``, epoll is asked without waiting until that long has passed since the last
        event, and only then waited on."""
        assert self._epoll is not None
        poll = self._epoll.poll
        spin = self._busy_poll / 1_000_000
        clock = time.monotonic
        timeout = -1.0  # wait
        until = 0.0
        while True:
            events = poll(timeout)
            if self._stopping:
                return
            if events:
                if not self._serve(events):
                    return
                if spin:
                    until = clock() + spin
                    timeout = 0.0
            elif clock() >= until:
                timeout = -1.0  # quiet for busy_poll µs: sleep until the next event

    def _serve(self, events: list[tuple[int, int]]) -> bool:
        """Read each of the ready descriptors ``events`` until it would block, under the core's
        lock; False when the thread is to stop."""
        lock = self.core_lock
        readers = self._readers
        wake = self._wake
        main, tap = self._main, self._tap
        assert main is not None and tap is not None
        # With a timeout: a control call holds the lock across a trio checkpoint, and closing
        # joins this thread from the trio thread; it must see _stopping rather than wait.
        while not lock.acquire(timeout=0.05):
            if self._stopping:
                return False
        try:
            for fd, _mask in events:
                if fd == wake:
                    continue
                if fd not in readers:
                    continue  # a group left since the poll
                sock = readers[fd]
                if sock is None:
                    sent = self._tx_n
                    if not self._tap_burst(fd):
                        self._unwatch(fd)  # the TAP device is gone: the sockets still count
                    elif self._tx_n != sent:
                        # A peer on this host may have answered inside sendto() already (a
                        # kernel VTEP's guest does): read it now, not after one more wake-up.
                        self._rx_burst(main)
                # A frame written to the TAP is often answered before write() returns
                # (the bridge, veth and the guest's stack run in that call): _rx_burst
                # reads it after a lone datagram, so a ping's round trip costs one wake-up.
                elif not self._rx_burst(sock, tap if tap in readers else None):
                    self._unwatch(fd)
        finally:
            lock.release()
        return True


@asynccontextmanager
async def open_vtep(
    config: VtepConfig,
    *,
    tap: str | None = None,
    guests: Sequence[GuestSpec | str] = (),
    netns: str | None = None,
    up: bool = False,
    batch: int = DEFAULT_BATCH,
    busy_poll: int = 0,
) -> AsyncIterator[UdpVtep]:
    """A VTEP on the host's UDP sockets for the duration of the ``async with``; created down, as
    :func:`pyvxlan.kernel.open_vtep` creates its device (``up=True``, or ``await vtep.up()``,
    brings it up: it then joins its group and forwards).

    Binds ``config.dst_port`` on ``config.local`` (any address when ``None``), creates TAP device
    ``tap`` (needs CAP_NET_ADMIN) and/or starts the in-process ``guests`` (no privilege) as its
    local side (``guests`` as :class:`GuestSpec` or ``"MAC,IP/PREFIX"``), and in ``netns`` (a named network namespace, needs root) makes every socket and
    device there. On exit, cancellation or error the device goes down (its groups left) and every
    socket and the TAP device are closed.

    ``busy_poll`` (µs, with ``tap`` and no ``guests``): after each frame or datagram the data
    thread keeps polling without sleeping for that long, so that traffic arriving within it is
    served without a wake-up (about 100 µs on a virtual machine): a ping's round trip through
    the VTEP then adds tens of µs to the kernel's rather than a hundred or more. It keeps one core
    busy while traffic flows and for ``busy_poll`` µs after (each poll releases the GIL, so the
    trio side's work goes on between polls). 0, the default, sleeps at once.

    Errors: :class:`~pyvxlan.ConfigError` for settings (``dev``: no such interface; ``netns``: no
    such namespace), :class:`~pyvxlan.udp.DriverError` (a :class:`~pyvxlan.errors.BackendError`)
    for a port in use, a TAP device that cannot be made or a group that cannot be joined,
    :class:`~pyvxlan.PrivilegeError` for missing privilege.
    """
    if not isinstance(config, VtepConfig):
        raise ConfigError("config", f"must be a VtepConfig, got {type(config).__name__}")
    if type(batch) is not int or batch < 1:
        raise ConfigError("batch", f"must be a positive int, got {batch!r}")
    if type(busy_poll) is not int or busy_poll < 0:
        raise ConfigError("busy_poll", f"must be a number of microseconds (an int, 0 or more), got {busy_poll!r}")
    specs = [GuestSpec.parse(g) if isinstance(g, str) else g for g in guests]
    if busy_poll and (tap is None or specs):
        # Only the TAP's data thread can spin; guests and their data path run on trio, which must
        # not.
        raise ConfigError("busy_poll", "needs a TAP device and no in-process guests (their data path runs on trio)")
    vtep = UdpVtep(config, netns=netns, batch=batch, busy_poll=busy_poll)
    try:
        vtep._open(tap, specs)  # outside the nursery: a port in use is raised as itself
        try:
            async with trio.open_nursery() as nursery:
                try:
                    vtep._start(nursery)
                    if up:
                        await vtep.up()
                    yield vtep
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The driver's tasks raise nothing, so a group holds the body's one exception (or
            # up()'s): raise it as itself, as a caller of an async with expects.
            raise _single(group) from None
    finally:
        vtep._close()


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
        group = group.exceptions[0]  # type: ignore[assignment]
    return group
