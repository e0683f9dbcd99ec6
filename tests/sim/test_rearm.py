"""Control calls on a running simulated VTEP re-arm its timer, as Linux's ``vxlan_changelink``
re-arms the ageing timer (``mod_timer(&vxlan->age_timer, jiffies)`` when the ageing changes)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from pyvxlan import FdbState, VtepControl
from pyvxlan.lab.topology import FdbMode, classic_demo
from pyvxlan.sim import EventKind, SimLab, SimVtep, open_lab, run
from pyvxlan.sim.memory import MemoryVtep

# The calls that only read state: nothing to re-arm after them.
_READS = {"fdb", "neighbours", "is_up", "counters"}


def in_lab(body: Callable[[SimLab], Awaitable[Any]], mode: FdbMode = FdbMode.MULTICAST) -> Any:
    async def main() -> Any:
        async with open_lab(classic_demo(2, mode)) as lab:
            return await body(lab)

    return run(main)


def expired(lab: SimLab) -> list[str]:
    return [f"{e.time:.3f} {e.where} {e.detail}" for e in lab.events if e.kind is EventKind.EXPIRED]


def test_set_ageing_on_a_running_vtep_rearms_the_ageing_timer_like_vxlan_changelink() -> None:
    # Learned with ageing 300; set_ageing(1) at 0.004 s: the entry, last refreshed by guest2's
    # echo reply at 0.004 s, ages out at 1.004 s, not at 300.004 s.
    async def body(lab: SimLab) -> None:
        await lab.guest("guest1").ping("203.0.113.2")
        assert lab.fdb_lines("host1", 10)[1] == "02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self"
        await lab.vtep("host1", 10).set_ageing(1)
        await lab.sleep(3)
        assert lab.fdb_lines("host1", 10) == ["00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent"]
        assert expired(lab) == ["1.004 host1/vxlan10 02:00:00:00:00:02 dst 198.51.100.2"]
        # host2 kept the default 300 s.
        assert lab.fdb_lines("host2", 10)[1] == "02:00:00:00:00:01 dev vxlan10 dst 198.51.100.1 self"

    in_lab(body)


def test_set_ageing_into_the_past_expires_at_once() -> None:
    # An entry already older than the new ageing time goes at the next instant (vxlan_cleanup
    # runs at once after the change and finds updated + ageing <= now).
    async def body(lab: SimLab) -> None:
        await lab.guest("guest1").ping("203.0.113.2")
        await lab.sleep(9.996)
        await lab.vtep("host1", 10).set_ageing(5)
        await lab.sleep(0.001)
        assert expired(lab) == ["10.000 host1/vxlan10 02:00:00:00:00:02 dst 198.51.100.2"]

    in_lab(body)


def test_a_dynamic_entry_added_by_hand_ages_out() -> None:
    # ``bridge fdb add ... dynamic``: no learned entry armed the timer before, so only the
    # re-arm after fdb_add makes it age (Linux: vxlan_cleanup ages user dynamic entries too).
    async def body(lab: SimLab) -> None:
        ctl = lab.vtep("host1", 10)
        await ctl.set_ageing(2)
        await ctl.fdb_add("02:00:00:00:00:99", "198.51.100.9", state=FdbState.REACHABLE)
        await lab.sleep(5)
        assert expired(lab) == ["2.000 host1/vxlan10 02:00:00:00:00:99 dst 198.51.100.9"]

    in_lab(body, FdbMode.UNICAST)


def test_every_control_call_rearms() -> None:
    # Every VtepControl call that may change the core (all but the reads) is wrapped in SimVtep.
    calls = {n for n, v in vars(VtepControl).items() if inspect.iscoroutinefunction(v)} - _READS
    assert calls >= {"fdb_add", "fdb_del", "set_ageing", "set_learning", "up", "down"}
    assert sorted(n for n in calls if getattr(SimVtep, n) is getattr(MemoryVtep, n)) == []
    # The wrappers keep the signatures (what help() and the docs show).
    for name in calls:
        assert inspect.signature(getattr(SimVtep, name)) == inspect.signature(getattr(MemoryVtep, name))
