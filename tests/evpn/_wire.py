"""BGP messages on TCP in Ethernet frames, to write captures tshark reads, and back."""

from __future__ import annotations

import struct

_MACS = bytes.fromhex("020000000002020000000001")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(payload: bytes, *, sport: int = 40000, dport: int = 179, seq: int = 1) -> bytes:
    """An Ethernet/IPv4/TCP frame from 198.51.100.1 to 198.51.100.2 carrying ``payload``."""
    src, dst = bytes((198, 51, 100, 1)), bytes((198, 51, 100, 2))
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 0x50, 0x18, 65535, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return _MACS + b"\x08\x00" + ip + tcp


def tcp_payload(frame: bytes) -> tuple[tuple[bytes, int, bytes, int], bytes] | None:
    """``((src, sport, dst, dport), payload)`` of an Ethernet/IPv4/TCP frame, else ``None``."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 0x0F) * 4
    total = int.from_bytes(frame[16:18], "big")
    tcp = 14 + ihl
    sport, dport = struct.unpack("!HH", frame[tcp : tcp + 4])
    off = (frame[tcp + 12] >> 4) * 4
    return (frame[26:30], sport, frame[30:34], dport), frame[tcp + off : 14 + total]
