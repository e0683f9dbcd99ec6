"""``Vtep``: the sans-I/O VXLAN tunnel endpoint, with the Linux vxlan driver's forwarding behaviour.

Theory of operation
-------------------
A :class:`Vtep` is one vxlan device without its sockets. It never reads a clock and never does
I/O: a driver feeds it four kinds of input and carries out what comes out.

* ``transmit(frame, now)``: an Ethernet frame from the local side (the bridge the device is a
  port of). Linux's ``vxlan_xmit``: proxy ARP/ND first (when ``proxy`` is on), then the
  destination MAC's FDB entry, else the all-zeros entry; one datagram per remote of that entry.
* ``receive(payload, src, src_port, now)``: a UDP payload from the underlay. Linux's
  ``vxlan_rcv`` order: I flag, VNI, reserved bits, inner Ethernet header, then ``vxlan_set_mac``
  (own-MAC drop) and ``vxlan_snoop`` (invalid source drop, refresh, static conflict drop,
  migration, learning).
* ``transmit_many(frames, now)`` and ``receive_many(datagrams, now)``: the same for a burst, for a
  driver that reads in bursts (the datagrams come back as ``SendBatch`` values, the frames to
  deliver as a list); each is held equal to its one-at-a-time method by property tests.
* ``handle_timer(now)``: ages learned entries out; ``next_timer()`` says when to call it.
* control calls (``fdb_add`` ... ``set_ageing``, ``up``, ``down``): ``bridge fdb``, ``ip neigh``
  and ``ip link set`` with their errors.

Everything the device does in response is queued, in order, and taken with ``take_outputs()``:
actions (:class:`~pyvxlan.SendDatagram`, :class:`~pyvxlan.DeliverFrame`, :class:`~pyvxlan.JoinGroup`,
:class:`~pyvxlan.LeaveGroup`) and notifications (learned, migrated, expired, l2miss, l3miss and
:class:`~pyvxlan.Dropped`). Every frame or datagram that goes in either comes out as an action or
is reported dropped with a :class:`~pyvxlan.DropReason`; the counters follow Linux's.

>>> from pyvxlan import VtepConfig, SendDatagram
>>> vtep = Vtep(VtepConfig(vni=10, local="198.51.100.1", remote="198.51.100.2"))
>>> vtep.up(now=0.0)
>>> vtep
<Vtep vxlan10 vni=10 up entries=1>
>>> frame = bytes.fromhex("ffffffffffff020000000001") + b"\\x08\\x06" + bytes(46)
>>> vtep.transmit(frame, now=1.0)
>>> [(o.dst, o.dst_port, o.vni, o.ttl) for o in vtep.take_outputs() if isinstance(o, SendDatagram)]
[('198.51.100.2', 4789, 10, 64)]
"""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from collections.abc import Iterable, Sequence
from typing import Final

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.datagram import ParsedDatagram, datagram_fields
from pyvxlan.core.entries import FdbEntry, FdbState, Neighbour, check_interface
from pyvxlan.core.events import (
    DeliverFrame,
    Direction,
    Dropped,
    DropReason,
    EntryExpired,
    EntryMigrated,
    JoinGroup,
    L2Miss,
    L3Miss,
    LeaveGroup,
    Output,
    SendBatch,
    SendDatagram,
    VtepCounters,
)
from pyvxlan.core.fdb import ForwardingDatabase, LearnOutcome, Remote, RemotePool
from pyvxlan.core.slot_setters import slot_setters
from pyvxlan.errors import ClockError, ConfigError, FdbBatchError, FdbError, NeighbourExists, NeighbourNotFound
from pyvxlan.wire.addr import format_mac, ip_info, parse_mac
from pyvxlan.wire.frame import IPV4_FLOW_KEY_SIZE, IPV4_FLOW_MASKS, LINUX_SOURCE_PORTS, ethertype_offset, flow_port
from pyvxlan.wire.header import (
    FLAG_G,
    FLAG_I,
    GBP_A,
    GBP_D,
    GBP_ID_MASK,
    RESERVED0,
    RESERVED0_GBP,
    vxlan_header_bytes,
)
from pyvxlan.wire.packets import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    ND_NEIGHBOR_SOLICIT,
    PROTO_ICMPV6,
    arp_frame,
    na_frame,
    unpadded,
)

__all__ = ["FLOW_MEMO_SIZE", "Vtep"]

FLOW_MEMO_SIZE: Final = 1024
"""Flows whose source port a device's ``transmit_many`` remembers (the memo is emptied when full);
as many as the UDP driver keeps source-port sockets for."""

# Bits of word 0 that must be clear (Linux's cfg.reserved_bits), without and with gbp (indexed by
# the flag): all but I, and with gbp also G and bytes 1-3. Two shared int objects rather than one
# per device, which a flood reaching thousands of devices would read from thousands of places.
_RESERVED0: Final = (RESERVED0, RESERVED0_GBP)
_REFRESHED: Final = LearnOutcome.REFRESHED
_LEARNED: Final = LearnOutcome.LEARNED
_RX: Final = Direction.RX
_TX: Final = Direction.TX
# The EtherTypes as the two bytes the data path compares a frame's slice with.
_ETH_P_ARP: Final = ETH_ARP.to_bytes(2, "big")
_ETH_P_IPV6: Final = ETH_IPV6.to_bytes(2, "big")
_ETH_P_IPV4: Final = ETH_IPV4.to_bytes(2, "big")
_IPV4_IHL5: Final = _ETH_P_IPV4 + b"\x45"  # and then IPv4 with a 20-byte header
_FLOW_KEY_SIZE: Final = IPV4_FLOW_KEY_SIZE


def _gbp_word(mark: int) -> bytes:
    """Word 0 of a GBP header for packet mark ``mark`` (non-zero), as ``vxlan_build_gbp_hdr``."""
    # VXLAN_GBP_DONT_LEARN and VXLAN_GBP_POLICY_APPLIED are the same bits in the mark and the header.
    return (FLAG_I | FLAG_G | (mark & (GBP_D | GBP_A | GBP_ID_MASK))).to_bytes(4, "big")


