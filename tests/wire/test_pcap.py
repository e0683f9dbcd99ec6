"""pyvxlan.wire.pcap: the writer, the pcap/pcapng reader, link types, counts and bad files."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import vectors_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import DecodeError, GpeHeader, GpeNextProtocol, TruncatedError, encapsulate
from pyvxlan.errors import ConfigError
from pyvxlan.strategies import EncapsulatedFrame, vxlan_frames
from pyvxlan.wire.pcap import (
    LINUX_SLL,
    LINUX_SLL2,
    LinkType,
    PcapStats,
    PcapWriter,
    frame_of,
    raw_records,
    read,
    write,
)

INNER_ARP = bytes.fromhex("ffffffffffff02000000000108060001080006040001020000000001cb007101000000000000cb007102")
FRAME = encapsulate(INNER_ARP, vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
FRAME6 = encapsulate(INNER_ARP, vni=20, src="2001:db8::1", dst="2001:db8::2", src_port=50001, dst_port=8472)


# --- builders for files the writer does not produce ------------------------------------------


def pcap_bytes(
    records: list[tuple[int, int, bytes]], *, order: str = "<", nsec: bool = False, linktype: int = 1
) -> bytes:
    """A classic pcap: records are (seconds, fraction in the file's unit, frame)."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for sec, frac, frame in records:
        out.append(struct.pack(order + "IIII", sec, frac, len(frame), len(frame)) + frame)
    return b"".join(out)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _options(order: str, options: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for code, value in options:
        out += struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)
    return out + (struct.pack(order + "HH", 0, 0) if options else b"")


def shb(order: str) -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, linktype: int, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts: list[tuple[int, bytes]] = []
    if tsresol is not None:
        opts.append((9, bytes((tsresol,))))
    if tsoffset is not None:
        opts.append((14, struct.pack(order + "q", tsoffset)))
    return _block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + _options(order, opts))


def epb(order: str, ifid: int, ticks: int, data: bytes) -> bytes:
    head = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return _block(order, 6, head + data)


def spb(order: str, data: bytes) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(data)) + data)


def sll(frame: bytes) -> bytes:
    """The Linux cooked (v1) record of an Ethernet frame, as `tcpdump -i any -y LINUX_SLL` writes."""
    # packet type 4 (outgoing), ARPHRD_ETHER, 6-byte address (the sender's MAC), protocol
    return struct.pack("!HHH", 4, 1, 6) + frame[6:12] + b"\x00\x00" + frame[12:14] + frame[14:]


def sll2(frame: bytes) -> bytes:
    """The Linux cooked v2 record of an Ethernet frame, as `tcpdump -i any` writes."""
    return frame[12:14] + b"\x00\x00" + struct.pack("!IHBB", 3, 1, 4, 6) + frame[6:12] + b"\x00\x00" + frame[14:]


def decoded(data: bytes, **kwargs: object) -> list[tuple[float, int, str, int]]:
    return [(ts, d.header.vni, d.outer_src, d.dst_port) for ts, d in read(io.BytesIO(data), **kwargs)]  # type: ignore[arg-type]


# --- writer ---------------------------------------------------------------------------------


def test_writer_exact_bytes() -> None:
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        w.write(b"\x01\x02\x03", ts=1.5)
    assert buf.getvalue() == bytes.fromhex(
        "d4c3b2a102000400000000000000000000000400010000000100000020a107000300000003000000010203"
    )
    assert w.count == 1


def test_writer_is_deterministic_and_leaves_a_file_object_open(tmp_path: Path) -> None:
    records = [(1.0, FRAME), (2.000001, FRAME6)]
    assert write(tmp_path / "a.pcap", records) == 2
    assert write(tmp_path / "b.pcap", records) == 2
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()
    buf = io.BytesIO()
    write(buf, records)
    assert not buf.closed
    assert buf.getvalue() == (tmp_path / "a.pcap").read_bytes()


def test_writer_rounds_timestamps_to_whole_microseconds() -> None:
    buf = io.BytesIO()
    write(buf, [(1.9999996, b"x"), (3.0000004, b"y")])
    raw = buf.getvalue()
    assert struct.unpack_from("<II", raw, 24) == (2, 0)
    assert struct.unpack_from("<II", raw, 24 + 17) == (3, 0)


def test_writer_cuts_frames_at_snaplen_and_keeps_the_original_length() -> None:
    buf = io.BytesIO()
    write(buf, [(0.0, bytes(range(100)))], snaplen=64)
    raw = buf.getvalue()
    assert struct.unpack_from("<II", raw, 24 + 8) == (64, 100)
    assert raw[40:] == bytes(range(64))


def test_writer_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match=r"^snaplen: must be in 1\.\.2147483647, got 0$"):
        PcapWriter(io.BytesIO(), snaplen=0)
    w = PcapWriter(io.BytesIO())
    with pytest.raises(ConfigError, match=r"^ts: must not be negative, got -1\.0$"):
        w.write(b"x", ts=-1.0)
    w.close()
    with pytest.raises(ConfigError, match=r"^writer: write after close\(\)$"):
        w.write(b"x", ts=0.0)


