"""VxlanHeader, GroupPolicy and GpeHeader: exact encodings, strict rules, and round trips."""

from __future__ import annotations

import copy
import inspect
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvxlan
from pyvxlan import (
    ConfigError,
    DecodeError,
    GpeHeader,
    GpeNextProtocol,
    GroupPolicy,
    MissingIFlagError,
    ReservedBitsError,
    TruncatedError,
    VxlanHeader,
)
from pyvxlan.strategies import gpe_headers, group_policies, header_bytes, vnis, vxlan_headers

# --- exact values -----------------------------------------------------------------------------


def test_plain_header_encodes_i_flag_and_vni() -> None:
    h = VxlanHeader(vni=0x123456)
    assert h.encode() == bytes.fromhex("0800000012345600")
    assert (h.vni, h.i_flag, h.flags, h.group_policy, h.reserved) == (0x123456, True, 0x08, None, 0)
    assert (h.word0, h.word1) == (0x08000000, 0x12345600)
    assert repr(h) == "VxlanHeader(vni=1193046)"


def test_vni_limits() -> None:
    assert VxlanHeader(vni=0).encode() == bytes.fromhex("0800000000000000")
    assert VxlanHeader(vni=16777215).encode() == bytes.fromhex("08000000ffffff00")
    with pytest.raises(ConfigError) as info:
        VxlanHeader(vni=16777216)
    assert str(info.value) == "vni: must be in 0..16777215, got 16777216"
    assert info.value.field == "vni"
    with pytest.raises(ConfigError, match=r"^vni: must be in 0\.\.16777215, got -1$"):
        VxlanHeader(vni=-1)


def test_gbp_bits_at_linux_and_wireshark_positions() -> None:
    # Same bytes as the shared vector "GBP: flags=0x88, gpflags D+A, policy 50000, VNI 100".
    h = VxlanHeader(vni=100, group_policy=GroupPolicy(policy_id=50000, dont_learn=True, policy_applied=True))
    assert h.encode() == bytes.fromhex("8848c35000006400")
    assert h.group_policy == GroupPolicy(policy_id=50000, dont_learn=True, policy_applied=True)
    assert h.reserved == 0
    assert repr(h) == (
        "VxlanHeader(vni=100, group_policy=GroupPolicy(policy_id=50000, dont_learn=True, policy_applied=True))"
    )
    # A alone is byte 1 0x08 (gopacket's 0x80 would be a reserved bit here).
    only_a = VxlanHeader(vni=1, group_policy=GroupPolicy(policy_applied=True))
    assert only_a.encode() == bytes.fromhex("8808000000000100")
    assert VxlanHeader.decode(bytes.fromhex("8880000000000100")).group_policy == GroupPolicy()
    assert VxlanHeader.decode(bytes.fromhex("8880000000000100")).reserved == 0x0080000000000000


def test_group_policy_id_range() -> None:
    with pytest.raises(ConfigError) as info:
        GroupPolicy(policy_id=65536)
    assert str(info.value) == "policy_id: must be in 0..65535, got 65536"


def test_reserved_bits_kept_and_reported() -> None:
    raw = bytes.fromhex("0a0000000000055a")  # shared vector: flags 0x0A, last byte 0x5A, VNI 5
    h = VxlanHeader.decode(raw)
    assert (h.vni, h.i_flag, h.reserved, h.encode()) == (5, True, 0x020000000000005A, raw)
    assert repr(h) == "VxlanHeader(vni=5, reserved=0x020000000000005a)"
    assert VxlanHeader(5, reserved=0x020000000000005A) == h


def test_reserved_overlapping_a_field_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        VxlanHeader(1, reserved=0x0000000000000100)
    assert str(info.value) == "reserved: 0x0000000000000100 overlaps the flags, policy or VNI fields"
    with pytest.raises(ConfigError, match="overlaps"):
        VxlanHeader(1, reserved=0x0800000000000000)  # the I flag
    with pytest.raises(ConfigError, match="overlaps"):
        VxlanHeader(1, reserved=0x8000000000000000)  # G would silently make it a GBP header
    with pytest.raises(ConfigError, match="overlaps"):
        VxlanHeader(1, group_policy=GroupPolicy(), reserved=0x0000000100000000)  # the policy id
    with pytest.raises(ConfigError) as info:
        VxlanHeader(1, reserved=1 << 64)
    assert str(info.value) == "reserved: must be a 64-bit mask, got 0x10000000000000000"


