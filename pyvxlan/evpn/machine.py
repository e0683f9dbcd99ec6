"""The EVPN state machine (RFC 7432, RFC 8365): routes in, VTEP operations out; local MACs in,
routes out. Sans-I/O, like the VTEP core: no clock (every call takes ``now``), no sockets, and
timers out through :meth:`EvpnMachine.get_timer`.

One machine serves one VNI on one VTEP. What it decides follows FRR (bgpd's best path and
zebra's MAC handling, see ``research/evpn-frr.md`` section 2):

* a type-2 route from another VTEP installs its MAC (``extern_learn``, or ``static`` when sticky)
  toward the route's next hop, and a neighbour entry for its IP (ARP/ND suppression);
* a type-3 route with an ingress-replication PMSI puts its originator on the flood list (an
  all-zeros ``append``); without PMSI type 6 FRR floods nothing to it, and neither does this;
* among several paths for one MAC: sticky first, then the higher MAC mobility sequence, then the
  lower VTEP address (``bgp_path_info_cmp``);
* a local learn of a MAC that lives elsewhere is a move: it is advertised with sequence
  ``max(remote + 1, local)`` (``zebra_evpn_mac.c``); a remote path with a higher sequence takes a
  local MAC away, and the local route is withdrawn;
* duplicate detection (``zebra_evpn_dup_addr_detect_for_mac``): a window opens at a local
  learn, and the 5th move within 180 s marks the MAC duplicate; with ``dad_freeze`` the MAC is
  then held (neither advertised nor installed anew) for that long, or until cleared.

>>> m = EvpnMachine(EvpnConfig(vni=100, local="198.51.100.1", asn=65000))
>>> [type(a).__name__ for a in m.start(now=0.0)]
['Advertise']
>>> m.local_learned("02:00:00:00:00:01", now=1.0)[0].route.mac
'02:00:00:00:00:01'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from pyvxlan.core.control import VtepControl
from pyvxlan.core.entries import FdbState
from pyvxlan.errors import ConfigError, FdbEntryNotFound, NeighbourError
from pyvxlan.evpn.codec import (
    ENCAP_VXLAN,
    EvpnRoute,
    ExtendedCommunity,
    InclusiveMulticastRoute,
    MacIpRoute,
    MacMobility,
    PmsiTunnel,
    RdType,
    RouteDistinguisher,
    RouteTarget,
    Update,
)
from pyvxlan.wire.addr import ZERO_MAC, ip_info, normalize_ip, normalize_mac
from pyvxlan.wire.header import VNI_MAX, check_bool, check_int, describe

__all__ = [
    "ZERO_MAC",
    "Action",
    "Advertise",
    "DuplicateMac",
    "EvpnConfig",
    "EvpnMachine",
    "FdbClear",
    "FdbSet",
    "FloodAdd",
    "FloodClear",
    "NeighbourClear",
    "NeighbourSet",
    "Withdraw",
    "apply_actions",
]


@dataclass(frozen=True, slots=True)
class EvpnConfig:
    """One VNI on one VTEP.

    ``rd`` defaults to FRR's auto RD (``local:1``, type 1) and ``export_targets`` to FRR's auto RT
    ``(asn & 0xFFFF):vni``. With ``import_targets`` left ``None``, a route is imported when any of
    its route targets has this VNI as its number, whatever its AS: FRR 8.4.4 masks the global
    admin of auto import RTs (``mask_ecom_global_admin``). ``dad_max_moves`` and ``dad_time``
    are FRR's defaults (5 moves in 180 s); ``dad_freeze`` ``None`` is FRR's default (detect and
    report only), ``math.inf`` is ``freeze permanent``. ``extern_learn`` installs remote MACs as
    FRR does (``extern_learn``, never aged); ``False`` makes them ``static``.
    """

    vni: int
    local: str
    asn: int
    rd: RouteDistinguisher | None = None
    export_targets: tuple[RouteTarget, ...] | None = None
    import_targets: tuple[RouteTarget, ...] | None = None
    dad_max_moves: int = 5
    dad_time: float = 180.0
    dad_freeze: float | None = None
    extern_learn: bool = True

    def __post_init__(self) -> None:
        check_int(self.vni, "vni", 0, VNI_MAX)
        object.__setattr__(self, "local", normalize_ip(self.local, "local"))
        check_int(self.asn, "asn", 1, 0xFFFFFFFF)
        if self.rd is None:
            if ":" in self.local:
                raise ConfigError("rd", "an IPv6 VTEP needs an explicit route distinguisher")
            object.__setattr__(self, "rd", RouteDistinguisher(RdType.IPV4, self.local, 1))
        elif not isinstance(self.rd, RouteDistinguisher):
            raise ConfigError("rd", f"must be a RouteDistinguisher or None, got {describe(self.rd)}")
        if self.export_targets is None:
            object.__setattr__(self, "export_targets", (RouteTarget(RdType.AS2, self.asn & 0xFFFF, self.vni),))
        for name in ("export_targets", "import_targets"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, tuple) or not value or not all(isinstance(t, RouteTarget) for t in value)
            ):
                raise ConfigError(name, f"must be a non-empty tuple of RouteTarget, got {describe(value)}")
        check_int(self.dad_max_moves, "dad_max_moves", 2, 1000)
        for name in ("dad_time",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(name, f"must be a positive number of seconds, got {describe(value)}")
        freeze = self.dad_freeze
        if freeze is not None and (isinstance(freeze, bool) or not isinstance(freeze, (int, float)) or not freeze > 0):
            raise ConfigError(
                "dad_freeze", f"must be None, a positive number of seconds or math.inf, got {describe(freeze)}"
            )
        check_bool(self.extern_learn, "extern_learn")

    @property
    def route_distinguisher(self) -> RouteDistinguisher:
        """The RD of the routes this VTEP originates."""
        assert self.rd is not None  # set in __post_init__
        return self.rd

    @property
    def communities(self) -> tuple[ExtendedCommunity, ...]:
        """What every route this VTEP originates carries: the export RTs and VXLAN encapsulation."""
        assert self.export_targets is not None  # set in __post_init__
        return (*self.export_targets, ENCAP_VXLAN)

    def imports(self, communities: Iterable[ExtendedCommunity]) -> bool:
        """Whether a route with these communities belongs to this VNI."""
        targets = [c for c in communities if isinstance(c, RouteTarget)]
        if self.import_targets is None:
            return any(t.assigned == self.vni for t in targets)
        return any(t in self.import_targets for t in targets)


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FdbSet:
    """Point ``mac`` at VTEP ``dst`` (``bridge fdb replace``): ``extern_learn``, or ``static``
    when the route is sticky or the machine is set to static entries."""

    mac: str
    dst: str
    static: bool


@dataclass(frozen=True, slots=True)
class FdbClear:
    """Remove ``mac`` (installed toward ``dst``)."""

    mac: str
    dst: str


@dataclass(frozen=True, slots=True)
class FloodAdd:
    """Add ``dst`` to the flood list (``bridge fdb append 00:00:00:00:00:00 dst DST``)."""

    dst: str


@dataclass(frozen=True, slots=True)
class FloodClear:
    """Remove ``dst`` from the flood list."""

    dst: str


@dataclass(frozen=True, slots=True)
class NeighbourSet:
    """``ip`` resolves to ``mac`` (proxy ARP/ND answers from it)."""

    ip: str
    mac: str


@dataclass(frozen=True, slots=True)
class NeighbourClear:
    """Remove the neighbour entry of ``ip`` (which resolved to ``mac``)."""

    ip: str
    mac: str


@dataclass(frozen=True, slots=True)
class Advertise:
    """Announce ``route`` with ``communities`` (and ``pmsi`` for a type-3 route)."""

    route: MacIpRoute | InclusiveMulticastRoute
    communities: tuple[ExtendedCommunity, ...]
    pmsi: PmsiTunnel | None = None

    def update(self, next_hop: str) -> Update:
        """The UPDATE announcing it, FRR's way."""
        return Update.announce([self.route], next_hop=next_hop, communities=self.communities, pmsi=self.pmsi)


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Withdraw ``route`` (sent with a zero label, as FRR does)."""

    route: MacIpRoute | InclusiveMulticastRoute

    def update(self) -> Update:
        """The UPDATE withdrawing it."""
        route = self.route
        if isinstance(route, MacIpRoute):
            route = MacIpRoute(route.rd, route.mac, route.ip, (0,) * len(route.labels), route.ethernet_tag, route.esi)
        return Update.withdraw([route])


@dataclass(frozen=True, slots=True)
class DuplicateMac:
    """``mac`` moved ``moves`` times within the detection window: two hosts claim it, or a loop."""

    mac: str
    moves: int
    now: float


Action: TypeAlias = (
    FdbSet | FdbClear | FloodAdd | FloodClear | NeighbourSet | NeighbourClear | Advertise | Withdraw | DuplicateMac
)


# --- state ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Path:
    vtep: str
    sequence: int
    sticky: bool

    def rank(self) -> tuple[bool, int, int, bytes]:
        # bgp_path_info_cmp: sticky wins, then the higher sequence, then the lower next hop (the
        # packed bytes of one version order as the numbers do).
        addr = ip_info(self.vtep)
        return (not self.sticky, -self.sequence, addr.version, addr.packed)


@dataclass(slots=True)
class _Mac:
    paths: dict[tuple[object, ...], _Path] = field(default_factory=dict)  # remote route key -> path
    ips: dict[tuple[object, ...], str] = field(default_factory=dict)  # remote route key -> IP
    local: bool = False
    local_sticky: bool = False
    local_ips: set[str] = field(default_factory=set)
    local_seq: int = 0
    dad_count: int = 0
    dad_start: float = -math.inf
    duplicate: bool = False
    frozen_until: float | None = None

    def best(self) -> _Path | None:
        return min(self.paths.values(), key=_Path.rank) if self.paths else None


class EvpnMachine:
    """The EVPN control plane of one VNI on one VTEP (see the module docstring)."""

    def __init__(self, config: EvpnConfig) -> None:
        if not isinstance(config, EvpnConfig):
            raise ConfigError("config", f"must be an EvpnConfig, got {describe(config)}")
        self.config = config
        self._macs: dict[str, _Mac] = {}
        self._flood_routes: dict[tuple[object, ...], str] = {}  # type-3 key -> originator
        # Whether _flood_routes changed since the flood list was last settled: comparing the two
        # on every route would cost a VTEP of 1,000 peers 1,000 steps per type-2 route.
        self._flood_dirty = False
        # What the machine has told the VTEP and the peers, to emit differences only.
        self._fdb: dict[str, tuple[str, bool]] = {}
        self._neigh: dict[str, str] = {}
        # The same by MAC, so that settling one MAC does not walk every neighbour entry (a VTEP
        # of 1,000 peers would walk 1,000 per route).
        self._neigh_ips: dict[str, set[str]] = {}
        self._flood: set[str] = set()
        self._advertised: dict[tuple[object, ...], Advertise] = {}
        self._started = False

    # --- read-only views ---

    @property
    def fdb(self) -> dict[str, tuple[str, bool]]:
        """Remote MACs installed: MAC -> (VTEP, static)."""
        return dict(self._fdb)

    @property
    def neighbours(self) -> dict[str, str]:
        """Neighbour entries installed: IP -> MAC."""
        return dict(self._neigh)

    @property
    def flood_list(self) -> frozenset[str]:
        """The VTEPs BUM traffic is replicated to."""
        return frozenset(self._flood)

    @property
    def advertised(self) -> tuple[Advertise, ...]:
        """The routes this VTEP announces now."""
        return tuple(self._advertised.values())

    def sequence(self, mac: str) -> int:
        """The MAC mobility sequence this VTEP would advertise ``mac`` with (its local sequence)."""
        state = self._macs.get(normalize_mac(mac, "mac"))
        return 0 if state is None else state.local_seq

    def is_duplicate(self, mac: str) -> bool:
        """Whether duplicate detection has flagged ``mac``."""
        state = self._macs.get(normalize_mac(mac, "mac"))
        return state is not None and state.duplicate

    # --- inputs ---

    def start(self, now: float) -> list[Action]:
        """Join the VNI's flood list: advertise the type-3 route (PMSI ingress replication)."""
        self._check_now(now)
        self._started = True
        cfg = self.config
        route = InclusiveMulticastRoute(cfg.route_distinguisher, cfg.local)
        ad = Advertise(route, cfg.communities, PmsiTunnel(cfg.local, cfg.vni))
        self._advertised[route.key] = ad
        return [ad]

    def routes_received(self, update: Update, now: float) -> list[Action]:
        """An UPDATE from the session: its EVPN announcements and withdrawals."""
        self._check_now(now)
        if not isinstance(update, Update):
            raise ConfigError("update", f"must be an Update, got {describe(update)}")
        actions: list[Action] = []
        touched: set[str] = set()
        unreach = update.unreach
        if unreach is not None:
            for route in unreach.routes:
                self._forget(route, touched, actions)
        reach = update.reach
        if reach is not None:
            imported = self.config.imports(update.communities)
            mobility = next((c for c in update.communities if isinstance(c, MacMobility)), MacMobility())
            for route in reach.routes:
                if not imported:
                    # A route whose RT no longer matches replaces an imported one: FRR unimports it.
                    self._forget(route, touched, actions)
                elif isinstance(route, MacIpRoute):
                    self._learn_remote(
                        route, vtep=reach.next_hop, mobility=mobility, touched=touched, now=now, actions=actions
                    )
                elif isinstance(route, InclusiveMulticastRoute):
                    pmsi = update.pmsi
                    if pmsi is None or route.originator == self.config.local:
                        # FRR's evpn_zebra_install: no ingress-replication PMSI, no flooding to it.
                        self._forget(route, touched, actions)
                    else:
                        self._flood_routes[route.key] = route.originator
                        self._flood_dirty = True
        self._settle(touched, now, actions)
        return actions

    def peer_lost(self, now: float) -> list[Action]:
        """The session went down: every route learned from it is gone."""
        self._check_now(now)
        actions: list[Action] = []
        touched = {mac for mac, state in self._macs.items() if state.paths}
        for mac in touched:
            self._macs[mac].paths.clear()
            self._macs[mac].ips.clear()
        self._flood_routes.clear()
        self._flood_dirty = True
        self._settle(touched, now, actions)
        return actions

    def local_learned(self, mac: str, now: float, *, ip: str | None = None, sticky: bool = False) -> list[Action]:
        """A local guest's MAC (and optionally its IP) appeared on the bridge: from a learned
        notification, or a guest attaching. ``sticky`` is a static MAC that must not move."""
        self._check_now(now)
        mac = normalize_mac(mac, "mac")
        if ip is not None:
            ip = normalize_ip(ip, "ip")
        check_bool(sticky, "sticky")
        state = self._macs.setdefault(mac, _Mac())
        actions: list[Action] = []
        best = state.best()
        if best is not None and best.sticky and not state.local_sticky and not sticky:
            # zebra: EC_ZEBRA_STICKY_MAC_ALREADY_LEARNT, a remote sticky MAC is not learned locally.
            return actions
        if best is not None and not (state.local and self._local_wins(state)):
            # A move to this VTEP: outbid the path it came from.
            state.local_seq = max(best.sequence + 1, state.local_seq)
            self._dad(state, mac, is_local=True, now=now, actions=actions)
        state.local = True
        state.local_sticky = sticky
        if ip is not None:
            state.local_ips.add(ip)
        self._settle({mac}, now, actions)
        return actions

    def local_removed(self, mac: str, now: float, *, ip: str | None = None) -> list[Action]:
        """A local MAC aged out or its guest left (or, with ``ip``, only that IP went away)."""
        self._check_now(now)
        mac = normalize_mac(mac, "mac")
        state = self._macs.get(mac)
        actions: list[Action] = []
        if state is None or not state.local:
            return actions
        if ip is not None:
            state.local_ips.discard(normalize_ip(ip, "ip"))
        else:
            state.local = False
            state.local_sticky = False
            state.local_ips.clear()
        self._settle({mac}, now, actions)
        return actions

    def clear_duplicate(self, mac: str, now: float) -> list[Action]:
        """``clear evpn dup-addr``: forget that ``mac`` is a duplicate and act on its state."""
        self._check_now(now)
        mac = normalize_mac(mac, "mac")
        state = self._macs.get(mac)
        actions: list[Action] = []
        if state is not None and state.duplicate:
            state.duplicate = False
            state.frozen_until = None
            state.dad_count = 0
            self._settle({mac}, now, actions)
        return actions

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next run (a frozen duplicate's recovery), or ``None``."""
        times = [s.frozen_until for s in self._macs.values() if s.frozen_until is not None]
        finite = [t for t in times if t < math.inf]
        return min(finite) if finite else None

    def handle_timer(self, now: float) -> list[Action]:
        """Recover the duplicates whose freeze has run out (FRR's auto-recovery timer)."""
        self._check_now(now)
        actions: list[Action] = []
        for mac, state in list(self._macs.items()):
            if state.frozen_until is not None and state.frozen_until <= now:
                actions += self.clear_duplicate(mac, now)
        return actions

    # --- internals ---

    @staticmethod
    def _check_now(now: object) -> None:
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ConfigError("now", f"must be a finite time in seconds, got {describe(now)}")

    def _forget(self, route: EvpnRoute, touched: set[str], actions: list[Action]) -> None:
        if isinstance(route, MacIpRoute):
            state = self._macs.get(route.mac)
            if state is not None and state.paths.pop(route.key, None) is not None:
                state.ips.pop(route.key, None)
                touched.add(route.mac)
        elif isinstance(route, InclusiveMulticastRoute) and self._flood_routes.pop(route.key, None) is not None:
            self._flood_dirty = True

    def _learn_remote(
        self,
        route: MacIpRoute,
        *,
        vtep: str,
        mobility: MacMobility,
        touched: set[str],
        now: float,
        actions: list[Action],
    ) -> None:
        if vtep == self.config.local:
            return  # our own route, reflected back
        state = self._macs.setdefault(route.mac, _Mac())
        local_before = state.local and self._local_wins(state)
        state.paths[route.key] = _Path(vtep, mobility.sequence, mobility.sticky)
        if route.ip is not None:
            state.ips[route.key] = route.ip
        if local_before and not self._local_wins(state):
            # The MAC moved away from this VTEP: its local entry goes (the bridge would learn it on
            # the vxlan port now), and the move counts toward duplicate detection.
            state.local = False
            state.local_sticky = False
            state.local_ips.clear()
            self._dad(state, route.mac, is_local=False, now=now, actions=actions)
        touched.add(route.mac)

    def _local_wins(self, state: _Mac) -> bool:
        best = state.best()
        if best is None:
            return True
        if state.local_sticky != best.sticky:
            return state.local_sticky
        if state.local_seq != best.sequence:
            return state.local_seq > best.sequence
        local = ip_info(self.config.local)
        remote = ip_info(best.vtep)
        return (local.version, local.packed) < (remote.version, remote.packed)

    def _dad(self, state: _Mac, mac: str, *, is_local: bool, now: float, actions: list[Action]) -> None:
        cfg = self.config
        if state.duplicate:
            return
        # zebra_evpn_dup_addr_detect_for_mac: the window opens on a local learn; a remote move
        # counts only inside an open window.
        reset = now - state.dad_start > cfg.dad_time
        if is_local and not reset:
            reset = state.dad_count == 0
        if reset:
            state.dad_count = 0
            if is_local:
                state.dad_start = now
        elif not is_local:
            state.dad_count += 1
        if is_local:
            state.dad_count += 1
        if state.dad_count >= cfg.dad_max_moves:
            state.duplicate = True
            if cfg.dad_freeze is not None:
                state.frozen_until = now + cfg.dad_freeze
            actions.append(DuplicateMac(mac, state.dad_count, now))

    def _settle(self, macs: set[str], now: float, actions: list[Action]) -> None:
        """Bring what the VTEP and the peers were told in line with the state of ``macs`` and
        the flood list."""
        cfg = self.config
        for mac in sorted(macs):
            state = self._macs[mac]
            if state.frozen_until is not None:
                continue  # a frozen duplicate: hold both directions (FRR's dad freeze)
            local = state.local and self._local_wins(state)
            best = None if local else state.best()
            # The forwarding entry.
            want = None if best is None else (best.vtep, best.sticky or not cfg.extern_learn)
            have = self._fdb.get(mac)
            if want != have:
                if have is not None and want is None:
                    actions.append(FdbClear(mac, have[0]))
                    del self._fdb[mac]
                elif want is not None:
                    actions.append(FdbSet(mac, want[0], want[1]))
                    self._fdb[mac] = want
            # Neighbour entries that point at this MAC.
            want_ips = set() if best is None else {ip for key, ip in state.ips.items() if state.paths.get(key) == best}
            mine = self._neigh_ips.setdefault(mac, set())
            for ip in sorted(mine - want_ips):
                actions.append(NeighbourClear(ip, mac))
                del self._neigh[ip]
                mine.discard(ip)
            for ip in sorted(want_ips):
                holder = self._neigh.get(ip)
                if holder != mac:
                    if holder is not None:
                        actions.append(NeighbourClear(ip, holder))
                        self._neigh_ips[holder].discard(ip)
                    actions.append(NeighbourSet(ip, mac))
                    self._neigh[ip] = mac
                    mine.add(ip)
            # Our own routes for this MAC.
            wanted: dict[tuple[object, ...], Advertise] = {}
            if local:
                communities = cfg.communities
                if state.local_seq or state.local_sticky:
                    communities = (*communities, MacMobility(state.local_seq, state.local_sticky))
                local_ips: list[str | None] = [None, *sorted(state.local_ips)]
                for local_ip in local_ips:
                    route = MacIpRoute(cfg.route_distinguisher, mac, local_ip, (cfg.vni,))
                    wanted[route.key] = Advertise(route, communities)
            for key, ad in list(self._advertised.items()):
                if isinstance(ad.route, MacIpRoute) and ad.route.mac == mac and key not in wanted:
                    actions.append(Withdraw(ad.route))
                    del self._advertised[key]
            for key, ad in wanted.items():
                if self._advertised.get(key) != ad:
                    actions.append(ad)
                    self._advertised[key] = ad
        if not self._flood_dirty:
            return
        self._flood_dirty = False
        want_flood = set(self._flood_routes.values())
        for dst in sorted(self._flood - want_flood):
            actions.append(FloodClear(dst))
        for dst in sorted(want_flood - self._flood):
            actions.append(FloodAdd(dst))
        self._flood = want_flood


async def apply_actions(actions: Sequence[Action], vtep: VtepControl) -> None:
    """Carry out the VTEP operations among ``actions`` on any :class:`~pyvxlan.VtepControl`
    (routes to advertise and notifications are left to the caller)."""
    for action in actions:
        if isinstance(action, FdbSet):
            if action.static:
                await vtep.fdb_replace(action.mac, action.dst, state=FdbState.STATIC)
            else:
                await vtep.fdb_replace(action.mac, action.dst, state=FdbState.REACHABLE, extern_learn=True)
        elif isinstance(action, FdbClear):
            try:
                await vtep.fdb_del(action.mac, action.dst)
            except FdbEntryNotFound:
                pass  # already gone (the device went down and flushed it, say): the goal is met
        elif isinstance(action, FloodAdd):
            await vtep.fdb_append(ZERO_MAC, action.dst)
        elif isinstance(action, FloodClear):
            try:
                await vtep.fdb_del(ZERO_MAC, action.dst)
            except FdbEntryNotFound:
                pass
        elif isinstance(action, NeighbourSet):
            await vtep.neigh_add(action.ip, action.mac)
        elif isinstance(action, NeighbourClear):
            try:
                await vtep.neigh_del(action.ip)
            except NeighbourError:
                pass  # already gone, as above (the neighbour table's error, not the FDB's)