def test_writer_refuses_a_closed_or_text_file_object_with_a_config_error() -> None:
    """Issue 11: no bare ValueError or TypeError from the file object the writer was given."""
    buf = io.BytesIO()
    w = PcapWriter(buf)
    buf.close()
    with pytest.raises(ConfigError, match=r"^target: the file object is closed$"):
        w.write(b"x", ts=0.0)
    with pytest.raises(ConfigError, match=r"^target: the file object is closed$"):
        PcapWriter(buf)
    with pytest.raises(ConfigError, match=r"^target: must be a binary file object, got a text one \(StringIO\)$"):
        PcapWriter(io.StringIO())  # type: ignore[arg-type]


# The calls below are wrong on purpose: the names are typed Any so that mypy lets them through.
any_pcapwriter: Any = PcapWriter
any_write: Any = write
any_read: Any = read
any_raw_records: Any = raw_records
any_pcapstats: Any = PcapStats
any_linktype: Any = LinkType
any_frame_of: Any = frame_of
_NAN = float("nan")
_INF = float("inf")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: any_write(io.BytesIO(), [(_NAN, b"x")]), "ts: must be a finite number of seconds, got nan"),
        (lambda: any_write(io.BytesIO(), [(_INF, b"x")]), "ts: must be a finite number of seconds, got inf"),
        (lambda: any_write(io.BytesIO(), [(-_INF, b"x")]), "ts: must be a finite number of seconds, got -inf"),
        (lambda: any_pcapwriter(io.BytesIO()).write(b"x", ts=_NAN), "ts: must be a finite number of seconds, got nan"),
        (
            lambda: any_pcapwriter(io.BytesIO()).write(b"x", ts="1"),
            "ts: must be a number of seconds (int or float), got str",
        ),
        (
            lambda: any_pcapwriter(io.BytesIO()).write(b"x", ts=True),
            "ts: must be a number of seconds (int or float), got bool",
        ),
        (
            lambda: any_pcapwriter(io.BytesIO()).write(b"x", ts=2.0**32),
            "ts: 4294967296.0 does not fit a 32-bit pcap timestamp",
        ),
        (
            lambda: any_pcapwriter(io.BytesIO()).write("x", ts=0),
            "frame: must be bytes, bytearray or memoryview, got str",
        ),
        (lambda: any_pcapwriter(io.BytesIO(), snaplen=True), "snaplen: must be an int in 1..2147483647, got bool"),
        (lambda: any_pcapwriter(io.BytesIO(), snaplen=1.5), "snaplen: must be an int in 1..2147483647, got float"),
        (lambda: any_pcapwriter(io.BytesIO(), linktype="x"), "linktype: must be an int in 0..65535, got str"),
        (lambda: any_pcapwriter(io.BytesIO(), linktype=1 << 16), "linktype: must be in 0..65535, got 65536"),
        (lambda: any_pcapwriter(5), "target: must be a path or a binary file object, got int"),
        (lambda: any_write(io.BytesIO(), 5), "records: must be an iterable of (timestamp, frame), got int"),
        (lambda: any_write(io.BytesIO(), [b"x"]), "records: record 0 is not a (timestamp, frame) pair: b'x'"),
        (
            lambda: any_write(io.BytesIO(), [(0.0, b"x"), (1.0,)]),
            "records: record 1 is not a (timestamp, frame) pair: (1.0,)",
        ),
        (lambda: any_read(None), "source: must be a path or a binary file object, got NoneType"),
        (lambda: any_read(io.BytesIO(), ports=None), "ports: must be a collection of UDP ports, got NoneType"),
        (lambda: any_read(io.BytesIO(), ports=[0]), "ports: must be in 1..65535, got 0"),
        (lambda: any_read(io.BytesIO(), gpe_ports=["4790"]), "gpe_ports: must be an int in 1..65535, got str"),
        (lambda: any_read(io.BytesIO(), strict=1), "strict: must be a bool, got int"),
        (lambda: any_read(io.BytesIO(), stats={}), "stats: must be a PcapStats or None, got dict"),
        (lambda: list(any_read(io.StringIO("text"))), "source: must be opened in binary mode: read() gave str"),
        (lambda: any_raw_records("x.pcap"), "source: must be an open binary file object (read() takes a path)"),
        (lambda: any_pcapstats(packets=-1), "packets: must be a count (an int >= 0), got -1"),
        (lambda: any_pcapstats(vxlan=True), "vxlan: must be a count (an int >= 0), got True"),
        (lambda: any_pcapstats(reasons=[]), "reasons: must be a dict, got list"),
        (lambda: any_linktype(5), "linktype: 5 is not a link type this module knows (1, 101, 113, 228, 229, 276)"),
        (lambda: any_frame_of(113, "x", 0, 1, any_pcapstats()), "buf: must be bytes, bytearray or memoryview, got str"),
        (lambda: any_frame_of(113, b"x", 0, "5", any_pcapstats()), "end: must be an int, got str"),
        (lambda: any_frame_of(113, b"x" * 20, 0, 20, None), "stats: must be a PcapStats, got NoneType"),
    ],
    ids=lambda v: "" if callable(v) else v.split(":")[0],
)
def test_api_misuse_is_a_config_error_naming_the_field(call: Callable[[], object], message: str) -> None:
    """Issue 10, API validation: nan/inf timestamps and wrong types are ConfigError(field, ...),
    never a bare ValueError, TypeError, OverflowError or AttributeError."""
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value) == message
    assert info.value.field == message.split(":", maxsplit=1)[0]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_tcpdump_reads_what_the_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "w.pcap"
    write(path, [(1764237600.25, FRAME)])
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True).stdout
    assert "198.51.100.1.50000 > 198.51.100.2.4789: VXLAN, flags [I] (0x08), vni 10" in out
    assert "ARP, Request who-has 203.0.113.2 tell 203.0.113.1" in out


