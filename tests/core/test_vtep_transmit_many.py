"""``Vtep.transmit_many`` (the burst API the UDP driver uses) against ``Vtep.transmit``, frame by frame.

transmit_many is the one fast path beside the general one: these tests hold the two equal on
adversarial bursts (repeated flows, every bit of the headers the path reads, every FDB state,
proxy on and off, truncated frames, VLAN tags, IPv6, ARP, down devices, unspecified and multiple
remotes), comparing the datagrams in order, every other output in order, the counters and the
table with its ``used`` times.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import FdbState, Vtep, VtepConfig
from pyvxlan.core.events import SendBatch, SendDatagram
from pyvxlan.wire.frame import flow_source_port

LOCAL, PEER, OTHER, THIRD = "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"
MACS = [bytes.fromhex(f"0200000000{i:02x}") for i in range(1, 7)]
BCAST = b"\xff" * 6


def _ipv4(
    dst: bytes, src: bytes, *, tos: int = 0, ttl: int = 64, proto: int, frag: int = 0, ihl: int = 5, tail: bytes = b""
) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, 20 + len(tail), 7, frag, ttl, proto, 0,
                     bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2]))  # fmt: skip
    return dst + src + b"\x08\x00" + ip + tail


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    dst = draw(st.sampled_from([*MACS, BCAST, bytes.fromhex("01005e010101")]))
    src = draw(st.sampled_from(MACS))
    kind = draw(st.sampled_from(["ipv4", "ipv4", "ipv6", "vlan", "qinq", "arp", "ns", "short", "raw"]))
    tos = draw(st.integers(0, 255))
    ttl = draw(st.integers(0, 255))
    proto = draw(st.sampled_from([1, 6, 17, 132, 136, 50]))
    ports = draw(st.binary(min_size=0, max_size=8))
    if kind == "ipv4":
        frag = draw(st.sampled_from([0, 0x4000, 0x2000, 0x0001]))
        ihl = draw(st.sampled_from([5, 5, 6, 15]))
        frame = _ipv4(dst, src, tos=tos, ttl=ttl, proto=proto, frag=frag, ihl=ihl, tail=ports)
    elif kind == "ipv6":
        ip6 = struct.pack("!IHBB", 0x60000000 | tos << 20, len(ports), proto, ttl) + bytes(range(32))
        frame = dst + src + b"\x86\xdd" + ip6 + ports
    elif kind in ("vlan", "qinq"):
        tags = b"\x81\x00\x00\x0a" if kind == "vlan" else b"\x88\xa8\x00\x14\x81\x00\x00\x0a"
        inner = draw(st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x08\x06"]))
        frame = dst + src + tags + inner + bytes([0x45, tos]) + bytes(6) + bytes([ttl, proto]) + bytes(10) + ports
    elif kind == "arp":
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, draw(st.sampled_from([1, 2])), src,
                          bytes([203, 0, 113, 1]), bytes(6), bytes([203, 0, 113, draw(st.sampled_from([2, 9]))]))  # fmt: skip
        frame = BCAST + src + b"\x08\x06" + arp
    elif kind == "ns":
        frame = dst + src + b"\x86\xdd" + bytes(6) + b"\x3a\xff" + bytes(32) + b"\x87\x00" + bytes(22)
    elif kind == "short":
        frame = (dst + src + b"\x08\x00" + bytes(40))[: draw(st.integers(0, 33))]
    else:
        frame = dst + src + draw(st.binary(min_size=0, max_size=40))
    cut = draw(st.integers(0, len(frame)))
    return frame[:cut] if draw(st.booleans()) and draw(st.booleans()) else frame


@st.composite
def setups(draw: st.DrawFn) -> tuple[VtepConfig, list[tuple[str, object]], bool]:
    ipv6 = draw(st.booleans())
    local, peer, other = ("2001:db8::1", "2001:db8::2", "2001:db8::3") if ipv6 else (LOCAL, PEER, OTHER)
    cfg = VtepConfig(
        vni=10,
        local=local,
        remote=draw(st.sampled_from([peer, None])),
        proxy=draw(st.booleans()),
        l2miss=draw(st.booleans()),
        ttl=draw(st.sampled_from([0, 0, 5])),
        ttl_inherit=draw(st.booleans()),
        tos=draw(st.sampled_from([0, 0x28, "inherit"])),
        udp6_zero_csum_tx=draw(st.booleans()),
        src_port_range=draw(st.sampled_from([(49152, 65535), (5000, 5001), (0, 0)])),
    )
    ops: list[tuple[str, object]] = []
    for mac in MACS[:4]:
        what = draw(st.sampled_from(["none", "add", "append", "unspecified", "learned", "static"]))
        ops.append((what, mac))
    up = draw(st.booleans()) or draw(st.booleans())
    return cfg, ops, up


def _build(cfg: VtepConfig, ops: list[tuple[str, object]], up: bool) -> Vtep:
    vtep = Vtep(cfg, now=0.0)
    peer, other = ("2001:db8::2", "2001:db8::3") if ":" in (cfg.local or "") else (PEER, OTHER)
    for what, mac in ops:
        m = bytes(mac).hex(":")  # type: ignore[call-overload]
        if what == "add":
            vtep.fdb_add(m, other, now=0.0)
        elif what == "append":
            vtep.fdb_append(m, other, now=0.0)
            vtep.fdb_append(m, peer, port=8472, vni=20, now=0.0)
        elif what == "unspecified":
            vtep.fdb_append(m, "::" if ":" in other else "0.0.0.0", now=0.0)
            vtep.fdb_append(m, other, now=0.0)
        elif what in ("learned", "static"):
            state = FdbState.REACHABLE if what == "learned" else FdbState.STATIC
            vtep.fdb_add(m, peer, state=state, now=0.0)
    if cfg.proxy:
        vtep.neigh_add("203.0.113.2", MACS[1].hex(":"), now=0.0)
    if up:
        vtep.up(0.0)
    vtep.take_outputs()
    return vtep


def _state(vtep: Vtep) -> tuple[object, ...]:
    return vtep.counters(), [(e, e.used) for e in vtep.fdb.dump()]


def _compare(cfg: VtepConfig, ops: list[tuple[str, object]], up: bool, burst: list[bytes], now: float) -> None:
    one, many = _build(cfg, ops, up), _build(cfg, ops, up)
    for frame in burst:
        one.transmit(frame, now)
    expected = one.take_outputs()
    batches = many.transmit_many(burst, now)
    rest = many.take_outputs()
    assert all(type(b) is SendBatch and b.datagrams for b in batches)
    assert [d for b in batches for d in b.sends()] == [o for o in expected if type(o) is SendDatagram]
    assert rest == [o for o in expected if type(o) is not SendDatagram]
    assert _state(many) == _state(one)


@settings(max_examples=300, deadline=None)
@given(setups(), st.lists(frames(), max_size=12), st.floats(0.5, 100.0))
def test_transmit_many_is_transmit_frame_by_frame(
    setup: tuple[VtepConfig, list[tuple[str, object]], bool], burst: list[bytes], now: float
) -> None:
    """Any burst, any table, any settings: the same datagrams in order, the same other outputs in
    order, the same counters and the same entries (``used`` included) as transmit one by one."""
    cfg, ops, up = setup
    _compare(cfg, ops, up, burst, now)


@settings(max_examples=100, deadline=None)
@given(setups(), frames(), st.integers(1, 40), st.floats(0.5, 100.0))
def test_transmit_many_repeated_flow(
    setup: tuple[VtepConfig, list[tuple[str, object]], bool], frame: bytes, times: int, now: float
) -> None:
    """One flow repeated (the relay's case): still frame-by-frame transmit, batch by batch."""
    cfg, ops, up = setup
    _compare(cfg, ops, up, [frame] * times, now)


def test_a_burst_to_one_remote_is_one_batch_and_memoryviews_are_frames() -> None:
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER), now=0.0)
    vtep.up(0.0)
    vtep.take_outputs()
    frames_ = [_ipv4(MACS[1], MACS[0], proto=17, tail=struct.pack("!HH", 40000 + i, 9)) for i in range(3)]
    batches = vtep.transmit_many([memoryview(f) for f in frames_], 1.0)
    header = bytes.fromhex("0800000000000a00")
    assert batches == [
        SendBatch(PEER, 4789, 64, 10, LOCAL, 0, False, tuple((flow_source_port(f), header + f) for f in frames_))
    ]
    assert vtep.take_outputs() == []
    assert vtep.counters().tx_packets == 3


