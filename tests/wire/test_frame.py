"""encapsulate / decapsulate: exact frames, exact errors, Linux's choices, and round-trip properties."""

from __future__ import annotations

import copy
import pickle
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvxlan
from pyvxlan import (
    IANA_SOURCE_PORTS,
    LINUX_SOURCE_PORTS,
    ConfigError,
    Decapsulated,
    DecodeError,
    GpeHeader,
    GpeNextProtocol,
    GroupPolicy,
    MissingIFlagError,
    NotVxlanError,
    ReservedBitsError,
    TruncatedError,
    VxlanHeader,
    decapsulate,
    decapsulate_payload,
    encapsulate,
    flow_source_port,
)
from pyvxlan.strategies import EncapsulatedFrame, ethernet_frames, vxlan_frames
from pyvxlan.wire.frame import internet_checksum, overhead

INNER = bytes.fromhex("02000000aa0202000000aa010800") + bytes(28)  # 42-byte Ethernet/IPv4-ish frame


def reference_checksum(data: bytes) -> int:
    """RFC 1071 the slow, obvious way: an independent check of the library's fast version."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_pseudo_header(frame: bytes, ip_off: int) -> tuple[bytes, bytes]:
    """(pseudo header, UDP segment) of a frame whose IP header starts at ``ip_off``."""
    if frame[ip_off] >> 4 == 4:
        ihl = (frame[ip_off] & 15) * 4
        segment = frame[ip_off + ihl :]
        return frame[ip_off + 12 : ip_off + 20] + struct.pack("!BBH", 0, 17, len(segment)), segment
    segment = frame[ip_off + 40 :]
    return frame[ip_off + 8 : ip_off + 40] + struct.pack("!I3xB", len(segment), 17), segment


# --- encapsulate: exact frames ---------------------------------------------------------------


def test_encapsulate_ipv4_exact_bytes() -> None:
    frame = encapsulate(bytes(14), vni=1, src="198.51.100.1", dst="198.51.100.2", src_port=50000)
    assert frame.hex() == (
        "0200c63364020200c6336401"  # MACs derived from the addresses (locally administered)
        "0800"
        "450000320000000040112651c6336401c6336402"  # IPv4, TTL 64, no DF, checksum 0x2651
        "c35012b5001ecc41"  # UDP 50000 > 4789, length 30, checksum 0xcc41
        "0800000000000100"  # VXLAN VNI 1
        "0000000000000000000000000000"
    )


def test_encapsulate_ipv6_multicast_exact_bytes() -> None:
    frame = encapsulate(bytes(14), vni=1, src="2001:db8::1", dst="ff05::100", src_port=50000)
    assert frame.hex() == (
        "333300000100"  # RFC 2464 multicast MAC of ff05::100
        "020000000001"
        "86dd"
        "60000000001e1101"  # hop limit 1 toward the group, as Linux
        "20010db8000000000000000000000001ff050000000000000000000000000100"
        "c35012b5001ef2ec"
        "0800000000000100"
        "0000000000000000000000000000"
    )


def test_overhead_matches_linux_headroom() -> None:
    assert (overhead(4), overhead(6), overhead(4, vlan=True), overhead(6, vlan=True)) == (50, 70, 54, 74)


def test_internet_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3 sums 0001 f203 f4f5 f6f7 to 0xddf2; the checksum is its complement.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0
    assert internet_checksum(b"\x01") == 0xFEFF


@given(st.binary(max_size=200))
def test_internet_checksum_matches_reference(data: bytes) -> None:
    ours = internet_checksum(data)
    ref = reference_checksum(data)
    # The two differ only in how they write a sum of all ones (0x0000 and 0xFFFF both mean zero).
    assert ours == ref or {ours, ref} == {0, 0xFFFF}


def test_linux_multicast_ttl_1_and_unicast_ttl_64() -> None:
    m = decapsulate(encapsulate(INNER, vni=5, src="198.51.100.1", dst="239.1.1.1"))
    u = decapsulate(encapsulate(INNER, vni=5, src="198.51.100.1", dst="198.51.100.2"))
    assert (m.ttl, m.outer_eth_dst, u.ttl) == (1, "01:00:5e:01:01:01", 64)
    assert decapsulate(encapsulate(INNER, vni=5, src="198.51.100.1", dst="239.1.1.1", ttl=8)).ttl == 8


def test_df_tos_ip_id_vlan_and_macs() -> None:
    frame = encapsulate(
        INNER,
        vni=5,
        src="198.51.100.1",
        dst="198.51.100.2",
        df=True,
        tos=0xB8,
        ip_id=0x1234,
        vlan=100,
        eth_src="02:aa:bb:cc:dd:01",
        eth_dst=b"\x02\xaa\xbb\xcc\xdd\x02",
    )
    assert frame[12:18] == bytes.fromhex("8100 0064 0800".replace(" ", ""))
    assert frame[18 + 1] == 0xB8
    assert frame[18 + 4 : 18 + 8] == bytes.fromhex("12344000")  # id, DF set
    d = decapsulate(frame)
    assert (d.vlans, d.outer_eth_src, d.outer_eth_dst) == ((100,), "02:aa:bb:cc:dd:01", "02:aa:bb:cc:dd:02")


def test_udp_checksum_may_be_left_out_over_ipv4_and_ipv6() -> None:
    """Linux's udp6zerocsumtx sends a zero UDP checksum over IPv6 (RFC 6935 allows it for tunnels)."""
    d = decapsulate(encapsulate(INNER, vni=5, src="198.51.100.1", dst="198.51.100.2", udp_checksum=False))
    assert d.udp_checksum == 0
    d6 = decapsulate(encapsulate(INNER, vni=5, src="2001:db8::1", dst="2001:db8::2", udp_checksum=False))
    assert (d6.udp_checksum, d6.ip_version) == (0, 6)


