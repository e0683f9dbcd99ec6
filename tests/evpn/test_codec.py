"""The EVPN/BGP codec: exact bytes, strict errors, round trips, and FRR 8.4.4's own messages."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyvxlan import ConfigError, DecodeError, TruncatedError, pcap
from pyvxlan.evpn import (
    ENCAP_VXLAN,
    AsPath,
    ExtendedCommunities,
    FourOctetAs,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    Keepalive,
    LocalPref,
    MacIpRoute,
    MacMobility,
    MpReachNlri,
    MpUnreachNlri,
    Multiprotocol,
    Notification,
    Open,
    Origin,
    PmsiTunnel,
    RawAttribute,
    RawCapability,
    RawCommunity,
    RouteDistinguisher,
    RouteRefresh,
    RouteRefreshCapability,
    RouterMac,
    RouteTarget,
    UnknownRoute,
    Update,
    codec,
    decode_message,
    decode_routes,
    encode_routes,
    split_messages,
)
from pyvxlan.evpn import strategies as evst

from ._wire import tcp_payload

FRR_PCAP = Path(__file__).resolve().parents[3] / "shared" / "research" / "evpn-frr-8.4.4-ibgp.pcap"
RD1 = RouteDistinguisher.ipv4("198.51.100.1", 2)


def test_module_examples() -> None:
    assert doctest.testmod(codec).failed == 0
    assert doctest.testmod(evst).failed == 0


# --- exact bytes (the layouts of evpn-frr.md 1.2-1.8) -----------------------------------------


def test_type2_mac_only_bytes() -> None:
    """RFC 8365 5.1.3: the whole 24-bit label field is the VNI (FRR's vni2label)."""
    route = MacIpRoute(RD1, "02:AA:00:00:00:10", labels=(100,))
    assert encode_routes([route]).hex() == ("02210001c63364010002" + "00" * 10 + "000000003002aa0000001000000064")
    assert route.mac == "02:aa:00:00:00:10"
    assert route.vni == 100
    assert route.key == (RD1, 0, "02:aa:00:00:00:10", None)


def test_type2_mac_ip_two_labels_bytes() -> None:
    route = MacIpRoute(RD1, "02:aa:00:00:00:10", ip="203.0.113.10", labels=(100, 4000))
    body = encode_routes([route])
    assert body[1] == 40  # FRR accepts 33/37/49 with one label, 36/40/52 with two
    assert body[-11:].hex() == "20cb00710a000064000fa0"
    assert decode_routes(body) == (route,)


def test_type3_bytes() -> None:
    route = InclusiveMulticastRoute(RD1, "198.51.100.1")
    assert encode_routes([route]).hex() == "03110001c633640100020000000020c6336401"
    v6 = InclusiveMulticastRoute(RD1, "2001:db8::1")
    assert encode_routes([v6])[:2].hex() == "031d"
    assert decode_routes(encode_routes([route, v6])) == (route, v6)


def test_type5_bytes() -> None:
    route = IpPrefixRoute(RD1, "203.0.113.0", 24, "0.0.0.0", label=4000)
    raw = encode_routes([route])
    assert raw[:2].hex() == "0522"
    assert raw[24:].hex() == "18cb00710000000000000fa0"
    assert decode_routes(raw) == (route,)


def test_route_distinguisher_types() -> None:
    assert RouteDistinguisher.as2(65000, 100).encode().hex() == "0000fde800000064"
    assert RouteDistinguisher.ipv4("198.51.100.1", 2).encode().hex() == "0001c63364010002"
    assert RouteDistinguisher.as4(4200000000, 7).encode().hex() == "0002fa56ea000007"
    for rd in (RouteDistinguisher.as2(65000, 100), RD1, RouteDistinguisher.as4(4200000000, 7)):
        assert RouteDistinguisher.decode(rd.encode()) == rd
    assert str(RouteDistinguisher.as4(4200000000, 7)) == "4200000000:7"


def test_extended_community_bytes() -> None:
    assert RouteTarget.as2(65000, 100).encode().hex() == "0002fde800000064"
    assert RouteTarget.ipv4("198.51.100.1", 5).encode().hex() == "0102c63364010005"
    assert RouteTarget.as4(4200000000, 9).encode().hex() == "0202fa56ea000009"
    assert ENCAP_VXLAN.encode().hex() == "030c000000000008"
    assert MacMobility(1).encode().hex() == "0600000000000001"
    assert MacMobility(0, sticky=True).encode().hex() == "0600010000000000"
    assert RouterMac("02:00:00:00:00:01").encode().hex() == "0603020000000001"
    assert str(RouteTarget.as2(65000, 100)) == "RT:65000:100"


def test_pmsi_ingress_replication_bytes() -> None:
    """FRR rejects a PMSI tunnel attribute of type 6 whose length is not 9 or 21."""
    attr = PmsiTunnel("198.51.100.1", 100)
    update = Update((attr,))
    assert update.encode()[23:].hex() == "c016090006000064c6336401"
    assert decode_message(update.encode()) == update
    assert update.pmsi == attr and attr.vni == 100


def test_update_announce_is_frr_layout() -> None:
    """FRR writes MP_REACH_NLRI first (bgp_packet_attribute), then ORIGIN, AS_PATH, LOCAL_PREF."""
    route = MacIpRoute(RD1, "02:aa:00:00:00:10", labels=(100,))
    update = Update.announce(
        [route], next_hop="198.51.100.1", communities=[ENCAP_VXLAN, RouteTarget.as2(65000, 100), MacMobility(1)]
    )
    assert [a.type_code for a in update.attributes] == [14, 1, 2, 5, 16]
    raw = update.encode()
    assert raw[16:19].hex() == "007102"
    assert raw[19:23].hex() == "0000005a"
    assert raw[23:30].hex() == "900e002c001946"
    assert raw[30:36].hex() == "04c633640100"
    assert update.reach is not None and update.reach.routes == (route,)
    assert update.communities[2] == MacMobility(1)


def test_end_of_rib() -> None:
    """RFC 4724: End-of-RIB for L2VPN EVPN is an UPDATE with an empty MP_UNREACH_NLRI (FRR: 80 0f 03 00 19 46)."""
    frr = bytes.fromhex("ff" * 16 + "001d0200000006800f03001946")
    update = decode_message(frr)
    assert isinstance(update, Update) and update.is_end_of_rib
    assert update.encode() == frr
    assert Update.end_of_rib().encode().hex().endswith("0007900f0003001946")
    assert not Update.withdraw([MacIpRoute(RD1, "02:00:00:00:00:01")]).is_end_of_rib
    assert not Update().is_end_of_rib


def test_extended_length_flag_on_a_short_attribute_is_kept() -> None:
    """FRR sends iBGP AS_PATH as 50 02 00 00: the extended-length flag on an empty attribute."""
    raw = bytes.fromhex("ff" * 16 + "001b020000000450020000")
    update = decode_message(raw)
    assert update == Update((AsPath((), 0x50),))
    assert update.encode() == raw


def test_long_attribute_gets_the_extended_length_flag() -> None:
    routes = tuple(MacIpRoute(RD1, f"02:00:00:00:00:{i:02x}", labels=(i,)) for i in range(10))
    attr = MpReachNlri("198.51.100.1", routes, flags=0x80)
    raw = Update((attr,)).encode()
    assert raw[23:25].hex() == "900e"
    assert decode_message(raw) == Update((MpReachNlri("198.51.100.1", routes, flags=0x90),))


def test_open_build() -> None:
    msg = Open.build(4200000000, "198.51.100.1", 90)
    raw = msg.encode()
    assert raw[16:].hex() == ("003101045ba0005ac63364011402060104001900460202020002064104fa56ea00")
    back = decode_message(raw)
    assert back == msg
    assert isinstance(back, Open) and back.asn == 4200000000 and back.supports(25, 70)
    assert back.capabilities == (Multiprotocol(), RouteRefreshCapability(), FourOctetAs(4200000000))


def test_small_messages() -> None:
    assert Keepalive().encode() == b"\xff" * 16 + b"\x00\x13\x04"
    assert Notification(6, 2).encode()[16:].hex() == "0015030602"
    assert RouteRefresh().encode()[16:].hex() == "00170500190046"
    for m in (Keepalive(), Notification(4, 0, b"x"), RouteRefresh(1, 1, 2)):
        assert decode_message(m.encode()) == m


# --- strict errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hexbody", "offset", "reason"),
    [
        ("00" * 19, 0, "marker is 00000000000000000000000000000000, not 16 bytes of ff"),
        ("ff" * 16 + "001204", 16, "message length 18 is not in 19..65535"),
        ("ff" * 16 + "00140900", 18, "message type 9 is not 1..5"),
        ("ff" * 16 + "00140400", 16, "KEEPALIVE length is 20, not 19"),
        ("ff" * 16 + "001d0103fde800b4c633640100", 19, "BGP version 3 is not 4"),
        ("ff" * 16 + "001d0104fde80001c633640100", 22, "hold time 1 is not 0 or at least 3"),
        ("ff" * 16 + "001d0104fde800b4c633640101", 28, "optional parameters length 1 does not match the 0 bytes left"),
        ("ff" * 16 + "001f0200000008c010050002fde800", 26, "EXTENDED_COMMUNITIES length 5 is not a multiple of 8"),
        ("ff" * 16 + "001f02000000084001010040010100", 28, "path attribute 1 appears twice"),
        ("ff" * 16 + "0025020000000e900e000a00194605c63364010000", 30, "EVPN next hop length 5 is not 4 or 16"),
        (
            "ff" * 16 + "00280200000011800f0e0019460309" + "0000fde80000006400",
            31,
            "inclusive multicast route body is 9 bytes, not 17 or 29",
        ),
    ],
)
def test_decode_errors_name_the_field_and_offset(hexbody: str, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_message(bytes.fromhex(hexbody))
    assert (info.value.layer, info.value.offset, info.value.reason) == ("bgp", offset, reason)


def test_mac_length_must_be_48() -> None:
    """FRR's process_type2_route: "unsupported MAC address length" for anything but 48 bits."""
    raw = bytearray(Update.announce([MacIpRoute(RD1, "02:aa:00:00:00:10")], next_hop="198.51.100.1").encode())
    assert raw[36:38].hex() == "0221" and raw[60] == 48
    raw[60] = 40
    with pytest.raises(DecodeError, match=r"^bgp at offset 60: MAC length 40 bits is not 48$"):
        decode_message(bytes(raw))


def test_truncated_route_is_a_truncated_error() -> None:
    with pytest.raises(TruncatedError, match=r"^bgp at offset 7: EVPN route type 2 needs 33 bytes, 5 left$"):
        decode_routes(b"\x02\x21" + bytes(5), base=5)


def test_rd_type_3_refused() -> None:
    with pytest.raises(DecodeError, match=r"^bgp at offset 4: route distinguisher type 3 is not 0, 1 or 2$"):
        RouteDistinguisher.decode(bytes.fromhex("0003000000000000"), 4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MacIpRoute(RD1, "02:00:00:00:00:0g"), "mac: '02:00:00:00:00:0g' is not a MAC address"),
        (
            lambda: MacIpRoute(RD1, "02:00:00:00:00:01", labels=(1 << 24,)),
            "labels: must be in 0..16777215, got 16777216",
        ),
        (
            lambda: MacIpRoute(RD1, "02:00:00:00:00:01", labels=()),
            "labels: must be a tuple of one or two VNIs, got tuple ()",
        ),
        (
            lambda: MacIpRoute(RD1, "02:00:00:00:00:01", ip="203.0.113.300"),
            "ip: '203.0.113.300' is not an IPv4 or IPv6 address",
        ),
        (lambda: MacIpRoute("rd", "02:00:00:00:00:01"), "rd: must be a RouteDistinguisher, got str 'rd'"),  # type: ignore[arg-type]
        (lambda: RouteDistinguisher.as2(70000, 1), "administrator: must be in 0..65535, got 70000"),
        (
            lambda: RouteDistinguisher.ipv4("2001:db8::1", 1),
            "administrator: '2001:db8::1' is not an IPv4 address",
        ),
        (lambda: RouteDistinguisher.as4(1, 70000), "assigned: must be in 0..65535, got 70000"),
        (lambda: RouteDistinguisher(7, 1, 1), "type: must be an RdType (0, 1 or 2), got int 7"),  # type: ignore[arg-type]
        (lambda: IpPrefixRoute(RD1, "203.0.113.0", 33, "0.0.0.0"), "prefix_len: must be in 0..32, got 33"),
        (lambda: IpPrefixRoute(RD1, "203.0.113.0", 24, "::"), "gateway: '::' is not an IPv4 address"),
        (lambda: PmsiTunnel("198.51.100.1", -1), "label: must be in 0..16777215, got -1"),
        (lambda: MacMobility(1, sticky=1), "sticky: must be a bool, got int 1"),  # type: ignore[arg-type]
        (lambda: Open(65000, 1, "198.51.100.1"), "hold_time: must be 0 or at least 3 seconds, got 1"),
        (lambda: Open.build(0, "198.51.100.1"), "asn: must be in 1..4294967295, got 0"),
        (lambda: Update((Origin(), Origin())), "attributes: each attribute type at most once, got type codes [1, 1]"),
        (lambda: UnknownRoute(2, b""), "route_type: type 2 has its own class"),
        (lambda: RawCommunity(b"1234567"), "data: must be 8 bytes, got 7"),
        (lambda: RawAttribute(0xC0, 99, "x"), "data: must be a bytes-like object, got str 'x'"),  # type: ignore[arg-type]
        (lambda: MacIpRoute(RD1, 5), "mac: must be a MAC address as text or 6 bytes, got int 5"),  # type: ignore[arg-type]
        (lambda: PmsiTunnel(5, 1), "tunnel_id: must be an IPv4 or IPv6 address as text, got int 5"),  # type: ignore[arg-type]
    ],
)
def test_constructor_errors(make: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    assert str(info.value) == message


def test_byte_fields_hold_bytes() -> None:
    # Any bytes-like value is taken and kept as bytes, so a value made from a buffer stays hashable.
    route = MacIpRoute(RD1, "02:00:00:00:00:01", esi=bytearray(10))  # type: ignore[arg-type]
    assert type(route.esi) is bytes
    assert hash(route) == hash(MacIpRoute(RD1, "02:00:00:00:00:01"))
    community = RawCommunity(memoryview(bytes(range(8))))  # type: ignore[arg-type]
    assert (type(community.data), community.data) == (bytes, bytes(range(8)))


# --- properties -----------------------------------------------------------------------------


@given(st.lists(evst.evpn_routes(), max_size=5))
def test_routes_round_trip(routes: list[codec.EvpnRoute]) -> None:
    raw = encode_routes(routes)
    assert decode_routes(raw) == tuple(routes)
    assert encode_routes(decode_routes(raw)) == raw


@given(evst.bgp_messages())
def test_messages_round_trip(message: codec.Message) -> None:
    raw = message.encode()
    back = decode_message(raw)
    assert back.encode() == raw
    if isinstance(back, Update) and isinstance(message, Update):
        # Raw communities may come back typed; every attribute keeps its kind.
        assert [type(a) for a in back.attributes] == [type(a) for a in message.attributes]


@given(evst.updates())
def test_updates_without_raw_parts_come_back_equal(update: Update) -> None:
    typed = Update(
        tuple(a for a in update.attributes if not isinstance(a, (RawAttribute, ExtendedCommunities))),
        update.withdrawn,
        update.nlri,
    )
    assert decode_message(typed.encode()) == typed


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        message = decode_message(data)
    except DecodeError:
        return
    assert message.encode() == data


@given(st.binary(max_size=120), st.sampled_from([1, 2, 3, 4, 5]))
def test_random_bodies_raise_only_decode_error(body: bytes, kind: int) -> None:
    raw = b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes((kind,)) + body
    try:
        message = decode_message(raw)
    except DecodeError:
        return
    assert message.encode() == raw


@given(st.binary(max_size=120))
def test_random_routes_raise_only_decode_error(data: bytes) -> None:
    try:
        routes = decode_routes(data)
    except DecodeError:
        return
    assert encode_routes(routes) == data


@given(evst.bgp_messages(), st.data())
def test_truncated_and_corrupted_messages_raise_only_decode_error(message: codec.Message, data: st.DataObject) -> None:
    raw = message.encode()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_message(raw[:cut])
    # A truncated message inside a correct header: the body parsers must catch it.
    body = raw[19:cut] if cut > 19 else b""
    fixed = raw[:16] + (19 + len(body)).to_bytes(2, "big") + raw[18:19] + body
    pos = data.draw(st.integers(0, len(raw) - 1))
    flipped = raw[:pos] + bytes((raw[pos] ^ data.draw(st.integers(1, 255)),)) + raw[pos + 1 :]
    for candidate in (fixed, flipped):
        try:
            back = decode_message(candidate)
        except DecodeError:
            continue
        assert back.encode() == candidate


@given(st.lists(evst.bgp_messages(), max_size=4), st.data())
def test_split_messages_keeps_the_partial_tail(messages: list[codec.Message], data: st.DataObject) -> None:
    stream = b"".join(m.encode() for m in messages)
    cut = data.draw(st.integers(0, len(stream)))
    done, rest = split_messages(stream[:cut])
    assert b"".join(m.encode() for m in done) + rest == stream[:cut]
    assert len(rest) < 65535
    again, tail = split_messages(rest + stream[cut:])
    assert [m.encode() for m in done + again] == [m.encode() for m in messages] and tail == b""


def test_split_messages_offsets_count_from_the_buffer() -> None:
    bad = Keepalive().encode() + b"\xff" * 16 + b"\x00\x14\x04\x00"
    with pytest.raises(DecodeError, match=r"^bgp at offset 35: KEEPALIVE length is 20, not 19$"):
        split_messages(bad)


# --- FRR 8.4.4's own messages (../shared/research, captured in a kernel lab) ------------------


def frr_streams() -> dict[tuple[bytes, int, bytes, int], bytes]:
    in_ci = os.environ.get("CI") == "true"
    if not FRR_PCAP.is_file() and not in_ci:
        pytest.skip(f"FRR's capture {FRR_PCAP} is not on this machine")
    streams: dict[tuple[bytes, int, bytes, int], bytes] = {}
    with FRR_PCAP.open("rb") as f:
        for _ts, _link, buf, start, end, _wire in pcap.raw_records(f):
            got = tcp_payload(bytes(buf[start:end]))
            if got and got[1] and 179 in (got[0][1], got[0][3]):
                streams[got[0]] = streams.get(got[0], b"") + got[1]
    return streams


def test_frr_messages_round_trip_and_mean_what_frr_meant() -> None:
    """Every BGP message of FRR's session decodes, re-encodes to the same bytes, and the UPDATEs
    hold what evpn-frr.md 1.8 read in them: RD router-id:2, VNI 100 in the label, RT 65000:100,
    encapsulation 8, MM:1 after the move, sticky MAC, PMSI IR with the originator, End-of-RIB."""
    streams = frr_streams()
    # FRR's two daemons opened a connection each way; one lost the collision and closed.
    assert len(streams) == 3
    messages: list[codec.Message] = []
    for stream in streams.values():
        got, rest = split_messages(stream)
        assert rest == b""
        assert b"".join(m.encode() for m in got) == stream
        messages += got
    opens = [m for m in messages if isinstance(m, Open)]
    assert {o.router_id for o in opens} == {"10.0.0.1", "10.0.0.2"}
    assert all(o.asn == 65000 and o.hold_time == 180 and o.supports(25, 70) for o in opens)
    assert RawCapability(69, bytes.fromhex("00194601")) in opens[0].capabilities  # ADD-PATH receive
    updates = [m for m in messages if isinstance(m, Update)]
    assert sum(u.is_end_of_rib for u in updates) == 2
    reached = [(u.reach.next_hop, r, u) for u in updates if u.reach for r in u.reach.routes]
    macs = {(r.mac, r.ip, nh) for nh, r, _ in reached if isinstance(r, MacIpRoute)}
    assert ("02:aa:00:00:00:10", "10.1.1.10", "10.0.0.1") in macs
    for nh, r, u in reached:
        assert isinstance(r, (MacIpRoute, InclusiveMulticastRoute))
        assert r.rd == RouteDistinguisher.ipv4(nh, 2)
        assert RouteTarget.as2(65000, 100) in u.communities and ENCAP_VXLAN in u.communities
        assert u.attributes[1:4] == (Origin(), AsPath((), 0x50), LocalPref(100))
        if isinstance(r, MacIpRoute):
            assert r.labels == (100,)
        else:
            assert u.pmsi == PmsiTunnel(nh, 100) and r.originator == nh
    moved = [
        u for nh, r, u in reached if isinstance(r, MacIpRoute) and r.mac == "02:aa:00:00:00:10" and nh == "10.0.0.2"
    ]
    assert moved[0].communities[2] == MacMobility(1)
    sticky = [u for _, r, u in reached if isinstance(r, MacIpRoute) and r.mac == "02:bb:00:00:00:01"]
    assert sticky[0].communities[2] == MacMobility(0, sticky=True)
    withdrawn = [r for u in updates if u.unreach for r in u.unreach.routes]
    assert withdrawn and all(
        isinstance(r, MacIpRoute) and r.labels == (0,) for r in withdrawn if not isinstance(r, InclusiveMulticastRoute)
    )


def test_frr_eor_is_typed() -> None:
    assert decode_message(bytes.fromhex("ff" * 16 + "001d0200000006800f03001946")) == Update((MpUnreachNlri((), 0x80),))
