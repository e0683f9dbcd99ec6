"""Issue 10, "The API validates its inputs": every public constructor and function of the codecs
checks types and ranges at the boundary and answers a wrong input with a library error naming the
field (``ConfigError.field``, or the field's name in the message); ``bool`` is not an int here.

The property test is driven by ``TABLE``: one :class:`Entry` per callable, with arguments that work
and, per field, a strategy of wrong values for it. To cover another callable (``VtepConfig``,
``FdbEntry``, ``Neighbour``, ``flow_source_port``...), append an ``Entry``; the field strategies
below (``int_field``, ``NOT_BOOL``, ``NOT_ADDRESS``...) are meant to be reused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvxlan
import pyvxlan.wire.addr
from pyvxlan import (
    ConfigError,
    Decapsulated,
    GpeHeader,
    GroupPolicy,
    VxlanError,
    VxlanHeader,
    decapsulate,
    decapsulate_payload,
    encapsulate,
    strategies,
)
from pyvxlan.wire.addr import (
    TextCache,
    format_mac,
    ip_info,
    ip_text,
    is_multicast_mac,
    multicast_mac_for,
    normalize_ip,
    normalize_mac,
    parse_mac,
)
from pyvxlan.wire.frame import internet_checksum, overhead
from pyvxlan.wire.header import VNI_MAX

# The cases below pass wrong types on purpose; through this name the type checker lets them.
api: Any = SimpleNamespace(**{**vars(pyvxlan), **vars(pyvxlan.wire.addr), "overhead": overhead})

# --- wrong values, by kind ---------------------------------------------------------------------

_OBJECTS = st.one_of(
    st.builds(object),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
)


def _no_none(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy.filter(lambda v: v is not None)


#: Anything but an int: bools, floats (5.0 included), text, bytes, None, containers.
NOT_INT: st.SearchStrategy[Any] = st.one_of(
    st.booleans(), st.floats(), st.text(max_size=4), st.binary(max_size=4), st.none(), _OBJECTS
)
#: Anything but True and False: 0 and 1 included.
NOT_BOOL: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.floats(), st.text(max_size=3), st.binary(max_size=2), st.none(), _OBJECTS
)
#: Anything that is not a bytes-like object: an int would otherwise become that many zero bytes.
NOT_BYTES: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.booleans(), st.floats(), st.text(max_size=4), st.none(), _OBJECTS
)


def int_field(low: int, high: int | None, *, none_ok: bool = False) -> st.SearchStrategy[Any]:
    """Wrong values for an int field in ``low..high``: other types, then ints just and far outside."""
    outside = st.integers(max_value=low - 1)
    if high is not None:
        outside |= st.integers(min_value=high + 1)
    return (_no_none(NOT_INT) if none_ok else NOT_INT) | outside


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_MAC = re.compile(r"[0-9A-Fa-f]{1,2}([:-][0-9A-Fa-f]{1,2}){5}")

#: Not an IP address as text: ints (which ipaddress reads as 0.0.0.5), packed bytes, junk text.
NOT_ADDRESS: st.SearchStrategy[Any] = st.one_of(
    st.integers(),
    st.booleans(),
    st.binary(min_size=4, max_size=4),
    st.binary(min_size=16, max_size=16),
    st.floats(),
    st.none(),
    _OBJECTS,
    st.text(max_size=12).filter(lambda t: not _is_ip(t)),
    st.sampled_from(["198.51.100", "198.51.100.256", " 198.51.100.1", "2001:db8::g"]),
)
#: Not a MAC: wrong lengths, non-hex text (" a", "+a", other scripts' digits), ints.
NOT_MAC: st.SearchStrategy[Any] = st.one_of(
    st.integers(),
    st.booleans(),
    st.floats(),
    st.binary(max_size=8).filter(lambda b: len(b) != 6),
    _OBJECTS,
    st.text(max_size=20).filter(lambda t: _MAC.fullmatch(t) is None),
    st.sampled_from([" a:00:00:00:00:00", "+a:00:00:00:00:00", "\u0661:00:00:00:00:00", "zz", "02:00:00:00:00"]),
)
#: Not a collection of UDP ports.
NOT_PORTS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(),
    st.text(min_size=1, max_size=3),
    st.floats(),
    st.lists(int_field(1, 65535), min_size=1, max_size=3),
    st.lists(int_field(1, 65535), min_size=1, max_size=3).map(tuple),
)
NOT_HEADER: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.text(max_size=3), st.binary(min_size=8, max_size=8), st.builds(GroupPolicy), _OBJECTS
)
NOT_POLICY: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.booleans(), st.text(max_size=3), st.binary(max_size=2), st.builds(VxlanHeader), _OBJECTS
)


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One public callable: arguments that work, and wrong values per field.

    ``reported`` maps a parameter to the field name its errors use when that is not the
    parameter's own name (``format_mac(raw)`` reports ``mac``).
    """

    name: str
    call: Callable[..., object]
    valid: Mapping[str, object]
    fields: Mapping[str, st.SearchStrategy[Any]]
    reported: Mapping[str, str] = field(default_factory=dict)


