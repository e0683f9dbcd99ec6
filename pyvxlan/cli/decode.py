"""``pyvxlan decode FILE``: print every VXLAN packet of a capture, one line each, then totals.

The text lines read like tcpdump's::

    09:00:00.000001 198.51.100.1:49321 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 1 seq 1

Speed matters here (a capture can hold millions of packets), so the loop works on the reader's raw
buffers: the common case (untagged IPv4 outer header, exact lengths) is read with one ``struct``
unpack, and the text of what repeats from packet to packet (outer addresses and header, MAC pairs,
the second of the timestamp) is formatted once and cached. Every other packet takes the general
:func:`~pyvxlan.decapsulate` path; both paths print through the same functions, and the tests check
that they agree.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import struct
import sys
import time
from collections.abc import Callable, Collection
from typing import IO, Any, Final

from pyvxlan.addr import format_mac
from pyvxlan.cli import UsageError
from pyvxlan.errors import DecodeError, NotVxlanError
from pyvxlan.frame import LINUX_VXLAN_PORT, VXLAN_GPE_PORT, VXLAN_PORT, Decapsulated, decapsulate, ip_text
from pyvxlan.header import FLAG_G, FLAG_I, GBP_A, GBP_D, GPE_B, GPE_O, GPE_P, GpeHeader, GpeNextProtocol, VxlanHeader
from pyvxlan.pcap import PcapStats, frame_of, raw_records

__all__ = ["DecodePrinter", "OutputError", "checked_writer", "inner_summary", "register", "run"]

# Entries per text cache, each emptied when full: with 8192, a capture of 300,000 distinct flows
# peaks 25 MB above start-up (96 MB with 65536), and a capture of a few flows is as fast.
_CACHE_MAX: Final = 1 << 13
# At most this many characters go to the output in one write() call. One write of 2.25 GiB to
# stdout once wrote 2 GiB and reported success; bounded chunks never reach such limits.
WRITE_CHUNK: Final = 1 << 20
# Lines are written in batches of this many: memory stays flat whatever the capture holds.
BATCH: Final = 4096
# VLAN tags printed per frame: a frame of thousands of stacked tags must not make a line of megabytes.
_TAGS_SHOWN: Final = 4

# One unpack reads an untagged IPv4 (IHL 5) VXLAN frame up to the inner Ethernet type: ethertype,
# version/IHL, total length, fragment field, protocol, addresses and ports (12 bytes), UDP length,
# the VXLAN header (8 bytes), the inner MAC pair (12 bytes) and the inner ethertype.
_FAST: Final = struct.Struct("!12xHBxH2xHxB2x12sH2x8s12sH")
# An inner IPv4 header and the first 8 bytes of ICMP: version/IHL, total length, fragment field,
# protocol, addresses, type, code, identifier, sequence number.
_INNER_ICMP4: Final = struct.Struct("!BxH2xHxB2x8sBB2xHH").unpack_from
# "000" to "999": two lookups print microseconds faster than a format spec (":06d").
_DIGITS3: Final = tuple(f"{i:03d}" for i in range(1000))
_fast_unpack = _FAST.unpack_from
_u16x2 = struct.Struct("!HH").unpack_from
_ICMP_ECHO = struct.Struct("!BB2xHH").unpack_from
# IPv4 version/IHL, total length, fragment field, protocol, the two addresses
_IN4 = struct.Struct("!BxH2xHxB2x8s").unpack_from

ARP: Final = 0x0806
IPV4: Final = 0x0800
IPV6: Final = 0x86DD
_VLAN_TYPES: Final = (0x8100, 0x88A8)
_IPV6_EXT: Final = (0, 43, 60)

_mac_pairs: dict[bytes, str] = {}


EXIT_SIGPIPE: Final = 128 + 13  # what a shell reports for a process that SIGPIPE ended


class OutputError(OSError):
    """Writing the output failed or wrote short: the lines after the failure are lost.

    ``errno`` is the failed write's (EIO for a short write); the message names the stream.
    """

    def __init__(self, stream: str, reason: str, errno_: int | None) -> None:
        super().__init__(f"{stream}: {reason}; the rest of the output is lost")
        self.errno = errno_


def _stream_name(out: IO[str]) -> str:
    name = getattr(out, "name", None)
    return "standard output" if name == "<stdout>" else name if isinstance(name, str) else "output"


def checked_writer(out: IO[str]) -> Callable[[str], None]:
    """A function that writes text to ``out`` in chunks of at most :data:`WRITE_CHUNK` characters.

    A write that reports fewer characters than it was given, or fails, raises :class:`OutputError`
    naming the stream: output is never lost silently.
    """
    name = _stream_name(out)
    write = out.write

    def put(text: str) -> None:
        for i in range(0, len(text), WRITE_CHUNK):
            chunk = text[i : i + WRITE_CHUNK] if len(text) > WRITE_CHUNK else text
            try:
                n = write(chunk)
            except OSError as exc:
                raise OutputError(name, str(exc), exc.errno) from exc
            if n is not None and n != len(chunk):
                raise OutputError(name, f"short write: {n} of {len(chunk)} characters written", errno.EIO)

    return put


def flush_checked(out: IO[str]) -> None:
    """Flush ``out``; a failure (a closed pipe, a full disk) raises :class:`OutputError`."""
    try:
        out.flush()
    except OSError as exc:
        raise OutputError(_stream_name(out), str(exc), exc.errno) from exc


def _tags_text(vlans: Collection[int]) -> str:
    """``vlan 7 vlan 8 `` for outer tags; past a few, how many more there are."""
    if len(vlans) <= _TAGS_SHOWN:
        return "".join(f"vlan {v} " for v in vlans)
    shown = "".join(f"vlan {v} " for v in list(vlans)[:_TAGS_SHOWN])
    return f"{shown}and {len(vlans) - _TAGS_SHOWN} more vlan tags "


def _mac_pair(raw: bytes) -> str:
    """``src > dst`` of the 12 bytes that start an Ethernet frame (destination first)."""
    text = _mac_pairs.get(raw)
    if text is None:
        text = f"{format_mac(raw[6:12])} > {format_mac(raw[0:6])}"
        if len(_mac_pairs) >= _CACHE_MAX:
            _mac_pairs.clear()
        _mac_pairs[raw] = text
    return text


def _ip(raw: bytes) -> str:
    return ip_text(raw)


def _ip_port(raw: bytes, port: int) -> str:
    return f"[{ip_text(raw)}]:{port}" if len(raw) == 16 else f"{ip_text(raw)}:{port}"


def _icmp6(buf: bytes, p: int, end: int) -> str:
    if end - p < 4:
        return "ICMPv6 truncated"
    icmp_type, code = buf[p], buf[p + 1]
    if icmp_type in (128, 129) and end - p >= 8:
        ident, seq = _u16x2(buf, p + 4)
        kind = "request" if icmp_type == 128 else "reply"
        return f"ICMPv6 echo {kind} id {ident} seq {seq}"
    if icmp_type in (135, 136) and end - p >= 24:
        target = ip_text(buf[p + 8 : p + 24])
        if icmp_type == 135:
            return f"ICMPv6 neighbor solicitation who-has {target}"
        return f"ICMPv6 neighbor advertisement {target}"
    if icmp_type == 133:
        return "ICMPv6 router solicitation"
    if icmp_type == 134:
        return "ICMPv6 router advertisement"
    return f"ICMPv6 type {icmp_type} code {code}"


def _transport(name: str, addrs: tuple[bytes, bytes], buf: bytes, p: int, end: int) -> str:
    src, dst = addrs
    if end - p < 4:
        return f"{_ip(src)} > {_ip(dst)} {name} truncated"
    sport, dport = _u16x2(buf, p)
    return f"{_ip_port(src, sport)} > {_ip_port(dst, dport)} {name}"


_ip4_pairs: dict[bytes, tuple[str, str, str]] = {}


def _ip4_texts(addrs: bytes) -> tuple[str, str, str]:
    """``(src, dst, "src > dst")`` for the 8 address bytes of an IPv4 header (cached)."""
    texts = _ip4_pairs.get(addrs)
    if texts is None:
        src, dst = ip_text(addrs[:4]), ip_text(addrs[4:])
        texts = (src, dst, f"{src} > {dst}")
        if len(_ip4_pairs) >= _CACHE_MAX:
            _ip4_pairs.clear()
        _ip4_pairs[addrs] = texts
    return texts


def _ipv4(buf: bytes, p: int, end: int) -> str:
    if end - p < 20:
        return "IPv4 truncated"
    vihl, total, frag, proto, addrs = _IN4(buf, p)
    if vihl >> 4 != 4:
        return f"IPv4 version {vihl >> 4}"
    ihl = (vihl & 0x0F) * 4
    if ihl <= total < end - p:
        end = p + total  # what follows is padding
    texts = _ip4_pairs.get(addrs)
    if texts is None:
        texts = _ip4_texts(addrs)
    if frag & 0x1FFF:
        return f"IPv4 {texts[2]} fragment proto {proto}"
    q = p + ihl
    if proto == 1:
        if end - q < 8:
            return f"IPv4 {texts[2]} ICMP truncated"
        icmp_type, code, ident, seq = _ICMP_ECHO(buf, q)
        if icmp_type == 8 and code == 0:
            return f"IPv4 {texts[2]} ICMP echo request id {ident} seq {seq}"
        if icmp_type == 0 and code == 0:
            return f"IPv4 {texts[2]} ICMP echo reply id {ident} seq {seq}"
        return f"IPv4 {texts[2]} ICMP type {icmp_type} code {code}"
    if proto == 17 or proto == 6:  # noqa: PLR1714 - two compares beat a tuple here
        name = "UDP" if proto == 17 else "TCP"
        if end - q < 4:
            return f"IPv4 {texts[2]} {name} truncated"
        sport, dport = _u16x2(buf, q)
        return f"IPv4 {texts[0]}:{sport} > {texts[1]}:{dport} {name}"
    return f"IPv4 {texts[2]} proto {proto}"


def _ipv6(buf: bytes, p: int, end: int) -> str:
    if end - p < 40 or buf[p] >> 4 != 6:
        return "IPv6 truncated" if end - p < 40 else f"IPv6 version {buf[p] >> 4}"
    src, dst = buf[p + 8 : p + 24], buf[p + 24 : p + 40]
    nh = buf[p + 6]
    q = p + 40
    while nh in _IPV6_EXT and end - q >= 8:
        nh, q = buf[q], q + (buf[q + 1] + 1) * 8
    if nh == 44:
        return f"IPv6 {_ip(src)} > {_ip(dst)} fragment"
    if nh == 58:
        return f"IPv6 {_ip(src)} > {_ip(dst)} {_icmp6(buf, q, end)}"
    if nh == 17:
        return "IPv6 " + _transport("UDP", (src, dst), buf, q, end)
    if nh == 6:
        return "IPv6 " + _transport("TCP", (src, dst), buf, q, end)
    return f"IPv6 {_ip(src)} > {_ip(dst)} next header {nh}"


def _arp(buf: bytes, p: int, end: int) -> str:
    if end - p < 8:
        return "ARP truncated"
    htype, ptype = _u16x2(buf, p)
    op = (buf[p + 6] << 8) | buf[p + 7]
    if htype == 1 and ptype == IPV4 and buf[p + 4] == 6 and buf[p + 5] == 4:
        if end - p < 28:
            return "ARP truncated"
        if op == 1:
            return f"ARP who-has {_ip(buf[p + 24 : p + 28])} tell {_ip(buf[p + 14 : p + 18])}"
        if op == 2:
            return f"ARP reply {_ip(buf[p + 14 : p + 18])} is-at {format_mac(buf[p + 8 : p + 14])}"
    return f"ARP op {op}"


def _l3(etype: int, buf: bytes, p: int, end: int) -> str:
    if etype == IPV4:
        return _ipv4(buf, p, end)
    if etype == ARP:
        return _arp(buf, p, end)
    if etype == IPV6:
        return _ipv6(buf, p, end)
    return f"ethertype {etype:#06x}"


def inner_summary(buf: bytes, start: int, end: int) -> str:
    """A short text for the inner Ethernet frame ``buf[start:end]``: MACs, then ARP/IP/ND details.

    >>> inner_summary(bytes.fromhex("ffffffffffff020000000001" "0806" "0001080006040001" "020000000001cb007101"
    ...                             "000000000000cb007102"), 0, 42)
    '02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP who-has 203.0.113.2 tell 203.0.113.1'
    """
    if end - start < 14:
        return f"ethernet truncated ({end - start} bytes)"
    etype = (buf[start + 12] << 8) | buf[start + 13]
    p = start + 14
    tags = ""
    n = 0
    while etype in _VLAN_TYPES and end - p >= 4:
        if n < _TAGS_SHOWN:
            tags += f"vlan {((buf[p] << 8) | buf[p + 1]) & 0x0FFF}, "
        n += 1
        etype = (buf[p + 2] << 8) | buf[p + 3]
        p += 4
    if n > _TAGS_SHOWN:
        tags += f"and {n - _TAGS_SHOWN} more vlan tags, "
    return f"{_mac_pair(buf[start : start + 12])}, {tags}{_l3(etype, buf, p, end)}"


def _gpe_inner(header: GpeHeader, buf: bytes, start: int, end: int) -> str:
    w0 = header.word0
    np = w0 & 0xFF
    if np == GpeNextProtocol.ETHERNET or not w0 & GPE_P:
        return inner_summary(buf, start, end)
    if np == GpeNextProtocol.IPV4:
        return _ipv4(buf, start, end)
    if np == GpeNextProtocol.IPV6:
        return _ipv6(buf, start, end)
    name = GpeNextProtocol(np).name if np in _GPE_NAMES else f"next protocol {np}"
    return f"{name}, {end - start} bytes"


_GPE_NAMES: Final = frozenset(int(p) for p in GpeNextProtocol)


def header_text(header: VxlanHeader | GpeHeader) -> str:
    """``VXLAN vni 10 flags [I]``, with GBP, GPE and reserved-bit details when present.

    >>> from pyvxlan.header import GroupPolicy
    >>> header_text(VxlanHeader(10, group_policy=GroupPolicy(50000, dont_learn=True)))
    'VXLAN vni 10 flags [G,I] gbp id 50000 dont-learn'
    """
    w0 = header.word0
    if isinstance(header, GpeHeader):
        flags = ",".join(n for bit, n in ((FLAG_I, "I"), (GPE_P, "P"), (GPE_B, "B"), (GPE_O, "O")) if w0 & bit)
        np = w0 & 0xFF
        np_text = GpeNextProtocol(np).name if np in _GPE_NAMES else str(np)
        text = f"VXLAN-GPE vni {header.vni} flags [{flags}] next {np_text}"
        if header.version:
            text += f" version {header.version}"
    else:
        flags = ",".join(n for bit, n in ((FLAG_G, "G"), (FLAG_I, "I")) if w0 & bit)
        text = f"VXLAN vni {header.vni} flags [{flags}]"
        gp = header.group_policy
        if gp is not None:
            text += f" gbp id {gp.policy_id}"
            if w0 & GBP_D:
                text += " dont-learn"
            if w0 & GBP_A:
                text += " policy-applied"
    if header.reserved:
        text += f" reserved {header.reserved:#018x}"
    return text


def _outer_text(src: bytes, dst: bytes, ports: tuple[int, int], vlans: tuple[int, ...], header: Any) -> str:
    sport, dport = ports
    tags = _tags_text(vlans) if vlans else ""
    return f"{tags}{_ip_port(src, sport)} > {_ip_port(dst, dport)} {header_text(header)}"


class DecodePrinter:
    """Turns records into lines; keeps the caches and the totals of one run."""

    def __init__(self, ports: Collection[int], gpe_ports: Collection[int]) -> None:
        self.ports = frozenset(ports)
        self.gpe_ports = frozenset(gpe_ports)
        self.stats = PcapStats()
        self._outer: dict[tuple[Any, ...], str] = {}
        self._sec = -1
        self._sec_text = ""

    def time_text(self, ts: float) -> str:
        """``HH:MM:SS.uuuuuu`` in UTC (tcpdump prints local time; UTC keeps output reproducible)."""
        usec = round(ts * 1_000_000)
        sec = usec // 1_000_000
        usec -= sec * 1_000_000
        if sec != self._sec:
            self._sec = sec
            self._sec_text = time.strftime("%H:%M:%S", time.gmtime(sec))
        return f"{self._sec_text}.{usec:06d}"

    def outer(self, d: Decapsulated) -> str:
        """The outer text of a decoded packet: VLAN tags, addresses, ports and the whole header.

        The cache key holds all 8 header bytes (a header is its bytes, and compares its type too):
        packets of one flow differ in VNI, GBP policy, GPE next protocol or reserved bits.
        """
        key = (d[2], d[3], d[4], d[5], d[7], d[0])
        text = self._outer.get(key)
        if text is None:
            text = _outer_text(d[2], d[3], (d[4], d[5]), d[7], d[0])
            self._cache_outer(key, text)
        return text

    def _cache_outer(self, key: tuple[Any, ...], text: str) -> None:
        if len(self._outer) >= _CACHE_MAX:
            self._outer.clear()
        self._outer[key] = text

    def _fast_outer(self, addrs_ports: bytes, hdr: bytes) -> str:
        """The outer text of a fast-path frame, or "" when its port is not a VXLAN port."""
        sport, dport = _u16x2(addrs_ports, 8)
        if dport not in self.ports:
            return ""
        header = VxlanHeader.decode(hdr)
        return _outer_text(addrs_ports[:4], addrs_ports[4:8], (sport, dport), (), header)

    def line(self, ts: float, d: Decapsulated, buf: bytes, start: int) -> str:
        """The text line of a packet that :func:`~pyvxlan.decapsulate` decoded from ``buf[start:]``."""
        istart = start + d[9]
        iend = istart + len(d[1])
        header = d[0]
        if isinstance(header, GpeHeader):
            inner = _gpe_inner(header, buf, istart, iend)
        else:
            inner = inner_summary(buf, istart, iend)
        return f"{self.time_text(ts)} {self.outer(d)}: {inner}\n"

    def record_lines(
        self, records: Any, out: Callable[[str], Any], *, as_json: bool = False, fast: bool = True, batch: int = BATCH
    ) -> None:
        """Decode every record, writing lines through ``out`` in batches of at most ``batch`` lines.

        Every kind of line (packet, malformed) counts toward the batch, so memory stays flat
        whatever the capture holds. ``fast=False`` sends every packet through
        :func:`~pyvxlan.decapsulate` (the tests compare).
        """
        fast = fast and not as_json
        stats = self.stats
        ports, gpe_ports = self.ports, self.gpe_ports
        fast_outer: dict[tuple[bytes, bytes], str] = {}
        lines: list[str] = []
        append = lines.append
        fast_unpack = _fast_unpack
        inner_unpack = _INNER_ICMP4
        ip4_pairs = _ip4_pairs
        digits = _DIGITS3
        mac_pairs = _mac_pairs
        packets = vxlan = 0
        last_sec = -1
        sec_text = ""
        try:
            for ts, linktype, buf, start, end, wirelen in records:
                packets += 1
                if fast and linktype == 1 and end - start >= 64:
                    # Addresses and ports (12 bytes), the VXLAN header (8) and the inner MACs (12)
                    # come out as bytes: a cache key without building any integer.
                    etype, vihl, total, frag, proto, addrs_ports, ulen, hdr, macs, ietype = fast_unpack(buf, start)
                    outer = None
                    if (
                        etype == IPV4
                        and vihl == 0x45
                        and proto == 17
                        and not frag & 0x3FFF
                        and total == end - start - 14
                        and ulen == total - 20
                    ):
                        # The same checks decapsulate makes, for this one layout; anything else below.
                        outer = fast_outer.get((addrs_ports, hdr))
                        if outer is None:
                            outer = self._fast_outer(addrs_ports, hdr)  # "" when not a VXLAN port
                            if len(fast_outer) >= _CACHE_MAX:
                                fast_outer.clear()
                            fast_outer[addrs_ports, hdr] = outer
                    if outer:
                        vxlan += 1
                        pair = mac_pairs.get(macs)
                        if pair is None:
                            pair = _mac_pair(macs)
                        p = start + 64
                        inner = ""
                        if ietype == IPV4:
                            if end - p >= 28:
                                # Inlined from _ipv4 for its most common case, an ICMP echo.
                                vihl, total, frag, proto, addrs, itype, icode, ident, seq = inner_unpack(buf, p)
                                if (
                                    vihl == 0x45
                                    and proto == 1
                                    and not frag & 0x1FFF
                                    and icode == 0
                                    and (itype == 8 or itype == 0)  # noqa: PLR1714 - faster than a tuple
                                    and (total >= 28 or total >= end - p)
                                ):
                                    texts = ip4_pairs.get(addrs)
                                    if texts is None:
                                        texts = _ip4_texts(addrs)
                                    kind = "request" if itype == 8 else "reply"
                                    inner = f"IPv4 {texts[2]} ICMP echo {kind} id {ident} seq {seq}"
                            if not inner:
                                inner = _ipv4(buf, p, end)
                        elif ietype == 0x8100 or ietype == 0x88A8:  # noqa: PLR1714
                            inner = inner_summary(buf, start + 50, end).split(", ", 1)[1]
                        else:
                            inner = _l3(ietype, buf, p, end)
                        usec = round(ts * 1_000_000)
                        sec = usec // 1_000_000
                        usec -= sec * 1_000_000
                        if sec != last_sec:
                            last_sec = sec
                            sec_text = time.strftime("%H:%M:%S", time.gmtime(sec)) + "."
                        append(f"{sec_text}{digits[usec // 1000]}{digits[usec % 1000]} {outer}: {pair}, {inner}\n")
                        if len(lines) >= batch:
                            out("".join(lines))
                            lines.clear()
                        continue
                if linktype == 1:
                    fbuf, fstart = buf, start
                    frame: bytes | memoryview = memoryview(buf)[start:end]
                else:
                    cooked = frame_of(linktype, buf, start, end, stats)
                    if cooked is None:
                        continue
                    fbuf, fstart = bytes(cooked), 0
                    frame = fbuf
                wire = wirelen + len(frame) - (end - start) if wirelen > end - start else 0  # snapped
                try:
                    d = decapsulate(frame, ports=ports, gpe_ports=gpe_ports, wire_length=wire)
                except DecodeError as exc:
                    stats.count_error(exc)
                    if isinstance(exc, NotVxlanError):
                        continue
                    if as_json:
                        append(json.dumps({"time": ts, "malformed": str(exc)}) + "\n")
                    else:
                        append(f"{self.time_text(ts)} malformed: {exc}\n")
                else:
                    vxlan += 1
                    append(self.json_line(ts, d, fbuf, fstart) if as_json else self.line(ts, d, fbuf, fstart))
                if len(lines) >= batch:
                    out("".join(lines))
                    lines.clear()

        finally:
            # Also when the file turns out to be cut: what was decoded is printed and counted.
            if lines:
                out("".join(lines))
            stats.packets += packets
            stats.vxlan += vxlan

    def json_line(self, ts: float, d: Decapsulated, buf: bytes, start: int) -> str:
        """One JSON object for a decoded packet (see docs/decode.md for the keys)."""
        header = d[0]
        istart = start + d[9]
        iend = istart + len(d[1])
        gpe = isinstance(header, GpeHeader)
        obj: dict[str, Any] = {
            "time": round(ts, 9),
            "type": "vxlan-gpe" if gpe else "vxlan",
            "outer_src": d.outer_src,
            "outer_dst": d.outer_dst,
            "src_port": d.src_port,
            "dst_port": d.dst_port,
            "ttl": d.ttl,
            "vlans": list(d.vlans),
            "vni": header.vni,
            "flags": header[0],  # byte 0: a header is its 8 bytes
            "i_flag": header.i_flag,
            "reserved": header.reserved,
        }
        if isinstance(header, GpeHeader):
            np = header.next_protocol
            obj.update(
                next_protocol=np.name if isinstance(np, GpeNextProtocol) else np,
                version=header.version,
                p_flag=header.p_flag,
                bum=header.bum,
                oam=header.oam,
            )
            ethernet = np == GpeNextProtocol.ETHERNET or not header.p_flag
            summary = _gpe_inner(header, buf, istart, iend)
        else:
            gp = header.group_policy
            obj["gbp"] = (
                None
                if gp is None
                else {"policy_id": gp.policy_id, "dont_learn": gp.dont_learn, "policy_applied": gp.policy_applied}
            )
            ethernet = True
            summary = inner_summary(buf, istart, iend)
        if ethernet and iend - istart >= 14:
            obj["inner_src"] = format_mac(buf[istart + 6 : istart + 12])
            obj["inner_dst"] = format_mac(buf[istart : istart + 6])
            summary = summary.split(", ", 1)[1]  # the MAC pair is in the two keys above
        obj["inner_length"] = iend - istart
        obj["summary"] = summary
        return json.dumps(obj) + "\n"

    def totals_text(self) -> str:
        s = self.stats
        return f"{s.packets} packets: {s.vxlan} VXLAN, {s.not_vxlan} not VXLAN, {s.malformed} malformed\n"

    def totals_json(self) -> str:
        s = self.stats
        totals = {"packets": s.packets, "vxlan": s.vxlan, "not_vxlan": s.not_vxlan, "malformed": s.malformed}
        return json.dumps({"totals": totals, "reasons": dict(sorted(s.reasons.items()))}) + "\n"


def run(
    path: str,
    out: IO[str],
    *,
    ports: Collection[int] = (VXLAN_PORT, LINUX_VXLAN_PORT),
    gpe_ports: Collection[int] = (VXLAN_GPE_PORT,),
    as_json: bool = False,
) -> PcapStats:
    """Decode the capture at ``path`` to ``out``; returns the totals.

    Raises DecodeError (the file), OSError (opening it) or :class:`OutputError` (writing ``out``).
    """
    printer = DecodePrinter(ports, gpe_ports)
    write = checked_writer(out)
    with open(path, "rb") as f:
        records = raw_records(f)  # raises at once when the file is not a capture
        output_failed = False
        try:
            printer.record_lines(records, write, as_json=as_json)
        except OutputError:
            output_failed = True
            raise
        finally:
            # A file cut inside a record: what came before is still reported, then the error.
            if not output_failed:
                write(printer.totals_json() if as_json else printer.totals_text())
    return printer.stats


def _port(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 0 < value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: must be in 1..65535")
    return value


def register(subparsers: Any) -> None:
    """Add ``decode`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "decode",
        help="print the VXLAN packets of a pcap or pcapng capture",
        description="Print every VXLAN packet of a pcap or pcapng file, one line each, then totals.",
    )
    p.add_argument("file", metavar="FILE", help="a pcap or pcapng capture")
    p.add_argument(
        "--port",
        action="append",
        type=_port,
        metavar="N",
        help=f"a UDP destination port carrying VXLAN (repeatable; default {VXLAN_PORT} and {LINUX_VXLAN_PORT})",
    )
    p.add_argument(
        "--gpe-port",
        action="append",
        type=_port,
        metavar="N",
        help=f"a UDP destination port carrying VXLAN-GPE (repeatable; default {VXLAN_GPE_PORT})",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, then a totals object")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    ports: list[int] = args.port or [VXLAN_PORT, LINUX_VXLAN_PORT]
    # `--port 4790` means VXLAN on 4790: the GPE default then steps aside.
    gpe_ports: list[int] = args.gpe_port or [p for p in (VXLAN_GPE_PORT,) if p not in ports]
    both = set(ports) & set(gpe_ports)
    if both:
        raise UsageError(f"port {min(both)} is given both as --port and --gpe-port", prog="pyvxlan decode")
    try:
        try:
            run(args.file, sys.stdout, ports=ports, gpe_ports=gpe_ports, as_json=args.json)
        finally:
            flush_checked(sys.stdout)  # lines before an error in the file are shown before it
    except OutputError as exc:
        # Point stdout at /dev/null so that the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):  # ValueError: not a real file (a test's capture)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if exc.errno == errno.EPIPE:
            # The reader went away (`| head`): it wanted no more, as tcpdump's reader does when
            # SIGPIPE ends tcpdump. End quietly with SIGPIPE's status, so `set -o pipefail` sees it.
            return EXIT_SIGPIPE
        raise  # a full disk or a short write: lines were lost, which the error says (exit 2)
    except DecodeError as exc:
        # Name the file, as tcpdump does: "pyvxlan: error: FILE: pcap at offset 0: ..."
        exc.args = (f"{args.file}: {exc}",)
        raise
    return 0
