"""``pyvxlan decode`` on BGP in the underlay: EVPN routes, one line each, reassembled from TCP.

Exact lines for generated sessions (IPv4 and IPv6 underlay, messages split across segments and
packed into one), gaps and retransmissions counted not crashed on, hostile segments harmless, and
the fields checked against tshark's BGP dissector for FRR's research capture and for generated ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import encapsulate
from pyvxlan.cli import main
from pyvxlan.cli.decode import DecodeOptions, DecodePrinter, bgp_text
from pyvxlan.evpn import (
    ENCAP_VXLAN,
    ExtendedCommunities,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    Keepalive,
    MacIpRoute,
    MacMobility,
    Message,
    MpReachNlri,
    Notification,
    Open,
    Origin,
    PmsiTunnel,
    RouteDistinguisher,
    RouterMac,
    RouteTarget,
    Update,
    decode_message,
)
from pyvxlan.evpn import strategies as evst
from pyvxlan.evpn.stream import BgpStreams, Flow, Undecodable, UndecodableKind
from pyvxlan.wire.frame import internet_checksum, pseudo_header
from pyvxlan.wire.pcap import raw_records, write

FRR_PCAP = Path(__file__).resolve().parents[3] / "shared" / "research" / "evpn-frr-8.4.4-ibgp.pcap"
V4 = (bytes((198, 51, 100, 1)), bytes((198, 51, 100, 2)))
V6 = (bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002"))
SYN, ACK_PSH, FIN = 0x02, 0x18, 0x11
T0 = 1764237600.0

RD = RouteDistinguisher.ipv4("198.51.100.1", 2)
RT = RouteTarget.as2(65000, 100)
MAC_ROUTE = MacIpRoute(RD, "02:aa:00:00:00:10", "203.0.113.10", (100, 4000))
IMET = InclusiveMulticastRoute(RD, "198.51.100.1")
PREFIX = IpPrefixRoute(RD, "192.0.2.0", 24, "198.51.100.1", label=5000)
SESSION: list[Message] = [
    Open.build(65000, "198.51.100.1", 90),
    Keepalive(),
    Update.announce(
        [MAC_ROUTE],
        next_hop="198.51.100.1",
        communities=[RT, ENCAP_VXLAN, MacMobility(3, sticky=True), RouterMac("02:00:00:00:00:fe")],
    ),
    Update.announce(
        [IMET], next_hop="198.51.100.1", communities=[RT, ENCAP_VXLAN], pmsi=PmsiTunnel("198.51.100.1", 100)
    ),
    Update.announce([PREFIX], next_hop="198.51.100.1", communities=[RouteTarget.as2(65000, 5000), ENCAP_VXLAN]),
    Update.withdraw([MAC_ROUTE, IMET]),
    Update.end_of_rib(),
    Notification(6, 2),
]
SESSION_LINES = [
    "BGP OPEN version 4 as 65000 hold 90 id 198.51.100.1 l2vpn-evpn",
    "BGP KEEPALIVE",
    "BGP UPDATE type 2 rd 198.51.100.1:2 mac 02:aa:00:00:00:10 ip 203.0.113.10 vni 100 l3vni 4000"
    " next-hop 198.51.100.1 rt 65000:100 encap vxlan mobility seq 3 sticky router-mac 02:00:00:00:00:fe",
    "BGP UPDATE type 3 rd 198.51.100.1:2 originator 198.51.100.1 next-hop 198.51.100.1 rt 65000:100 encap vxlan"
    " pmsi ingress-replication vni 100 endpoint 198.51.100.1",
    "BGP UPDATE type 5 rd 198.51.100.1:2 prefix 192.0.2.0/24 gateway 198.51.100.1 vni 5000"
    " next-hop 198.51.100.1 rt 65000:5000 encap vxlan",
    "BGP UPDATE withdraw type 2 rd 198.51.100.1:2 mac 02:aa:00:00:00:10 ip 203.0.113.10",
    "BGP UPDATE withdraw type 3 rd 198.51.100.1:2 originator 198.51.100.1",
    "BGP UPDATE End-of-RIB L2VPN EVPN",
    "BGP NOTIFICATION code 6 (cease) subcode 2",
]


def tcp(
    payload: bytes, seq: int, *, flags: int = ACK_PSH, v6: bool = False, sport: int = 40000, dport: int = 179
) -> bytes:
    """An Ethernet frame carrying one TCP segment between the two VTEPs, checksums right."""
    src, dst = V6 if v6 else V4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 0x50, flags, 65535, 0, 0) + payload
    seg = seg[:16] + struct.pack("!H", internet_checksum(pseudo_header(src, dst, len(seg), 6) + seg)) + seg[18:]
    macs = bytes.fromhex("020000000002020000000001")
    if v6:
        return macs + b"\x86\xdd" + struct.pack("!IHBB", 0x60000000, len(seg), 6, 64) + src + dst + seg
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    return macs + b"\x08\x00" + ip + seg


def session_frames(chunks: list[bytes], *, v6: bool = False, isn: int = 1000) -> list[bytes]:
    """SYN, then ``chunks`` of the stream as consecutive segments."""
    frames = [tcp(b"", isn, flags=SYN, v6=v6)]
    seq = isn + 1
    for chunk in chunks:
        frames.append(tcp(chunk, seq, v6=v6))
        seq += len(chunk)
    return frames


def decode(frames: list[bytes], *args: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "bgp.pcap"
    write(path, [(T0 + i / 1000, f) for i, f in enumerate(frames)])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["decode", *args, str(path)]) == 0
    return out.getvalue().splitlines()


def texts(lines: list[str]) -> list[str]:
    """What follows the time and the addresses of each BGP line."""
    return [line[line.index(" BGP ") + 1 :] for line in lines if " BGP " in line and "packets: " not in line]


def test_a_session_one_message_per_segment(tmp_path: Path) -> None:
    lines = decode(session_frames([m.encode() for m in SESSION]), tmp_path=tmp_path)
    assert texts(lines) == SESSION_LINES
    assert lines[0] == "10:00:00.001000 198.51.100.1:40000 > 198.51.100.2:179 " + SESSION_LINES[0]
    assert lines[-1] == "9 packets: 0 VXLAN, 9 not VXLAN, 0 malformed, 8 BGP messages"


def test_messages_span_segments_and_share_them_ipv6(tmp_path: Path) -> None:
    stream = b"".join(m.encode() for m in SESSION)
    # Cuts inside the marker, inside the length, inside the body, and several messages at once.
    cuts = [0, 7, 17, 40, 200, 201, 420, len(stream)]
    chunks = [stream[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    lines = decode(session_frames(chunks, v6=True), tmp_path=tmp_path)
    assert texts(lines) == SESSION_LINES
    assert lines[0].startswith("10:00:00.004000 [2001:db8::1]:40000 > [2001:db8::2]:179 BGP OPEN")
    assert lines[-1] == f"{len(chunks) + 1} packets: 0 VXLAN, {len(chunks) + 1} not VXLAN, 0 malformed, 8 BGP messages"


def test_json_lines_hold_the_same_fields(tmp_path: Path) -> None:
    lines = decode(session_frames([m.encode() for m in SESSION]), "--json", tmp_path=tmp_path)
    objs = [json.loads(line) for line in lines]
    routes = [o for o in objs if "type" in o]
    assert [f"BGP {bgp_text(o)}" for o in routes] == SESSION_LINES
    assert routes[2] == {
        "time": T0 + 0.003,
        "type": "bgp",
        "src": "198.51.100.1",
        "dst": "198.51.100.2",
        "src_port": 40000,
        "dst_port": 179,
        "message": "UPDATE",
        "withdrawn": False,
        "route_type": 2,
        "rd": "198.51.100.1:2",
        "esi": "00" * 10,
        "ethernet_tag": 0,
        "mac": "02:aa:00:00:00:10",
        "ip": "203.0.113.10",
        "labels": [100, 4000],
        "vni": 100,
        "next_hop": "198.51.100.1",
        "route_targets": ["65000:100"],
        "encapsulation": 8,
        "mac_mobility": {"sequence": 3, "sticky": True},
        "router_mac": "02:00:00:00:00:fe",
    }
    assert routes[3]["pmsi"] == {"tunnel_type": 6, "vni": 100, "endpoint": "198.51.100.1"}
    assert objs[-1] == {
        "totals": {"packets": 9, "vxlan": 0, "not_vxlan": 9, "malformed": 0, "shown": 9, "bgp": 8},
        "reasons": {"ipv4: not VXLAN": 9},
    }


def test_retransmission_reordering_and_a_gap(tmp_path: Path) -> None:
    raw = [m.encode() for m in SESSION]
    frames = session_frames(raw)
    # frame i+1 holds SESSION[i]. Send the KEEPALIVE twice, the third UPDATE before the second,
    # and lose the type-5 UPDATE altogether: the rest is still printed, the loss is counted.
    order = [0, 1, 2, 2, 4, 3, 6, 7, 8]  # 5 (type 5) never arrives
    lines = decode([frames[i] for i in order], "--json", tmp_path=tmp_path)
    objs = [json.loads(line) for line in lines]
    got = [bgp_text(o) for o in objs if "type" in o]
    assert got == [t.removeprefix("BGP ") for t in SESSION_LINES[:4] + SESSION_LINES[5:]]
    assert objs[-1]["reasons"] == {
        "bgp: gap": 1,
        "bgp: retransmitted": 1,
        "ipv4: not VXLAN": 9,
    }
    assert objs[-1]["totals"]["bgp"] == 7


def test_a_capture_that_starts_mid_session(tmp_path: Path) -> None:
    stream = b"".join(m.encode() for m in SESSION[:3])
    frames = [tcp(stream[30:60], 5030), tcp(stream[60:], 5060)]  # no SYN, the OPEN cut
    lines = decode(frames, tmp_path=tmp_path)
    assert texts(lines) == SESSION_LINES[1:3]
    out = decode(frames, "--json", tmp_path=tmp_path)
    assert json.loads(out[-1])["reasons"] == {"bgp: skipped": 2, "ipv4: not VXLAN": 2}


def test_a_broken_message_prints_why_and_decoding_goes_on(tmp_path: Path) -> None:
    bad = bytearray(SESSION[2].encode())
    bad[60] = 40  # the MAC length, in bits
    lines = decode(session_frames([bytes(bad), Keepalive().encode()]), tmp_path=tmp_path)
    assert texts(lines) == ["BGP malformed: bgp at offset 60: MAC length 40 bits is not 48", "BGP KEEPALIVE"]
    assert lines[-1] == "3 packets: 0 VXLAN, 3 not VXLAN, 0 malformed, 1 BGP messages"


def test_a_flow_that_ends_inside_a_message(tmp_path: Path) -> None:
    raw = SESSION[2].encode()
    frames = [*session_frames([raw[:50]]), tcp(b"", 1051, flags=FIN)]
    out = decode(frames, "--json", tmp_path=tmp_path)
    assert json.loads(out[-1])["reasons"] == {"bgp: unfinished": 1, "ipv4: not VXLAN": 3}
    out = decode(session_frames([raw[:50]]), "--json", tmp_path=tmp_path)  # the capture ends there
    assert json.loads(out[-1])["reasons"] == {"bgp: unfinished": 1, "ipv4: not VXLAN": 2}


def test_selection_and_count_apply_to_routes(tmp_path: Path) -> None:
    frames = session_frames([m.encode() for m in SESSION])
    assert texts(decode(frames, "--vni", "5000", tmp_path=tmp_path)) == [SESSION_LINES[4]]
    assert texts(decode(frames, "--mac", "02:aa:00:00:00:10", tmp_path=tmp_path)) == [
        SESSION_LINES[2],
        SESSION_LINES[5],
    ]
    assert texts(decode(frames, "--host", "203.0.113.10", tmp_path=tmp_path)) == [
        SESSION_LINES[2],
        SESSION_LINES[5],
    ]
    assert len(texts(decode(frames, "--host", "198.51.100.2", tmp_path=tmp_path))) == 9  # the TCP flow's address
    lines = decode(frames, "-c", "3", tmp_path=tmp_path)
    assert texts(lines) == SESSION_LINES[:3]
    assert lines[-1] == "4 packets: 0 VXLAN, 4 not VXLAN, 0 malformed, 3 BGP messages, 3 shown"


def test_bgp_beside_vxlan_and_other_tcp(tmp_path: Path) -> None:
    vxlan = encapsulate(
        bytes.fromhex("0200000000020200000000010806") + bytes(28), vni=10, src="198.51.100.1", dst="198.51.100.2"
    )
    frames = [vxlan, tcp(Keepalive().encode(), 7, sport=40001, dport=22), *session_frames([Keepalive().encode()])]
    lines = decode(frames, tmp_path=tmp_path)
    assert texts(lines) == ["BGP KEEPALIVE"]
    assert lines[-1] == "4 packets: 1 VXLAN, 3 not VXLAN, 0 malformed, 1 BGP messages"


def test_vxlan_alone_never_loads_the_evpn_package(tmp_path: Path) -> None:
    """The fast path pays nothing for BGP: a VXLAN capture does not even import pyvxlan.evpn."""
    path = tmp_path / "vxlan.pcap"
    frame = encapsulate(bytes(60), vni=10, src="198.51.100.1", dst="198.51.100.2")
    write(path, [(T0, frame), (T0 + 1, frame[:14] + bytes(20))])
    code = (
        "import sys, io, contextlib\nfrom pyvxlan.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['decode', {str(path)!r}])\n"
        "print(sorted(m for m in sys.modules if m.startswith('pyvxlan.evpn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"


# --- the reassembly itself ------------------------------------------------------------------


FLOW = Flow(V4[0], 40000, V4[1], 179)


@settings(max_examples=60)
@given(st.lists(evst.bgp_messages(), min_size=1, max_size=6), st.data())
def test_any_segmentation_gives_the_messages_back(messages: list[Message], data: st.DataObject) -> None:
    stream = b"".join(m.encode() for m in messages)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    segs = [(1001 + a, stream[a:b]) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    # Retransmissions cut elsewhere: they overlap what came before, or what comes after.
    extra = data.draw(st.lists(st.tuples(st.integers(0, len(stream)), st.integers(1, 200)), max_size=4))
    segs += [(1001 + a, stream[a : a + n]) for a, n in extra if a < len(stream)]
    # Early segments are held: any order within the window gives the same messages.
    order = data.draw(st.permutations(range(len(segs))))
    streams = BgpStreams()
    got = streams.feed(FLOW, 1000, b"", syn=True)
    for n, i in enumerate(order):
        got += streams.feed(FLOW, *segs[i])
        if n == 0:
            got += streams.feed(FLOW, 1000, b"", syn=True)  # the SYN seen twice resets nothing
    got += streams.finish().get(FLOW, [])
    messages_got = [item for item in got if not isinstance(item, Undecodable)]
    assert messages_got == [decode_message(m.encode()) for m in messages]
    assert {item.kind for item in got if isinstance(item, Undecodable)} <= {UndecodableKind.RETRANSMITTED}
    assert streams.held() == 0


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(st.integers(-300, 300), st.binary(max_size=120), st.sampled_from([0, SYN, FIN, 0x04, ACK_PSH])),
        max_size=30,
    ),
    st.lists(evst.bgp_messages(), max_size=3),
)
def test_hostile_segments_are_harmless(segments: list[tuple[int, bytes, int]], messages: list[Message]) -> None:
    """Garbage, real messages at random offsets, repeats and jumps: the command prints lines and
    totals, never a traceback; the lines are messages the bytes held or a reason."""
    real = b"".join(m.encode() for m in messages)
    frames = []
    seq = 0xFFFFFF00  # the sequence numbers wrap
    for step, payload, flags in segments:
        seq = (seq + step) % (1 << 32)
        frames.append(tcp(payload + real[: len(payload)], seq, flags=flags))
    printer = DecodePrinter([4789], [4790], DecodeOptions(as_json=True))
    out: list[str] = []
    printer.record_lines(((T0, 1, f, 0, len(f), len(f)) for f in frames), out.append)
    printer.finish()
    objs = [json.loads(line) for chunk in out for line in chunk.splitlines()]
    assert all(o["type"] == "bgp" and ("message" in o or "malformed" in o) for o in objs)
    assert printer.stats.packets == len(frames) == printer.stats.not_vxlan


def test_memory_per_flow_is_bounded() -> None:
    """A flow that never fills its gap holds at most the early window; one message at most 64 KiB."""
    streams = BgpStreams()
    streams.feed(FLOW, 0, b"", syn=True)
    items = []
    for i in range(2000):
        items += streams.feed(FLOW, 1000 + i * 1000, bytes(1000))  # byte 1..999 never arrive
    assert streams.held() <= (1 << 17) + 1000
    assert any(getattr(item, "kind", None) is UndecodableKind.GAP for item in items)
    big = b"\xff" * 16 + struct.pack("!HB", 65535, 2)  # a message as long as BGP allows
    other = Flow(V4[1], 179, V4[0], 40000)
    streams.feed(other, 0, b"", syn=True)
    for i in range(100):
        streams.feed(other, 1 + i * 1000, (big + bytes(1000))[i * 1000 : (i + 1) * 1000] if i < 1 else bytes(1000))
    assert streams.held() <= (1 << 17) + 1000 + 65535 + 1000


# --- FRR's own session and tshark ----------------------------------------------------------------


def frr_capture() -> Path:
    if not FRR_PCAP.is_file() and os.environ.get("CI") != "true":
        pytest.skip(f"FRR's capture {FRR_PCAP} is not on this machine")
    return FRR_PCAP


def test_frr_session_lines() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["decode", "--time-format", "rel", str(frr_capture())]) == 0
    lines = out.getvalue().splitlines()
    assert lines[-1] == "59 packets: 0 VXLAN, 59 not VXLAN, 0 malformed, 31 BGP messages"
    assert (
        "00:00:30.161217 172.16.0.2:56434 > 172.16.0.1:179 BGP UPDATE type 2 rd 10.0.0.2:2 mac 02:aa:00:00:00:10"
        " vni 100 next-hop 10.0.0.2 rt 65000:100 encap vxlan mobility seq 1"
    ) in lines
    assert sum(" BGP UPDATE withdraw " in line for line in lines) == 10
    assert sum(" mobility seq 0 sticky" in line for line in lines) == 1


TSHARK_FIELDS = [
    "frame.number",
    "bgp.type",
    "bgp.evpn.nlri.rt",
    "bgp.evpn.nlri.mac_addr",
    "bgp.evpn.nlri.ip.addr",
    "bgp.evpn.nlri.ipv6.addr",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4",
    "bgp.ext_com_evpn.mmac.seq",
    "bgp.ext_com_evpn.mmac.flags.sticky",
    "bgp.ext_com_evpn.esi.router_mac",
    "bgp.update.path_attribute.pmsi.tunnel.type",
    "bgp.update.path_attribute.pmsi.ingress_rep_ip",
    "bgp.evpn.nlri.prefix_len",
    "bgp.evpn.nlri.ipv4.gtw_addr",
]


def tshark_frames(path: Path) -> dict[int, list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed")
    args = [exe, "-n", "-r", str(path), "-Y", "bgp", "-T", "fields", "-E", "separator=\t"]
    for name in TSHARK_FIELDS:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return {int(row.split("\t")[0]): row.split("\t")[1:] for row in out.splitlines()}


def ours_as_tshark(path: Path) -> dict[int, list[str]]:
    """pyvxlan decode's JSON lines, grouped by frame and written as tshark writes those fields:
    route fields in order, one per route; message types and UPDATE attributes (once per UPDATE
    in tshark, once per route line here) as sorted sets."""
    stamps = {}
    with path.open("rb") as f:
        for number, (ts, *_rest) in enumerate(raw_records(f), 1):
            stamps[round(ts * 1_000_000)] = number
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["decode", "--json", str(path)])
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for line in out.getvalue().splitlines()[:-1]:
        obj = json.loads(line)
        by_frame.setdefault(stamps[round(obj["time"] * 1_000_000)], []).append(obj)
    return {number: as_tshark(objs) for number, objs in by_frame.items()}


def as_tshark(objs: list[dict[str, Any]]) -> list[str]:
    codes = {"OPEN": "1", "UPDATE": "2", "NOTIFICATION": "3", "KEEPALIVE": "4"}
    routes = [o for o in objs if "route_type" in o]
    mobility = [o["mac_mobility"] for o in routes if o.get("mac_mobility")]
    pmsi = [o["pmsi"] for o in routes if o.get("pmsi")]
    addresses = [str(o.get("ip") or o.get("originator") or o.get("prefix", "").split("/")[0]) for o in routes]
    addresses = [a for a in addresses if a]
    return [
        ",".join(sorted({codes[o["message"]] for o in objs})),
        ",".join(str(o["route_type"]) for o in routes),
        ",".join(o["mac"] for o in routes if "mac" in o),
        ",".join(a for a in addresses if ":" not in a),
        ",".join(a for a in addresses if ":" in a),
        ",".join(sorted({o["next_hop"] for o in routes if o["next_hop"]})),
        ",".join(sorted({str(m["sequence"]) for m in mobility})),
        ",".join(sorted({"1" if m["sticky"] else "0" for m in mobility})),
        ",".join(sorted({o["router_mac"] for o in routes if o.get("router_mac")})),
        ",".join(sorted({str(p["tunnel_type"]) for p in pmsi})),
        ",".join(sorted({p["endpoint"] for p in pmsi})),
        ",".join(o["prefix"].split("/")[1] for o in routes if o.get("prefix")),
        ",".join(o["gateway"] for o in routes if o.get("gateway")),
    ]


def tshark_as_sets(rows: dict[int, list[str]]) -> dict[int, list[str]]:
    """tshark's rows with the per-UPDATE fields as sorted sets, as :func:`as_tshark` writes them."""
    out = {}
    for number, row in rows.items():
        fields = list(row)
        for i in (0, 5, 6, 7, 8, 9, 10):
            fields[i] = ",".join(sorted(set(fields[i].split(",")) - {""}))
        out[number] = fields
    return out


