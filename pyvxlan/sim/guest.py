"""A simulated guest: one interface with a MAC and an IPv4 address, ARP, ICMP echo and UDP.

The ARP behaviour follows Linux's defaults where it matters for an overlay: a resolution sends up
to ``ARP_TRIES`` broadcast requests ``ARP_RETRANS`` seconds apart (``mcast_solicit`` 3,
``retrans_time`` 1 s) while packets wait for it, up to ``ARP_QUEUE_BYTES`` of their buffers'
true sizes (``unres_qlen_bytes``: 256 small packets, 92 of 1,500 bytes; the oldest is dropped
first, and all are dropped, counted, when the resolution fails); an answered entry is used for
``ARP_REACHABLE`` seconds and then resolved again. A guest that gets a request for its own address
answers and learns the asker, as Linux does.

What a guest sends is what a Linux guest puts on its veth: frames unpadded (Linux pads only on
real NICs), IPv4 IDs from ``__ip_select_ident`` and IPv6 flow labels from ``ip6_make_flowlabel``
(see :mod:`pyvxlan.sim.ipid`; neighbour discovery keeps label 0), DF set except on ICMP echo replies (Linux's ICMP socket does not do path MTU discovery), and the echo requests of
:meth:`SimGuest.ping` as the kernel lab's ``ping`` sends them (``ECHO_DATA``: sequence numbers from
0, 16 bytes of data, ``pyvxlan-`` and the send time as a big-endian double).

The async methods only start work in the simulated world (scheduler events) and wait for a
handler to wake them. :meth:`SimGuest.deliver`, the way in for frames, runs in a scheduler handler
in the simulator, and from the receive loop of a trio task in the userspace VTEP
(:mod:`pyvxlan.udp`): both are correct, since the guest reads the time from the scheduler's
``now`` and wakes waiting tasks with :meth:`~pyvxlan.sim.scheduler.Scheduler.wake`, which work
inside and outside handlers alike.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import deque
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import trio

from pyvxlan.errors import ConfigError
from pyvxlan.lab import PingResult
from pyvxlan.sim.ipid import IpIdents
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.wire.frame import internet_checksum
from pyvxlan.wire.packets import (
    ALL_NODES_MAC,
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST,
    IcmpEcho,
    NeighbourMessage,
    UdpDatagram,
    announcement_frame,
    arp_frame,
    icmp_echo_frame,
    na_frame,
    ns_frame,
    parse_arp,
    parse_ip,
    solicited_node_mac,
    udp_frame,
    unpadded,
)

__all__ = [
    "ARP_QUEUE_BYTES",
    "ARP_REACHABLE",
    "ARP_RETRANS",
    "ARP_TRIES",
    "ECHO_DATA",
    "NicIndex",
    "SimGuest",
    "UdpSocket",
    "skb_truesize",
]

ARP_TRIES = 3
ARP_RETRANS = 1.0
ARP_QUEUE_BYTES = 212992  # net.ipv4.neigh.*.unres_qlen_bytes (and IPv6's), Linux's default
ARP_REACHABLE = 30.0
ECHO_DATA = b"pyvxlan-"  # then the send time, "!d": the kernel lab's echo data (kernel/lab.py _echo)

_PROTO_ICMP = 1
_PROTO_UDP = 17
# Linux's skb heads: up to SKB_SMALL_HEAD_CACHE_SIZE from their own cache, else a power of two
# from kmalloc; each with a struct skb_shared_info at its end, and the struct sk_buff beside it.
_SMALL_HEAD = 576
_SHINFO = 320
_SK_BUFF = 256


def skb_truesize(ip_length: int) -> int:
    """The ``truesize`` Linux charges for a socket's packet of ``ip_length`` IP bytes (what the
    neighbour queue's byte limit counts). Measured (6.18, UDP while ARP resolves): 256 packets of
    up to 150 payload bytes fit in ``unres_qlen_bytes``, 166 of 300 to 500, 92 of 700 to 1,400."""
    head = ip_length + 16 + 15 + _SHINFO  # the link header space ip_append_data asks for, aligned
    if head <= _SMALL_HEAD:
        return _SMALL_HEAD + _SK_BUFF
    return (1 << (head - 1).bit_length()) + _SK_BUFF


_NOBODY: frozenset[SimGuest] = frozenset()


@dataclass(slots=True)
class _Resolution:
    tries: int = 0
    # Packets to build once resolved, with their truesize, and the sum of those sizes.
    queue: deque[tuple[tuple[object, ...], int]] = field(default_factory=deque)
    queued: int = 0


def _ipv4_as_linux(frame: bytes, ident: int, df: bool) -> bytes:
    """An IPv4 frame from the packet builders (ID 0, DF) with Linux's ID and DF bit instead."""
    header = bytearray(frame[14:34])
    header[4:8] = struct.pack("!HH", ident, 0x4000 if df else 0)
    header[10:12] = b"\0\0"
    header[10:12] = internet_checksum(header).to_bytes(2, "big")
    return frame[:14] + bytes(header) + frame[34:]


