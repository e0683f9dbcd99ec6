"""A BGP session for L2VPN EVPN (RFC 4271): a sans-I/O protocol core and a thin trio driver.

:class:`BgpSession` is the core, in the style of h11: bytes in with :meth:`~BgpSession.receive_data`,
events out with :meth:`~BgpSession.next_events`, bytes out with :meth:`~BgpSession.data_to_send`,
``now`` passed to every call and the next deadline from :meth:`~BgpSession.get_timer`. It runs
the finite-state machine from OPEN to ESTABLISHED, sends KEEPALIVEs at a third of the negotiated
hold time, and closes with a NOTIFICATION on a malformed message, an unacceptable OPEN or an
expired hold timer. It offers only what an EVPN VTEP needs: the L2VPN EVPN family, route
refresh, 4-octet AS numbers, and graceful restart with no families (so that the peer sends
End-of-RIB); no ADD-PATH, so EVPN routes carry no path identifiers.

:func:`open_bgp_session` connects over TCP with trio and runs the core.

>>> a = BgpSession(asn=65000, router_id="198.51.100.1")
>>> b = BgpSession(asn=65000, router_id="198.51.100.2")
>>> a.start(0.0); b.start(0.0)
>>> b.receive_data(a.data_to_send(), 0.0)  # a's OPEN: b answers with its KEEPALIVE
>>> a.receive_data(b.data_to_send(), 0.0)  # b's OPEN and KEEPALIVE: a is established
>>> b.receive_data(a.data_to_send(), 0.0)  # a's KEEPALIVE: so is b
>>> a.state, [type(e).__name__ for e in a.next_events()]
(<SessionState.ESTABLISHED: 'established'>, ['SessionEstablished'])
"""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeAlias

import trio

from pyvxlan.errors import ConfigError, DecodeError
from pyvxlan.evpn.codec import (
    AFI_L2VPN,
    BGP_PORT,
    SAFI_EVPN,
    Keepalive,
    Message,
    Notification,
    Open,
    RawCapability,
    RouteRefresh,
    Update,
    check_ip_version,
    decode_message,
)
from pyvxlan.wire.addr import normalize_ip
from pyvxlan.wire.header import check_int, describe

__all__ = [
    "EOR_ONLY_RESTART",
    "BgpConnection",
    "BgpSession",
    "CloseReason",
    "EndOfRibReceived",
    "RouteRefreshRequested",
    "SessionClosed",
    "SessionEstablished",
    "SessionEvent",
    "SessionState",
    "UpdateReceived",
    "open_bgp_session",
]

_HEADER = 19
# The graceful restart capability with no restart time and no families (RFC 4724 section 3):
# it promises nothing about keeping routes across a restart, only that End-of-RIB is understood.
# FRR sends End-of-RIB only to peers that offer it (live, FRR 8.4.4).
EOR_ONLY_RESTART = RawCapability(64, b"\x00\x00")


class SessionState(enum.Enum):
    """The BGP finite-state machine's states that a connected session goes through (RFC 4271 8.2.2)."""

    IDLE = "idle"
    OPEN_SENT = "open_sent"
    OPEN_CONFIRM = "open_confirm"
    ESTABLISHED = "established"
    CLOSED = "closed"


class CloseReason(enum.Enum):
    """Why a session closed."""

    NOTIFICATION_RECEIVED = "notification received"
    NOTIFICATION_SENT = "notification sent"  # we found an error in what the peer sent
    HOLD_TIMER_EXPIRED = "hold timer expired"
    CONNECTION_LOST = "connection lost"
    LOCAL = "closed locally"


@dataclass(frozen=True, slots=True)
class SessionEstablished:
    """Both OPENs agreed and the first KEEPALIVE arrived; ``hold_time`` is the negotiated one."""

    peer: Open
    hold_time: int


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    """An UPDATE that is not End-of-RIB."""

    update: Update


@dataclass(frozen=True, slots=True)
class EndOfRibReceived:
    """The peer has sent its whole L2VPN EVPN table (RFC 4724)."""


@dataclass(frozen=True, slots=True)
class RouteRefreshRequested:
    """The peer asks for our routes again (RFC 2918)."""

    afi: int
    safi: int


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """The session is over; ``notification`` is the one sent or received, if any."""

    reason: CloseReason
    notification: Notification | None = None


SessionEvent: TypeAlias = SessionEstablished | UpdateReceived | EndOfRibReceived | RouteRefreshRequested | SessionClosed


