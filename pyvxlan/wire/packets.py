"""The few inner packets a guest speaks: Ethernet, ARP, IPv4, IPv6 neighbour discovery, ICMP and
ICMPv6 echo, and UDP. The simulator's guests use all of it; the kernel lab uses the announcement a
moved guest sends.

Builders return real bytes (a capture of a guest's interface opens in Wireshark); the parser
reads only what the guest stack needs and returns ``None`` for anything else, which the stack
then counts as a drop with a reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pyvxlan.wire.frame import internet_checksum, pseudo_header

__all__ = [
    "ALL_NODES",
    "ARP_REPLY",
    "ARP_REQUEST",
    "ETH_ARP",
    "ETH_IPV4",
    "ETH_IPV6",
    "ArpPacket",
    "IcmpEcho",
    "NeighbourMessage",
    "UdpDatagram",
    "announcement_frame",
    "arp_frame",
    "icmp_echo_frame",
    "na_frame",
    "ns_frame",
    "parse_ip",
    "parse_arp",
    "parse_ipv4",
    "parse_ipv6",
    "solicited_node_mac",
    "udp_frame",
    "unpadded",
]

ETH_IPV4: Final = 0x0800
ETH_ARP: Final = 0x0806
ETH_IPV6: Final = 0x86DD
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2
ICMP_ECHO_REPLY: Final = 0
ICMP_ECHO_REQUEST: Final = 8
PROTO_ICMP: Final = 1
PROTO_UDP: Final = 17
PROTO_ICMPV6: Final = 58
ICMPV6_ECHO_REQUEST: Final = 128
ICMPV6_ECHO_REPLY: Final = 129
ND_NEIGHBOR_SOLICIT: Final = 135
ND_NEIGHBOR_ADVERT: Final = 136
BROADCAST: Final = b"\xff" * 6

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_ICMP = struct.Struct("!BBHHH")
_UDP = struct.Struct("!HHHH")


def _pad(frame: bytes) -> bytes:
    # Ethernet's minimum frame is 60 bytes without the FCS; NICs pad shorter ones with zeros.
    return frame if len(frame) >= 60 else frame + bytes(60 - len(frame))


@dataclass(frozen=True, slots=True)
class ArpPacket:
    op: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes


def unpadded(frame: bytes) -> bytes:
    """``frame`` without the padding to 60 bytes that the builders here add: Linux pads only on a
    real NIC, so a veth, a bridge and a vxlan device carry the short frame, and a lab's guest
    (simulated or in a namespace) sends it short.

    >>> len(unpadded(announcement_frame(bytes.fromhex("020000000001"), bytes((203, 0, 113, 1)))))
    42
    """
    kind = frame[12:14]
    if kind == b"\x08\x06":
        return frame[:42]
    if kind == b"\x08\x00":
        return frame[: 14 + int.from_bytes(frame[16:18], "big")]
    if kind == b"\x86\xdd":
        return frame[: 54 + int.from_bytes(frame[18:20], "big")]
    return frame


def arp_frame(
    op: int,
    src_mac: bytes,
    src_ip: bytes,
    target_ip: bytes,
    *,
    dst_mac: bytes = BROADCAST,
    target_mac: bytes = bytes(6),
) -> bytes:
    """An Ethernet ARP request (``op=1``, broadcast by default) or reply (``op=2``)."""
    body = _ARP.pack(1, ETH_IPV4, 6, 4, op, src_mac, src_ip, target_mac, target_ip)
    return _pad(_ETH.pack(dst_mac, src_mac, ETH_ARP) + body)


def parse_arp(frame: bytes) -> ArpPacket | None:
    """The ARP packet in an Ethernet frame, or ``None`` when it is not Ethernet/IPv4 ARP."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op, smac, sip, tmac, tip = _ARP.unpack_from(frame, 14)
    if htype != 1 or ptype != ETH_IPV4 or hlen != 6 or plen != 4:
        return None
    return ArpPacket(op, smac, sip, tmac, tip)


def _ipv4(
    src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, *, proto: int, payload: bytes, ttl: int
) -> bytes:
    total = 20 + len(payload)
    header = _IPV4.pack(0x45, 0, total, 0, 0x4000, ttl, proto, 0, src_ip, dst_ip)
    header = header[:10] + struct.pack("!H", internet_checksum(header)) + header[12:]
    return _pad(_ETH.pack(dst_mac, src_mac, ETH_IPV4) + header + payload)


@dataclass(frozen=True, slots=True)
class IcmpEcho:
    src_ip: bytes
    dst_ip: bytes
    reply: bool
    ident: int
    seq: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UdpDatagram:
    src_ip: bytes
    dst_ip: bytes
    src_port: int
    dst_port: int
    payload: bytes