def test_gpe_header_is_carried_on_4790() -> None:
    g = GpeHeader(vni=9, next_protocol=GpeNextProtocol.IPV4)
    inner_ip = bytes.fromhex("4500001c000000004001") + bytes(18)
    d = decapsulate(encapsulate(inner_ip, header=g, src="198.51.100.1", dst="198.51.100.2", dst_port=4790))
    assert d.header == g and type(d.header) is GpeHeader
    assert bytes(d.inner) == inner_ip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dst": "2001:db8::2"}, "dst: 2001:db8::2 is IPv6 but src 198.51.100.1 is IPv4"),
        ({"src": "198.51.100"}, "src: '198.51.100' is not an IPv4 or IPv6 address"),
        ({"vni": None}, "vni: give vni or header"),
        ({"header": VxlanHeader(6)}, "vni: 5 disagrees with header.vni 6"),
        ({"vni": 1 << 24}, "vni: must be in 0..16777215, got 16777216"),
        ({"port_range": (60000, 50000)}, "port_range: must be 1 <= low <= high <= 65535, got (60000, 50000)"),
        ({"src_port": 65536}, "src_port: must be in 0..65535, got 65536"),
        ({"dst_port": -1}, "dst_port: must be in 1..65535, got -1"),
        ({"dst_port": 0}, "dst_port: must be in 1..65535, got 0"),
        ({"dst_port": True}, "dst_port: must be an int, got bool True"),
        ({"ip_id": 70000}, "ip_id: must be in 0..65535, got 70000"),
        ({"src": 5}, "src: must be an IPv4 or IPv6 address as text, got int 5"),
        ({"header": "x"}, "header: must be a VxlanHeader or a GpeHeader, got str 'x'"),
        ({"ttl": 256}, "ttl: must be in 0..255, got 256"),
        ({"tos": 256}, "tos: must be in 0..255, got 256"),
        ({"vlan": 4096}, "vlan: must be in 0..4095, got 4096"),
        ({"eth_src": "02:00:00:00:00"}, "eth_src: '02:00:00:00:00' is not a MAC address"),
        ({"eth_dst": b"\x01"}, "eth_dst: a MAC address is 6 bytes, got 1"),
        ({"inner": bytes(65536)}, "inner: 65536 bytes do not fit in one UDP datagram"),
        ({"inner": bytes(65500)}, "inner: 65500 bytes do not fit in one IPv4 packet"),
    ],
)
def test_encapsulate_config_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"inner": INNER, "vni": 5, "src": "198.51.100.1", "dst": "198.51.100.2"}
    args.update(kwargs)
    inner = args.pop("inner")
    with pytest.raises(ConfigError) as info:
        encapsulate(inner, **args)  # type: ignore[arg-type]
    assert str(info.value) == message


