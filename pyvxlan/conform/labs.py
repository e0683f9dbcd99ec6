"""``pyvxlan run FILE --backend both``: a scenario on the simulator and in the kernel lab in step.

After every step the two labs are compared, normalised: each VTEP's FDB (MAC, dst, port, VNI,
via, state, flags; no timers; ``via eth0``, the kernel lab's underlay, is no via), the neighbours
its host answers ARP/ND from (``Lab.neighbours``: in evpn mode the kernel's are on the bridge) and
its counters, the step's ping result (sent and received, not round-trip times) and whether its
expectation held. The first divergence is reported with the step and both sides.

The simulator is deterministic, so it runs first (in virtual time) and its state after each step
is kept; the kernel lab then runs step by step (in real time) and is compared after each one, and
stops at the first divergence: what running them side by side would show, without holding the
simulator's clock while the kernel works.

A simulator-only expectation (``expect-counter``, ``expect-event``: :data:`pyvxlan.lab.scenario.SIM_ONLY`)
is checked on the simulator side only, where it passes or fails as in ``--backend sim``; on the
kernel side it does nothing and is reported as :data:`SIM_ONLY_DETAIL` (``passed`` is ``None``).
The comparison after it still happens, on everything but whether it held.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from pyvxlan.lab import Lab
from pyvxlan.lab.iproute2 import UPLINK
from pyvxlan.lab.scenario import SIM_ONLY, Scenario, StepResult, check_backend, needs_all_events, run_scenario
from pyvxlan.lab.topology import FdbMode, Topology

__all__ = ["SIM_ONLY_DETAIL", "Divergence", "LabState", "lab_state", "run_both"]

SETTLE = 0.05  # seconds on each side's clock after every step, before the comparison (evpn: longer)
_PING = re.compile(r"^(\d+) sent, (\d+) received")
#: The detail of a simulator-only expectation on the kernel side, where it does nothing.
SIM_ONLY_DETAIL = "simulator only"


@dataclass(frozen=True, slots=True)
class LabState:
    """A lab after a step, normalised: what both backends must agree on."""

    fdb: tuple[tuple[str, int, tuple[tuple[Any, ...], ...]], ...]
    neighbours: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...]
    counters: tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...]
    ping: tuple[int, int] | None
    passed: bool | None


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first step after which the labs differ, the field, and both sides' values."""

    index: int
    step: str
    field: str
    sim: Any
    kernel: Any

    def text(self) -> str:
        """As the command prints it."""
        return (
            f"first divergence after step {self.index + 1} ({self.step}), {self.field}:\n"
            f"  sim:    {self.sim}\n  kernel: {self.kernel}"
        )


def _via(interface: str | None) -> str | None:
    # The kernel lab's hosts reach the underlay through UPLINK, which a group device names as its
    # dev (Linux needs one for multicast); a simulated host has one underlay and no name for it.
    return None if interface == UPLINK else interface


async def lab_state(lab: Lab, scenario: Scenario, result: StepResult) -> LabState:
    """``lab``'s normalised state after the step that gave ``result``."""
    fdb, neighbours, counters = [], [], []
    for host in scenario.topology.hosts:
        for dev in host.devices:
            vtep = lab.vtep(host.name, dev.vni)
            rows = sorted(
                (
                    (e.mac, e.dst, e.port, e.vni, _via(e.interface), e.state.value, e.extern_learn, e.router)
                    for e in await vtep.fdb()
                ),
                key=lambda r: tuple("" if v is None else str(v) for v in r),
            )
            fdb.append((host.name, dev.vni, tuple(rows)))
            entries = await lab.neighbours(host.name, dev.vni)
            neighbours.append((host.name, dev.vni, tuple(sorted((n.ip, n.mac) for n in entries))))
            c = await vtep.counters()
            counters.append((host.name, dev.vni, tuple((f.name, getattr(c, f.name)) for f in dataclasses.fields(c))))
    ping = None
    if result.step.action == "ping":
        m = _PING.match(result.detail)
        if m:
            ping = (int(m.group(1)), int(m.group(2)))
    return LabState(tuple(fdb), tuple(neighbours), tuple(counters), ping, result.passed)


def _differs(sim: LabState, kernel: LabState) -> tuple[str, Any, Any] | None:
    for name in ("passed", "ping"):
        if getattr(sim, name) != getattr(kernel, name):
            return name, getattr(sim, name), getattr(kernel, name)
    for name in ("fdb", "neighbours", "counters"):
        for (host, vni, s), (_, _, k) in zip(getattr(sim, name), getattr(kernel, name), strict=True):
            if s != k:
                if name == "counters":
                    sd, kd = dict(s), dict(k)
                    keys = [key for key in sd if sd[key] != kd.get(key)]
                    return f"{name} of {host} vni {vni}", {x: sd[x] for x in keys}, {x: kd.get(x) for x in keys}
                return f"{name} of {host} vni {vni}", list(s), list(k)
    return None


