"""The simulator: VXLAN labs of many VTEPs in one process, in trio's virtual time.

>>> import trio
>>> from pyvxlan.lab.topology import classic_demo
>>> async def main() -> tuple[int, int]:
...     async with open_lab(classic_demo()) as lab:
...         result = await lab.guest("guest1").ping("203.0.113.2", count=3)
...         return result.sent, result.received
>>> run(main)
(3, 3)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
import trio.testing

from pyvxlan.lab.topology import LinkProfile
from pyvxlan.sim.bridge import Bridge, BridgeEntry
from pyvxlan.sim.device import SimVtep
from pyvxlan.sim.evpn import Convergence, RrTimings
from pyvxlan.sim.guest import SimGuest, UdpSocket
from pyvxlan.sim.lab import KEPT_EVENTS, SimLab, open_lab
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.log import EventKind, LabEvent, LabStats
from pyvxlan.sim.one_vtep import open_vtep

__all__ = [
    "Bridge",
    "BridgeEntry",
    "Convergence",
    "KEPT_EVENTS",
    "EventKind",
    "LabEvent",
    "LabStats",
    "Ledger",
    "LinkProfile",
    "RrTimings",
    "SimGuest",
    "SimLab",
    "SimVtep",
    "UdpSocket",
    "open_lab",
    "open_vtep",
    "run",
]

T = TypeVar("T")


def run(async_fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``trio.run`` with the virtual clock the simulator needs (``MockClock(autojump_threshold=0)``)."""
    return trio.run(async_fn, *args, clock=trio.testing.MockClock(autojump_threshold=0))
