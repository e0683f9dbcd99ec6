"""The FDB (inside a Vtep, so learning and ageing are included) against a plain-dict model.

Learning is driven both through ``Vtep.receive`` and through ``ForwardingDatabase.learn`` itself,
whose :class:`~pyvxlan.core.fdb.LearnOutcome` is checked against the model; a time that goes
backwards is refused at every entry point without changing anything.

The model writes down Linux's vxlan_fdb_update_existing and __vxlan_fdb_delete: a request's state
and flags replace the entry's unless it is ``extern_learn`` and the entry is the user's; a refused
replace of an all-zeros or multicast MAC has already rewritten them; a delete with an unspecified
``dst`` takes the whole MAC, with a ``dst`` of the other family nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pyvxlan import (
    DeliverFrame,
    Dropped,
    DropReason,
    EntryExpired,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    FdbState,
    Vtep,
    VtepConfig,
)
from pyvxlan.core.fdb import LearnOutcome
from pyvxlan.errors import ClockError

PEER = "198.51.100.2"
ZERO = "00:00:00:00:00:00"
UNICAST = [f"02:00:00:00:00:0{i}" for i in range(1, 6)]
MULTICAST = ["01:00:5e:01:01:01", "33:33:00:00:00:01"]
MACS = st.sampled_from([ZERO, *UNICAST, *MULTICAST])
DSTS = st.sampled_from(["198.51.100.2", "198.51.100.3", "198.51.100.4"])
DEL_DSTS = st.none() | DSTS | st.sampled_from(["0.0.0.0", "::", "2001:db8::2"])
PORTS = st.sampled_from([None, 5555])
VNIS = st.sampled_from([None, 20])
STATES = st.sampled_from(list(FdbState))
DEV_MAC = "02:00:00:00:0a:01"

Remote = tuple[str, int | None, int | None]


@dataclass
class Rec:
    state: FdbState
    extern: bool
    remotes: list[Remote]
    updated: float
    used: float = 0.0
    router: bool = False
    user: bool = True  # Linux's NTF_VXLAN_ADDED_BY_USER

    def restate(self, state: FdbState, extern: bool, router: bool) -> bool:
        """vxlan_fdb_update_existing's first step; True when anything changed."""
        if extern and self.user:
            return False
        new = (state, extern, router, True)
        if (self.state, self.extern, self.router, self.user) == new:
            return False
        self.state, self.extern, self.router, self.user = new
        return True

    @property
    def ages(self) -> bool:
        return self.state is FdbState.REACHABLE and not self.extern


def is_unicast(mac: str) -> bool:
    return mac != ZERO and not int(mac[:2], 16) & 1


class FdbMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, Rec] = {}
        self.now = 0.0
        self.ageing = 300.0
        self.limit = 0
        self.learning = True

    @initialize(limit=st.sampled_from([0, 2, 4]), ageing=st.sampled_from([10.0, 300.0]))
    def start(self, limit: int, ageing: float) -> None:
        self.limit = limit
        self.ageing = ageing
        self.vtep = Vtep(VtepConfig(vni=10, remote=PEER, max_entries=limit, ageing=ageing, mac=DEV_MAC))
        self.vtep.up(0.0)
        self.vtep.take_outputs()
        self.model[ZERO] = Rec(FdbState.PERMANENT, False, [(PEER, None, None)], 0.0, user=False)

    def full(self) -> bool:
        return bool(self.limit) and len(self.model) >= self.limit

    def create(self, mac: str, state: FdbState, extern: bool, remote: Remote, router: bool = False) -> None:
        self.model[mac] = Rec(state, extern, [remote], self.now, self.now, router)

    @rule(dt=st.integers(0, 40).map(float))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.vtep.handle_timer(self.now)
        got = sorted((o.mac, o.dst) for o in self.vtep.take_outputs() if isinstance(o, EntryExpired))
        want = []
        for mac, rec in list(self.model.items()):
            if rec.ages and rec.updated + self.ageing <= self.now:
                want += [(mac, r[0]) for r in rec.remotes]
                del self.model[mac]
        assert got == sorted(want)

    @rule(mac=MACS, dst=DSTS, port=PORTS, vni=VNIS, state=STATES, extern=st.booleans(), router=st.booleans())
    def add(  # noqa: PLR0917 - hypothesis passes rule arguments by keyword
        self, mac: str, dst: str, port: int | None, vni: int | None, state: FdbState, extern: bool, router: bool
    ) -> None:
        try:
            self.vtep.fdb_add(
                mac, dst, port=port, vni=vni, state=state, extern_learn=extern, router=router, now=self.now
            )
        except FdbEntryExists:
            assert mac in self.model
        except FdbFull:
            assert mac not in self.model and self.full()
        else:
            assert mac not in self.model and not self.full()
            self.create(mac, state, extern, (dst, port, vni), router)

    @rule(mac=MACS, dst=DSTS, port=PORTS, vni=VNIS, state=STATES, extern=st.booleans())
    def append(self, mac: str, dst: str, port: int | None, vni: int | None, state: FdbState, extern: bool) -> None:  # noqa: PLR0917
        try:
            self.vtep.fdb_append(mac, dst, port=port, vni=vni, state=state, extern_learn=extern, now=self.now)
        except FdbFull:
            assert mac not in self.model and self.full()
            return
        rec = self.model.get(mac)
        if rec is None:
            assert not self.full()
            self.create(mac, state, extern, (dst, port, vni))
            return
        changed = rec.restate(state, extern, False)
        if not is_unicast(mac) and (dst, port, vni) not in rec.remotes:
            rec.remotes.append((dst, port, vni))
            changed = True
        if changed:
            rec.updated = self.now

    @rule(mac=MACS, dst=DSTS, port=PORTS, vni=VNIS, state=STATES, extern=st.booleans())
    def replace(self, mac: str, dst: str, port: int | None, vni: int | None, state: FdbState, extern: bool) -> None:  # noqa: PLR0917
        rec = self.model.get(mac)
        try:
            self.vtep.fdb_replace(mac, dst, port=port, vni=vni, state=state, extern_learn=extern, now=self.now)
        except FdbOperationNotSupported:
            assert not is_unicast(mac)
            if rec is not None:
                rec.restate(state, extern, False)  # the kernel's quirk: rewritten, refused, not refreshed
            return
        except FdbFull:
            assert mac not in self.model and self.full()
            return
        assert is_unicast(mac)
        if rec is None:
            self.create(mac, state, extern, (dst, port, vni))
        else:
            changed = rec.restate(state, extern, False)
            if rec.remotes[0] != (dst, port, vni):
                rec.remotes[0] = (dst, port, vni)
                changed = True
            if changed:
                rec.updated = self.now

    @rule(mac=MACS, dst=DEL_DSTS, port=PORTS, vni=VNIS)
    def delete(self, mac: str, dst: str | None, port: int | None, vni: int | None) -> None:
        try:
            self.vtep.fdb_del(mac, dst, port=port, vni=vni, now=self.now)
        except FdbEntryNotFound:
            assert mac not in self.model
            return
        rec = self.model[mac]
        if dst is None or dst in ("0.0.0.0", "::"):
            del self.model[mac]
        elif (dst, port, vni) in rec.remotes:
            if len(rec.remotes) > 1:
                rec.remotes.remove((dst, port, vni))
            else:
                del self.model[mac]

    @rule(src_mac=st.sampled_from([*UNICAST, MULTICAST[0], ZERO, DEV_MAC]), src=DSTS)
    def receive(self, src_mac: str, src: str) -> None:
        frame = bytes.fromhex("020000000a01" + src_mac.replace(":", "")) + b"\x08\x00" + bytes(46)
        self.vtep.receive(b"\x08\x00\x00\x00\x00\x00\x0a\x00" + frame, src, 50000, self.now)
        out = self.vtep.take_outputs()
        delivered = DeliverFrame(frame) in out
        reasons = [o.reason for o in out if isinstance(o, Dropped)]
        assert delivered != bool(reasons)  # delivered, or dropped with a reason: never both, never neither
        if src_mac == DEV_MAC:
            assert reasons == [DropReason.LOCAL_MAC]
            return
        if not self.learning:
            assert delivered
            return
        if not is_unicast(src_mac):
            assert reasons == [DropReason.INVALID_SOURCE_MAC]
            return
        rec = self.model.get(src_mac)
        if rec is None:
            assert delivered
            if not self.full():
                self.create(src_mac, FdbState.REACHABLE, False, (src, None, None))
                self.model[src_mac].user = False
            return
        rec.updated = self.now
        if rec.remotes[0][0] == src:
            assert delivered
        elif rec.state.is_sticky:
            assert reasons == [DropReason.ENTRY_EXISTS]
        else:
            assert delivered
            rec.remotes[0] = (src, *rec.remotes[0][1:])

    @rule(src_mac=st.sampled_from([*UNICAST, MULTICAST[0], ZERO]), src=DSTS)
    def learn(self, src_mac: str, src: str) -> None:
        """The FDB's own learning method (what receive calls), against the same model."""
        outcome, address = self.vtep.fdb.learn(bytes.fromhex(src_mac.replace(":", "")), src, self.now)
        rec = self.model.get(src_mac)
        if not is_unicast(src_mac):
            assert (outcome, address) == (LearnOutcome.INVALID, src)
        elif rec is None:
            if self.full():
                assert (outcome, address) == (LearnOutcome.FULL, src)
            else:
                assert (outcome, address) == (LearnOutcome.LEARNED, src)
                self.create(src_mac, FdbState.REACHABLE, False, (src, None, None))
                self.model[src_mac].user = False
        else:
            rec.updated = self.now
            old = rec.remotes[0][0]
            if old == src:
                assert (outcome, address) == (LearnOutcome.REFRESHED, src)
            elif rec.state.is_sticky:
                assert (outcome, address) == (LearnOutcome.CONFLICT, old)
            else:
                assert (outcome, address) == (LearnOutcome.MIGRATED, old)
                rec.remotes[0] = (src, *rec.remotes[0][1:])

    @rule(back=st.sampled_from([0.5, 10.0]))
    def time_goes_back(self, back: float) -> None:
        """Every entry point that takes a time refuses one earlier than the latest, and changes nothing."""
        if self.now < back:
            return
        then = self.now - back
        before = self.vtep.fdb_dump()
        for call in (
            lambda: self.vtep.receive(b"\x08\x00\x00\x00\x00\x00\x0a\x00" + bytes(60), PEER, 1, then),
            lambda: self.vtep.transmit(bytes(60), then),
            lambda: self.vtep.handle_timer(then),
            lambda: self.vtep.fdb_add(UNICAST[0], PEER, now=then),
            lambda: self.vtep.fdb.learn(bytes.fromhex("020000000001"), PEER, then),
        ):
            with pytest.raises(ClockError) as info:
                call()
            assert str(info.value) == f"time went backwards: {then} after {self.now}"
        assert self.vtep.fdb_dump() == before
        assert self.vtep.take_outputs() == []

    @rule(on=st.booleans())
    def set_learning(self, on: bool) -> None:
        self.vtep.set_learning(on, now=self.now)
        self.learning = on

    @rule(ageing=st.sampled_from([0.0, 5.0, 10.0, 300.0]))
    def set_ageing(self, ageing: float) -> None:
        self.vtep.set_ageing(ageing, now=self.now)
        self.ageing = ageing or 300.0

    @rule()
    def bounce(self) -> None:
        self.vtep.down(self.now)
        self.vtep.up(self.now)
        self.vtep.take_outputs()
        for mac, rec in list(self.model.items()):
            if mac != ZERO and not rec.state.is_sticky:
                del self.model[mac]

    @invariant()
    def table_matches_model(self) -> None:
        if not hasattr(self, "vtep"):
            return
        got = [
            (e.mac, e.dst, e.port, e.vni, e.state, e.extern_learn, e.router, e.updated) for e in self.vtep.fdb_dump()
        ]
        want = [
            (mac, *r, rec.state, rec.extern, rec.router, rec.updated)
            for mac, rec in self.model.items()
            for r in rec.remotes
        ]
        assert got == want

    @invariant()
    def within_max_entries(self) -> None:
        if hasattr(self, "vtep") and self.limit:
            assert len(self.vtep.fdb) <= self.limit

    @invariant()
    def next_timer_is_the_oldest_expiry(self) -> None:
        if not hasattr(self, "vtep"):
            return
        expiries = [rec.updated + self.ageing for rec in self.model.values() if rec.ages]
        assert self.vtep.next_timer() == (min(expiries) if expiries else None)


TestFdbStateful = FdbMachine.TestCase
TestFdbStateful.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