# --- reader: classic pcap ---------------------------------------------------------------------


def test_round_trip_writer_to_reader() -> None:
    buf = io.BytesIO()
    write(buf, [(1764237600.000001, FRAME), (1764237601.5, FRAME6)])
    buf.seek(0)
    got = list(read(buf))
    assert [(ts, d.header.vni, d.outer_src, d.outer_dst, d.src_port, d.dst_port) for ts, d in got] == [
        (1764237600.000001, 10, "198.51.100.1", "198.51.100.2", 50000, 4789),
        (1764237601.5, 20, "2001:db8::1", "2001:db8::2", 50001, 8472),
    ]
    assert bytes(got[0][1].inner) == INNER_ARP


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 999_999), vxlan_frames()),
        min_size=0,
        max_size=5,
    )
)
def test_round_trip_property(records: list[tuple[int, int, EncapsulatedFrame]]) -> None:
    buf = io.BytesIO()
    write(buf, [(sec + usec / 1e6, f.frame) for sec, usec, f in records])
    buf.seek(0)
    stats = PcapStats()
    got = list(read(buf, stats=stats))
    assert (stats.packets, stats.vxlan, stats.not_vxlan, stats.malformed) == (len(records), len(records), 0, 0)
    for (sec, usec, f), (ts, d) in zip(records, got, strict=True):
        assert divmod(round(ts * 1_000_000), 1_000_000) == (sec, usec)
        assert (d.header, d.outer_src, d.outer_dst, d.src_port, d.dst_port, d.ttl) == (
            f.header,
            f.src,
            f.dst,
            f.src_port,
            f.dst_port,
            f.ttl,
        )
        assert d.vlans == (() if f.vlan is None else (f.vlan,))
        assert bytes(d.inner) == f.inner


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nsec", [False, True], ids=["usec", "nsec"])
def test_pcap_byte_orders_and_resolutions(order: str, nsec: bool) -> None:
    frac = 250_000_000 if nsec else 250_000
    data = pcap_bytes([(1764237600, frac, FRAME), (1764237601, 0, FRAME6)], order=order, nsec=nsec)
    assert decoded(data) == [
        (1764237600.25, 10, "198.51.100.1", 4789),
        (1764237601.0, 20, "2001:db8::1", 8472),
    ]


def test_nanosecond_timestamps_keep_microsecond_precision() -> None:
    data = pcap_bytes([(1764237600, 123_456_789, FRAME)], nsec=True)
    ((ts, _d),) = read(io.BytesIO(data))
    assert round(ts * 1_000_000) == 1764237600_123457


@pytest.mark.parametrize(
    ("linktype", "record"),
    [(LINUX_SLL, sll(FRAME)), (LINUX_SLL2, sll2(FRAME)), (LinkType.RAW, FRAME[14:]), (LinkType.IPV6, FRAME6[14:])],
    ids=["sll", "sll2", "raw", "ipv6"],
)
def test_cooked_and_raw_ip_link_types(linktype: int, record: bytes) -> None:
    ((ts, d),) = read(io.BytesIO(pcap_bytes([(7, 0, record)], linktype=linktype)))
    want = FRAME6 if linktype == LinkType.IPV6 else FRAME
    assert ts == 7.0
    assert bytes(d.inner) == INNER_ARP
    assert d.header.vni == (20 if want is FRAME6 else 10)
    # No Ethernet header was captured: the destination reads as zeros, the source as the sender's.
    assert d.outer_eth_dst == "00:00:00:00:00:00"
    expected_src = "02:00:c6:33:64:01" if linktype in (LINUX_SLL, LINUX_SLL2) else "00:00:00:00:00:00"
    assert d.outer_eth_src == expected_src


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
@pytest.mark.parametrize("linktype", [LINUX_SLL, LINUX_SLL2])
def test_tcpdump_reads_the_cooked_fixtures_the_same_way(tmp_path: Path, linktype: int) -> None:
    # The SLL/SLL2 builders above must match libpcap's layout, or the tests of them prove nothing.
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_bytes([(7, 0, (sll if linktype == LINUX_SLL else sll2)(FRAME))], linktype=linktype))
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True).stdout
    assert "198.51.100.1.50000 > 198.51.100.2.4789: VXLAN, flags [I] (0x08), vni 10" in out