def test_gbp_header_keeps_reserved_bits_of_byte_1() -> None:
    # Byte 1 bits other than D and A are reserved in the GBP draft (VPP's E and S): a decoded
    # header reports them, and the constructor takes them back.
    h = VxlanHeader.decode(bytes.fromhex("8830000700000100"))
    assert (h.group_policy, h.reserved) == (GroupPolicy(policy_id=7), 0x0030000000000000)
    assert VxlanHeader(1, group_policy=GroupPolicy(7), reserved=0x0030000000000000) == h


def test_i_flag_clear_is_kept() -> None:
    h = VxlanHeader(vni=100, i_flag=False)
    assert h.encode() == bytes.fromhex("0000000000006400")
    assert repr(h) == "VxlanHeader(vni=100, i_flag=False)"


def test_from_words_and_its_range_check() -> None:
    assert VxlanHeader.from_words(0x08000000, 0x00000A00) == VxlanHeader(10)
    with pytest.raises(ConfigError) as info:
        VxlanHeader.from_words(1 << 32, 0)
    assert str(info.value) == "word0: must be in 0..4294967295, got 4294967296"
    assert info.value.field == "word0"


def test_decode_at_offset_and_from_memoryview() -> None:
    buf = memoryview(b"\xff" * 3 + bytes.fromhex("0800000000000a00") + b"\xff")
    assert VxlanHeader.decode(buf, offset=3) == VxlanHeader(10)
    assert VxlanHeader.decode(bytearray(buf), offset=3) == VxlanHeader(10)
    assert GpeHeader.decode(buf, offset=3) == GpeHeader.from_words(0x08000000, 0x00000A00)


def test_decode_offsets_count_bytes_whatever_the_buffer_item_size() -> None:
    # As struct.unpack_from does: a memoryview of 32-bit items is read as its bytes.
    words = memoryview(bytes.fromhex("ffffffff0800000000000a00")).cast("I")
    assert (len(words), VxlanHeader.decode(words, offset=4)) == (3, VxlanHeader(10))
    assert VxlanHeader.decode(words[1:]) == VxlanHeader(10)


