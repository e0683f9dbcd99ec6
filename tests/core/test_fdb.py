"""ForwardingDatabase on its own (records, errors with their messages, ageing bookkeeping), and the
kernel's control-path quirks through Vtep's control methods (see docs/kernel-quirks.md)."""

from __future__ import annotations

from collections.abc import Callable

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
    JoinGroup,
    LeaveGroup,
    Neighbour,
    SendDatagram,
    Vtep,
    VtepConfig,
)
from pyvxlan.errors import ClockError

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
    t.add("02:00:00:00:00:03", D1, state=FdbState.STATIC, now=2.0)
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


def test_a_time_that_goes_backwards_is_a_clock_error_and_changes_nothing() -> None:
    t = fdb()
    t.add(M1, D1, state=FdbState.REACHABLE, now=5.0)
    before = t.dump()
    calls: list[Callable[[], object]] = [
        lambda: t.add(M2, D1, state=FdbState.REACHABLE, now=3.0),
        lambda: t.append(M1, D2, now=3.0),
        lambda: t.replace(M1, D2, now=3.0),
        lambda: t.add_default(D2, now=3.0),
        lambda: t.change_default(None, D2, now=3.0),
        lambda: t.expire(3.0),
        lambda: t.forward(bytes.fromhex(M1.replace(":", "")), 3.0),
        lambda: t.learn(bytes.fromhex("020000000009"), D2, 3.0),
    ]
    for call in calls:
        with pytest.raises(ClockError) as info:
            call()
        assert (str(info.value), info.value.last, info.value.now) == ("time went backwards: 3.0 after 5.0", 5.0, 3.0)
    assert t.dump() == before
    assert t.now == 5.0
    t.add(M2, D1, state=FdbState.REACHABLE, now=5.0)  # the same time again is fine
    t.add("02:00:00:00:00:03", D1, state=FdbState.REACHABLE)  # no time: the latest seen
    assert [e.updated for e in t.dump()] == [5.0, 5.0, 5.0]
    assert list(iter(t)) == t.dump()


# --- Linux 6.18's control-path quirks, verified live (docs/kernel-quirks.md) ---------------------

MCAST = "01:00:5e:01:01:01"


def vtep(**settings: object) -> Vtep:
    values: dict[str, object] = {"vni": 10, "local": "198.51.100.1", "remote": D1}
    values.update(settings)
    v = Vtep(VtepConfig(**values))  # type: ignore[arg-type]
    v.up(now=0.0)
    v.take_outputs()
    return v


def rows(v: Vtep) -> list[tuple[str, str, str | None, str, bool, bool]]:
    return [(e.mac, e.dst, e.interface, e.state.value, e.extern_learn, e.router) for e in v.fdb_dump()]


def test_refused_replace_of_all_zeros_has_rewritten_state_vxlan_fdb_update_existing() -> None:
    """vxlan_fdb_update_existing writes the request's state and flags before it refuses to
    replace a non-unicast entry: the permanent default entry becomes dynamic, then ages out."""
    v = vtep(ageing=20)
    with pytest.raises(FdbOperationNotSupported, match=r"^cannot replace non-unicast fdb entry 00:00:00:00:00:00$"):
        v.fdb_replace(ZERO, D2, state=FdbState.REACHABLE, now=5.0)
    assert rows(v) == [(ZERO, D1, None, "", False, False)]  # the remote is not replaced
    assert v.fdb_dump()[0].updated == 0.0  # and not refreshed: the kernel returns before notifying
    assert v.next_timer() == 20.0
    v.handle_timer(20.0)
    assert v.fdb_dump() == []
    assert [type(o).__name__ for o in v.take_outputs()] == ["EntryExpired"]


def test_refused_replace_of_multicast_drops_extern_learn_vxlan_fdb_update_existing() -> None:
    v = vtep()
    v.fdb_append(MCAST, D2, state=FdbState.STATIC, extern_learn=True)
    with pytest.raises(FdbOperationNotSupported, match=r"^cannot replace non-unicast fdb entry 01:00:5e:01:01:01$"):
        v.fdb_replace(MCAST, "198.51.100.9", router=True)
    assert rows(v)[1:] == [(MCAST, D2, None, "permanent", False, True)]
    with pytest.raises(FdbOperationNotSupported):
        v.fdb_replace("01:00:5e:01:01:02", D2)  # a new one: refused, nothing made
    assert len(v.fdb) == 2


