"""``pyvxlan run FILE.toml``: run a scenario (a topology plus steps) and report.

Exit status 0 when every expectation holds, 1 when one fails, 2 when the file is bad or asks for
a step the backend cannot do (before anything runs); 130, 143 or 129 when SIGINT, SIGTERM or
SIGHUP ends it (a kernel lab is removed first). On a terminal, long runs show which step is running on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pyvxlan.errors import ConfigError
from pyvxlan.scenario import Scenario, StepResult, check_backend, load_scenario, run_scenario
from pyvxlan.topology import TopologyFileError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``run`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "run",
        help="run a scenario file (topology plus steps) and report",
        description="Run a scenario: ping, wait, move guests, take links or VTEPs down, expect FDB entries.",
    )
    p.add_argument("file", metavar="FILE.toml", help="the scenario (see docs/scenarios.md)")
    p.add_argument("--backend", choices=["sim", "kernel"], default="sim", help="simulated (default) or real namespaces")
    p.add_argument("--seed", type=int, default=0, help="the simulator's seed (default 0)")
    p.add_argument("--events", action="store_true", help="print the simulator's event log at the end")
    p.set_defaults(func=_main)


class _Progress:
    """``[3/12] step...`` on stderr, rewritten in place, only on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty()

    def show(self, index: int, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\x1b[K[{index + 1}/{self.total}] {text[:70]}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _line(r: StepResult) -> str:
    mark = {None: "  ", True: "ok", False: "FAIL"}[r.passed]
    detail = f": {r.detail}" if r.detail else ""
    return f"{r.time:10.3f}s {mark:<4} {r.index + 1:>3}. {r.step.describe()}{detail}"


async def _run_sim(scenario: Scenario, args: argparse.Namespace) -> tuple[list[StepResult], list[str]]:
    from pyvxlan.sim import open_lab

    progress = _Progress(len(scenario.steps))
    async with open_lab(scenario.topology, seed=args.seed) as lab:

        def report(r: StepResult) -> None:
            progress.clear()
            print(_line(r), flush=True)
            if r.index + 1 < len(scenario.steps):
                progress.show(r.index + 1, scenario.steps[r.index + 1].describe())

        progress.show(0, scenario.steps[0].describe())
        results = await run_scenario(lab, scenario, now=lambda: lab.now, sleep=lab.sleep, report=report)
        progress.clear()
        return results, [str(e) for e in lab.events]


async def _run_kernel(scenario: Scenario, args: argparse.Namespace) -> tuple[list[StepResult], list[str]]:
    import trio

    from pyvxlan.kernel import open_lab

    start = trio.current_time()
    async with open_lab(scenario.topology) as lab:
        results = await run_scenario(
            lab,
            scenario,
            now=lambda: trio.current_time() - start,
            sleep=trio.sleep,
            report=lambda r: print(_line(r), flush=True),
        )
        return results, []


def _main(args: argparse.Namespace) -> int:
    import trio  # here, not at import: see pyvxlan.cli.demo._main
    import trio.testing

    scenario = load_scenario(args.file)  # a bad file: TopologyFileError, exit status 2
    lab_type: type
    if args.backend == "sim":
        from pyvxlan.sim import SimLab

        lab_type = SimLab
    else:
        from pyvxlan.kernel.lab import KernelLab, require_kernel_extra

        require_kernel_extra()
        lab_type = KernelLab
    try:
        # Every step against the backend before the first one runs: a run that stops half-way
        # has already changed what a re-run would see (on the kernel, real state).
        check_backend(scenario, lab_type, args.backend)
    except ConfigError as exc:
        raise TopologyFileError(args.file, exc.field, exc.reason) from None
    topo = scenario.topology
    print(
        f"pyvxlan run {args.file}: {len(topo.hosts)} hosts, {len(topo.guests)} guests, mode {topo.mode.value}, "
        f"{len(scenario.steps)} steps, backend {args.backend}"
    )
    if args.backend == "sim":
        results, events = trio.run(_run_sim, scenario, args, clock=trio.testing.MockClock(autojump_threshold=0))
    else:
        results, events = trio.run(_run_kernel, scenario, args)
    if args.events:
        print("events:")
        for line in events:
            print(line)
    checks = [r for r in results if r.passed is not None]
    failed = [r for r in checks if not r.passed]
    print(f"{len(results)} steps, {len(checks)} expectations, {len(failed)} failed")
    return 1 if failed else 0
