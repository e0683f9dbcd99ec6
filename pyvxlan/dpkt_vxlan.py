"""VXLAN for dpkt: a ``dpkt.Packet`` class for the 8-byte header, and a helper for Ethernet parses.

dpkt (1.9.8, and its master) has no VXLAN, and its UDP does no port dispatch, so the VXLAN
header and the inner frame stay raw bytes in ``eth.data.data.data``. :class:`VXLAN` is written in
dpkt's own style (``__hdr__`` words with ``__bit_fields__`` properties, like ``dpkt.ip.IP``), and
:func:`vxlan_of` finds it in a parsed frame:

>>> import dpkt
>>> from pyvxlan import encapsulate, GroupPolicy, VxlanHeader
>>> inner = bytes.fromhex("02000000aa0202000000aa010806") + bytes(28)
>>> frame = encapsulate(inner, header=VxlanHeader(42, group_policy=GroupPolicy(7)),
...                     src="198.51.100.1", dst="198.51.100.2")
>>> vx = vxlan_of(dpkt.ethernet.Ethernet(frame))
>>> (vx.i, vx.g, vx.policy, vx.vni)
(1, 1, 7, 42)
>>> type(vx.data).__name__, vx.data.type == dpkt.ethernet.ETH_TYPE_ARP
('Ethernet', True)
>>> bytes(vx) == frame[42:]
True
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import dpkt

from pyvxlan.frame import LINUX_VXLAN_PORT, VXLAN_PORT
from pyvxlan.header import VxlanHeader

__all__ = ["VXLAN", "vxlan_of"]


class VXLAN(dpkt.Packet):  # type: ignore[misc]  # dpkt ships no type information
    """The RFC 7348 VXLAN header with the Group Based Policy bits, as a dpkt packet.

    Bit-field properties (dpkt generates getters and setters from ``__bit_fields__``):
    ``g`` (GBP present), ``i`` (VNI valid), ``d`` (don't learn), ``a`` (policy applied),
    ``policy`` (16-bit group policy id), ``vni`` (24 bits); ``flags`` is byte 0 and ``rsvd`` the
    last byte. The reserved bits in between are kept in the words ``w0``/``w1``, so packing
    gives back the bytes that were parsed. ``data`` is the inner frame as a
    ``dpkt.ethernet.Ethernet`` (or bytes, when dpkt cannot parse it).

    >>> v = VXLAN(vni=10)
    >>> bytes(v).hex()
    '0800000000000a00'
    >>> v.policy, v.g = 50000, 1
    >>> v.d = 1
    >>> bytes(v).hex()
    '8840c35000000a00'
    >>> v.header
    VxlanHeader(vni=10, group_policy=GroupPolicy(policy_id=50000, dont_learn=True, policy_applied=False))
    """

    data: Any  # an annotation only: dpkt's metaclass makes the slot

    __hdr__ = (
        ("w0", "I", 0x08000000),
        ("w1", "I", 0),
    )
    # dpkt skips names that start with "_" when it makes properties: those are the reserved bits.
    __bit_fields__ = {
        "w0": (
            ("g", 1),
            ("_r0", 3),
            ("i", 1),
            ("_r1", 3),
            ("_r2", 1),
            ("d", 1),
            ("_r3", 2),
            ("a", 1),
            ("_r4", 3),
            ("policy", 16),
        ),
        "w1": (
            ("vni", 24),
            ("rsvd", 8),
        ),
    }

    @property
    def flags(self) -> int:
        """Byte 0 (0x08 for a plain header, 0x88 with GBP)."""
        return int(self.w0) >> 24

    @property
    def header(self) -> VxlanHeader:
        """The same 8 bytes as a :class:`pyvxlan.VxlanHeader` (lossless)."""
        return VxlanHeader.from_words(self.w0, self.w1)

    def unpack(self, buf: bytes) -> None:
        dpkt.Packet.unpack(self, buf)
        if len(self.data) >= 14:
            # As dpkt's own layers do: keep the bytes when the inner frame does not parse.
            try:
                self.data = dpkt.ethernet.Ethernet(self.data)
            except (dpkt.UnpackError, KeyError, ValueError, IndexError):
                pass


def vxlan_of(eth: Any, ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT)) -> VXLAN | None:
    """The :class:`VXLAN` layer inside a parsed ``dpkt.ethernet.Ethernet``, or ``None``.

    Returns ``None`` when the frame is not IPv4/IPv6 + UDP to one of ``ports`` (dpkt has already
    removed any 802.1Q tags: ``eth.data`` is the IP packet). A VXLAN port whose payload is under
    8 bytes raises ``dpkt.NeedData``, as every dpkt header does. The UDP packet's ``data`` is
    replaced by the :class:`VXLAN` object, so ``eth.data.data.data`` is the VXLAN layer afterwards
    and ``bytes(eth)`` is unchanged.

    >>> import dpkt
    >>> from pyvxlan import encapsulate
    >>> frame = encapsulate(bytes(14), vni=7, src="2001:db8::1", dst="2001:db8::2", dst_port=8472)
    >>> eth = dpkt.ethernet.Ethernet(frame)
    >>> vxlan_of(eth).vni, eth.data.data.data.vni, bytes(eth) == frame
    (7, 7, True)
    >>> vxlan_of(eth, ports=(4789,)) is None
    True
    """
    ip = getattr(eth, "data", None)
    if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        return None
    udp = ip.data
    if not isinstance(udp, dpkt.udp.UDP) or udp.dport not in ports:
        return None
    if isinstance(udp.data, VXLAN):
        return udp.data
    vx = VXLAN(bytes(udp.data))
    udp.data = vx
    return vx