async def _steps(
    lab: Lab,
    scenario: Scenario,
    *,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    after: Callable[[StepResult, LabState], bool],
    skip_sim_only: bool = False,
    settle: float = SETTLE,
) -> list[StepResult]:
    """Run ``scenario`` on ``lab`` one step at a time, calling ``after`` with each result and the
    state (``settle`` seconds after the step); stop when it returns False. With ``skip_sim_only``
    a simulator-only expectation does nothing: its result expects nothing (``passed`` is ``None``)
    and says so."""
    results: list[StepResult] = []
    for i, step in enumerate(scenario.steps):
        if skip_sim_only and step.action in SIM_ONLY:
            r = StepResult(i, step, now(), None, SIM_ONLY_DETAIL)
        else:
            [r] = await run_scenario(lab, Scenario(scenario.topology, (step,)), now=now, sleep=sleep)
            r = dataclasses.replace(r, index=i)
        # Let what the step set in motion land (a moved guest's announcement crosses the
        # simulated underlay in virtual milliseconds, the kernel's in microseconds) before looking.
        await sleep(settle)
        results.append(r)
        if not after(r, await lab_state(lab, scenario, r)):
            break
    return results


def run_both(
    scenario: Scenario,
    *,
    seed: int = 0,
    report: Callable[[str, StepResult], None] = lambda _side, _r: None,
    other: Callable[[Topology], AbstractAsyncContextManager[Lab]] | None = None,
    other_clock: Any = None,
) -> tuple[list[StepResult], list[StepResult], Divergence | None]:
    """The scenario on both backends (the kernel lab needs root): each side's results and the
    first divergence, or ``None``. ``report(side, result)`` is called after each step. ``other``
    opens the lab held against the simulator (default: the kernel lab), run with ``other_clock``
    (a trio clock; default: real time). A simulator-only expectation is checked on the simulator
    only; on the other side its result is ``passed=None`` with the detail :data:`SIM_ONLY_DETAIL`."""
    import trio
    import trio.testing

    from pyvxlan.sim import KEPT_EVENTS, RrTimings
    from pyvxlan.sim import open_lab as open_sim_lab

    # Every step against both backends before the first one runs (ConfigError naming the step);
    # the kernel side does nothing for a simulator-only expectation.
    check_backend(scenario, "sim")
    if other is None:
        from pyvxlan.kernel import open_lab as open_kernel_lab

        check_backend(scenario, "kernel", skip_sim_only=True)
        other = open_kernel_lab

    # In evpn mode a move's new route crosses the route reflector before any other VTEP follows
    # (the simulated one's delays end to end, FRR's in milliseconds): both sides wait for that too.
    settle = SETTLE
    if scenario.topology.mode is FdbMode.EVPN:
        settle = max(SETTLE, 2 * RrTimings().end_to_end)
    sim_states: list[LabState] = []

    def keep(r: StepResult, state: LabState) -> bool:
        report("sim", r)
        sim_states.append(state)
        return True

    async def on_sim() -> list[StepResult]:
        # Every event kept when a step filters them by place or text, as ``pyvxlan run`` does.
        kept: bool | int = True if needs_all_events(scenario) else KEPT_EVENTS
        async with open_sim_lab(scenario.topology, seed=seed, keep_events=kept) as lab:
            return await _steps(lab, scenario, now=lambda: lab.now, sleep=lab.sleep, after=keep, settle=settle)

    sim_results = trio.run(on_sim, clock=trio.testing.MockClock(autojump_threshold=0))
    found: list[Divergence] = []

    def check(r: StepResult, state: LabState) -> bool:
        report("kernel", r)
        expected = sim_states[r.index]
        if r.step.action in SIM_ONLY:
            # Held on the simulator only: the rest of the state is still compared.
            expected = dataclasses.replace(expected, passed=None)
        diff = _differs(expected, state)
        if diff is not None:
            found.append(Divergence(r.index, r.step.describe(), *diff))
            return False
        return True

    async def on_kernel() -> list[StepResult]:
        start = trio.current_time()
        async with other(scenario.topology) as lab:
            return await _steps(
                lab,
                scenario,
                now=lambda: trio.current_time() - start,
                sleep=trio.sleep,
                after=check,
                skip_sim_only=True,
                settle=settle,
            )

    kernel_results = trio.run(on_kernel, clock=other_clock)
    return sim_results, kernel_results, found[0] if found else None
