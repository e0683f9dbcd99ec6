"""``lab.events`` is bounded by default (the latest ``KEPT_EVENTS``), ``lab.event_counts`` counts
every event, and ``keep_events`` / ``events_file`` keep them all, none, the last N, or stream
them to a file (issue 10: a 200k-frame MAC flood grew ``lab.events`` to 200,002 entries)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyvxlan import ConfigError
from pyvxlan.lab.topology import classic_demo
from pyvxlan.sim import EventKind, SimLab, open_lab, run
from pyvxlan.sim.lab import KEPT_EVENTS
from pyvxlan.wire.packets import BROADCAST


def flood(frames: int, **kw: Any) -> tuple[SimLab, list[str]]:
    """guest1 sends ``frames`` broadcasts, each from a new source MAC (a MAC flood): host2's
    VTEP learns every one, and guest2 drops every one (an ethertype it has no handler for).
    Returns the lab (closed) and its events as text."""
    out: list[SimLab] = []

    async def main() -> None:
        async with open_lab(classic_demo(), **kw) as lab:
            guest = lab.guest("guest1")
            for i in range(frames):
                guest.send_frame(BROADCAST + (0x020000000000 + 0x100 + i).to_bytes(6, "big") + b"\x88\xb5" + bytes(46))
            await lab.sleep(1)
            out.append(lab)

    run(main)
    return out[0], [str(e) for e in out[0].events]


def test_a_mac_flood_keeps_the_latest_events_and_counts_them_all() -> None:
    frames = KEPT_EVENTS
    lab, events = flood(frames)
    assert len(events) == KEPT_EVENTS
    assert lab.event_counts == {EventKind.LEARNED: frames, EventKind.DROPPED: frames, EventKind.JOINED: 2}
    last = (0x100 + frames - 1).to_bytes(2, "big").hex(":")
    assert events[-2:] == [
        f"    0.001000 host2/vxlan10 learned 02:00:00:00:{last} dst 198.51.100.1",
        "    0.001000 guest2 dropped guest_unhandled",
    ]


def test_keep_events_all_none_or_the_last_n(tmp_path: Path) -> None:
    everything, every = flood(50, keep_events=True)
    assert len(every) == 102 and every[0] == "    0.000000 host1/vxlan10 joined 239.1.1.1"
    none, kept = flood(50, keep_events=False)
    assert kept == []
    counts = {EventKind.LEARNED: 50, EventKind.DROPPED: 50, EventKind.JOINED: 2}
    assert none.event_counts == everything.event_counts == counts
    assert flood(50, keep_events=5)[1] == every[-5:]
    # Streamed: every event, one line each, whatever is kept.
    path = tmp_path / "events.txt"
    assert flood(50, keep_events=False, events_file=str(path))[1] == []
    assert path.read_text().splitlines() == every


@pytest.mark.parametrize(("value", "shown"), [(-1, "-1"), (1.5, "1.5"), ("all", "'all'"), (None, "None")])
def test_keep_events_is_checked(value: object, shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        flood(1, keep_events=value)
    assert str(info.value) == f"keep_events: must be True (all), False (none) or a number of events >= 0, got {shown}"


def test_events_file_in_a_missing_folder_is_refused_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "events.txt"
    with pytest.raises(ConfigError) as info:
        flood(1, events_file=str(path))
    assert str(info.value) == f"events_file: cannot write '{path}': No such file or directory"