def test_decode_rejects_what_is_not_a_buffer_or_an_offset() -> None:
    # bytes(8) would be eight zero bytes: an int must not pass for a header.
    with pytest.raises(ConfigError, match=r"^data: must be a bytes-like object, got int 8$"):
        VxlanHeader.decode(8)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^data: must be a bytes-like object, got str '0800000000000a00'$"):
        GpeHeader.decode("0800000000000a00")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^data: must be a bytes-like object, got NoneType None$"):
        VxlanHeader.decode(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^offset: must be >= 0, got -8$"):
        VxlanHeader.decode(bytes(16), offset=-8)
    with pytest.raises(ConfigError, match=r"^offset: must be an int, got float 1\.0$"):
        VxlanHeader.decode(bytes(16), offset=1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^offset: must be an int, got bool True$"):
        VxlanHeader.decode(bytes(16), offset=True)


def test_the_class_call_builds_from_fields_and_says_so() -> None:
    assert str(inspect.signature(VxlanHeader)) == (
        "(vni: 'int' = 0, *, group_policy: 'GroupPolicy | None' = None, i_flag: 'bool' = True, reserved: 'int' = 0)"
        " -> 'None'"
    )
    assert str(inspect.signature(GpeHeader)).startswith("(vni: 'int' = 0, *, next_protocol: 'GpeNextProtocol | int'")
    with pytest.raises(TypeError, match=r"takes from 1 to 2 positional arguments but 3 were given$"):
        VxlanHeader(10, 20)  # type: ignore[call-arg, arg-type]
    assert type(VxlanHeader) is type and type(GpeHeader) is type  # no metaclass


def test_a_header_holds_its_eight_wire_bytes() -> None:
    h = VxlanHeader(10, group_policy=GroupPolicy(50000, dont_learn=True))
    raw = bytes.fromhex("8840c35000000a00")
    assert (bytes(h), h.encode(), h.flags) == (raw, raw, 0x88)
    assert type(h.encode()) is bytes and type(bytes(h)) is bytes
    inner = bytes(14)
    assert h.encode() + inner == raw + inner  # a UDP payload
    # not a bytes or str look-alike: bytes' and str's methods are not a header's
    for name in ("upper", "replace", "hex", "__len__", "__getitem__", "__add__", "__iter__"):
        assert not hasattr(h, name), name
    assert str(h) == repr(h) == f"{h}"
    assert type(VxlanHeader.decode(raw)) is VxlanHeader and type(GpeHeader.decode(raw)) is GpeHeader
    # equal only to headers of its own type, so a set or dict key never mixes them with bytes
    assert h != raw and raw != h and hash(h) != hash(raw)
    assert len({h, VxlanHeader.decode(raw), GpeHeader.decode(raw), raw}) == 3


def test_truncated_header_names_layer_and_offset() -> None:
    with pytest.raises(TruncatedError) as info:
        VxlanHeader.decode(bytes(5))
    assert str(info.value) == "vxlan at offset 0: need 8 bytes, got 5"
    assert (info.value.layer, info.value.offset) == ("vxlan", 0)
    with pytest.raises(TruncatedError, match=r"^vxlan at offset 12: need 8 bytes, got 0$"):
        VxlanHeader.decode(bytes(10), offset=12)


def test_with_fields() -> None:
    h = VxlanHeader.decode(bytes.fromhex("0a0000000000055a"))
    g = h.with_fields(vni=7, group_policy=GroupPolicy(policy_id=3))
    assert g.encode() == bytes.fromhex("8a0000030000075a")
    assert g.with_fields(group_policy=None).encode() == bytes.fromhex("0a0000000000075a")
    assert h.with_fields(i_flag=False).encode() == bytes.fromhex("020000000000055a")
    with pytest.raises(ConfigError, match=r"^vni: must be in 0\.\.16777215, got 16777216$"):
        h.with_fields(vni=1 << 24)


def test_equality_is_by_type_and_words() -> None:
    assert VxlanHeader(10) == VxlanHeader(10)
    assert VxlanHeader(10) != VxlanHeader(11)
    assert VxlanHeader(10) != (0x08000000, 0x00000A00)  # not a plain tuple
    assert VxlanHeader(10) != GpeHeader.from_words(0x08000000, 0x00000A00)
    assert hash(VxlanHeader(10)) == hash(VxlanHeader.decode(VxlanHeader(10).encode()))
    assert len({VxlanHeader(10), VxlanHeader(10), VxlanHeader(11)}) == 2


def test_headers_are_immutable() -> None:
    h = VxlanHeader(10)
    with pytest.raises(AttributeError):
        h.vni = 11  # type: ignore[misc]
    with pytest.raises(AttributeError):
        h.extra = 1  # type: ignore[attr-defined]


# --- strict (Linux vxlan_rcv) rules -------------------------------------------------------------


def test_strict_rule_i_flag_required() -> None:
    with pytest.raises(MissingIFlagError) as info:
        VxlanHeader.decode(bytes.fromhex("0000000000006400"), strict=True)
    assert str(info.value) == "vxlan at offset 0: I flag (VNI valid) is clear"
    assert isinstance(info.value, DecodeError) and isinstance(info.value, ValueError)


def test_strict_rule_i_flag_checked_before_reserved_bits() -> None:
    # Linux checks the I flag first: a header that breaks both rules names the I flag.
    with pytest.raises(MissingIFlagError):
        VxlanHeader.decode(bytes.fromhex("f7ffffff000000ff"), strict=True)


def test_strict_rule_reserved_bits_rejected() -> None:
    with pytest.raises(ReservedBitsError) as info:
        VxlanHeader.decode(bytes.fromhex("0a0000000000055a"), strict=True)
    assert str(info.value) == "vxlan at offset 0: reserved bits 0x020000000000005a are set"


def test_strict_rule_gbp_needs_gbp_enabled() -> None:
    raw = bytes.fromhex("8848c35000006400")
    with pytest.raises(ReservedBitsError) as info:
        VxlanHeader.decode(raw, strict=True)
    assert str(info.value) == (
        "vxlan at offset 0: reserved bits 0x8048c35000000000 are set (G bit set but GBP is not enabled)"
    )
    assert VxlanHeader.decode(raw, strict=True, gbp=True).group_policy == GroupPolicy(50000, True, True)


def test_strict_gbp_device_accepts_all_of_bytes_1_to_3() -> None:
    # VXLAN_GBP_USED_BITS = G | 0xFFFFFF: a GBP device does not police byte 1's other bits.
    h = VxlanHeader.decode(bytes.fromhex("88ff000100000100"), strict=True, gbp=True)
    assert h.reserved == 0x00B7000000000000  # still reported: they are reserved in the GBP draft
    with pytest.raises(ReservedBitsError, match=r"reserved bits 0x4000000000000000 are set$"):
        VxlanHeader.decode(bytes.fromhex("c800000000000100"), strict=True, gbp=True)


def test_lenient_decode_accepts_what_strict_rejects() -> None:
    for raw in ("0000000000006400", "0a0000000000055a", "8848c35000006400", "ffffffffffffffff"):
        assert VxlanHeader.decode(bytes.fromhex(raw)).encode().hex() == raw


# --- GPE ---------------------------------------------------------------------------------------


def test_gpe_exact_bytes() -> None:
    g = GpeHeader(vni=4660, next_protocol=GpeNextProtocol.NSH)
    assert g.encode() == bytes.fromhex("0c00000400123400")
    assert (g.version, g.i_flag, g.p_flag, g.bum, g.oam, g.next_protocol, g.reserved) == (
        0,
        True,
        True,
        False,
        False,
        GpeNextProtocol.NSH,
        0,
    )
    assert repr(g) == "GpeHeader(vni=4660, next_protocol=GpeNextProtocol.NSH)"
    bo = GpeHeader.decode(bytes.fromhex("0f00000100000d00"))  # shared vector: B and O set
    assert (bo.bum, bo.oam, bo.next_protocol, bo.vni) == (True, True, GpeNextProtocol.IPV4, 13)
    assert repr(bo) == "GpeHeader(vni=13, next_protocol=GpeNextProtocol.IPV4, bum=True, oam=True)"


def test_gpe_next_protocol_5_is_mpls_as_linux_and_wireshark_read_it() -> None:
    assert GpeHeader.decode(bytes.fromhex("0c00000500000100")).next_protocol is GpeNextProtocol.MPLS
    assert GpeNextProtocol(5).name == "MPLS"


def test_gpe_unknown_next_protocol_is_the_raw_value() -> None:
    g = GpeHeader.decode(bytes.fromhex("0c0000fe00000100"))
    assert g.next_protocol == 254 and not isinstance(g.next_protocol, GpeNextProtocol)
    assert repr(g) == "GpeHeader(vni=1, next_protocol=254)"


def test_gpe_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"^version: must be in 0\.\.3, got 4$"):
        GpeHeader(1, version=4)
    with pytest.raises(ConfigError, match=r"^next_protocol: must be in 0\.\.255, got 256$"):
        GpeHeader(1, next_protocol=256)
    with pytest.raises(ConfigError, match=r"^word1: must be in 0\.\.4294967295, got -1$"):
        GpeHeader.from_words(0, -1)


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        ("0400000300000100", MissingIFlagError, "vxlan-gpe at offset 0: I flag (VNI valid) is clear"),
        ("1c00000300000100", ReservedBitsError, "vxlan-gpe at offset 0: version 1 is not 0"),
        ("0800000300000100", ReservedBitsError, "vxlan-gpe at offset 0: P flag (next protocol present) is clear"),
        ("0d00000300000100", ReservedBitsError, "vxlan-gpe at offset 0: O flag (OAM) is set; Linux drops OAM"),
        ("0e00000300000100", ReservedBitsError, "vxlan-gpe at offset 0: reserved bits 0x0200000000000000 are set"),
        ("0c00100300000100", ReservedBitsError, "vxlan-gpe at offset 0: reserved bits 0x0000100000000000 are set"),
        ("0c00000300000101", ReservedBitsError, "vxlan-gpe at offset 0: reserved bits 0x0000000000000001 are set"),
        ("0c0000", TruncatedError, "vxlan-gpe at offset 0: need 8 bytes, got 3"),
    ],
    ids=["i-flag", "version", "p-flag", "oam", "b-bit-reserved-to-linux", "reserved16", "reserved8", "truncated"],
)
def test_gpe_strict_rules(raw: str, error: type[DecodeError], message: str) -> None:
    with pytest.raises(error) as info:
        GpeHeader.decode(bytes.fromhex(raw), strict=True)
    assert str(info.value) == message
    assert type(info.value) is error


