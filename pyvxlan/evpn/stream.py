"""BGP messages out of captured TCP segments: per-flow reassembly for reading captures (pure, no I/O).

A capture shows BGP as TCP segments: one message can span several and one segment can hold
several. :class:`BgpStreams` puts each flow's bytes back in order by sequence number and cuts them
into messages with the codec (:func:`~pyvxlan.evpn.codec.decode_message`). A capture is not a
socket: it can start in the middle of a session, miss segments, show one twice, or cut one at its
snap length. None of that raises; what cannot be decoded comes out as an :class:`Undecodable`
with a reason, and decoding picks up again at the next message boundary (the 16-byte marker).
Memory is bounded per flow (one message being assembled plus a few segments that arrived early)
and in the number of flows.

>>> from pyvxlan.evpn.codec import Keepalive
>>> streams = BgpStreams()
>>> flow = Flow(bytes(4), 40000, bytes(4), 179)
>>> raw = Keepalive().encode()
>>> streams.feed(flow, 1000, raw[:10], syn=True), streams.feed(flow, 1011, raw[10:])
([], [Keepalive()])
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Final

from pyvxlan.errors import DecodeError
from pyvxlan.evpn.codec import BGP_PORT, MARKER, Message, decode_message
from pyvxlan.wire.frame import ETH_P_IPV4, ETH_P_IPV6, IPV6_EXTENSION_HEADERS, VLAN_ETHERTYPES

__all__ = [
    "MAX_FLOWS",
    "MAX_EARLY_BYTES",
    "MAX_EARLY_SEGMENTS",
    "BgpStreams",
    "Flow",
    "TcpSegment",
    "Undecodable",
    "UndecodableKind",
    "tcp_segment",
]

_HEADER: Final = 19
_MAX_MESSAGE: Final = 65535
# Segments that arrive before the one the flow waits for are held, up to these limits; past them
# the missing bytes count as lost and decoding resumes after them.
MAX_EARLY_SEGMENTS: Final = 32
MAX_EARLY_BYTES: Final = 1 << 17
# Flows tracked at once; past this the least recently seen flow is dropped.
MAX_FLOWS: Final = 4096
_SEQ: Final = 1 << 32
_TCP: Final = struct.Struct("!HHIIBB")
_FIN, _SYN, _RST = 0x01, 0x02, 0x04


@dataclass(frozen=True, slots=True)
class Flow:
    """One direction of a TCP connection: packed addresses (4 or 16 bytes) and ports."""

    src: bytes
    sport: int
    dst: bytes
    dport: int


@dataclass(frozen=True, slots=True)
class TcpSegment:
    """A TCP segment read from a frame. ``length`` is the payload length the IP header gives;
    ``payload`` is what was captured of it (shorter when the snap length cut the frame)."""

    flow: Flow
    seq: int
    flags: int
    payload: bytes
    length: int

    @property
    def syn(self) -> bool:
        """The SYN flag: the stream starts at ``seq + 1``."""
        return bool(self.flags & _SYN)

    @property
    def end(self) -> bool:
        """FIN or RST: the flow ends after this segment."""
        return bool(self.flags & (_FIN | _RST))


def tcp_segment(buf: bytes | bytearray | memoryview, start: int, end: int) -> TcpSegment | None:
    """The TCP segment to or from port 179 in the Ethernet frame ``buf[start:end]`` (802.1Q/802.1ad
    tags, IPv4 or IPv6 with extension headers), or ``None`` for anything else (fragments included).

    >>> frame = bytes(12) + b"\\x08\\x00" + bytes.fromhex("450000280000400040060000") + bytes(8)
    >>> tcp_segment(frame + bytes.fromhex("9c4000b3000003e8000000005002ffff00000000"), 0, 54).seq
    1000
    """
    if end - start < 14:
        return None
    etype = (buf[start + 12] << 8) | buf[start + 13]
    p = start + 14
    while etype in VLAN_ETHERTYPES and end - p >= 4:
        etype = (buf[p + 2] << 8) | buf[p + 3]
        p += 4
    if etype == ETH_P_IPV4:
        if end - p < 20 or buf[p] >> 4 != 4 or buf[p + 9] != 6:
            return None
        ihl = (buf[p] & 0x0F) * 4
        total = (buf[p + 2] << 8) | buf[p + 3]
        if ihl < 20 or (buf[p + 6] & 0x3F) or buf[p + 7]:  # MF or a fragment offset: not reassembled
            return None
        src, dst = bytes(buf[p + 12 : p + 16]), bytes(buf[p + 16 : p + 20])
        claimed = p + total if total >= ihl else end  # 0: TSO, the packet runs to the frame's end
        q = p + ihl
    elif etype == ETH_P_IPV6:
        if end - p < 40 or buf[p] >> 4 != 6:
            return None
        plen = (buf[p + 4] << 8) | buf[p + 5]
        nh = buf[p + 6]
        src, dst = bytes(buf[p + 8 : p + 24]), bytes(buf[p + 24 : p + 40])
        claimed = p + 40 + plen if plen else end
        q = p + 40
        while nh in IPV6_EXTENSION_HEADERS and end - q >= 8:
            if nh == 44:
                return None
            nh, q = buf[q], q + (buf[q + 1] + 1) * 8
        if nh != 6:
            return None
    else:
        return None
    if min(claimed, end) - q < 20:
        return None
    sport, dport, seq, _ack, offset, flags = _TCP.unpack_from(buf, q)
    if BGP_PORT not in (sport, dport):
        return None
    data = q + (offset >> 4) * 4
    if data < q + 20 or data > claimed:
        return None
    return TcpSegment(Flow(src, sport, dst, dport), seq, flags, bytes(buf[data : min(claimed, end)]), claimed - data)


class UndecodableKind(enum.Enum):
    """Why bytes of a flow gave no message."""

    MALFORMED = "malformed"  # a whole message the codec refused (the reason says why)
    GAP = "gap"  # segments missing from the capture: the message they were part of is lost
    SKIPPED = "skipped"  # bytes before the first message boundary found (a capture started mid-session)
    UNFINISHED = "unfinished"  # the flow ended, or was dropped, inside a message
    RETRANSMITTED = "retransmitted"  # a segment whose bytes were all seen already (not an error)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Bytes of a flow that gave no message: the kind, what happened, and how many bytes."""

    kind: UndecodableKind
    reason: str
    size: int


