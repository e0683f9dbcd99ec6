"""``pyvxlan decode``: exact lines for a generated capture, JSON, ports, and exit status 2."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import select
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import GpeHeader, GpeNextProtocol, GroupPolicy, VxlanHeader, decapsulate, encapsulate
from pyvxlan.cli import main
from pyvxlan.cli.decode import DecodeOptions, DecodePrinter, TimeFormat
from pyvxlan.strategies import EncapsulatedFrame, vxlan_frames
from pyvxlan.wire.frame import internet_checksum
from pyvxlan.wire.pcap import raw_records, write

MAC1 = bytes.fromhex("020000000001")
MAC2 = bytes.fromhex("020000000002")
BCAST = b"\xff" * 6
A1 = bytes([203, 0, 113, 1])
A2 = bytes([203, 0, 113, 2])
B1 = bytes.fromhex("20010db8000100000000000000000001")
B2 = bytes.fromhex("20010db8000100000000000000000002")
SNODE = bytes.fromhex("ff0200000000000000000001ff000002")


def eth(dst: bytes, src: bytes, etype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", etype) + payload


def arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + tha + tpa


def ipv4(proto: int, payload: bytes, src: bytes = A1, dst: bytes = A2) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, src, dst)
    return hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:] + payload


def ipv6(nh: int, payload: bytes, src: bytes = B1, dst: bytes = B2) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 255) + src + dst + payload


def icmp_echo(kind: int, ident: int, seq: int) -> bytes:
    return struct.pack("!BBHHH", kind, 0, 0, ident, seq) + b"pyvxlan!"


FRAMES = {
    "arp-request": eth(BCAST, MAC1, 0x0806, arp(1, MAC1, A1, bytes(6), A2)),
    "arp-reply": eth(MAC1, MAC2, 0x0806, arp(2, MAC2, A2, MAC1, A1)),
    "echo-request": eth(MAC2, MAC1, 0x0800, ipv4(1, icmp_echo(8, 7, 1))),
    "echo-reply": eth(MAC1, MAC2, 0x0800, ipv4(1, icmp_echo(0, 7, 1), A2, A1)),
    "udp": eth(MAC2, MAC1, 0x0800, ipv4(17, struct.pack("!HHHH", 5353, 53, 12, 0) + b"abcd")),
    "tcp": eth(MAC2, MAC1, 0x0800, ipv4(6, struct.pack("!HHIIHHHH", 40000, 80, 1, 0, 0x5002, 1024, 0, 0))),
    "ns": eth(
        bytes.fromhex("3333ff000002"),
        MAC1,
        0x86DD,
        ipv6(58, struct.pack("!BBHI", 135, 0, 0, 0) + B2, dst=SNODE),
    ),
    "na": eth(MAC1, MAC2, 0x86DD, ipv6(58, struct.pack("!BBHI", 136, 0, 0, 0x60000000) + B2, B2, B1)),
    "echo6": eth(MAC2, MAC1, 0x86DD, ipv6(58, icmp_echo(128, 9, 3))),
    "lldp": eth(bytes.fromhex("0180c200000e"), MAC1, 0x88CC, bytes(46)),
    "tagged": eth(MAC2, MAC1, 0x8100, struct.pack("!HH", 100, 0x0800) + ipv4(1, icmp_echo(8, 7, 2))),
}


def capture_records(base: float = 1764237600.0) -> list[tuple[float, bytes]]:
    """The frames of the decode tests, one of each kind, 1 ms apart."""
    src, dst = "198.51.100.1", "198.51.100.2"
    frames = [encapsulate(f, vni=10, src=src, dst=dst, src_port=50000) for f in FRAMES.values()]
    frames += [
        encapsulate(
            FRAMES["echo-request"],
            header=VxlanHeader(20, group_policy=GroupPolicy(50000, dont_learn=True)),
            src=src,
            dst=dst,
            src_port=50001,
        ),
        encapsulate(
            FRAMES["arp-request"],
            header=VxlanHeader.from_words(0x08000100, (30 << 8) | 1),
            src=src,
            dst=dst,
            src_port=50002,
        ),
        encapsulate(FRAMES["echo6"], vni=40, src="2001:db8::1", dst="2001:db8::2", src_port=50003, dst_port=8472),
        encapsulate(FRAMES["arp-reply"], vni=50, src=src, dst="239.1.1.1", src_port=50004, vlan=7),
        encapsulate(FRAMES["udp"], header=GpeHeader(60), src=src, dst=dst, src_port=50005, dst_port=4790),
        encapsulate(
            FRAMES["echo-request"][14:],
            header=GpeHeader(61, next_protocol=GpeNextProtocol.IPV4),
            src=src,
            dst=dst,
            src_port=50006,
            dst_port=4790,
        ),
        encapsulate(
            bytes(24),
            header=GpeHeader(62, next_protocol=GpeNextProtocol.NSH),
            src=src,
            dst=dst,
            src_port=50007,
            dst_port=4790,
        ),
        encapsulate(FRAMES["udp"], vni=1, src=src, dst=dst, src_port=50008, dst_port=53),  # not VXLAN
        encapsulate(FRAMES["arp-request"], vni=70, src=src, dst=dst, src_port=50009)[:60],  # cut short
    ]
    return [(base + i / 1000, f) for i, f in enumerate(frames)]


EXPECTED = """\
10:00:00.000000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP who-has 203.0.113.2 tell 203.0.113.1
10:00:00.001000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:02 > 02:00:00:00:00:01, ARP reply 203.0.113.2 is-at 02:00:00:00:00:02
10:00:00.002000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 7 seq 1
10:00:00.003000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:02 > 02:00:00:00:00:01, IPv4 203.0.113.2 > 203.0.113.1 ICMP echo reply id 7 seq 1
10:00:00.004000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1:5353 > 203.0.113.2:53 UDP
10:00:00.005000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1:40000 > 203.0.113.2:80 TCP
10:00:00.006000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 33:33:ff:00:00:02, IPv6 2001:db8:1::1 > ff02::1:ff00:2 ICMPv6 neighbor solicitation who-has 2001:db8:1::2
10:00:00.007000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:02 > 02:00:00:00:00:01, IPv6 2001:db8:1::2 > 2001:db8:1::1 ICMPv6 neighbor advertisement 2001:db8:1::2
10:00:00.008000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv6 2001:db8:1::1 > 2001:db8:1::2 ICMPv6 echo request id 9 seq 3
10:00:00.009000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 01:80:c2:00:00:0e, ethertype 0x88cc
10:00:00.010000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, vlan 100, IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 7 seq 2
10:00:00.011000 198.51.100.1:50001 > 198.51.100.2:4789 VXLAN vni 20 flags [G,I] gbp id 50000 dont-learn: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 7 seq 1
10:00:00.012000 198.51.100.1:50002 > 198.51.100.2:4789 VXLAN vni 30 flags [I] reserved 0x0000010000000001: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP who-has 203.0.113.2 tell 203.0.113.1
10:00:00.013000 [2001:db8::1]:50003 > [2001:db8::2]:8472 VXLAN vni 40 flags [I]: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv6 2001:db8:1::1 > 2001:db8:1::2 ICMPv6 echo request id 9 seq 3
10:00:00.014000 vlan 7 198.51.100.1:50004 > 239.1.1.1:4789 VXLAN vni 50 flags [I]: 02:00:00:00:00:02 > 02:00:00:00:00:01, ARP reply 203.0.113.2 is-at 02:00:00:00:00:02
10:00:00.015000 198.51.100.1:50005 > 198.51.100.2:4790 VXLAN-GPE vni 60 flags [I,P] next ETHERNET: 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1:5353 > 203.0.113.2:53 UDP
10:00:00.016000 198.51.100.1:50006 > 198.51.100.2:4790 VXLAN-GPE vni 61 flags [I,P] next IPV4: IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 7 seq 1
10:00:00.017000 198.51.100.1:50007 > 198.51.100.2:4790 VXLAN-GPE vni 62 flags [I,P] next NSH: NSH, 24 bytes
10:00:00.019000 malformed: ipv4 at offset 14: total length 78 exceeds the 46 bytes captured
20 packets: 18 VXLAN, 1 not VXLAN, 1 malformed
"""


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.pcap"
    write(path, capture_records())
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_text_lines_and_totals(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["decode", str(capture)], capsys) == (0, EXPECTED, "")


def test_port_option_chooses_the_vxlan_ports(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(["decode", "--port", "8472", "--port", "53", str(capture)], capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    # 4789 is no longer VXLAN; 8472 and 53 are; GPE stays on 4790.
    assert lines[0] == (
        "10:00:00.013000 [2001:db8::1]:50003 > [2001:db8::2]:8472 VXLAN vni 40 flags [I]: 02:00:00:00:00:01 > "
        "02:00:00:00:00:02, IPv6 2001:db8:1::1 > 2001:db8:1::2 ICMPv6 echo request id 9 seq 3"
    )
    assert lines[4] == (
        "10:00:00.018000 198.51.100.1:50008 > 198.51.100.2:53 VXLAN vni 1 flags [I]: 02:00:00:00:00:01 > "
        "02:00:00:00:00:02, IPv4 203.0.113.1:5353 > 203.0.113.2:53 UDP"
    )
    assert lines[-1] == "20 packets: 5 VXLAN, 14 not VXLAN, 1 malformed"


def test_port_4790_as_vxlan_moves_gpe_aside(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = run_cli(["decode", "--port", "4790", str(capture)], capsys)
    assert status == 0
    assert out.splitlines()[0].startswith(
        "10:00:00.015000 198.51.100.1:50005 > 198.51.100.2:4790 VXLAN vni 60 flags [I]"
    )
    assert out.splitlines()[-1] == "20 packets: 3 VXLAN, 16 not VXLAN, 1 malformed"


def test_json_lines(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(["decode", "--json", str(capture)], capsys)
    assert (status, err) == (0, "")
    objs = [json.loads(line) for line in out.splitlines()]
    assert len(objs) == 20
    assert objs[0] == {
        "time": 1764237600.0,
        "type": "vxlan",
        "outer_src": "198.51.100.1",
        "outer_dst": "198.51.100.2",
        "src_port": 50000,
        "dst_port": 4789,
        "ttl": 64,
        "vlans": [],
        "vni": 10,
        "flags": 8,
        "i_flag": True,
        "reserved": "0x0000000000000000",
        "gbp": None,
        "inner_src": "02:00:00:00:00:01",
        "inner_dst": "ff:ff:ff:ff:ff:ff",
        "inner_length": 42,
        "summary": "ARP who-has 203.0.113.2 tell 203.0.113.1",
    }
    assert objs[11]["gbp"] == {"policy_id": 50000, "dont_learn": True, "policy_applied": False}
    assert objs[11]["flags"] == 0x88
    # 64 bits as a hex string: a JSON number that wide loses its low bits in jq (issue 13)
    assert objs[12]["reserved"] == "0x0000010000000001"
    assert '"time": 1764237600.012000, ' in out.splitlines()[12]
    assert (objs[14]["vlans"], objs[14]["ttl"]) == ([7], 1)
    assert {k: objs[16][k] for k in ("type", "vni", "next_protocol", "p_flag", "bum", "oam", "version")} == {
        "type": "vxlan-gpe",
        "vni": 61,
        "next_protocol": "IPV4",
        "p_flag": True,
        "bum": False,
        "oam": False,
        "version": 0,
    }
    assert "inner_src" not in objs[16]
    assert objs[18] == {
        "time": 1764237600.019,
        "malformed": "ipv4 at offset 14: total length 78 exceeds the 46 bytes captured",
    }
    assert objs[19] == {
        "totals": {"packets": 20, "vxlan": 18, "not_vxlan": 1, "malformed": 1, "shown": 19},
        "reasons": {"ipv4: truncated": 1, "udp: not VXLAN": 1},
    }


def test_shared_capture_lines() -> None:
    from conftest import vectors_dir

    out = io.StringIO()
    from pyvxlan.cli.decode import run

    run(str(vectors_dir() / "pcaps" / "tcpdump_vxlan_port_8472.pcap"), out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "20:21:44.837063 192.168.203.1:45149 > 192.168.202.1:8472 VXLAN vni 100 flags [I]: 00:16:3e:37:f6:04 > "
        "00:30:88:01:00:02, IPv4 192.168.203.3 > 192.168.203.5 ICMP echo request id 1292 seq 1"
    )
    assert lines[-1] == "10 packets: 10 VXLAN, 0 not VXLAN, 0 malformed"


# --- the fast path prints exactly what the general path prints ---------------------------------


def _both_paths(records: list[tuple[float, bytes]]) -> tuple[str, str, tuple[int, ...], tuple[int, ...]]:
    buf = io.BytesIO()
    write(buf, records)
    results = []
    for fast in (True, False):
        printer = DecodePrinter((4789, 8472), (4790,))
        out: list[str] = []
        printer.record_lines(raw_records(io.BytesIO(buf.getvalue())), out.append, fast=fast, batch=3)
        s = printer.stats
        results.append(("".join(out), (s.packets, s.vxlan, s.not_vxlan, s.malformed)))
    (fast_out, fast_stats), (slow_out, slow_stats) = results
    return fast_out, slow_out, fast_stats, slow_stats


def test_fast_and_general_paths_agree_on_the_mixed_capture() -> None:
    fast_out, slow_out, fast_stats, slow_stats = _both_paths(capture_records())
    assert fast_out == slow_out == EXPECTED[: EXPECTED.index("20 packets")]
    assert fast_stats == slow_stats == (20, 18, 1, 1)


def _one_by_one(records: list[tuple[float, bytes]]) -> str:
    """The lines of each record decoded alone, by a printer of its own: no cache can carry over."""
    out: list[str] = []
    for record in records:
        buf = io.BytesIO()
        write(buf, [record])
        buf.seek(0)
        DecodePrinter((4789, 8472), (4790,)).record_lines(raw_records(buf), out.append, fast=False)
    return "".join(out)


def _header_bit_flips(frame: bytes) -> list[bytes]:
    """``frame`` once for each of the 64 bits of its VXLAN header, with that bit flipped."""
    start = decapsulate(frame, gpe_ports=(4790,)).inner_offset - 8
    flips = []
    for bit in range(64):
        changed = bytearray(frame)
        changed[start + bit // 8] ^= 0x80 >> (bit % 8)
        flips.append(bytes(changed))
    return flips


def with_ip_options(frame: bytes) -> bytes:
    """An untagged IPv4 VXLAN frame with 4 bytes of IP options (NOPs): the general path's case."""
    ip = bytearray(frame[14:34]) + b"\x01\x01\x01\x01"
    ip[0] = 0x46
    ip[2:4] = struct.pack("!H", len(frame) - 14 + 4)
    ip[10:12] = b"\x00\x00"
    ip[10:12] = struct.pack("!H", internet_checksum(bytes(ip)))
    return frame[:14] + bytes(ip) + frame[34:]


