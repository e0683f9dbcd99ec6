"""A lab's pcap captures: the underlay's datagrams as Linux puts them on the wire, and guests' frames.

The underlay carries a datagram as the core's payload plus a few outer fields; a capture writes the
whole outer frame the codecs build from them (:func:`~pyvxlan.wire.frame.encapsulate`), with the
IPv4 ID Linux's ``__ip_select_ident`` would give (:mod:`pyvxlan.sim.ipid`), so that the same seed
gives byte-identical captures.
"""

from __future__ import annotations

from collections.abc import Callable

from pyvxlan.core.events import SendDatagram
from pyvxlan.sim.ipid import IpIdents
from pyvxlan.wire.addr import ip_info
from pyvxlan.wire.frame import encapsulate
from pyvxlan.wire.header import VxlanHeader
from pyvxlan.wire.pcap import PcapWriter

__all__ = ["Captures"]


class Captures:
    """Every open capture of a lab, closed with it (:meth:`close`)."""

    __slots__ = ("_clock", "_guests", "_idents", "_writers", "underlay")

    def __init__(self, clock: Callable[[], float], idents: IpIdents) -> None:
        self._clock = clock
        self._idents = idents
        self._writers: list[PcapWriter] = []
        #: The writers of the underlay's traffic (empty: nothing captures it; the hot path tests that).
        self.underlay: list[PcapWriter] = []
        self._guests: dict[str, list[PcapWriter]] = {}

    def open(self, path: str, guest: str | None = None) -> None:
        """Start writing every underlay datagram (or, with ``guest``, every frame on that guest's
        interface, see :meth:`guest_frame`) to a pcap at ``path``."""
        writer = PcapWriter(path)
        self._writers.append(writer)
        if guest is None:
            self.underlay.append(writer)
        else:
            self._guests.setdefault(guest, []).append(writer)

    def datagram(self, act: SendDatagram, src: str, dst: str) -> None:
        """Write the datagram as Linux's ``udp_tunnel_xmit_skb`` puts it on the wire, when it
        leaves ``src`` (so also when the underlay then drops it): the core's TTL, TOS and UDP
        checksum choice, DF clear (``df unset``, the default), an IPv4 ID from the host's
        ``__ip_select_ident`` counter for the destination."""
        payload = act.payload
        src_info, dst_info = ip_info(src), ip_info(dst)
        ip_id = self._idents.take(src_info.packed, dst_info.packed, 17) if src_info.version == 4 else 0
        frame = encapsulate(
            payload[8:],
            header=VxlanHeader.decode(payload[:8]),
            src=src,
            dst=dst,
            src_port=act.src_port,
            dst_port=act.dst_port,
            ttl=act.ttl,
            tos=act.tos,
            df=False,
            ip_id=ip_id,
            udp_checksum=not act.zero_checksum,
        )
        now = self._clock()
        for writer in self.underlay:
            writer.write(frame, now)

    def guest_frame(self, guest: str, frame: bytes, outgoing: bool) -> None:
        """A frame on ``guest``'s interface (a :attr:`~pyvxlan.sim.SimGuest.observe` callback)."""
        now = self._clock()
        for writer in self._guests.get(guest, ()):
            writer.write(frame, now)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()