Item = Message | Undecodable


@dataclass(slots=True)
class _FlowState:
    next_seq: int | None = None
    synced: bool = False  # the buffer starts at a message boundary
    buf: bytearray = field(default_factory=bytearray)
    early: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # seq -> (payload, length)
    early_bytes: int = 0


def _plausible(buf: bytearray, i: int) -> bool:
    """A marker at ``i`` followed by a message length and type that can be (or too few bytes to tell)."""
    if len(buf) - i < _HEADER:
        return True
    length = (buf[i + 16] << 8) | buf[i + 17]
    return length >= _HEADER and 1 <= buf[i + 18] <= 5


class BgpStreams:
    """BGP messages of every TCP flow of a capture, in order; see the module's text."""

    def __init__(self) -> None:
        self._flows: dict[Flow, _FlowState] = {}

    def feed(
        self, flow: Flow, seq: int, payload: bytes, *, syn: bool = False, end: bool = False, length: int | None = None
    ) -> list[Item]:
        """The messages (and undecodable stretches) that the segment ``seq``/``payload`` of
        ``flow`` completes. ``length`` is the payload length on the wire when the capture cut it."""
        items: list[Item] = []
        state = self._flows.pop(flow, None)
        if state is None:
            if len(self._flows) >= MAX_FLOWS:
                old_flow = next(iter(self._flows))
                # What the dropped flow held comes out with this segment: counted, if not its own.
                items += self._drop(self._flows.pop(old_flow), "flow dropped (too many flows)")
            state = _FlowState()
        self._flows[flow] = state  # most recently seen last
        wire_len = len(payload) if length is None else max(length, len(payload))
        if syn:
            seq = (seq + 1) % _SEQ
            # A SYN at or behind what is expected is the same connection's, shown again: no reset.
            if state.next_seq is None or 0 < (seq - state.next_seq) % _SEQ < _SEQ // 2:
                if state.buf:
                    items += self._drop(state, "the flow restarted inside a message")
                state.early.clear()
                state.early_bytes = 0
                state.next_seq = seq
                state.synced = True
        if wire_len:
            if state.next_seq is None:
                state.next_seq = seq  # the capture starts mid-flow: find a boundary first
            self._segment(state, seq, payload, wire_len, items)
        if end:
            items += self._drop(state, "the flow ended inside a message")
            del self._flows[flow]
        return items

    def held(self) -> int:
        """Bytes held across every flow: messages being assembled and segments that came early."""
        return sum(len(s.buf) + s.early_bytes for s in self._flows.values())

    def finish(self) -> dict[Flow, list[Item]]:
        """The end of the capture: each flow's early segments decoded past their gaps, and what
        was left incomplete. Forgets every flow."""
        out: dict[Flow, list[Item]] = {}
        for flow, state in self._flows.items():
            items: list[Item] = []
            while state.early:
                self._skip_gap(state, items)
            items += self._drop(state, "the capture ended inside a message")
            if items:
                out[flow] = items
        self._flows.clear()
        return out

    def _segment(self, state: _FlowState, seq: int, payload: bytes, wire_len: int, items: list[Item]) -> None:
        assert state.next_seq is not None
        ahead = (seq - state.next_seq) % _SEQ
        if ahead >= _SEQ // 2:  # starts before what is expected: (partly) seen already
            behind = _SEQ - ahead
            if behind >= wire_len:
                items.append(Undecodable(UndecodableKind.RETRANSMITTED, "segment seen already", wire_len))
                return
            payload, wire_len, seq = payload[behind:], wire_len - behind, state.next_seq
            ahead = 0
        if ahead:
            held = state.early.get(seq)
            if held is None or wire_len > held[1]:  # of two segments at one place, the longer
                state.early[seq] = (payload, wire_len)
                state.early_bytes += len(payload) - (len(held[0]) if held else 0)
            if len(state.early) > MAX_EARLY_SEGMENTS or state.early_bytes > MAX_EARLY_BYTES:
                self._skip_gap(state, items)
            return
        self._append(state, payload, wire_len, items)
        self._pull(state, items)

    def _pull(self, state: _FlowState, items: list[Item]) -> None:
        """Append the early segments that now start at or before the expected byte (overlaps trimmed)."""
        while state.early:
            expected = state.next_seq
            assert expected is not None
            due = next(
                (s for s in state.early if (s - expected) % _SEQ == 0 or (s - expected) % _SEQ >= _SEQ // 2), None
            )
            if due is None:
                return
            payload, wire_len = state.early.pop(due)
            state.early_bytes -= len(payload)
            behind = (expected - due) % _SEQ
            if behind < wire_len:  # else every byte of it arrived already
                self._append(state, payload[behind:], wire_len - behind, items)

    def _skip_gap(self, state: _FlowState, items: list[Item]) -> None:
        """Give up on the bytes missing before the earliest early segment and go on from it."""
        assert state.next_seq is not None
        first = min(state.early, key=lambda s: (s - state.next_seq) % _SEQ)  # type: ignore[operator]
        missing = (first - state.next_seq) % _SEQ
        items.append(Undecodable(UndecodableKind.GAP, f"{missing} bytes missing from the capture", missing))
        if state.buf:
            items.append(Undecodable(UndecodableKind.GAP, "a message lost in the gap", len(state.buf)))
        state.buf.clear()
        state.synced = False
        state.next_seq = first
        payload, wire_len = state.early.pop(first)
        state.early_bytes -= len(payload)
        self._append(state, payload, wire_len, items)
        self._pull(state, items)

    def _append(self, state: _FlowState, payload: bytes, wire_len: int, items: list[Item]) -> None:
        assert state.next_seq is not None
        state.buf += payload
        state.next_seq = (state.next_seq + wire_len) % _SEQ
        self._cut(state, items)
        if wire_len > len(payload):  # the snap length cut the segment: the rest is lost
            lost = wire_len - len(payload)
            items.append(Undecodable(UndecodableKind.GAP, f"{lost} bytes not captured (snap length)", lost))
            if state.buf:
                items.append(Undecodable(UndecodableKind.GAP, "a message cut by the snap length", len(state.buf)))
            state.buf.clear()
            state.synced = False

    def _cut(self, state: _FlowState, items: list[Item]) -> None:
        buf = state.buf
        pos = 0
        while True:
            if not state.synced:
                at = buf.find(MARKER, pos)
                while at >= 0 and not _plausible(buf, at):
                    at = buf.find(MARKER, at + 1)
                if at < 0:
                    # Keep what could be the start of a marker; the rest is not BGP we can place.
                    keep = max(pos, len(buf) - 18)
                    if keep > pos:
                        items.append(
                            Undecodable(UndecodableKind.SKIPPED, "bytes before a message boundary", keep - pos)
                        )
                    pos = keep
                    break
                if at > pos:
                    items.append(Undecodable(UndecodableKind.SKIPPED, "bytes before a message boundary", at - pos))
                pos = at
                state.synced = True
            if len(buf) - pos < _HEADER:
                break
            length = (buf[pos + 16] << 8) | buf[pos + 17]
            if buf[pos : pos + 16] != MARKER or not _HEADER <= length <= _MAX_MESSAGE:
                reason = (
                    "no BGP marker where a message should start"
                    if buf[pos : pos + 16] != MARKER
                    else f"message length {length} is not in {_HEADER}..{_MAX_MESSAGE}"
                )
                items.append(Undecodable(UndecodableKind.MALFORMED, reason, 1))
                state.synced = False
                pos += 1
                continue
            if len(buf) - pos < length:
                break
            try:
                items.append(decode_message(bytes(buf[pos : pos + length])))
            except DecodeError as exc:
                items.append(Undecodable(UndecodableKind.MALFORMED, str(exc), length))
            pos += length
        del buf[:pos]

    @staticmethod
    def _drop(state: _FlowState, reason: str) -> list[Item]:
        n = len(state.buf)
        state.buf.clear()
        state.synced = False
        return [Undecodable(UndecodableKind.UNFINISHED, reason, n)] if n else []
