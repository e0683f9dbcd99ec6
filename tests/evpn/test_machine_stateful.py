"""The EVPN machine against a simple model, by hypothesis' rule-based state machines.

The model keeps only the routes and local MACs and recomputes, from scratch, what every table
should hold; the machine works incrementally and says only what changed. The test applies the
machine's actions to a mirror of the VTEP (refusing an operation the VTEP would refuse: removing
what is not there, adding a neighbour twice) and compares the mirror with the model after every
step.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pyvxlan.evpn import (
    ENCAP_VXLAN,
    Action,
    Advertise,
    DuplicateMac,
    EvpnConfig,
    EvpnMachine,
    ExtendedCommunity,
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
)

LOCAL = "198.51.100.5"
VTEPS = ["198.51.100.2", "198.51.100.7", "198.51.100.9"]
MACS = [f"02:00:00:00:00:0{i}" for i in range(1, 5)]
RT = RouteTarget.as2(65000, 100)


def ip_of(mac: str) -> str:
    return f"203.0.113.{int(mac[-1])}"


@dataclass
class Model:
    remote: dict[tuple[str, str, bool], tuple[int, bool]] = field(default_factory=dict)  # (mac, vtep, with ip)
    local: dict[str, bool] = field(default_factory=dict)  # mac -> sticky
    seq: dict[str, int] = field(default_factory=dict)
    imet: set[str] = field(default_factory=set)

    def best(self, mac: str) -> tuple[str, int, bool] | None:
        paths = [(v, s, st_) for (m, v, _), (s, st_) in self.remote.items() if m == mac]
        if not paths:
            return None
        v, s, sticky = min(paths, key=lambda p: (not p[2], -p[1], int(ipaddress.ip_address(p[0]))))
        return v, s, sticky

    def local_wins(self, mac: str) -> bool:
        best = self.best(mac)
        if best is None:
            return True
        sticky = self.local[mac]
        if sticky != best[2]:
            return sticky
        if self.seq.get(mac, 0) != best[1]:
            return self.seq.get(mac, 0) > best[1]
        return int(ipaddress.ip_address(LOCAL)) < int(ipaddress.ip_address(best[0]))

    def fdb(self) -> dict[str, tuple[str, bool]]:
        out = {}
        for mac in MACS:
            best = self.best(mac)
            if best and not (mac in self.local and self.local_wins(mac)):
                out[mac] = (best[0], best[2])
        return out

    def neighbours(self) -> dict[str, str]:
        out = {}
        for mac, (vtep, _) in self.fdb().items():
            best = self.best(mac)
            assert best is not None
            if any(
                m == mac
                and v == vtep
                and ip
                and self.remote[(m, v, ip)][:1] + (self.remote[(m, v, ip)][1],) == best[1:]
                for (m, v, ip) in self.remote
            ):
                out[ip_of(mac)] = mac
        return out


class EvpnStateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.machine = EvpnMachine(EvpnConfig(vni=100, local=LOCAL, asn=65000, dad_max_moves=1000))
        self.model = Model()
        self.fdb: dict[str, tuple[str, bool]] = {}
        self.neigh: dict[str, str] = {}
        self.flood: set[str] = set()
        self.advertised: dict[tuple[object, ...], Advertise] = {}
        self.apply(self.machine.start(self.now))

    def apply(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, FdbSet):
                self.fdb[a.mac] = (a.dst, a.static)
            elif isinstance(a, FdbClear):
                assert self.fdb.pop(a.mac)[0] == a.dst
            elif isinstance(a, FloodAdd):
                assert a.dst not in self.flood
                self.flood.add(a.dst)
            elif isinstance(a, FloodClear):
                self.flood.remove(a.dst)
            elif isinstance(a, NeighbourSet):
                assert a.ip not in self.neigh
                self.neigh[a.ip] = a.mac
            elif isinstance(a, NeighbourClear):
                assert self.neigh.pop(a.ip) == a.mac
            elif isinstance(a, Advertise):
                self.advertised[a.route.key] = a
            elif isinstance(a, Withdraw):
                del self.advertised[a.route.key]
            else:
                assert not isinstance(a, DuplicateMac)

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    @rule(
        mac=st.sampled_from(MACS),
        vtep=st.sampled_from(VTEPS),
        with_ip=st.booleans(),
        seq=st.integers(0, 4),
        sticky=st.booleans(),
    )
    def remote_announce(self, mac: str, vtep: str, with_ip: bool, seq: int, sticky: bool) -> None:
        route = MacIpRoute(RouteDistinguisher.ipv4(vtep, 1), mac, ip_of(mac) if with_ip else None, (100,))
        communities: list[ExtendedCommunity] = [RT, ENCAP_VXLAN, MacMobility(seq, sticky)]
        was_local = mac in self.model.local and self.model.local_wins(mac)
        # A MAC-only and a MAC+IP route from one VTEP carry the same mobility (FRR sends both).
        for other in (True, False):
            if (mac, vtep, other) in self.model.remote:
                self.model.remote[(mac, vtep, other)] = (seq, sticky)
        self.model.remote[(mac, vtep, with_ip)] = (seq, sticky)
        if was_local and not self.model.local_wins(mac):
            del self.model.local[mac]
        for other in (True, False):
            if other != with_ip and (mac, vtep, other) in self.model.remote:
                r = MacIpRoute(RouteDistinguisher.ipv4(vtep, 1), mac, ip_of(mac) if other else None, (100,))
                self.apply(
                    self.machine.routes_received(
                        Update.announce([r], next_hop=vtep, communities=communities), self.tick()
                    )
                )
        self.apply(
            self.machine.routes_received(Update.announce([route], next_hop=vtep, communities=communities), self.tick())
        )

    @rule(mac=st.sampled_from(MACS), vtep=st.sampled_from(VTEPS), with_ip=st.booleans())
    def remote_withdraw(self, mac: str, vtep: str, with_ip: bool) -> None:
        self.model.remote.pop((mac, vtep, with_ip), None)
        route = MacIpRoute(RouteDistinguisher.ipv4(vtep, 1), mac, ip_of(mac) if with_ip else None, (0,))
        self.apply(self.machine.routes_received(Update.withdraw([route]), self.tick()))

    @rule(mac=st.sampled_from(MACS), sticky=st.booleans())
    def local_learn(self, mac: str, sticky: bool) -> None:
        best = self.model.best(mac)
        if best is not None and best[2] and not sticky and not self.model.local.get(mac, False):
            pass  # a remote sticky MAC is not learned locally
        else:
            if best is not None and not (mac in self.model.local and self.model.local_wins(mac)):
                self.model.seq[mac] = max(best[1] + 1, self.model.seq.get(mac, 0))
            self.model.local[mac] = sticky
        self.apply(self.machine.local_learned(mac, self.tick(), sticky=sticky))

    @rule(mac=st.sampled_from(MACS))
    def local_remove(self, mac: str) -> None:
        self.model.local.pop(mac, None)
        self.apply(self.machine.local_removed(mac, self.tick()))

    @rule(vtep=st.sampled_from(VTEPS), add=st.booleans())
    def imet(self, vtep: str, add: bool) -> None:
        route = InclusiveMulticastRoute(RouteDistinguisher.ipv4(vtep, 1), vtep)
        if add:
            self.model.imet.add(vtep)
            update = Update.announce([route], next_hop=vtep, communities=[RT, ENCAP_VXLAN], pmsi=PmsiTunnel(vtep, 100))
        else:
            self.model.imet.discard(vtep)
            update = Update.withdraw([route])
        self.apply(self.machine.routes_received(update, self.tick()))

    @rule()
    def peer_lost(self) -> None:
        self.model.remote.clear()
        self.model.imet.clear()
        self.apply(self.machine.peer_lost(self.tick()))

    @invariant()
    def tables_match_the_model(self) -> None:
        assert self.fdb == self.model.fdb()
        assert self.fdb == self.machine.fdb
        assert self.neigh == self.model.neighbours()
        assert self.flood == self.model.imet == self.machine.flood_list

    @invariant()
    def advertised_routes_match_the_model(self) -> None:
        want: dict[str, tuple[int, bool]] = {}
        for mac, sticky in self.model.local.items():
            if self.model.local_wins(mac):
                want[mac] = (self.model.seq.get(mac, 0), sticky)
        got: dict[str, tuple[int, bool]] = {}
        for ad in self.advertised.values():
            if isinstance(ad.route, MacIpRoute):
                mm = next((c for c in ad.communities if isinstance(c, MacMobility)), MacMobility())
                got[ad.route.mac] = (mm.sequence, mm.sticky)
        assert got == want
        assert tuple(self.advertised.values()) == self.machine.advertised or set(self.advertised.values()) == set(
            self.machine.advertised
        )


TestEvpnStateMachine = EvpnStateMachine.TestCase
TestEvpnStateMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