def _outer_tos(tos: int, dsfield: int) -> int:
    """The outer TOS (or traffic class) for an inner DS field ``dsfield``, given the device's ``tos``
    setting as the core keeps it (-1 for ``inherit``, else its DSCP bits). INET_ECN_encapsulate: the
    outer ECN is the inner's, except that CE goes out as ECT(0)."""
    ecn = dsfield & 3
    return (tos if tos >= 0 else dsfield & 0xFC) | (ecn if ecn != 3 else 2)


# The datagrams and batches transmit makes are built through their slot descriptors: every frame
# sent makes one, and that costs about half their frozen __init__, warm or with cold caches
# (bench/core.py, bench/cold_path.py). The core's values are valid by construction.
_DATAGRAM_SETTERS: Final = slot_setters(
    SendDatagram, ("dst", "dst_port", "src_port", "ttl", "payload", "vni", "src", "tos", "zero_checksum")
)
_BATCH_SETTERS: Final = slot_setters(
    SendBatch, ("dst", "dst_port", "ttl", "vni", "src", "tos", "zero_checksum", "datagrams")
)
_new = object.__new__


def _send_datagram(
    rd: Remote, sport: int, ttl: int, payload: bytes, *, local: str | None, tos: int, zero6: bool
) -> SendDatagram:
    """transmit's datagram ``payload`` to remote ``rd`` from source port ``sport``."""
    d = _new(SendDatagram)
    s_dst, s_port, s_sport, s_ttl, s_payload, s_vni, s_src, s_tos, s_zero = _DATAGRAM_SETTERS
    dst = rd.dst
    s_dst(d, dst)
    s_port(d, rd.out_port)
    s_sport(d, sport)
    s_ttl(d, ttl)
    s_payload(d, payload)
    s_vni(d, rd.out_vni)
    s_src(d, local)
    s_tos(d, tos)
    s_zero(d, zero6 and ":" in dst)
    return d


def _send_batch(
    rd: Remote, ttl: int, tos: int, run: list[tuple[int, bytes]], *, local: str | None, zero6: bool
) -> SendBatch:
    """transmit_many's batch of datagrams ``run`` to remote ``rd``."""
    batch = _new(SendBatch)
    s_dst, s_port, s_ttl, s_vni, s_src, s_tos, s_zero, s_datagrams = _BATCH_SETTERS
    s_dst(batch, rd.dst)
    s_port(batch, rd.out_port)
    s_ttl(batch, ttl)
    s_vni(batch, rd.out_vni)
    s_src(batch, local)
    s_tos(batch, tos)
    s_zero(batch, zero6 and ":" in rd.dst)
    s_datagrams(batch, tuple(run))
    return batch


