"""The lab's event log on its own: what it keeps, streams and counts."""

from __future__ import annotations

import io

from pyvxlan.sim.log import EventKind, EventLog, LabEvent


def test_keeps_the_latest_and_counts_every_event() -> None:
    now = [1.0]
    log = EventLog(lambda: now[0], keep=2)
    for i in range(3):
        now[0] = float(i)
        log.record(EventKind.ACTION, "lab", f"step {i}")
    log.count(EventKind.LEARNED)
    assert list(log.events) == [
        LabEvent(1.0, EventKind.ACTION, "lab", "step 1"),
        LabEvent(2.0, EventKind.ACTION, "lab", "step 2"),
    ]
    assert log.counts == {EventKind.ACTION: 3, EventKind.LEARNED: 1}


def test_keeping_none_records_nothing_but_still_counts() -> None:
    log = EventLog(lambda: 0.0, keep=0)
    assert not log.recording
    log.record(EventKind.DROPPED, "underlay", "loss", "loss")
    assert (list(log.events), log.counts[EventKind.DROPPED]) == ([], 1)


def test_a_stream_gets_every_event_as_a_line_and_is_closed_once() -> None:
    stream = io.StringIO()
    log = EventLog(lambda: 0.5, keep=0)
    log.stream_to(stream)
    assert log.recording
    log.record(EventKind.DROPPED, "host1/vxlan10", "unknown_vni port 4789 from 198.51.100.2", "unknown_vni")
    assert stream.getvalue() == "    0.500000 host1/vxlan10 dropped unknown_vni port 4789 from 198.51.100.2\n"
    log.close()
    log.close()
    assert stream.closed and not log.recording