def icmp_echo_frame(
    src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, *, reply: bool, ident: int, seq: int, data: bytes
) -> bytes:
    """An ICMP echo request or reply in IPv4 (ICMPv6 in IPv6 for 16-byte addresses) in Ethernet."""
    if len(src_ip) == 16:
        kind6 = ICMPV6_ECHO_REPLY if reply else ICMPV6_ECHO_REQUEST
        body = _ICMP.pack(kind6, 0, 0, ident, seq) + data
        return _ipv6(src_mac, dst_mac, src_ip, dst_ip, proto=PROTO_ICMPV6, payload=body, hops=64)
    kind = ICMP_ECHO_REPLY if reply else ICMP_ECHO_REQUEST
    icmp = _ICMP.pack(kind, 0, 0, ident, seq) + data
    icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
    return _ipv4(src_mac, dst_mac, src_ip, dst_ip, proto=PROTO_ICMP, payload=icmp, ttl=64)


def udp_frame(
    src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, *, src_port: int, dst_port: int, payload: bytes
) -> bytes:
    """A UDP datagram in IPv4 or IPv6 in Ethernet (checksum computed, as Linux sends it)."""
    length = 8 + len(payload)
    if len(src_ip) == 16:
        udp6 = _UDP.pack(src_port, dst_port, length, 0) + payload
        return _ipv6(src_mac, dst_mac, src_ip, dst_ip, proto=PROTO_UDP, payload=udp6, hops=64)
    pseudo = pseudo_header(src_ip, dst_ip, length, PROTO_UDP)
    udp = _UDP.pack(src_port, dst_port, length, 0) + payload
    csum = internet_checksum(pseudo + udp) or 0xFFFF
    return _ipv4(
        src_mac, dst_mac, src_ip, dst_ip, proto=PROTO_UDP, payload=udp[:6] + struct.pack("!H", csum) + udp[8:], ttl=64
    )


