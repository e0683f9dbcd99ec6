"""pyvxlan.wire.dpkt_vxlan: the dpkt VXLAN class agrees with pyvxlan's codec on every header and frame."""

from __future__ import annotations

import struct

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import GroupPolicy, VxlanHeader, decapsulate, encapsulate
from pyvxlan.strategies import EncapsulatedFrame, ethernet_frames, header_bytes, vxlan_frames
from pyvxlan.wire.dpkt_vxlan import VXLAN, vxlan_of

ARP_INNER = bytes.fromhex("ffffffffffff02000000aa010806") + bytes.fromhex(
    "000108000604000102000000aa01cb007101000000000000cb007102"
)


def test_fields_of_a_gbp_header() -> None:
    v = VXLAN(bytes.fromhex("8848c35000006400") + ARP_INNER)
    assert (v.g, v.i, v.d, v.a, v.policy, v.vni, v.rsvd, v.flags) == (1, 1, 1, 1, 50000, 100, 0, 0x88)
    assert v.header == VxlanHeader(100, group_policy=GroupPolicy(50000, True, True))
    assert isinstance(v.data, dpkt.ethernet.Ethernet)
    assert isinstance(v.data.data, dpkt.arp.ARP)
    assert v.data.data.spa == bytes.fromhex("cb007101")
    assert bytes(v) == bytes.fromhex("8848c35000006400") + ARP_INNER
    assert len(v) == 8 + len(ARP_INNER)


def test_defaults_and_setters() -> None:
    v = VXLAN()
    assert bytes(v) == bytes.fromhex("0800000000000000")
    v.vni = 0xFFFFFF
    v.a = 1
    v.g = 1
    assert bytes(v).hex() == "88080000ffffff00"
    with pytest.raises(ValueError, match=r"^value 16777216 is too large for field vni$"):
        v.vni = 1 << 24


def test_reserved_bits_survive_parse_and_pack() -> None:
    raw = bytes.fromhex("0a0000000000055a")
    v = VXLAN(raw)
    assert (v.i, v.vni, v.rsvd, v.flags, bytes(v)) == (1, 5, 0x5A, 0x0A, raw)
    assert v.header.reserved == 0x020000000000005A


def test_short_header_raises_need_data() -> None:
    with pytest.raises(dpkt.NeedData):
        VXLAN(bytes(5))


def test_short_inner_stays_bytes() -> None:
    v = VXLAN(bytes.fromhex("0800000000000100") + b"\x01\x02")
    assert v.data == b"\x01\x02"


def test_vxlan_of_ipv4_vlan_and_ipv6() -> None:
    f4 = encapsulate(ARP_INNER, vni=9, src="198.51.100.1", dst="198.51.100.2", vlan=30)
    eth = dpkt.ethernet.Ethernet(f4)
    vx = vxlan_of(eth)
    assert vx is not None and vx.vni == 9
    assert eth.data.data.data is vx
    assert vxlan_of(eth) is vx  # idempotent
    assert bytes(eth) == f4
    f6 = encapsulate(ARP_INNER, vni=10, src="2001:db8::1", dst="ff05::100", dst_port=8472)
    vx6 = vxlan_of(dpkt.ethernet.Ethernet(f6))
    assert vx6 is not None and (vx6.vni, vx6.data.dst) == (10, b"\xff" * 6)


def test_vxlan_of_returns_none_for_other_traffic() -> None:
    frame = bytearray(encapsulate(ARP_INNER, vni=9, src="198.51.100.1", dst="198.51.100.2"))
    assert vxlan_of(dpkt.ethernet.Ethernet(bytes(frame)), ports=(8472,)) is None
    frame[36:38] = b"\x00\x35"  # UDP port 53
    assert vxlan_of(dpkt.ethernet.Ethernet(bytes(frame))) is None
    assert vxlan_of(dpkt.ethernet.Ethernet(ARP_INNER)) is None  # not IP
    assert vxlan_of(object()) is None


@given(header_bytes())
def test_dpkt_class_agrees_with_vxlan_header(raw: bytes) -> None:
    v = VXLAN(raw)
    h = VxlanHeader.decode(raw)
    assert bytes(v) == raw
    assert v.header == h
    assert (v.vni, bool(v.i), bool(v.g)) == (h.vni, h.i_flag, h.group_policy is not None)
    if h.group_policy is not None:
        assert (v.policy, bool(v.d), bool(v.a)) == (
            h.group_policy.policy_id,
            h.group_policy.dont_learn,
            h.group_policy.policy_applied,
        )


@settings(max_examples=100)
@given(vxlan_frames())
def test_vxlan_of_agrees_with_decapsulate(f: EncapsulatedFrame) -> None:
    eth = dpkt.ethernet.Ethernet(f.frame)
    vx = vxlan_of(eth)
    assert vx is not None
    d = decapsulate(f.frame)
    assert vx.header == d.header == f.header
    inner = vx.data
    assert bytes(inner) == bytes(d.inner) == f.inner


# --- lossless: the bytes that were parsed are the bytes that are packed ---------------------------


