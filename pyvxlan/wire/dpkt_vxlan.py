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

import copy
from collections.abc import Collection
from typing import Any

import dpkt

from pyvxlan.wire.frame import LINUX_VXLAN_PORT, VXLAN_PORT
from pyvxlan.wire.header import FLAG_I, VxlanHeader

__all__ = ["VXLAN", "vxlan_of"]


class VXLAN(dpkt.Packet):  # type: ignore[misc]  # dpkt ships no type information
    """The RFC 7348 VXLAN header with the Group Based Policy bits, as a dpkt packet.

    Bit-field properties (dpkt generates getters and setters from ``__bit_fields__``):
    ``g`` (GBP present), ``i`` (VNI valid), ``d`` (don't learn), ``a`` (policy applied),
    ``policy`` (16-bit group policy id), ``vni`` (24 bits); ``flags`` is byte 0 and ``rsvd`` the
    last byte. The reserved bits in between are kept in the words ``w0``/``w1``. ``data`` is the
    inner frame as a ``dpkt.ethernet.Ethernet`` (or bytes, when dpkt cannot parse it).

    Packing gives back the bytes that were parsed, to the byte: dpkt's own classes fill a zero IP,
    UDP, TCP, ICMP or ICMPv6 checksum, recompute a zero-checksum IPv4 header's length and drop what
    follows it, when they pack. So while ``data`` packs as a fresh parse of the same bytes would
    (nothing was changed, or only what dpkt would fill anyway), ``bytes(v)`` is the original inner
    frame; once the inner packet is changed (or replaced), it is what dpkt packs.

    >>> raw = bytes.fromhex("0800000000000a00" "020000000001020000000002" "0800"
    ...     "4500001c00010000401100" "00" "cb007101cb007102" "0001000200080000")  # checksums 0
    >>> v = VXLAN(raw)
    >>> bytes(v) == raw, v.data.data.sum  # the parsed fields are left as they came
    (True, 0)
    >>> v.data.dst = bytes.fromhex("02000000000a")
    >>> bytes(v)[8:14].hex(), bytes(v)[32:34].hex()  # changed: dpkt packs it, filling the checksum
    ('02000000000a', '02cc')

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
        ("w0", "I", FLAG_I),  # a plain header: the I flag
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
        self._inner_raw = bytes(self.data)
        self._inner_parsed: Any = None
        if len(self.data) >= 14:
            # As dpkt's own layers do: keep the bytes when the inner frame does not parse.
            try:
                self.data = self._inner_parsed = dpkt.ethernet.Ethernet(self._inner_raw)
            except (dpkt.UnpackError, KeyError, ValueError, IndexError):
                pass

    def _inner_bytes(self) -> bytes:
        parsed = getattr(self, "_inner_parsed", None)  # None: built from fields, or not parsed
        if parsed is None or self.data is not parsed:
            return bytes(self.data)
        # Packed from a copy: dpkt fills zero checksums in the object it packs, and a packet that
        # was not changed keeps the fields it was parsed with. When dpkt packs it as it packs a
        # fresh parse of the same bytes, nothing was changed that dpkt would not rewrite anyway,
        # and the original bytes are the answer.
        trial = bytes(copy.deepcopy(parsed))
        if trial == self._inner_raw or trial == bytes(dpkt.ethernet.Ethernet(self._inner_raw)):
            return self._inner_raw
        return bytes(parsed)

    def __bytes__(self) -> bytes:
        return bytes(self.pack_hdr()) + self._inner_bytes()

    def __len__(self) -> int:
        # What bytes() gives: the outer layers' lengths (dpkt's IP and UDP ask len()) must agree.
        return int(self.__hdr_len__) + len(self._inner_bytes())


def vxlan_of(eth: Any, ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT)) -> VXLAN | None:
    """The :class:`VXLAN` layer inside a parsed ``dpkt.ethernet.Ethernet``, or ``None``.

    Returns ``None`` when the frame is not IPv4/IPv6 + UDP to one of ``ports`` (dpkt has already
    removed any 802.1Q tags: ``eth.data`` is the IP packet). A VXLAN port whose payload is under
    8 bytes raises ``dpkt.NeedData``, as every dpkt header does. The UDP packet's ``data`` is
    replaced by the :class:`VXLAN` object, so ``eth.data.data.data`` is the VXLAN layer afterwards
    and ``bytes(eth)`` is unchanged: :class:`VXLAN` packs to the bytes it parsed. (The outer layers
    are dpkt's own: a zero outer IPv4 header checksum makes dpkt fill it, and the UDP checksum with
    it if that is zero, with or without this call; over IPv6, dpkt fills a zero UDP checksum.)

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
