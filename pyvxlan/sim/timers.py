"""Each device's timer: the core says when it next needs the time (``next_timer()``, aioquic's
``get_timer()``), the lab runs ``handle_timer`` then, and ageing happens in the core.

One scheduler event per device at a time: a device's timer is re-armed only when the core's next
time comes before the one armed (``timer_at``); a superseded event finds another time there and does
nothing. Not armed at all (``inf``) until the core has something that expires: a lab of 10,000
devices with nothing learned queues no timer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pyvxlan.sim.device import SimDevice
from pyvxlan.sim.scheduler import Scheduler

__all__ = ["DeviceTimers"]


class DeviceTimers:
    """Arms and fires the devices' timers on ``sched``; ``output(dev, out)`` carries out what a
    timer's ``handle_timer`` emitted (expired entries)."""

    __slots__ = ("_output", "_sched")

    def __init__(self, sched: Scheduler, output: Callable[[SimDevice, Any], None]) -> None:
        self._sched = sched
        self._output = output

    def arm(self, dev: SimDevice) -> None:
        """Arm ``dev``'s timer for the core's next timer, when that is earlier than the one armed."""
        when = dev.vtep.next_timer()
        if when is not None and when < dev.timer_at:
            dev.timer_at = when
            # Not before now: a control call can move an expiry into the past (set_ageing).
            self._sched.call_at(max(when, self._sched.now), dev.host.source, self._fire, dev, when)

    def _fire(self, dev: SimDevice, when: float) -> None:
        if dev.timer_at != when:
            return  # superseded by an earlier timer
        dev.timer_at = math.inf
        vtep = dev.vtep
        vtep.handle_timer(self._sched.time)
        output = self._output
        for out in vtep.take_outputs():
            output(dev, out)
        self.arm(dev)