def _can_make_netns() -> str | None:
    if os.geteuid() != 0:
        return "needs root to make a network namespace"
    for tool in ("tcpdump", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@pytest.fixture
def netns() -> Iterator[str]:
    reason = _can_make_netns()
    if reason:
        pytest.skip(reason)
    name = f"pvxb-pcap-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("cooked", ["LINUX_SLL", "LINUX_SLL2"])
def test_reads_a_real_tcpdump_any_capture(netns: str, tmp_path: Path, cooked: str) -> None:
    """`tcpdump -i any` (SLL2, or SLL with -y) in a namespace, VXLAN sent over loopback by a socket."""
    path = tmp_path / "any.pcap"
    cmd = ["ip", "netns", "exec", netns, "tcpdump", "-i", "any", "-y", cooked, "-U", "-c", "3", "-w", str(path)]
    proc = subprocess.Popen([*cmd, "udp", "port", "4789"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        seen = ""
        while "listening on any" not in seen:  # tcpdump says so once it is capturing
            line = proc.stderr.readline()
            assert line, f"tcpdump exited: {seen}"
            seen += line
        payloads = [bytes.fromhex("0800000000000a00") + INNER_ARP, bytes.fromhex("0800000000001400") + INNER_ARP]
        script = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "for h in sys.argv[1:]: s.sendto(bytes.fromhex(h),('127.0.0.1',4789))\n"
        )
        hexes = [p.hex() for p in payloads] + [payloads[0].hex()]
        subprocess.run(["ip", "netns", "exec", netns, "python3", "-c", script, *hexes], check=True)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raw = path.read_bytes()
    assert struct.unpack_from("<I", raw, 20)[0] == (113 if cooked == "LINUX_SLL" else 276)
    stats = PcapStats()
    got = [(d.header.vni, d.outer_src, d.outer_dst, d.dst_port, bytes(d.inner)) for _ts, d in read(path, stats=stats)]
    assert got == [
        (10, "127.0.0.1", "127.0.0.1", 4789, INNER_ARP),
        (20, "127.0.0.1", "127.0.0.1", 4789, INNER_ARP),
        (10, "127.0.0.1", "127.0.0.1", 4789, INNER_ARP),
    ]
    assert (stats.packets, stats.vxlan) == (3, 3)


# --- reader: pcapng ---------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_pcapng_two_interfaces_with_their_own_link_type_and_resolution(order: str) -> None:
    data = b"".join(
        [
            shb(order),
            idb(order, 1),  # Ethernet, default microseconds
            idb(order, 276, tsresol=9, tsoffset=100),  # SLL2, nanoseconds, +100 s
            _block(order, 4, b"\x00\x00\x00\x00"),  # a name resolution block: skipped
            epb(order, 0, 1764237600_250000, FRAME),
            epb(order, 1, 1764237500_500000000, sll2(FRAME6)),
            spb(order, FRAME),
        ]
    )
    assert decoded(data) == [
        (1764237600.25, 10, "198.51.100.1", 4789),
        (1764237600.5, 20, "2001:db8::1", 8472),
        (0.0, 10, "198.51.100.1", 4789),
    ]


def test_pcapng_power_of_two_resolution_and_a_second_section() -> None:
    data = b"".join(
        [
            shb("<"),
            idb("<", 1, tsresol=0x80 | 10),  # 1/1024 s
            epb("<", 0, 1024 * 5 + 512, FRAME),
            shb(">"),  # a new section (other byte order) forgets the interfaces of the first
            idb(">", 113),
            epb(">", 0, 3_000_000, sll(FRAME6)),
        ]
    )
    assert decoded(data) == [(5.5, 10, "198.51.100.1", 4789), (3.0, 20, "2001:db8::1", 8472)]


def test_pcapng_unknown_link_type_is_counted_not_fatal() -> None:
    data = shb("<") + idb("<", 147) + idb("<", 1) + epb("<", 0, 0, FRAME) + epb("<", 1, 0, FRAME)
    stats = PcapStats()
    assert len(decoded(data, stats=stats)) == 1
    assert (stats.packets, stats.vxlan, stats.not_vxlan, stats.malformed) == (2, 1, 1, 0)
    assert stats.reasons == {"linktype 147: not supported": 1}


# --- counts -----------------------------------------------------------------------------------


def test_non_vxlan_and_malformed_packets_are_counted_by_reason() -> None:
    dns = bytearray(encapsulate(INNER_ARP, vni=1, src="198.51.100.1", dst="198.51.100.2", dst_port=53))
    tcp = bytearray(FRAME)
    tcp[23] = 6
    arp_outer = INNER_ARP
    cut = FRAME[:60]  # IPv4 total length says more than was captured
    bad_version = bytearray(FRAME)
    bad_version[14] = 0x55
    records = [FRAME, bytes(dns), bytes(tcp), arp_outer, cut, bytes(bad_version), FRAME6, b"\x00" * 5]
    stats = PcapStats()
    got = decoded(pcap_bytes([(i, 0, r) for i, r in enumerate(records)]), stats=stats)
    assert [vni for _ts, vni, _src, _port in got] == [10, 20]
    assert (stats.packets, stats.vxlan, stats.not_vxlan, stats.malformed) == (8, 2, 3, 3)
    assert stats.reasons == {
        "udp: not VXLAN": 1,
        "ipv4: not VXLAN": 1,
        "ethernet: not VXLAN": 1,
        "ipv4: truncated": 1,
        "ipv4: invalid": 1,
        "ethernet: truncated": 1,
    }
    assert stats.examples["udp: not VXLAN"] == "udp at offset 36: destination port 53 is not a VXLAN port"
    assert stats.examples["ipv4: invalid"] == "ipv4 at offset 14: version 5 is not 4"


def test_ports_choose_what_is_vxlan_and_strict_counts_header_violations() -> None:
    data = pcap_bytes([(0, 0, FRAME), (1, 0, FRAME6)])
    stats = PcapStats()
    assert [vni for _t, vni, _s, _p in decoded(data, ports=(8472,), stats=stats)] == [20]
    assert stats.reasons == {"udp: not VXLAN": 1}
    no_i = encapsulate(INNER_ARP, header=GpeHeader(5, i_flag=False), src="198.51.100.1", dst="198.51.100.2")
    stats = PcapStats()
    assert decoded(pcap_bytes([(0, 0, no_i)]), strict=True, stats=stats) == []
    assert stats.reasons == {"vxlan: I flag clear": 1}


# --- bad files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", TruncatedError, "pcap at offset 0: file header needs 24 bytes, got 0"),
        (b"\xd4\xc3\xb2\xa1" + bytes(6), TruncatedError, "pcap at offset 0: file header needs 24 bytes, got 10"),
        (b"GIF89a" + bytes(30), DecodeError, "pcap at offset 0: not a pcap or pcapng file (magic 47494638)"),
        (
            pcap_bytes([], linktype=105),
            DecodeError,
            "pcap at offset 20: link type 105 is not supported (Ethernet, Linux SLL/SLL2, raw IP)",
        ),
        (
            b"\x0a\x0d\x0d\x0a" + bytes(4) + b"\x11\x22\x33\x44" + bytes(16),
            DecodeError,
            "pcap at offset 8: pcapng byte-order magic 11223344 is invalid",
        ),
    ],
    ids=["empty", "short-header", "gif", "linktype", "pcapng-bom"],
)
def test_bad_files_raise_at_once(data: bytes, error: type[DecodeError], message: str) -> None:
    with pytest.raises(error) as info:
        raw_records(io.BytesIO(data))
    assert str(info.value) == message
    assert info.value.layer == "pcap"