V4 = {"src": "198.51.100.1", "dst": "198.51.100.2"}
FRAME = encapsulate(bytes.fromhex("02000000aa0202000000aa010806") + bytes(28), vni=10, src=V4["src"], dst=V4["dst"])

TABLE: list[Entry] = [
    Entry(
        "VxlanHeader",
        VxlanHeader,
        {"vni": 10},
        {
            "vni": int_field(0, VNI_MAX),
            "group_policy": NOT_POLICY,
            "i_flag": NOT_BOOL,
            # Out of 64 bits, or overlapping the VNI or a flag.
            "reserved": int_field(0, (1 << 64) - 1) | st.sampled_from([0x100, 0x0800000000000000, 1 << 63]),
        },
    ),
    Entry(
        "VxlanHeader.decode",
        VxlanHeader.decode,
        {"data": bytes(8)},
        {"data": NOT_BYTES, "strict": NOT_BOOL, "gbp": NOT_BOOL, "offset": int_field(0, None)},
    ),
    Entry(
        "VxlanHeader.from_words",
        VxlanHeader.from_words,
        {"word0": 0x08000000, "word1": 0x0A00},
        {"word0": int_field(0, 0xFFFFFFFF), "word1": int_field(0, 0xFFFFFFFF)},
    ),
    Entry(
        "VxlanHeader.with_fields",
        VxlanHeader(10).with_fields,
        {},
        {
            "vni": int_field(0, VNI_MAX, none_ok=True),
            "group_policy": NOT_POLICY.filter(lambda v: v is not False),
            "i_flag": _no_none(NOT_BOOL),
        },
    ),
    Entry(
        "GpeHeader",
        GpeHeader,
        {"vni": 10},
        {
            "vni": int_field(0, VNI_MAX),
            "next_protocol": int_field(0, 255),
            "version": int_field(0, 3),
            "i_flag": NOT_BOOL,
            "p_flag": NOT_BOOL,
            "bum": NOT_BOOL,
            "oam": NOT_BOOL,
            "reserved": int_field(0, (1 << 64) - 1) | st.sampled_from([0x100, 0x0F00000000000000, 0xFF00000000]),
        },
    ),
    Entry(
        "GpeHeader.decode",
        GpeHeader.decode,
        {"data": bytes(8)},
        {"data": NOT_BYTES, "strict": NOT_BOOL, "offset": int_field(0, None)},
    ),
    Entry(
        "GpeHeader.from_words",
        GpeHeader.from_words,
        {"word0": 0x0C000003, "word1": 0x0A00},
        {"word0": int_field(0, 0xFFFFFFFF), "word1": int_field(0, 0xFFFFFFFF)},
    ),
    Entry(
        "GroupPolicy",
        GroupPolicy,
        {"policy_id": 7},
        {"policy_id": int_field(0, 0xFFFF), "dont_learn": NOT_BOOL, "policy_applied": NOT_BOOL},
    ),
    Entry(
        "encapsulate",
        encapsulate,
        {"inner": bytes(60), "vni": 10, **V4},
        {
            "inner": NOT_BYTES,
            "src": NOT_ADDRESS,
            "dst": NOT_ADDRESS,
            "vni": int_field(0, VNI_MAX),
            "header": NOT_HEADER,
            "src_port": int_field(0, 65535, none_ok=True),
            "dst_port": int_field(1, 65535),
            "port_range": st.one_of(
                NOT_INT,
                st.tuples(int_field(1, 65535), st.integers(1, 65535)),
                st.tuples(st.integers(1, 65535), int_field(1, 65535)),
                st.tuples(st.integers(2, 65535), st.integers(1, 65535)).filter(lambda t: t[0] > t[1]),
                st.lists(st.integers(1, 65535), min_size=2, max_size=2),  # a list, not a (low, high) tuple
                st.tuples(st.integers(1, 65535), st.integers(1, 65535), st.integers(1, 65535)),
            ),
            "ttl": int_field(0, 255, none_ok=True),
            "tos": int_field(0, 255),
            "df": NOT_BOOL,
            "ip_id": int_field(0, 0xFFFF),
            "vlan": int_field(0, 4095, none_ok=True),
            "eth_src": _no_none(NOT_MAC),
            "eth_dst": _no_none(NOT_MAC),
            "udp_checksum": NOT_BOOL,
        },
    ),
    Entry(
        "decapsulate",
        decapsulate,
        {"frame": FRAME},
        {
            "frame": NOT_BYTES,
            "ports": NOT_PORTS,
            "gpe_ports": NOT_PORTS,
            "strict": NOT_BOOL,
            "gbp": NOT_BOOL,
            "wire_length": int_field(0, None),
        },
    ),
    Entry(
        "decapsulate_payload",
        decapsulate_payload,
        {"payload": FRAME[42:]},
        {"payload": NOT_BYTES, "strict": NOT_BOOL, "gbp": NOT_BOOL},
    ),
    Entry(
        "Decapsulated",
        Decapsulated,
        {
            "header": VxlanHeader(10),
            "inner": bytes(14),
            "outer_src": "198.51.100.1",
            "outer_dst": "198.51.100.2",
            "src_port": 50000,
            "dst_port": 4789,
            "ttl": 64,
        },
        {
            "header": NOT_HEADER,
            "inner": NOT_BYTES,
            "outer_src": NOT_ADDRESS,
            "outer_dst": NOT_ADDRESS,
            "src_port": int_field(0, 65535),
            "dst_port": int_field(0, 65535),
            "ttl": int_field(0, 255),
            "vlans": NOT_INT | st.lists(int_field(0, 4095), min_size=1, max_size=2).map(tuple),
            "outer_eth_dst": NOT_MAC,
            "outer_eth_src": NOT_MAC,
            "inner_offset": int_field(0, None),
            "udp_checksum": int_field(0, 0xFFFF),
        },
    ),
    Entry("overhead", overhead, {"ip_version": 4}, {"ip_version": int_field(4, 6) | st.just(5), "vlan": NOT_BOOL}),
    Entry(
        "internet_checksum",
        internet_checksum,
        {"data": bytes(20)},
        {"data": NOT_BYTES, "initial": int_field(0, None)},
    ),
    # The address helpers: an int is refused wherever addr.py parses an address.
    Entry("ip_info", ip_info, {"address": "198.51.100.1"}, {"address": NOT_ADDRESS}),
    Entry("normalize_ip", normalize_ip, {"address": "2001:db8::1"}, {"address": NOT_ADDRESS}),
    Entry("parse_mac", parse_mac, {"mac": "02:00:00:00:00:01"}, {"mac": NOT_MAC}),
    Entry("normalize_mac", normalize_mac, {"mac": "02:00:00:00:00:01"}, {"mac": NOT_MAC}),
    Entry(
        "TextCache",
        TextCache,
        {"make": ip_text},
        {"make": st.one_of(st.integers(), st.text(max_size=3), st.none()), "limit": int_field(1, None)},
    ),
    Entry(
        "format_mac",
        format_mac,
        {"raw": bytes(6)},
        {"raw": NOT_BYTES | st.binary(max_size=8).filter(lambda b: len(b) != 6)},
        reported={"raw": "mac"},
    ),
    Entry(
        "is_multicast_mac",
        is_multicast_mac,
        {"raw": bytes(6)},
        {"raw": NOT_BYTES | st.just(b"")},
        reported={"raw": "mac"},
    ),
    Entry(
        "multicast_mac_for",
        multicast_mac_for,
        {"info": ip_info("239.1.1.1")},
        {
            "info": st.one_of(
                NOT_ADDRESS, st.just("239.1.1.1"), st.just(("239.1.1.1", b"\xef\x01\x01\x01", 4, True, False))
            )
        },
    ),
    Entry(
        "VtepConfig",
        pyvxlan.VtepConfig,
        {"vni": 10, "local": "198.51.100.1", "remote": "198.51.100.2"},
        {
            "vni": int_field(0, VNI_MAX),
            "local": _no_none(NOT_ADDRESS),
            "remote": _no_none(NOT_ADDRESS),
            "dst_port": int_field(1, 65535),
            "src_port_range": st.one_of(
                NOT_INT,
                st.tuples(int_field(0, 65535), st.integers(0, 65535)),
                st.tuples(st.integers(1, 65535), st.integers(0, 65535)).filter(lambda t: t[0] > t[1]),
                st.lists(st.integers(0, 65535), min_size=2, max_size=2),
            ),
            "ttl": int_field(0, 255),
            "tos": int_field(0, 255).filter(lambda v: v != "inherit"),
            "ageing": st.one_of(
                st.booleans(), st.none(), st.text(max_size=3), st.floats(max_value=-1e-9), st.floats(min_value=2.0**32)
            ),
            "max_entries": int_field(0, 0xFFFFFFFF),
            "learning": NOT_BOOL,
            "proxy": NOT_BOOL,
            "gbp": NOT_BOOL,
            "ttl_inherit": NOT_BOOL,
            "udp6_zero_csum_tx": NOT_BOOL,
            "udp6_zero_csum_rx": NOT_BOOL,
            "mac": _no_none(NOT_MAC).filter(lambda v: v not in ("", b"")),
        },
    ),
    Entry(
        "flow_source_port",
        pyvxlan.flow_source_port,
        {"inner": bytes(60)},
        {
            "inner": NOT_BYTES,
            "port_range": st.one_of(
                NOT_INT,
                st.tuples(int_field(0, 65535), st.integers(0, 65535)),
                st.tuples(st.integers(1, 65535), st.integers(0, 65535)).filter(lambda t: t[0] > t[1]),
            ),
        },
    ),
    Entry(
        "FdbEntry",
        pyvxlan.FdbEntry,
        {"mac": "02:00:00:00:00:01", "dst": "198.51.100.2", "interface": "ul0", "updated": 1.5, "used": 2},
        {
            "mac": NOT_MAC,
            "dst": NOT_ADDRESS,
            "port": int_field(1, 65535, none_ok=True),
            "vni": int_field(0, VNI_MAX, none_ok=True),
            "interface": st.one_of(
                st.integers(), st.booleans(), st.binary(max_size=3), st.sampled_from(["", "a b", "a/b", "x" * 16])
            ),
            "state": st.one_of(st.text(max_size=9), st.integers(), st.none(), st.booleans()),
            "extern_learn": NOT_BOOL,
            "router": NOT_BOOL,
            "updated": st.one_of(st.booleans(), st.text(max_size=3), st.sampled_from([float("nan"), float("inf")])),
            "used": st.one_of(st.booleans(), st.binary(max_size=2), st.sampled_from([float("-inf"), float("nan")])),
        },
    ),
    Entry(
        "Neighbour",
        pyvxlan.Neighbour,
        {"ip": "203.0.113.5", "mac": "02:00:00:00:00:05"},
        {"ip": NOT_ADDRESS, "mac": NOT_MAC},
    ),
]


