"""The local MACs of a Linux bridge, as its FDB notifications tell them: what an EVPN agent advertises.

A vxlan device does not see the guests behind its bridge; the bridge does. :func:`watch_bridge`
reports every MAC the bridge holds on one of its ports (learned from a guest's frame, or added
with ``bridge fdb add ... master``) as :class:`~pyvxlan.evpn.LocalMacAdded` when it appears and
:class:`~pyvxlan.evpn.LocalMacRemoved` when it goes (aged out, deleted, its port removed), which
:meth:`pyvxlan.evpn.EvpnAgent.follow` turns into the machine's ``local_learned`` and
``local_removed``. Left out: the ports' own addresses (``permanent``), entries a control plane
installed (``extern_learn``, zebra's or the agent's own remote MACs) and the ports named in
``exclude`` (the vxlan device: what it holds is remote).
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import trio

from pyvxlan.errors import BackendError
from pyvxlan.evpn.agent import LocalMacAdded, LocalMacEvent, LocalMacRemoved
from pyvxlan.kernel import messages as nlm
from pyvxlan.kernel import netlink as nl
from pyvxlan.wire.addr import format_mac

__all__ = ["BridgeMacs", "watch_bridge"]


class BridgeMacs:
    """An async iterator over one bridge's local MAC events (see :func:`watch_bridge`).

    ``port_of(ifindex)`` names a watched port of the bridge (``None``: an interface that is not
    one); it is asked once per interface. ``macs`` is every local MAC known now, with its port.
    """

    def __init__(self, bridge: str, port_of: Callable[[int], str | None], sock: nl.NeighSocket | None) -> None:
        self.bridge = bridge
        self._port_of = port_of
        self._sock = sock
        self._ports: dict[int, str | None] = {}  # ifindex -> port name, None: not one of ours
        self.macs: dict[str, str] = {}
        self._ready: deque[LocalMacEvent] = deque()
        self.overruns = 0  # times the kernel dropped notifications because we read too slowly

    def _port(self, index: int) -> str | None:
        if index not in self._ports:
            self._ports[index] = self._port_of(index)
        return self._ports[index]

    def pending(self) -> list[LocalMacEvent]:
        """The events :meth:`feed` made that were not read yet, taken."""
        events = list(self._ready)
        self._ready.clear()
        return events

    def feed(self, data: bytes | bytearray) -> None:
        """Take notifications (or a dump) from the kernel; what they change becomes events."""
        for m in nlm.parse_neigh_messages(data):
            if (
                m.family != nlm.AF_BRIDGE
                or m.flags & nlm.NTF_SELF  # a port's own table (the bridge's entries carry NDA_MASTER)
                or m.flags & nlm.NTF_EXT_LEARNED
                or m.lladdr is None
                or m.state & nlm.NUD_PERMANENT
            ):
                continue
            port = self._port(m.ifindex)
            if port is None:
                continue
            mac = format_mac(m.lladdr)
            if m.msg_type == nlm.RTM_NEWNEIGH:
                if mac not in self.macs:
                    self._ready.append(LocalMacAdded(mac))
                self.macs[mac] = port  # a MAC moving between local ports stays local: no event
            elif m.msg_type == nlm.RTM_DELNEIGH and self.macs.get(mac) == port:
                del self.macs[mac]
                self._ready.append(LocalMacRemoved(mac))

    def __aiter__(self) -> BridgeMacs:
        return self

    async def __anext__(self) -> LocalMacEvent:
        sock = self._sock
        while not self._ready:
            if sock is None:  # fed by hand: ends with what it was given
                raise StopAsyncIteration
            await trio.lowlevel.wait_readable(sock.sock)
            try:
                data = sock.recv_events()
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise BackendError(exc.errno or 0, f"read notifications of {self.bridge}", str(exc.strerror)) from None
            self.feed(data)
        return self._ready.popleft()


@asynccontextmanager
async def watch_bridge(
    bridge: str, *, netns: str | None = None, exclude: Iterable[str] = ()
) -> AsyncIterator[BridgeMacs]:
    """Watch bridge ``bridge`` (in ``netns``): the MACs it holds now come first, as
    :class:`~pyvxlan.evpn.LocalMacAdded`, then every change. Ports in ``exclude`` (names) are
    not watched."""
    rtnl = await trio.to_thread.run_sync(nl.Rtnl, netns)
    try:
        sock = await trio.to_thread.run_sync(lambda: nl.NeighSocket(netns, groups=nlm.RTNLGRP_NEIGH_MASK))
        try:
            sock.sock.setblocking(False)
            bridge_index = rtnl.link(bridge).index
            skip = set(exclude)

            def port_of(index: int) -> str | None:
                try:
                    link = rtnl.link(index=index)
                except BackendError:  # gone meanwhile: a port that left
                    return None
                return link.name if link.master == bridge_index and link.name not in skip else None

            macs = BridgeMacs(bridge, port_of, sock)
            # Subscribed before the dump: an entry learned between the two is reported (once).
            dumper = await trio.to_thread.run_sync(nl.NeighSocket, netns)
            try:
                macs.feed(await trio.to_thread.run_sync(dumper.dump, nlm.AF_BRIDGE))
            finally:
                dumper.close()
            yield macs
        finally:
            trio.lowlevel.notify_closing(sock.sock)
            sock.close()
    finally:
        rtnl.close()
