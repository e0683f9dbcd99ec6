"""The simulated guest on its own: delivery outside scheduler handlers, its UDP sockets, the NIC index."""

from __future__ import annotations

import ipaddress

import pytest
import trio
import trio.testing

from pyvxlan.errors import ConfigError
from pyvxlan.sim.guest import NicIndex, SimGuest
from pyvxlan.sim.ledger import Ledger
from pyvxlan.sim.scheduler import Scheduler
from pyvxlan.wire.packets import ALL_NODES_MAC, BROADCAST, solicited_node_mac, udp_frame

PEER_MAC = bytes.fromhex("020000000009")
PEER_IP = ipaddress.ip_address("203.0.113.9").packed


def _guest(sched: Scheduler, ledger: Ledger, nics: NicIndex | None = None, ip: str = "203.0.113.1/24") -> SimGuest:
    drops: list[tuple[str, str]] = []
    return SimGuest(
        "guest1",
        "02:00:00:00:00:01",
        ip,
        source=1,
        sched=sched,
        ledger=ledger,
        drop=lambda *a: drops.append(a),
        nics=nics,
    )


def _run(main: object) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))  # type: ignore[arg-type]


def test_deliver_from_a_task_outside_any_handler_wakes_the_socket() -> None:
    """The userspace VTEP's receive loop hands frames to a guest from an ordinary trio task."""

    async def main() -> None:
        sched = Scheduler()
        ledger = Ledger()
        guest = _guest(sched, ledger)
        sock = guest.udp_socket(9)
        frame = udp_frame(PEER_MAC, guest.mac_bytes, PEER_IP, guest.ip_bytes, src_port=4000, dst_port=9, payload=b"hi")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sched.run)
            guest.deliver(frame)  # no scheduler handler is running
            with trio.fail_after(1):
                assert await sock.receive() == (b"hi", ("203.0.113.9", 4000))
            nursery.cancel_scope.cancel()
        assert (guest.received, ledger.ended["delivered"]) == (1, 1)

    _run(main)


def test_a_closed_socket_frees_its_port() -> None:
    async def main() -> None:
        sched = Scheduler()
        guest = _guest(sched, Ledger())
        sock = guest.udp_socket(9)
        with pytest.raises(ConfigError, match=r"^port: guest1: UDP port 9 is in use$"):
            guest.udp_socket(9)
        sock.close()
        sock.close()  # twice: nothing more
        assert guest.udp_socket(9).port == 9

    _run(main)


def test_ping_arguments_are_checked() -> None:
    async def main() -> None:
        guest = _guest(Scheduler(), Ledger())
        with pytest.raises(ConfigError, match=r"^ping: needs count >= 1, timeout > 0 and interval >= 0$"):
            await guest.ping("203.0.113.2", count=0)

    _run(main)


def test_the_nic_index_answers_who_takes_a_destination() -> None:
    async def main() -> None:
        sched = Scheduler()
        ledger = Ledger()
        nics = NicIndex(ledger)
        v4 = _guest(sched, ledger, nics)
        v6 = _guest(sched, ledger, nics, ip="2001:db8:1::1/64")
        assert nics.takers(BROADCAST) is None  # everyone
        assert set(nics.takers(ALL_NODES_MAC) or ()) == {v6}
        assert set(nics.takers(solicited_node_mac(v6.ip_bytes)) or ()) == {v6}
        assert set(nics.takers(PEER_MAC) or ()) == set()
        v4.open_raw()  # a packet socket sees every frame
        assert set(nics.takers(PEER_MAC) or ()) == {v4}
        nics.refused(3)
        assert ledger.ended["not_for_guest"] == 3

    _run(main)
