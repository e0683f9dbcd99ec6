"""``pyvxlan run FILE.toml``: run a scenario (a topology plus steps) and report.

Exit status 0 when every expectation holds, 1 when one fails, 2 when the file is bad or asks for
a step the backend cannot do (before anything runs); 130, 143 or 129 when SIGINT, SIGTERM or
SIGHUP ends it (a kernel lab is removed first). On a terminal, a run longer than two seconds shows
its progress on stderr (see :mod:`pyvxlan.cli.progress`); ``--json`` prints one object per line.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from pyvxlan.cli.demo import check_output_path, fdb_object, refuse_conflicts
from pyvxlan.cli.progress import Progress, wall_clock
from pyvxlan.errors import ConfigError
from pyvxlan.lab.scenario import (
    SIM_ONLY,
    Scenario,
    StepResult,
    check_backend,
    load_scenario,
    needs_all_events,
    run_scenario,
)
from pyvxlan.lab.topology import TopologyFileError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``run`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "run",
        help="run a scenario file (topology plus steps) and report",
        description="Run a scenario: ping, wait, move guests, take links or VTEPs down, expect FDB entries.",
    )
    p.add_argument("file", metavar="FILE.toml", help="the scenario (see docs/scenarios.md)")
    p.add_argument(
        "--backend",
        choices=["sim", "kernel", "both"],
        default="sim",
        help="simulated (default), real namespaces, or both in step, compared after every step",
    )
    p.add_argument("--seed", type=int, help="the simulator's seed (default 0)")
    p.add_argument("--events", action="store_true", help="print the simulator's whole event log at the end")
    p.add_argument("--json", action="store_true", help="one JSON object per line: each step, then a summary")
    p.add_argument("--pcap", metavar="FILE", help="write the underlay traffic to a pcap")
    p.set_defaults(func=_main)


_CONFLICTS = (
    ("kernel", "seed", "the kernel backend has no seed: its timing is the machine's"),
    ("kernel", "events", "the kernel backend keeps no event log (watch it with ip monitor)"),
)


def _json_step(r: StepResult, scenario: Scenario) -> str:
    """A step's line of ``--json``: its number (from 1, as the text counts), action, keys, time,
    result and, for ``expect-fdb``, the entries found as ``bridge -j fdb show`` objects."""
    obj: dict[str, Any] = {"type": "step", "step": r.index + 1, "action": r.step.action}
    obj["args"] = {k: v for k, v in r.step.args}
    obj.update(time=r.time, passed=r.passed, detail=r.detail)
    if r.step.action == "expect-fdb":
        dev = scenario.topology.host(r.step.get("host")).device(r.step.get("vni"))
        obj["fdb"] = [fdb_object(e, dev.name) for e in r.entries]
    return json.dumps(obj)


def _line(r: StepResult) -> str:
    mark = {None: "  ", True: "ok", False: "FAIL"}[r.passed]
    detail = f": {r.detail}" if r.detail else ""
    return f"{r.time:10.3f}s {mark:<4} {r.index + 1:>3}. {r.step.describe()}{detail}"


def _printer(scenario: Scenario, args: argparse.Namespace, progress: Progress) -> Any:
    """The ``report`` callback: print a step's result above the progress line, then show the next."""

    def report(r: StepResult) -> None:
        line = _json_step(r, scenario) if args.json else _line(r)
        progress.above(lambda: print(line, flush=True))
        if r.index + 1 < len(scenario.steps):
            progress.step(r.index + 1, scenario.steps[r.index + 1].describe())

    return report


async def _run_sim(
    scenario: Scenario, args: argparse.Namespace, clock: Any
) -> tuple[list[StepResult], list[Any], dict[str, Any]]:
    from pyvxlan.sim import KEPT_EVENTS, open_lab

    # Every event when they are printed or filtered, else the bounded default.
    keep: bool | int = True if args.events or needs_all_events(scenario) else KEPT_EVENTS
    async with open_lab(scenario.topology, seed=args.seed, keep_events=keep) as lab:
        if args.pcap:
            lab.capture(args.pcap)
        u = lab.underlay
        # The progress thread reads the MockClock (lab.now needs trio's context) and a counter.
        start = clock.current_time() - lab.now
        progress = Progress(
            len(scenario.steps), lambda: f"{clock.current_time() - start:.3f}s virtual, {u.deliveries} deliveries"
        )
        progress.step(0, scenario.steps[0].describe())
        progress.start()
        try:
            results = await run_scenario(
                lab, scenario, now=lambda: lab.now, sleep=lab.sleep, report=_printer(scenario, args, progress)
            )
        finally:
            progress.stop()
        return results, list(lab.events), asdict(lab.stats())


