"""pyvxlan.strategies generates what its docstrings promise: valid, documentation-range traffic."""

from __future__ import annotations

import doctest
import ipaddress
import struct
from collections.abc import Iterable

from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase

import pyvxlan.strategies
from pyvxlan import GpeHeader, ReservedBitsError, VxlanHeader, decapsulate
from pyvxlan.strategies import (
    IPV4_GROUP,
    IPV6_GROUP,
    EncapsulatedFrame,
    arp_frames,
    ethernet_frames,
    gpe_headers,
    group_policies,
    header_bytes,
    icmpv6_frames,
    inner_ipv4_addresses,
    inner_ipv6_addresses,
    ipv4_icmp_frames,
    ipv6_frames,
    mac_addresses,
    multicast_macs,
    simplest,
    underlay_addresses,
    unicast_macs,
    vnis,
    vxlan_frames,
    vxlan_headers,
)
from pyvxlan.wire.frame import internet_checksum

DOC_V4 = [ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")]
DOC_V6 = ipaddress.ip_network("2001:db8::/32")


def in_doc_range(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    if ip.version == 4:
        return any(ip in net for net in DOC_V4)
    return ip in DOC_V6


def test_vni_extremes_are_reachable() -> None:
    assert simplest(vnis(), lambda v: v == 0xFFFFFF) == 0xFFFFFF
    assert simplest(vnis(min_value=5, max_value=9)) == 5


class _RecordingDatabase(InMemoryExampleDatabase):
    """An example database that remembers every key it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[bytes] = []

    def fetch(self, key: bytes) -> Iterable[bytes]:
        self.keys.append(key)
        return super().fetch(key)

    def save(self, key: bytes, value: bytes) -> None:
        self.keys.append(key)
        super().save(key, value)


def test_doc_examples_never_touch_the_example_database() -> None:
    """find() keys its database by the condition's name and signature (every ``lambda h:`` alike),
    so a database shared with the rest of the suite replayed other searches' values into the doc
    examples. The examples run through simplest(), which reads and writes no database."""
    recorder = _RecordingDatabase()
    settings.register_profile("pvh2-recording", parent=settings.get_profile("pyvxlan"), database=recorder)
    settings.load_profile("pvh2-recording")
    try:
        result = doctest.testmod(pyvxlan.strategies, optionflags=doctest.ELLIPSIS)
    finally:
        settings.load_profile("pyvxlan")
    assert (result.failed, result.attempted) == (0, 11)
    assert recorder.keys == []


def test_simplest_is_deterministic_whatever_the_database_holds() -> None:
    # A database holding a value another search saved under the same key: simplest ignores it.
    polluted = InMemoryExampleDatabase()
    settings.register_profile("pvh2-polluted", parent=settings.get_profile("pyvxlan"), database=polluted)
    settings.load_profile("pvh2-polluted")
    try:
        find(st.integers(), lambda h: h > 10**6)
        assert simplest(vxlan_headers(reserved=True), lambda h: h.reserved != 0).reserved == 1
    finally:
        settings.load_profile("pyvxlan")


@given(vxlan_headers())
def test_plain_headers_are_linux_valid(h: VxlanHeader) -> None:
    assert (h.i_flag, h.group_policy, h.reserved) == (True, None, 0)
    assert VxlanHeader.decode(h.encode(), strict=True) == h


@given(vxlan_headers(gbp=True))
def test_gbp_headers_always_carry_a_policy(h: VxlanHeader) -> None:
    assert h.group_policy is not None
    assert h.encode()[0] == 0x88


def test_reserved_headers_set_reserved_bits_and_strict_rejects_them() -> None:
    h = simplest(vxlan_headers(gbp=True, reserved=True), lambda h: h.reserved >> 32 != 0)
    assert h.group_policy is not None
    try:
        VxlanHeader.decode(h.encode(), strict=True, gbp=False)
    except ReservedBitsError:
        pass
    else:  # pragma: no cover - the point of the test
        raise AssertionError("strict decoding accepted reserved bits")
    assert simplest(vxlan_headers(gbp=None), lambda h: h.group_policy is not None).group_policy is not None


@given(group_policies())
def test_group_policies_in_range(p: object) -> None:
    from pyvxlan import GroupPolicy

    assert isinstance(p, GroupPolicy) and 0 <= p.policy_id <= 0xFFFF


@given(gpe_headers(linux_valid=True))
def test_linux_valid_gpe_headers(g: GpeHeader) -> None:
    assert (g.version, g.i_flag, g.p_flag, g.bum, g.oam) == (0, True, True, False, False)
    assert GpeHeader.decode(g.encode(), strict=True) == g


def test_gpe_headers_reach_every_flag() -> None:
    g = simplest(gpe_headers(), lambda g: g.bum and g.oam and g.version == 3 and not g.i_flag)
    assert g.encode()[0] == 0x33


@given(header_bytes())
def test_header_bytes_are_8_bytes(raw: bytes) -> None:
    assert len(raw) == 8


@given(unicast_macs(), multicast_macs(), mac_addresses())
def test_mac_kinds(u: str, m: str, any_mac: str) -> None:
    assert int(u[:2], 16) & 1 == 0
    assert int(m[:2], 16) & 1 == 1
    assert len(bytes.fromhex(any_mac.replace(":", ""))) == 6
    assert u == u.lower() and len(u) == 17


@given(underlay_addresses(), inner_ipv4_addresses(), inner_ipv6_addresses())
def test_addresses_come_from_documentation_ranges(underlay: str, inner4: str, inner6: str) -> None:
    assert in_doc_range(underlay) and in_doc_range(inner4) and in_doc_range(inner6)
    assert not ipaddress.ip_address(underlay).is_multicast


@given(arp_frames())
def test_arp_frames(frame: bytes) -> None:
    assert len(frame) == 42 and frame[12:14] == b"\x08\x06"
    op = struct.unpack_from("!H", frame, 20)[0]
    assert frame[6:12] == frame[22:28]  # sender hardware address is the source MAC
    if op == 1:
        assert frame[0:6] == b"\xff" * 6
    else:
        assert op == 2 and frame[0:6] == frame[32:38]


@given(ipv4_icmp_frames())
def test_ipv4_icmp_frames_have_valid_checksums(frame: bytes) -> None:
    ip = frame[14:34]
    assert frame[12:14] == b"\x08\x00" and ip[0] == 0x45 and ip[9] == 1
    assert struct.unpack_from("!H", ip, 2)[0] == len(frame) - 14
    assert internet_checksum(ip) == 0
    assert internet_checksum(frame[34:]) == 0
    assert frame[34] in (0, 8)


def _pseudo6(frame: bytes) -> bytes:
    payload = frame[54:]
    return frame[22:54] + struct.pack("!I3xB", len(payload), frame[20]) + payload


@given(icmpv6_frames())
def test_icmpv6_frames_have_valid_checksums(frame: bytes) -> None:
    assert frame[12:14] == b"\x86\xdd" and frame[20] == 58
    assert internet_checksum(_pseudo6(frame)) == 0
    if frame[54] == 135:  # neighbour solicitation: hop limit 255, to the solicited-node group
        assert frame[21] == 255
        assert frame[38:51] == bytes.fromhex("ff0200000000000000000001ff")
        assert frame[51:54] == frame[54 + 8 + 13 : 54 + 8 + 16]
        assert frame[0:6] == b"\x33\x33" + frame[50:54]


@given(ipv6_frames())
def test_ipv6_frames_have_valid_checksums(frame: bytes) -> None:
    assert struct.unpack_from("!H", frame, 18)[0] == len(frame) - 54
    assert internet_checksum(_pseudo6(frame)) == 0


@given(ethernet_frames())
def test_ethernet_frames_are_one_of_the_kinds(frame: bytes) -> None:
    assert frame[12:14] in (b"\x08\x06", b"\x08\x00", b"\x86\xdd")


@settings(max_examples=100)
@given(vxlan_frames())
def test_frames_decode_and_stay_in_documentation_ranges(f: EncapsulatedFrame) -> None:
    d = decapsulate(f.frame)
    assert in_doc_range(d.outer_src)
    assert in_doc_range(d.outer_dst) or d.outer_dst in (IPV4_GROUP, IPV6_GROUP)
    assert d.outer_src != d.outer_dst
    assert f.multicast == (d.outer_dst in (IPV4_GROUP, IPV6_GROUP))
    assert f.ip_version == d.ip_version


@settings(max_examples=60)
@given(st.data())
def test_frame_options_are_respected(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from([4, 6]))
    gbp, vlan, multicast = data.draw(st.booleans()), data.draw(st.booleans()), data.draw(st.booleans())
    port = data.draw(st.sampled_from([4789, 8472, 4790]))
    f = data.draw(vxlan_frames(ip_version=version, gbp=gbp, vlan=vlan, multicast=multicast, ports=st.just(port)))
    assert f.ip_version == version
    assert (f.header.group_policy is not None) == gbp
    assert (f.vlan is not None) == vlan
    assert f.multicast == multicast and f.ttl == (1 if multicast else 64)
    assert f.dst_port == port


def test_custom_inner_strategy() -> None:
    f = simplest(vxlan_frames(inner=st.just(bytes(14))))
    assert f.inner == bytes(14) and f.frame.endswith(bytes(14))


@settings(max_examples=50)
@given(vxlan_frames())
def test_encapsulated_frame_repr_evaluates_back(f: EncapsulatedFrame) -> None:
    """Issue 9: every value's repr evaluates back; EncapsulatedFrame used to leave ``frame`` out."""
    assert eval(repr(f), {**vars(pyvxlan), "EncapsulatedFrame": EncapsulatedFrame}) == f