# --- source port -------------------------------------------------------------------------------


def _udp_inner(sport: int, payload: bytes) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, 17, 0, b"\xcb\x00\x71\x01", b"\xcb\x00\x71\x02"
    )
    return (
        bytes.fromhex("02000000aa0202000000aa010800")
        + ip
        + struct.pack("!HHHH", sport, 53, 8 + len(payload), 0)
        + payload
    )


def test_source_port_hashes_the_flow_not_the_payload() -> None:
    a = flow_source_port(_udp_inner(1000, b"first"))
    assert a == flow_source_port(_udp_inner(1000, b"second, longer payload"))
    assert len({flow_source_port(_udp_inner(p, b"x")) for p in range(1000, 1020)}) > 10


def test_source_port_is_stable_across_runs() -> None:
    # CRC-32 (not hash()) of MACs + IPv4 addresses + protocol, times the 32-bit golden ratio
    # (Fibonacci hashing), scaled into [low, high): the same inner frame gives the same port in
    # every process.
    key = INNER[0:12] + INNER[26:34] + INNER[23:24]
    h = (zlib.crc32(key) * 0x9E3779B1) & 0xFFFFFFFF
    assert 49152 + ((h * 16383) >> 32) == 54755
    assert flow_source_port(INNER) == 54755
    assert flow_source_port(INNER, LINUX_SOURCE_PORTS) == 42424
    assert flow_source_port(b"") == 49152


@given(ethernet_frames(), st.sampled_from([IANA_SOURCE_PORTS, LINUX_SOURCE_PORTS, (1, 1), (4000, 4001)]))
def test_source_port_in_range_and_stable(inner: bytes, port_range: tuple[int, int]) -> None:
    port = flow_source_port(inner, port_range)
    # udp_flow_src_port: [low, high), and an empty range means the local port range.
    low, high = port_range if port_range[0] < port_range[1] else LINUX_SOURCE_PORTS
    assert low <= port < high
    assert flow_source_port(bytearray(inner), port_range) == port
    d = decapsulate(encapsulate(inner, vni=1, src="198.51.100.1", dst="198.51.100.2", port_range=port_range))
    assert d.src_port == port


# --- decapsulate: exact errors -----------------------------------------------------------------


def _frame(**kwargs: object) -> bytearray:
    args: dict[str, object] = {"vni": 5, "src": "198.51.100.1", "dst": "198.51.100.2", "src_port": 50000}
    args.update(kwargs)
    return bytearray(encapsulate(INNER, **args))  # type: ignore[arg-type]


def _patched(frame: bytearray, offset: int, value: bytes) -> bytearray:
    frame[offset : offset + len(value)] = value
    return frame


V4 = _frame()
V6 = _frame(src="2001:db8::1", dst="2001:db8::2")