GOOD_PCAPNG = shb("<") + idb("<", 1) + epb("<", 0, 0, FRAME)  # 172 bytes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pcap_bytes([(0, 0, FRAME)]) + bytes(10), "pcap at offset 132: record header needs 16 bytes, got 10"),
        (pcap_bytes([(0, 0, FRAME)] * 2)[:-5], "pcap at offset 132: record of 92 bytes is cut after 87 bytes"),
        (
            pcap_bytes([(0, 0, FRAME)]) + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30),
            "pcap at offset 132: record length 1073741824 is not plausible",
        ),
        (GOOD_PCAPNG + bytes(8), "pcap at offset 172: block header needs 12 bytes, got 8"),
        (GOOD_PCAPNG + struct.pack("<III", 6, 13, 0), "pcap at offset 176: pcapng block length 13 is invalid"),
        (GOOD_PCAPNG + epb("<", 3, 0, FRAME), "pcap at offset 180: interface 3 was not described"),
        (
            GOOD_PCAPNG + epb("<", 0, 0, FRAME)[:-8],
            "pcap at offset 172: pcapng block of 124 bytes is cut after 116 bytes",
        ),
    ],
    ids=["record-header", "record-data", "huge-record", "block-header", "block-length", "interface", "cut-block"],
)
def test_a_cut_or_garbled_file_raises_after_the_good_packets(data: bytes, message: str) -> None:
    it = read(io.BytesIO(data))
    ts, d = next(it)
    assert (ts, d.header.vni) == (0.0, 10)
    with pytest.raises(DecodeError) as info:
        list(it)
    assert str(info.value) == message


def test_a_path_is_opened_and_closed(tmp_path: Path) -> None:
    path = tmp_path / "p.pcap"
    write(path, [(1.0, FRAME)])
    assert [d.header.vni for _ts, d in read(path)] == [10]
    assert [d.header.vni for _ts, d in read(str(path))] == [10]


# --- the shared captures (tcpdump's test suite) -------------------------------------------------


@pytest.mark.parametrize(("name", "port"), [("tcpdump_vxlan.pcap", 4789), ("tcpdump_vxlan_port_8472.pcap", 8472)])
def test_tcpdump_vxlan_captures(name: str, port: int) -> None:
    stats = PcapStats()
    got = list(read(vectors_dir() / "pcaps" / name, stats=stats))
    assert [(d.header.vni, d.dst_port) for _ts, d in got] == [(100, port)] * 10
    assert (stats.packets, stats.vxlan) == (10, 10)
    ts, first = got[0]
    assert (round(ts * 1e6), first.outer_src, first.outer_dst, first.src_port) == (
        1368908504837063,
        "192.168.203.1",
        "192.168.202.1",
        45149,
    )
    assert [len(d.inner) for _ts, d in got[:4]] == [98, 42, 42, 98]