def parse_ipv4(frame: bytes) -> IcmpEcho | UdpDatagram | None:
    """The ICMP echo or UDP datagram in an Ethernet/IPv4 frame; ``None`` for anything else."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = int.from_bytes(frame[16:18], "big")
    proto = frame[23]
    src_ip, dst_ip = frame[26:30], frame[30:34]
    start = 14 + ihl
    end = 14 + total
    if ihl < 20 or end > len(frame) or end < start:
        return None
    if proto == PROTO_ICMP and end - start >= 8:
        kind, _code, _csum, ident, seq = _ICMP.unpack_from(frame, start)
        if kind in (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY):
            return IcmpEcho(src_ip, dst_ip, kind == ICMP_ECHO_REPLY, ident, seq, frame[start + 8 : end])
        return None
    if proto == PROTO_UDP and end - start >= 8:
        sport, dport, length, _csum = _UDP.unpack_from(frame, start)
        if length < 8 or start + length > end:
            return None
        return UdpDatagram(src_ip, dst_ip, sport, dport, frame[start + 8 : start + length])
    return None


# --- IPv6: neighbour discovery, ICMPv6 echo, UDP ---------------------------------------------------

_IPV6 = struct.Struct("!IHBB16s16s")
ALL_NODES_MAC: Final = b"\x33\x33\x00\x00\x00\x01"


@dataclass(frozen=True, slots=True)
class NeighbourMessage:
    """A neighbour solicitation (``advert=False``) or advertisement, with its link-layer option."""

    src_ip: bytes
    dst_ip: bytes
    advert: bool
    target: bytes
    lladdr: bytes | None


def solicited_node(ip: bytes) -> bytes:
    """The solicited-node multicast address ff02::1:ffXX:XXXX of an IPv6 address (RFC 4291)."""
    return bytes.fromhex("ff0200000000000000000001ff") + ip[13:16]


def solicited_node_mac(ip: bytes) -> bytes:
    """Its Ethernet address 33:33:ff:XX:XX:XX (RFC 2464)."""
    return b"\x33\x33\xff" + ip[13:16]


def _ipv6(
    src_mac: bytes,
    dst_mac: bytes,
    src_ip: bytes,
    dst_ip: bytes,
    *,
    proto: int,
    payload: bytes,
    hops: int,
    traffic_class: int = 0,
) -> bytes:
    if proto in (PROTO_ICMPV6, PROTO_UDP):
        # Both carry a checksum over the pseudo-header, at offset 2 (ICMPv6) or 6 (UDP).
        at = 2 if proto == PROTO_ICMPV6 else 6
        pseudo = pseudo_header(src_ip, dst_ip, len(payload), proto)
        csum = internet_checksum(pseudo + payload) or (0xFFFF if proto == PROTO_UDP else 0)
        payload = payload[:at] + struct.pack("!H", csum) + payload[at + 2 :]
    header = _IPV6.pack(6 << 28 | traffic_class << 20, len(payload), proto, hops, src_ip, dst_ip)
    return _pad(_ETH.pack(dst_mac, src_mac, ETH_IPV6) + header + payload)


def ns_frame(src_mac: bytes, src_ip: bytes, target: bytes) -> bytes:
    """A neighbour solicitation for ``target`` to its solicited-node group, with our MAC."""
    body = bytes((ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0)) + target + b"\x01\x01" + src_mac
    return _ipv6(
        src_mac, solicited_node_mac(target), src_ip, solicited_node(target), proto=PROTO_ICMPV6, payload=body, hops=255
    )


def na_frame(
    src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, *, router: bool = False, traffic_class: int = 0
) -> bytes:
    """A solicited neighbour advertisement for ``src_ip`` at ``src_mac`` (flags S and O, and R with
    ``router``), with the target link-layer option: a guest's answer for its own address, and the
    answer a VTEP's proxy ND gives for a neighbour (``vxlan_na_create``: the request's traffic
    class, without its low four bits)."""
    flags = 0x60 | (0x80 if router else 0)
    body = bytes((ND_NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0)) + src_ip + b"\x02\x01" + src_mac
    return _ipv6(
        src_mac, dst_mac, src_ip, dst_ip, proto=PROTO_ICMPV6, payload=body, hops=255, traffic_class=traffic_class
    )


ALL_NODES: Final = bytes.fromhex("ff02" + "00" * 13 + "01")


def announcement_frame(mac: bytes, ip: bytes) -> bytes:
    """What a guest sends when it appears somewhere new, so bridges and VTEPs relearn it.

    IPv4: a gratuitous ARP (a broadcast request for its own address). IPv6: an unsolicited
    neighbour advertisement to all nodes with only the Override flag (RFC 4861 7.2.6: Solicited
    must be clear when nobody asked), carrying the target link-layer address.

    >>> len(announcement_frame(bytes.fromhex("020000000001"), bytes((203, 0, 113, 1))))
    60
    """
    if len(ip) == 4:
        return arp_frame(ARP_REQUEST, mac, ip, ip)
    body = bytes((ND_NEIGHBOR_ADVERT, 0, 0, 0, 0x20, 0, 0, 0)) + ip + b"\x02\x01" + mac
    return _ipv6(mac, ALL_NODES_MAC, ip, ALL_NODES, proto=PROTO_ICMPV6, payload=body, hops=255)


def parse_ipv6(frame: bytes) -> IcmpEcho | UdpDatagram | NeighbourMessage | None:
    """The ND message, ICMPv6 echo or UDP datagram in an Ethernet/IPv6 frame, or ``None``."""
    if len(frame) < 54 or frame[12:14] != b"\x86\xdd" or frame[14] >> 4 != 6:
        return None
    length = int.from_bytes(frame[18:20], "big")
    proto = frame[20]
    src_ip, dst_ip = frame[22:38], frame[38:54]
    start, end = 54, 54 + length
    if end > len(frame):
        return None
    if proto == PROTO_ICMPV6 and length >= 8:
        kind = frame[start]
        if kind in (ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY):
            ident, seq = struct.unpack_from("!HH", frame, start + 4)
            return IcmpEcho(src_ip, dst_ip, kind == ICMPV6_ECHO_REPLY, ident, seq, frame[start + 8 : end])
        if kind in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT) and length >= 24:
            target = frame[start + 8 : start + 24]
            lladdr = None
            i = start + 24
            while i + 8 <= end and frame[i + 1]:
                if frame[i] in (1, 2):
                    lladdr = frame[i + 2 : i + 8]
                i += frame[i + 1] * 8
            return NeighbourMessage(src_ip, dst_ip, kind == ND_NEIGHBOR_ADVERT, target, lladdr)
        return None
    if proto == PROTO_UDP and length >= 8:
        sport, dport, ulen, _csum = _UDP.unpack_from(frame, start)
        if ulen < 8 or start + ulen > end:
            return None
        return UdpDatagram(src_ip, dst_ip, sport, dport, frame[start + 8 : start + ulen])
    return None


def parse_ip(frame: bytes) -> IcmpEcho | UdpDatagram | NeighbourMessage | None:
    """:func:`parse_ipv4` or :func:`parse_ipv6`, by EtherType."""
    return parse_ipv6(frame) if frame[12:14] == b"\x86\xdd" else parse_ipv4(frame)