def test_extern_learn_request_cannot_change_a_users_entry_but_can_the_devices_own() -> None:
    """vxlan_fdb_update_existing: "Do not allow an externally learned entry to take over an entry
    added by the user" (NTF_VXLAN_ADDED_BY_USER); the default entry the device made is not."""
    v = vtep()
    v.fdb_append(ZERO, D2, extern_learn=True, state=FdbState.STATIC)
    assert rows(v) == [(ZERO, D1, None, "static", True, False), (ZERO, D2, None, "static", True, False)]
    v.fdb_append(ZERO, "198.51.100.9", extern_learn=True, state=FdbState.REACHABLE)
    assert [r[3] for r in rows(v)] == ["static"] * 3  # now the user's: the remote is added, the state kept
    v.fdb_add(M1, D2, state=FdbState.REACHABLE)
    v.fdb_replace(M1, "198.51.100.9", extern_learn=True, state=FdbState.STATIC)
    assert rows(v)[-1] == (M1, "198.51.100.9", None, "", False, False)


def test_delete_with_unspecified_dst_deletes_the_whole_mac_vxlan_fdb_delete() -> None:
    """__vxlan_fdb_delete looks for a remote only when the address is not "any"."""
    v = vtep()
    v.fdb_add(M1, D2, port=5555, vni=7)
    v.fdb_del(M1, "0.0.0.0", port=1, vni=9)
    v.fdb_append(MCAST, D2)
    v.fdb_append(MCAST, "198.51.100.9")
    v.fdb_del(MCAST, "::")
    assert [e.mac for e in v.fdb_dump()] == [ZERO]
    with pytest.raises(FdbEntryNotFound, match=r"^01:00:5e:01:01:01 has no entry$"):
        v.fdb_del(MCAST, "0.0.0.0")


def test_delete_with_dst_of_the_other_family_vxlan_fdb_delete() -> None:
    """No family check in vxlan_fdb_delete: the remote is not found (success, nothing removed),
    or the MAC is not (ENOENT)."""
    v = vtep()
    v.fdb_add(M1, D2)
    v.fdb_del(M1, "2001:db8::3")
    assert [e.mac for e in v.fdb_dump()] == [ZERO, M1]
    with pytest.raises(FdbEntryNotFound, match=r"^02:00:00:00:00:02 has no entry$"):
        v.fdb_del(M2, "2001:db8::3")
    six = vtep(local="2001:db8::1", remote="2001:db8::2")
    six.fdb_add(M1, "2001:db8::3")
    six.fdb_del(M1, D2)
    assert [e.mac for e in six.fdb_dump()] == [ZERO, M1]


def test_append_of_the_devices_remote_without_via_is_another_remote_vxlan_fdb_find_rdst() -> None:
    """vxlan_fdb_find_rdst compares the interface too: on a device made with ``dev`` the default
    remote has ``via`` and an appended one without it is a second remote."""
    v = vtep(dev="ul0")
    v.fdb_append(ZERO, D1)
    assert rows(v) == [(ZERO, D1, "ul0", "permanent", False, False), (ZERO, D1, None, "permanent", False, False)]
    v.fdb_del(ZERO, D1)
    assert rows(v) == [(ZERO, D1, "ul0", "permanent", False, False)]
    v.fdb_del(ZERO, D1, interface="ul0")
    assert v.fdb_dump() == []


def test_add_with_via_and_router() -> None:
    v = vtep()
    v.fdb_add(M1, D2, interface="ul0", router=True)
    [_, e] = v.fdb_dump()
    assert e.bridge_line("vxlan10") == "02:00:00:00:00:01 dev vxlan10 dst 198.51.100.3 via ul0 self router permanent"
    with pytest.raises(ConfigError, match=r"^interface: 'a/b' is not an interface name"):
        v.fdb_add(M2, D2, interface="a/b")