def test_the_port_8472_capture_is_not_vxlan_when_only_4789_is_asked_for() -> None:
    stats = PcapStats()
    assert list(read(vectors_dir() / "pcaps" / "tcpdump_vxlan_port_8472.pcap", ports=(4789,), stats=stats)) == []
    assert (stats.packets, stats.not_vxlan, stats.reasons) == (10, 10, {"udp: not VXLAN": 10})


def test_gpe_nsh_capture() -> None:
    ((_ts, d),) = read(vectors_dir() / "pcaps" / "tcpdump_nsh-over-vxlan-gpe.pcap")
    assert isinstance(d.header, GpeHeader)
    assert (d.header.vni, d.header.next_protocol, d.dst_port, d.header.p_flag) == (
        16777215,
        GpeNextProtocol.NSH,
        4790,
        True,
    )


@pytest.mark.parametrize(
    ("name", "outer_src", "inner_len"),
    [
        ("tcpdump_bigtcp-ipv4-vxlan-ipv4.pcap", "10.25.132.11", 80066),
        ("tcpdump_gso-ipv4-vxlan-ipv4.pcap", "10.25.132.11", 7056),
        ("tcpdump_gso-ipv4-vxlan-ipv6.pcap", "10.25.132.11", 4220),
        ("tcpdump_gso-ipv6-vxlan-ipv4.pcap", "2604:1380:4091:ce00::b", 6956),
        ("tcpdump_gso-ipv6-vxlan-ipv6.pcap", "2604:1380:4091:ce00::b", 4160),
    ],
)
def test_gso_and_big_tcp_captures(name: str, outer_src: str, inner_len: int) -> None:
    path = vectors_dir() / "pcaps" / name
    ((_ts, d),) = read(path)
    assert (d.header.vni, d.outer_src, len(d.inner)) == (5001, outer_src, inner_len)
    # The inner frame runs to the end of the capture: what the length fields could not say.
    with path.open("rb") as f:
        ((_t, _lt, buf, start, end, wirelen),) = raw_records(f)
    assert wirelen == end - start
    assert d.inner_offset + len(d.inner) == end - start
    if "bigtcp" in name:
        assert buf[start + 16 : start + 18] == b"\x00\x00"  # outer IPv4 total length 0


# --- captures cut by a snap length ---------------------------------------------------------------


def _echo_inner() -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + b"pyvxlan!"
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0, bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2])
    )
    return bytes.fromhex("0200000000020200000000010800") + ip + icmp