def test_pickle_round_trip() -> None:
    for value in (
        VxlanHeader.decode(bytes.fromhex("8a48c3500000055a")),
        GpeHeader.decode(bytes.fromhex("0f00000100000d00")),
    ):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(value, protocol)) == value
        assert copy.copy(value) == value and copy.deepcopy(value) == value


# --- properties --------------------------------------------------------------------------------


@given(header_bytes())
def test_decode_is_lossless_for_any_8_bytes(raw: bytes) -> None:
    assert VxlanHeader.decode(raw).encode() == raw
    assert GpeHeader.decode(raw).encode() == raw


@given(vxlan_headers(gbp=None, reserved=True))
def test_vxlan_decode_encode_round_trip(h: VxlanHeader) -> None:
    assert VxlanHeader.decode(h.encode()) == h


@given(header_bytes())
def test_decoded_fields_rebuild_the_header(raw: bytes) -> None:
    h = VxlanHeader.decode(raw)
    rebuilt = VxlanHeader(h.vni, group_policy=h.group_policy, i_flag=h.i_flag, reserved=h.reserved)
    assert rebuilt.encode() == raw


@given(vnis(), st.one_of(st.none(), group_policies()))
def test_fields_survive_encode_decode(vni: int, policy: GroupPolicy | None) -> None:
    h = VxlanHeader.decode(VxlanHeader(vni, group_policy=policy).encode(), strict=True, gbp=policy is not None)
    assert (h.vni, h.group_policy, h.i_flag, h.reserved) == (vni, policy, True, 0)


