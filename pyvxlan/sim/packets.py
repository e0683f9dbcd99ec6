"""The few inner packets simulated guests speak: Ethernet, ARP, IPv4, ICMP echo and UDP.

Builders return real bytes (a capture of a guest's interface opens in Wireshark); the parser
reads only what the guest stack needs and returns ``None`` for anything else, which the stack
then counts as a drop with a reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pyvxlan.frame import internet_checksum

__all__ = [
    "ETH_ARP",
    "ETH_IPV4",
    "ArpPacket",
    "IcmpEcho",
    "UdpDatagram",
    "arp_frame",
    "icmp_echo_frame",
    "parse_arp",
    "parse_ipv4",
    "udp_frame",
]

ETH_IPV4: Final = 0x0800
ETH_ARP: Final = 0x0806
ARP_REQUEST: Final = 1
ARP_REPLY: Final = 2
ICMP_ECHO_REPLY: Final = 0
ICMP_ECHO_REQUEST: Final = 8
PROTO_ICMP: Final = 1
PROTO_UDP: Final = 17
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
    """An ICMP echo request or reply in IPv4 in Ethernet."""
    kind = ICMP_ECHO_REPLY if reply else ICMP_ECHO_REQUEST
    icmp = _ICMP.pack(kind, 0, 0, ident, seq) + data
    icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
    return _ipv4(src_mac, dst_mac, src_ip, dst_ip, proto=PROTO_ICMP, payload=icmp, ttl=64)


def udp_frame(
    src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes, *, src_port: int, dst_port: int, payload: bytes
) -> bytes:
    """A UDP datagram in IPv4 in Ethernet (checksum computed, as Linux sends it)."""
    length = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!HH", PROTO_UDP, length)
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