def test_the_datagrams_and_batches_built_through_slots_are_the_constructors_values() -> None:
    # transmit and transmit_many build them through their slot descriptors (for speed): each must
    # be the value its constructor makes, with the same equality, hash and repr, and frozen.
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER), now=0.0)
    vtep.up(0.0)
    vtep.take_outputs()
    frame = _ipv4(MACS[1], MACS[0], proto=17, tail=struct.pack("!HH", 40000, 9))
    vtep.transmit(frame, 1.0)
    (datagram,) = vtep.take_outputs()
    assert isinstance(datagram, SendDatagram)
    (batch,) = vtep.transmit_many([frame], 1.0)
    got: SendDatagram | SendBatch
    for got in (datagram, batch):
        made = type(got)(*(getattr(got, f.name) for f in dataclasses.fields(got)))
        assert (got, hash(got), repr(got)) == (made, hash(made), repr(made))
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'ttl'"):
            got.ttl = 1  # type: ignore[misc]
    assert batch.sends() == [datagram]


def test_a_new_tos_or_remote_opens_a_new_batch() -> None:
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER), now=0.0)
    vtep.fdb_add(MACS[2].hex(":"), OTHER, now=0.0)
    vtep.up(0.0)
    a = _ipv4(MACS[1], MACS[0], proto=1)
    ect = _ipv4(MACS[1], MACS[0], tos=2, proto=1)  # ECT(0): the outer TOS carries it
    b = _ipv4(MACS[2], MACS[0], proto=1)
    batches = vtep.transmit_many([a, a, ect, b, a], 1.0)
    assert [(x.dst, x.tos, len(x.datagrams)) for x in batches] == [
        (PEER, 0, 2),
        (PEER, 2, 1),
        (OTHER, 0, 1),
        (PEER, 0, 1),
    ]