def test_every_packet_of_a_flow_prints_its_own_header_on_the_general_path() -> None:
    """Issue 9.1: the outer text was cached without header bytes 2-7, so the packets of a flow
    (IPv6 underlay, outer VLAN, IP options) after its first printed the first one's VNI, GBP
    policy, reserved bits and GPE next protocol."""
    src, dst = "198.51.100.1", "198.51.100.2"
    headers = [
        VxlanHeader(40),
        VxlanHeader(41),
        VxlanHeader(41, group_policy=GroupPolicy(7, policy_applied=True)),
        VxlanHeader(41, group_policy=GroupPolicy(8, dont_learn=True)),
        VxlanHeader(41, reserved=0x0000_0000_0000_0001),
    ]
    flows: list[Callable[[VxlanHeader], bytes]] = [
        lambda h: encapsulate(FRAMES["arp-request"], header=h, src="2001:db8::1", dst="2001:db8::2", src_port=50003),
        lambda h: encapsulate(FRAMES["arp-request"], header=h, src=src, dst=dst, src_port=50004, vlan=7),
        lambda h: with_ip_options(encapsulate(FRAMES["arp-request"], header=h, src=src, dst=dst, src_port=50005)),
    ]
    records = [
        (1764237600.0 + len(headers) * j + i, flow(h)) for j, flow in enumerate(flows) for i, h in enumerate(headers)
    ]
    gpe = [GpeHeader(60, next_protocol=GpeNextProtocol.IPV4), GpeHeader(60, next_protocol=GpeNextProtocol.NSH)]
    records += [
        (
            1764237615.0 + i,
            encapsulate(FRAMES["echo-request"][14:], header=h, src=src, dst=dst, src_port=50006, dst_port=4790),
        )
        for i, h in enumerate(gpe)
    ]
    buf = io.BytesIO()
    write(buf, records)
    for fast in (True, False):
        out: list[str] = []
        buf.seek(0)
        DecodePrinter((4789, 8472), (4790,)).record_lines(raw_records(buf), out.append, fast=fast)
        heads = [line.split(": ", 1)[0] for line in "".join(out).splitlines()]
        arp = [
            "VXLAN vni 40 flags [I]",
            "VXLAN vni 41 flags [I]",
            "VXLAN vni 41 flags [G,I] gbp id 7 policy-applied",
            "VXLAN vni 41 flags [G,I] gbp id 8 dont-learn",
            "VXLAN vni 41 flags [I] reserved 0x0000000000000001",
        ]
        assert heads == [
            *(f"10:00:{i:02d}.000000 [2001:db8::1]:50003 > [2001:db8::2]:4789 {h}" for i, h in enumerate(arp)),
            *(f"10:00:{5 + i:02d}.000000 vlan 7 198.51.100.1:50004 > 198.51.100.2:4789 {h}" for i, h in enumerate(arp)),
            *(f"10:00:{10 + i:02d}.000000 198.51.100.1:50005 > 198.51.100.2:4789 {h}" for i, h in enumerate(arp)),
            "10:00:15.000000 198.51.100.1:50006 > 198.51.100.2:4790 VXLAN-GPE vni 60 flags [I,P] next IPV4",
            "10:00:16.000000 198.51.100.1:50006 > 198.51.100.2:4790 VXLAN-GPE vni 60 flags [I,P] next NSH",
        ], fast


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            vxlan_frames(ports=st.sampled_from([4789, 8472, 4790])),
            st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_fast_and_general_paths_agree_on_any_frame(
    cases: list[tuple[EncapsulatedFrame, list[tuple[int, int]]]],
) -> None:
    """Both paths print what each packet decoded on its own prints, though caches are shared.

    Each frame comes as built, then once with each of its 64 header bits flipped (a flow whose VNI,
    flags, GBP policy, GPE next protocol and reserved bits change: every header byte is in the
    cache keys), then with a few bytes changed anywhere (lengths, versions, ports, flags).
    """
    records = []
    for i, (f, changes) in enumerate(cases):
        frame = bytearray(f.frame)
        records.append((float(i), bytes(frame)))
        records += [(i + (bit + 1) / 100, flipped) for bit, flipped in enumerate(_header_bit_flips(f.frame))]
        for pos, value in changes:
            if pos < len(frame):
                frame[pos] = value
        records.append((i + 0.75, bytes(frame)))
    fast_out, slow_out, fast_stats, slow_stats = _both_paths(records)
    assert fast_out == slow_out == _one_by_one(records)
    assert fast_stats == slow_stats