@pytest.mark.parametrize(("snaplen", "inner_len"), [(96, 46), (80, 30), (64, 14)])
def test_frames_cut_by_the_snap_length_still_decode(snaplen: int, inner_len: int) -> None:
    """tcpdump -s N keeps the first N bytes and the wire length: the outer headers still decode."""
    inner = _echo_inner()
    v4 = encapsulate(inner, vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
    v6 = encapsulate(inner, vni=20, src="2001:db8::1", dst="2001:db8::2", src_port=50001)
    buf = io.BytesIO()
    write(buf, [(1.0, v4), (2.0, v6), (3.0, FRAME)], snaplen=snaplen + 20)  # v6 is 20 bytes longer
    buf.seek(0)
    got = [(d.header.vni, d.outer_dst, bytes(d.inner)) for _ts, d in read(buf)]
    assert got[0] == (10, "198.51.100.2", inner[: inner_len + 20])
    assert got[1] == (20, "2001:db8::2", inner[:inner_len])
    buf = io.BytesIO()
    write(buf, [(1.0, v4)], snaplen=snaplen)
    buf.seek(0)
    ((_ts, d),) = read(buf)
    assert (d.header.vni, bytes(d.inner)) == (10, inner[:inner_len])


def test_a_cooked_capture_cut_by_the_snap_length() -> None:
    inner = _echo_inner()
    v4 = encapsulate(inner, vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
    data = sll2(v4)[:100]
    raw = pcap_bytes([(1, 0, data)], linktype=LINUX_SLL2)
    # pcap_bytes writes the captured length as the wire length: patch in the real one
    raw = raw[: 24 + 12] + struct.pack("<I", len(sll2(v4))) + raw[24 + 16 :]
    ((_ts, d),) = read(io.BytesIO(raw))
    assert (d.header.vni, bytes(d.inner)) == (10, inner[: 100 - 20 - 36])


def test_a_snap_length_does_not_excuse_lengths_beyond_the_wire() -> None:
    from pyvxlan import decapsulate

    inner = _echo_inner()
    v4 = encapsulate(inner, vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
    with pytest.raises(TruncatedError) as info:
        decapsulate(v4[:80], wire_length=len(v4) - 1)
    assert str(info.value) == "ipv4 at offset 14: total length 86 exceeds the 66 bytes captured"
    assert bytes(decapsulate(v4, wire_length=len(v4) + 100).inner) == inner


_GOOD_FILES = [
    pcap_bytes([(0, 0, FRAME), (1, 0, FRAME6)]),
    pcap_bytes([(0, 0, FRAME)], order=">", nsec=True),
    pcap_bytes([(0, 0, sll2(FRAME))], linktype=LINUX_SLL2),
    shb("<") + idb("<", 1) + idb("<", 113, tsresol=9) + epb("<", 0, 5, FRAME) + epb("<", 1, 5, sll(FRAME6)),
    shb(">") + idb(">", 1) + spb(">", FRAME),
]


@settings(max_examples=200)
@given(
    st.sampled_from(_GOOD_FILES),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6),
    st.integers(0, 400),
)
def test_any_damage_gives_packets_counts_or_a_decode_error(
    data: bytes, changes: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(data)
    for pos, value in changes:
        if pos < len(raw):
            raw[pos] = value
    stats = PcapStats()
    n = 0
    try:
        for _ts, d in read(io.BytesIO(bytes(raw[: len(raw) - cut % (len(raw) + 1)])), stats=stats):
            assert isinstance(d.header.vni, int)
            n += 1
    except DecodeError as exc:
        assert exc.layer == "pcap"
    assert stats.vxlan == n
    assert stats.packets == stats.vxlan + stats.not_vxlan + stats.malformed


# --- hostile pcapng: absurd timestamps, options and interface counts (issue 10.6 and 10.9) ----------


def _idb_with_options(order: str, options: bytes) -> bytes:
    return _block(order, 1, struct.pack(order + "HHI", 1, 0, 0) + options)


TS_CASES = [
    (
        shb("<") + idb("<", 1, tsresol=0) + epb("<", 0, 2**64 - 1, FRAME),
        "pcap at offset 72: packet timestamp 18446744073709551615 (units of 1 s, if_tsoffset 0 s) is after the year 9999",
    ),
    (
        shb("<") + idb("<", 1, tsresol=0) + epb("<", 0, 10**17, FRAME),
        "pcap at offset 72: packet timestamp 100000000000000000 (units of 1 s, if_tsoffset 0 s) is after the year 9999",
    ),
    (
        shb(">") + idb(">", 1, tsresol=0) + epb(">", 0, 253402300800, FRAME),
        "pcap at offset 72: packet timestamp 253402300800 (units of 1 s, if_tsoffset 0 s) is after the year 9999",
    ),
    (
        shb("<") + idb("<", 1, tsoffset=-(2**63)) + epb("<", 0, 0, FRAME),
        "pcap at offset 76: packet timestamp 0 (units of 1/1000000 s, if_tsoffset -9223372036854775808 s) "
        "is before the year 1",
    ),
    (
        shb("<") + idb("<", 1, tsresol=0x80) + epb("<", 0, 2**64 - 1, FRAME),
        "pcap at offset 72: packet timestamp 18446744073709551615 (units of 1 s, if_tsoffset 0 s) is after the year 9999",
    ),
    (
        shb("<") + _idb_with_options("<", struct.pack("<HH", 9, 2) + b"\x06\x00\x00\x00") + epb("<", 0, 0, FRAME),
        "pcap at offset 44: pcapng option if_tsresol has 2 bytes, not 1",
    ),
    (
        shb("<") + _idb_with_options("<", struct.pack("<HH", 14, 4) + bytes(4)) + epb("<", 0, 0, FRAME),
        "pcap at offset 44: pcapng option if_tsoffset has 4 bytes, not 8",
    ),
    (
        shb("<") + _idb_with_options("<", struct.pack("<HH", 9, 200) + b"\x06\x00\x00\x00") + epb("<", 0, 0, FRAME),
        "pcap at offset 44: pcapng interface option 9 of 200 bytes runs past the end of its block",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"),
    TS_CASES,
    ids=["2^64-1", "1e17", "year-10000", "offset", "2^0", "resol-len", "offset-len", "past-end"],
)
def test_absurd_pcapng_timestamps_and_options_are_decode_errors(data: bytes, message: str) -> None:
    """Issue 10.6: if_tsresol 0 with a 64-bit timestamp was an OverflowError (2^64-1) or an OSError
    (10^17) in `pyvxlan decode`; every such file is a DecodeError naming the field."""
    with pytest.raises(DecodeError) as info:
        list(read(io.BytesIO(data)))
    assert str(info.value) == message


def test_timestamps_up_to_the_end_of_the_year_9999_are_read() -> None:
    last = 253402300799
    data = shb("<") + idb("<", 1, tsresol=0) + epb("<", 0, last, FRAME)
    data += idb("<", 1, tsoffset=-62135596800, tsresol=0) + epb("<", 1, 0, FRAME)
    assert decoded(data) == [(float(last), 10, "198.51.100.1", 4789), (-62135596800.0, 10, "198.51.100.1", 4789)]


def test_a_section_with_too_many_interfaces_is_refused() -> None:
    """Issue 10.9: 5 million interface blocks took 591 MB. A section may describe MAX_INTERFACES
    (65536, what the obsolete packet block can number; alike interfaces share one state tuple), and
    one more is a DecodeError naming the block."""
    from pyvxlan.wire.pcap import MAX_INTERFACES

    one = idb("<", 1)
    data = shb("<") + one * MAX_INTERFACES + epb("<", MAX_INTERFACES - 1, 5_000_000, FRAME)
    assert decoded(data) == [(5.0, 10, "198.51.100.1", 4789)]
    with pytest.raises(DecodeError) as info:
        list(read(io.BytesIO(data + one * 3)))
    assert str(info.value) == (
        f"pcap at offset {len(data)}: pcapng interface block: the section describes more than 65536 interfaces"
    )
    # A new section starts a new table.
    again = data + shb("<") + one + epb("<", 0, 0, FRAME)
    assert decoded(again) == [(5.0, 10, "198.51.100.1", 4789), (0.0, 10, "198.51.100.1", 4789)]


# Any value of a wrong type or range: what a caller might pass by mistake (no str paths: they
# would name files).
_WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=8),
    st.lists(st.integers(-5, 70000), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.tuples(st.floats(), st.binary(max_size=4)),
    st.just(object()),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["linktype", "snaplen", "target", "frame", "ts", "records"]), _WRONG)
def test_any_wrong_writer_argument_is_a_config_error_naming_it(name: str, value: object) -> None:
    """Issue 10, API validation: whatever a writer argument holds, the call works or raises
    ConfigError naming that argument (never a bare TypeError, ValueError or OverflowError)."""
    args: dict[str, Any] = {"target": io.BytesIO(), "linktype": 1, "snaplen": 65535}
    record: dict[str, Any] = {"frame": b"\x00" * 20, "ts": 1.5}
    if name in args:
        args[name] = value
    else:
        record[name] = value
    try:
        if name == "records":
            any_write(args["target"], value)
        else:
            with any_pcapwriter(args["target"], linktype=args["linktype"], snaplen=args["snaplen"]) as w:
                w.write(record["frame"], ts=record["ts"])
    except ConfigError as exc:
        assert exc.field == name, exc


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["source", "ports", "gpe_ports", "strict", "stats"]), _WRONG)
def test_any_wrong_reader_argument_is_a_library_error_naming_it(name: str, value: object) -> None:
    """The same for read(): ConfigError naming the argument, or DecodeError for bytes that are not a
    capture (a bytes source is not a file object, so that is a ConfigError too)."""
    args: dict[str, Any] = {"source": io.BytesIO(pcap_bytes([(0, 0, FRAME)])), "ports": (4789,)}
    args |= {"gpe_ports": (4790,), "strict": False, "stats": None}
    args[name] = value
    try:
        got = [d.header.vni for _ts, d in any_read(**args)]
    except ConfigError as exc:
        assert exc.field == name, exc
    else:
        assert got in ([10], [])