@pytest.mark.parametrize("op", ["fdb_add", "fdb_append", "fdb_replace"])
def test_without_dst_is_refused_as_linux_einval(op: str) -> None:
    v = vtep()
    with pytest.raises(ConfigError) as info:
        getattr(v, op)(M1, None)
    assert str(info.value) == f"dst: fdb {op[4:]} needs a remote address (Linux: EINVAL)"


def test_src_vni_other_than_the_devices_makes_an_entry_no_lookup_finds_vxlan_fdb_create() -> None:
    """Linux 6.18 files a new entry under the src_vni it was made with but, on a device that is
    not external, looks every entry up under the device's VNI."""
    v = vtep(max_entries=3)
    v.fdb_add(M1, D2, src_vni=77)
    with pytest.raises(FdbEntryExists, match=r"^02:00:00:00:00:01 already has an entry$"):
        v.fdb_append(M1, D1, src_vni=77)  # not found, so created: the hash table has that key
    v.fdb_add(M1, "198.51.100.9")  # no EEXIST: the first one is not found
    with pytest.raises(FdbFull):
        v.fdb_add(M2, D2, src_vni=10)  # the orphan counts toward maxaddress
    v.fdb_del(M1)
    with pytest.raises(FdbEntryNotFound):
        v.fdb_del(M1, src_vni=77)
    assert rows(v) == [(ZERO, D1, None, "permanent", False, False), (M1, D2, None, "permanent", False, False)]
    frame = bytes.fromhex(M1.replace(":", "") + "020000000002") + b"\x08\x06" + bytes(46)
    v.transmit(frame, now=1.0)
    sent = [o.dst for o in v.take_outputs() if isinstance(o, SendDatagram)]
    assert sent == [D1]  # the data path does not find it either
    with pytest.raises(ConfigError, match=r"^src_vni: must be in 0..16777215, got 16777216$"):
        v.fdb_add(M2, D2, src_vni=1 << 24)


def test_set_remote_swaps_the_all_zeros_remote_vxlan_changelink() -> None:
    """vxlan_changelink appends the new remote as the device's own (permanent, flags reset) and
    deletes the old; ``remote 0.0.0.0`` only deletes."""
    v = vtep()
    v.fdb_append(ZERO, D2, extern_learn=True, state=FdbState.STATIC)
    v.set_remote("198.51.100.9")
    assert rows(v) == [
        (ZERO, D2, None, "permanent", False, False),
        (ZERO, "198.51.100.9", None, "permanent", False, False),
    ]
    assert (v.config.remote, v.config.group) == ("198.51.100.9", None)
    v.set_remote("0.0.0.0")
    assert rows(v) == [(ZERO, D2, None, "permanent", False, False)]
    assert v.config.remote is None
    with pytest.raises(ConfigError, match=r"^remote: 2001:db8::9 is IPv6 but the device is IPv4$"):
        v.set_remote("2001:db8::9")
    with pytest.raises(
        ConfigError, match=r"^dev: a multicast group \(239.1.1.1\) needs an underlay interface \(dev\)$"
    ):
        v.set_remote("239.1.1.1")


def test_set_remote_leaves_and_joins_groups_when_up() -> None:
    v = vtep(remote=None, group="239.1.1.1", dev="ul0")
    v.set_remote("239.1.1.2")
    assert v.take_outputs() == [LeaveGroup("239.1.1.1"), JoinGroup("239.1.1.2")]
    assert rows(v) == [(ZERO, "239.1.1.2", "ul0", "permanent", False, False)]
    v.set_remote(D2)
    assert v.take_outputs() == [LeaveGroup("239.1.1.2")]
    v.down()
    v.take_outputs()
    v.set_remote("239.1.1.1")
    assert v.take_outputs() == []  # a device that is down joins on up
    v.up()
    assert v.take_outputs() == [JoinGroup("239.1.1.1")]