@given(vxlan_headers(gbp=None))
def test_valid_headers_pass_linux_rules(h: VxlanHeader) -> None:
    assert VxlanHeader.decode(h.encode(), strict=True, gbp=h.group_policy is not None) == h


@given(vxlan_headers(gbp=False, reserved=True))
def test_strict_rejects_exactly_the_reserved_bits(h: VxlanHeader) -> None:
    if h.reserved:
        with pytest.raises(ReservedBitsError) as info:
            VxlanHeader.decode(h.encode(), strict=True)
        assert str(info.value) == f"vxlan at offset 0: reserved bits {h.reserved:#018x} are set"
    else:
        assert VxlanHeader.decode(h.encode(), strict=True) == h


@given(gpe_headers())
def test_gpe_round_trip(g: GpeHeader) -> None:
    d = GpeHeader.decode(g.encode())
    assert d == g
    assert (d.vni, d.version, d.i_flag, d.p_flag, d.bum, d.oam, d.next_protocol) == (
        g.vni,
        g.version,
        g.i_flag,
        g.p_flag,
        g.bum,
        g.oam,
        g.next_protocol,
    )


@given(gpe_headers(linux_valid=True))
def test_linux_valid_gpe_headers_pass_strict(g: GpeHeader) -> None:
    assert GpeHeader.decode(g.encode(), strict=True) == g


@settings(max_examples=200)
@given(st.binary(max_size=12), st.integers(0, 12), st.booleans(), st.booleans())
def test_header_decode_raises_only_decode_errors(data: bytes, offset: int, strict: bool, gbp: bool) -> None:
    for decode in (
        lambda: VxlanHeader.decode(data, strict=strict, gbp=gbp, offset=offset),
        lambda: GpeHeader.decode(data, strict=strict, offset=offset),
    ):
        try:
            decode()
        except DecodeError:
            pass


# --- repr is the constructor call ----------------------------------------------------------------


def test_gpe_reserved_bits_print_as_the_argument_that_rebuilds_them() -> None:
    """Issue 9: a GPE header with reserved bits printed ``reserved=...``, which GpeHeader refused."""
    g = GpeHeader.decode(bytes.fromhex("c0abcd0300000177"))
    assert repr(g) == (
        "GpeHeader(vni=1, next_protocol=GpeNextProtocol.ETHERNET, i_flag=False, p_flag=False,"
        " reserved=0xc0abcd0000000077)"
    )
    assert GpeHeader(1, i_flag=False, p_flag=False, reserved=0xC0ABCD0000000077) == g
    with pytest.raises(ConfigError, match=r"^reserved: 0x0800000000000000 overlaps the flags, policy or VNI fields$"):
        GpeHeader(1, reserved=0x0800000000000000)  # the I flag
    with pytest.raises(ConfigError, match=r"^reserved: 0x0000000000000100 overlaps the flags, policy or VNI fields$"):
        GpeHeader(1, reserved=0x100)  # the VNI


@given(st.binary(min_size=8, max_size=8) | header_bytes())
def test_repr_evaluates_back_to_an_equal_value_for_any_8_bytes(raw: bytes) -> None:
    """Issue 9: ``eval(repr(h)) == h`` for every one of the 2^64 bit patterns, read either way."""
    namespace = vars(pyvxlan)
    for h in (VxlanHeader.decode(raw), GpeHeader.decode(raw)):
        assert eval(repr(h), namespace) == h
    policy = VxlanHeader.decode(raw).group_policy
    if policy is not None:
        assert eval(repr(policy), namespace) == policy


def test_carries_ethernet_says_what_the_payload_is() -> None:
    assert VxlanHeader(10).carries_ethernet is True
    assert GpeHeader(10).carries_ethernet is True  # next protocol Ethernet
    assert GpeHeader(10, next_protocol=GpeNextProtocol.IPV4).carries_ethernet is False
    assert GpeHeader(10, next_protocol=GpeNextProtocol.IPV4, p_flag=False).carries_ethernet is True  # P clear
