"""parse_datagram and Vtep.receive_parsed, and what they replace: no state shared between cores.

Two Vteps are as independent as two h11 connections: whatever one receives, the other's outputs,
counters and table are what they would be alone.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import ConfigError, DeliverFrame, EntryLearned, EntryMigrated, Vtep, VtepConfig
from pyvxlan.core.datagram import ParsedDatagram, datagram_fields, parse_datagram
from pyvxlan.core.fdb import RemotePool

HEADER10 = b"\x08\x00\x00\x00\x00\x00\x0a\x00"
HEADER20 = b"\x08\x00\x00\x00\x00\x00\x14\x00"
M1, M2 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def frame(src: bytes, dst: bytes = b"\xff" * 6, kind: bytes = b"\x08\x06", body: int = 28) -> bytes:
    return dst + src + kind + bytes(body)


def test_parse_datagram_reads_the_fields_receive_needs() -> None:
    payload = HEADER10 + frame(M1, kind=b"\x08\x00", body=10)  # an IPv4 header cut short
    assert parse_datagram(payload) == ParsedDatagram(
        payload, 32, 0x08000000, 0x00000A00, M1, True, DeliverFrame(payload[8:])
    )
    assert parse_datagram(bytearray(payload)) == parse_datagram(payload)


def test_datagram_fields_are_the_parse_as_a_plain_tuple() -> None:
    payload = HEADER10 + frame(M2)
    assert datagram_fields(payload) == tuple(parse_datagram(payload))
    assert type(datagram_fields(memoryview(payload))) is tuple


def test_receive_takes_bytes_or_a_parsed_datagram_alike() -> None:
    a, b = (Vtep(VtepConfig(vni=10, local="198.51.100.1")) for _ in range(2))
    for core in (a, b):
        core.up(0.0)
    for t, payload in enumerate([HEADER10 + frame(M1), HEADER10[:6], HEADER20 + frame(M2)]):
        a.receive(payload, "198.51.100.2", 50000, float(t))
        b.receive_parsed(parse_datagram(payload), "198.51.100.2", 50000, float(t))
        assert a.take_outputs() == b.take_outputs()
    assert (a.counters(), a.fdb_dump()) == (b.counters(), b.fdb_dump())


def test_vtep_refuses_a_pool_that_is_not_a_remote_pool() -> None:
    with pytest.raises(ConfigError) as info:
        Vtep(VtepConfig(vni=10, local="198.51.100.1"), pool={})  # type: ignore[arg-type]
    assert str(info.value) == "pool: must be a RemotePool, got dict"


PAYLOADS = [
    HEADER10 + frame(M1),
    HEADER10 + frame(M2),
    HEADER20 + frame(M1),
    HEADER10 + frame(M1, kind=b"\x08\x00", body=10),
    HEADER10 + frame(b"\x01" + M1[1:]),
    b"\x88\x00\x00\x05\x00\x00\x0a\x00" + frame(M2),  # GBP bits: a frame error unless gbp
    HEADER10[:6],
]
SOURCES = ["198.51.100.2", "198.51.100.3"]


def _configs() -> st.SearchStrategy[VtepConfig]:
    return st.builds(
        VtepConfig,
        vni=st.sampled_from([10, 20]),
        local=st.just("198.51.100.1"),
        group=st.just("239.1.1.1"),
        learning=st.booleans(),
        gbp=st.booleans(),
        ageing=st.sampled_from([2, 300]),
        max_entries=st.sampled_from([0, 2]),
    )


def _state(core: Vtep) -> tuple[object, ...]:
    return (core.take_outputs(), core.counters(), core.fdb_dump(), core.next_timer())


@settings(max_examples=80, deadline=None)
@given(
    a=_configs(),
    b=_configs(),
    steps=st.lists(
        st.tuples(st.sampled_from(range(len(PAYLOADS))), st.sampled_from(SOURCES), st.booleans()), max_size=14
    ),
    shared_pool=st.booleans(),
)
def test_two_vteps_are_independent(
    a: VtepConfig, b: VtepConfig, steps: list[tuple[int, str, bool]], shared_pool: bool
) -> None:
    """Two devices with different settings receive the same datagrams (the same objects, and one
    parse), interleaved, sometimes sharing a pool: each ends as a twin that received alone."""
    pool = RemotePool() if shared_pool else None
    together = [Vtep(a, pool=pool), Vtep(b, pool=pool)]
    alone = [Vtep(a), Vtep(b)]
    for core in (*together, *alone):
        core.up(0.0)
    for t, (i, src, parsed) in enumerate(steps):
        datagram = parse_datagram(PAYLOADS[i])
        for core in together:
            if parsed:
                core.receive_parsed(datagram, src, 50000, float(t))
            else:
                core.receive(PAYLOADS[i], src, 50000, float(t))
            core.handle_timer(float(t))
        for core in alone:
            core.receive(bytes(bytearray(PAYLOADS[i])), src, 50000, float(t))
            core.handle_timer(float(t))
        for x, y in zip(together, alone, strict=True):
            assert _state(x) == _state(y)


def test_a_migration_in_one_vtep_is_not_seen_by_another_sharing_its_pool() -> None:
    pool = RemotePool()
    one, two = (Vtep(VtepConfig(vni=10, local=f"198.51.100.{i}", group="239.1.1.1"), pool=pool) for i in (1, 4))
    for core in (one, two):
        core.up(0.0)
    first = parse_datagram(HEADER10 + frame(M1))
    one.receive_parsed(first, "198.51.100.2", 50000, 1.0)
    two.receive_parsed(first, "198.51.100.2", 50000, 1.0)
    one.receive_parsed(first, "198.51.100.3", 50000, 2.0)
    assert one.take_outputs()[-2:] == [
        EntryMigrated("02:00:00:00:00:01", "198.51.100.2", "198.51.100.3"),
        DeliverFrame(first.payload[8:]),
    ]
    assert two.take_outputs()[-2:] == [
        EntryLearned("02:00:00:00:00:01", "198.51.100.2"),
        DeliverFrame(first.payload[8:]),
    ]
    assert [e.dst for e in one.fdb_dump()][1:] == ["198.51.100.3"]
    assert [e.dst for e in two.fdb_dump()][1:] == ["198.51.100.2"]