# --- FdbEntry and Neighbour check their fields at construction (issue 10) -----------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mac": "zz"}, "mac: 'zz' is not a MAC address"),
        ({"dst": "nowhere"}, "dst: 'nowhere' is not an IPv4 or IPv6 address"),
        ({"dst": 5}, "dst: 5 is not an IPv4 or IPv6 address"),
        ({"port": 70000}, "port: must be in 1..65535, got 70000"),
        ({"port": 0}, "port: must be in 1..65535, got 0"),
        ({"port": True}, "port: must be in 1..65535, got True"),
        ({"port": 5.0}, "port: must be in 1..65535, got 5.0"),
        ({"vni": 1 << 24}, "vni: must be in 0..16777215, got 16777216"),
        ({"vni": False}, "vni: must be in 0..16777215, got False"),
        ({"vni": "5"}, "vni: must be in 0..16777215, got '5'"),
        ({"state": "x"}, "state: must be an FdbState, got 'x'"),
        ({"state": "permanent"}, "state: must be an FdbState, got 'permanent'"),
        ({"interface": "a b"}, "interface: 'a b' is not an interface name (1 to 15 bytes, no '/' or whitespace)"),
        (
            {"interface": "x" * 16},
            f"interface: {'x' * 16!r} is not an interface name (1 to 15 bytes, no '/' or whitespace)",
        ),
        ({"interface": 3}, "interface: 3 is not an interface name (1 to 15 bytes, no '/' or whitespace)"),
        ({"extern_learn": 1}, "extern_learn: must be True or False, got 1"),
        ({"router": "yes"}, "router: must be True or False, got 'yes'"),
        ({"updated": float("nan")}, "updated: must be a finite time in seconds or None, got nan"),
        ({"used": True}, "used: must be a finite time in seconds or None, got True"),
    ],
)
def test_fdb_entry_validates_every_field(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"mac": M1, "dst": D1}
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        FdbEntry(**args)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_fdb_entry_keeps_canonical_forms() -> None:
    e = FdbEntry("02-00-00-00-00-0A", "2001:DB8:0::2", port=5555, vni=0, updated=1, used=2.5)
    assert (e.mac, e.dst) == ("02:00:00:00:00:0a", "2001:db8::2")


@pytest.mark.parametrize(
    ("ip", "mac", "message"),
    [
        ("203.0.113.5", "zz", "mac: 'zz' is not a MAC address"),
        ("nowhere", "02:00:00:00:00:05", "ip: 'nowhere' is not an IPv4 or IPv6 address"),
        (5, "02:00:00:00:00:05", "ip: 5 is not an IPv4 or IPv6 address"),
    ],
)
def test_neighbour_validates_its_fields(ip: object, mac: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Neighbour(ip, mac)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert Neighbour("2001:DB8::5", "02:00:00:00:00:0A") == Neighbour("2001:db8::5", "02:00:00:00:00:0a")


def test_received_traffic_moves_a_dynamic_entry_made_by_hand_to_the_end_of_the_ageing_order() -> None:
    """Found by the stateful test: a refresh moved only learned entries, so a ``dynamic`` entry
    the user added kept its old place and next_timer() named a time no entry expires at."""
    v = vtep(ageing=10)
    v.fdb_add(M2, D1, state=FdbState.REACHABLE, now=0.0)  # by hand, ages
    v.receive(b"\x08\x00\x00\x00\x00\x00\x0a\x00" + b"\xff" * 6 + bytes.fromhex("020000000001") + bytes(50), D1, 1, 0.0)
    v.receive(b"\x08\x00\x00\x00\x00\x00\x0a\x00" + b"\xff" * 6 + bytes.fromhex("020000000002") + bytes(50), D1, 1, 1.0)
    v.take_outputs()
    assert v.next_timer() == 10.0  # M1, learned at 0: M2 was refreshed at 1
    v.handle_timer(10.0)
    assert [e.mac for e in v.fdb_dump()] == [ZERO, M2]
    assert v.next_timer() == 11.0


def test_a_source_that_is_not_an_address_changes_nothing() -> None:
    v = vtep(ageing=10)
    payload = b"\x08\x00\x00\x00\x00\x00\x0a\x00" + b"\xff" * 6 + bytes.fromhex("020000000001") + bytes(50)
    v.receive(payload, D1, 1, 1.0)
    v.take_outputs()
    with pytest.raises(ConfigError) as info:
        v.receive(payload, "198.51.100.x", 1, 2.0)
    assert str(info.value) == "src: '198.51.100.x' is not an IPv4 or IPv6 address"
    assert [(e.mac, e.dst, e.updated) for e in v.fdb_dump()][1:] == [(M1, D1, 1.0)]
    assert (v.next_timer(), v.take_outputs()) == (11.0, [])
