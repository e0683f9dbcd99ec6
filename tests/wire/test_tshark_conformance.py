"""Wireshark's dissector agrees with pyvxlan on frames pyvxlan builds (hypothesis-generated).

Each example is a batch of frames (IPv4 and IPv6 outer, GBP, outer VLAN tags, ports 4789 and
8472) written to one pcap by :mod:`pyvxlan.wire.pcap` and read back by one ``tshark -T fields`` run
(tshark starts slowly, so it runs once per batch, not once per frame). On every packet tshark's
VNI, flags, GBP fields, UDP ports, outer addresses and TTL, outer and inner MACs, and checksum
verdicts (outer UDP, outer and inner IPv4, inner ICMP/ICMPv6/UDP) must be what pyvxlan put there.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from pyvxlan import GpeHeader, GpeNextProtocol, encapsulate, pcap
from pyvxlan.strategies import EncapsulatedFrame, vnis, vxlan_frames

pytestmark = pytest.mark.tshark

FIELDS = [
    "frame.number",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "vlan.id",
    "udp.srcport",
    "udp.dstport",
    "udp.checksum.status",
    "vxlan.flags",
    "vxlan.flag_g",
    "vxlan.flag_i",
    "vxlan.flag_d",
    "vxlan.flag_a",
    "vxlan.gbp",
    "vxlan.vni",
    "eth.src",
    "eth.dst",
    "ip.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
]
GOOD = "1"  # tshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present


def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed (apt-get install tshark; dev.py does it as root)")
    return path


def dissect(path: Path) -> list[dict[str, list[str]]]:
    """One dict per packet: field name -> every occurrence, outermost first."""
    cmd = [
        tshark(),
        "-r",
        str(path),
        "-n",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "ip.check_checksum:TRUE",
        "-d",
        "udp.port==8472,vxlan",  # tshark 4.0 registers only 4789; Linux's 8472 needs "decode as"
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]
    for field in FIELDS:
        cmd += ["-e", field]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    rows = []
    for line in out.splitlines():
        values = line.split("\t")
        assert len(values) == len(FIELDS), line
        rows.append({name: (value.split(",") if value else []) for name, value in zip(FIELDS, values, strict=True)})
    return rows


def expected_row(f: EncapsulatedFrame) -> dict[str, list[str]]:
    h = f.header
    gp = h.group_policy
    v6 = f.ip_version == 6
    inner = f.inner
    return {
        "ip.src" if not v6 else "ipv6.src": [f.src],
        "ip.dst" if not v6 else "ipv6.dst": [f.dst],
        "ip.ttl" if not v6 else "ipv6.hlim": [str(f.ttl)],
        "vlan.id": [] if f.vlan is None else [str(f.vlan)],
        "udp.srcport": [str(f.src_port)],
        "udp.dstport": [str(f.dst_port)],
        "udp.checksum.status": [GOOD],
        "vxlan.flags": [f"0x{h.word0 >> 16:04x}"],
        "vxlan.flag_g": ["1" if gp else "0"],
        "vxlan.flag_i": ["1"],
        "vxlan.flag_d": ["1" if gp and gp.dont_learn else "0"],
        "vxlan.flag_a": ["1" if gp and gp.policy_applied else "0"],
        "vxlan.gbp": [str(gp.policy_id if gp else 0)],
        "vxlan.vni": [str(h.vni)],
        "eth.src": [
            pcap_mac(f.frame[6:12]),
            pcap_mac(inner[6:12]),
        ],
        "eth.dst": [
            pcap_mac(f.frame[0:6]),
            pcap_mac(inner[0:6]),
        ],
    }


def pcap_mac(raw: bytes) -> str:
    return raw.hex(":")


def check_batch(frames: list[EncapsulatedFrame], tmp: Path) -> None:
    path = tmp / "batch.pcap"
    assert pcap.write(path, [(float(i), f.frame) for i, f in enumerate(frames)]) == len(frames)
    rows = dissect(path)
    assert len(rows) == len(frames)
    for i, (f, row) in enumerate(zip(frames, rows, strict=True)):
        assert row["frame.number"] == [str(i + 1)]
        for name, want in expected_row(f).items():
            # The inner frame may carry its own IPv4 or UDP (even VXLAN, when its UDP port is 4789):
            # compare the outermost occurrences (for the MACs: the outer and the inner frame's).
            got = row[name][: len(want)]
            assert got == want, f"packet {i + 1}, {name}: tshark says {got}, pyvxlan built {want}; {f!r}"
        # Every checksum tshark can verify is good: outer UDP (all UDP occurrences, inner too),
        # outer and inner IPv4 headers, inner ICMP and ICMPv6.
        for name in ("udp.checksum.status", "ip.checksum.status", "icmp.checksum.status", "icmpv6.checksum.status"):
            assert set(row[name]) <= {GOOD}, f"packet {i + 1}, {name}: {row[name]}; {f!r}"
        assert row["ip.checksum.status"] or f.ip_version == 6


BATCH = st.lists(vxlan_frames(), min_size=40, max_size=40)


# No shrinking: each step would rerun tshark, and the failure message already names the frame.
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


@settings(max_examples=4, phases=NO_SHRINK, suppress_health_check=HEALTH)
@given(BATCH)
def test_tshark_reads_every_field_pyvxlan_writes(frames: list[EncapsulatedFrame]) -> None:
    with tempfile.TemporaryDirectory(prefix="pvxc-tshark-") as tmp:
        check_batch(frames, Path(tmp))


@settings(max_examples=2, phases=NO_SHRINK, suppress_health_check=HEALTH)
@given(
    st.lists(vxlan_frames(ip_version=4, gbp=True), min_size=15, max_size=15),
    st.lists(vxlan_frames(ip_version=6, gbp=True, vlan=True), min_size=15, max_size=15),
    st.lists(vxlan_frames(ip_version=6, multicast=True), min_size=10, max_size=10),
)
def test_tshark_gbp_and_ipv6_batches(
    v4: list[EncapsulatedFrame], v6: list[EncapsulatedFrame], mcast: list[EncapsulatedFrame]
) -> None:
    with tempfile.TemporaryDirectory(prefix="pvxc-tshark-") as tmp:
        check_batch(v4 + v6 + mcast, Path(tmp))


def test_tshark_flags_a_broken_udp_checksum(tmp_path: Path) -> None:
    # The checksum comparison above can fail: a corrupted checksum reads as Bad (0).
    from hypothesis import find

    f = find(vxlan_frames(ip_version=6, vlan=False), lambda f: True)
    frame = bytearray(f.frame)
    frame[14 + 40 + 6] ^= 0xFF
    path = tmp_path / "bad.pcap"
    pcap.write(path, [(0.0, bytes(frame))])
    [row] = dissect(path)
    assert row["udp.checksum.status"][:1] == ["0"]


# --- VXLAN-GPE on 4790: next protocol 5 is MPLS, and B is a reserved bit, as pyvxlan's docs say


def _gpe_payload(np: GpeNextProtocol) -> tuple[bytes, str]:
    """A payload for next protocol ``np`` and the protocol chain tshark shows after UDP."""
    ip = bytes.fromhex("4500001c000000004001") + bytes(18)
    if np is GpeNextProtocol.ETHERNET:
        return bytes.fromhex("02000000aa0202000000aa010800") + ip, "udp:eth:ethertype:ip:icmp"
    if np is GpeNextProtocol.MPLS:
        return bytes.fromhex("000641ff") + ip, "udp:mpls:ip:icmp"  # one label, bottom of stack
    return ip, "udp:ip:icmp"


GPE_FIELDS = ["frame.protocols", "vxlan.vni", "vxlan.next_proto", "vxlan.i_bit", "vxlan.p_bit", "vxlan.o_bit"]
GPE_FIELDS += ["vxlan.flags_reserved", "udp.checksum.status"]


@settings(max_examples=2, phases=NO_SHRINK, suppress_health_check=HEALTH)
@given(
    st.lists(
        st.tuples(
            st.builds(
                GpeHeader,
                vni=vnis(),
                next_protocol=st.sampled_from([GpeNextProtocol.IPV4, GpeNextProtocol.ETHERNET, GpeNextProtocol.MPLS]),
                bum=st.booleans(),
                oam=st.booleans(),
            ),
            st.sampled_from([4, 6]),
        ),
        min_size=20,
        max_size=20,
    )
)
def test_tshark_reads_vxlan_gpe(batch: list[tuple[GpeHeader, int]]) -> None:
    frames = []
    for header, version in batch:
        src, dst = ("198.51.100.1", "198.51.100.2") if version == 4 else ("2001:db8::1", "2001:db8::2")
        np = header.next_protocol
        assert isinstance(np, GpeNextProtocol)
        payload, _ = _gpe_payload(np)
        frames.append(encapsulate(payload, header=header, src=src, dst=dst, dst_port=4790))
    with tempfile.TemporaryDirectory(prefix="pvxc-tshark-") as tmp:
        path = Path(tmp) / "gpe.pcap"
        pcap.write(path, [(float(i), f) for i, f in enumerate(frames)])
        cmd = [tshark(), "-r", str(path), "-n", "-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=f"]
        for field in GPE_FIELDS:
            cmd += ["-e", field]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(batch)
    for (header, version), row in zip(batch, rows, strict=True):
        np = header.next_protocol
        assert isinstance(np, GpeNextProtocol)
        chain = ("eth:ethertype:ip:" if version == 4 else "eth:ethertype:ipv6:") + _gpe_payload(np)[1]
        want = [chain, str(header.vni), str(int(np)), "1", "1", "1" if header.oam else "0"]
        want += ["1" if header.bum else "0", GOOD]  # Wireshark counts B among the reserved flags
        assert row == want, header


# --- `pyvxlan decode` prints what tshark reads, packet by packet, on repeated flows -------------

_TEXT_HEADER = re.compile(
    r"VXLAN vni (?P<vni>\d+) flags \[(?P<flags>[GI,]*)\]"
    r"(?: gbp id (?P<gbp>\d+))?(?P<d> dont-learn)?(?P<a> policy-applied)?(?: reserved (?P<reserved>0x[0-9a-f]{16}))?: "
)


def header_of_text_line(line: str) -> bytes:
    """The 8 header bytes that a ``pyvxlan decode`` text line describes."""
    m = _TEXT_HEADER.search(line)
    assert m is not None, line
    word0 = (0x80000000 if "G" in m["flags"] else 0) | (0x08000000 if "I" in m["flags"] else 0)
    word0 |= (0x00400000 if m["d"] else 0) | (0x00080000 if m["a"] else 0) | int(m["gbp"] or 0)
    value = (word0 << 32) | (int(m["vni"]) << 8)
    return (value | int(m["reserved"] or "0", 16)).to_bytes(8, "big")


def test_decode_prints_each_packets_header_as_tshark_reads_it(tmp_path: Path) -> None:
    """Issue 9.1: on flows that repeat (same addresses, ports and VLAN; IPv4, IPv4 with an outer VLAN
    tag or IP options, IPv6), every text line of ``pyvxlan decode`` holds that packet's own header:
    the 8 bytes rebuilt from its VNI, flags, GBP fields and reserved mask are the 8 bytes rebuilt
    from tshark's vxlan.flags, vxlan.gbp, vxlan.vni and vxlan.reserved8."""
    from cli.test_cli_decode import FRAMES, with_ip_options

    from pyvxlan import GroupPolicy, VxlanHeader
    from pyvxlan.cli.decode import run

    rng = random.Random(91)
    headers = [VxlanHeader(10), VxlanHeader(11), VxlanHeader(11, group_policy=GroupPolicy(7))]
    headers += [VxlanHeader(11, group_policy=GroupPolicy(8, dont_learn=True, policy_applied=True))]
    headers += [VxlanHeader(11, reserved=1 << bit) for bit in (0, 36, 50, 60)]
    headers += [VxlanHeader.decode(rng.getrandbits(64).to_bytes(8, "big")) for _ in range(24)]
    src, dst = "198.51.100.1", "198.51.100.2"
    flows: list[Callable[[VxlanHeader], bytes]] = [
        lambda h: encapsulate(FRAMES["echo-request"], header=h, src=src, dst=dst, src_port=50000),
        lambda h: encapsulate(FRAMES["echo-request"], header=h, src=src, dst=dst, src_port=50001, vlan=7),
        lambda h: with_ip_options(encapsulate(FRAMES["arp-request"], header=h, src=src, dst=dst, src_port=50002)),
        lambda h: encapsulate(FRAMES["echo6"], header=h, src="2001:db8::1", dst="2001:db8::2", src_port=50003),
    ]
    # Interleaved, as a capture has them: each flow's packets in turn, every header on every flow.
    frames = [(h, flow(h)) for h in headers for flow in flows]
    path = tmp_path / "flows.pcap"
    pcap.write(path, [(float(i), frame) for i, (_, frame) in enumerate(frames)])
    out = io.StringIO()
    run(str(path), out)
    lines = out.getvalue().splitlines()
    assert lines[-1] == f"{len(frames)} packets: {len(frames)} VXLAN, 0 not VXLAN, 0 malformed"
    cmd = [tshark(), "-r", str(path), "-n", "-T", "fields", "-E", "occurrence=f", "-E", "separator=\t"]
    for field in ("vxlan.flags", "vxlan.gbp", "vxlan.vni", "vxlan.reserved8"):
        cmd += ["-e", field]
    rows = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout.splitlines()
    assert len(rows) == len(frames)
    for i, ((header, _), line, row) in enumerate(zip(frames, lines, rows, strict=False)):
        flags, gbp, vni, reserved8 = row.split("\t")
        tshark_header = struct.pack("!HHIB", int(flags, 16), int(gbp), int(vni), int(reserved8))
        tshark_header = tshark_header[:4] + tshark_header[5:]  # the VNI is 24 bits
        assert tshark_header == header.encode(), f"packet {i + 1}: tshark reads {tshark_header.hex()}"
        assert header_of_text_line(line) == header.encode(), f"packet {i + 1}: {line}; {header!r}"
