"""Progress of a long ``pyvxlan run`` or ``pyvxlan demo`` on stderr, only on a terminal.

The line is written by a thread that only reads the lab's counters, on the wall clock: nothing in
the trio run (whose virtual clock jumps to the next timer) waits for it or is woken by it, so a
run with progress makes the same events, captures and results as one without.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["PROGRESS_AFTER", "Progress"]

#: Seconds of wall time before the first progress line: a short run prints none.
PROGRESS_AFTER = 2.0
# How often the line is rewritten.
_PERIOD = 0.25


def _after() -> float:
    # The tests shorten the wait rather than run a scenario for seconds.
    try:
        return float(os.environ.get("PYVXLAN_PROGRESS_AFTER", PROGRESS_AFTER))
    except ValueError:
        return PROGRESS_AFTER


class Progress:
    """``[3/12] 41.000s virtual, 1234 deliveries: ping from=a to=b`` rewritten in place.

    ``status`` returns the current line without the step counter (called from the thread: it must
    only read). Nothing is shown when ``stream`` is not a terminal or the run ends within
    :data:`PROGRESS_AFTER` seconds.
    """

    def __init__(self, total: int, status: Callable[[], str], stream: TextIO | None = None) -> None:
        self.total = total
        self.index = 0
        self.text = ""
        self._status = status
        self._stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._lock = threading.Lock()  # the line and the results printed above it do not mix
        self._shown = False
        self._thread: threading.Thread | None = None
        try:
            self.enabled = self._stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False

    def start(self) -> None:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="pyvxlan-progress", daemon=True)
            self._thread.start()

    def step(self, index: int, text: str) -> None:
        """The step now running (0-based ``index``)."""
        self.index, self.text = index, text

    def above(self, print_it: Callable[[], None]) -> None:
        """Run ``print_it`` (which prints a result) with the progress line out of its way."""
        with self._lock:
            self._erase()
            print_it()

    def stop(self) -> None:
        """Stop and erase the line."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with self._lock:
            self._erase()

    def _erase(self) -> None:
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def _loop(self) -> None:
        if self._stop.wait(_after()):
            return
        while not self._stop.is_set():
            try:
                line = f"[{self.index + 1}/{self.total}] {self._status()}: {self.text}"
            except Exception:  # a counter read mid-update: skip this tick
                line = ""
            if line:
                with self._lock:
                    self._write(f"\r\x1b[K{line[:100]}")
                    self._shown = True
            self._stop.wait(_PERIOD)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self.enabled = False


def wall_clock() -> Callable[[], float]:
    """Seconds since this call, for the kernel backend's status."""
    start = time.monotonic()
    return lambda: time.monotonic() - start
