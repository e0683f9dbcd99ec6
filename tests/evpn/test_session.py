"""The BGP session core (RFC 4271's FSM from OPEN to ESTABLISHED, timers, NOTIFICATIONs), its
trio driver, and the agent on top, without root: the peer is another core on a memory stream."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from pyvxlan import ConfigError, FdbEntryNotFound, FdbState
from pyvxlan.evpn import (
    ENCAP_VXLAN,
    EOR_ONLY_RESTART,
    BgpConnection,
    BgpSession,
    CloseReason,
    EndOfRibReceived,
    EvpnAgent,
    EvpnConfig,
    EvpnMachine,
    Keepalive,
    MacIpRoute,
    Notification,
    Open,
    RouteDistinguisher,
    RouteRefresh,
    RouteRefreshRequested,
    RouteTarget,
    SessionClosed,
    SessionEstablished,
    SessionState,
    Update,
    UpdateReceived,
    decode_message,
    open_bgp_session,
    split_messages,
)

A, B = "198.51.100.1", "198.51.100.2"


def established(hold_a: int = 180, hold_b: int = 90) -> tuple[BgpSession, BgpSession]:
    a = BgpSession(asn=65000, router_id=A, hold_time=hold_a)
    b = BgpSession(asn=65000, router_id=B, hold_time=hold_b)
    a.start(0.0)
    b.start(0.0)
    b.receive_data(a.data_to_send(), 0.0)
    a.receive_data(b.data_to_send(), 0.0)
    b.receive_data(a.data_to_send(), 0.0)
    return a, b


def messages(data: bytes) -> list[Any]:
    got, rest = split_messages(data)
    assert rest == b""
    return got


def test_handshake_negotiates_the_smaller_hold_time() -> None:
    """Our OPEN also offers graceful restart with no families: FRR 8.4.4 sends End-of-RIB only to
    peers that offer the capability (seen live: none came without it)."""
    a, b = established()
    assert EOR_ONLY_RESTART in a.peer.capabilities  # type: ignore[union-attr]
    assert a.state is b.state is SessionState.ESTABLISHED
    [ea] = a.next_events()
    assert isinstance(ea, SessionEstablished) and ea.hold_time == 90 and ea.peer.router_id == B
    assert b.next_events()[0].hold_time == 90  # type: ignore[union-attr]


def test_keepalive_every_third_of_the_hold_time_and_hold_timer_expiry() -> None:
    """RFC 4271 10: KEEPALIVE at a third of the hold time; no message for the hold time: 4/0."""
    a, _ = established(hold_b=9)
    a.data_to_send()
    assert a.get_timer() == 3.0
    a.handle_timer(3.0)
    assert messages(a.data_to_send()) == [Keepalive()]
    assert a.get_timer() == 6.0
    a.handle_timer(6.0)
    a.data_to_send()
    a.handle_timer(9.0)
    assert messages(a.data_to_send()) == [Notification(4, 0)]
    assert a.next_events()[-1] == SessionClosed(CloseReason.HOLD_TIMER_EXPIRED, Notification(4, 0))
    assert a.get_timer() is None


def test_received_message_restarts_the_hold_timer() -> None:
    a, _ = established(hold_b=9)
    a.receive_data(Keepalive().encode(), 5.0)
    assert a.get_timer() == 3.0  # the keepalive is still due
    a.handle_timer(3.0)
    a.handle_timer(6.0)
    a.handle_timer(9.0)
    assert a.state is SessionState.ESTABLISHED
    a.handle_timer(14.0)
    assert a.next_events()[-1] == SessionClosed(CloseReason.HOLD_TIMER_EXPIRED, Notification(4, 0))


def test_zero_hold_time_means_no_timers() -> None:
    a, _ = established(hold_a=0)
    assert a.negotiated_hold == 0 and a.get_timer() is None


@pytest.mark.parametrize(
    ("peer_open", "notification"),
    [
        (Open.build(65001, B), Notification(2, 2, (65001).to_bytes(2, "big"))),  # bad peer AS
        (Open.build(65000, A), Notification(2, 3)),  # our own identifier
        (Open(65000, 180, B), Notification(2, 7)),  # no L2VPN EVPN
        (Keepalive(), Notification(5, 1)),  # FSM error in OpenSent
    ],
)
def test_unacceptable_open(peer_open: Any, notification: Notification) -> None:
    a = BgpSession(asn=65000, router_id=A)
    a.start(0.0)
    a.data_to_send()
    a.receive_data(peer_open.encode(), 0.0)
    assert messages(a.data_to_send()) == [notification]
    assert a.next_events() == [SessionClosed(CloseReason.NOTIFICATION_SENT, notification)]


@pytest.mark.parametrize(
    ("raw", "notification"),
    [
        (b"\x00" * 19, Notification(1, 1)),  # connection not synchronized
        (b"\xff" * 16 + b"\x00\x12\x04", Notification(1, 2, b"\x00\x12")),  # bad message length
        (b"\xff" * 16 + b"\x00\x14\x04\x00", Notification(1, 2, b"\x00\x14")),  # KEEPALIVE of 20 bytes
        (b"\xff" * 16 + b"\x00\x13\x09", Notification(1, 3, b"\x09")),  # bad message type
        (b"\xff" * 16 + b"\x00\x1b\x02\x00\x00\x00\x04\xc0\x10\x01\x00", Notification(3, 1)),  # malformed attributes
    ],
)
def test_malformed_messages_close_with_the_right_notification(raw: bytes, notification: Notification) -> None:
    a, _ = established()
    a.next_events()
    a.data_to_send()
    a.receive_data(raw, 1.0)
    assert messages(a.data_to_send()) == [notification]
    assert a.next_events() == [SessionClosed(CloseReason.NOTIFICATION_SENT, notification)]


def test_updates_end_of_rib_route_refresh_and_notification_byte_by_byte() -> None:
    a, _ = established()
    a.next_events()
    update = Update.announce(
        [MacIpRoute(RouteDistinguisher.ipv4(B, 1), "02:00:00:00:00:01", labels=(100,))],
        next_hop=B,
        communities=[RouteTarget.as2(65000, 100), ENCAP_VXLAN],
    )
    stream = update.encode() + Update.end_of_rib().encode() + RouteRefresh().encode() + Notification(6, 2).encode()
    for i in range(len(stream)):
        a.receive_data(stream[i : i + 1], 1.0)
    assert a.next_events() == [
        UpdateReceived(update),
        EndOfRibReceived(),
        RouteRefreshRequested(25, 70),
        SessionClosed(CloseReason.NOTIFICATION_RECEIVED, Notification(6, 2)),
    ]


def test_send_update_only_when_established() -> None:
    a = BgpSession(asn=65000, router_id=A)
    with pytest.raises(ConfigError, match=r"^state: send_update\(\) in state idle; wait for SessionEstablished$"):
        a.send_update(Update.end_of_rib())
    with pytest.raises(ConfigError, match=r"^hold_time: must be 0 or at least 3 seconds, got 2$"):
        BgpSession(asn=65000, router_id=A, hold_time=2)
    with pytest.raises(ConfigError, match=r"^router_id: '2001:db8::1' is not an IPv4 address$"):
        BgpSession(asn=65000, router_id="2001:db8::1")
    with pytest.raises(ConfigError, match=r"^asn: must be an int, got bool True$"):
        BgpSession(asn=True, router_id=A)


def test_close_sends_cease() -> None:
    a, _ = established()
    a.data_to_send()
    a.close()
    assert messages(a.data_to_send()) == [Notification(6, 2)]
    assert a.next_events()[-1] == SessionClosed(CloseReason.LOCAL, Notification(6, 2))


# --- the trio driver and the agent -----------------------------------------------------------


class FakeVtep:
    """The VtepControl methods the agent uses, as a table."""

    def __init__(self) -> None:
        self.fdb: dict[tuple[str, str], dict[str, Any]] = {}
        self.neigh: dict[str, str] = {}

    async def fdb_replace(self, mac: str, dst: str, **kw: Any) -> None:
        for key in [k for k in self.fdb if k[0] == mac]:
            del self.fdb[key]
        self.fdb[(mac, dst)] = kw

    async def fdb_append(self, mac: str, dst: str, **kw: Any) -> None:
        self.fdb[(mac, dst)] = kw

    async def fdb_del(self, mac: str, dst: str | None = None, **kw: Any) -> None:
        if self.fdb.pop((mac, dst or ""), None) is None:
            raise FdbEntryNotFound(mac)

    async def neigh_add(self, ip: str, mac: str) -> None:
        self.neigh[ip] = mac

    async def neigh_del(self, ip: str) -> None:
        del self.neigh[ip]


async def peer_core(stream: trio.abc.Stream, session: BgpSession, inbox: list[Any], send: list[Update]) -> None:
    """The other side: a bare core that sends ``send`` once established and records what it gets."""
    session.start(trio.current_time())
    await stream.send_all(session.data_to_send())
    while session.state is not SessionState.CLOSED:
        try:
            data = await stream.receive_some(65536)
        except trio.ClosedResourceError:
            return  # the test closed this side: the peer vanished
        session.receive_data(data, trio.current_time())
        for event in session.next_events():
            inbox.append(event)
            if isinstance(event, SessionEstablished):
                for update in send:
                    session.send_update(update)
        out = session.data_to_send()
        if out:
            await stream.send_all(out)


def test_agent_over_a_session_programs_and_withdraws() -> None:
    """Routes from the peer reach the VTEP; our MAC reaches the peer; a lost session withdraws
    what it had programmed (the agent's promise, checked live against FRR in tests/kernel)."""

    async def main() -> None:
        ours, theirs = trio.testing.memory_stream_pair()
        peer = BgpSession(asn=65000, router_id=B)
        inbox: list[Any] = []
        route = MacIpRoute(RouteDistinguisher.ipv4(B, 1), "02:00:00:00:00:0b", "203.0.113.11", (100,))
        send = [
            Update.announce([route], next_hop=B, communities=[RouteTarget.as2(65000, 100), ENCAP_VXLAN]),
            Update.end_of_rib(),
        ]
        vtep = FakeVtep()
        agent = EvpnAgent(EvpnMachine(EvpnConfig(vni=100, local=A, asn=65000)), vtep)  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer_core, theirs, peer, inbox, send)
            async with open_bgp_session(asn=65000, router_id=A, stream=ours) as connection:
                assert isinstance(connection, BgpConnection)
                nursery.start_soon(agent.serve, connection)
                await agent.attach("02:00:00:00:00:0a", ip="203.0.113.10")
                await agent.end_of_rib.wait()
                assert vtep.fdb == {("02:00:00:00:00:0b", B): {"state": FdbState.REACHABLE, "extern_learn": True}}
                assert vtep.neigh == {"203.0.113.11": "02:00:00:00:00:0b"}
                while not any(isinstance(e, EndOfRibReceived) for e in inbox):
                    await trio.sleep(0.01)
                got = {
                    r.mac
                    for e in inbox
                    if isinstance(e, UpdateReceived) and e.update.reach
                    for r in e.update.reach.routes
                    if isinstance(r, MacIpRoute)
                }
                assert got == {"02:00:00:00:00:0a"}
                await theirs.aclose()  # the peer vanishes
                with trio.fail_after(5):
                    while vtep.fdb:
                        await trio.sleep(0.01)
                assert vtep.neigh == {}

    trio.run(main)


def test_driver_expires_the_hold_timer_in_virtual_time() -> None:
    async def main() -> None:
        ours, theirs = trio.testing.memory_stream_pair()
        peer = BgpSession(asn=65000, router_id=B, hold_time=9)

        async def silent_after_open() -> None:
            peer.start(trio.current_time())
            await theirs.send_all(peer.data_to_send())
            data = await theirs.receive_some(65536)
            peer.receive_data(data, trio.current_time())
            await theirs.send_all(peer.data_to_send())
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(silent_after_open)
            async with open_bgp_session(asn=65000, router_id=A, stream=ours, hold_time=9) as connection:
                events = [e async for e in connection.events()]
            assert [type(e) for e in events] == [SessionEstablished, SessionClosed]
            assert events[-1] == SessionClosed(CloseReason.HOLD_TIMER_EXPIRED, Notification(4, 0))
            assert trio.current_time() == pytest.approx(9.0)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_decode_of_driver_output_is_exact() -> None:
    assert decode_message(Open.build(65000, A, 9).encode()).hold_time == 9  # type: ignore[union-attr]
