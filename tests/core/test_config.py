"""``VtepConfig`` checks every setting at the boundary (issue 10, "The API validates its inputs"):
a wrong type or range is a :class:`~pyvxlan.ConfigError` naming the field, ``bool`` is not an int,
and nothing is silently converted (a float port range was truncated, ``learning='no'`` meant on).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import ConfigError, Vtep, VtepConfig, flow_source_port

INNER = bytes.fromhex("02000000000202000000000108060001")


def config(**settings: Any) -> VtepConfig:
    return VtepConfig(**{"vni": 10, **settings})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ttl": "5"}, "ttl: must be an int, got str '5'"),
        ({"ttl": 5.5}, "ttl: must be an int, got float 5.5"),
        ({"ttl": True}, "ttl: must be an int, got bool True"),
        ({"ttl": 256}, "ttl: must be in 0..255, got 256"),
        ({"ageing": None}, "ageing: must be a number of seconds, got NoneType None"),
        ({"ageing": True}, "ageing: must be a number of seconds, got bool True"),
        ({"ageing": "300"}, "ageing: must be a number of seconds, got str '300'"),
        ({"ageing": math.nan}, "ageing: must be in 0..4294967295 seconds, got nan"),
        ({"ageing": math.inf}, "ageing: must be in 0..4294967295 seconds, got inf"),
        ({"ageing": 1e300}, "ageing: must be in 0..4294967295 seconds, got 1e+300"),
        ({"ageing": 4294967296}, "ageing: must be in 0..4294967295 seconds, got 4294967296"),
        ({"ageing": -1}, "ageing: must be in 0..4294967295 seconds, got -1"),
        ({"learning": "no"}, "learning: must be true or false, got 'no'"),
        ({"learning": 0}, "learning: must be true or false, got 0"),
        ({"proxy": 1}, "proxy: must be true or false, got 1"),
        ({"gbp": None}, "gbp: must be true or false, got None"),
        ({"ttl_inherit": "yes"}, "ttl_inherit: must be true or false, got 'yes'"),
        ({"udp6_zero_csum_tx": 1}, "udp6_zero_csum_tx: must be true or false, got 1"),
        ({"name": "a\x00b"}, "name: 'a\\x00b' is not a valid interface name (at most 15 bytes)"),
        ({"name": "a:b"}, "name: 'a:b' is not a valid interface name (at most 15 bytes)"),
        ({"name": ".."}, "name: '..' is not a valid interface name (at most 15 bytes)"),
        ({"name": "x" * 16}, f"name: {'x' * 16!r} is not a valid interface name (at most 15 bytes)"),
        ({"name": 5}, "name: must be a str, got int 5"),
        ({"dst_port": True}, "dst_port: must be an int, got bool True"),
        ({"dst_port": 0}, "dst_port: must be in 1..65535, got 0"),
        ({"max_entries": True}, "max_entries: must be an int, got bool True"),
        ({"max_entries": 1 << 32}, "max_entries: must be in 0..4294967295, got 4294967296"),
        ({"src_port_range": (1.5, 2.5)}, "src_port_range: must be an int, got float 1.5"),
        ({"src_port_range": (5, 1)}, "src_port_range: must be (low, high) with low <= high, got (5, 1)"),
        ({"src_port_range": [1, 2]}, "src_port_range: must be a (low, high) tuple of ports, got list [1, 2]"),
        ({"src_port_range": (True, 2)}, "src_port_range: must be an int, got bool True"),
        ({"src_port_range": (1, 65536)}, "src_port_range: must be in 0..65535, got 65536"),
        ({"tos": "x"}, "tos: must be an int, got str 'x'"),
        ({"tos": 256}, "tos: must be in 0..255, got 256"),
        ({"vni": True}, "vni: must be an int, got bool True"),
        ({"vni": "10"}, "vni: must be an int, got str '10'"),
        ({"local": 5}, "local: must be a str, got int 5"),
        ({"remote": b"\xc6\x33\x64\x02"}, "remote: must be a str, got bytes b'\\xc63d\\x02'"),
        ({"mac": 5}, "mac: must be a str, got int 5"),
        ({"dev": 5}, "dev: must be a str, got int 5"),
    ],
)
def test_a_wrong_setting_is_a_config_error_naming_its_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**settings)
    assert str(info.value) == message
    assert info.value.field == message.split(":", maxsplit=1)[0]


@pytest.mark.parametrize(
    ("settings", "field", "value"),
    [
        ({"ageing": 4294967295}, "ageing", 4294967295),
        ({"ageing": 1.5}, "ageing", 1.5),
        ({"ageing": 0}, "ageing", 300.0),  # Linux: 0 means the default
        ({"src_port_range": (0, 0)}, "src_port_range", (0, 0)),  # srcport 0 0: the local port range
        ({"src_port_range": (5000, 5000)}, "src_port_range", (5000, 5000)),
        ({"tos": "inherit"}, "tos", "inherit"),
        ({"tos": 1}, "tos", "inherit"),  # IFLA_VXLAN_TOS 1 is Linux's inherit
        ({"tos": 0x10}, "tos", 0x10),
        ({"ttl": 255}, "ttl", 255),
        ({"max_entries": 4294967295}, "max_entries", 4294967295),
    ],
)
def test_the_edges_are_accepted(settings: dict[str, Any], field: str, value: object) -> None:
    assert getattr(config(**settings), field) == value


def test_flow_source_port_refuses_a_reversed_range() -> None:
    with pytest.raises(ConfigError) as info:
        flow_source_port(INNER, (5, 1))
    assert str(info.value) == "port_range: must be (low, high) with low <= high, got (5, 1)"
    with pytest.raises(ConfigError, match=r"^port_range: must be an int, got float 1\.5$"):
        flow_source_port(INNER, (1.5, 2.5))  # type: ignore[arg-type]


def test_receive_from_the_other_family_does_not_learn_a_remote_fdb_add_would_refuse() -> None:
    v = Vtep(config(local="198.51.100.1", remote="198.51.100.2"))
    v.up(0.0)
    frame = bytes.fromhex("0800000000000a00") + bytes.fromhex("02000000000102000000000208060001") + bytes(28)
    with pytest.raises(ConfigError, match=r"^dst: "):
        v.fdb_add("02:00:00:00:00:02", "2001:db8::2")
    with pytest.raises(ConfigError) as info:
        v.receive(frame, "2001:db8::2", 50000, now=1.0)
    assert str(info.value) == "src: '2001:db8::2' is not an IPv4 address, as the device is"
    assert v.fdb.get("02:00:00:00:00:02") == []


# Wrong values per field: types that are not the field's, and values just outside its range.
_NOT_INT = st.one_of(st.booleans(), st.floats(), st.text(max_size=3), st.none(), st.binary(max_size=2))
_NOT_BOOL = st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none())
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "vni": _NOT_INT | st.integers(max_value=-1) | st.integers(min_value=1 << 24),
    "dst_port": _NOT_INT | st.integers(max_value=0) | st.integers(min_value=65536),
    "ttl": _NOT_INT | st.integers(max_value=-1) | st.integers(min_value=256),
    "max_entries": _NOT_INT | st.integers(max_value=-1) | st.integers(min_value=1 << 32),
    "tos": _NOT_INT.filter(lambda v: v != "inherit") | st.integers(min_value=256),
    "ageing": st.one_of(
        st.booleans(),
        st.none(),
        st.text(max_size=3),
        st.floats(max_value=-1e-9),
        st.floats(min_value=2.0**32),
        st.just(math.nan),
    ),
    "src_port_range": st.one_of(
        _NOT_INT,
        st.tuples(_NOT_INT, st.integers(0, 65535)),
        st.tuples(st.integers(0, 65535), st.integers(min_value=65536)),
        st.tuples(st.integers(1, 65535), st.integers(0, 65535)).filter(lambda t: t[0] > t[1]),
        st.lists(st.integers(0, 65535), min_size=2, max_size=2),
    ),
    **{
        flag: _NOT_BOOL
        for flag in (
            "learning",
            "proxy",
            "l2miss",
            "l3miss",
            "gbp",
            "ttl_inherit",
            "udp6_zero_csum_tx",
            "udp6_zero_csum_rx",
            "gbp_lost_on_change",
        )
    },
    "name": st.one_of(
        st.integers(), st.text(min_size=16, max_size=20), st.sampled_from(["a/b", "a b", "a\x00b", "a\nb"])
    ),
}


@settings(max_examples=300)
@given(data=st.data())
def test_any_wrong_setting_is_a_config_error_naming_its_field(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(WRONG)), label="field")
    value = data.draw(WRONG[name], label="value")
    with pytest.raises(ConfigError) as info:  # a bare TypeError or ValueError fails the test
        config(**{name: value})
    assert info.value.field == name
