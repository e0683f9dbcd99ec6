"""``MemoryVtep``: the core behind the async :class:`~pyvxlan.VtepControl` API, in memory.

This is the thin adapter between a sans-I/O :class:`~pyvxlan.Vtep` and the control interface that
the kernel backend also implements; the simulator builds on it. It reads the time from a clock
callable (the simulator passes its virtual clock), calls the core synchronously, and routes what
the core emits: notifications go to every open :meth:`MemoryVtep.subscribe` stream, actions to the
``on_actions`` callback (or are kept in :attr:`MemoryVtep.pending_actions` for whoever drives the
data path).

A driver that runs the data path itself (calling ``vtep.transmit``/``receive``/``handle_timer``
and ``take_outputs``) passes those outputs through :meth:`MemoryVtep.dispatch`, so subscribers see
data-path notifications (learned, expired, misses, drops) as well.

>>> import trio
>>> from pyvxlan import Vtep, VtepConfig
>>> async def main() -> list[str]:
...     control = MemoryVtep(Vtep(VtepConfig(vni=10, remote="198.51.100.2")))
...     await control.up()
...     await control.fdb_add("02:00:00:00:00:01", "198.51.100.3")
...     return [e.mac for e in await control.fdb()]
>>> trio.run(main)
['00:00:00:00:00:00', '02:00:00:00:00:01']
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import trio

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbEntry, FdbState, Neighbour
from pyvxlan.core.events import (
    Action,
    DeliverFrame,
    JoinGroup,
    LeaveGroup,
    Notification,
    Output,
    SendDatagram,
    VtepCounters,
)
from pyvxlan.core.vtep import Vtep

__all__ = ["MemoryVtep"]

_ACTIONS = (SendDatagram, DeliverFrame, JoinGroup, LeaveGroup)


class MemoryVtep:
    """A :class:`~pyvxlan.VtepControl` over a :class:`~pyvxlan.Vtep`, with time from ``clock``.

    ``on_actions`` receives the actions a control call caused (``up`` -> :class:`~pyvxlan.JoinGroup`,
    say); without it they accumulate in :attr:`pending_actions`.
    """

    # Slots: a simulated lab keeps one adapter per device (10,000 of them) for its whole life.
    __slots__ = ("_clock", "_on_actions", "_subscribers", "_vtep", "pending_actions")

    def __init__(
        self,
        vtep: Vtep,
        *,
        clock: Callable[[], float] | None = None,
        on_actions: Callable[[list[Action]], None] | None = None,
    ) -> None:
        self._vtep = vtep
        self._clock = clock if clock is not None else (lambda: vtep.now)
        self._on_actions = on_actions
        self._subscribers: list[trio.MemorySendChannel[Notification]] = []
        self.pending_actions: list[Action] = []

    @property
    def vtep(self) -> Vtep:
        """The core this adapter drives."""
        return self._vtep

    @property
    def config(self) -> VtepConfig:
        return self._vtep.config

    # --- routing outputs --------------------------------------------------------------------------

    def dispatch(self, outputs: Iterable[Output]) -> list[Action]:
        """Publish the notifications among ``outputs`` to the subscribers; return the actions."""
        actions: list[Action] = []
        subscribers = self._subscribers
        for out in outputs:
            if isinstance(out, _ACTIONS):
                actions.append(out)
            else:
                for channel in subscribers:
                    channel.send_nowait(out)
        return actions

    def _pump(self) -> None:
        actions = self.dispatch(self._vtep.take_outputs())
        if not actions:
            return
        if self._on_actions is not None:
            self._on_actions(actions)
        else:
            self.pending_actions.extend(actions)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Notification]]:
        """The notifications emitted while the context is open, as an async iterator."""
        send, receive = trio.open_memory_channel[Notification](math.inf)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.remove(send)
            send.close()

    # --- VtepControl ------------------------------------------------------------------------------

    async def fdb_add(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.fdb_add(
            mac,
            dst,
            port=port,
            vni=vni,
            state=state,
            extern_learn=extern_learn,
            router=router,
            interface=interface,
            src_vni=src_vni,
            now=self._clock(),
        )
        self._pump()

    async def fdb_append(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.fdb_append(
            mac,
            dst,
            port=port,
            vni=vni,
            state=state,
            extern_learn=extern_learn,
            router=router,
            interface=interface,
            src_vni=src_vni,
            now=self._clock(),
        )
        self._pump()

    async def fdb_append_many(self, entries: Sequence[FdbEntry]) -> None:
        await trio.lowlevel.checkpoint()
        try:
            self._vtep.fdb_append_many(entries, now=self._clock())
        finally:
            self._pump()

    async def fdb_replace(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.fdb_replace(
            mac,
            dst,
            port=port,
            vni=vni,
            state=state,
            extern_learn=extern_learn,
            router=router,
            interface=interface,
            src_vni=src_vni,
            now=self._clock(),
        )
        self._pump()

    async def fdb_del(
        self,
        mac: str,
        dst: str | None = None,
        *,
        port: int | None = None,
        vni: int | None = None,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.fdb_del(mac, dst, port=port, vni=vni, interface=interface, src_vni=src_vni, now=self._clock())
        self._pump()

    async def fdb(self) -> list[FdbEntry]:
        await trio.lowlevel.checkpoint()
        return self._vtep.fdb_dump(now=self._clock())

    async def neigh_add(self, ip: str, mac: str) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.neigh_add(ip, mac, now=self._clock())

    async def neigh_del(self, ip: str) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.neigh_del(ip, now=self._clock())

    async def neighbours(self) -> list[Neighbour]:
        await trio.lowlevel.checkpoint()
        return self._vtep.neighbours(now=self._clock())

    async def set_learning(self, on: bool) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.set_learning(on, now=self._clock())

    async def set_ageing(self, seconds: float) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.set_ageing(seconds, now=self._clock())
        self._pump()

    async def set_remote(self, address: str | None, *, dev: str | None = None) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.set_remote(address, dev=dev, now=self._clock())
        self._pump()

    async def up(self) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.up(self._clock())
        self._pump()

    async def down(self) -> None:
        await trio.lowlevel.checkpoint()
        self._vtep.down(self._clock())
        self._pump()

    async def is_up(self) -> bool:
        await trio.lowlevel.checkpoint()
        return self._vtep.is_up

    async def counters(self) -> VtepCounters:
        await trio.lowlevel.checkpoint()
        return self._vtep.counters()