@pytest.mark.parametrize(
    ("frame", "error", "message"),
    [
        (bytes(13), TruncatedError, "ethernet at offset 0: need 14 bytes, got 13"),
        (bytes(12) + b"\x81\x00\x00", TruncatedError, "ethernet at offset 14: 802.1Q tag needs 4 bytes, got 1"),
        (
            bytes(12) + b"\x08\x06" + bytes(28),
            NotVxlanError,
            "ethernet at offset 12: ethertype 0x0806 is not IPv4 or IPv6",
        ),
        (V4[:30], TruncatedError, "ipv4 at offset 14: need 20 bytes, got 16"),
        (_patched(_frame(), 14, b"\x65"), DecodeError, "ipv4 at offset 14: version 6 is not 4"),
        (_patched(_frame(), 14, b"\x44"), DecodeError, "ipv4 at offset 14: header length 16 is under 20"),
        (
            _patched(_frame(), 16, b"\x00\x10"),
            DecodeError,
            "ipv4 at offset 14: total length 16 is under the header length 20",
        ),
        (
            _patched(_frame(), 16, b"\x01\x00"),
            TruncatedError,
            "ipv4 at offset 14: total length 256 exceeds the 78 bytes captured",
        ),
        (_patched(_frame(), 23, b"\x06"), NotVxlanError, "ipv4 at offset 23: protocol 6 is not UDP"),
        (
            _patched(_frame(), 20, b"\x20\x00"),
            DecodeError,
            "ipv4 at offset 20: a fragment cannot be decoded without reassembly",
        ),
        (V6[:50], TruncatedError, "ipv6 at offset 14: need 40 bytes, got 36"),
        (
            _patched(_frame(src="2001:db8::1", dst="2001:db8::2"), 14, b"\x40"),
            DecodeError,
            "ipv6 at offset 14: version 4 is not 6",
        ),
        (
            _patched(_frame(src="2001:db8::1", dst="2001:db8::2"), 18, b"\x01\x00"),
            TruncatedError,
            "ipv6 at offset 14: payload length 256 exceeds the 58 bytes captured",
        ),
        (
            _patched(_frame(src="2001:db8::1", dst="2001:db8::2"), 20, b"\x06"),
            NotVxlanError,
            "ipv6 at offset 54: next header 6 is not UDP",
        ),
        (
            _patched(_frame(src="2001:db8::1", dst="2001:db8::2"), 20, b"\x2c"),
            DecodeError,
            "ipv6 at offset 54: a fragment cannot be decoded without reassembly",
        ),
        (_patched(_frame(), 16, b"\x00\x1a"), TruncatedError, "udp at offset 34: need 8 bytes, got 6"),
        (_patched(_frame(), 38, b"\x00\x07"), DecodeError, "udp at offset 34: length 7 is under 8"),
        (
            _patched(_frame(), 38, b"\x01\x00"),
            TruncatedError,
            "udp at offset 34: length 256 exceeds the 58 bytes of the IP payload",
        ),
        (
            _patched(_frame(), 36, b"\x00\x35"),
            NotVxlanError,
            "udp at offset 36: destination port 53 is not a VXLAN port",
        ),
        (_patched(_frame(), 38, b"\x00\x0d"), TruncatedError, "vxlan at offset 42: need 8 bytes, got 5"),
        (
            _patched(_frame(), 38, b"\x00\x1d"),
            TruncatedError,
            "ethernet at offset 50: inner frame needs 14 bytes, got 13",
        ),
        (
            _patched(_frame(dst_port=4790), 38, b"\x00\x0d"),
            TruncatedError,
            "vxlan-gpe at offset 42: need 8 bytes, got 5",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_decapsulate_errors_name_layer_and_offset(frame: bytes, error: type[DecodeError], message: str) -> None:
    with pytest.raises(error) as info:
        decapsulate(frame)
    assert str(info.value) == message
    assert type(info.value) is error


def test_ipv4_header_longer_than_the_frame() -> None:
    with pytest.raises(TruncatedError) as info:
        decapsulate(_patched(_frame(), 14, b"\x4f")[:60])
    assert str(info.value) == "ipv4 at offset 14: header needs 60 bytes, got 46"


def test_ipv6_extension_header_skipped_and_truncated_extension_refused() -> None:
    frame = bytearray(V6)
    # Insert an 8-byte destination-options header (next header UDP) between IPv6 and UDP.
    ext = bytes((17, 0)) + bytes(6)
    frame = frame[:54] + ext + frame[54:]
    frame[20] = 60
    frame[18:20] = struct.pack("!H", len(frame) - 54)
    d = decapsulate(frame)
    assert (d.header.vni, bytes(d.inner)) == (5, INNER)
    with pytest.raises(TruncatedError) as info:
        decapsulate(frame[:58], ports=(4789,))
    assert str(info.value) == "ipv6 at offset 14: payload length 66 exceeds the 4 bytes captured"
    short = bytearray(frame[:60])
    short[18:20] = b"\x00\x06"
    with pytest.raises(TruncatedError, match=r"^ipv6 at offset 54: extension header needs 8 bytes$"):
        decapsulate(short)


def test_strict_decoding_passes_through_to_the_header() -> None:
    frame = _patched(_frame(), 42, b"\x00")
    assert decapsulate(frame).header.i_flag is False
    with pytest.raises(MissingIFlagError, match=r"^vxlan at offset 42: I flag \(VNI valid\) is clear$"):
        decapsulate(frame, strict=True)
    gbp = _frame(header=VxlanHeader(5, group_policy=GroupPolicy(7)))
    with pytest.raises(ReservedBitsError, match=r"^vxlan at offset 42: reserved bits 0x8000000700000000 are set"):
        decapsulate(gbp, strict=True)
    assert decapsulate(gbp, strict=True, gbp=True).header == VxlanHeader(5, group_policy=GroupPolicy(7))


def test_ports_are_configurable() -> None:
    frame = _frame(dst_port=4790)
    assert type(decapsulate(frame).header) is GpeHeader
    assert type(decapsulate(frame, ports=(4790,), gpe_ports=()).header) is VxlanHeader
    with pytest.raises(NotVxlanError, match=r"destination port 8472 is not a VXLAN port$"):
        decapsulate(_frame(dst_port=8472), ports=(4789,))


def test_zero_lengths_of_gso_and_big_tcp_mean_to_the_end() -> None:
    frame = _patched(_patched(_frame(), 16, b"\x00\x00"), 38, b"\x00\x00")
    assert bytes(decapsulate(frame).inner) == INNER
    v6 = _patched(_patched(_frame(src="2001:db8::1", dst="2001:db8::2"), 18, b"\x00\x00"), 58, b"\x00\x00")
    assert bytes(decapsulate(v6).inner) == INNER


def test_ethernet_padding_after_the_datagram_is_not_inner() -> None:
    assert bytes(decapsulate(bytes(V4) + bytes(6)).inner) == INNER


def test_inner_is_a_view_into_the_buffer() -> None:
    frame = bytes(V4)
    d = decapsulate(frame)
    assert isinstance(d.inner, memoryview) and d.inner.obj is frame
    assert (d.inner_offset, d.ip_version, d.outer_src_packed) == (50, 4, bytes.fromhex("c6336401"))
    assert repr(d) == (
        "Decapsulated(header=VxlanHeader(vni=5), inner=b'\\x02\\x00\\x00\\x00\\xaa\\x02\\x02\\x00\\x00\\x00\\xaa\\x01"
        "\\x08\\x00" + "\\x00" * 28 + "', outer_src='198.51.100.1', outer_dst='198.51.100.2', "
        "src_port=50000, dst_port=4789, ttl=64, vlans=(), outer_eth_dst='02:00:c6:33:64:02', "
        "outer_eth_src='02:00:c6:33:64:01', inner_offset=50, udp_checksum=0x6805)"
    )
    assert d == decapsulate(bytearray(frame)) and d != frame


def test_decapsulated_repr_is_the_call_that_rebuilds_it() -> None:
    """Issue 9: every value's repr evaluates back to an equal value; Decapsulated's too."""
    for frame in (bytes(V4), encapsulate(INNER, vni=7, src="2001:db8::1", dst="ff05::100", vlan=30)):
        d = decapsulate(frame)
        assert eval(repr(d), vars(pyvxlan)) == d
        assert pickle.loads(pickle.dumps(d)) == d and copy.copy(d) == d
    with pytest.raises(ConfigError, match=r"^outer_dst: 2001:db8::2 is IPv6 but outer_src 198\.51\.100\.1 is IPv4$"):
        pyvxlan.Decapsulated(
            header=VxlanHeader(1),
            inner=INNER,
            outer_src="198.51.100.1",
            outer_dst="2001:db8::2",
            src_port=1,
            dst_port=4789,
            ttl=64,
        )


def test_decapsulate_payload() -> None:
    header, inner = decapsulate_payload(bytes.fromhex("8800000700000500") + INNER, gbp=True, strict=True)
    assert (header, bytes(inner)) == (VxlanHeader(5, group_policy=GroupPolicy(7)), INNER)
    with pytest.raises(TruncatedError, match=r"^ethernet at offset 8: inner frame needs 14 bytes, got 13$"):
        decapsulate_payload(bytes.fromhex("0800000000000500") + bytes(13))
    with pytest.raises(TruncatedError, match=r"^vxlan at offset 0: need 8 bytes, got 7$"):
        decapsulate_payload(bytes(7))
    with pytest.raises(MissingIFlagError):
        decapsulate_payload(bytes(22), strict=True)


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=150)
@given(vxlan_frames())
def test_decapsulate_returns_every_field_encapsulate_put_in(f: EncapsulatedFrame) -> None:
    d = decapsulate(f.frame)
    assert d.header == f.header
    assert bytes(d.inner) == f.inner
    assert (d.outer_src, d.outer_dst, d.src_port, d.dst_port, d.ttl) == (f.src, f.dst, f.src_port, f.dst_port, f.ttl)
    assert d.vlans == (() if f.vlan is None else (f.vlan,))
    assert d.ip_version == f.ip_version
    assert d.inner_offset == len(f.frame) - len(f.inner)
    strict = decapsulate(f.frame, strict=True, gbp=f.header.group_policy is not None)
    assert strict == d


@settings(max_examples=150)
@given(vxlan_frames())
def test_checksums_verify(f: EncapsulatedFrame) -> None:
    ip_off = 14 if f.vlan is None else 18
    frame = f.frame
    if f.ip_version == 4:
        assert reference_checksum(frame[ip_off : ip_off + 20]) == 0
    pseudo, segment = udp_pseudo_header(frame, ip_off)
    udp_csum = struct.unpack_from("!H", segment, 6)[0]
    assert udp_csum != 0  # always computed; over IPv6 it is mandatory
    assert reference_checksum(pseudo + segment) == 0


@settings(max_examples=100)
@given(vxlan_frames(multicast=True))
def test_multicast_frames_leave_with_ttl_1_to_the_group_mac(f: EncapsulatedFrame) -> None:
    d = decapsulate(f.frame)
    assert d.ttl == 1
    assert d.outer_eth_dst == ("01:00:5e:01:01:01" if f.ip_version == 4 else "33:33:00:00:01:00")


@settings(max_examples=400)
@given(st.binary(max_size=120))
def test_any_bytes_decapsulate_or_raise_decode_error(data: bytes) -> None:
    try:
        d = decapsulate(data)
    except DecodeError:
        return
    assert isinstance(d, Decapsulated)


@settings(max_examples=400)
@given(vxlan_frames(), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6), st.integers(0, 200))
def test_mutated_frames_decapsulate_or_raise_decode_error(
    f: EncapsulatedFrame, flips: list[tuple[int, int]], cut: int
) -> None:
    # Mutations of real frames reach far deeper than random bytes: the fuzzing invariant as a property.
    frame = bytearray(f.frame)
    for pos, value in flips:
        if pos < len(frame):
            frame[pos] = value
    data = bytes(frame[: len(frame) - cut]) if cut < len(frame) else b""
    for strict in (False, True):
        try:
            d = decapsulate(data, strict=strict)
        except DecodeError:
            continue
        assert isinstance(d, Decapsulated)
        _ = (d.header.vni, d.outer_src, d.outer_dst, d.outer_eth_src, bytes(d.inner), repr(d))


def test_text_cache_formats_once_and_stays_bounded() -> None:
    from pyvxlan.wire.addr import TextCache, ip_text

    made: list[bytes] = []

    def text(raw: bytes) -> str:
        made.append(raw)
        return ip_text(raw)

    texts = TextCache(text, limit=2)
    v4, v6 = bytes((198, 51, 100, 1)), bytes.fromhex("20010db8000000000000000000000001")
    assert (texts[v4], texts[v6], texts[v4]) == ("198.51.100.1", "2001:db8::1", "198.51.100.1")
    assert made == [v4, v6]  # a hit makes nothing
    assert texts[bytes((203, 0, 113, 7))] == "203.0.113.7" and len(texts) == 1  # full: started afresh
    with pytest.raises(ConfigError, match=r"^limit: must be an int >= 1, got int 0$"):
        TextCache(ip_text, limit=0)
    with pytest.raises(ConfigError, match=r"^make: must be a function of the bytes, got str 'x'$"):
        TextCache("x")  # type: ignore[arg-type]
