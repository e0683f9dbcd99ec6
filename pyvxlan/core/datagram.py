"""``ParsedDatagram``: the receive path's reading of one UDP payload, made once, given to many VTEPs.

A multicast datagram reaches every member of its group: a simulator hands the same payload to
thousands of :class:`~pyvxlan.Vtep` objects in a row. What depends only on the bytes (the header
words, the inner source MAC, whether the inner IP header is cut short, the frame to deliver) is
worked out once by :func:`parse_datagram`, and each device takes the value with
:meth:`pyvxlan.Vtep.receive_parsed`. The devices then share the source MAC object (it becomes the
FDB key of every device that learns it) and the frozen :class:`~pyvxlan.DeliverFrame`. A driver
with one receiver calls :meth:`pyvxlan.Vtep.receive`, which parses for itself; the two give the
same results (tests/core/test_datagram.py).

>>> from pyvxlan import Vtep, VtepConfig
>>> parsed = parse_datagram(bytes.fromhex("0800000000000a00") + b"\\xff" * 6 + bytes.fromhex("020000000001") + bytes(48))
>>> (parsed.size, parsed.vni, parsed.src_mac.hex(":"))
(68, 10, '02:00:00:00:00:01')
>>> cores = [Vtep(VtepConfig(vni=10, local=f"198.51.100.{i}")) for i in (1, 3)]
>>> for core in cores:
...     core.up(now=0.0)
...     core.receive_parsed(parsed, "198.51.100.2", 50000, now=1.0)
>>> [type(o).__name__ for o in cores[1].take_outputs()]
['EntryLearned', 'DeliverFrame']
"""

from __future__ import annotations

from typing import Final, NamedTuple, TypeAlias

from pyvxlan.core.events import DeliverFrame
from pyvxlan.wire.header import HEADER_WORDS
from pyvxlan.wire.packets import ETH_IPV4, ETH_IPV6

__all__ = ["DatagramFields", "ParsedDatagram", "datagram_fields", "parse_datagram"]

_unpack_words = HEADER_WORDS.unpack_from
_NO_FRAME: Final = DeliverFrame(b"")
_ETH_P_IPV4: Final = ETH_IPV4.to_bytes(2, "big")
_ETH_P_IPV6: Final = ETH_IPV6.to_bytes(2, "big")


class ParsedDatagram(NamedTuple):
    """One UDP payload (VXLAN header + inner frame) as the receive path reads it; make it with
    :func:`parse_datagram`.

    ``word0`` and ``word1`` are the header's two 32-bit words (0 when under 8 bytes), ``src_mac``
    the inner source MAC (``b""`` when the inner frame is under 14 bytes), ``truncated`` that the
    inner IPv4 or IPv6 header is cut short, ``deliver`` the inner frame as the action a VTEP
    queues. A named tuple rather than a dataclass: the receive path unpacks it in one step.
    """

    payload: bytes
    size: int
    word0: int
    word1: int
    src_mac: bytes
    truncated: bool
    deliver: DeliverFrame

    @property
    def vni(self) -> int:
        """The header's VNI field (0 when the payload is under 8 bytes)."""
        return self.word1 >> 8


# ParsedDatagram's fields as a plain tuple: what receive reads a datagram it parses itself into,
# without making the named value it would drop at once.
DatagramFields: TypeAlias = tuple[bytes, int, int, int, bytes, bool, DeliverFrame]


def parse_datagram(payload: bytes | bytearray | memoryview | ParsedDatagram) -> ParsedDatagram:
    """Read ``payload`` once for any number of :meth:`~pyvxlan.Vtep.receive` calls (a value
    already parsed is returned as it is, so code that takes either form can read both).

    Never raises for short or malformed bytes: each VTEP's checks drop them with the reason
    Linux gives (the checks read only what the size allows).
    """
    if isinstance(payload, ParsedDatagram):
        return payload
    return ParsedDatagram._make(datagram_fields(payload))


def datagram_fields(payload: bytes | bytearray | memoryview) -> DatagramFields:
    """:func:`parse_datagram`'s fields, in its order, as a plain tuple (the one parse both use)."""
    if type(payload) is not bytes:
        payload = bytes(payload)
    size = len(payload)
    w0, w1 = _unpack_words(payload) if size >= 8 else (0, 0)
    if size < 22:
        return (payload, size, w0, w1, b"", False, _NO_FRAME)
    truncated = size < 62 and _inner_ip_truncated(payload, size)
    return (payload, size, w0, w1, payload[14:20], truncated, DeliverFrame(payload[8:]))


def _inner_ip_truncated(payload: bytes, size: int) -> bool:
    etype = payload[20:22]
    return (etype == _ETH_P_IPV4 and size < 22 + 20) or (etype == _ETH_P_IPV6 and size < 22 + 40)