async def _run_kernel(
    scenario: Scenario, args: argparse.Namespace
) -> tuple[list[StepResult], list[Any], dict[str, Any]]:
    import trio

    from pyvxlan.kernel import open_lab

    start = trio.current_time()
    async with open_lab(scenario.topology) as lab:
        if args.pcap:
            lab.capture(args.pcap)
        elapsed = wall_clock()
        progress = Progress(len(scenario.steps), lambda: f"{elapsed():.1f}s")
        progress.step(0, scenario.steps[0].describe())
        progress.start()
        try:
            results = await run_scenario(
                lab,
                scenario,
                now=lambda: trio.current_time() - start,
                sleep=trio.sleep,
                report=_printer(scenario, args, progress),
            )
        finally:
            progress.stop()
        return results, [], {}


def _run_both(scenario: Scenario, args: argparse.Namespace) -> int:
    """``--backend both``: the simulator and the kernel lab in step (pyvxlan.conform.labs); the
    first divergence is printed with the step and both sides, and is a failure (status 1). A
    simulator-only expectation is checked on the simulator; the kernel's line says "simulator only"."""
    from pyvxlan.cli import UsageError
    from pyvxlan.conform.labs import run_both
    from pyvxlan.kernel.lab import require_kernel_extra
    from pyvxlan.kernel.netlink import require_privilege

    for option in ("json", "pcap", "events"):
        if getattr(args, option):
            raise UsageError(f"--backend both and --{option} cannot be used together: it compares two labs in step")
    require_kernel_extra()
    require_privilege("build a lab in network namespaces")  # before a line is printed
    try:
        check_backend(scenario, "sim")
        check_backend(scenario, "kernel", skip_sim_only=True)  # it does nothing for those
    except ConfigError as exc:
        raise TopologyFileError(args.file, exc.field, exc.reason) from None
    topo = scenario.topology
    print(
        f"pyvxlan run {args.file}: {len(topo.hosts)} hosts, {len(topo.guests)} guests, mode {topo.mode.value}, "
        f"{len(scenario.steps)} steps, backend both"
    )
    sim, kernel, divergence = run_both(
        scenario, seed=args.seed, report=lambda side, r: print(f"{side:<6} {_line(r)}", flush=True)
    )
    failed = [r for r in (*sim, *kernel) if r.passed is False]
    sim_only = sum(1 for s in scenario.steps if s.action in SIM_ONLY)
    print(divergence.text() if divergence is not None else f"no divergence in {len(kernel)} steps")
    print(
        f"{len(scenario.steps)} steps, {len(failed)} failed expectations, {int(divergence is not None)} divergence"
        + (f", {sim_only} checked on the simulator only" if sim_only else "")
    )
    return 1 if failed or divergence is not None else 0


def _main(args: argparse.Namespace) -> int:
    import trio  # here, not at import: see pyvxlan.cli.demo._main
    import trio.testing

    refuse_conflicts(args, _CONFLICTS)
    args.seed = 0 if args.seed is None else args.seed
    scenario = load_scenario(args.file)  # a bad file: TopologyFileError, exit status 2
    if args.pcap:
        check_output_path(args.pcap)
    if args.backend == "both":
        return _run_both(scenario, args)
    if args.backend == "kernel":
        from pyvxlan.kernel.lab import require_kernel_extra

        require_kernel_extra()
        from pyvxlan.kernel.netlink import require_privilege

        require_privilege("build a lab in network namespaces")  # before a line is printed
    try:
        # Every step against the backend before the first one runs: a run that stops half-way
        # has already changed what a re-run would see (on the kernel, real state).
        check_backend(scenario, args.backend)
    except ConfigError as exc:
        raise TopologyFileError(args.file, exc.field, exc.reason) from None
    topo = scenario.topology
    if not args.json:
        print(
            f"pyvxlan run {args.file}: {len(topo.hosts)} hosts, {len(topo.guests)} guests, mode {topo.mode.value}, "
            f"{len(scenario.steps)} steps, backend {args.backend}"
        )
    if args.backend == "sim":
        clock = trio.testing.MockClock(autojump_threshold=0)
        results, events, stats = trio.run(_run_sim, scenario, args, clock, clock=clock)
    else:
        results, events, stats = trio.run(_run_kernel, scenario, args)
    checks = [r for r in results if r.passed is not None]
    failed = [r for r in checks if not r.passed]
    if args.json:
        for e in events if args.events else []:
            event = {"type": "event", "time": e.time, "kind": e.kind.value, "where": e.where, "detail": e.detail}
            print(json.dumps(event | ({"reason": e.reason} if e.reason else {})))
        summary = {"type": "summary", "file": args.file, "backend": args.backend, "seed": args.seed}
        summary.update(steps=len(results), expectations=len(checks), failed=len(failed), ok=not failed)
        if stats:
            summary["stats"] = stats
        print(json.dumps(summary))
        return 1 if failed else 0
    if args.events:
        print("events:")
        for e in events:
            print(e)
    print(f"{len(results)} steps, {len(checks)} expectations, {len(failed)} failed")
    if args.pcap:
        print(f"underlay capture: {args.pcap}")
    return 1 if failed else 0
