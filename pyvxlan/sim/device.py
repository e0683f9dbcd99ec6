"""The simulated hosts and their vxlan devices: what a lab is built of.

A :class:`SimHost` is one underlay address with its devices; a :class:`SimDevice` is one vxlan
device on it: the :class:`~pyvxlan.Vtep` core, its :class:`SimVtep` control adapter and the
:class:`~pyvxlan.sim.bridge.Bridge` the device is a port of. What the device's core emits is carried
out by the lab's data path (:mod:`pyvxlan.sim.datapath`); these classes only hold the wiring.

A 10,000-host lab keeps 10,000 of each for its whole life: they are slotted classes (no instance
dict for the garbage collector to walk), and the device's callbacks are its own bound methods
rather than closures.
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.events import Action, Notification
from pyvxlan.core.fdb import RemotePool
from pyvxlan.core.vtep import Vtep
from pyvxlan.sim.bridge import Bridge
from pyvxlan.sim.guest import SimGuest
from pyvxlan.sim.memory import MemoryVtep
from pyvxlan.sim.scheduler import Scheduler

__all__ = ["DeviceEvents", "SimDevice", "SimHost", "SimVtep"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _rearming(
    method: Callable[Concatenate[MemoryVtep, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[SimVtep, _P], Coroutine[Any, Any, _R]]:
    """``method``, after which the lab re-arms the device's timer from the core's ``next_timer()``
    (as Linux's ``vxlan_changelink`` re-arms its ageing timer). Also when the call fails: a
    refused call may still have changed an entry (``bridge fdb replace`` on the all-zeros entry
    does in Linux)."""

    @functools.wraps(method)
    async def call(self: SimVtep, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        finally:
            self.changed()

    return call


class SimVtep(MemoryVtep):
    """The :class:`~pyvxlan.VtepControl` of a simulated device: :class:`~pyvxlan.sim.memory.MemoryVtep`
    on the lab's virtual clock, which also tells the lab whether anyone listens, so that a large
    lab does not publish millions of notifications to nobody, and re-arms the device's timer after
    every control call."""

    __slots__ = ("_on_change", "_on_listen", "listeners")

    def __init__(
        self,
        vtep: Vtep,
        *,
        clock: Callable[[], float],
        on_actions: Callable[[list[Action]], None],
        on_listen: Callable[[int], None] = lambda _delta: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(vtep, clock=clock, on_actions=on_actions)
        self.listeners = 0
        self._on_listen = on_listen
        self._on_change = on_change

    def changed(self) -> None:
        """Tell the lab that a control call may have moved the core's next timer."""
        self._on_change()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Notification]]:
        """The notifications emitted while the context is open, as an async iterator."""
        self.listeners += 1
        self._on_listen(1)
        try:
            async with super().subscribe() as stream:
                yield stream
        finally:
            self.listeners -= 1
            self._on_listen(-1)

    # Every call that can change the core's next timer (an entry's expiry, the ageing time, the
    # device's state). ``test_every_control_call_rearms`` holds this list to VtepControl's.
    fdb_add = _rearming(MemoryVtep.fdb_add)
    fdb_append = _rearming(MemoryVtep.fdb_append)
    fdb_append_many = _rearming(MemoryVtep.fdb_append_many)
    fdb_replace = _rearming(MemoryVtep.fdb_replace)
    fdb_del = _rearming(MemoryVtep.fdb_del)
    neigh_add = _rearming(MemoryVtep.neigh_add)
    neigh_del = _rearming(MemoryVtep.neigh_del)
    set_learning = _rearming(MemoryVtep.set_learning)
    set_ageing = _rearming(MemoryVtep.set_ageing)
    set_remote = _rearming(MemoryVtep.set_remote)
    up = _rearming(MemoryVtep.up)
    down = _rearming(MemoryVtep.down)


class DeviceEvents(Protocol):
    """What a device tells the lab: the actions its control calls caused, a possibly moved timer,
    and subscribers coming and going (implemented by :class:`~pyvxlan.sim.datapath.DataPath`)."""

    def carry_out(self, dev: SimDevice, actions: list[Action]) -> None: ...

    def arm_timer(self, dev: SimDevice) -> None: ...

    def count_listeners(self, delta: int) -> None: ...

    def transmit(self, dev: SimDevice, frame: bytes) -> None: ...


class SimDevice:
    """One vxlan device on a simulated host: its core, control adapter and bridge.

    ``timer_at`` is the time of the device's armed timer (``inf``: none); ``lone`` the guest that
    is the bridge's only port besides the device, when there is one (set by the lab as guests come
    and go): a flood its NIC refuses need not be handed to it.
    """

    __slots__ = ("_events", "bridge", "control", "host", "label", "lone", "port_name", "timer_at", "vtep")

    def __init__(
        self,
        host: SimHost,
        config: VtepConfig,
        bridge: Bridge,
        sched: Scheduler,
        events: DeviceEvents,
        *,
        clock: Callable[[], float],
        pool: RemotePool | None = None,
    ) -> None:
        self.host = host
        self._events = events
        self.vtep = Vtep(config, now=sched.now, pool=pool)
        self.control = SimVtep(
            self.vtep,
            clock=clock,
            on_actions=self._carry_out,
            on_listen=events.count_listeners,
            on_change=self._changed,
        )
        self.bridge = bridge
        self.label = f"{host.name}/{config.name}"
        self.port_name = config.name
        self.timer_at = math.inf
        self.lone: SimGuest | None = None
        bridge.attach(config.name, self.transmit)

    def transmit(self, frame: bytes) -> None:
        """A frame leaves the bridge through the device: the core encapsulates it."""
        self._events.transmit(self, frame)

    def _carry_out(self, actions: list[Action]) -> None:
        self._events.carry_out(self, actions)

    def _changed(self) -> None:
        self._events.arm_timer(self)


class SimHost:
    """A simulated host: an underlay address and its vxlan devices.

    ``source`` is the host's stable id in the scheduler's order; ``by_vni`` finds a device as
    Linux's ``vxlan_vs_find_vni`` does, by (UDP destination port, the header's 3 VNI bytes).
    """

    __slots__ = ("address", "by_vni", "devices", "name", "source")

    def __init__(self, name: str, address: str, source: int) -> None:
        self.name = name
        self.address = address
        self.source = source
        self.devices: dict[int, SimDevice] = {}
        self.by_vni: dict[tuple[int, bytes], SimDevice] = {}

    def add(self, dev: SimDevice) -> None:
        """Give the host ``dev`` (a device per VNI)."""
        config = dev.vtep.config
        self.devices[config.vni] = dev
        self.by_vni[(config.dst_port, config.vni.to_bytes(3, "big"))] = dev
