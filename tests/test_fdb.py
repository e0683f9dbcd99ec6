"""ForwardingDatabase on its own: records, errors with their messages, ageing bookkeeping."""

from __future__ import annotations

import pytest

from pyvxlan import (
    ConfigError,
    FdbEntry,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    FdbState,
    ForwardingDatabase,
    VtepConfig,
)

ZERO = "00:00:00:00:00:00"
M1 = "02:00:00:00:00:01"
M2 = "02:00:00:00:00:02"
D1 = "198.51.100.2"
D2 = "198.51.100.3"


def fdb(**settings: object) -> ForwardingDatabase:
    values: dict[str, object] = {"vni": 10, "local": "198.51.100.1"}
    values.update(settings)
    return ForwardingDatabase(VtepConfig(**values))  # type: ignore[arg-type]


def test_add_then_dump_gives_one_record_per_remote() -> None:
    t = fdb()
    t.add(M1, D1, now=1.0)
    t.append(ZERO, D1, now=2.0)
    t.append(ZERO, D2, port=5555, vni=20, now=3.0)
    assert t.dump() == [
        FdbEntry(M1, D1, updated=1.0, used=1.0),
        FdbEntry(ZERO, D1, updated=3.0, used=2.0),  # a new remote refreshes ``updated``, as Linux
        FdbEntry(ZERO, D2, port=5555, vni=20, updated=3.0, used=2.0),
    ]
    assert len(t) == 2  # MACs, as Linux's addrcnt


def test_mac_accepted_as_text_any_case_or_bytes() -> None:
    t = fdb()
    t.add("02-00-00-00-00-0A", D1)
    assert "02:00:00:00:00:0a" in t
    assert bytes.fromhex("02000000000a") in t
    assert 42 not in t
    assert [e.mac for e in t.get(b"\x02\x00\x00\x00\x00\x0a")] == ["02:00:00:00:00:0a"]
    assert t.get(M2) == []


def test_device_port_and_vni_are_stored_as_none() -> None:
    t = fdb(dst_port=8472)
    t.add(M1, D1, port=8472, vni=10)
    [e] = t.dump()
    assert (e.port, e.vni) == (None, None)


def test_errors_name_the_mac() -> None:
    t = fdb(max_entries=1)
    t.add(M1, D1)
    with pytest.raises(FdbEntryExists, match=r"^02:00:00:00:00:01 already has an entry$"):
        t.add(M1, D2)
    with pytest.raises(FdbFull, match=r"^the table holds max_entries=1 entries; cannot add 02:00:00:00:00:02$"):
        t.add(M2, D1)
    with pytest.raises(FdbEntryNotFound, match=r"^02:00:00:00:00:02 has no entry$"):
        t.delete(M2)
    with pytest.raises(FdbOperationNotSupported, match=r"^cannot replace non-unicast fdb entry 00:00:00:00:00:00$"):
        t.replace(ZERO, D1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dst": "2001:db8::1"}, "dst: 2001:db8::1 is IPv6 but the device is IPv4"),
        ({"dst": "nowhere"}, "dst: 'nowhere' is not an IPv4 or IPv6 address"),
        ({"port": 0}, "port: must be in 1..65535, got 0"),
        ({"port": True}, "port: must be in 1..65535, got True"),
        ({"vni": 1 << 24}, "vni: must be in 0..16777215, got 16777216"),
        ({"mac": "02:00:00:00:00"}, "mac: '02:00:00:00:00' is not a MAC address"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"mac": M1, "dst": D1}
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        fdb().add(**args)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_device_without_addresses_is_ipv4() -> None:
    t = fdb(local=None)
    t.add(M1, D1)
    with pytest.raises(ConfigError, match=r"^dst: 2001:db8::2 is IPv6 but the device is IPv4$"):
        t.add(M2, "2001:db8::2")


def test_ipv6_device_takes_ipv6_remotes_in_canonical_form() -> None:
    t = fdb(local="2001:db8::1")
    t.add(M1, "2001:DB8:0::2")
    assert t.dump()[0].dst == "2001:db8::2"


def test_ageing_order_and_expiry() -> None:
    t = fdb(ageing=10)
    t.add(M1, D1, state=FdbState.REACHABLE, now=1.0)
    t.add(M2, D1, state=FdbState.REACHABLE, now=2.0)
    t.add("02:00:00:00:00:03", D1, state=FdbState.STATIC, now=0.0)
    assert t.next_expiry() == 11.0
    t.replace(M1, D2, state=FdbState.REACHABLE, now=5.0)  # refreshed: M2 is now the oldest
    assert t.next_expiry() == 12.0
    assert [e.mac for e in t.expire(12.0)] == [M2]
    assert t.next_expiry() == 15.0
    assert [e.mac for e in t.expire(100.0)] == [M1]
    assert t.next_expiry() is None
    assert [e.mac for e in t.dump()] == ["02:00:00:00:00:03"]


def test_changing_state_moves_an_entry_in_and_out_of_ageing() -> None:
    t = fdb(ageing=10)
    t.add(M1, D1, state=FdbState.REACHABLE, now=0.0)
    t.replace(M1, D1, state=FdbState.STATIC, now=1.0)
    assert t.next_expiry() is None
    t.append(M1, D1, state=FdbState.REACHABLE, now=2.0)
    assert t.next_expiry() == 12.0


def test_ageing_setter_maps_zero_to_300_and_refuses_negative() -> None:
    t = fdb(ageing=10)
    t.ageing = 0
    assert t.ageing == 300.0
    with pytest.raises(ConfigError, match=r"^ageing: must be >= 0 seconds, got -1$"):
        t.ageing = -1


def test_flush_keeps_sticky_entries_and_all_zeros() -> None:
    t = fdb()
    t.append(ZERO, D1, state=FdbState.REACHABLE)
    t.add(M1, D1, state=FdbState.REACHABLE)
    t.add(M2, D1, state=FdbState.STATIC)
    assert t.flush() == 1
    assert [e.mac for e in t.dump()] == [ZERO, M2]
    t.clear()
    assert t.dump() == [] and t.next_expiry() is None


def test_time_never_goes_backwards() -> None:
    t = fdb()
    t.add(M1, D1, state=FdbState.REACHABLE, now=5.0)
    t.add(M2, D1, state=FdbState.REACHABLE, now=3.0)  # an older now is taken as the latest seen
    assert [e.updated for e in t.dump()] == [5.0, 5.0]
    assert list(iter(t)) == t.dump()