@dataclass(slots=True)
class _Ping:
    ident: int
    count: int
    timeout: float
    interval: float
    sent_at: dict[int, float] = field(default_factory=dict)
    rtts: dict[int, float] = field(default_factory=dict)
    sent: int = 0
    done: trio.Event = field(default_factory=trio.Event)


class UdpSocket:
    """A UDP socket bound to a port of a simulated guest (``guest.udp_socket(port)``)."""

    __slots__ = ("_guest", "_inbox", "_ready", "_wake", "port")

    def __init__(self, guest: SimGuest, port: int, wake: Callable[[trio.Event], None]) -> None:
        self._guest = guest
        self.port = port
        self._wake = wake  # the scheduler's wake: a datagram arrives in a scheduler handler
        self._inbox: deque[tuple[bytes, tuple[str, int]]] = deque()
        self._ready = trio.Event()

    def send(self, payload: bytes, address: tuple[str, int]) -> None:
        """Send ``payload`` to ``(ip, port)`` (resolving the IP with ARP first if needed)."""
        self._guest.send_udp(address[0], address[1], payload, src_port=self.port)

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender's ``(ip, port)``; waits in virtual time."""
        while not self._inbox:
            self._ready = trio.Event()
            await self._ready.wait()
        return self._inbox.popleft()

    def put(self, payload: bytes, sender: tuple[str, int]) -> None:
        """Queue a datagram that reached the port (the guest's stack calls this) and wake a
        :meth:`receive` waiting for it."""
        self._inbox.append((payload, sender))
        self._wake(self._ready)

    def close(self) -> None:
        """Unbind the port: later datagrams to it are dropped (``port_unreachable``)."""
        self._guest.close_udp(self)


class NicIndex:
    """Which guests' NICs take a destination MAC, for all the guests of a lab.

    A flood in a 10,000-host lab reaches 10,000 guests, and nearly every one's NIC filter refuses
    it (a neighbour solicitation goes to one solicited-node group). The index answers "who takes
    this destination" once per frame (:meth:`takers`), so that the lab need not hand the frame to
    each guest to be refused; :meth:`refused` accounts for the copies that were not handed over.
    A tapped guest (a capture or a raw socket sees every frame) takes everything.
    """

    __slots__ = ("_by_mac", "_ledger", "_tapped")

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._by_mac: dict[bytes, set[SimGuest]] = {}
        self._tapped: set[SimGuest] = set()

    def add(self, guest: SimGuest) -> None:
        """Index ``guest``'s NIC filter (:attr:`SimGuest.accepts`)."""
        for mac in guest.accepts - {BROADCAST}:
            self._by_mac.setdefault(mac, set()).add(guest)
        self.tap(guest, guest.tapped)

    def tap(self, guest: SimGuest, tapped: bool) -> None:
        """Whether ``guest`` sees every frame now (told by the guest)."""
        if tapped:
            self._tapped.add(guest)
        else:
            self._tapped.discard(guest)

    def takers(self, dst: bytes) -> AbstractSet[SimGuest] | None:
        """The guests that take a frame to ``dst``; ``None``: every guest (broadcast)."""
        if dst == BROADCAST:
            return None
        found = self._by_mac.get(dst, _NOBODY)
        return found | self._tapped if self._tapped else found

    def refused(self, copies: int) -> None:
        """``copies`` frame copies ended at a NIC filter without being handed to the guest."""
        self._ledger.ended["not_for_guest"] += copies