# --- errors: one line on stderr, status 2 ------------------------------------------------------


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13: the file and the reason, as tcpdump says it, without Python's ``[Errno 2]``."""
    path = tmp_path / "missing.pcap"
    assert run_cli(["decode", str(path)], capsys) == (
        2,
        "",
        f"pyvxlan: error: {path}: No such file or directory\n",
    )


def test_not_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a capture\n")
    assert run_cli(["decode", str(path)], capsys) == (
        2,
        "",
        f"pyvxlan: error: {path}: pcap at offset 0: not a pcap or pcapng file (magic 68656c6c)\n",
    )


def test_a_cut_file_prints_what_it_decoded_then_the_error(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(capture.read_bytes()[:300])
    status, out, err = run_cli(["decode", str(cut)], capsys)
    assert status == 2
    assert out == "".join(EXPECTED.splitlines(keepends=True)[:2]) + "2 packets: 2 VXLAN, 0 not VXLAN, 0 malformed\n"
    assert err == f"pyvxlan: error: {cut}: pcap at offset 240: record of 100 bytes is cut after 44 bytes\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decode"], "pyvxlan decode: error: give a capture FILE (- for standard input) or -i IFACE"),
        (["decode", "-i", "lo", "f"], "pyvxlan decode: error: give a capture FILE or -i IFACE, not both"),
        (["decode", "--gbp", "f"], "pyvxlan decode: error: --gbp applies to --strict only"),
        (
            ["decode", "--vni", "16777216", "f"],
            "pyvxlan decode: error: argument --vni: invalid VNI '16777216': must be in 0..16777215",
        ),
        (
            ["decode", "--host", "x", "f"],
            "pyvxlan decode: error: argument --host: invalid address 'x': not an IPv4 or IPv6 address",
        ),
        (["decode", "--mac", "02:00", "f"], "pyvxlan decode: error: argument --mac: invalid MAC address '02:00'"),
        (
            ["decode", "-c", "0", "f"],
            "pyvxlan decode: error: argument -c/--count: invalid count '0': must be at least 1",
        ),
        (
            ["decode", "--time-format", "x", "f"],
            "pyvxlan decode: error: argument --time-format: invalid choice: 'x' (choose from 'clock', 'abs', 'rel', 'epoch')",
        ),
        (["decode", "--port", "x", "f"], "pyvxlan decode: error: argument --port: invalid port 'x': not a number"),
        (
            ["decode", "--port", "70000", "f"],
            "pyvxlan decode: error: argument --port: invalid port '70000': must be in 1..65535",
        ),
        (
            ["decode", "--port", "4790", "--gpe-port", "4790", "f"],
            "pyvxlan decode: error: port 4790 is given both as --port and --gpe-port",
        ),
        (["decode", "--bogus", "f"], "pyvxlan: error: unrecognized arguments: --bogus"),
    ],
    ids=[
        "no-file",
        "file-and-iface",
        "gbp-alone",
        "vni-range",
        "host",
        "mac",
        "count",
        "time-format",
        "port-text",
        "port-range",
        "port-twice",
        "unknown-option",
    ],
)
def test_bad_arguments(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(args, capsys) == (2, "", message + "\n")


def test_the_installed_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "pyvxlan"), "decode", str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"pyvxlan: error: {path}: pcap at offset 0: not a pcap or pcapng file (magic 68656c6c)\n"


