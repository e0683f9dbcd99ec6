"""``Vtep.receive_many`` (the burst API the UDP driver uses) against ``Vtep.receive``, datagram by datagram.

receive_many's shortcuts (no parse for a plain header and a long inner frame, no second learn for
the same source right after itself) must not change a thing: these tests hold it equal to receive
on adversarial bursts (repeated sources, every header bit, sizes around each check, the device's
own MAC, invalid and conflicting sources, a full table, CE and bad TOS values, IPv6 link-local
sources with their interface, learning off, a down device), comparing the frames delivered in
order, every other output in order, the counters and the table with its times.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import FdbState, Vtep, VtepConfig
from pyvxlan.core.events import DeliverFrame, EntryMigrated

OWN = "02:00:00:00:00:aa"
MACS = [bytes.fromhex(f"0200000000{i:02x}") for i in (1, 2, 3, 0xAA)] + [bytes.fromhex("01005e000001"), bytes(6)]
Datagram = tuple[bytes, str, int, int, "str | None"]


@st.composite
def datagrams(draw: st.DrawFn, v6: bool) -> Datagram:
    header = bytearray(bytes.fromhex("0800000000000a00"))
    if draw(st.integers(0, 3)) == 0:
        bit = draw(st.integers(0, 63))
        header[bit // 8] ^= 0x80 >> (bit % 8)
    smac = draw(st.sampled_from(MACS[:2] * 4 + MACS))  # mostly two sources: runs of one source
    etype = draw(st.sampled_from([b"\x08\x00", b"\x86\xdd", b"\x08\x06", b"\x81\x00"]))
    inner = b"\xff" * 6 + smac + etype + bytes([0x45, draw(st.integers(0, 255))])
    payload = bytes(header) + inner + bytes(draw(st.sampled_from([100] * 4 + [0, 4, 24, 38, 39, 40, 46])))
    payload = payload[: draw(st.sampled_from([len(payload)] * 8 + [0, 7, 8, 21, 22, 61, 62]))]
    if v6:
        src, interface = draw(
            st.sampled_from([("2001:db8::2", None), ("2001:db8::3", None), ("fe80::2", "eth0"), ("fe80::2", "eth1")])
        )
    else:
        src, interface = draw(st.sampled_from([("198.51.100.2", None), ("198.51.100.3", None)]))
    tos = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 0xB8, 0xBB]))
    return payload, src, 40000, tos, interface


@st.composite
def setups(draw: st.DrawFn) -> tuple[VtepConfig, list[str], bool, list[list[Datagram]]]:
    v6 = draw(st.booleans())
    cfg = VtepConfig(
        vni=10,
        local="2001:db8::1" if v6 else "198.51.100.1",
        mac=OWN,
        learning=draw(st.booleans()) or draw(st.booleans()),
        max_entries=draw(st.sampled_from([0, 0, 2])),
        gbp=draw(st.booleans()) and draw(st.booleans()),
    )
    statics = draw(st.lists(st.sampled_from(MACS[:3]), max_size=2, unique=True))
    up = draw(st.booleans()) or draw(st.booleans())
    bursts = draw(st.lists(st.lists(datagrams(v6), max_size=12), min_size=1, max_size=4))
    return cfg, [m.hex(":") for m in statics], up, bursts


def _build(cfg: VtepConfig, statics: list[str], up: bool) -> Vtep:
    vtep = Vtep(cfg, now=0.0)
    for mac in statics:
        vtep.fdb_add(mac, "2001:db8::9" if ":" in (cfg.local or "") else "198.51.100.9", state=FdbState.STATIC)
    if up:
        vtep.up(0.0)
    vtep.take_outputs()
    return vtep


def _state(vtep: Vtep) -> tuple[object, ...]:
    return vtep.counters(), [(e, e.updated, e.used) for e in vtep.fdb.dump()], vtep.next_timer()


def _check_burst(one: Vtep, many: Vtep, burst: list[Datagram], now: float) -> None:
    """``burst`` into ``many`` with receive_many and into ``one`` datagram by datagram: the same
    frames delivered in order, the same other outputs in order, the same counters and entries."""
    frames = many.receive_many(burst, now)
    rest = many.take_outputs()
    for payload, src, src_port, tos, interface in burst:
        one.receive(payload, src, src_port, now, tos=tos, interface=interface)
    expected = one.take_outputs()
    assert frames == [o.frame for o in expected if type(o) is DeliverFrame]
    assert rest == [o for o in expected if type(o) is not DeliverFrame]
    assert _state(many) == _state(one)


@settings(max_examples=300, deadline=None)
@given(setups())
def test_receive_many_is_receive_datagram_by_datagram(
    setup: tuple[VtepConfig, list[str], bool, list[list[Datagram]]],
) -> None:
    """Burst after burst into one device: the same frames delivered in order, the same other
    outputs in order, the same counters and the same entries (times included) as receive."""
    cfg, statics, up, bursts = setup
    one, many = _build(cfg, statics, up), _build(cfg, statics, up)
    for i, burst in enumerate(bursts):
        _check_burst(one, many, burst, 1.0 + i * 0.5)


@settings(max_examples=100, deadline=None)
@given(setups(), st.integers(1, 40))
def test_receive_many_repeated_datagram(
    setup: tuple[VtepConfig, list[str], bool, list[list[Datagram]]], times: int
) -> None:
    """One datagram repeated (the relay's case), twice over: still receive, datagram by datagram."""
    cfg, statics, up, bursts = setup
    burst = [d for b in bursts for d in b][:1] * times
    one, many = _build(cfg, statics, up), _build(cfg, statics, up)
    for now in (1.0, 2.0):
        _check_burst(one, many, burst, now)


def test_a_burst_from_one_source_learns_it_once_and_delivers_every_frame() -> None:
    vtep = Vtep(VtepConfig(vni=10, local="198.51.100.1"))
    vtep.up(0.0)
    frame = b"\xff" * 6 + MACS[0] + b"\x08\x00" + bytes(60)
    frames = vtep.receive_many([(bytes.fromhex("0800000000000a00") + frame, "198.51.100.2", 40000, 0, None)] * 3, 1.0)
    assert frames == [frame] * 3
    assert [type(o).__name__ for o in vtep.take_outputs()] == ["EntryLearned"]
    assert (vtep.counters().rx_packets, vtep.counters().rx_bytes) == (3, 3 * (len(frame) - 14))
    assert [(e.mac, e.dst) for e in vtep.fdb.dump() if e.mac != "00:00:00:00:00:00"] == [
        ("02:00:00:00:00:01", "198.51.100.2")
    ]


@pytest.mark.parametrize(
    ("local", "sources"),
    [
        ("198.51.100.1", [("198.51.100.2", None), ("198.51.100.3", None), ("198.51.100.2", None)]),
        ("2001:db8::1", [("fe80::2", "eth0"), ("fe80::2", "eth1"), ("2001:db8::2", None), ("2001:db8::3", None)]),
    ],
)
def test_a_source_moving_within_a_burst_is_learned_as_receive_learns_it(
    local: str, sources: list[tuple[str, str | None]]
) -> None:
    """One source MAC from one address (or interface) after another, three times in a row each:
    every learn receive makes (migrations included) is made."""
    frame = b"\xff" * 6 + MACS[0] + b"\x86\xdd" + bytes(60)
    payload = bytes.fromhex("0800000000000a00") + frame
    burst = [(payload, src, 40000, 0, interface) for src, interface in sources for _ in range(3)]
    one, many = (Vtep(VtepConfig(vni=10, local=local)) for _ in range(2))
    one.up(0.0)
    many.up(0.0)
    assert many.receive_many(burst, 1.0) == [frame] * len(burst)
    for payload_, src, src_port, tos, interface in burst:
        one.receive(payload_, src, src_port, 1.0, tos=tos, interface=interface)
    expected = [o for o in one.take_outputs() if type(o) is not DeliverFrame]
    assert many.take_outputs() == expected
    assert sum(type(o) is EntryMigrated for o in expected) >= len(sources) - 1
    assert _state(many) == _state(one)
