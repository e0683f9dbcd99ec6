"""What a lab offers, simulated (``pyvxlan.sim.open_lab``) or real (``pyvxlan.kernel.open_lab``).

Both realize one :mod:`pyvxlan.lab.topology` description, so a scenario (and ``pyvxlan demo``) runs the
same way on either: :class:`Lab` is every method they share, :class:`SimulatedLab` what only the
simulator adds (link profiles, its own counters and event log). A lookup of a name the lab does not
have raises :class:`~pyvxlan.errors.LabKeyError` (a ``KeyError`` too), made by :func:`lab_key_error`
in both labs so they say the same.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from pyvxlan.core.control import VtepControl
from pyvxlan.core.entries import FdbEntry, Neighbour
from pyvxlan.errors import LabKeyError

if TYPE_CHECKING:  # the topology's lookups use lab_key_error: no import cycle at run time
    from pyvxlan.lab.topology import LinkProfile, Topology

__all__ = ["LISTED_NAMES", "Guest", "Lab", "LabEvent", "PingResult", "SimulatedLab", "lab_key_error"]


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


#: A lookup error lists the names a lab has when there are at most this many (a lab of thousands
#: would print a page).
LISTED_NAMES: Final = 20


def lab_key_error(what: str, name: object, known: Iterable[object]) -> LabKeyError:
    """The :class:`~pyvxlan.errors.LabKeyError` for a lookup of ``name`` among ``known`` (listed
    when there are at most :data:`LISTED_NAMES`).

    >>> str(lab_key_error("guest", "g9", ["g1", "g2"]))
    "no guest 'g9' (there are: g1, g2)"
    >>> str(lab_key_error("host", "h0", (f"h{i}" for i in range(1, 30))))
    "no host 'h0'"
    """
    listed = [str(n) for n in known]
    return LabKeyError(what, name, listed if len(listed) <= LISTED_NAMES else None)


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


@runtime_checkable
class Lab(Protocol):
    """A running topology: its VTEPs and guests, its clock, and the faults a scenario injects.

    Lookups of a host, guest or device the topology does not have raise
    :class:`~pyvxlan.errors.LabKeyError`.
    """

    @property
    def topology(self) -> Topology:
        """The topology the lab was built from (guests where they started)."""
        ...

    # --- lookups -------------------------------------------------------------------------------

    def vtep(self, host: str, vni: int) -> VtepControl:
        """The vxlan device with ``vni`` on ``host``."""
        ...

    def guest(self, name: str) -> Guest:
        """The guest called ``name``."""
        ...

    def guest_host(self, name: str) -> str:
        """The host a guest is attached to now."""
        ...

    # --- time ----------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Seconds since the lab opened (virtual in the simulator)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass on the lab's clock."""
        ...

    # --- reading state -------------------------------------------------------------------------

    def fdb(self, host: str, vni: int) -> list[FdbEntry]:
        """``bridge fdb show dev DEV`` of a device, read at once."""
        ...

    def fdb_lines(self, host: str, vni: int) -> list[str]:
        """The same in ``bridge fdb show`` form."""
        ...

    async def neighbours(self, host: str, vni: int) -> list[Neighbour]:
        """The neighbour entries ``host`` answers ARP/ND from for ``vni`` (proxy ARP/ND, or the
        bridge's ARP/ND suppression): the vxlan device's permanent entries, or in evpn mode the
        ones FRR's zebra puts on the device's bridge (where the kernel lab's suppression is)."""
        ...

    def capture(self, path: str, *, guest: str | None = None) -> None:
        """Record every underlay packet (or, with ``guest``, every frame on that guest's link) from
        now until the lab closes into a pcap at ``path``."""
        ...

    # --- faults and changes --------------------------------------------------------------------

    def link_down(self, host: str) -> None:
        """Take ``host``'s underlay link down."""
        ...

    def link_up(self, host: str) -> None:
        """Bring ``host``'s underlay link back up."""
        ...

    def partition(self, *sides: Iterable[str]) -> None:
        """Split the hosts into ``sides`` (lists of host names); the rest form one more side."""
        ...

    def heal(self) -> None:
        """End a partition."""
        ...

    async def vtep_down(self, host: str, vni: int) -> None:
        """``ip link set DEV down`` (leaves the group, flushes learned entries)."""
        ...

    async def vtep_up(self, host: str, vni: int) -> None:
        """``ip link set DEV up`` (joins the group again)."""
        ...

    async def move_guest(self, name: str, host: str) -> None:
        """Move a guest to ``host``'s bridge (a live migration, with a gratuitous ARP); in
        controller mode the controller reprograms the VTEPs (:func:`pyvxlan.lab.controller.attach_ops`)."""
        ...


class LabEvent(Protocol):
    """One entry of a simulated lab's event log, as a scenario reads it."""

    @property
    def kind(self) -> enum.Enum: ...

    @property
    def where(self) -> str: ...

    @property
    def detail(self) -> str: ...


@runtime_checkable
class SimulatedLab(Lab, Protocol):
    """A :class:`Lab` in the simulator, which also shapes links and keeps its own totals."""

    def set_link(self, host: str, profile: LinkProfile) -> None:
        """Give ``host``'s underlay link delay, jitter, loss, duplication or reordering."""
        ...

    def stats(self) -> Any:
        """The underlay's and VTEPs' totals since the lab opened (fields named as
        :data:`pyvxlan.lab.scenario.COUNTERS`)."""
        ...

    @property
    def event_counts(self) -> Mapping[Any, int]:
        """How many events of each kind happened (every one, kept or not)."""
        ...

    @property
    def events(self) -> Iterable[LabEvent]:
        """The events kept."""
        ...
