"""The EVPN agent: an :class:`~pyvxlan.evpn.EvpnMachine` driving a VTEP over a BGP session.

The agent is the glue, nothing more: routes from the session go into the machine and the
machine's operations onto any :class:`~pyvxlan.VtepControl` (a ``KernelVtep`` on a real vxlan
device, or a simulated one); local MACs go into the machine and its routes onto the session. When
the session closes, everything it had programmed is withdrawn from the VTEP; when a session is
(re)established, the machine's routes are sent again, followed by End-of-RIB.

Local MACs are given by the caller: :meth:`EvpnAgent.attach` when a guest attaches, or
:meth:`EvpnAgent.follow` over a stream of :class:`LocalMacAdded` and :class:`LocalMacRemoved`
events, such as a kernel bridge's FDB notifications (:func:`pyvxlan.kernel.bridge.watch_bridge`):
a vxlan device does not see the guests behind its bridge.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import trio

from pyvxlan.core.control import VtepControl
from pyvxlan.errors import ConfigError
from pyvxlan.evpn.codec import Update
from pyvxlan.evpn.machine import Action, Advertise, EvpnMachine, Withdraw, apply_actions
from pyvxlan.evpn.session import (
    BgpConnection,
    EndOfRibReceived,
    RouteRefreshRequested,
    SessionClosed,
    SessionEstablished,
    SessionState,
    UpdateReceived,
)
from pyvxlan.wire.header import describe

__all__ = ["EvpnAgent", "LocalMacAdded", "LocalMacEvent", "LocalMacRemoved"]

_Step: TypeAlias = Callable[[float], list[Action]]


@dataclass(frozen=True, slots=True)
class LocalMacAdded:
    """A MAC appeared behind the VTEP's bridge (a guest's frame taught it, or it was added)."""

    mac: str


@dataclass(frozen=True, slots=True)
class LocalMacRemoved:
    """A local MAC went (aged out, deleted, or its port left the bridge)."""

    mac: str


#: What :meth:`EvpnAgent.follow` reads.
LocalMacEvent: TypeAlias = LocalMacAdded | LocalMacRemoved


class EvpnAgent:
    """Run ``machine`` for ``vtep``; :meth:`serve` a :class:`BgpConnection` to exchange routes.

    ``actions`` records every action the machine produced, in order (for tests and logs).
    """

    def __init__(self, machine: EvpnMachine, vtep: VtepControl) -> None:
        if not isinstance(machine, EvpnMachine):
            raise ConfigError("machine", f"must be an EvpnMachine, got {describe(machine)}")
        self.machine = machine
        self.vtep = vtep
        self.actions: list[Action] = []
        self.end_of_rib = trio.Event()
        self._connection: BgpConnection | None = None
        self._lock = trio.Lock()
        self._timers_changed = trio.Event()
        self._started = False

    @property
    def established(self) -> bool:
        """Whether routes are being exchanged with a peer now."""
        c = self._connection
        return c is not None and c.session.state is SessionState.ESTABLISHED

    async def attach(self, mac: str, *, ip: str | None = None, sticky: bool = False) -> None:
        """A local guest with ``mac`` (and ``ip``) appeared: advertise it."""
        await self._run(lambda now: self.machine.local_learned(mac, now, ip=ip, sticky=sticky))

    async def detach(self, mac: str, *, ip: str | None = None) -> None:
        """A local guest left (or, with ``ip``, gave up that address): withdraw it."""
        await self._run(lambda now: self.machine.local_removed(mac, now, ip=ip))

    async def follow(self, events: AsyncIterable[LocalMacEvent]) -> None:
        """Advertise each :class:`LocalMacAdded` MAC and withdraw each :class:`LocalMacRemoved`
        one, until ``events`` ends: the machine's ``local_learned`` and ``local_removed``."""
        async for event in events:
            if isinstance(event, LocalMacAdded):
                await self.attach(event.mac)
            elif isinstance(event, LocalMacRemoved):
                await self.detach(event.mac)
            else:
                raise ConfigError("event", f"must be a LocalMacAdded or LocalMacRemoved, got {describe(event)}")

    async def serve(self, connection: BgpConnection) -> None:
        """Exchange routes over ``connection`` until it closes; then withdraw what it brought."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._timer_loop)
            try:
                await self._serve(connection)
            finally:
                nursery.cancel_scope.cancel()

    async def _serve(self, connection: BgpConnection) -> None:
        self._connection = connection
        try:
            async for event in connection.events():
                if isinstance(event, SessionEstablished):
                    await self._announce_all()
                elif isinstance(event, UpdateReceived):
                    await self._run(functools.partial(self._received, event.update))
                elif isinstance(event, EndOfRibReceived):
                    self.end_of_rib.set()
                elif isinstance(event, RouteRefreshRequested):
                    await self._announce_all()
                elif isinstance(event, SessionClosed):
                    break
        finally:
            self._connection = None
            self.end_of_rib = trio.Event()
            with trio.CancelScope(shield=True):
                await self._run(self.machine.peer_lost)

    def _received(self, update: Update, now: float) -> list[Action]:
        return self.machine.routes_received(update, now)

    async def _announce_all(self) -> None:
        async with self._lock:
            if not self._started:
                self._started = True
                self.actions += self.machine.start(trio.current_time())
            for ad in self.machine.advertised:
                await self._send(ad.update(self.machine.config.local))
            await self._send(Update.end_of_rib())

    async def _send(self, update: Update) -> None:
        c = self._connection
        if c is not None and c.session.state is SessionState.ESTABLISHED:
            await c.send(update)

    async def _run(self, step: _Step) -> None:
        async with self._lock:
            actions = step(trio.current_time())
            self.actions += actions
            await self._carry_out(actions)
        self._timers_changed.set()

    async def _carry_out(self, actions: Sequence[Action]) -> None:
        await apply_actions(actions, self.vtep)
        for action in actions:
            if isinstance(action, Advertise):
                await self._send(action.update(self.machine.config.local))
            elif isinstance(action, Withdraw):
                await self._send(action.update())

    async def _timer_loop(self) -> None:
        while True:
            self._timers_changed = trio.Event()
            deadline = self.machine.get_timer()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._timers_changed.wait()
                continue
            await self._run(self.machine.handle_timer)