@pytest.mark.tshark
def test_tshark_reads_frrs_session_as_decode_prints_it() -> None:
    path = frr_capture()
    ours = ours_as_tshark(path)
    theirs = tshark_as_sets(tshark_frames(path))
    assert len(ours) == 26
    assert ours == theirs


@st.composite
def announcements(draw: st.DrawFn) -> Update:
    """An UPDATE as an EVPN speaker sends it (IPv4 VTEPs, the communities first, a PMSI for type 3)."""
    route = draw(
        st.one_of(
            evst.mac_ip_routes(),
            evst.inclusive_multicast_routes(),
            evst.ip_prefix_routes().filter(lambda r: ":" not in r.prefix),
        )
    )
    vtep = draw(st.integers(1, 254).map(lambda i: f"198.51.100.{i}"))
    extra = draw(
        st.lists(
            st.one_of(
                st.builds(MacMobility, st.integers(0, 2**32 - 1), st.booleans()), st.builds(RouterMac, evst.macs())
            ),
            max_size=2,
            unique_by=type,
        )
    )
    if isinstance(route, InclusiveMulticastRoute):
        extra = []  # a type-3 line shows no MAC mobility or router MAC: they belong to MACs
    if isinstance(route, IpPrefixRoute):
        extra = [c for c in extra if isinstance(c, RouterMac)]  # nor a type-5 line MAC mobility
    attrs: list[Any] = [ExtendedCommunities((RT, ENCAP_VXLAN, *extra)), MpReachNlri(vtep, (route,)), Origin()]
    if isinstance(route, InclusiveMulticastRoute):
        attrs.append(PmsiTunnel(vtep, draw(evst.vnis())))
    return Update(tuple(attrs))


@pytest.mark.tshark
@settings(max_examples=5)
@given(messages=st.lists(st.sampled_from(SESSION[1:7]) | announcements(), min_size=1, max_size=12))
def test_tshark_reads_generated_sessions_as_decode_prints_them(
    messages: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # One message per segment: tshark reassembles too, but only with its TCP preferences set.
    path = tmp_path_factory.mktemp("bgp") / "bgp.pcap"
    write(path, [(T0 + i / 1000, f) for i, f in enumerate(session_frames([m.encode() for m in messages]))])
    ours, theirs = ours_as_tshark(path), tshark_as_sets(tshark_frames(path))
    assert len(ours) == len(messages)
    assert ours == theirs