def test_pcapng_with_a_cooked_interface(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wire.test_pcap import epb, idb, shb, sll2

    records = capture_records()
    path = tmp_path / "any.pcapng"
    path.write_bytes(shb("<") + idb("<", 276, tsresol=9) + epb("<", 0, 1764237600_002000000, sll2(records[2][1])))
    assert run_cli(["decode", str(path)], capsys) == (
        0,
        EXPECTED.splitlines(keepends=True)[2] + ("1 packets: 1 VXLAN, 0 not VXLAN, 0 malformed\n"),
        "",
    )


def test_a_capture_cut_by_a_snap_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "snap.pcap"
    write(path, capture_records(), snaplen=80)
    status, out, err = run_cli(["decode", str(path)], capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "10:00:00.000000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]: "
        "02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ARP truncated"
    )
    assert lines[2].endswith("02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 truncated")
    assert lines[13] == (
        "10:00:00.013000 [2001:db8::1]:50003 > [2001:db8::2]:8472 VXLAN vni 40 flags [I]: ethernet truncated (10 bytes)"
    )
    assert lines[16] == EXPECTED.splitlines()[16]  # GPE carrying IPv4: 80 bytes hold the ICMP header
    assert lines[-1] == "20 packets: 18 VXLAN, 1 not VXLAN, 1 malformed"
    status, out, _err = run_cli(["decode", "--json", str(path)], capsys)
    obj = json.loads(out.splitlines()[13])
    assert (obj["vni"], obj["inner_length"], obj["summary"], "inner_src" in obj) == (
        40,
        10,
        "ethernet truncated (10 bytes)",
        False,
    )


# --- hostile files: absurd timestamps (issue 10.6) ---------------------------------------------


@pytest.mark.parametrize(
    ("ticks", "message"),
    [
        (2**64 - 1, "packet timestamp 18446744073709551615 (units of 1 s, if_tsoffset 0 s) is after the year 9999"),
        (10**17, "packet timestamp 100000000000000000 (units of 1 s, if_tsoffset 0 s) is after the year 9999"),
    ],
    ids=["2^64-1", "1e17"],
)
def test_an_absurd_pcapng_timestamp_is_one_line_naming_the_file(
    ticks: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10.6: if_tsresol 0 and timestamp 2^64-1 gave an OverflowError traceback, 10^17 gave
    `[Errno 75]` without the file's name (time.gmtime). The reader refuses both, naming the field."""
    from wire.test_pcap import epb, idb, shb

    good = capture_records()[2][1]
    path = tmp_path / "ts.pcapng"
    path.write_bytes(shb("<") + idb("<", 1, tsresol=0) + epb("<", 0, 36000, good) + epb("<", 0, ticks, good))
    assert run_cli(["decode", str(path)], capsys) == (
        2,
        EXPECTED.splitlines(keepends=True)[2].replace(".002000", ".000000")
        + "1 packets: 1 VXLAN, 0 not VXLAN, 0 malformed\n",
        f"pyvxlan: error: {path}: pcap at offset {28 + 32 + 132 + 12}: {message}\n",
    )


# --- bounded memory: every kind of line goes out in batches (issue 10.7) ------------------------


def _zero_length_records(n: int) -> bytes:
    """A pcap of ``n`` records of 0 bytes (what a sparse file reads as): each a "malformed" line."""
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + bytes(16 * n)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_malformed_lines_are_written_in_batches(as_json: bool) -> None:
    """Issue 10.7: "malformed" lines were kept until the end of the file (1M zero-length records:
    284 MB); they count toward the batch like every other line."""
    writes: list[str] = []
    printer = DecodePrinter((4789,), (4790,), DecodeOptions(as_json=as_json))
    printer.record_lines(raw_records(io.BytesIO(_zero_length_records(10))), writes.append, batch=3)
    assert [w.count("\n") for w in writes] == [3, 3, 3, 1]
    line = (
        '{"time": 0.000000, "malformed": "ethernet at offset 0: need 14 bytes, got 0"}\n'
        if as_json
        else "00:00:00.000000 malformed: ethernet at offset 0: need 14 bytes, got 0\n"
    )
    assert "".join(writes) == line * 10


@pytest.mark.slow
def test_memory_stays_flat_on_a_file_of_malformed_records(tmp_path: Path) -> None:
    """Issue 10.7: decoding 150,000 zero-length records raises the process's peak memory by a
    batch or two, not by the 41 MB of lines the old code held (measured in a fresh interpreter)."""
    path = tmp_path / "zeros.pcap"
    path.write_bytes(_zero_length_records(150_000))
    # VmHWM, the peak resident size of this process image: ru_maxrss would start at the peak of the
    # pytest process that forked it.
    script = (
        "import os, re, sys\n"
        "from pyvxlan.cli.decode import run\n"
        "def peak(): return int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1])\n"
        "before = peak()\n"
        "with open(os.devnull, 'w') as out:\n"
        "    stats = run(sys.argv[1], out)\n"
        "print(stats.malformed, peak() - before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    malformed, growth_kib = map(int, proc.stdout.split())
    assert malformed == 150_000
    assert growth_kib < 6 * 1024, f"peak memory grew by {growth_kib} KiB"


def test_a_line_shows_a_few_stacked_vlan_tags_and_counts_the_rest() -> None:
    """A frame of thousands of stacked tags makes a short line (lines bound the batches' memory)."""
    inner = MAC2 + MAC1 + b"\x81\x00" + b"\x00\x05\x81\x00" * 2000 + b"\x00\x06\x08\x06" + FRAMES["arp-request"][14:]
    frame = encapsulate(inner, vni=10, src="2001:db8::1", dst="2001:db8::2", src_port=50003)
    buf = io.BytesIO()
    write(buf, [(0.0, frame)])
    out: list[str] = []
    buf.seek(0)
    DecodePrinter((4789,), (4790,)).record_lines(raw_records(buf), out.append)
    assert out == [
        "00:00:00.000000 [2001:db8::1]:50003 > [2001:db8::2]:4789 VXLAN vni 10 flags [I]: 02:00:00:00:00:01 > "
        "02:00:00:00:00:02, vlan 5, vlan 5, vlan 5, vlan 5, and 1997 more vlan tags, "
        "ARP who-has 203.0.113.2 tell 203.0.113.1\n"
    ]


# --- nothing written is lost silently (issue 10.8) ---------------------------------------------


def test_output_goes_out_in_bounded_chunks() -> None:
    """Issue 10.8: one write of 2.25 GiB to stdout wrote 2 GiB and reported success; no write
    call gets more than WRITE_CHUNK characters."""
    from pyvxlan.cli.output import WRITE_CHUNK, checked_writer

    sizes: list[int] = []

    class Recorder(io.StringIO):
        def write(self, s: str) -> int:
            sizes.append(len(s))
            return len(s)

    checked_writer(Recorder())("x" * (2 * WRITE_CHUNK + 5))
    assert sizes == [WRITE_CHUNK, WRITE_CHUNK, 5]


class ShortWriter(io.StringIO):
    """A stream that writes one character less than it is given, and says so."""

    def write(self, s: str) -> int:
        return super().write(s[:-1])


def test_a_short_write_is_an_error_that_says_so(
    capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyvxlan.cli.decode import run
    from pyvxlan.cli.output import OutputError

    with pytest.raises(OutputError) as info:
        run(str(capture), ShortWriter())
    n = len(EXPECTED) - len("20 packets: 18 VXLAN, 1 not VXLAN, 1 malformed\n")
    assert str(info.value) == f"output: short write: {n - 1} of {n} characters written; the rest of the output is lost"
    monkeypatch.setattr(sys, "stdout", ShortWriter())
    assert main(["decode", str(capture)]) == 2
    assert capsys.readouterr().err == (
        f"pyvxlan: error: output: short write: {n - 1} of {n} characters written; the rest of the output is lost\n"
    )


def _big_capture(tmp_path: Path) -> Path:
    path = tmp_path / "big.pcap"
    records = capture_records()[:11] * 500  # 5,500 lines, about 900 kB: more than a pipe holds
    write(path, [(1764237600.0 + i / 1000, f) for i, (_, f) in enumerate(records)])
    return path


def test_a_closed_pipe_ends_quietly_as_tcpdump_does(tmp_path: Path) -> None:
    """A reader that goes away (`| head`) wanted no more: no message, no traceback, no "Exception
    ignored" from the interpreter's last flush, and status 141 (128 + SIGPIPE) as a shell reports
    for tcpdump in the same pipe."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pyvxlan"), "decode", str(_big_capture(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before anything is read: every write fails
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (141, "")


def test_a_full_disk_is_an_error_that_says_so(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "pyvxlan"), "decode", str(_big_capture(tmp_path))],
            stdout=full,
            capture_output=False,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert proc.returncode == 2
    assert proc.stderr == ("pyvxlan: error: standard output: No space left on device; the rest of the output is lost\n")


# --- issue 13: standard input streams ----------------------------------------------------------

PYVXLAN = str(Path(sys.executable).parent / "pyvxlan")


def _readline_within(stream: IO[bytes], seconds: float) -> bytes:
    """One line from ``stream`` (a pipe), or b"" when none came within ``seconds``."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else b""


def test_standard_input_streams_each_packet_as_it_arrives() -> None:
    """Issue 13: `tcpdump -U -w - | pyvxlan decode -` printed nothing until tcpdump exited. A packet
    fed to standard input is printed while the writer still holds the pipe open."""
    buf = io.BytesIO()
    records = capture_records()
    write(buf, records[:3])
    data = buf.getvalue()
    first_end = 24 + 16 + len(records[0][1])
    proc = subprocess.Popen([PYVXLAN, "decode", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(data[:first_end])  # the file header and one record, then nothing
        proc.stdin.flush()
        assert _readline_within(proc.stdout, 20).decode() == EXPECTED.splitlines(keepends=True)[0]
        proc.stdin.write(data[first_end:])
        proc.stdin.flush()
        assert _readline_within(proc.stdout, 20).decode() == EXPECTED.splitlines(keepends=True)[1]
        proc.stdin.close()
        rest = proc.stdout.read().decode()
    finally:
        if proc.poll() is None and not proc.stdin.closed:
            proc.kill()
    assert proc.wait(timeout=20) == 0
    assert rest == EXPECTED.splitlines(keepends=True)[2] + "3 packets: 3 VXLAN, 0 not VXLAN, 0 malformed\n"


def test_standard_input_gives_what_the_file_gives(capture: Path) -> None:
    with capture.open("rb") as f:
        proc = subprocess.run([PYVXLAN, "decode", "-"], stdin=f, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, EXPECTED, "")


def test_standard_input_that_is_not_a_capture_is_named() -> None:
    proc = subprocess.run([PYVXLAN, "decode", "-"], input=b"hello", capture_output=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr.decode()) == (
        2,
        b"",
        "pyvxlan: error: standard input: pcap at offset 0: not a pcap or pcapng file (magic 68656c6c)\n",
    )


# --- issue 13: selections, like tcpdump's primitives --------------------------------------------

LINES = EXPECTED.splitlines(keepends=True)


@pytest.mark.parametrize(
    ("args", "indexes"),
    [
        (["--vni", "20", "--vni", "40"], [11, 13]),  # OR within a kind
        (["--vni", "10", "--host", "2001:db8:1::2"], [7, 8]),  # AND across kinds; inner IPv6 (not an NS target)
        (["--host", "2001:db8::2"], [13]),  # the outer address
        (["--host", "203.0.113.2", "--mac", "ff:ff:ff:ff:ff:ff"], [0, 12]),  # ARP addresses, inner MAC
        (["--host", "203.0.113.1", "--vni", "61"], [16]),  # a GPE packet without inner Ethernet
        (["--mac", "02:00:c6:33:64:02", "--vni", "60"], [15]),  # the outer MAC (from 198.51.100.2)
        (["--vni", "99"], []),
    ],
    ids=["vni-or", "vni-and-inner-ipv6", "outer-host", "arp-and-mac", "gpe-ipv4", "outer-mac", "none"],
)
def test_selections_combine_as_tcpdump_primitives(
    capture: Path, capsys: pytest.CaptureFixture[str], args: list[str], indexes: list[int]
) -> None:
    status, out, err = run_cli(["decode", *args, str(capture)], capsys)
    totals = f"20 packets: 18 VXLAN, 1 not VXLAN, 1 malformed, {len(indexes)} shown\n"
    assert (status, out, err) == (0, "".join(LINES[i] for i in indexes) + totals, "")


def test_count_stops_reading_after_n_packets_shown(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["decode", "-c", "2", "--vni", "10", "--vni", "40", str(capture)], capsys) == (
        0,
        LINES[0] + LINES[1] + "2 packets: 2 VXLAN, 0 not VXLAN, 0 malformed, 2 shown\n",
        "",
    )
    assert run_cli(["decode", "-c", "1", "--vni", "40", str(capture)], capsys)[1].splitlines()[-1] == (
        "14 packets: 14 VXLAN, 0 not VXLAN, 0 malformed, 1 shown"
    )


def test_strict_shows_what_linux_vxlan_rcv_drops_with_the_reason(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--strict applies the library's Linux receive rules (vxlan_rcv: the I flag, then the
    reserved bits of the device's mask; the G bits are reserved without gbp): the packets a Linux
    device drops are shown with the reason and counted as malformed."""
    status, out, _ = run_cli(["decode", "--strict", str(capture)], capsys)
    assert status == 0
    assert out.splitlines(keepends=True) == [
        *LINES[:11],
        "10:00:00.011000 198.51.100.1:50001 > 198.51.100.2:4789 VXLAN vni 20 flags [G,I] gbp id 50000 dont-learn:"
        " dropped: vxlan at offset 42: reserved bits 0x8040c35000000000 are set (G bit set but GBP is not enabled)\n",
        "10:00:00.012000 198.51.100.1:50002 > 198.51.100.2:4789 VXLAN vni 30 flags [I] reserved 0x0000010000000001:"
        " dropped: vxlan at offset 42: reserved bits 0x0000010000000001 are set\n",
        *LINES[13:19],
        "20 packets: 16 VXLAN, 1 not VXLAN, 3 malformed\n",
    ]
    status, out, _ = run_cli(["decode", "--strict", "--gbp", "--vni", "20", str(capture)], capsys)
    assert out == LINES[11] + "20 packets: 17 VXLAN, 1 not VXLAN, 2 malformed, 1 shown\n"
    status, out, _ = run_cli(["decode", "--strict", "--json", "--vni", "30", str(capture)], capsys)
    obj = json.loads(out.splitlines()[0])
    assert (obj["vni"], obj["reserved"], obj["dropped"]) == (
        30,
        "0x0000010000000001",
        "vxlan at offset 42: reserved bits 0x0000010000000001 are set",
    )


def test_strict_drops_a_clear_i_flag() -> None:
    """vxlan_rcv drops a packet whose I flag is clear before it looks at anything else."""
    frame = encapsulate(
        FRAMES["arp-request"],
        header=VxlanHeader.from_words(0, 10 << 8),
        src="198.51.100.1",
        dst="198.51.100.2",
        src_port=50000,
    )
    buf = io.BytesIO()
    write(buf, [(1764237600.0, frame)])
    buf.seek(0)
    printer = DecodePrinter((4789,), (4790,), DecodeOptions(strict=True))
    out: list[str] = []
    printer.record_lines(raw_records(buf), out.append)
    assert out == [
        "10:00:00.000000 198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags []: dropped: vxlan at offset 42:"
        " I flag (VNI valid) is clear\n"
    ]
    assert printer.stats.reasons == {"vxlan: I flag clear": 1}


# --- issue 13: -v and --time-format -------------------------------------------------------------


def _lines(records: list[tuple[float, bytes]], options: DecodeOptions, fast: bool = True) -> list[str]:
    buf = io.BytesIO()
    write(buf, records)
    buf.seek(0)
    out: list[str] = []
    DecodePrinter((4789, 8472), (4790,), options).record_lines(raw_records(buf), out.append, fast=fast)
    return "".join(out).splitlines()


def test_verbose_shows_the_outer_ip_fields_the_checksum_status_and_inner_lengths() -> None:
    src, dst, echo = "198.51.100.1", "198.51.100.2", FRAMES["echo-request"]
    good = encapsulate(echo, vni=10, src=src, dst=dst, src_port=50000, tos=0xB8, df=True, ip_id=4660)
    bad = bytearray(good)
    bad[40] ^= 0xFF  # the UDP checksum's first byte
    none = encapsulate(echo, vni=10, src=src, dst=dst, src_port=50000, udp_checksum=False)
    six = encapsulate(FRAMES["arp-request"], vni=40, src="2001:db8::1", dst="2001:db8::2", src_port=50003, tos=0x20)
    six = six[:15] + bytes([six[15] | 0x0A, 0xBC, 0xDE]) + six[18:]  # flow label 0xabcde
    records = [(1764237600.0, good), (1764237600.5, bytes(bad)), (1764237601.0, none), (1764237602.0, six)]
    tail = ": 02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203.0.113.1 > 203.0.113.2 ICMP echo request id 7 seq 1"
    outer = "198.51.100.1:50000 > 198.51.100.2:4789 VXLAN vni 10 flags [I]"
    assert _lines(records, DecodeOptions(verbose=True)) == [
        f"10:00:00.000000 (ttl 64, tos 0xb8, id 4660, DF, udp sum ok) {outer}{tail} (inner length 50, ip length 36)",
        f"10:00:00.500000 (ttl 64, tos 0xb8, id 4660, DF, udp sum bad) {outer}{tail} (inner length 50, ip length 36)",
        f"10:00:01.000000 (ttl 64, tos 0x00, id 0, udp sum none) {outer}{tail} (inner length 50, ip length 36)",
        "10:00:02.000000 (hlim 64, class 0x20, flowlabel 0xabcde, udp sum ok) [2001:db8::1]:50003 >"
        " [2001:db8::2]:4789 VXLAN vni 40 flags [I]: 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff,"
        " ARP who-has 203.0.113.2 tell 203.0.113.1 (inner length 42)",
    ]
    objs = [json.loads(line) for line in _lines(records, DecodeOptions(verbose=True, as_json=True))]
    assert [
        (o["tos"], o["df"], o["ip_id"], o["flow_label"], o["udp_checksum"], o["inner_ip_length"]) for o in objs
    ] == [
        (0xB8, True, 4660, None, "ok", 36),
        (0xB8, True, 4660, None, "bad", 36),
        (0, False, 0, None, "none", 36),
        (0x20, None, None, 0xABCDE, "ok", None),
    ]


def test_verbose_leaves_a_snapped_checksum_unverified(tmp_path: Path) -> None:
    frame = encapsulate(FRAMES["echo-request"], vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
    buf = io.BytesIO()
    write(buf, [(1764237600.0, frame)], snaplen=96)
    buf.seek(0)
    out: list[str] = []
    DecodePrinter((4789,), (4790,), DecodeOptions(verbose=True)).record_lines(raw_records(buf), out.append)
    assert out[0].startswith("10:00:00.000000 (ttl 64, tos 0x00, id 0, udp sum unverified) ")
    assert out[0].endswith(" (inner length 46, ip length 36)\n")


@pytest.mark.parametrize(
    ("fmt", "stamps"),
    [
        (TimeFormat.CLOCK, ["10:00:00.000000", "10:00:00.001000", "09:59:58.999999", "10:00:00.002000"]),
        (
            TimeFormat.ABS,
            [
                "2025-11-27 10:00:00.000000",
                "2025-11-27 10:00:00.001000",
                "2025-11-27 09:59:58.999999",
                "2025-11-27 10:00:00.002000",
            ],
        ),
        (TimeFormat.REL, ["00:00:00.000000", "00:00:00.001000", "-00:00:01.000001", "00:00:00.002000"]),
        (TimeFormat.EPOCH, ["1764237600.000000", "1764237600.001000", "1764237598.999999", "1764237600.002000"]),
    ],
)
def test_time_formats_as_tcpdump_tttt_ttttt_tt(fmt: TimeFormat, stamps: list[str]) -> None:
    """abs is tcpdump's -tttt (date and time), rel its -ttttt (since the first packet shown),
    epoch its -tt. A packet older than the first one shown (captures are not always in order) is
    a negative delta in rel."""
    frame = encapsulate(FRAMES["arp-request"], vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
    records = [(1764237600.0, frame), (1764237600.001, frame), (1764237598.999999, frame), (1764237600.002, frame)]
    for fast in (True, False):
        assert [line.split(" 198.51", 1)[0] for line in _lines(records, DecodeOptions(time_format=fmt), fast)] == stamps


def test_the_cli_takes_a_time_format(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(["decode", "--time-format", "rel", str(capture)], capsys)
    assert (
        out.splitlines()[18]
        == "00:00:00.019000 malformed: ipv4 at offset 14: total length 78 exceeds the 46 bytes captured"
    )


# --- issue 13: JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(TimeFormat))
def test_fast_and_general_paths_agree_in_json_and_every_time_format(fmt: TimeFormat) -> None:
    records = capture_records()
    for as_json in (False, True):
        options = DecodeOptions(as_json=as_json, time_format=fmt)
        assert _lines(records, options, fast=True) == _lines(records, options, fast=False)


@settings(max_examples=25, deadline=None)
@given(st.lists(vxlan_frames(ports=st.sampled_from([4789, 8472, 4790])), min_size=1, max_size=4))
def test_json_fast_and_general_paths_agree_on_any_frame(frames: list[EncapsulatedFrame]) -> None:
    records = [(float(i), f.frame) for i, f in enumerate(frames)]
    options = DecodeOptions(as_json=True)
    fast, general = _lines(records, options, fast=True), _lines(records, options, fast=False)
    assert fast == general
    for line in fast:
        json.loads(line)


def test_json_takes_the_fast_path_wherever_the_text_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: --json took 5x the text's time because every JSON line went through
    ``decapsulate``; now both outputs share the fast path and its caches. Counted, not timed (the
    time ratio is bench/codec.py's to measure: 1.13x here): on the benchmark's own capture the
    JSON output calls the general path exactly as often as the text does, for the one frame in
    twenty that needs it."""
    from pyvxlan import decapsulate as general

    spec = importlib.util.spec_from_file_location(
        "bench_codec", Path(__file__).resolve().parents[2] / "bench" / "codec.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    buf = io.BytesIO()
    write(buf, bench.capture_records(4000))
    data = buf.getvalue()
    calls = {False: 0, True: 0}
    for as_json in (False, True):

        def counting(*args: Any, _json: bool = as_json, **kwargs: Any) -> Any:
            calls[_json] += 1
            return general(*args, **kwargs)

        monkeypatch.setattr("pyvxlan.cli.decode.decapsulate", counting)
        printer = DecodePrinter((4789, 8472), (4790,), DecodeOptions(as_json=as_json))
        lines: list[str] = []
        printer.record_lines(raw_records(io.BytesIO(data)), lines.append)
        assert lines
    assert calls[True] == calls[False]
    assert 0 < calls[True] <= 4000 // 10


def test_the_json_keys_are_documented() -> None:
    """Every key a JSON line can hold is in docs/decode.md's table, and every key there occurs."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "decode.md").read_text()
    table = doc[doc.index("| key | value |") :].split("\n\n", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", "\n".join(row.split("|")[1] for row in table.splitlines()[2:])))
    seen: set[str] = set()
    buf = io.BytesIO()
    write(buf, capture_records())
    for options in (DecodeOptions(as_json=True), DecodeOptions(as_json=True, verbose=True, strict=True)):
        printer = DecodePrinter((4789, 8472), (4790,), options)
        out: list[str] = []
        printer.record_lines(raw_records(io.BytesIO(buf.getvalue())), out.append)
        for line in "".join([*out, printer.totals_json()]).splitlines():
            obj = json.loads(line)
            seen |= set(obj) | set(obj.get("totals", {})) | set(obj.get("gbp") or {})
    assert seen == documented


def _drop_net_raw() -> None:
    """In the child: lose CAP_NET_RAW for good, as an unprivileged user has it (root may drop it
    from the bounding set; a user without it has nothing to drop)."""
    import ctypes

    pr_capbset_drop, cap_net_raw = 24, 13
    ctypes.CDLL(None, use_errno=True).prctl(pr_capbset_drop, cap_net_raw, 0, 0, 0)


def test_a_live_capture_without_privilege_is_one_line() -> None:
    proc = subprocess.run(
        [PYVXLAN, "decode", "-i", "lo"], capture_output=True, text=True, check=False, preexec_fn=_drop_net_raw
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        "",
        "pyvxlan: error: capturing on lo needs root (CAP_NET_RAW): permission denied\n",
    )
