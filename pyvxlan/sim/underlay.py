"""The simulated underlay: one IP subnet joining the hosts, with unicast and multicast delivery.

Each host has one link to the underlay with a :class:`LinkProfile` (latency, jitter, loss,
duplication, reordering); a datagram from A to B takes A's latency plus B's. Multicast reaches
exactly the hosts that joined the group (joins and leaves come from the VTEP cores' actions),
never the sender (Linux's vxlan socket clears ``IP_MULTICAST_LOOP``). An outer packet larger than
the underlay MTU is dropped (``mtu``): Linux never sends one, as its bridge does not forward a
frame larger than the vxlan device's MTU (the underlay's minus the overhead), and the simulated
guests have no MTU of their own. Links can go down and the hosts can be partitioned.
Every datagram copy that does not arrive is reported to ``drop`` with a reason.

Speed matters here: a broadcast in a flood-and-learn lab of 10,000 VTEPs is one datagram with
9,999 receivers. The datagram is handed to all of them as the same bytes object, and when no
link is impaired all copies arrive in one scheduler event. The unicast copies of one datagram
that head-end replication makes (:meth:`SimUnderlay.send_many`) travel the same way.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable

from pyvxlan.errors import LabKeyError
from pyvxlan.lab.topology import LinkProfile
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.wire.addr import ip_info

__all__ = ["Endpoint", "LinkProfile", "Outer", "SimUnderlay"]


_DEFAULT_LINK = LinkProfile()

# The outer header fields a receiving core reads besides addresses and ports, (TOS or traffic
# class, UDP checksum zero), for a datagram that does not have the usual (0, False): None then,
# so that the common datagram carries nothing more.
Outer = tuple[int, bool]
# A receiving host: (stable source id, address).
Endpoint = tuple[int, str]
# Hands one datagram to hosts (receivers, payload, src, src_port, dst_port, outer), skipping the
# sender; returns how many hosts it delivered to.
Deliver = Callable[[list[Endpoint], bytes, str, int, int, "Outer | None"], int]


def _source_of(ep: Endpoint) -> int:
    return ep[0]


class SimUnderlay:
    """Delivers datagrams between registered endpoints in virtual time."""

    def __init__(
        self,
        sched: Scheduler,
        rng: random.Random,
        *,
        mtu: int,
        ip_version: int,
        ledger: Ledger,
        drop: Callable[[str, str, int], None],
        deliver: Deliver,
    ) -> None:
        self._sched = sched
        self._rng = rng
        self.mtu = mtu
        self.ip_header = 20 if ip_version == 4 else 40
        self._ledger = ledger
        self._drop = drop  # (reason, detail, copies): ends that many copies in the ledger
        self._deliver_to = deliver  # all receivers of a datagram at once (the lab's data path)
        self._endpoints: dict[str, Endpoint] = {}
        self._links: dict[str, LinkProfile] = {}
        self._down: set[str] = set()
        self._side: dict[str, int] = {}  # partition: address -> side; empty when not partitioned
        self._groups: dict[str, dict[str, int]] = {}  # group -> {member address: joins}
        self._members: dict[str, list[Endpoint]] = {}  # group -> sorted receivers (rebuilt on change)
        self._impaired = False
        self._latency: float | None = LinkProfile().latency  # the one latency when all links share it
        self.datagrams = 0
        self.deliveries = 0
        self.bytes = 0
        self.multicast_datagrams = 0
        self.flood_datagrams = 0  # datagrams carrying broadcast or multicast frames (floods)

    # --- topology -----------------------------------------------------------------------------------

    def attach(self, source: int, address: str) -> None:
        """Connect a host (``source`` is its stable id) with the default :class:`LinkProfile`."""
        self._endpoints[address] = (source, address)
        self._links[address] = _DEFAULT_LINK
        if self._latency != _DEFAULT_LINK.latency:
            self._refresh()  # only when some link differs: attaching 10,000 hosts stays linear

    def set_link(self, address: str, profile: LinkProfile) -> None:
        """Change one host's link profile."""
        self._links[self._known(address)] = profile
        self._refresh()

    def link_profile(self, address: str) -> LinkProfile:
        return self._links[self._known(address)]

    def set_link_up(self, address: str, up: bool) -> None:
        """Take a host's link down (every datagram to or from it is dropped) or up again."""
        if up:
            self._down.discard(self._known(address))
        else:
            self._down.add(self._known(address))
        self._refresh()

    def partition(self, *sides: list[str]) -> None:
        """Split the hosts: datagrams cross no boundary; hosts not named form one more side."""
        self._side = {}
        for i, side in enumerate(sides, start=1):
            for address in side:
                self._side[self._known(address)] = i
        self._refresh()

    def heal(self) -> None:
        """End the partition."""
        self._side = {}
        self._refresh()

    def _known(self, address: str) -> str:
        text = ip_info(address, "address").text
        if text not in self._endpoints:
            raise LabKeyError("host with underlay address", text)
        return text

    def _refresh(self) -> None:
        latencies = {p.latency for p in self._links.values()}
        self._latency = latencies.pop() if len(latencies) == 1 else None
        self._impaired = bool(self._down or self._side or any(p.impaired for p in self._links.values()))

    # --- multicast membership -------------------------------------------------------------------------

    def join(self, group: str, address: str) -> None:
        members = self._groups.setdefault(group, {})
        members[address] = members.get(address, 0) + 1
        self._rebuild(group)

    def leave(self, group: str, address: str) -> None:
        members = self._groups.get(group, {})
        if address in members:
            members[address] -= 1
            if not members[address]:
                del members[address]
        self._rebuild(group)

    def members(self, group: str) -> list[str]:
        """The addresses that joined ``group``, in attach order."""
        return [ep[1] for ep in self._members.get(group, [])]

    def _rebuild(self, group: str) -> None:
        joined = self._groups.get(group, {})
        old = self._members.get(group, [])
        # A new list each time: datagrams in flight keep the membership they were sent with.
        # Joins and leaves change one member, so patch the sorted list instead of sorting again.
        if len(joined) == len(old) + 1:
            new = list(old)  # the member that just joined is the newest key of ``joined``
            bisect.insort(new, self._endpoints[next(reversed(joined))], key=_source_of)
            self._members[group] = new
        elif len(joined) == len(old):
            return  # a second join (or one leave of two) by the same host
        else:
            self._members[group] = sorted((self._endpoints[a] for a in joined), key=_source_of)

    # --- sending --------------------------------------------------------------------------------------

    def send(  # noqa: PLR0917 - hot path, called per datagram
        self, src: str, dst: str, src_port: int, dst_port: int, ttl: int, payload: bytes, outer: Outer | None = None
    ) -> None:
        """Put one datagram on the wire from ``src`` (a host's address) to ``dst``."""
        size = self.ip_header + 8 + len(payload)
        self.datagrams += 1
        self.bytes += size
        if len(payload) > 8 and payload[8] & 1:
            self.flood_datagrams += 1
        if size > self.mtu:
            self._drop("mtu", f"{size} bytes > mtu {self.mtu}", 1)
            return
        group = self._members.get(dst)
        if group is not None or ip_info(dst).is_multicast:
            self.multicast_datagrams += 1
            receivers = group or []
            count = len(receivers) - (src in self._groups.get(dst, ()))
            if not count:
                self._drop("no_receivers", f"no member of {dst}", 1)
                return
            if self._impaired or self._latency is None:
                receivers = [ep for ep in receivers if ep[1] != src]
        else:
            ep = self._endpoints.get(dst)
            if ep is None:
                self._drop("unreachable", f"no host has address {dst}", 1)
                return
            receivers = [ep]
            count = 1
        sched = self._sched
        source = self._endpoints[src][0] if src in self._endpoints else 0
        self._ledger.created += count - 1  # one copy per receiver from here on
        if not self._impaired and self._latency is not None:
            # The group's own member list goes out as it is (the sender, if a member, is skipped
            # on delivery): the lab caches its per-list work for the next flood to the group.
            sched.call_later(
                2 * self._latency, source, self._deliver, receivers, src, src_port, dst_port, payload, outer
            )
            return
        self._send_impaired(source, src, receivers, src_port, dst_port, payload, outer)

    def send_many(  # noqa: PLR0917 - send's fields
        self,
        src: str,
        dsts: list[str],
        src_port: int,
        dst_port: int,
        ttl: int,
        payload: bytes,
        outer: Outer | None = None,
    ) -> None:
        """:meth:`send` to each of ``dsts``: the copies of one datagram that head-end replication
        makes. When every copy would take the same time (unimpaired links, one latency) to a
        known unicast host, they travel as one scheduler event; else each is sent on its own."""
        size = self.ip_header + 8 + len(payload)
        eps = self._endpoints
        if self._impaired or self._latency is None or size > self.mtu or any(d not in eps for d in dsts):
            for dst in dsts:
                self.send(src, dst, src_port, dst_port, ttl, payload, outer)
            return
        n = len(dsts)
        self.datagrams += n
        self.bytes += size * n
        if len(payload) > 8 and payload[8] & 1:
            self.flood_datagrams += n
        source = eps[src][0] if src in eps else 0
        receivers = [eps[dst] for dst in dsts]
        self._sched.call_later(
            2 * self._latency, source, self._deliver, receivers, src, src_port, dst_port, payload, outer
        )

    def _send_impaired(  # noqa: PLR0917 - the same fields as send
        self,
        source: int,
        src: str,
        receivers: list[Endpoint],
        src_port: int,
        dst_port: int,
        payload: bytes,
        outer: Outer | None,
    ) -> None:
        rng = self._rng
        sched = self._sched
        out = self._links[src]
        if src in self._down:
            self._drop("link_down", f"{src}'s link is down", len(receivers))
            return
        side = self._side.get(src, 0)
        buckets: dict[float, list[Endpoint]] = {}
        for ep in receivers:
            addr = ep[1]
            if addr in self._down:
                self._drop("link_down", f"{addr}'s link is down", 1)
                continue
            if self._side and self._side.get(addr, 0) != side:
                self._drop("partition", f"{src} and {addr} are partitioned", 1)
                continue
            inp = self._links[addr]
            copies = 1
            loss = out.loss + inp.loss - out.loss * inp.loss
            if loss and rng.random() < loss:
                self._drop("loss", f"lost between {src} and {addr}", 1)
                continue
            dup = max(out.duplicate, inp.duplicate)
            if dup and rng.random() < dup:
                copies = 2
            for _ in range(copies):
                delay = out.latency + inp.latency
                jitter = out.jitter + inp.jitter
                if jitter:
                    delay += rng.uniform(0.0, jitter)
                reorder = max(out.reorder, inp.reorder)
                if reorder and rng.random() < reorder:
                    delay += max(out.reorder_delay, inp.reorder_delay)
                buckets.setdefault(delay, []).append(ep)
            if copies == 2:
                self._ledger.created += 1
        for delay, eps in buckets.items():
            sched.call_later(delay, source, self._deliver, eps, src, src_port, dst_port, payload, outer)

    def _deliver(  # noqa: PLR0917 - send's fields
        self, receivers: list[Endpoint], src: str, src_port: int, dst_port: int, payload: bytes, outer: Outer | None
    ) -> None:
        """Hand a datagram to ``receivers``, except its sender (multicast loop is off)."""
        self.deliveries += self._deliver_to(receivers, payload, src, src_port, dst_port, outer)
