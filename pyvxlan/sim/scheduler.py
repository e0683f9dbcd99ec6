"""The simulator's own event queue, run in trio's virtual time.

trio shuffles ready tasks on purpose, so two things that happen at the same virtual instant would
run in a random order if each were a trio task. Here they are not: every event of the simulated
world (a datagram arriving, a timer, a guest's retry) is one heap entry ordered by
``(time, source, seq)``, where ``source`` is a stable id (a host's or guest's position in the
topology) and ``seq`` a counter of the scheduler. One trio task pops the entries and calls the
handlers synchronously, so the order, and everything that follows from it, is the same on every
run.

User code (``await guest.ping(...)``, ``await lab.sleep(...)``) runs in ordinary trio tasks. It is
woken only by events of this queue (:meth:`Scheduler.wake`), and the scheduler waits for every
other task to block again (``trio.testing.wait_all_tasks_blocked``) before it runs the next event,
so user code also runs at a fixed point of the sequence. When an instant woke nobody, no other
task can run and no trio deadline comes before the next event, the scheduler moves the clock to
that event itself, without a round trip through trio's run loop.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

__all__ = ["Scheduler"]

# Entries are plain tuples rather than dataclasses: the heap compares them millions of times in a
# large lab, and a tuple compares in C. ``seq`` is unique, so the handler is never compared.
_Entry = tuple[float, int, int, Callable[..., None], tuple[Any, ...]]


class Scheduler:
    """A deterministic discrete-event queue driven by trio's clock.

    Times are virtual seconds since the lab opened (``now``). ``call_at`` and ``call_later``
    schedule a handler; :meth:`run` (started by the lab in its nursery) executes them in order.
    """

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = 0
        self._t0 = trio.current_time()
        self.time = 0.0  # the time of the event being run (read it in handlers: it is cheap)
        self._sleep_target = math.inf
        self._sleep_scope: trio.CancelScope | None = None
        self._woke = False
        self.events_run = 0

    @property
    def now(self) -> float:
        """The current virtual time in seconds since the lab opened."""
        # User tasks woken by trio's own timers (a plain trio.sleep) may run between events.
        return max(self.time, trio.current_time() - self._t0)

    def call_at(self, when: float, source: int, handler: Callable[..., None], *args: Any) -> None:
        """Run ``handler(*args)`` at virtual time ``when`` (not earlier than now)."""
        self._seq += 1
        heapq.heappush(self._heap, (when, source, self._seq, handler, args))
        if when < self._sleep_target and self._sleep_scope is not None:
            self._sleep_scope.cancel()

    def call_later(self, delay: float, source: int, handler: Callable[..., None], *args: Any) -> None:
        """Run ``handler(*args)`` ``delay`` seconds from now."""
        self.call_at(self.now + delay, source, handler, *args)

    def wake(self, event: trio.Event) -> None:
        """Set ``event``; from a handler, the task it wakes runs before the next event. Correct
        outside a handler too (a trio task of the same run): the event is set, and the flag that
        stops the current instant early is cleared before the next instant runs."""
        event.set()
        self._woke = True

    def pending(self) -> int:
        """How many events are queued."""
        return len(self._heap)

    async def run(self) -> None:
        """Execute events for ever (until cancelled), sleeping in trio time between them."""
        heap = self._heap
        pop = heapq.heappop
        while True:
            # Let user tasks that something woke (trio timers included) run and block first.
            await trio.testing.wait_all_tasks_blocked()
            if not heap:
                await self._sleep_until(math.inf)
                continue
            when = heap[0][0]
            due = when <= self.time or when + self._t0 <= trio.current_time()
            if not due and not await self._sleep_until(when):
                continue  # an earlier event arrived, or user code ran: look again
            self._woke = False
            skips = 0
            while True:
                # Run every event due at this instant, stopping early when one woke user code so
                # that the user's reaction comes before the rest.
                while heap and heap[0][0] <= when:
                    entry = pop(heap)
                    if entry[0] > self.time:  # noqa: PLR1730 - cheaper than max() per event
                        self.time = entry[0]
                    self.events_run += 1
                    entry[3](*entry[4])
                    if self._woke:
                        break
                # A checkpoint now and then all the same, so that Ctrl-C and cancellation get in.
                skips += 1
                if self._woke or not heap or skips > 1000 or not self._skip_to(heap[0][0]):
                    break
                when = heap[0][0]

    def _skip_to(self, when: float) -> bool:
        """Move trio's clock to ``when`` at once, when nothing else could happen before: no other
        task can run and no trio deadline (a user's ``trio.sleep``, a timeout) comes first. The
        next instant then runs without a round trip through trio's run loop (most instants of a
        lab wake no user code); the order of everything stays the one the queue gives."""
        stats = trio.lowlevel.current_statistics()
        if stats.tasks_runnable or stats.run_sync_soon_queue_size:
            return False
        gap = self._t0 + when - trio.current_time()
        if gap <= 0.0:
            return True
        if stats.seconds_to_next_deadline <= gap:
            return False
        clock = trio.lowlevel.current_clock()
        if not isinstance(clock, trio.testing.MockClock):
            return False
        clock.jump(gap)
        return True

    async def _sleep_until(self, when: float) -> bool:
        """Sleep until ``when``; False when :meth:`call_at` cut the sleep short."""
        with trio.CancelScope() as scope:
            self._sleep_scope = scope
            self._sleep_target = when
            try:
                if when == math.inf:
                    await trio.sleep_forever()
                else:
                    await trio.sleep_until(self._t0 + when)
            finally:
                self._sleep_scope = None
                self._sleep_target = math.inf
        return not scope.cancelled_caught