def test_a_short_write_of_the_pcap_file_is_an_error() -> None:
    """Nothing written is silently lost (issue 10.8): a file object that takes fewer bytes than it
    is given makes the writer raise, not a capture with a hole in it."""

    class Short(io.BytesIO):
        def write(self, data: Any) -> int:
            return super().write(bytes(data)[:-1]) if len(data) == 20 else super().write(data)

    w = PcapWriter(Short())
    with pytest.raises(OSError, match=r"^\[Errno 5\] short write to the pcap file: 19 of 20 bytes written$"):
        w.write(bytes(20), ts=0.0)


# --- streaming (issue 13) ----------------------------------------------------------------------


def _stream_capture(n: int) -> bytes:
    buf = io.BytesIO()
    frame = encapsulate(bytes(14), vni=7, src="198.51.100.1", dst="198.51.100.2")
    write(buf, [(float(i), frame) for i in range(n)])
    return buf.getvalue()


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "raw"])
def test_a_pipe_streams_records_and_says_when_it_would_wait(buffered: bool) -> None:
    """A record that has arrived is yielded though the writer keeps the pipe open (a read of a
    whole chunk used to wait for 1 MiB or the end), and ``idle`` is called before a read that
    would wait: the writer here sends the second record only once idle was called."""
    data = _stream_capture(2)
    one = 24 + (len(data) - 24) // 2
    r, w = os.pipe()
    idled = threading.Event()

    def writer() -> None:
        os.write(w, data[:one])
        idled.wait(10)
        os.write(w, data[one:])
        os.close(w)

    thread = threading.Thread(target=writer)
    thread.start()
    with open(r, "rb", buffering=-1 if buffered else 0) as f:
        records = [ts for ts, *_ in raw_records(f, idle=idled.set)]
    thread.join()
    assert (records, idled.is_set()) == ([0.0, 1.0], True)


def test_a_file_is_read_in_large_chunks_without_idle_calls(tmp_path: Path) -> None:
    path = tmp_path / "s.pcap"
    path.write_bytes(_stream_capture(3))
    calls: list[int] = []
    with path.open("rb") as f:
        assert [ts for ts, *_ in raw_records(f, idle=lambda: calls.append(1))] == [0.0, 1.0, 2.0]
    assert calls == []  # a regular file never makes the reader wait


def test_idle_must_be_callable() -> None:
    with pytest.raises(ConfigError) as info:
        raw_records(io.BytesIO(_stream_capture(1)), idle=3)  # type: ignore[arg-type]
    assert str(info.value) == "idle: must be callable or None, got int"


def test_a_huge_negative_timestamp_is_refused_before_it_is_scaled() -> None:
    """-1.8e302 s times 1e6 is -inf, which round() cannot take (an OverflowError escaped)."""
    with pytest.raises(ConfigError) as info:
        write(io.BytesIO(), [(-1.797693134862316e302, bytes(14))])
    assert str(info.value) == "ts: must not be negative, got -1.797693134862316e+302"
