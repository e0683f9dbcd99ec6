"""What the sans-I/O core emits: actions a driver must carry out, and notifications.

Every input to :class:`pyvxlan.Vtep` queues zero or more of these; a driver takes them in order
with ``Vtep.take_outputs()``. Actions change the world (send, deliver, join, leave); notifications
only report (learned, migrated, expired, miss, dropped), and every frame that goes in either comes
out as an action or is reported by a :class:`Dropped` with its reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Action",
    "DeliverFrame",
    "Direction",
    "DropReason",
    "Dropped",
    "EntryExpired",
    "EntryLearned",
    "EntryMigrated",
    "JoinGroup",
    "L2Miss",
    "L3Miss",
    "LeaveGroup",
    "Notification",
    "Output",
    "SendBatch",
    "SendDatagram",
    "VtepCounters",
]


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendDatagram:
    """Send ``payload`` (VXLAN header + inner frame) by UDP from ``src_port`` to ``dst``:``dst_port``.

    ``src`` is the device's ``local`` address (``None``: the underlay picks), ``ttl`` the outer TTL
    or hop limit, ``vni`` the VNI written in the header (for drivers that log or capture), ``tos``
    the outer IPv4 TOS or IPv6 traffic class (its ECN bits follow the inner packet's, as Linux's
    ``ip_tunnel_ecn_encap``), ``zero_checksum`` that the outer UDP checksum is 0 (an IPv6 underlay
    with ``udp6zerocsumtx``; otherwise the driver computes it).
    """

    dst: str
    dst_port: int
    src_port: int
    ttl: int
    payload: bytes
    vni: int
    src: str | None = None
    tos: int = 0
    zero_checksum: bool = False


@dataclass(frozen=True, slots=True)
class SendBatch:
    """Datagrams with one route, in order: what :meth:`pyvxlan.Vtep.transmit_many` returns for a
    burst of frames instead of one :class:`SendDatagram` each (a burst to one remote shares every
    field but the source port and the payload).

    ``datagrams`` holds ``(src_port, payload)`` pairs; the other fields mean what they mean in
    :class:`SendDatagram`, and :meth:`sends` gives those datagrams one by one.
    """

    dst: str
    dst_port: int
    ttl: int
    vni: int
    src: str | None
    tos: int
    zero_checksum: bool
    datagrams: tuple[tuple[int, bytes], ...]

    def sends(self) -> list[SendDatagram]:
        """The batch as the :class:`SendDatagram` actions ``Vtep.transmit`` would have queued."""
        return [
            SendDatagram(
                self.dst, self.dst_port, sport, self.ttl, payload, self.vni, self.src, self.tos, self.zero_checksum
            )
            for sport, payload in self.datagrams
        ]


@dataclass(frozen=True, slots=True)
class DeliverFrame:
    """Hand ``frame`` (an Ethernet frame without FCS) to the local side (the bridge)."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class JoinGroup:
    """Join multicast ``group`` on the underlay (the device went up)."""

    group: str


@dataclass(frozen=True, slots=True)
class LeaveGroup:
    """Leave multicast ``group`` (the device went down or its group changed)."""

    group: str


Action: TypeAlias = SendDatagram | DeliverFrame | JoinGroup | LeaveGroup


# --- notifications ------------------------------------------------------------------------------


class Direction(enum.Enum):
    TX = "tx"  # a frame from the local side, on its way to the underlay
    RX = "rx"  # a datagram from the underlay


class DropReason(enum.Enum):
    """Why a frame or datagram was dropped; the comments give Linux's name or counter."""

    NO_TX_TARGET = "no_tx_target"  # SKB_DROP_REASON_VXLAN_NO_REMOTE: no entry, no default; tx_dropped
    DEVICE_DOWN = "device_down"  # tx or rx on a device that is down
    MALFORMED = "malformed"  # shorter than a VXLAN header plus an Ethernet header
    MISSING_I_FLAG = "missing_i_flag"  # vxlan_rcv: I flag clear; no counter
    UNKNOWN_VNI = "unknown_vni"  # vxlan_rcv: no device for the VNI on this port; no counter
    RESERVED_BITS = "reserved_bits"  # SKB_DROP_REASON_VXLAN_INVALID_HDR; rx_frame_errors, rx_errors
    LOCAL_MAC = "local_mac"  # inner source is the device's own MAC (loops, multicast echo)
    INVALID_SOURCE_MAC = "invalid_source_mac"  # multicast or zero inner source while learning
    ENTRY_EXISTS = "entry_exists"  # VXLAN_ENTRY_EXISTS: source MAC is static/permanent elsewhere
    PROXY_UNRESOLVED = "proxy_unresolved"  # proxy: ARP/NS with no (or an incomplete) neighbour
    PROXY_CONSUMED = "proxy_consumed"  # proxy: non-request ARP frames are never tunnelled
    INNER_TRUNCATED = "inner_truncated"  # skb_vlan_inet_prepare: IPv4/IPv6 type, header cut; tx_dropped
    ECN_ERROR = "ecn_error"  # IP_ECN_decapsulate: outer CE, inner not ECT; rx_frame_errors, rx_errors
    ZERO_CHECKSUM = "zero_checksum"  # IPv6 UDP checksum 0 without udp6zerocsumrx; UDP6 drops it


@dataclass(frozen=True, slots=True)
class EntryLearned:
    """A new entry was learned: ``mac`` lives behind VTEP ``dst``."""

    mac: str
    dst: str


@dataclass(frozen=True, slots=True)
class EntryMigrated:
    """A learned ``mac`` moved from VTEP ``old_dst`` to ``new_dst`` ("MAC migrated from A to B")."""

    mac: str
    old_dst: str
    new_dst: str


@dataclass(frozen=True, slots=True)
class EntryExpired:
    """A learned entry aged out (Linux sends RTM_DELNEIGH)."""

    mac: str
    dst: str


@dataclass(frozen=True, slots=True)
class L2Miss:
    """No FDB entry for unicast ``mac`` (Linux: RTM_GETNEIGH with NDA_LLADDR, with ``l2miss``)."""

    mac: str


@dataclass(frozen=True, slots=True)
class L3Miss:
    """Proxy ARP/ND found no neighbour for ``ip`` (Linux: RTM_GETNEIGH with NDA_DST, ``l3miss``)."""

    ip: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A frame (TX) or datagram (RX) was dropped; ``size`` is its length in bytes."""

    direction: Direction
    reason: DropReason
    size: int
    detail: str = ""


Notification: TypeAlias = EntryLearned | EntryMigrated | EntryExpired | L2Miss | L3Miss | Dropped
Output: TypeAlias = Action | Notification


@dataclass(frozen=True, slots=True)
class VtepCounters:
    """The device counters, as Linux keeps them in ``ip -s link show``."""

    rx_packets: int = 0
    rx_bytes: int = 0
    rx_dropped: int = 0
    rx_errors: int = 0
    rx_frame_errors: int = 0
    rx_length_errors: int = 0  # inner IPv4/IPv6 header truncated (pskb_inet_may_pull)
    tx_packets: int = 0
    tx_bytes: int = 0
    tx_dropped: int = 0
    tx_errors: int = 0