class SimGuest:
    """A guest of a simulated lab; see :class:`pyvxlan.lab.Guest` for the shared part."""

    # Slots: a flood in a 10,000-host lab reaches 10,000 guests, and each looks at its NIC filter;
    # slotted attributes are cheaper to reach than a per-instance dict.
    __slots__ = (
        "_accept",
        "_drop",
        "_ended",
        "_idents",
        "_ip",
        "_ledger",
        "_mac",
        "_name",
        "_next_ident",
        "_nics",
        "_observe",
        "_pings",
        "_port",
        "_raw",
        "_raw_ready",
        "_resolving",
        "_sched",
        "_tapped",
        "_udp",
        "arp_cache",
        "ip_bytes",
        "mac_bytes",
        "network",
        "received",
        "sent",
        "source",
        "v6",
    )

    def __init__(
        self,
        name: str,
        mac: str,
        ip: str,
        *,
        source: int,
        sched: Scheduler,
        ledger: Ledger,
        drop: Callable[[str, str], None],
        observe: Callable[[str, bytes, bool], None] | None = None,
        idents: IpIdents | None = None,
        nics: NicIndex | None = None,
    ) -> None:
        iface = ipaddress.ip_interface(ip)
        self._name = name
        self._mac = mac
        self._ip = str(iface.ip)
        self.mac_bytes = bytes.fromhex(mac.replace(":", ""))
        self.ip_bytes = iface.ip.packed
        self.network = iface.network
        self.v6 = iface.version == 6
        # The destinations the NIC accepts: its own MAC, broadcast, and for IPv6 the all-nodes and
        # solicited-node groups (Linux programs the same filter through MLD).
        multicast = {ALL_NODES_MAC, solicited_node_mac(self.ip_bytes)} if self.v6 else set()
        self._accept = frozenset({self.mac_bytes, BROADCAST, *multicast})
        self.source = source
        self._sched = sched
        self._ledger = ledger
        self._ended = ledger.ended
        self._drop = drop  # (guest name, reason): packets the stack gives up on (no frame copy)
        self._idents = idents if idents is not None else IpIdents(0)
        self._observe = observe
        self._port: Callable[[bytes], None] | None = None  # the bridge port, set on attach
        self.arp_cache: dict[bytes, tuple[bytes, float]] = {}  # ip -> (mac, confirmed at)
        self._resolving: dict[bytes, _Resolution] = {}
        self._pings: dict[int, _Ping] = {}
        self._next_ident = 1
        self._udp: dict[int, UdpSocket] = {}
        self._raw: deque[bytes] | None = None
        self._raw_ready: trio.Event | None = None  # made when a reader waits: most guests never have one
        self._tapped = observe is not None  # something sees every frame: a capture or a raw socket
        self.received = 0
        self.sent = 0
        self._nics = nics
        if nics is not None:
            nics.add(self)

    @property
    def observe(self) -> Callable[[str, bytes, bool], None] | None:
        """Called with (guest name, frame, outgoing) for every frame on the interface: the lab's
        guest captures and tests use it."""
        return self._observe

    @observe.setter
    def observe(self, value: Callable[[str, bytes, bool], None] | None) -> None:
        self._observe = value
        self._tapped = value is not None or self._raw is not None
        if self._nics is not None:
            self._nics.tap(self, self._tapped)

    @property
    def tapped(self) -> bool:
        """Whether something sees every frame on the interface (a capture or a raw socket)."""
        return self._tapped

    @property
    def accepts(self) -> frozenset[bytes]:
        """The destination MACs the NIC accepts: its own, broadcast, and for IPv6 the all-nodes
        and solicited-node groups (Linux programs the same filter through MLD)."""
        return self._accept

    # --- the Guest protocol -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mac(self) -> str:
        return self._mac

    @property
    def ip(self) -> str:
        return self._ip

    async def ping(self, ip: str, *, count: int = 1, timeout: float = 1.0, interval: float = 1.0) -> PingResult:
        """Send ``count`` echo requests ``interval`` seconds apart; each reply counts when it
        comes within ``timeout`` seconds of its request. Returns when every request is answered
        or has timed out, in virtual time."""
        if count < 1 or timeout <= 0 or interval < 0:
            raise ConfigError("ping", "needs count >= 1, timeout > 0 and interval >= 0")
        target = ipaddress.ip_address(ip).packed
        ident = self._next_ident
        self._next_ident = (self._next_ident + 1) & 0xFFFF or 1
        ping = _Ping(ident, count, timeout, interval)
        self._pings[ident] = ping
        self._sched.call_later(0.0, self.source, self._ping_send, ping, target)
        try:
            await ping.done.wait()
        finally:
            self._pings.pop(ident, None)
        rtts = tuple(ping.rtts[s] for s in sorted(ping.rtts))
        return PingResult(sent=ping.sent, received=len(rtts), rtts=rtts)

    # --- other traffic ------------------------------------------------------------------------------

    def udp_socket(self, port: int) -> UdpSocket:
        """Bind a UDP socket to ``port``."""
        if port in self._udp:
            raise ConfigError("port", f"{self._name}: UDP port {port} is in use")
        sock = UdpSocket(self, port, self._sched.wake)
        self._udp[port] = sock
        return sock

    def close_udp(self, sock: UdpSocket) -> None:
        """Unbind ``sock`` (what :meth:`UdpSocket.close` does)."""
        if self._udp.get(sock.port) is sock:
            del self._udp[sock.port]

    def send_udp(self, ip: str, port: int, payload: bytes, *, src_port: int = 40000) -> None:
        """Send one UDP datagram (from the next scheduler step, in virtual time)."""
        target = ipaddress.ip_address(ip).packed
        self._sched.call_later(0.0, self.source, self._send_ip, target, ("udp", src_port, port, payload))

    def send_frame(self, frame: bytes) -> None:
        """Put a raw Ethernet frame on the guest's interface."""
        self._sched.call_later(0.0, self.source, self._transmit, bytes(frame))

    def open_raw(self) -> None:
        """Start keeping a copy of every frame that reaches the interface (a packet socket)."""
        if self._raw is None:
            self._raw = deque()
            self._tapped = True
            if self._nics is not None:
                self._nics.tap(self, True)

    async def receive_frame(self) -> bytes:
        """The next frame that reached the interface since :meth:`open_raw`."""
        self.open_raw()
        assert self._raw is not None
        while not self._raw:
            self._raw_ready = trio.Event()
            await self._raw_ready.wait()
        return self._raw.popleft()

    def announce(self) -> None:
        """Send a gratuitous ARP (IPv6: an unsolicited neighbour advertisement to all nodes), as
        a migrated VM does, so that bridges and VTEPs relearn where it is."""
        frame = unpadded(announcement_frame(self.mac_bytes, self.ip_bytes))
        self._sched.call_later(0.0, self.source, self._transmit, frame)

    def flush_arp(self) -> None:
        """Forget every ARP cache entry (``ip neigh flush dev eth0``)."""
        self.arp_cache.clear()

    # --- wiring -------------------------------------------------------------------------------------

    def attach(self, port: Callable[[bytes], None] | None) -> None:
        self._port = port

    def _transmit(self, frame: bytes) -> None:
        self.sent += 1
        self._ledger.created += 1
        if self._observe is not None:
            self._observe(self._name, frame, True)
        if self._port is None:
            self._ledger.ended["guest_detached"] += 1
            return
        self._port(frame)

    # --- sending IP ---------------------------------------------------------------------------------

    def _send_ip(self, target: bytes, what: tuple[object, ...]) -> None:
        if ipaddress.ip_address(target) not in self.network:
            self._drop(self._name, "no_route")
            return
        now = self._sched.now
        entry = self.arp_cache.get(target)
        if entry is not None and now - entry[1] <= ARP_REACHABLE:
            self._transmit(self._build(entry[0], target, what))
            return
        res = self._resolving.get(target)
        start = res is None
        if res is None:
            res = self._resolving[target] = _Resolution()
        size = skb_truesize(self._ip_length(what))
        # Linux's __neigh_event_send: the oldest packets make room until the new one fits.
        while res.queue and res.queued + size > ARP_QUEUE_BYTES:
            self._drop(self._name, "arp_queue_full")
            res.queued -= res.queue.popleft()[1]
        res.queue.append((what, size))
        res.queued += size
        if start:
            # After queueing: a proxy ARP answer can come back within this very call.
            self._arp_probe(target)

    def _ip_length(self, what: tuple[object, ...]) -> int:
        data = what[-1]
        assert isinstance(data, bytes)
        return (40 if self.v6 else 20) + 8 + len(data)  # ICMP echo and UDP headers are 8 bytes

    def _build(self, dst_mac: bytes, target: bytes, what: tuple[object, ...]) -> bytes:
        kind = what[0]
        if kind in {"echo", "echo-reply"}:
            _, ident, seq, data = what
            assert isinstance(ident, int) and isinstance(seq, int) and isinstance(data, bytes)
            frame = icmp_echo_frame(
                self.mac_bytes,
                dst_mac,
                self.ip_bytes,
                target,
                reply=kind == "echo-reply",
                ident=ident,
                seq=seq,
                data=data,
            )
            proto = _PROTO_ICMP
        else:
            _, sport, dport, payload = what
            assert isinstance(sport, int) and isinstance(dport, int) and isinstance(payload, bytes)
            frame = udp_frame(
                self.mac_bytes, dst_mac, self.ip_bytes, target, src_port=sport, dst_port=dport, payload=payload
            )
            proto = _PROTO_UDP
        frame = unpadded(frame)
        if self.v6:
            # ip6_make_flowlabel: a hash of the flow (auto_flowlabels), the traffic class kept.
            word = int.from_bytes(frame[14:18], "big") & 0xFFF00000
            label = self._idents.flow_label(self.ip_bytes, target, frame[20])
            return frame[:14] + (word | label).to_bytes(4, "big") + frame[18:]
        # Linux's ICMP socket (echo replies) sends with IP_PMTUDISC_DONT: no DF.
        return _ipv4_as_linux(frame, self._idents.take(self.ip_bytes, target, proto), kind != "echo-reply")

    def _arp_probe(self, target: bytes) -> None:
        res = self._resolving.get(target)
        if res is None:
            return
        if res.tries >= ARP_TRIES:
            del self._resolving[target]
            for _ in res.queue:
                self._drop(self._name, "arp_failed")
            return
        res.tries += 1
        if self.v6:
            self._transmit(ns_frame(self.mac_bytes, self.ip_bytes, target))
        else:
            self._transmit(unpadded(arp_frame(ARP_REQUEST, self.mac_bytes, self.ip_bytes, target)))
        self._sched.call_later(ARP_RETRANS, self.source, self._arp_probe, target)

    def _learn(self, ip: bytes, mac: bytes) -> None:
        self.arp_cache[ip] = (mac, self._sched.now)
        res = self._resolving.pop(ip, None)
        if res is not None:
            for what, _ in res.queue:
                self._transmit(self._build(mac, ip, what))

    # --- ping -----------------------------------------------------------------------------------------

    def _ping_send(self, ping: _Ping, target: bytes) -> None:
        if ping.ident not in self._pings:
            return
        seq = ping.sent  # from 0, as the kernel lab's ping counts
        ping.sent = seq + 1
        now = self._sched.now
        ping.sent_at[seq] = now
        self._send_ip(target, ("echo", ping.ident, seq, ECHO_DATA + struct.pack("!d", now)))
        if ping.sent < ping.count:
            self._sched.call_later(ping.interval, self.source, self._ping_send, ping, target)
        else:
            self._sched.call_later(ping.timeout, self.source, self._ping_finish, ping)

    def _ping_finish(self, ping: _Ping) -> None:
        if not ping.done.is_set():
            self._sched.wake(ping.done)

    # --- receiving ------------------------------------------------------------------------------------

    def deliver(self, frame: bytes) -> None:
        """A frame leaves the bridge port toward this guest.

        Call it from a scheduler handler or from any task of the trio run the scheduler runs in
        (the userspace VTEP's receive loop does): what it answers goes out at once, what waits
        (a ping, a socket's ``receive``) is woken through the scheduler.
        """
        if self._tapped:
            if self._observe is not None:
                self._observe(self._name, frame, False)
            if self._raw is not None:
                self._raw.append(frame)
                if self._raw_ready is not None:
                    self._sched.wake(self._raw_ready)
        if frame[0:6] not in self._accept:
            # The NIC's filter: flooded unicast, or a multicast group we are not in (in a large
            # flood-and-learn lab, nearly every neighbour solicitation reaching this guest).
            self._ended["not_for_guest"] += 1
            return
        self._ledger.ended["delivered"] += 1
        self.received += 1
        if frame[12:14] == b"\x08\x06":
            if frame[38:42] != self.ip_bytes:
                # Someone else's request (the common case in a flood): Linux only refreshes an
                # entry it already has for the sender.
                sender = frame[28:32]
                if sender in self.arp_cache:
                    self.arp_cache[sender] = (frame[22:28], self._sched.now)
                return
            self._receive_arp(frame)
            return
        pkt = parse_ip(frame)
        if pkt is None:
            self._drop(self._name, "guest_unhandled")
            return
        if isinstance(pkt, NeighbourMessage):
            self._receive_nd(frame, pkt)
            return
        if pkt.dst_ip != self.ip_bytes:
            self._drop(self._name, "not_for_guest_ip")
            return
        if isinstance(pkt, IcmpEcho):
            self._receive_echo(frame, pkt)
        else:
            self._receive_udp(pkt)

    def _receive_nd(self, frame: bytes, msg: NeighbourMessage) -> None:
        if not self.v6:
            self._drop(self._name, "guest_unhandled")
            return
        if not msg.advert:
            if msg.target != self.ip_bytes or msg.src_ip == self.ip_bytes:
                return
            mac = msg.lladdr or frame[6:12]
            self._learn(msg.src_ip, mac)
            self._transmit(na_frame(self.mac_bytes, mac, self.ip_bytes, msg.src_ip))
            return
        if msg.target == self.ip_bytes:
            return
        mac = msg.lladdr or frame[6:12]
        if msg.target in self._resolving:
            self._learn(msg.target, mac)
        elif msg.target in self.arp_cache:  # an unsolicited advertisement updates an entry
            self.arp_cache[msg.target] = (mac, self._sched.now)

    def _receive_arp(self, frame: bytes) -> None:
        arp = parse_arp(frame)
        if arp is None:
            self._drop(self._name, "guest_unhandled")
            return
        if arp.target_ip != self.ip_bytes:
            # Someone else's request (or a gratuitous ARP): Linux only refreshes an existing entry.
            if arp.sender_ip in self.arp_cache and arp.sender_ip != self.ip_bytes:
                self.arp_cache[arp.sender_ip] = (arp.sender_mac, self._sched.now)
            return
        if arp.op == ARP_REQUEST:
            if arp.sender_ip == self.ip_bytes:
                return  # our own gratuitous ARP, or an address conflict probe
            self._learn(arp.sender_ip, arp.sender_mac)
            self._transmit(
                unpadded(
                    arp_frame(
                        ARP_REPLY,
                        self.mac_bytes,
                        self.ip_bytes,
                        arp.sender_ip,
                        dst_mac=arp.sender_mac,
                        target_mac=arp.sender_mac,
                    )
                )
            )
        elif arp.op == ARP_REPLY:
            self._learn(arp.sender_ip, arp.sender_mac)

    def _receive_echo(self, frame: bytes, pkt: IcmpEcho) -> None:
        if not pkt.reply:
            # Linux routes the reply like any packet: the destination IP is resolved through the
            # neighbour cache, never taken from the request's source MAC. The cache has the
            # pinger when its ARP request (or NS) reached us; behind a proxy-ARP VTEP it did not,
            # and the reply waits for an ARP resolution of its own (which may fail).
            self._send_ip(pkt.src_ip, ("echo-reply", pkt.ident, pkt.seq, pkt.data))
            return
        ping = self._pings.get(pkt.ident)
        if ping is None or pkt.seq not in ping.sent_at or pkt.seq in ping.rtts:
            self._drop(self._name, "unexpected_echo_reply")
            return
        rtt = round(self._sched.now - ping.sent_at[pkt.seq], 9)  # no float noise in reports
        if rtt > ping.timeout:
            self._drop(self._name, "late_echo_reply")
            return
        ping.rtts[pkt.seq] = rtt
        if len(ping.rtts) == ping.count:
            self._sched.wake(ping.done)

    def _receive_udp(self, pkt: UdpDatagram) -> None:
        sock = self._udp.get(pkt.dst_port)
        if sock is None:
            self._drop(self._name, "port_unreachable")
            return
        sock.put(pkt.payload, (str(ipaddress.ip_address(pkt.src_ip)), pkt.src_port))
