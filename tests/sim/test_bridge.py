"""The learning bridge on its own: ports, learning, flooding, and the errors of its public calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pyvxlan.errors import ConfigError, LabKeyError
from pyvxlan.sim.bridge import Bridge, BridgeEntry
from pyvxlan.sim.ledger import Ledger

A = bytes.fromhex("020000000001")
B = bytes.fromhex("020000000002")
GROUP = bytes.fromhex("3333ff000002")


def _frame(dst: bytes, src: bytes) -> bytes:
    return dst + src + b"\x86\xdd" + bytes(40)


class Ports:
    """A bridge with ports ``vxlan10``, ``g1`` and (optionally) ``g2``, recording what leaves each."""

    def __init__(self, *, two_guests: bool = True) -> None:
        self.ledger = Ledger()
        self.drops: list[tuple[str, bytes]] = []
        self.out: list[tuple[str, bytes]] = []
        self.bridge = Bridge("br10", drop=lambda reason, frame: self.drops.append((reason, frame)), ledger=self.ledger)
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


def test_flood_refused_learns_on_every_bridge_and_delivers_nothing() -> None:
    bridges = [Ports(two_guests=False) for _ in range(3)]
    Bridge.flood_refused([p.bridge for p in bridges], A, ("vxlan10", 4.0))
    for p in bridges:
        assert (p.out, p.bridge.flooded) == ([], 1)
        assert p.bridge.entries(4.0) == [BridgeEntry("02:00:00:00:00:01", "vxlan10", 4.0)]


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