# pyvxlan.strategies checks its arguments too: a wrong one used to draw something else silently.
NOT_STRATEGY: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.booleans(), st.text(max_size=3), st.lists(st.integers(), max_size=2), st.builds(object)
)
NOT_OPTIONAL_BOOL = _no_none(NOT_BOOL)
TABLE += [
    Entry(
        "strategies.vnis",
        strategies.vnis,
        {},
        {"min_value": int_field(0, VNI_MAX), "max_value": int_field(0, VNI_MAX)},
    ),
    Entry(
        "strategies.vxlan_headers",
        strategies.vxlan_headers,
        {},
        {"gbp": NOT_OPTIONAL_BOOL, "reserved": NOT_BOOL, "vni": NOT_STRATEGY},
    ),
    Entry(
        "strategies.gpe_headers",
        strategies.gpe_headers,
        {},
        {"next_protocol": NOT_STRATEGY, "linux_valid": NOT_BOOL},
    ),
    Entry(
        "strategies.underlay_addresses",
        strategies.underlay_addresses,
        {},
        {"version": _no_none(int_field(4, 6)) | st.just(5)},
    ),
    Entry(
        "strategies.vxlan_frames",
        strategies.vxlan_frames,
        {},
        {
            "ip_version": _no_none(int_field(4, 6)) | st.just(5),
            "gbp": NOT_OPTIONAL_BOOL,
            "vlan": NOT_OPTIONAL_BOOL,
            "multicast": NOT_OPTIONAL_BOOL,
            "ports": NOT_STRATEGY,
            "inner": NOT_STRATEGY,
        },
    ),
    Entry(
        "strategies.simplest",
        strategies.simplest,
        {"strategy": strategies.vnis()},
        {"strategy": NOT_STRATEGY | st.none(), "condition": st.one_of(st.integers(), st.text(max_size=2), st.none())},
    ),
]


