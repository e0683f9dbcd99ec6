"""What a lab offers, simulated (``pyvxlan.sim.open_lab``) or real (``pyvxlan.kernel.open_lab``).

Both realize one :mod:`pyvxlan.lab.topology` description, so a scenario (and ``pyvxlan demo``) runs the
same way on either: this module is the shape they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pyvxlan.core.control import VtepControl

__all__ = ["Guest", "Lab", "PingResult"]


@dataclass(frozen=True, slots=True)
class PingResult:
    """The outcome of ``Guest.ping``: packets sent and answered, and each answer's round trip."""

    sent: int
    received: int
    rtts: tuple[float, ...] = ()  # seconds, one per reply, in order

    @property
    def loss(self) -> float:
        """The fraction of echo requests that got no reply (0.0 to 1.0)."""
        return 1.0 - self.received / self.sent if self.sent else 0.0


class Guest(Protocol):
    """A machine attached to a host's bridge, with one overlay address."""

    @property
    def name(self) -> str: ...

    @property
    def mac(self) -> str: ...

    @property
    def ip(self) -> str: ...

    async def ping(self, ip: str, *, count: int = 1, timeout: float = 1.0, interval: float = 1.0) -> PingResult:
        """ICMP (or ICMPv6) echo to ``ip``, resolving it first with ARP (ND)."""
        ...


class Lab(Protocol):
    """A running topology: its VTEPs and guests."""

    def vtep(self, host: str, vni: int) -> VtepControl:
        """The vxlan device with ``vni`` on ``host``; ``KeyError`` when there is none."""
        ...

    def guest(self, name: str) -> Guest:
        """The guest called ``name``; ``KeyError`` when there is none."""
        ...

    def capture(self, path: str) -> None:
        """Record every underlay packet from now until the lab closes into a pcap at ``path``."""
        ...
