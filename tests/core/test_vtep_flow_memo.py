"""``Vtep.transmit_many``'s memo of source ports against the flow hash computed afresh.

The memo lives as long as the device: these tests send many bursts through one device, so that a
flow seen earlier (or a frame differing from it in any bit) meets what the memo kept, and compare
every datagram's source port with ``flow_source_port`` of its frame and with what ``transmit``
(which hashes every frame) sends for it.
"""

from __future__ import annotations

import struct
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import Vtep, VtepConfig
from pyvxlan.core.events import SendDatagram
from pyvxlan.core.vtep import FLOW_MEMO_SIZE
from pyvxlan.wire.frame import flow_source_port

LOCAL, PEER = "198.51.100.1", "198.51.100.2"
MACS = [bytes.fromhex(f"0200000000{i:02x}") for i in range(1, 4)]
RANGES = [(49152, 65535), (5000, 5001), (0, 0), (1000, 60000)]


def _ipv4(dst: bytes, src: bytes, *, proto: int, addr: int, sport: int, dport: int, tos: int, ident: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 28, ident, 0, 64, proto, ident ^ 0xFFFF,
                     bytes([203, 0, 113, addr]), bytes([203, 0, 113, 2]))  # fmt: skip
    return dst + src + b"\x08\x00" + ip + struct.pack("!HHHH", sport, dport, 8, 0)


@st.composite
def flows(draw: st.DrawFn) -> bytes:
    return _ipv4(
        draw(st.sampled_from(MACS)),
        draw(st.sampled_from(MACS)),
        proto=draw(st.sampled_from([1, 6, 17, 132, 136, 50])),
        addr=draw(st.sampled_from([1, 3])),
        sport=draw(st.sampled_from([40000, 40001])),
        dport=draw(st.sampled_from([9, 4789])),
        tos=draw(st.sampled_from([0, 1, 2, 3, 0xB8])),
        ident=draw(st.integers(0, 0xFFFF)),
    )


@st.composite
def bursts(draw: st.DrawFn) -> list[list[bytes]]:
    """Bursts of untagged IPv4 frames (the memo's kind): a few flows, each frame one of them as
    it is or with one bit of its first 42 bytes flipped (in the key or out of it, the EtherType and
    the header length included), now and then cut short. A flipped frame mostly comes after its
    flow, whose key the memo then holds."""
    pool = draw(st.lists(flows(), min_size=1, max_size=3))
    out = []
    for _ in range(draw(st.integers(1, 8))):
        burst = []
        for _ in range(draw(st.integers(1, 16))):
            frame = bytearray(draw(st.sampled_from(pool)))
            if draw(st.booleans()):
                bit = draw(st.integers(0, 42 * 8 - 1))
                frame[bit // 8] ^= 0x80 >> (bit % 8)
            if draw(st.integers(0, 7)) == 0:
                frame = frame[: draw(st.integers(14, len(frame)))]
            burst.append(bytes(frame))
        out.append(burst)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(RANGES),
    st.booleans(),
    bursts(),
)
def test_the_memo_gives_every_frame_its_hashed_port(
    port_range: tuple[int, int], ttl_inherit: bool, frames: list[list[bytes]]
) -> None:
    """Burst after burst through one device: each datagram's source port is the flow hash of its
    own frame, and the outputs and counters are those of transmit frame by frame."""
    cfg = VtepConfig(vni=10, local=LOCAL, remote=PEER, src_port_range=port_range, ttl_inherit=ttl_inherit)
    many, one = Vtep(cfg), Vtep(cfg)
    many.up(0.0)
    one.up(0.0)
    many.take_outputs()
    one.take_outputs()
    for i, burst in enumerate(frames):
        now = 1.0 + i
        sends = [d for b in many.transmit_many(burst, now) for d in b.sends()]
        for frame in burst:
            one.transmit(frame, now)
        expected = one.take_outputs()
        assert sends == [o for o in expected if type(o) is SendDatagram]
        assert many.take_outputs() == [o for o in expected if type(o) is not SendDatagram]
        for d in sends:
            assert d.src_port == flow_source_port(d.payload[8:], port_range)
    assert many.counters() == one.counters()


def test_a_flow_keeps_its_port_when_what_changes_per_packet_changes() -> None:
    """TOS, length, ID, TTL and the header checksum are not the flow: a memo hit; the ports are."""
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    a = _ipv4(MACS[1], MACS[0], proto=17, addr=1, sport=40000, dport=9, tos=0, ident=1)
    b = _ipv4(MACS[1], MACS[0], proto=17, addr=1, sport=40000, dport=9, tos=0xB8, ident=2)
    c = _ipv4(MACS[1], MACS[0], proto=17, addr=1, sport=40001, dport=9, tos=0, ident=3)
    ports = [d.src_port for batch in vtep.transmit_many([a, b, c, a], 1.0) for d in batch.sends()]
    expected = [flow_source_port(f, vtep.config.src_port_range) for f in (a, b, c, a)]
    assert ports == expected
    assert expected[0] == expected[1] != expected[2]


def test_the_memo_is_bounded() -> None:
    """Twenty times more flows than the memo holds: the device keeps no more than about a memo's
    worth of them (a key and a port, some 150 bytes a flow), and still hashes each right."""
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    flows_ = [
        _ipv4(MACS[1], MACS[0], proto=17, addr=1, sport=i % 65536, dport=i // 65536 + 1, tos=0, ident=0)
        for i in range(FLOW_MEMO_SIZE * 20)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(flows_), 256):
            burst = flows_[start : start + 256]
            ports = [d.src_port for b in vtep.transmit_many(burst, 1.0) for d in b.sends()]
            assert ports == [flow_source_port(f, vtep.config.src_port_range) for f in burst]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < FLOW_MEMO_SIZE * 400, grown
