"""IPv4 identification values and IPv6 flow labels as Linux gives them, deterministic per seed.

Linux fills the IPv4 ID of an unconnected socket's packets, of ICMP replies and of every
tunnelled (vxlan) datagram from ``__ip_select_ident``: a counter per bucket of a hash of
(destination, source, protocol), started at a random value and moving on by one per packet (and
by a random amount after idle time). A capture therefore shows non-zero IDs that count up per flow
and differ between flows. :class:`IpIdents` gives the same shape: one counter per
(source, destination, protocol), started where a hash of the lab's seed and the three says, plus
one per packet; so the same seed gives the same IDs, and the captures stay byte-identical.

Likewise an IPv6 socket's packets (ping's echo requests, the echo replies, UDP) carry a flow label
that ``ip6_make_flowlabel`` derives from a keyed hash of the flow (``auto_flowlabels`` 1, Linux's
default): :meth:`IpIdents.flow_label` hashes the seed and the flow instead of the boot's key.
"""

from __future__ import annotations

import hashlib

__all__ = ["IpIdents"]


class IpIdents:
    """The next IPv4 ID for a (source, destination, protocol), as ``__ip_select_ident`` hands out."""

    __slots__ = ("_next", "_seed")

    def __init__(self, seed: int) -> None:
        self._seed = seed.to_bytes(16, "big", signed=True)
        self._next: dict[tuple[bytes, bytes, int], int] = {}

    def flow_label(self, src: bytes, dst: bytes, proto: int) -> int:
        """The IPv6 flow label of the flow from ``src`` to ``dst`` of ``proto``: 20 bits, never 0."""
        digest = hashlib.blake2b(b"flow" + self._seed + src + dst + bytes((proto,)), digest_size=3).digest()
        return int.from_bytes(digest, "big") & 0xFFFFF or 1

    def take(self, src: bytes, dst: bytes, proto: int) -> int:
        """The ID for the next packet from ``src`` to ``dst`` (packed addresses) of ``proto``."""
        key = (src, dst, proto)
        ident = self._next.get(key)
        if ident is None:
            digest = hashlib.blake2b(self._seed + src + dst + bytes((proto,)), digest_size=2).digest()
            ident = int.from_bytes(digest, "big")
        self._next[key] = (ident + 1) & 0xFFFF
        return ident
