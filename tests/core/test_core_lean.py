"""The core at simulation scale: one parse for many cores, a shared remote pool, small learned
entries, linear append. The sharing is the driver's (``parse_datagram``, ``RemotePool``): nothing is
shared between cores behind its back."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import ConfigError, DeliverFrame, EntryExpired, EntryLearned, FdbEntry, SendDatagram, Vtep, VtepConfig
from pyvxlan.core.datagram import parse_datagram
from pyvxlan.core.events import Output
from pyvxlan.core.fdb import RemotePool

HEADER = b"\x08\x00\x00\x00\x00\x00\x0a\x00"  # I flag, VNI 10
DEV_MAC = "02:00:00:00:0a:01"
PEER = "198.51.100.9"


def group_core(i: int, pool: RemotePool | None = None, **options: object) -> Vtep:
    config = VtepConfig(vni=10, local=f"198.51.100.{i}", group="239.1.1.1", mac=DEV_MAC, **options)  # type: ignore[arg-type]
    core = Vtep(config, pool=pool)
    core.up(0.0)
    core.take_outputs()
    return core


def flood(src_mac: bytes) -> bytes:
    """A broadcast ARP request from ``src_mac``, as a VXLAN payload."""
    return HEADER + b"\xff" * 6 + src_mac + b"\x08\x06" + bytes(28)


def test_one_parse_reaches_many_cores() -> None:
    pool = RemotePool()
    cores = [group_core(i, pool) for i in range(1, 6)]
    payload = flood(bytes.fromhex("020000000001"))
    parsed = parse_datagram(payload)
    assert parsed == (
        payload,
        50,
        0x08000000,
        0x00000A00,
        bytes.fromhex("020000000001"),
        False,
        DeliverFrame(payload[8:]),
    )
    assert parsed.vni == 10
    for core in cores:
        core.receive_parsed(parsed, PEER, 50000, 1.0)
        assert core.take_outputs() == [EntryLearned("02:00:00:00:00:01", PEER), DeliverFrame(payload[8:])]
        assert [(e.mac, e.dst, e.updated) for e in core.fdb_dump()] == [
            ("00:00:00:00:00:00", "239.1.1.1", 0.0),
            ("02:00:00:00:00:01", PEER, 1.0),
        ]


def test_a_parse_of_short_or_odd_bytes_never_raises() -> None:
    for payload in (b"", b"\x08", bytearray(HEADER), memoryview(HEADER + bytes(13))):
        parsed = parse_datagram(payload)
        assert parsed.payload == bytes(payload)
        assert (parsed.size, parsed.src_mac, parsed.truncated, parsed.deliver) == (
            len(payload),
            b"",
            False,
            DeliverFrame(b""),
        )
    assert parse_datagram(HEADER[:7]).word0 == 0
    assert parse_datagram(HEADER).vni == 10


def test_a_mutated_bytearray_is_parsed_again() -> None:
    core = group_core(1)
    buf = bytearray(flood(bytes.fromhex("020000000001")))
    core.receive(buf, PEER, 50000, 1.0)
    buf[14:20] = bytes.fromhex("020000000002")
    core.receive(buf, PEER, 50000, 2.0)
    assert [o for o in core.take_outputs() if isinstance(o, EntryLearned)] == [
        EntryLearned("02:00:00:00:00:01", PEER),
        EntryLearned("02:00:00:00:00:02", PEER),
    ]


# Datagrams that stop at each receive check in turn: the shared parse must not change which.
DATAGRAMS = [
    b"",
    b"\x08\x00\x00",
    b"\x00\x00\x00\x00\x00\x00\x0a\x00" + bytes(60),  # no I flag
    b"\x08\x00\x00\x00\x00\x00\x14\x00" + bytes(60),  # VNI 20
    b"\x08\x00\x00\x01\x00\x00\x0a\x00" + bytes(60),  # reserved bits
    b"\x88\x00\x00\x01\x00\x00\x0a\x00" + bytes(60),  # G and bytes 1-3: fine with gbp
    HEADER + bytes(10),  # inner frame of 10 bytes
    flood(bytes.fromhex(DEV_MAC.replace(":", ""))),  # own MAC
    flood(bytes.fromhex("010000000001")),  # multicast source
    flood(bytes(6)),  # zero source
    flood(bytes.fromhex("020000000001")),
    flood(bytes.fromhex("020000000002")),
    HEADER + b"\xff" * 6 + bytes.fromhex("020000000003") + b"\x08\x00" + bytes(10),  # truncated IPv4
    HEADER + b"\xff" * 6 + bytes.fromhex("020000000003") + b"\x86\xdd" + bytes(70),
]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(range(len(DATAGRAMS))), st.sampled_from([PEER, "198.51.100.8"])),
        max_size=12,
    ),
    learning=st.lists(st.booleans(), min_size=4, max_size=4),
    gbp=st.lists(st.booleans(), min_size=4, max_size=4),
    down=st.integers(0, 3),
)
def test_shared_parse_gives_what_fresh_copies_give(
    steps: list[tuple[int, str]], learning: list[bool], gbp: list[bool], down: int
) -> None:
    """Each datagram is parsed once for four cores sharing a pool, and received as four fresh
    copies by four twins with a pool each."""

    def make(pool: RemotePool | None) -> list[Vtep]:
        cores = [group_core(i + 1, pool, learning=learning[i], gbp=gbp[i], ageing=5) for i in range(4)]
        cores[down].down(0.0)
        cores[down].take_outputs()
        return cores

    shared, fresh = make(RemotePool()), make(None)
    for t, (i, src) in enumerate(steps):
        parsed = parse_datagram(DATAGRAMS[i])
        for a, b in zip(shared, fresh, strict=True):
            a.receive_parsed(parsed, src, 50000, float(t))
            b.receive(bytes(bytearray(DATAGRAMS[i])), src, 50000, float(t))
            a.handle_timer(float(t))
            b.handle_timer(float(t))
            assert a.take_outputs() == b.take_outputs()
    for a, b in zip(shared, fresh, strict=True):
        assert a.counters() == b.counters()
        assert a.fdb_dump() == b.fdb_dump()
        assert a.next_timer() == b.next_timer()


@pytest.mark.slow
def test_learned_entries_take_under_140_bytes_each() -> None:
    """200 cores each learn 300 MACs from floods, as in a simulated flood-and-learn lab: the
    driver parses each flood once and gives all its cores one remote pool."""
    pool = RemotePool()
    cores = [group_core(i % 250 + 1, pool) for i in range(200)]
    floods = [flood(b"\x02\xff" + i.to_bytes(4, "big")) for i in range(300)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t, payload in enumerate(floods):
            parsed = parse_datagram(payload)
            for core in cores:
                core.receive_parsed(parsed, f"198.51.100.{t % 200 + 1}", 50000, float(t))
                core.take_outputs()
        floods.clear()
        del payload, parsed
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    entries = sum(len(core.fdb) - 1 for core in cores)
    assert entries == 200 * 300
    assert held / entries < 140, f"{held / entries:.0f} bytes an entry"


@pytest.mark.slow
def test_refreshing_a_known_mac_keeps_nothing_per_receiver() -> None:
    pool = RemotePool()
    cores = [group_core(i % 250 + 1, pool) for i in range(500)]
    parsed = parse_datagram(flood(bytes.fromhex("020000000001")))
    for core in cores:
        core.receive_parsed(parsed, PEER, 50000, 1.0)
        core.take_outputs()
    again = parse_datagram(flood(bytes.fromhex("020000000001")))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for core in cores:
            core.receive_parsed(again, PEER, 50000, 2.0)
            core.take_outputs()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2048, f"{held} bytes held after 500 refreshes"
    for core in cores:
        assert [(e.mac, e.dst, e.updated) for e in core.fdb_dump()][1:] == [("02:00:00:00:00:01", PEER, 2.0)]


def test_refresh_moves_an_entry_to_the_end_of_the_ageing_order() -> None:
    core = group_core(1, ageing=10)
    core.receive(flood(bytes.fromhex("020000000001")), PEER, 50000, 1.0)
    core.receive(flood(bytes.fromhex("020000000002")), PEER, 50000, 2.0)
    core.receive(flood(bytes.fromhex("020000000003")), PEER, 50000, 2.5)
    core.receive(flood(bytes.fromhex("020000000001")), PEER, 50000, 3.0)  # refreshed: now the newest
    core.take_outputs()
    assert core.next_timer() == 12.0
    core.handle_timer(12.5)
    assert core.take_outputs() == [
        EntryExpired("02:00:00:00:00:02", PEER),
        EntryExpired("02:00:00:00:00:03", PEER),
    ]
    assert core.next_timer() == 13.0
    assert [e.mac for e in core.fdb_dump()] == ["00:00:00:00:00:00", "02:00:00:00:00:01"]


def test_append_of_many_peers_keeps_each_once_in_order() -> None:
    core = Vtep(VtepConfig(vni=10, local="2001:db8::1"))
    peers = [f"2001:db8::{i:x}" for i in range(2, 1502)]
    zero = "00:00:00:00:00:00"
    core.fdb_append_many([FdbEntry(zero, p) for p in peers])
    core.fdb_append_many([FdbEntry(zero, p) for p in reversed(peers)])  # all already there
    core.fdb_append(zero, peers[0], port=5555)  # another port: another remote
    assert [(e.dst, e.port) for e in core.fdb_dump()] == [(p, None) for p in peers] + [(peers[0], 5555)]
    core.fdb_del(zero, peers[700])
    core.fdb_del(zero, peers[701], port=6666)  # no such remote: nothing changes
    core.fdb_append(zero, peers[700])  # back, at the end
    dsts = [e.dst for e in core.fdb_dump()]
    assert dsts == [*peers[:700], *peers[701:], peers[0], peers[700]]


def test_head_end_copies_share_one_payload() -> None:
    """Head-end replication to 200 peers holds one 1,400-byte payload per VNI, not one per copy."""
    core = Vtep(VtepConfig(vni=10, local="2001:db8::1"))
    core.up(0.0)
    zero = "00:00:00:00:00:00"
    for i in range(2, 202):
        core.fdb_append(zero, f"2001:db8::{i:x}")
    core.fdb_append(zero, "2001:db8::ffff", vni=20)
    core.take_outputs()
    frame = b"\xff" * 6 + bytes.fromhex("020000000001") + b"\x08\x00" + bytes(1386)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        core.transmit(frame, 1.0)
        sends: list[Output] = core.take_outputs()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(isinstance(s, SendDatagram) for s in sends)
    payloads = [s.payload for s in sends if isinstance(s, SendDatagram)]
    assert payloads == [HEADER + frame] * 200 + [b"\x08\x00\x00\x00\x00\x00\x14\x00" + frame]
    assert held < 201 * 300, f"{held} bytes for 201 copies"  # one payload each would be 201 * 1,400


def test_a_state_that_is_not_an_fdb_state_changes_nothing() -> None:
    core = Vtep(VtepConfig(vni=10, local="198.51.100.1", remote="198.51.100.2"))
    before = core.fdb_dump()
    for call in (core.fdb_add, core.fdb_append):
        with pytest.raises(ConfigError) as info:
            call("00:00:00:00:00:00", "198.51.100.3", state="static")  # type: ignore[arg-type]
        assert str(info.value) == "state: must be an FdbState, got 'static'"
    assert core.fdb_dump() == before


# --- what the cyclic garbage collector sees (issue 11: a large simulation with CPython's defaults) ---


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_learned_entries_are_no_objects_the_garbage_collector_tracks() -> None:
    """Ten thousand learned entries add no object the cyclic collector walks: a record is a slot in
    lists of atoms and shared objects (core/fdb.py), so a table of ten million costs a full
    collection no more than an empty one. Expiring them all leaves the lists' slots to reuse."""
    core = group_core(1)
    core.receive(flood(bytes.fromhex("020000000000")), PEER, 50000, 0.5)
    core.take_outputs()
    before = _tracked()
    for i in range(1, 10_001):
        core.receive(flood(b"\x02\x01" + i.to_bytes(4, "big")), PEER, 50000, 1.0)
        core.take_outputs()
    assert len(core.fdb) == 10_002
    assert _tracked() - before < 20
    core.handle_timer(1000.0)
    assert len(core.take_outputs()) == 10_001  # EntryExpired each
    assert [e.mac for e in core.fdb_dump()] == ["00:00:00:00:00:00"]
    for i in range(1, 10_001):
        core.receive(flood(b"\x02\x01" + i.to_bytes(4, "big")), PEER, 50000, 1001.0)
        core.take_outputs()
    assert len(core.fdb) == 10_001
    assert _tracked() - before < 20


def test_taking_outputs_leaves_no_new_object_behind_per_core() -> None:
    """After a flood reaches a thousand cores and the driver takes each one's outputs, no core holds
    an object made since: a fresh empty queue per call would live until that core's next datagram,
    and the collector would promote a thousand of them per flood into the generation it walks whole."""
    pool = RemotePool()
    cores = [group_core(i % 250 + 1, pool) for i in range(1000)]
    gc.collect()
    gc.disable()  # so that everything made below is still in the youngest generation at the end
    try:
        for t in range(2, 12):
            parsed = parse_datagram(flood(b"\x02\x00\x00\x00\x00" + bytes([t])))
            for core in cores:
                core.receive_parsed(parsed, PEER, 50000, float(t))
                assert [type(o) for o in core.take_outputs()] == [EntryLearned, DeliverFrame]
        del parsed
        young = gc.get_objects(generation=0)
    finally:
        gc.enable()
    assert len(young) < 100, len(young)
