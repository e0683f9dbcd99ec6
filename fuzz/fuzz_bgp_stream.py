"""Fuzz ``pyvxlan.evpn.stream.BgpStreams``: BGP reassembled from TCP segments, as ``pyvxlan decode`` reads it.

The input is a list of segments, each ``flags (1) | sequence step (2, signed) | length (1) |
payload``: SYN/FIN/RST bits, then where the segment starts relative to the previous one (so
retransmissions, overlaps, gaps and reordering all occur), then its bytes; bit 0x80 of the flags
byte puts it on a second flow, bit 0x40 says the capture cut it (its wire length is longer).

Invariants: ``feed`` and ``finish`` never raise, whatever arrives; what comes out is messages or
``Undecodable`` stretches with a reason; the messages are made of bytes that were fed (no more of
them than were fed) and decode back to themselves; the bytes held stay bounded.
"""

from __future__ import annotations

import struct

import atheris

with atheris.instrument_imports():
    from pyvxlan.evpn import stream
    from pyvxlan.evpn.codec import (
        MARKER,
        Keepalive,
        MacIpRoute,
        Open,
        RouteDistinguisher,
        RouteTarget,
        Update,
        decode_message,
    )

from _common import main

_FLOWS = (
    stream.Flow(bytes((198, 51, 100, 1)), 40000, bytes((198, 51, 100, 2)), 179),
    stream.Flow(bytes(15) + b"\x01", 179, bytes(15) + b"\x02", 40001),
)
# One message being assembled (at most 65535 bytes), a segment, and the early segments held.
_BOUND = 65535 + 255 + stream.MAX_EARLY_BYTES


def segments(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(flags, step, payload)`` of each segment the input describes."""
    out = []
    pos = 0
    while len(data) - pos >= 4:
        flags, step, length = struct.unpack_from("!BhB", data, pos)
        pos += 4
        out.append((flags, step, data[pos : pos + length]))
        pos += length
    return out


def test_one_input(data: bytes) -> None:
    reassemble(data)


def reassemble(data: bytes) -> list[object]:
    """Feed the segments ``data`` describes, check the invariants, return every item."""
    streams = stream.BgpStreams()
    seq = [1000, 5000]
    fed = [b"", b""]
    items: list[object] = []
    for flags, step, payload in segments(data):
        which = flags >> 7
        seq[which] = (seq[which] + step) % (1 << 32)
        cut = 7 if flags & 0x40 else 0
        fed[which] += payload
        items += streams.feed(
            _FLOWS[which],
            seq[which],
            payload,
            syn=bool(flags & 0x02),
            end=bool(flags & 0x05),
            length=len(payload) + cut,
        )
        seq[which] = (seq[which] + len(payload) + (flags & 0x02 != 0)) % (1 << 32)  # SYN takes a number
        assert streams.held() <= 2 * _BOUND, streams.held()
    for more in streams.finish().values():
        items += more
    decoded = 0
    for item in items:
        if isinstance(item, stream.Undecodable):
            assert item.size >= 0 and item.reason
        else:
            raw = item.encode()
            assert decode_message(raw) == item and raw[:16] == MARKER
            decoded += len(raw)
    assert decoded <= len(fed[0]) + len(fed[1])
    return items


def seeds() -> list[bytes]:
    """A session's messages, in one segment each, split in two, and out of order."""
    rd = RouteDistinguisher.ipv4("198.51.100.1", 2)
    update = Update.announce(
        [MacIpRoute(rd, "02:aa:00:00:00:10", "203.0.113.10", (100,))],
        next_hop="198.51.100.1",
        communities=[RouteTarget.as2(65000, 100)],
    )
    msgs = [Open.build(65000, "198.51.100.1").encode(), Keepalive().encode(), update.encode()]

    def seg(flags: int, step: int, payload: bytes) -> bytes:
        return struct.pack("!BhB", flags, step, len(payload)) + payload

    whole = seg(0x02, 0, b"") + b"".join(seg(0, 0, m) for m in msgs)
    split = seg(0x02, 0, b"") + b"".join(seg(0, 0, m[:10]) + seg(0, 0, m[10:]) for m in msgs)
    # The second message first, then the first (the sequence steps back over both).
    a, b = msgs[1], msgs[2]
    reordered = seg(0x02, 0, b"") + seg(0, len(a), b) + seg(0, -len(a) - len(b), a) + seg(0x01, len(b), b"")
    return [whole, split, reordered, seg(0x80, 0, msgs[1]) + seg(0x40, 0, msgs[2][:40])]


if __name__ == "__main__":
    main(test_one_input, seeds())
