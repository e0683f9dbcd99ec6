"""pyvxlan.dpkt_vxlan: the dpkt VXLAN class agrees with pyvxlan's codec on every header and frame."""

from __future__ import annotations

import dpkt
import pytest
from hypothesis import given, settings

from pyvxlan import GroupPolicy, VxlanHeader, decapsulate, encapsulate
from pyvxlan.dpkt_vxlan import VXLAN, vxlan_of
from pyvxlan.strategies import EncapsulatedFrame, header_bytes, vxlan_frames

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
