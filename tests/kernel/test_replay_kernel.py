"""``pyvxlan replay`` against a kernel lab: the underlay captured with tcpdump, replayed, and the
model's tables and timeline held against the kernel's own tables and notifications (issue 14)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import trio

from pyvxlan import EntryLearned, EntryMigrated, pcap
from pyvxlan.kernel import open_lab
from pyvxlan.lab.topology import FdbMode, classic_demo
from pyvxlan.replay import ChangeKind, Finding, Replay, TableChange

pytestmark = pytest.mark.kernel

# Notifications reach the test through netlink and a worker thread; the capture's timestamp of
# the datagram that caused them is earlier by that much at most.
TOLERANCE = 0.5


def merge(parts: list[Path], out: Path) -> int:
    """One capture from several (one per bridge port), in timestamp order, as mergecap does."""
    records: list[tuple[float, int, bytes]] = []
    for i, part in enumerate(parts):
        with part.open("rb") as f:
            for ts, linktype, buf, start, end, _wire in pcap.raw_records(f):
                assert linktype == 1
                records.append((ts, i, bytes(buf[start:end])))
    records.sort(key=lambda r: (r[0], r[1]))
    return pcap.write(out, [(ts, frame) for ts, _, frame in records])


@pytest.mark.parametrize("mode", [FdbMode.MULTICAST, FdbMode.UNICAST], ids=["multicast", "head-end-replication"])
def test_kernel_lab_replayed_gives_its_tables_and_every_learn_and_migrate(
    root: None, tmp_path: Path, mode: FdbMode
) -> None:
    """Three hosts: pings, guest2 moves to host3 (the kernel's "MAC migrated" from its gratuitous
    ARP), pings again. tcpdump records every frame entering the underlay bridge, one process per
    host port. Replayed, the model's tables equal the devices' (``bridge fdb show``: the all-zeros
    entries as well as the learned ones), and every RTM_NEWNEIGH the kernel sent (learned or
    migrated, as vxlan_snoop and vxlan_fdb_update report them) is in the timeline, at the time of
    the datagram that caused it."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("needs tcpdump")
    topology = classic_demo(3, mode=mode)
    address_of = {h.name: h.address for h in topology.hosts}
    notes: list[tuple[float, str, EntryLearned | EntryMigrated]] = []
    tables: dict[tuple[str, int], list[tuple[str, str, int | None, int | None, str]]] = {}
    parts = [tmp_path / f"{h}.pcap" for h in address_of]

    async def listen(lab: object, host: str, task_status: trio.TaskStatus[None]) -> None:
        async with lab.vtep(host, 10).subscribe() as stream:  # type: ignore[attr-defined]
            task_status.started()
            async for note in stream:
                if isinstance(note, (EntryLearned, EntryMigrated)):
                    notes.append((time.time(), address_of[host], note))

    async def main() -> None:
        async with open_lab(topology) as lab:
            ul = lab.netns("underlay")
            dumps = [
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ul,
                        tcpdump,
                        "-i",
                        host,
                        "-Q",
                        "in",
                        "--immediate-mode",
                        "-U",
                        "-w",
                        str(part),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                for host, part in zip(address_of, parts, strict=True)
            ]
            try:
                with trio.fail_after(10):
                    while not all(p.exists() and p.stat().st_size >= 24 for p in parts):
                        await trio.sleep(0.05)
                await trio.sleep(0.3)  # the capture sockets are bound before the file is written
                async with trio.open_nursery() as nursery:
                    for host in address_of:
                        await nursery.start(listen, lab, host)
                    assert (await lab.guest("guest1").ping("203.0.113.2")).received == 1
                    assert (await lab.guest("guest3").ping("203.0.113.1")).received == 1
                    assert (await lab.guest("guest2").ping("203.0.113.3")).received == 1
                    await lab.move_guest("guest2", "host3")
                    await trio.sleep(0.3)
                    assert (await lab.guest("guest1").ping("203.0.113.2", count=2)).received == 2
                    await trio.sleep(0.5)
                    nursery.cancel_scope.cancel()
                for host, address in address_of.items():
                    tables[(address, 10)] = sorted(e.key() for e in lab.fdb(host, 10))
            finally:
                for p in dumps:
                    p.send_signal(signal.SIGINT)
                for p in dumps:
                    _, err = p.communicate(timeout=10)
                    assert b"\n0 packets dropped by kernel" in err, err

    trio.run(main)
    merged = tmp_path / "underlay.pcap"
    merge(parts, merged)
    r = Replay(merged)
    events = list(r.events())
    assert [e for e in events if isinstance(e, Finding)] == []
    assert {key: sorted(e.key() for e in entries) for key, entries in r.tables().items()} == tables
    timeline = [e for e in events if isinstance(e, TableChange)]
    kinds = {ChangeKind.LEARNED, ChangeKind.MIGRATED}
    replayed = sorted((c.vtep, c.kind.value, c.mac, c.dst, c.old_dst or "") for c in timeline if c.kind in kinds)
    kernel = sorted(
        (vtep, "learned", n.mac, n.dst, "")
        if isinstance(n, EntryLearned)
        else (vtep, "migrated", n.mac, n.new_dst, n.old_dst)
        for _, vtep, n in notes
    )
    assert replayed == kernel
    assert any(kind == "migrated" for _, kind, *_ in kernel)
    for at, vtep, n in notes:
        mac = n.mac
        (change,) = [
            c
            for c in timeline
            if c.vtep == vtep
            and c.mac == mac
            and c.kind in kinds
            and abs(c.time - at) < TOLERANCE
            and c.dst == (n.dst if isinstance(n, EntryLearned) else n.new_dst)
        ]
        assert change.time <= at