def test_the_table_covers_every_public_codec_callable() -> None:
    codec_names = {"VxlanHeader", "GpeHeader", "GroupPolicy", "encapsulate", "decapsulate", "decapsulate_payload"}
    assert codec_names <= {entry.name for entry in TABLE}
    assert {"Decapsulated"} <= set(pyvxlan.__all__) & {entry.name for entry in TABLE}


@pytest.mark.parametrize("entry", TABLE, ids=lambda e: e.name)
def test_the_valid_arguments_work(entry: Entry) -> None:
    entry.call(**entry.valid)


@pytest.mark.parametrize("entry", TABLE, ids=lambda e: e.name)
@settings(max_examples=150)
@given(data=st.data())
def test_a_wrong_value_is_a_library_error_naming_its_field(entry: Entry, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(entry.fields)), label="field")
    value = data.draw(entry.fields[name], label="value")
    with pytest.raises(VxlanError) as info:  # a bare TypeError or ValueError fails the test
        entry.call(**{**entry.valid, name: value})
    reported = entry.reported.get(name, name)
    assert getattr(info.value, "field", None) == reported or f"{reported}:" in str(info.value), str(info.value)


# --- the cases the audit found, with their exact messages ----------------------------------------


def _encap(**kwargs: object) -> object:
    return encapsulate(bytes(60), **{"vni": 10, **V4, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: api.VxlanHeader(vni=1.5), "vni: must be an int, got float 1.5"),
        (lambda: api.VxlanHeader(vni="5"), "vni: must be an int, got str '5'"),
        (lambda: api.VxlanHeader(vni=True), "vni: must be an int, got bool True"),
        (lambda: api.VxlanHeader(10, i_flag=1), "i_flag: must be a bool, got int 1"),
        (lambda: api.VxlanHeader(10, group_policy=7), "group_policy: must be a GroupPolicy or None, got int 7"),
        (lambda: api.GpeHeader(next_protocol="x"), "next_protocol: must be an int, got str 'x'"),
        (lambda: api.GroupPolicy(policy_id=True), "policy_id: must be an int, got bool True"),
        (lambda: api.GroupPolicy(dont_learn=1), "dont_learn: must be a bool, got int 1"),
        (lambda: api.VxlanHeader.decode(bytes(8), strict="no"), "strict: must be a bool, got str 'no'"),
        (
            lambda: api.VxlanHeader(10).with_fields(group_policy=True),
            "group_policy: must be a GroupPolicy or None, got bool True",
        ),
        (lambda: _encap(header="x"), "header: must be a VxlanHeader or a GpeHeader, got str 'x'"),
        (
            lambda: _encap(header=bytes(8)),
            "header: must be a VxlanHeader or a GpeHeader, got bytes b'\\x00\\x00\\x0...0\\x00\\x00\\x00'",  # cut by reprlib
        ),
        (lambda: _encap(ip_id=70000), "ip_id: must be in 0..65535, got 70000"),
        (lambda: _encap(src=5), "src: must be an IPv4 or IPv6 address as text, got int 5"),
        (
            lambda: _encap(dst=b"\xc6\x33\x64\x02"),
            "dst: must be an IPv4 or IPv6 address as text, got bytes b'\\xc63d\\x02'",
        ),
        (lambda: _encap(dst_port=True), "dst_port: must be an int, got bool True"),
        (lambda: _encap(dst_port=0), "dst_port: must be in 1..65535, got 0"),
        (lambda: _encap(tos=256), "tos: must be in 0..255, got 256"),
        (lambda: _encap(ttl="5"), "ttl: must be an int, got str '5'"),
        (lambda: _encap(vlan=True), "vlan: must be an int, got bool True"),
        (lambda: _encap(df="yes"), "df: must be a bool, got str 'yes'"),
        (lambda: _encap(port_range=(1.5, 2.5)), "port_range: must be an int, got float 1.5"),
        (lambda: _encap(port_range=[1, 2]), "port_range: must be a (low, high) tuple of ports, got list [1, 2]"),
        (lambda: api.decapsulate(FRAME, ports=None), "ports: must be a collection of UDP ports, got NoneType None"),
        (lambda: api.decapsulate(FRAME, ports=(0,)), "ports: must be in 1..65535, got 0"),
        (lambda: api.decapsulate(FRAME, gpe_ports=[True]), "gpe_ports: must be an int, got bool True"),
        (lambda: api.decapsulate(FRAME, wire_length=-1), "wire_length: must be >= 0, got -1"),
        (lambda: api.decapsulate(5), "frame: must be a bytes-like object, got int 5"),
        (lambda: api.decapsulate_payload("x"), "payload: must be a bytes-like object, got str 'x'"),
        (lambda: api.ip_info(5, "dst"), "dst: must be an IPv4 or IPv6 address as text, got int 5"),
        (lambda: api.normalize_ip(5), "address: must be an IPv4 or IPv6 address as text, got int 5"),
        (lambda: api.parse_mac(" a:00:00:00:00:00"), "mac: ' a:00:00:00:00:00' is not a MAC address"),
        (lambda: api.parse_mac(5), "mac: must be a MAC address as text or 6 bytes, got int 5"),
        (lambda: api.format_mac(5), "mac: must be 6 bytes, got int 5"),
        (lambda: api.overhead(5), "ip_version: must be 4 or 6, got int 5"),
    ],
)
def test_what_the_audit_found_is_refused_with_the_field_named(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value) == message


def test_a_checked_port_collection_is_not_checked_again_but_a_list_is() -> None:
    # decapsulate remembers immutable collections it has checked (by id, keeping them alive); a
    # list can change between calls, so it is checked every time.
    ports = (4789, 8472)
    assert decapsulate(FRAME, ports=ports).header.vni == 10
    mutable = [4789]
    assert decapsulate(FRAME, ports=mutable).header.vni == 10
    mutable.append(0)
    with pytest.raises(ConfigError, match=r"^ports: must be in 1\.\.65535, got 0$"):
        decapsulate(FRAME, ports=mutable)
