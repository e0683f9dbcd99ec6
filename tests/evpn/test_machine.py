"""The EVPN state machine: routes in, VTEP operations out; local MACs in, routes out (FRR's rules)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio

from pyvxlan import ConfigError, FdbEntryNotFound, FdbState
from pyvxlan.evpn import (
    ENCAP_VXLAN,
    Advertise,
    DuplicateMac,
    EvpnConfig,
    EvpnMachine,
    FdbClear,
    FdbSet,
    FloodAdd,
    FloodClear,
    InclusiveMulticastRoute,
    MacIpRoute,
    MacMobility,
    NeighbourClear,
    NeighbourSet,
    PmsiTunnel,
    RouteDistinguisher,
    RouteTarget,
    Update,
    Withdraw,
    apply_actions,
    decode_message,
)

LOCAL = "198.51.100.1"
B, C = "198.51.100.2", "198.51.100.3"
MAC = "02:00:00:00:00:0a"
RT = RouteTarget.as2(65000, 100)


def machine(**changes: Any) -> EvpnMachine:
    m = EvpnMachine(EvpnConfig(vni=100, local=LOCAL, asn=65000, **changes))
    m.start(0.0)
    return m


def mac_route(vtep: str, mac: str = MAC, ip: str | None = None) -> MacIpRoute:
    return MacIpRoute(RouteDistinguisher.ipv4(vtep, 1), mac, ip, (100,))


def announce(
    vtep: str, mac: str = MAC, *, ip: str | None = None, seq: int = 0, sticky: bool = False, rt: RouteTarget = RT
) -> Update:
    communities: list[Any] = [rt, ENCAP_VXLAN]
    if seq or sticky:
        communities.append(MacMobility(seq, sticky))
    return Update.announce([mac_route(vtep, mac, ip)], next_hop=vtep, communities=communities)


def withdraw(vtep: str, mac: str = MAC, ip: str | None = None) -> Update:
    return Withdraw(mac_route(vtep, mac, ip)).update()


def imet(vtep: str, *, pmsi: bool = True) -> Update:
    route = InclusiveMulticastRoute(RouteDistinguisher.ipv4(vtep, 1), vtep)
    return Update.announce(
        [route], next_hop=vtep, communities=[RT, ENCAP_VXLAN], pmsi=PmsiTunnel(vtep, 100) if pmsi else None
    )


def test_start_advertises_type3_with_ingress_replication() -> None:
    """A type-3 route must carry PMSI tunnel type 6 or FRR floods nothing to us (evpn_zebra_install)."""
    m = EvpnMachine(EvpnConfig(vni=100, local=LOCAL, asn=65000))
    [ad] = m.start(0.0)
    assert ad == Advertise(
        InclusiveMulticastRoute(RouteDistinguisher.ipv4(LOCAL, 1), LOCAL), (RT, ENCAP_VXLAN), PmsiTunnel(LOCAL, 100)
    )
    update = ad.update(LOCAL)
    assert decode_message(update.encode()) == update
    assert update.encode()[-12:].hex() == "c016090006000064c6336401"


def test_type2_installs_extern_learn_entry_and_neighbour() -> None:
    """FRR's zebra installs a remote MAC as extern_learn toward the next hop and its IP as a
    neighbour (netlink_macfdb_update_ctx, ARP/ND suppression)."""
    m = machine()
    assert m.routes_received(announce(B), 1.0) == [FdbSet(MAC, B, static=False)]
    assert m.routes_received(announce(B, ip="203.0.113.10"), 1.0) == [NeighbourSet("203.0.113.10", MAC)]
    assert m.fdb == {MAC: (B, False)} and m.neighbours == {"203.0.113.10": MAC}
    assert m.routes_received(withdraw(B, ip="203.0.113.10"), 2.0) == [NeighbourClear("203.0.113.10", MAC)]
    assert m.routes_received(withdraw(B), 3.0) == [FdbClear(MAC, B)]
    assert m.fdb == {} and m.neighbours == {}


def test_sticky_route_installs_static_entry() -> None:
    """A sticky MAC is installed NUD_NOARP (static), not extern_learn (netlink_macfdb_update_ctx)."""
    m = machine()
    assert m.routes_received(announce(B, sticky=True), 1.0) == [FdbSet(MAC, B, static=True)]


def test_static_entries_when_extern_learn_is_off() -> None:
    m = machine(extern_learn=False)
    assert m.routes_received(announce(B), 1.0) == [FdbSet(MAC, B, static=True)]


def test_type3_puts_the_originator_on_the_flood_list() -> None:
    m = machine()
    assert m.routes_received(imet(B), 1.0) == [FloodAdd(B)]
    assert m.routes_received(imet(B), 2.0) == []
    assert m.flood_list == {B}
    route = InclusiveMulticastRoute(RouteDistinguisher.ipv4(B, 1), B)
    assert m.routes_received(Withdraw(route).update(), 3.0) == [FloodClear(B)]


def test_type3_without_pmsi_floods_nothing() -> None:
    """FRR maps an absent PMSI to VXLAN_FLOOD_DISABLED (bgp_evpn.c evpn_zebra_install)."""
    m = machine()
    assert m.routes_received(imet(B, pmsi=False), 1.0) == []
    assert m.routes_received(imet(B), 1.0) == [FloodAdd(B)]
    assert m.routes_received(imet(B, pmsi=False), 1.0) == [FloodClear(B)]


def test_import_is_by_vni_whatever_the_as() -> None:
    """FRR 8.4.4 masks the global admin of auto import RTs (mask_ecom_global_admin): X:VNI imports."""
    m = machine()
    assert m.routes_received(announce(B, rt=RouteTarget.as2(65123, 100)), 1.0) == [FdbSet(MAC, B, static=False)]
    assert m.routes_received(announce(C, "02:00:00:00:00:0b", rt=RouteTarget.as2(65000, 200)), 1.0) == []
    # A route re-announced with an RT that no longer matches is unimported.
    assert m.routes_received(announce(B, rt=RouteTarget.as2(65000, 200)), 2.0) == [FdbClear(MAC, B)]


def test_explicit_import_targets_match_exactly() -> None:
    m = machine(import_targets=(RouteTarget.as2(65000, 100),))
    assert m.routes_received(announce(B, rt=RouteTarget.as2(65123, 100)), 1.0) == []
    assert m.routes_received(announce(B), 1.0) == [FdbSet(MAC, B, static=False)]


def test_local_mac_is_advertised_with_its_ips() -> None:
    m = machine()
    rd = RouteDistinguisher.ipv4(LOCAL, 1)
    assert m.local_learned(MAC, 1.0) == [Advertise(MacIpRoute(rd, MAC, None, (100,)), (RT, ENCAP_VXLAN))]
    assert m.local_learned(MAC, 2.0) == []
    assert m.local_learned(MAC, 2.0, ip="203.0.113.5") == [
        Advertise(MacIpRoute(rd, MAC, "203.0.113.5", (100,)), (RT, ENCAP_VXLAN))
    ]
    assert m.local_removed(MAC, 3.0) == [
        Withdraw(MacIpRoute(rd, MAC, None, (100,))),
        Withdraw(MacIpRoute(rd, MAC, "203.0.113.5", (100,))),
    ]
    wd = Withdraw(MacIpRoute(rd, MAC, None, (100,))).update()
    assert wd.unreach is not None and wd.unreach.routes[0].labels == (0,)  # type: ignore[union-attr]


def test_move_to_this_vtep_outbids_the_remote_sequence() -> None:
    """RFC 7432 15: a local learn of a remote MAC advertises max(remote + 1, local) (zebra_evpn_mac.c)."""
    m = machine()
    m.routes_received(announce(B, seq=3), 1.0)
    actions = m.local_learned(MAC, 2.0)
    assert actions == [
        FdbClear(MAC, B),
        Advertise(MacIpRoute(RouteDistinguisher.ipv4(LOCAL, 1), MAC, None, (100,)), (RT, ENCAP_VXLAN, MacMobility(4))),
    ]
    assert m.sequence(MAC) == 4


def test_higher_remote_sequence_takes_a_local_mac_away() -> None:
    """The higher sequence wins (bgp_path_info_cmp): our route is withdrawn, the remote installed."""
    m = machine()
    m.local_learned(MAC, 1.0)
    assert m.routes_received(announce(B, seq=1), 2.0) == [
        FdbSet(MAC, B, static=False),
        Withdraw(MacIpRoute(RouteDistinguisher.ipv4(LOCAL, 1), MAC, None, (100,))),
    ]
    # It comes back: sequence 2.
    assert m.local_learned(MAC, 3.0)[-1].route.mac == MAC  # type: ignore[union-attr]
    assert m.sequence(MAC) == 2 and m.fdb == {}


def test_lower_remote_sequence_is_ignored_while_local() -> None:
    m = machine()
    m.routes_received(announce(B, seq=1), 1.0)
    m.local_learned(MAC, 2.0)  # sequence 2
    assert m.routes_received(announce(C, seq=1), 3.0) == []
    assert m.fdb == {}
    # Once the local MAC leaves, the best remote path is installed.
    assert m.local_removed(MAC, 4.0)[0] == FdbSet(MAC, B, static=False)


def test_equal_sequence_lower_vtep_address_wins() -> None:
    """bgp_path_info_cmp: same sequence, the lower next-hop IP wins."""
    m = machine()
    m.routes_received(announce(C, seq=2), 1.0)
    assert m.routes_received(announce(B, seq=2), 1.0) == [FdbSet(MAC, B, static=False)]
    assert m.routes_received(withdraw(B), 2.0) == [FdbSet(MAC, C, static=False)]


def test_sticky_beats_a_higher_sequence_and_refuses_a_local_learn() -> None:
    """bgp_path_info_cmp prefers the sticky path; zebra refuses to learn a remote sticky MAC
    locally (EC_ZEBRA_STICKY_MAC_ALREADY_LEARNT)."""
    m = machine()
    m.routes_received(announce(B, seq=5), 1.0)
    assert m.routes_received(announce(C, sticky=True), 1.0) == [FdbSet(MAC, C, static=True)]
    assert m.local_learned(MAC, 2.0) == []
    assert m.advertised == m.advertised[:1]  # only the type-3 route


def test_duplicate_detection_after_5_moves_in_180_s() -> None:
    """zebra_evpn_dup_addr_detect_for_mac with FRR's defaults (max-moves 5, time 180): the window
    opens at a local learn and the 5th move flags the MAC; without freeze it keeps working."""
    m = machine()
    seen: list[DuplicateMac] = []
    seq = 0
    t = 10.0
    for _ in range(3):
        seq += 1
        seen += [a for a in m.routes_received(announce(B, seq=seq), t) if isinstance(a, DuplicateMac)]
        seq += 1
        seen += [a for a in m.local_learned(MAC, t + 1) if isinstance(a, DuplicateMac)]
        t += 20
    # local, remote, local, remote, local: 5 moves counted from the first local learn
    assert seen == [DuplicateMac(MAC, 5, 51.0)]
    assert m.is_duplicate(MAC)
    assert m.routes_received(announce(B, seq=99), 60.0) == [
        FdbSet(MAC, B, static=False),
        Withdraw(MacIpRoute(RouteDistinguisher.ipv4(LOCAL, 1), MAC, None, (100,))),
    ]


def test_moves_slower_than_the_window_are_not_duplicates() -> None:
    m = machine()
    seq = 0
    for i in range(10):
        seq += 1
        m.routes_received(announce(B, seq=seq), i * 100.0)
        seq += 1
        assert not [a for a in m.local_learned(MAC, i * 100.0 + 1) if isinstance(a, DuplicateMac)]
    assert not m.is_duplicate(MAC)


def test_frozen_duplicate_is_held_then_recovers_on_the_timer() -> None:
    """dup-addr-detection freeze 30: a duplicate is neither advertised nor installed anew until the
    auto-recovery timer (zebra_evpn_dad_mac_auto_recovery_exp)."""
    m = machine(dad_max_moves=2, dad_freeze=30.0)
    m.routes_received(announce(B, seq=1), 1.0)
    actions = m.local_learned(MAC, 2.0)  # move 1
    assert m.get_timer() is None
    actions = m.routes_received(announce(C, seq=5), 3.0)  # move 2: duplicate, frozen
    assert actions == [DuplicateMac(MAC, 2, 3.0)]
    assert m.get_timer() == 33.0
    assert m.routes_received(withdraw(B), 10.0) == []
    assert m.handle_timer(20.0) == []
    assert m.handle_timer(33.0) == [
        FdbSet(MAC, C, static=False),
        Withdraw(MacIpRoute(RouteDistinguisher.ipv4(LOCAL, 1), MAC, None, (100,))),
    ]
    assert m.get_timer() is None and not m.is_duplicate(MAC)


def test_permanent_freeze_until_cleared() -> None:
    m = machine(dad_max_moves=2, dad_freeze=math.inf)
    m.routes_received(announce(B, seq=1), 1.0)
    m.local_learned(MAC, 2.0)
    m.routes_received(announce(C, seq=5), 3.0)
    assert m.get_timer() is None and m.is_duplicate(MAC)
    assert m.clear_duplicate(MAC, 500.0)[0] == FdbSet(MAC, C, static=False)


def test_peer_lost_withdraws_what_it_programmed() -> None:
    m = machine()
    m.routes_received(imet(B), 1.0)
    m.routes_received(announce(B, ip="203.0.113.7"), 1.0)
    m.routes_received(announce(C, "02:00:00:00:00:0c"), 1.0)
    assert m.peer_lost(5.0) == [
        FdbClear(MAC, B),
        NeighbourClear("203.0.113.7", MAC),
        FdbClear("02:00:00:00:00:0c", C),
        FloodClear(B),
    ]
    assert m.fdb == {} and m.neighbours == {} and m.flood_list == set()


def test_own_routes_reflected_back_are_ignored() -> None:
    m = machine()
    assert m.routes_received(announce(LOCAL), 1.0) == []
    assert m.routes_received(imet(LOCAL), 1.0) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EvpnConfig(vni=1 << 24, local=LOCAL, asn=1), "vni: must be in 0..16777215, got 16777216"),
        (
            lambda: EvpnConfig(vni=1, local="2001:db8::1", asn=1),
            "rd: an IPv6 VTEP needs an explicit route distinguisher",
        ),
        (lambda: EvpnConfig(vni=1, local=LOCAL, asn=1, dad_max_moves=1), "dad_max_moves: must be in 2..1000, got 1"),
        (
            lambda: EvpnConfig(vni=1, local=LOCAL, asn=1, dad_freeze=0),
            "dad_freeze: must be None, a positive number of seconds or math.inf, got int 0",
        ),
        (
            lambda: EvpnConfig(vni=1, local=LOCAL, asn=1, import_targets=()),
            "import_targets: must be a non-empty tuple of RouteTarget, got tuple ()",
        ),
        (lambda: machine().local_learned("nope", 1.0), "mac: 'nope' is not a MAC address"),
        (lambda: machine().local_learned(MAC, math.nan), "now: must be a finite time in seconds, got float nan"),
        (lambda: machine().routes_received(b"", 1.0), "update: must be an Update, got bytes b''"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments(make: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value) == message


class Recorder:
    """The VtepControl methods apply_actions uses, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def fdb_replace(self, mac: str, dst: str, **kw: Any) -> None:
        self.calls.append(("replace", mac, dst, kw))

    async def fdb_append(self, mac: str, dst: str, **kw: Any) -> None:
        self.calls.append(("append", mac, dst, kw))

    async def fdb_del(self, mac: str, dst: str | None = None, **kw: Any) -> None:
        self.calls.append(("del", mac, dst))
        raise FdbEntryNotFound(mac)

    async def neigh_add(self, ip: str, mac: str) -> None:
        self.calls.append(("neigh_add", ip, mac))

    async def neigh_del(self, ip: str) -> None:
        self.calls.append(("neigh_del", ip))


