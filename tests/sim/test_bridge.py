"""The learning bridge on its own: ports, learning, flooding, and the errors of its public calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyvxlan.errors import ConfigError, LabKeyError
from pyvxlan.sim import bridge as bridge_module
from pyvxlan.sim.bridge import Bridge, BridgeEntry, FloodLog
from pyvxlan.sim.ledger import Ledger

A = bytes.fromhex("020000000001")
B = bytes.fromhex("020000000002")
GROUP = bytes.fromhex("3333ff000002")


def _frame(dst: bytes, src: bytes) -> bytes:
    return dst + src + b"\x86\xdd" + bytes(40)


class Ports:
    """A bridge with ports ``vxlan10``, ``g1`` and (optionally) ``g2``, recording what leaves each."""

    def __init__(self, *, two_guests: bool = True, floods: FloodLog | None = None) -> None:
        self.ledger = Ledger()
        self.drops: list[tuple[str, bytes]] = []
        self.out: list[tuple[str, bytes]] = []
        self.bridge = Bridge(
            "br10", drop=lambda reason, frame: self.drops.append((reason, frame)), ledger=self.ledger, floods=floods
        )
        names = ["vxlan10", "g1", "g2"] if two_guests else ["vxlan10", "g1"]
        for name in names:
            self.bridge.attach(name, self._port(name))

    def _port(self, name: str) -> Callable[[bytes], None]:
        def deliver(frame: bytes) -> None:
            self.out.append((name, frame))

        return deliver


def test_a_second_port_of_the_same_name_is_refused() -> None:
    p = Ports()
    with pytest.raises(ConfigError) as info:
        p.bridge.attach("g1", lambda frame: None)
    assert (info.value.field, str(info.value)) == ("port", "port: bridge br10 already has a port 'g1'")


def test_detaching_a_port_it_does_not_have_names_the_ports() -> None:
    p = Ports()
    with pytest.raises(LabKeyError) as info:
        p.bridge.detach("g9")
    assert str(info.value) == "no port of bridge br10 'g9' (there are: vxlan10, g1, g2)"


def test_receive_flood_learns_the_shared_source_and_floods_to_the_other_ports() -> None:
    p = Ports()
    stamp = ("vxlan10", 1.5)
    frame = _frame(GROUP, A)
    p.bridge.receive_flood("vxlan10", frame, A, stamp)
    assert p.out == [("g1", frame), ("g2", frame)]
    assert p.ledger.created == 1  # one extra copy for the second port
    assert p.bridge.entries(2.0) == [BridgeEntry("02:00:00:00:00:01", "vxlan10", 1.5)]
    assert p.bridge.flooded == 1
    # A unicast frame back to A now goes out of vxlan10 alone.
    p.out.clear()
    p.bridge.receive("g1", _frame(A, B), 2.0)
    assert [name for name, _ in p.out] == ["vxlan10"]


def test_receive_flood_to_a_bridge_with_one_other_port_makes_no_extra_copy() -> None:
    p = Ports(two_guests=False)
    frame = _frame(GROUP, A)
    p.bridge.receive_flood("vxlan10", frame, A, ("vxlan10", 1.0))
    assert (p.out, p.ledger.created) == ([("g1", frame)], 0)


def _refuse(floods: FloodLog, bridges: list[Ports], src: bytes, stamp: tuple[str, float]) -> None:
    bits = floods.bitmap()
    for p in bridges:
        bits[p.bridge.number >> 3] |= 1 << (p.bridge.number & 7)
    Bridge.flood_refused(floods, bits, src, stamp)


def test_flood_refused_learns_on_every_bridge_it_names_and_delivers_nothing() -> None:
    floods = FloodLog()
    bridges = [Ports(two_guests=False, floods=floods) for _ in range(10)]
    assert [p.bridge.number for p in bridges] == list(range(10))
    _refuse(floods, bridges[:9:2], A, ("vxlan10", 4.0))
    for i, p in enumerate(bridges):
        learned = i < 9 and i % 2 == 0
        assert (p.out, p.bridge.flooded) == ([], 1 if learned else 0)
        assert p.bridge.entries(4.0) == ([BridgeEntry("02:00:00:00:00:01", "vxlan10", 4.0)] if learned else [])
    late = Ports(two_guests=False, floods=floods)  # made after the flood: none of it is its
    assert (late.bridge.number, late.bridge.entries(4.0), late.bridge.flooded) == (10, [], 0)


def test_a_logged_flood_takes_its_place_among_the_bridges_own_frames() -> None:
    """What a bridge learned from the log and from its own frames ends as if it had learned each
    when it happened: the later wins, whichever way it came."""
    floods = FloodLog()
    p, other = Ports(floods=floods), Ports(floods=floods)
    p.bridge.receive("g1", _frame(GROUP, A), 1.0)  # A behind g1 at 1.0, then a flood says vxlan10 at 2.0
    _refuse(floods, [p, other], A, ("vxlan10", 2.0))
    p.bridge.receive("g2", _frame(GROUP, B), 3.0)
    assert p.bridge.entries(3.0) == [
        BridgeEntry("02:00:00:00:00:01", "vxlan10", 2.0),
        BridgeEntry("02:00:00:00:00:02", "g2", 3.0),
    ]
    _refuse(floods, [p], B, ("vxlan10", 4.0))  # B's flood comes after its own frame: B moves
    p.out.clear()
    p.bridge.receive("g1", _frame(B, A), 5.0)  # unicast to B: out of vxlan10, where the flood put it
    assert [name for name, _ in p.out] == ["vxlan10"]
    assert p.bridge.flooded == 4  # the two own group frames, the two logged floods
    # A flush or a detach drops what the log held for the bridge, as it drops what it learned.
    _refuse(floods, [other], B, ("vxlan10", 6.0))
    other.bridge.flush()
    assert other.bridge.entries(6.0) == []
    _refuse(floods, [other], B, ("vxlan10", 7.0))
    other.bridge.detach("vxlan10")
    assert other.bridge.entries(7.0) == []


def test_a_full_log_has_every_bridge_catch_up_and_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_module, "FLOOD_LOG_BYTES", 3)
    floods = FloodLog()
    bridges = [Ports(two_guests=False, floods=floods) for _ in range(3)]
    for t in range(1, 7):
        _refuse(floods, bridges[: t % 3 + 1], bytes([2, 0, 0, 0, 0, t]), ("vxlan10", float(t)))
    assert floods.end == 6
    assert floods.since(floods.end) == []
    assert [len(p.bridge.entries(7.0)) for p in bridges] == [6, 4, 2]
    assert [p.bridge.flooded for p in bridges] == [6, 4, 2]


def test_single_names_the_one_other_port() -> None:
    p = Ports(two_guests=False)
    assert p.bridge.single("vxlan10") == "g1"
    assert Ports().bridge.single("vxlan10") is None
    p.bridge.detach("g1")
    assert p.bridge.single("vxlan10") is None


def test_entries_age_out_and_detach_forgets_the_port_entries() -> None:
    p = Ports()
    p.bridge.receive("g1", _frame(GROUP, B), 10.0)
    assert p.bridge.entries(310.0) == [BridgeEntry("02:00:00:00:00:02", "g1", 10.0)]
    assert p.bridge.entries(310.5) == []
    p.bridge.detach("g1")
    assert p.bridge.entries(11.0) == []