class BgpSession:
    """The sans-I/O BGP core for one connected peer (see the module docstring).

    ``peer_asn`` defaults to ``asn`` (iBGP, what an EVPN VTEP runs toward a route reflector).
    ``hold_time`` is what we offer (FRR's ``traditional`` default 180, ``datacenter`` 9); the
    session uses the smaller of both offers.
    """

    def __init__(self, *, asn: int, router_id: str, peer_asn: int | None = None, hold_time: int = 180) -> None:
        check_int(asn, "asn", 1, 0xFFFFFFFF)
        self.asn = asn
        self.router_id = check_ip_version(router_id, "router_id", 4)
        self.peer_asn = asn if peer_asn is None else check_int(peer_asn, "peer_asn", 1, 0xFFFFFFFF)
        check_int(hold_time, "hold_time", 0, 0xFFFF)
        if hold_time in (1, 2):
            raise ConfigError("hold_time", f"must be 0 or at least 3 seconds, got {hold_time}")
        self.hold_time = hold_time
        self.state = SessionState.IDLE
        self.peer: Open | None = None
        self.negotiated_hold = hold_time
        self._in = bytearray()
        self._out = bytearray()
        self._events: list[SessionEvent] = []
        self._hold_deadline = math.inf
        self._keepalive_deadline = math.inf

    # --- inputs ---

    def start(self, now: float) -> None:
        """The TCP connection is up: send our OPEN."""
        if self.state is not SessionState.IDLE:
            raise ConfigError("state", f"start() in state {self.state.value}")
        self._send(Open.build(self.asn, self.router_id, self.hold_time, extra=(EOR_ONLY_RESTART,)))
        self.state = SessionState.OPEN_SENT
        # RFC 4271 8.2.2: a large hold timer (4 minutes suggested) while waiting for the OPEN.
        self._hold_deadline = now + 240.0

    def receive_data(self, data: bytes | bytearray, now: float) -> None:
        """Bytes from the peer; ``b""`` means the connection closed."""
        if self.state is SessionState.CLOSED:
            return
        if not data:
            self._close(CloseReason.CONNECTION_LOST, None)
            return
        self._in += data
        while self._open() and len(self._in) >= _HEADER:
            length = int.from_bytes(self._in[16:18], "big")
            if self._in[:16] != b"\xff" * 16 or not _HEADER <= length <= 65535:
                # Decoding the header alone gives the exact NOTIFICATION subcode.
                self._error_on(bytes(self._in[:_HEADER]))
                return
            if len(self._in) < length:
                break
            raw = bytes(self._in[:length])
            del self._in[:length]
            try:
                message = decode_message(raw)
            except DecodeError as e:
                self._notify_decode_error(raw, e)
                return
            self._handle(message, now)

    def send_update(self, update: Update) -> None:
        """Queue an UPDATE (only once ESTABLISHED)."""
        if self.state is not SessionState.ESTABLISHED:
            raise ConfigError("state", f"send_update() in state {self.state.value}; wait for SessionEstablished")
        if not isinstance(update, Update):
            raise ConfigError("update", f"must be an Update, got {describe(update)}")
        self._send(update)

    def close(self, subcode: int = 2) -> None:
        """Close with a CEASE NOTIFICATION (subcode 2, administrative shutdown, by default)."""
        if self.state is SessionState.CLOSED:
            return
        notification = Notification(6, subcode)
        if self.state is not SessionState.IDLE:
            self._send(notification)
        self._close(CloseReason.LOCAL, notification)

    def get_timer(self) -> float | None:
        """The next time :meth:`handle_timer` must run, or ``None``."""
        if self.state in (SessionState.IDLE, SessionState.CLOSED):
            return None
        deadline = min(self._hold_deadline, self._keepalive_deadline)
        return None if deadline == math.inf else deadline

    def handle_timer(self, now: float) -> None:
        """Expire the hold timer (NOTIFICATION 4/0) or send a KEEPALIVE when due."""
        if self.state in (SessionState.IDLE, SessionState.CLOSED):
            return
        if now >= self._hold_deadline:
            notification = Notification(4, 0)
            self._send(notification)
            self._close(CloseReason.HOLD_TIMER_EXPIRED, notification)
            return
        if now >= self._keepalive_deadline:
            self._send(Keepalive())
            self._keepalive_deadline = now + self.negotiated_hold / 3

    # --- outputs ---

    def next_events(self) -> list[SessionEvent]:
        """The events since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # --- internals ---

    def _open(self) -> bool:
        return self.state is not SessionState.CLOSED

    def _send(self, message: Message) -> None:
        self._out += message.encode()

    def _close(self, reason: CloseReason, notification: Notification | None) -> None:
        self.state = SessionState.CLOSED
        self._events.append(SessionClosed(reason, notification))

    def _fail(self, code: int, subcode: int, data: bytes = b"") -> None:
        notification = Notification(code, subcode, data)
        self._send(notification)
        self._close(CloseReason.NOTIFICATION_SENT, notification)

    def _error_on(self, header: bytes) -> None:
        if header[:16] != b"\xff" * 16:
            self._fail(1, 1)  # connection not synchronized
        else:
            self._fail(1, 2, header[16:18])  # bad message length

    def _notify_decode_error(self, raw: bytes, error: DecodeError) -> None:
        kind = raw[18]
        if error.offset == 18:
            self._fail(1, 3, raw[18:19])  # bad message type
        elif error.offset < _HEADER:
            self._fail(1, 2, raw[16:18])  # bad message length for its type
        elif kind == 1:
            self._fail(2, 0)  # OPEN message error, unspecific
        elif kind == 2:
            self._fail(3, 1)  # malformed attribute list
        else:
            self._fail(1, 2, raw[16:18])

    def _handle(self, message: Message, now: float) -> None:
        if isinstance(message, Notification):
            self._close(CloseReason.NOTIFICATION_RECEIVED, message)
            return
        if self.negotiated_hold:
            self._hold_deadline = now + self.negotiated_hold
        if self.state is SessionState.OPEN_SENT:
            if not isinstance(message, Open):
                self._fail(5, 1)  # FSM error: unexpected message in OpenSent
                return
            self._accept_open(message, now)
        elif self.state is SessionState.OPEN_CONFIRM:
            if not isinstance(message, Keepalive):
                self._fail(5, 2)  # FSM error: unexpected message in OpenConfirm
                return
            self.state = SessionState.ESTABLISHED
            assert self.peer is not None
            self._events.append(SessionEstablished(self.peer, self.negotiated_hold))
        elif self.state is SessionState.ESTABLISHED:
            if isinstance(message, Update):
                self._events.append(EndOfRibReceived() if message.is_end_of_rib else UpdateReceived(message))
            elif isinstance(message, RouteRefresh):
                self._events.append(RouteRefreshRequested(message.afi, message.safi))
            elif isinstance(message, Open):
                self._fail(5, 3)  # FSM error: unexpected message in Established

    def _accept_open(self, peer: Open, now: float) -> None:
        if peer.asn != self.peer_asn:
            self._fail(2, 2, peer.my_as.to_bytes(2, "big"))  # bad peer AS
            return
        if peer.router_id in (self.router_id, "0.0.0.0"):
            self._fail(2, 3)  # bad BGP identifier
            return
        if not peer.supports(AFI_L2VPN, SAFI_EVPN):
            self._fail(2, 7)  # unsupported capability: without L2VPN EVPN there is nothing to say
            return
        self.peer = peer
        self.negotiated_hold = min(self.hold_time, peer.hold_time)
        self._send(Keepalive())
        self.state = SessionState.OPEN_CONFIRM
        if self.negotiated_hold:
            self._hold_deadline = now + self.negotiated_hold
            self._keepalive_deadline = now + self.negotiated_hold / 3
        else:
            self._hold_deadline = self._keepalive_deadline = math.inf


# --- the trio driver -------------------------------------------------------------------------


class BgpConnection:
    """A :class:`BgpSession` running on a trio stream (made by :func:`open_bgp_session`)."""

    def __init__(self, session: BgpSession, stream: trio.abc.Stream) -> None:
        self.session = session
        self._stream = stream
        self._send_lock = trio.Lock()
        self._event_send, self._event_receive = trio.open_memory_channel[SessionEvent](math.inf)

    async def send(self, update: Update) -> None:
        """Send an UPDATE."""
        self.session.send_update(update)
        await self._flush()

    async def events(self) -> AsyncIterator[SessionEvent]:
        """The session's events, ending after :class:`SessionClosed`."""
        async for event in self._event_receive:
            yield event
            if isinstance(event, SessionClosed):
                return

    async def close(self) -> None:
        """Send CEASE and close the TCP connection."""
        self.session.close()
        await self._flush()
        await self._stream.aclose()

    async def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            async with self._send_lock:
                try:
                    await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.session.receive_data(b"", trio.current_time())
        for event in self.session.next_events():
            self._event_send.send_nowait(event)

    async def _run(self) -> None:
        session = self.session
        session.start(trio.current_time())
        await self._flush()
        while session.state is not SessionState.CLOSED:
            deadline = session.get_timer()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                try:
                    data = await self._stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                session.receive_data(bytes(data), trio.current_time())
                await self._flush()
                continue
            session.handle_timer(trio.current_time())
            await self._flush()
        await self._stream.aclose()


@asynccontextmanager
async def open_bgp_session(
    host: str | None = None,
    *,
    asn: int,
    router_id: str,
    peer_asn: int | None = None,
    hold_time: int = 180,
    port: int = BGP_PORT,
    stream: trio.abc.Stream | None = None,
) -> AsyncIterator[BgpConnection]:
    """Run a session with the BGP speaker at ``host`` (a TCP connection to ``port``), or over an
    already connected ``stream`` (a socket made in another network namespace, say), until the
    block exits; then CEASE is sent. Read :meth:`BgpConnection.events` for
    :class:`SessionEstablished` before sending."""
    if (host is None) == (stream is None):
        raise ConfigError("host", "give either host or stream")
    session = BgpSession(asn=asn, router_id=router_id, peer_asn=peer_asn, hold_time=hold_time)
    if stream is None:
        assert host is not None
        stream = await trio.open_tcp_stream(normalize_ip(host, "host"), port)
    connection = BgpConnection(session, stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection._run)
        try:
            yield connection
        finally:
            with trio.CancelScope(shield=True):
                if session.state is not SessionState.CLOSED:
                    with trio.move_on_after(1):
                        await connection.close()
            nursery.cancel_scope.cancel()