def test_apply_actions_maps_to_vtep_control() -> None:
    rec = Recorder()
    actions = [
        FdbSet(MAC, B, static=False),
        FdbSet(MAC, B, static=True),
        FdbClear(MAC, B),
        FloodAdd(B),
        FloodClear(B),
        NeighbourSet("203.0.113.1", MAC),
        NeighbourClear("203.0.113.1", MAC),
        DuplicateMac(MAC, 5, 1.0),
    ]
    trio.run(apply_actions, actions, rec)  # type: ignore[arg-type]
    assert rec.calls == [
        ("replace", MAC, B, {"state": FdbState.REACHABLE, "extern_learn": True}),
        ("replace", MAC, B, {"state": FdbState.STATIC}),
        ("del", MAC, B),
        ("append", "00:00:00:00:00:00", B, {}),
        ("del", "00:00:00:00:00:00", B),
        ("neigh_add", "203.0.113.1", MAC),
        ("neigh_del", "203.0.113.1"),
    ]


def test_a_sticky_local_mac_taken_away_is_no_longer_sticky() -> None:
    """Found by the stateful test: a local sticky MAC that loses to a remote sticky path (same
    sequence, lower VTEP address) is gone; learning it again, not sticky, is refused like any
    local learn of a remote sticky MAC."""
    m = machine()
    m.local_learned(MAC, 1.0, sticky=True)
    lower = "198.51.100.0"
    assert m.routes_received(announce(lower, sticky=True), 2.0)[0] == FdbSet(MAC, lower, static=True)
    assert m.local_learned(MAC, 3.0) == []
    assert m.routes_received(withdraw(lower), 4.0) == [FdbClear(MAC, lower)]
    assert m.advertised == m.advertised[:1]  # only the type-3 route: the local MAC left
