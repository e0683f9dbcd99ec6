"""Where every frame copy ends: the simulator's proof that nothing disappears silently.

A copy is *created* when a guest sends a frame, and again for every extra copy made on the way (a
bridge flooding to three ports makes two more, a multicast datagram with 99 receivers 98 more,
a duplicating link one more). Every copy *ends* exactly once, with a reason: delivered to a guest,
or dropped (``loss``, ``mtu``, ``unknown_vni``, the core's drop reasons, ...). Once the lab is
quiet, ``created == sum(ended.values())``; a difference is a bug in the simulator or the core.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["Ledger"]


class Ledger:
    """Counts of created and ended frame copies (plain attributes: the hot path adds to them)."""

    __slots__ = ("created", "ended")

    def __init__(self) -> None:
        self.created = 0
        self.ended: Counter[str] = Counter()

    def balance(self) -> int:
        """Copies created but not ended: in flight, or lost by a bug (0 when the lab is quiet)."""
        return self.created - sum(self.ended.values())
