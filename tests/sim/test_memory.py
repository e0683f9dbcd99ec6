"""MemoryVtep: control calls reach the core, actions reach the driver, notifications the subscribers."""

from __future__ import annotations

import gc
import re
import tracemalloc
from pathlib import Path

import pytest
import trio
import trio.testing

from pyvxlan import (
    DeliverFrame,
    Direction,
    Dropped,
    DropReason,
    EntryLearned,
    FdbBatchError,
    FdbEntry,
    JoinGroup,
    L2Miss,
    LeaveGroup,
    Vtep,
    VtepConfig,
)
from pyvxlan.core.datagram import parse_datagram
from pyvxlan.core.events import Action, Notification
from pyvxlan.core.fdb import RemotePool
from pyvxlan.sim.memory import MemoryVtep

GROUP_CONFIG = VtepConfig(vni=10, local="198.51.100.1", group="239.1.1.1", l2miss=True)


def test_actions_of_control_calls_go_to_on_actions() -> None:
    seen: list[list[Action]] = []

    async def main() -> None:
        control = MemoryVtep(Vtep(GROUP_CONFIG), on_actions=seen.append)
        await control.up()
        await control.down()
        assert control.pending_actions == []

    trio.run(main)
    assert seen == [[JoinGroup("239.1.1.1")], [LeaveGroup("239.1.1.1")]]


def test_actions_accumulate_without_a_callback() -> None:
    async def main() -> None:
        control = MemoryVtep(Vtep(GROUP_CONFIG))
        await control.up()
        assert control.pending_actions == [JoinGroup("239.1.1.1")]
        assert await control.is_up()

    trio.run(main)


def test_time_comes_from_the_clock() -> None:
    clock = [5.0]

    async def main() -> None:
        control = MemoryVtep(Vtep(GROUP_CONFIG), clock=lambda: clock[0])
        await control.fdb_add("02:00:00:00:00:01", "198.51.100.2")
        clock[0] = 9.0
        await control.fdb_append_many([FdbEntry("00:00:00:00:00:00", "198.51.100.3")])
        entries = await control.fdb()
        assert [(e.mac, e.dst, e.updated) for e in entries] == [
            ("00:00:00:00:00:00", "239.1.1.1", 9.0),  # the group's entry; the append refreshed it
            ("00:00:00:00:00:00", "198.51.100.3", 9.0),
            ("02:00:00:00:00:01", "198.51.100.2", 5.0),
        ]
        assert control.vtep.now == 9.0

    trio.run(main)


def test_subscribers_see_dispatched_notifications_in_order() -> None:
    got: list[Notification] = []

    async def main() -> None:
        vtep = Vtep(VtepConfig(vni=10, local="198.51.100.1", l2miss=True))
        control = MemoryVtep(vtep)
        await control.up()
        frame = bytes.fromhex("020000000002020000000001") + b"\x08\x00" + bytes(46)
        async with control.subscribe() as stream:
            vtep.transmit(frame, now=1.0)  # no default entry: l2miss and a drop
            vtep.receive(b"\x08\x00\x00\x00\x00\x00\x0a\x00" + frame, "198.51.100.2", 50000, now=2.0)
            actions = control.dispatch(vtep.take_outputs())
            assert actions == [DeliverFrame(frame)]
            for _ in range(3):
                got.append(await stream.__anext__())
        control.dispatch([L2Miss("02:00:00:00:00:09")])  # nobody listens any more: dropped quietly

    trio.run(main)
    assert got == [
        L2Miss("02:00:00:00:00:02"),
        Dropped(Direction.TX, DropReason.NO_TX_TARGET, 60, "02:00:00:00:00:02"),
        EntryLearned("02:00:00:00:00:01", "198.51.100.2"),
    ]


def test_batch_failure_still_routes_outputs_and_reports_applied() -> None:
    async def main() -> None:
        control = MemoryVtep(Vtep(VtepConfig(vni=10, max_entries=1)))
        try:
            await control.fdb_append_many(
                [FdbEntry("02:00:00:00:00:01", "198.51.100.2"), FdbEntry("02:00:00:00:00:02", "198.51.100.2")]
            )
        except FdbBatchError as exc:
            assert (exc.applied, exc.index) == (1, 1)
            assert str(exc) == (
                "entry 1 failed after 1 applied: the table holds max_entries=1 entries; cannot add 02:00:00:00:00:02"
            )
        else:
            raise AssertionError("no FdbBatchError")

    trio.run(main)


def test_every_method_checkpoints() -> None:
    async def main() -> None:
        control = MemoryVtep(Vtep(GROUP_CONFIG))
        with trio.testing.assert_checkpoints():
            await control.counters()
        with trio.testing.assert_checkpoints():
            await control.neighbours()

    trio.run(main)


# --- what an entry costs (issue 10: the documented figure must be the measured one) --------------

ROOT = Path(__file__).resolve().parents[2]
HEADER = b"\x08\x00\x00\x00\x00\x00\x0a\x00\x02\x00\x00\x00\x00\x02\x02"  # VXLAN, then dst MAC, 1st byte of src
TAIL = b"\x08\x06" + bytes(46)


def _bytes_per_entry(devices: int, macs: int) -> float:
    """Memory traced while ``devices`` cores learn ``macs`` source MACs each, a fresh payload and
    a fresh ``now`` float per datagram (what a driver hands over), per entry. The cores share a
    remote pool and get each datagram parsed once, as the simulator's cores do."""
    pool = RemotePool()
    cores = [Vtep(VtepConfig(vni=10, local=f"198.51.100.{i + 1}"), pool=pool) for i in range(devices)]
    for core in cores:
        core.up(now=0.0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(macs):
            parsed = parse_datagram(HEADER + i.to_bytes(5, "big") + TAIL)
            now = 1.0 + i * 0.001
            for core in cores:
                core.receive_parsed(parsed, "198.51.100.200", 50000, now)
                core.take_outputs()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(len(core.fdb) == macs for core in cores)
    return grown / (devices * macs)


def _documented(path: Path, pattern: str) -> int:
    match = re.search(pattern, " ".join(path.read_text().split()))
    assert match is not None, f"{path.name} no longer states the figure"
    return int(match.group(1))


@pytest.mark.slow
def test_an_unbounded_core_grows_by_the_documented_bytes_per_learned_entry() -> None:
    """A lone core whose driver never calls handle_timer keeps every source MAC: about 200 bytes
    each (the record, its dict slot, its MAC key, its ``now`` float), as the docs say."""
    measured = _bytes_per_entry(1, 30_000)
    for path, pattern in [
        (ROOT / "docs" / "state-machine.md", r"own MAC key and `now` float\): about (\d+) bytes an entry"),
        (ROOT / "pyvxlan" / "core" / "fdb.py", r"its ``now`` float too: about (\d+) bytes an entry"),
    ]:
        documented = _documented(path, pattern)
        assert documented * 0.85 <= measured <= documented * 1.15, (path.name, documented, measured)


@pytest.mark.slow
def test_devices_learning_the_same_flood_share_all_but_the_record() -> None:
    measured = _bytes_per_entry(20, 5_000)
    for path, pattern in [
        (ROOT / "docs" / "state-machine.md", r"A learned entry costs about (\d+) bytes with its slot"),
        (ROOT / "pyvxlan" / "core" / "fdb.py", r"A learned record costs about (\d+) bytes with its slot"),
    ]:
        documented = _documented(path, pattern)
        assert documented * 0.85 <= measured <= documented * 1.15, (path.name, documented, measured)