def _v4(proto: int, frag: int = 0, ihl: int = 5, tail: bytes = b"\x9c\x40\x00\x09") -> bytes:
    return _ipv4(MACS[1], MACS[0], proto=proto, frag=frag, ihl=ihl, tail=bytes((ihl - 5) * 4) + tail)


_V6 = (
    MACS[1]
    + MACS[0]
    + b"\x86\xdd"
    + struct.pack("!IHBB", 0x60000000, 4, 6, 64)
    + bytes(range(32))
    + b"\x9c\x40\x00\x50"
)


def test_flow_source_port_values_are_pinned() -> None:
    """The transmit path's flow hash was made faster without changing one port: these values are
    the earlier implementation's (a peer's ECMP spread and every capture stay as they were)."""
    cases = {
        "udp": _v4(17),
        "tcp_options": _v4(6, ihl=6),
        "fragment": _v4(17, frag=0x2001),
        "icmp": _v4(1),
        "ipv6_tcp": _V6,
        "vlan_udp": MACS[1] + MACS[0] + b"\x81\x00\x00\x0a" + _v4(17)[12:],
        "qinq_ipv6": MACS[1] + MACS[0] + b"\x88\xa8\x00\x14\x81\x00\x00\x0a" + _V6[12:],
        "arp": MACS[1] + MACS[0] + b"\x08\x06" + bytes(28),
        "short": MACS[1] + MACS[0][:3],
        "cut_ipv4": _v4(17)[:30],
    }
    ports = {name: flow_source_port(frame, (32768, 60999)) for name, frame in cases.items()}
    assert ports == {
        "udp": 57905,
        "tcp_options": 34506,
        "fragment": 57547,
        "icmp": 53240,
        "ipv6_tcp": 36265,
        "vlan_udp": 57905,
        "qinq_ipv6": 36265,
        "arp": 39911,
        "short": 57851,
        "cut_ipv4": 39911,
    }
    assert flow_source_port(bytearray(cases["udp"]), (32768, 60999)) == 57905