class Vtep:
    """One vxlan device as a pure state machine; created down, like ``ip link add``.

    ``now`` arguments are seconds on the driver's clock; one earlier than the latest the core has
    seen raises :class:`~pyvxlan.errors.ClockError` and changes nothing. Control methods take
    ``now=None`` to mean the latest time the core has seen. ``pool`` is a
    :class:`~pyvxlan.core.fdb.RemotePool` to share with other devices (a simulator's), or ``None``
    for one of its own; nothing else is shared between two ``Vtep`` objects.
    """

    __slots__ = (
        "_config",
        "_fdb",
        "_flow_ports",
        "_learning",
        "_local",
        "_mac",
        "_neigh",
        "_now",
        "_outputs",
        "_plain",
        "_pool",
        "_gbp_tx",
        "_port_low",
        "_port_span",
        "_reserved0",
        "_tos",
        "_ttl_inherit",
        "_v6",
        "_zero_csum6",
        "_rx_bytes",
        "_rx_dropped",
        "_rx_errors",
        "_rx_frame_errors",
        "_rx_length_errors",
        "_rx_packets",
        "_tx_bytes",
        "_tx_dropped",
        "_tx_errors",
        "_tx_packets",
        "_up",
        "_vni",
    )

    def __init__(self, config: VtepConfig, *, now: float = 0.0, pool: RemotePool | None = None) -> None:
        if not isinstance(config, VtepConfig):
            raise ConfigError("config", f"must be a VtepConfig, got {type(config).__name__}")
        if pool is not None and not isinstance(pool, RemotePool):
            raise ConfigError("pool", f"must be a RemotePool, got {type(pool).__name__}")
        self._config = config
        self._fdb = ForwardingDatabase(config, now=now, pool=pool)
        self._pool = self._fdb.pool
        self._now = now
        self._up = False
        self._outputs: list[Output] = []
        self._flow_ports: dict[int, int] = {}  # transmit_many's memo: masked flow key -> source port
        self._neigh: dict[bytes, Neighbour] = {}
        self._mac = parse_mac(config.mac)
        self._vni = config.vni
        self._plain = vxlan_header_bytes(config.vni)  # receive_many's test of the usual header
        self._learning = config.learning
        self._local = config.local
        low, high = config.src_port_range
        if low == high:  # udp_flow_src_port: an empty range means the local port range
            low, high = LINUX_SOURCE_PORTS
        self._port_low, self._port_span = low, high - low
        self._reserved0 = _RESERVED0[bool(config.gbp)]  # the low byte of word 1 is always reserved
        self._gbp_tx = config.gbp
        self._tos = -1 if config.tos == "inherit" else config.tos & 0xFC  # its ECN bits are the inner's
        self._ttl_inherit = config.ttl_inherit
        self._zero_csum6 = config.udp6_zero_csum_tx
        self._v6 = self._fdb.family == 6
        self._rx_packets = self._rx_bytes = self._rx_dropped = self._rx_errors = 0
        self._rx_frame_errors = self._rx_length_errors = 0
        self._tx_packets = self._tx_bytes = self._tx_dropped = self._tx_errors = 0
        default = config.default_remote
        if default is not None:
            # ip link add ... remote/group: the all-zeros entry, permanent, via the underlay device.
            self._fdb.add_default(default, interface=config.dev, now=now)

    # --- state ------------------------------------------------------------------------------------

    @property
    def config(self) -> VtepConfig:
        """The device's settings, including changes made by ``set_learning`` and ``set_ageing``."""
        return self._config

    @property
    def fdb(self) -> ForwardingDatabase:
        """The forwarding database (read it; change it through the ``fdb_*`` methods)."""
        return self._fdb

    @property
    def is_up(self) -> bool:
        """Whether the device is up (``up()`` called, ``down()`` not since)."""
        return self._up

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"<Vtep {self._config.name} vni={self._vni} {state} entries={len(self._fdb)}>"

    @property
    def now(self) -> float:
        """The latest time the core has seen."""
        return self._now

    def _clock(self, now: float | None) -> float:
        """``now``, or the latest time seen for ``None``; a time before that is a :class:`ClockError`."""
        if now is None:
            return self._now
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        return self._now

    def take_outputs(self) -> list[Output]:
        """The actions and notifications queued so far, in order; the queue is emptied."""
        # A copy for the caller, and the queue kept: a new empty queue per call would live until
        # the device's next datagram, and a flood to 10,000 devices would leave 10,000 of them for
        # the garbage collector to promote and walk. The copy dies with the caller's use of it.
        out = self._outputs.copy()
        self._outputs.clear()
        return out

    def counters(self) -> VtepCounters:
        """The device counters, counted where Linux counts them."""
        return VtepCounters(
            rx_packets=self._rx_packets,
            rx_bytes=self._rx_bytes,
            rx_dropped=self._rx_dropped,
            rx_errors=self._rx_errors,
            rx_frame_errors=self._rx_frame_errors,
            rx_length_errors=self._rx_length_errors,
            tx_packets=self._tx_packets,
            tx_bytes=self._tx_bytes,
            tx_dropped=self._tx_dropped,
            tx_errors=self._tx_errors,
        )

    # --- up, down, timers -------------------------------------------------------------------------

    def up(self, now: float | None = None) -> None:
        """``ip link set up``: joins the multicast group, if any, and starts ageing."""
        self._clock(now)
        if self._up:
            return
        self._up = True
        if self._config.group is not None:
            self._outputs.append(JoinGroup(self._config.group))

    def down(self, now: float | None = None) -> None:
        """``ip link set down``: leaves the group, flushes every FDB entry but permanent and static
        ones (and all-zeros), and flushes the neighbour table (Linux's ``neigh_ifdown``)."""
        self._clock(now)
        if not self._up:
            return
        self._up = False
        if self._config.group is not None:
            self._outputs.append(LeaveGroup(self._config.group))
        self._fdb.flush()
        self._neigh.clear()

    def next_timer(self) -> float | None:
        """When ``handle_timer`` should next run: the oldest learned entry's expiry, or ``None``."""
        if not self._up:
            return None
        return self._fdb.next_expiry()

    def handle_timer(self, now: float) -> None:
        """Age out the entries whose ``updated + ageing <= now`` (Linux's ``vxlan_cleanup``)."""
        t = self._clock(now)
        if not self._up:
            return
        out = self._outputs
        for entry in self._fdb.expire(t):
            out.append(EntryExpired(entry.mac, entry.dst))

    # --- data path: transmit ----------------------------------------------------------------------

    def _drop(self, direction: Direction, reason: DropReason, size: int, detail: str = "") -> None:
        self._outputs.append(Dropped(direction, reason, size, detail))

    def transmit(self, frame: bytes | bytearray | memoryview, now: float, *, mark: int = 0) -> None:
        """A frame from the local side: forward it to the remotes of its destination's entry.

        ``mark`` is the packet's ``skb->mark``: on a ``gbp`` device a non-zero mark sets the G flag
        and carries the group policy (the low 16 bits), Don't Learn (bit 22) and Policy Applied
        (bit 19), as ``vxlan_build_gbp_hdr`` does.
        """
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        if type(frame) is not bytes:
            frame = bytes(frame)
        if mark and (type(mark) is not int or not 0 <= mark <= 0xFFFFFFFF):
            raise ConfigError("mark", f"must be in 0..4294967295, got {mark!r}")
        size = len(frame)
        if not self._up:
            self._tx_dropped += 1
            self._outputs.append(Dropped(_TX, DropReason.DEVICE_DOWN, size, "the device is down"))
            return
        if size < 14:
            self._tx_dropped += 1
            self._outputs.append(Dropped(_TX, DropReason.MALFORMED, size, f"frame of {size} bytes"))
            return
        if self._config.proxy and self._proxy(frame):
            return
        dmac = frame[0:6]
        remotes = self._fdb.forward(dmac, self._now)
        if remotes is None:
            if self._config.l2miss and not dmac[0] & 1:
                self._outputs.append(L2Miss(dmac.hex(":")))
            self._tx_dropped += 1
            self._outputs.append(Dropped(_TX, DropReason.NO_TX_TARGET, size, dmac.hex(":")))
            return
        # The inner network header's DS field and TTL, for the outer TOS/ECN and an inherited TTL
        # (ip_tunnel_get_dsfield, ip_tunnel_get_ttl); an untagged IPv4 packet is the usual case.
        if size >= 34 and frame[12:14] == _ETH_P_IPV4:
            dsfield = frame[15]
            inner_ttl = frame[22]
        else:
            fields = self._inner_fields(frame, size, remotes)
            if fields is None:
                return
            dsfield, inner_ttl = fields
        tos = _outer_tos(self._tos, dsfield)
        ttl = (inner_ttl or 64) if self._ttl_inherit else 0  # ip4_dst_hoplimit: 64, group or not
        sport = flow_port(frame, self._port_low, self._port_span)
        out = self._outputs
        local = self._local
        zero6 = self._zero_csum6
        gbp = _gbp_word(mark) if mark and self._gbp_tx else b""
        counted = size - 14  # Linux counts from the inner network header (seen live: ping -s 56 -> 84)
        # Remotes with the same VNI share one header object, so head-end replication builds one
        # payload for all its copies (and their receivers can share its parse: ParsedDatagram).
        header = payload = b""
        for rd in remotes:
            if rd.unspecified:
                self._tx_dropped += 1
                out.append(Dropped(_TX, DropReason.NO_TX_TARGET, size, f"remote {rd.dst} is unspecified"))
                continue
            if rd.header is not header:
                header = rd.header
                payload = (gbp + header[4:] if gbp else header) + frame
            out.append(_send_datagram(rd, sport, ttl or rd.ttl, payload, local=local, tos=tos, zero6=zero6))
            self._tx_packets += 1
            self._tx_bytes += counted

    def transmit_many(self, frames: Iterable[bytes | bytearray | memoryview], now: float) -> list[SendBatch]:
        """:meth:`transmit` of each of ``frames`` in turn (no mark), for a driver that reads frames
        in bursts: the datagrams come back as :class:`~pyvxlan.core.events.SendBatch` values, one per
        run of datagrams with the same route, instead of a ``SendDatagram`` output each; every
        other output (drops, misses, proxy replies) is queued as ``transmit`` queues it.

        The batches' :meth:`~pyvxlan.core.events.SendBatch.sends`, in order, are exactly the
        ``SendDatagram`` outputs ``transmit`` would have queued, and counters and entries end up
        the same (tests/core/test_vtep_transmit_many.py compares the two on adversarial bursts).

        What makes a burst cheaper than its frames one by one, for the usual frame (untagged
        IPv4 with a 20-byte header): a frame of the flow before it (the same flow key) reuses its
        remotes and source port; a run of frames to one destination MAC looks it up once (the
        lookup only marks the entry used at ``now``, the same for the whole run); the outer TOS is
        worked out again only when the inner DS field changes; and a source port comes from a memo
        of the device's recent flows (at most ``FLOW_MEMO_SIZE``, keyed by the bytes the flow hash
        reads: :data:`~pyvxlan.wire.frame.IPV4_FLOW_MASKS`; tests/core/test_vtep_flow_memo.py
        holds it to the hash). Other frames take ``transmit``'s steps.
        """
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        batches: list[SendBatch] = []
        if not self._up:
            for frame in frames:
                self.transmit(frame, now)  # each is dropped, as the device is down
            return batches
        forward = self._fdb.forward
        proxy = self._config.proxy
        base = self._tos
        ttl_inherit = self._ttl_inherit
        low, span = self._port_low, self._port_span
        local = self._local
        zero6 = self._zero_csum6
        out = self._outputs
        now = self._now
        memo = self._flow_ports
        masks = IPV4_FLOW_MASKS
        from_bytes = int.from_bytes
        # The open batch: its remote, TTL and TOS, and its (source port, payload) pairs.
        run_rd: Remote | None = None
        run_ttl = run_tos = 0
        run: list[tuple[int, bytes]] = []
        packets = counted = 0
        # What the last frame of the usual kind (below) left: its destination MAC and remotes
        # (``one`` when they are one usable remote, the usual unicast entry, with its header and
        # TTL), its flow key and source port; and the last DS field seen with its outer TOS.
        last_dmac = b""
        last_remotes: Sequence[Remote] = ()
        one: Remote | None = None
        one_header = b""
        one_ttl = 0
        last_key: int | None = None
        last_sport = 0
        last_ds = -1
        tos = 0
        for item in frames:
            frame = item if type(item) is bytes else bytes(item)
            size = len(frame)
            # The usual frame is untagged IPv4 with a 20-byte header: never proxied (only ARP and NS
            # are), its DS field and TTL at fixed places, its flow in its first 38 bytes, whose
            # masked value (the flow key) holds the destination MAC, the EtherType and the header
            # length too. A frame with the key of the frame before is of its flow: same remotes,
            # same source port. -1: none (too short, or not IPv4 with a 20-byte header by its
            # byte 14: an IPv6 frame's is 0x6?, and so its burst costs no key).
            if size >= _FLOW_KEY_SIZE and frame[14] == 0x45:
                key = from_bytes(frame[:_FLOW_KEY_SIZE], "big") & masks[frame[23]]
            else:
                key = -1
            if key != last_key and key >= 0 and frame[12:15] == _IPV4_IHL5:
                dmac = frame[0:6]
                if dmac != last_dmac:
                    found = forward(dmac, now)
                    if found is None:
                        self.transmit(frame, now)  # no target: transmit reports the miss and the drop
                        continue
                    last_dmac, last_remotes = dmac, found
                    one = found[0] if len(found) == 1 and not found[0].unspecified else None
                    if one is not None:
                        one_header, one_ttl = one.header, one.ttl
                found_port = memo.get(key)
                if found_port is None:
                    found_port = flow_port(frame, low, span)
                    if len(memo) >= FLOW_MEMO_SIZE:
                        memo.clear()  # many flows: start again rather than keep track of age
                    memo[key] = found_port
                last_key, last_sport = key, found_port
            if key == last_key:
                dsfield = frame[15]
                if dsfield != last_ds:
                    last_ds = dsfield
                    tos = _outer_tos(base, dsfield)
                if one is not None:
                    # The loop below for one remote, written out: most bursts are this.
                    rttl = (frame[22] or 64) if ttl_inherit else one_ttl
                    if one is not run_rd or rttl != run_ttl or tos != run_tos:
                        if run_rd is not None:
                            packets += len(run)
                            batches.append(_send_batch(run_rd, run_ttl, run_tos, run, local=local, zero6=zero6))
                        run_rd, run_ttl, run_tos, run = one, rttl, tos, []
                    run.append((last_sport, one_header + frame))
                    counted += size
                    continue
                remotes = last_remotes
                rtos = tos
                sport = last_sport
                ttl = (frame[22] or 64) if ttl_inherit else 0
            else:
                if size < 14:
                    self.transmit(frame, now)  # dropped as malformed: transmit says so
                    continue
                if proxy and self._proxy(frame):
                    continue
                found = forward(frame[0:6], now)
                if found is None:
                    self.transmit(frame, now)
                    continue
                remotes = found
                if size >= 34 and frame[12:14] == _ETH_P_IPV4:
                    dsfield = frame[15]
                    inner_ttl = frame[22]
                else:
                    fields = self._inner_fields(frame, size, remotes)
                    if fields is None:
                        continue
                    dsfield, inner_ttl = fields
                rtos = _outer_tos(base, dsfield)
                ttl = (inner_ttl or 64) if ttl_inherit else 0
                sport = flow_port(frame, low, span)
            header = payload = b""  # one payload for the remotes that share a header, as transmit
            for rd in remotes:
                if rd.unspecified:
                    self._tx_dropped += 1
                    out.append(Dropped(_TX, DropReason.NO_TX_TARGET, size, f"remote {rd.dst} is unspecified"))
                    continue
                rttl = ttl or rd.ttl
                if rd is not run_rd or rttl != run_ttl or rtos != run_tos:
                    if run_rd is not None:
                        packets += len(run)
                        batches.append(_send_batch(run_rd, run_ttl, run_tos, run, local=local, zero6=zero6))
                    run_rd, run_ttl, run_tos, run = rd, rttl, rtos, []
                if rd.header is not header:
                    header = rd.header
                    payload = header + frame
                run.append((sport, payload))
                counted += size
        if run_rd is not None:
            packets += len(run)
            batches.append(_send_batch(run_rd, run_ttl, run_tos, run, local=local, zero6=zero6))
        self._tx_packets += packets  # every datagram is in one batch, counted as the batch closes
        self._tx_bytes += counted - 14 * packets  # Linux counts from the inner network header
        return batches

    def _inner_fields(self, frame: bytes, size: int, remotes: Sequence[Remote]) -> tuple[int, int] | None:
        """(DS field, TTL) of the inner IPv4/IPv6 header after any VLAN tags, (0, 0) when not IP;
        None when skb_vlan_inet_prepare refuses it: vxlan_xmit_one then drops the frame once per
        remote, each counted in tx_dropped."""
        ethertype, off = ethertype_offset(frame)
        if ethertype == ETH_IPV4:
            if size >= off + 20:
                return frame[off + 1], frame[off + 8]
            kind = "IPv4"
        elif ethertype == ETH_IPV6:
            if size >= off + 40:
                return ((frame[off] & 0x0F) << 4) | (frame[off + 1] >> 4), frame[off + 7]
            kind = "IPv6"
        else:
            return 0, 0
        for _ in remotes:
            self._tx_dropped += 1
            self._outputs.append(Dropped(_TX, DropReason.INNER_TRUNCATED, size, f"{kind} header cut short"))
        return None

    def _proxy(self, frame: bytes) -> bool:
        """Linux's ``arp_reduce``/``neigh_reduce``; True when the frame was consumed."""
        etype = frame[12:14]
        if etype == _ETH_P_ARP:
            self._arp_reduce(frame)
            return True
        if (
            etype == _ETH_P_IPV6
            and len(frame) >= 14 + 40 + 24
            and frame[20] == PROTO_ICMPV6
            and frame[54] == ND_NEIGHBOR_SOLICIT
            and frame[55] == 0
        ):
            self._neigh_reduce(frame)
            return True
        return False

    def _arp_reduce(self, frame: bytes) -> None:
        size = len(frame)
        if size < 14 + 28:
            self._tx_dropped += 1
            self._drop(_TX, DropReason.MALFORMED, size, "truncated ARP")
            return
        hrd, pro, hln, pln, op = struct.unpack_from("!HHBBH", frame, 14)
        # arp_reduce: ARPHRD_ETHER or ARPHRD_IEEE802, IPv4, a request, Ethernet and IPv4 lengths.
        if hrd not in (1, 6) or pro != ETH_IPV4 or op != ARP_REQUEST or hln != 6 or pln != 4:
            self._drop(_TX, DropReason.PROXY_CONSUMED, size, "ARP frame other than a request")
            return
        sha, sip, tip = frame[22:28], frame[28:32], frame[38:42]
        if tip[0] == 127 or 224 <= tip[0] <= 239:
            self._drop(_TX, DropReason.PROXY_CONSUMED, size, "ARP for a loopback or multicast target")
            return
        n = self._neigh.get(tip)
        if n is None:
            if self._config.l3miss:
                self._outputs.append(L3Miss(str(ipaddress.IPv4Address(tip))))
            self._drop(_TX, DropReason.PROXY_UNRESOLVED, size, f"no neighbour for {ipaddress.IPv4Address(tip)}")
            return
        ha = parse_mac(n.mac)
        if self._fdb.is_bridge_local(ha):
            self._drop(_TX, DropReason.PROXY_CONSUMED, size, f"{n.ip} is bridge-local")
            return
        # arp_create(ARPOP_REPLY, ETH_P_ARP, sip, dev, tip, sha, n->ha, sha); netif_rx: no padding.
        reply = arp_frame(ARP_REPLY, ha, tip, sip, dst_mac=sha, target_mac=sha)
        self._outputs.append(DeliverFrame(unpadded(reply)))

    def _neigh_reduce(self, frame: bytes) -> None:
        size = len(frame)
        saddr, daddr, target = frame[22:38], frame[38:54], frame[62:78]
        if daddr == bytes(15) + b"\x01" or target[0] == 0xFF:
            self._drop(_TX, DropReason.PROXY_CONSUMED, size, "NS for a loopback or multicast target")
            return
        n = self._neigh.get(target)
        target_text = str(ipaddress.IPv6Address(target))
        if n is None:
            if self._config.l3miss:
                self._outputs.append(L3Miss(target_text))
            self._drop(_TX, DropReason.PROXY_UNRESOLVED, size, f"no neighbour for {target_text}")
            return
        ha = parse_mac(n.mac)
        if self._fdb.is_bridge_local(ha):
            self._drop(_TX, DropReason.PROXY_CONSUMED, size, f"{n.ip} is bridge-local")
            return
        # vxlan_na_create: reply to the NS's source link-layer option, else its Ethernet source.
        eth_dst = frame[6:12]
        opts = frame[78:]
        i = 0
        while i + 1 < len(opts):
            if opts[i + 1] == 0:
                self._drop(_TX, DropReason.MALFORMED, size, "NS option of length 0")
                return
            if opts[i] == 1 and i + 8 <= len(opts):
                eth_dst = opts[i + 2 : i + 8]
                break
            i += opts[i + 1] * 8
        # vxlan_na_create: Solicited and Override, and Router when the neighbour's FDB entry has it;
        # pip6->priority = the request's, which is the top 4 bits of its traffic class; no flow label.
        router = self._fdb.is_router(ha)
        na = na_frame(ha, eth_dst, target, saddr, router=router, traffic_class=(frame[14] & 0x0F) << 4)
        self._outputs.append(DeliverFrame(na))

    # --- data path: receive -----------------------------------------------------------------------

    def receive(
        self,
        payload: bytes | bytearray | memoryview | ParsedDatagram,
        src: str,
        src_port: int,
        now: float,
        *,
        interface: str | None = None,
        tos: int = 0,
        zero_checksum: bool = False,
    ) -> None:
        """A UDP payload (VXLAN header + inner frame) from underlay address ``src``:``src_port``.

        ``interface`` is the underlay interface it came in on (a source learned from an IPv6
        link-local address is recorded ``via`` it, as ``vxlan_snoop`` does), ``tos`` the outer IPv4
        TOS or IPv6 traffic class (its ECN bits: ``IP_ECN_decapsulate``), ``zero_checksum`` that
        its UDP checksum was 0 (an IPv6 datagram is then dropped unless ``udp6_zero_csum_rx``).
        ``src`` must be of the device's family: a device's socket never sees the other one.

        A driver handing one datagram to many devices (a multicast datagram reaching a group)
        reads it once with :func:`~pyvxlan.core.datagram.parse_datagram` and passes that
        :class:`~pyvxlan.core.datagram.ParsedDatagram` to each instead of the bytes (``receive_parsed``
        is this method under the name that says so): the same checks, outputs and counters.
        """
        if type(src) is not str or (":" in src) is not self._v6:
            raise ConfigError("src", f"{src!r} is not an IPv{6 if self._v6 else 4} address, as the device is")
        if tos and (type(tos) is not int or not 0 <= tos <= 255):
            raise ConfigError("tos", f"must be in 0..255, got {tos!r}")
        if interface is not None and type(interface) is not str:
            raise ConfigError("interface", f"must be an interface name, got {interface!r}")
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        # type() is, not isinstance: the flood path's check, once per receiver (a ParsedDatagram is final).
        fields = payload if type(payload) is ParsedDatagram else datagram_fields(payload)  # type: ignore[arg-type]
        payload, size, w0, w1, smac, truncated, deliver = fields
        out = self._outputs
        if zero_checksum and self._v6 and not self._config.udp6_zero_csum_rx:
            # udp6_csum_init refuses it before any tunnel sees it: no counter of the device's.
            out.append(Dropped(_RX, DropReason.ZERO_CHECKSUM, size, "IPv6 UDP checksum 0"))
            return
        if not self._up:
            self._rx_dropped += 1
            out.append(Dropped(_RX, DropReason.DEVICE_DOWN, size, "the device is down"))
            return
        if size < 8:
            out.append(Dropped(_RX, DropReason.MALFORMED, size, f"{size} bytes, no VXLAN header"))
            return
        if not w0 & FLAG_I:
            out.append(Dropped(_RX, DropReason.MISSING_I_FLAG, size))
            return
        if w1 >> 8 != self._vni:
            out.append(Dropped(_RX, DropReason.UNKNOWN_VNI, size, f"vni {w1 >> 8}"))
            return
        if w0 & self._reserved0 or w1 & 0xFF:
            self._rx_errors += 1
            self._rx_frame_errors += 1
            out.append(Dropped(_RX, DropReason.RESERVED_BITS, size, f"header {payload[:8].hex()}"))
            return
        if size < 22:  # no counter (seen live: the reserved-bits check comes first)
            out.append(Dropped(_RX, DropReason.MALFORMED, size, f"inner frame of {size - 8} bytes"))
            return
        if smac == self._mac:
            out.append(Dropped(_RX, DropReason.LOCAL_MAC, size, smac.hex(":")))
            return
        if self._learning:
            outcome, dst = self._fdb.learn(smac, src, self._now, interface)
            if outcome is not _REFRESHED:
                if outcome is _LEARNED:
                    out.append(self._pool.learned_note(smac, dst))
                elif not self._snooped(outcome, smac, dst, src, size):
                    return
        if truncated:
            # pskb_inet_may_pull, after vxlan_set_mac: the source was learned, the frame is dropped.
            self._rx_errors += 1
            self._rx_length_errors += 1
            out.append(Dropped(_RX, DropReason.MALFORMED, size, "inner IP header truncated"))
            return
        if tos & 3 == 3:
            ce = self._ecn_decapsulate(payload, size, deliver)
            if ce is None:
                return
            deliver = ce
        self._rx_packets += 1
        self._rx_bytes += size - 22  # Linux counts after eth_type_trans: the inner frame minus 14
        out.append(deliver)

    # For a driver that passes ParsedDatagram values: the same function, so no extra call per
    # receiver of a flood (a subclass that overrides receive assigns this again).
    receive_parsed = receive

    def receive_many(self, datagrams: Iterable[tuple[bytes, str, int, int, str | None]], now: float) -> list[bytes]:
        """:meth:`receive` of each of ``datagrams`` in turn, for a driver that reads datagrams in
        bursts: each is ``(payload, src, src_port, tos, interface)`` as ``receive`` takes them, and
        the frames to deliver come back as a list, in order, instead of a ``DeliverFrame`` output
        each; every other output (learned, migrated, drops) is queued as ``receive`` queues it.

        The frames are exactly those of the ``DeliverFrame`` outputs ``receive`` would have
        queued, and counters and entries end up the same (tests/core/test_vtep_receive_many.py
        compares the two on adversarial bursts). What makes a burst cheaper: a datagram with the
        plain header of the device's VNI and an inner frame long enough to need no other check is
        taken without a parse, and a datagram from the source (MAC, address, interface) that the
        datagram before it refreshed does not learn again, which would change nothing. Anything
        else goes through ``receive`` itself.
        """
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        frames: list[bytes] = []
        receive = self.receive
        if not self._up:
            for payload, src, src_port, tos, interface in datagrams:
                receive(payload, src, src_port, now, tos=tos, interface=interface)  # each is dropped
            return frames
        now = self._now
        plain = self._plain
        mac = self._mac
        learn = self._fdb.learn if self._learning else None
        out = self._outputs
        v6 = self._v6
        learned_note = self._pool.learned_note
        # The source the datagram before refreshed: its MAC, address and interface.
        last_smac = b""
        last_src = ""
        last_interface: str | None = None
        packets = counted = 0
        for payload, src, src_port, tos, interface in datagrams:
            if (
                type(payload) is not bytes
                # An inner frame of 54 bytes or more has whole IPv4 and IPv6 headers: not truncated.
                or (size := len(payload)) < 62
                or payload[:8] != plain
                or type(src) is not str
                or (":" in src) is not v6
                or (tos and (type(tos) is not int or not 0 <= tos <= 255 or tos & 3 == 3))  # bad, or CE
                or (interface is not None and type(interface) is not str)
                or payload[14:20] == mac
            ):
                received = self._rx_packets
                receive(payload, src, src_port, now, tos=tos, interface=interface)
                if self._rx_packets != received:
                    # Delivered: the DeliverFrame it queued last is this list's, in order.
                    delivered = out.pop()
                    frames.append(delivered.frame)  # type: ignore[union-attr]
                last_smac = b""  # receive learned, or did not: learn afresh
                continue
            if learn is not None:
                smac = payload[14:20]
                if smac != last_smac or src != last_src or interface != last_interface:
                    outcome, dst = learn(smac, src, now, interface)
                    if outcome is _REFRESHED:
                        # Only a refresh says that the same call again would change nothing.
                        last_smac, last_src, last_interface = smac, src, interface
                    else:
                        last_smac = b""
                        if outcome is _LEARNED:
                            out.append(learned_note(smac, dst))
                        elif not self._snooped(outcome, smac, dst, src, size):
                            continue
            packets += 1
            counted += size
            frames.append(payload[8:])
        self._rx_packets += packets
        self._rx_bytes += counted - 22 * packets  # Linux counts after eth_type_trans: the inner frame minus 14
        return frames

    def _snooped(self, outcome: LearnOutcome, smac: bytes, dst: str, src: str, size: int) -> bool:
        """The notification or drop for the less common learning outcomes; True: deliver."""
        if outcome is LearnOutcome.MIGRATED:
            self._outputs.append(EntryMigrated(smac.hex(":"), dst, ip_info(src, "src").text))
        elif outcome is LearnOutcome.INVALID:
            self._outputs.append(Dropped(_RX, DropReason.INVALID_SOURCE_MAC, size, smac.hex(":")))
            return False
        elif outcome is LearnOutcome.CONFLICT:
            state = self._fdb.get(smac)[0].state.name.lower()
            self._outputs.append(Dropped(_RX, DropReason.ENTRY_EXISTS, size, f"{smac.hex(':')} is {state} at {dst}"))
            return False
        return True  # FULL (Linux: ENOSPC): not learned, but the frame is still delivered

    def _ecn_decapsulate(self, payload: bytes, size: int, deliver: DeliverFrame) -> DeliverFrame | None:
        """An outer CE (IP_ECN_decapsulate): marks an ECN-capable inner packet CE, or drops a
        not-ECT one as a frame error (the source was learned already); None when dropped."""
        etype = payload[20:22]
        if etype == _ETH_P_IPV4:
            inner_tos = payload[23]
        elif etype == _ETH_P_IPV6:
            inner_tos = ((payload[22] & 0x0F) << 4) | (payload[23] >> 4)
        else:
            return deliver  # not IP: nothing to mark (a VLAN-tagged inner frame counts as not IP)
        ecn = inner_tos & 3
        if ecn == 0:
            self._rx_errors += 1
            self._rx_frame_errors += 1
            self._outputs.append(Dropped(_RX, DropReason.ECN_ERROR, size, "outer CE, inner not ECT"))
            return None
        if ecn == 3:
            return deliver
        frame = bytearray(payload[8:])
        if etype == _ETH_P_IPV4:
            # IP_ECN_set_ce: the checksum is adjusted, not recomputed, so a wrong one stays wrong.
            check = int.from_bytes(frame[24:26], "big") + 0xFFFB + ((inner_tos + 1) & 3)
            check = (check & 0xFFFF) + (check >> 16)
            frame[24:26] = check.to_bytes(2, "big")
            frame[15] |= 3
        else:
            frame[15] |= 0x30  # the traffic class's ECN bits are bits 4-5 of its second byte
        return DeliverFrame(bytes(frame))

    def _link_changed(self) -> None:
        """After any ``ip link set ... type vxlan`` change (Linux's ``vxlan_changelink``).

        Linux 6.13 and later rebuild ``cfg.reserved_bits`` in ``vxlan_nl2conf`` from the change
        request's own attributes, and a change never carries ``IFLA_VXLAN_GBP``: a ``gbp`` device
        then counts every datagram with GBP bits as a frame error, though it still sends them and
        ``ip -d link`` still shows ``gbp``. ``gbp_lost_on_change=False`` keeps GBP instead.
        """
        if self._config.gbp and self._config.gbp_lost_on_change:
            self._reserved0 = _RESERVED0[False]

    # --- control: bridge fdb ----------------------------------------------------------------------

    def fdb_add(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb add MAC dst DST [port P] [vni V] [src_vni S] [via IF] [router] [extern_learn]
        [STATE]``; see :meth:`ForwardingDatabase.add`."""
        self._fdb.add(
            mac,
            dst,
            port=port,
            vni=vni,
            state=state,
            extern_learn=extern_learn,
            router=router,
            interface=interface,
            src_vni=src_vni,
            now=self._clock(now),
        )

    def fdb_append(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb append``; see :meth:`ForwardingDatabase.append`."""
        self._fdb.append(
            mac,
            dst,
            port=port,
            vni=vni,
            state=state,
            extern_learn=extern_learn,
            router=router,
            interface=interface,
            src_vni=src_vni,
            now=self._clock(now),
        )

    def fdb_append_many(self, entries: Sequence[FdbEntry], now: float | None = None) -> None:
        """``fdb_append`` for each entry in order; :class:`~pyvxlan.FdbBatchError` at the first failure
        (``applied`` entries took effect, ``__cause__`` is the error)."""
        t = self._clock(now)
        append = self._fdb.append
        for i, e in enumerate(entries):
            try:
                if not isinstance(e, FdbEntry):
                    raise ConfigError("entry", f"must be an FdbEntry, got {type(e).__name__}")
                append(
                    e.mac,
                    e.dst,
                    port=e.port,
                    vni=e.vni,
                    state=e.state,
                    extern_learn=e.extern_learn,
                    router=e.router,
                    interface=e.interface,
                    now=t,
                )
            except (FdbError, ConfigError) as exc:
                raise FdbBatchError(i, i, str(exc)) from exc

    def fdb_replace(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb replace``; see :meth:`ForwardingDatabase.replace` (its kernel quirk too)."""
        self._fdb.replace(
            mac,
            dst,
            port=port,
            vni=vni,
            state=state,
            extern_learn=extern_learn,
            router=router,
            interface=interface,
            src_vni=src_vni,
            now=self._clock(now),
        )

    def fdb_del(
        self,
        mac: str,
        dst: str | None = None,
        *,
        port: int | None = None,
        vni: int | None = None,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb del``; see :meth:`ForwardingDatabase.delete`."""
        self._clock(now)
        self._fdb.delete(mac, dst, port=port, vni=vni, interface=interface, src_vni=src_vni)

    def fdb_dump(self, now: float | None = None) -> list[FdbEntry]:
        """``bridge fdb show dev DEV``: one record per (MAC, remote)."""
        self._clock(now)
        return self._fdb.dump()

    # --- control: neighbours, settings ------------------------------------------------------------

    def neigh_add(self, ip: str, mac: str, now: float | None = None) -> None:
        """``ip neigh add IP lladdr MAC dev DEV``; :class:`~pyvxlan.errors.NeighbourError` when ``ip`` has one."""
        self._clock(now)
        info = ip_info(str(ip), "ip")
        text = format_mac(parse_mac(mac))
        if info.packed in self._neigh:
            raise NeighbourExists(f"neighbour {info.text} already exists")
        self._neigh[info.packed] = Neighbour(info.text, text)

    def neigh_del(self, ip: str, now: float | None = None) -> None:
        """``ip neigh del IP dev DEV``; :class:`~pyvxlan.errors.NeighbourError` when absent."""
        self._clock(now)
        info = ip_info(str(ip), "ip")
        if self._neigh.pop(info.packed, None) is None:
            raise NeighbourNotFound(f"neighbour {info.text} does not exist")

    def neighbours(self, now: float | None = None) -> list[Neighbour]:
        """The neighbour entries proxy ARP/ND answers from, in the order they were added."""
        self._clock(now)
        return list(self._neigh.values())

    def set_learning(self, on: bool, now: float | None = None) -> None:
        """``ip link set DEV type vxlan [no]learning``."""
        self._clock(now)
        self._learning = bool(on)
        self._config = dataclasses.replace(self._config, learning=bool(on))
        self._fdb.reconfigure(self._config)
        self._link_changed()

    def set_ageing(self, seconds: float, now: float | None = None) -> None:
        """``ip link set DEV type vxlan ageing S`` (0 means 300); applies to existing entries."""
        self._clock(now)
        self._config = dataclasses.replace(self._config, ageing=seconds)  # validates, maps 0 to 300
        self._fdb.reconfigure(self._config)
        self._link_changed()

    def set_remote(self, address: str | None, *, dev: str | None = None, now: float | None = None) -> None:
        """``ip link set DEV type vxlan remote|group ADDRESS [dev IF]`` on a live device.

        A multicast ``address`` is the group (it needs an underlay interface: ``dev`` here or the
        device's); ``None``, ``0.0.0.0`` or ``::`` removes the remote. As Linux's
        ``vxlan_changelink``: the new address is appended to the all-zeros entry as the device's
        own (permanent, no flags, ``via`` the device's interface), then the old remote is deleted
        from it (the whole entry when it was its last remote); a running device leaves the old
        group and joins the new one. The address family cannot change
        (:class:`~pyvxlan.ConfigError`, ``remote``).
        """
        self._clock(now)
        cfg = self._config
        family = self._fdb.family
        new: str | None = None
        if address is not None:
            if not isinstance(address, str):
                raise ConfigError("remote", f"{address!r} is not an IPv4 or IPv6 address")
            info = ip_info(address, "remote")
            if info.version != family:
                raise ConfigError("remote", f"{info.text} is IPv{info.version} but the device is IPv{family}")
            new = None if info.is_unspecified else info.text
        lower = cfg.dev if dev is None else check_interface(dev, "dev")
        is_group = new is not None and ip_info(new).is_multicast
        if is_group and lower is None:
            raise ConfigError("dev", f"a multicast group ({new}) needs an underlay interface (dev)")
        old = cfg.default_remote
        config = dataclasses.replace(cfg, group=new if is_group else None, remote=None if is_group else new, dev=lower)
        if new != old:
            self._fdb.change_default(old, new, old_interface=cfg.dev, interface=lower, now=self._now)
            if self._up:
                if cfg.group is not None:
                    self._outputs.append(LeaveGroup(cfg.group))
                if config.group is not None:
                    self._outputs.append(JoinGroup(config.group))
        self._config = config
        self._fdb.reconfigure(config)
        self._link_changed()
