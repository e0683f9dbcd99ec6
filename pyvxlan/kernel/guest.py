"""A guest of a kernel lab: a network namespace behind a veth on its host's bridge, pinging with
real ICMP from its ``eth0``."""

from __future__ import annotations

import secrets
import socket
import struct
import time
from typing import TYPE_CHECKING

import trio

from pyvxlan.errors import ConfigError
from pyvxlan.kernel.extra import HAVE_NETLINK
from pyvxlan.lab import PingResult
from pyvxlan.lab.iproute2 import UPLINK
from pyvxlan.lab.topology import GuestSpec
from pyvxlan.wire.addr import ip_info, parse_mac
from pyvxlan.wire.frame import internet_checksum
from pyvxlan.wire.packets import announcement_frame, unpadded

if TYPE_CHECKING or HAVE_NETLINK:  # without pyroute2 nothing here that needs netlink is called
    from pyvxlan.kernel import netlink as nl

__all__ = ["SOCKET_TIMEOUT", "KernelGuest"]


class KernelGuest:
    """A guest namespace: real ICMP from its ``eth0``. Implements :class:`~pyvxlan.lab.Guest`."""

    def __init__(self, spec: GuestSpec, netns: str) -> None:
        self._spec = spec
        self.netns = netns

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def mac(self) -> str:
        return self._spec.mac

    @property
    def ip(self) -> str:
        return self._spec.address

    @property
    def spec(self) -> GuestSpec:
        return self._spec

    async def ping(self, ip: str, *, count: int = 1, timeout: float = 1.0, interval: float = 1.0) -> PingResult:
        """``ping -c COUNT -W TIMEOUT -i INTERVAL IP`` from the guest's namespace (ICMP or ICMPv6
        echo on a raw socket; the guest's kernel resolves ``ip`` with ARP or ND first)."""
        info = ip_info(str(ip), "ip")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError("count", f"must be >= 1, got {count!r}")
        if not timeout > 0 or interval < 0:
            raise ConfigError("timeout", f"timeout must be > 0 and interval >= 0, got {timeout!r}, {interval!r}")
        family, proto = (
            (socket.AF_INET6, socket.IPPROTO_ICMPV6) if info.version == 6 else (socket.AF_INET, socket.IPPROTO_ICMP)
        )
        raw = await _socket_in(self.netns, family, socket.SOCK_RAW, proto)
        sock = trio.socket.from_stdlib_socket(raw)
        ident = secrets.randbits(16)
        rtts: list[float] = []
        try:
            for seq in range(count):
                if seq:
                    await trio.sleep(interval)
                rtt = await _echo(sock, info.version, info.text, ident=ident, seq=seq, timeout=timeout)
                if rtt is not None:
                    rtts.append(rtt)
        finally:
            sock.close()
        return PingResult(sent=count, received=len(rtts), rtts=tuple(rtts))

    async def announce(self) -> None:
        """Send a gratuitous ARP (IPv6: an unsolicited neighbour advertisement to all nodes), as
        a migrated VM does, so that bridges and VTEPs relearn where it is."""
        # Short, as the simulated guest and Linux's own ARP send it on a veth: both labs' counters agree.
        frame = unpadded(announcement_frame(parse_mac(self._spec.mac), ip_info(self._spec.address).packed))
        raw = await _socket_in(self.netns, socket.AF_PACKET, socket.SOCK_RAW, 0)
        with raw:
            raw.bind((UPLINK, 0))
            raw.send(frame)

    async def flush_arp(self) -> None:
        """``ip neigh flush dev eth0``: forget every ARP (ND) cache entry."""
        await trio.to_thread.run_sync(_flush_neighbours, self.netns)

    def __repr__(self) -> str:
        return f"<KernelGuest {self.name} {self.ip} in {self.netns}>"


#: How long opening a socket in a guest's namespace may take (a few milliseconds normally).
SOCKET_TIMEOUT = 10.0


async def _socket_in(netns: str, family: int, kind: int, proto: int) -> socket.socket:
    """A socket in ``netns``, opened in a worker thread.

    A thread enters the namespace and makes the socket (:mod:`pyvxlan.kernel.netns`). The wait for
    it is bounded, and a cancellation (Ctrl-C, SIGTERM) abandons the thread (a socket it opens
    later is closed when collected): a thread that never answers cannot hold the lab's owner.
    """
    with trio.move_on_after(SOCKET_TIMEOUT):
        return await trio.to_thread.run_sync(nl.open_socket, netns, family, kind, proto, abandon_on_cancel=True)
    raise ConfigError("netns", f"no socket could be opened in network namespace {netns!r} within {SOCKET_TIMEOUT:g} s")


def _flush_neighbours(ns: str) -> None:
    sock = nl.NeighSocket(ns)
    try:
        raw = sock.dump(0)
        doomed = [
            (nl.RTM_DELNEIGH, 0, {"family": m.family, "ifindex": m.ifindex, "state": 0, "ntf": 0, "dst": m.dst})
            for m in nl.parse_neigh_messages(raw)
            if m.family in (2, 10) and m.dst is not None and not m.state & nl.NUD_NOARP
        ]
        if doomed:
            sock.transact(doomed)
    finally:
        sock.close()


async def _echo(
    sock: trio.socket.SocketType, version: int, dst: str, *, ident: int, seq: int, timeout: float
) -> float | None:
    request, reply = (128, 129) if version == 6 else (8, 0)
    payload = b"pyvxlan-" + struct.pack("!d", time.time())
    header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
    if version == 4:  # the kernel computes ICMPv6 checksums of raw sockets itself
        header = struct.pack("!BBHHH", request, 0, internet_checksum(header + payload), ident, seq)
    start = trio.current_time()
    await sock.sendto(header + payload, (dst, 0))
    with trio.move_on_after(timeout):
        while True:
            data, _ = await sock.recvfrom(65535)
            if version == 4:
                data = data[(data[0] & 0x0F) * 4 :]  # raw IPv4 sockets hand over the IP header
            if len(data) >= 8 and data[0] == reply:
                _, _, _, rid, rseq = struct.unpack_from("!BBHHH", data)
                if rid == ident and rseq == seq:
                    return trio.current_time() - start
    return None