@st.composite
def captured_inner_frames(draw: st.DrawFn) -> bytes:
    """Inner frames as captures show them, which dpkt does not pack back as they came: zero
    checksums (offloaded to the NIC), an IPv4 total length shorter than the frame, Ethernet padding,
    or bytes that are no frame at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=80))
    frame = bytearray(draw(ethernet_frames()))
    if frame[12:14] == b"\x08\x00":  # IPv4 (20-byte header) and ICMP
        if draw(st.booleans()):
            frame[24:26] = bytes(2)  # the IPv4 header checksum
        if draw(st.booleans()):
            frame[36:38] = bytes(2)  # the ICMP checksum
        if draw(st.booleans()):
            frame[16:18] = struct.pack("!H", len(frame) - 14 - draw(st.integers(1, 8)))
    elif frame[12:14] == b"\x86\xdd":  # IPv6 and ICMPv6 or UDP
        where = 54 + (2 if frame[20] == 58 else 6)
        if draw(st.booleans()):
            frame[where : where + 2] = bytes(2)
    return bytes(frame) + draw(st.binary(max_size=24))


def _inner_ipv4_checksum_zero() -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 1, 0, 64, 17, 0, bytes((203, 0, 113, 1)), bytes((203, 0, 113, 2)))
    return bytes.fromhex("0200000000020200000000010800") + ip + struct.pack("!HHHH", 1, 2, 8, 0)


def test_vxlan_of_leaves_an_inner_ipv4_checksum_of_zero_as_it_was() -> None:
    """Issue 9: after vxlan_of, bytes(eth) came back with the inner IPv4 and UDP checksums computed."""
    frame = encapsulate(_inner_ipv4_checksum_zero(), vni=5, src="198.51.100.1", dst="198.51.100.2")
    eth = dpkt.ethernet.Ethernet(frame)
    vx = vxlan_of(eth)
    assert vx is not None and bytes(eth) == frame and len(eth) == len(frame)
    assert (vx.data.data.sum, vx.data.data.data.sum) == (0, 0)  # packing left the parsed fields alone


def test_a_changed_inner_packet_is_packed_by_dpkt() -> None:
    raw = bytes.fromhex("0800000000000500") + _inner_ipv4_checksum_zero()
    v = VXLAN(raw)
    v.data.data.ttl = 1
    out = bytes(v)
    assert out[8 + 14 + 8] == 1 and out[8 + 24 : 8 + 26] != bytes(2)  # dpkt filled the checksum
    assert len(v) == len(out)
    replaced = VXLAN(raw)
    replaced.data = b"\x01\x02"
    assert bytes(replaced) == raw[:8] + b"\x01\x02"


def test_dpkt_itself_fills_zero_outer_checksums_with_or_without_vxlan_of() -> None:
    """The outer layers are dpkt's own: what docs/dpkt.md says dpkt rewrites there."""
    frame = bytearray(encapsulate(_inner_ipv4_checksum_zero(), vni=5, src="198.51.100.1", dst="198.51.100.2"))
    frame[24:26] = bytes(2)
    plain = bytes(dpkt.ethernet.Ethernet(bytes(frame)))
    eth = dpkt.ethernet.Ethernet(bytes(frame))
    vxlan_of(eth)
    assert bytes(eth) == plain != bytes(frame)
    assert plain[24:26] != bytes(2) and plain[:24] + plain[26:] == bytes(frame[:24] + frame[26:])
    # Over IPv6 (udp6zerocsumtx), dpkt fills a zero outer UDP checksum, vxlan_of or not.
    frame6 = bytearray(encapsulate(_inner_ipv4_checksum_zero(), vni=5, src="2001:db8::1", dst="2001:db8::2"))
    frame6[60:62] = bytes(2)
    plain6 = bytes(dpkt.ethernet.Ethernet(bytes(frame6)))
    eth6 = dpkt.ethernet.Ethernet(bytes(frame6))
    vxlan_of(eth6)
    assert bytes(eth6) == plain6 and plain6[60:62] != bytes(2) and plain6[:60] == bytes(frame6[:60])


@settings(max_examples=300)
@given(header_bytes(), captured_inner_frames())
def test_vxlan_packs_the_bytes_it_parsed(header: bytes, inner: bytes) -> None:
    """Issue 9: bytes(VXLAN(buf)) == buf for any header and any inner frame."""
    buf = header + inner
    v = VXLAN(buf)
    assert bytes(v) == buf and len(v) == len(buf)
    assert bytes(v) == buf  # packing twice changes nothing either


@settings(max_examples=150)
@given(vxlan_frames(inner=captured_inner_frames()), st.booleans())
def test_bytes_of_a_parsed_frame_are_the_frame_after_vxlan_of(f: EncapsulatedFrame, udp_checksum: bool) -> None:
    """Issue 9: bytes(eth) is the captured frame after vxlan_of, whatever the inner frame holds
    (and over IPv4 with or without an outer UDP checksum)."""
    frame = f.frame
    if f.ip_version == 4 and not udp_checksum:
        frame = encapsulate(
            f.inner, header=f.header, src=f.src, dst=f.dst, src_port=f.src_port, dst_port=f.dst_port,
            vlan=f.vlan, udp_checksum=False,
        )  # fmt: skip
    eth = dpkt.ethernet.Ethernet(frame)
    assert bytes(eth) == frame
    vx = vxlan_of(eth)
    assert vx is not None and bytes(vx) == frame[len(frame) - len(f.inner) - 8 :]
    assert bytes(eth) == frame and len(eth) == len(frame)
