"""``pyvxlan demo``: the classic VXLAN demo, simulated (no root needed) or on the kernel.

Two hosts (or ``--hosts N``) on one underlay, ``vxlan10`` (VNI 10, group 239.1.1.1) in bridge
``br10`` on each, one guest each; guest1 pings every other guest three times. The demo prints the
steps with the ``ip`` commands they stand for, the ping results and each VTEP's FDB in ``bridge fdb
show`` form. In ``--mode evpn`` the last guest then moves to host1 and the demo prints how long the
VTEPs took to follow (:class:`pyvxlan.sim.evpn.Convergence`). ``--compare`` runs the same workload
in every FDB mode and prints what each costs on the underlay, and what the move costs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pyvxlan.core.entries import FdbEntry
from pyvxlan.lab import Lab, PingResult
from pyvxlan.lab.controller import FloodOp, initial_ops
from pyvxlan.lab.iproute2 import UPLINK, device_config, link_add_command
from pyvxlan.lab.topology import FdbMode, Topology, classic_demo

__all__ = ["UPLINK", "DemoReport", "ModeFigures", "compare", "fdb_object", "register", "run_demo", "vxlan_command"]

PINGS = 3


@dataclass(slots=True)
class PingLine:
    source: str
    target: str
    ip: str
    result: PingResult


@dataclass(slots=True)
class DemoReport:
    """What the demo did and saw."""

    mode: str
    hosts: int
    seed: int
    backend: str
    pings: list[PingLine] = field(default_factory=list)
    fdb: dict[str, list[str]] = field(default_factory=dict)  # "host/device" -> bridge fdb lines
    fdb_objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ... as bridge -j fdb show
    stats: dict[str, Any] | None = None  # simulator only
    convergence: dict[str, Any] | None = None  # the move's Convergence (simulator, evpn mode)

    @property
    def ok(self) -> bool:
        return all(p.result.received for p in self.pings)


async def run_demo(
    lab: Lab,
    topology: Topology,
    report: DemoReport,
    say: Callable[[str], None],
    now: Callable[[], float] | None = None,
) -> None:
    """guest1 pings every other guest; then read every VTEP's FDB. Works on either backend.

    ``now`` is the clock of the entries' ``updated``/``used`` (the simulated lab's ``now``; on the
    kernel backend :func:`trio.current_time`): with it the JSON objects give their ages.
    """
    first = topology.guests[0]
    for other in topology.guests[1:]:
        say(f"{first.name} pings {other.name} ({other.address}), {PINGS} echo requests")
        result = await lab.guest(first.name).ping(other.address, count=PINGS, timeout=1.0, interval=1.0)
        report.pings.append(PingLine(first.name, other.name, other.address, result))
        say("  " + _ping_summary(result))
    await read_fdbs(lab, topology, report, now)


async def read_fdbs(lab: Lab, topology: Topology, report: DemoReport, now: Callable[[], float] | None = None) -> None:
    """Every VTEP's FDB into ``report`` (text lines and ``bridge -j`` objects)."""
    for host in topology.hosts:
        for dev in host.devices:
            entries = await lab.vtep(host.name, dev.vni).fdb()
            report.fdb[f"{host.name}/{dev.name}"] = [e.bridge_line(dev.name) for e in entries]
            at = None if now is None else now()
            report.fdb_objects[f"{host.name}/{dev.name}"] = [fdb_object(e, dev.name, at) for e in entries]


def convergence_line(conv: Any) -> str:
    """A :class:`~pyvxlan.sim.evpn.Convergence` as the demo prints it."""
    if conv.time is None:
        return f"  not converged ({conv.dropped} frames dropped)"
    return (
        f"  every VTEP's tables right again after {conv.time * 1000:.3f} ms (blackhole {conv.blackhole * 1000:.3f} ms, "
        f"{conv.dropped} frames dropped)"
    )


def move_target(topology: Topology) -> tuple[str, str] | None:
    """The move the demo makes after its pings: the last guest to host1 (``None``: one host)."""
    last = topology.guests[-1]
    first = topology.hosts[0].name
    return None if last.host == first else (last.name, first)


async def blackhole_window(lab: Lab, topology: Topology, guest: str, host: str, *, limit: float = 3.0) -> float | None:
    """Virtual seconds from now (just after ``guest`` moved to ``host``) until no VTEP sends its
    frames elsewhere: every other host's entry for its MAC points at ``host`` (``host``'s bridge
    delivers it locally). The same test for every mode, read every millisecond (``None``: not
    within ``limit``)."""
    spec = topology.guest(guest)
    address = topology.host(host).address
    start = lab.now
    step = 0.001
    for i in range(round(limit / step) + 1):
        if i:
            await lab.sleep(step)
        right = True
        for h in topology.hosts:
            if all(d.vni != spec.vni for d in h.devices):
                continue
            dsts = [e.dst for e in await lab.vtep(h.name, spec.vni).fdb() if e.mac == spec.mac]
            if h.name != host and any(d != address for d in dsts):
                right = False
                break
        if right:
            return lab.now - start
    return None


def fdb_object(entry: FdbEntry, device: str, now: float | None = None) -> dict[str, Any]:
    """``entry`` as ``bridge -j fdb show`` prints it (iproute2's print_fdb: keys in its order, only
    those it prints for this entry; a learned entry's ``state`` is ``""``). With ``now`` (in the
    clock of the entry's ``updated``/``used``) it has ``used`` and ``updated`` as ``bridge -j -s fdb
    show`` gives them: whole seconds ago.

    >>> fdb_object(FdbEntry("00:00:00:00:00:00", "239.1.1.1", interface="eth0"), "vxlan10")
    {'mac': '00:00:00:00:00:00', 'ifname': 'vxlan10', 'dst': '239.1.1.1', 'viaIf': 'eth0', 'flags': ['self'], 'state': 'permanent'}
    """
    obj: dict[str, Any] = {"mac": entry.mac, "ifname": device, "dst": entry.dst}
    if entry.port is not None:
        obj["port"] = entry.port
    if entry.vni is not None:
        obj["vni"] = entry.vni
    if entry.interface is not None:
        obj["viaIf"] = entry.interface
    flags = ["self"]
    if entry.router:
        flags.append("router")
    if entry.extern_learn:
        flags.append("extern_learn")
    if now is not None:
        # bridge -s prints the kernel's ticks ago divided by HZ: whole seconds, rounded down.
        for name, t in (("used", entry.used), ("updated", entry.updated)):
            if t is not None:
                obj[name] = int(max(0.0, now - t))
    obj["flags"] = flags
    obj["state"] = entry.state.value
    return obj


def _ping_summary(r: PingResult) -> str:
    loss = round(100 * r.loss)
    text = f"{r.sent} packets transmitted, {r.received} received, {loss}% packet loss"
    if r.rtts:
        ms = [t * 1000 for t in r.rtts]
        text += f", rtt min/avg/max = {min(ms):.3f}/{sum(ms) / len(ms):.3f}/{max(ms):.3f} ms"
    return text


def vxlan_command(topology: Topology, host: str, vni: int) -> str:
    """The ``ip link add`` command that creates ``host``'s vxlan device for ``vni`` on Linux, as
    the kernel lab creates it (:func:`pyvxlan.lab.iproute2.link_add_command`).

    >>> vxlan_command(classic_demo(), "host1", 10)
    'ip link add vxlan10 address 02:9f:c7:6a:99:01 type vxlan id 10 local 198.51.100.1 group 239.1.1.1 dev eth0 dstport 4789 srcport 49152 65535'
    >>> vxlan_command(classic_demo(mode=FdbMode.CONTROLLER), "host2", 10)
    'ip link add vxlan10 address 02:8d:72:c5:77:01 type vxlan id 10 local 198.51.100.2 dev eth0 dstport 4789 srcport 49152 65535 nolearning proxy'
    """
    return link_add_command(device_config(topology, host, vni))


def _describe(topology: Topology, say: Callable[[str], None]) -> None:
    """Each host's part of the lab as the ``ip``/``bridge`` commands a reader would type: the
    device as the kernel lab makes it, and what the mode programs (the controller policy)."""
    mode = topology.mode
    u = topology.underlay
    ops = list(initial_ops(topology))
    say(f"underlay {u.subnet} (mtu {u.mtu}); FDB mode: {mode.value}")
    for host in topology.hosts:
        say(f"{host.name} ({host.address} on {UPLINK}):")
        for dev in host.devices:
            say(f"  {vxlan_command(topology, host.name, dev.vni)}")
            say(f"  ip link add {dev.bridge} type bridge; ip link set {dev.name} master {dev.bridge}")
            say(f"  ip link set {dev.name} up; ip link set {dev.bridge} up")
            for guest in topology.guests_on(host.name, dev.vni):
                say(f"  {guest.name}: {guest.mac} {guest.ip}, a veth port of {dev.bridge}")
            for op in ops:
                if op.host == host.name and op.vni == dev.vni:
                    for line in op.commands(dev.name) if isinstance(op, FloodOp) else [op.command(dev.name)]:
                        say(f"  {line}")
            if mode is FdbMode.EVPN:
                from pyvxlan.sim.evpn import evpn_config

                cfg = evpn_config(topology, host.name, dev.vni)
                targets = " ".join(str(t).removeprefix("RT:") for t in cfg.export_targets or ())
                say(f"  vni {dev.vni}: rd {cfg.route_distinguisher} route-target {targets} (FRR's auto derivation)")


async def _sim_demo(topology: Topology, args: argparse.Namespace, say: Callable[[str], None], clock: Any) -> DemoReport:
    from pyvxlan.cli.progress import Progress
    from pyvxlan.sim import open_lab

    report = DemoReport(topology.mode.value, len(topology.hosts), args.seed, "sim")
    async with open_lab(topology, seed=args.seed) as lab:
        if args.pcap:
            lab.capture(args.pcap)
        u = lab.underlay
        start = clock.current_time() - lab.now  # the progress thread reads the clock, not lab.now
        progress = Progress(
            len(topology.guests) - 1, lambda: f"{clock.current_time() - start:.3f}s virtual, {u.deliveries} deliveries"
        )
        pings = 0

        def say_above(line: str) -> None:
            nonlocal pings
            progress.above(lambda: say(line))
            if " pings " in line and not line.startswith(" "):
                progress.step(pings, line)
                pings += 1

        progress.start()
        try:
            await run_demo(lab, topology, report, say_above, lambda: lab.now)
        finally:
            progress.stop()
        stats = lab.stats()
        report.stats = asdict(stats)
        move = move_target(topology)
        if topology.mode is FdbMode.EVPN and move is not None:
            guest, host = move
            say(f"{guest} moves to {host} (its MAC's new route carries a higher mobility sequence)")
            await lab.move_guest(guest, host)
            if lab.evpn is not None:
                await lab.evpn.settled()
            conv = lab.convergence[-1]
            report.convergence = asdict(conv)
            say(convergence_line(conv))
            await read_fdbs(lab, topology, report, lambda: lab.now)
    return report


async def _kernel_demo(topology: Topology, args: argparse.Namespace, say: Callable[[str], None]) -> DemoReport:
    import trio

    from pyvxlan.kernel import open_lab

    report = DemoReport(topology.mode.value, len(topology.hosts), args.seed, "kernel")
    async with open_lab(topology) as lab:
        if args.pcap:
            lab.capture(args.pcap)
        # The kernel backend's updated/used are in trio's clock (pyvxlan.kernel.KernelVtep.fdb).
        await run_demo(lab, topology, report, say, trio.current_time)
        move = move_target(topology)
        if topology.mode is FdbMode.EVPN and move is not None:
            # The same move as the simulated demo's, FRR following it in real time.
            guest, host = move
            say(f"{guest} moves to {host} (its MAC's new route carries a higher mobility sequence)")
            start = trio.current_time()
            await lab.move_guest(guest, host)
            await lab.evpn_settled()
            say(f"  every VTEP's tables right again after {(trio.current_time() - start) * 1000:.3f} ms (FRR)")
            await read_fdbs(lab, topology, report, trio.current_time)
    return report


def _print_report(report: DemoReport, out: Callable[[str], None]) -> None:
    for device, lines in report.fdb.items():
        host, name = device.split("/")
        out(f"{host}: bridge fdb show dev {name}")
        for line in lines:
            out(f"  {line}")
    if report.stats is not None:
        s = report.stats
        out(
            f"underlay: {s['datagrams']} datagrams (floods: {s['flood_datagrams']}, "
            f"to a multicast group: {s['multicast_datagrams']}), {s['deliveries']} deliveries, {s['bytes']} bytes; "
            f"{s['learned']} FDB entries learned"
        )


@dataclass(frozen=True, slots=True)
class ModeFigures:
    """One row of ``pyvxlan demo --compare``."""

    mode: str
    datagrams: int
    floods: int
    unicast: int
    deliveries: int
    bytes: int
    learned: int
    first_reply: float | None  # virtual seconds from the first echo request to its reply
    received: int
    sent: int
    # After the pings, the last guest moves to host1 (nothing of it is in the figures above):
    blackhole: float | None = None  # virtual seconds until no VTEP sends its frames elsewhere
    converged: float | None = None  # ... until every VTEP's tables are right (evpn: lab.convergence)


async def compare(hosts: int = 2, seed: int = 0, ipv6: bool = False) -> list[ModeFigures]:
    """The demo's workload in each FDB mode, in the simulator (run it under ``pyvxlan.sim.run``)."""
    from pyvxlan.sim import open_lab

    rows = []
    for mode in FdbMode:
        topology = classic_demo(hosts, mode, ipv6)
        report = DemoReport(mode.value, hosts, seed, "sim")
        blackhole = converged = None
        async with open_lab(topology, seed=seed) as lab:
            await run_demo(lab, topology, report, lambda _line: None)
            s = lab.stats()
            move = move_target(topology)
            if move is not None:
                await lab.move_guest(*move)
                blackhole = await blackhole_window(lab, topology, *move)
                if lab.evpn is not None:
                    await lab.evpn.settled()
                    conv = lab.convergence[-1]
                    blackhole, converged = conv.blackhole, conv.time
        first = report.pings[0].result
        rows.append(
            ModeFigures(
                mode=mode.value,
                datagrams=s.datagrams,
                floods=s.flood_datagrams,
                unicast=s.datagrams - s.flood_datagrams,
                deliveries=s.deliveries,
                bytes=s.bytes,
                learned=s.learned,
                # Ping's first request goes out at once (virtual time 0), so its first reply's
                # round trip is the time to the first successful ping, ARP included.
                first_reply=first.rtts[0] if first.rtts else None,
                received=sum(p.result.received for p in report.pings),
                sent=sum(p.result.sent for p in report.pings),
                blackhole=blackhole,
                converged=converged,
            )
        )
    return rows


def compare_table(rows: list[ModeFigures]) -> list[str]:
    """The ``--compare`` table as text lines."""
    head = f"{'mode':<11} {'datagrams':>9} {'floods':>6} {'unicast':>7} {'deliveries':>10} {'bytes':>7} {'learned':>7} {'first reply':>11} {'replies':>7} {'blackhole':>10} {'converged':>10}"
    lines = [head]
    for r in rows:
        first = _ms(r.first_reply, "none")
        lines.append(
            f"{r.mode:<11} {r.datagrams:>9} {r.floods:>6} {r.unicast:>7} {r.deliveries:>10} {r.bytes:>7} {r.learned:>7} {first:>11} {f'{r.received}/{r.sent}':>7} {_ms(r.blackhole, 'none'):>10} {_ms(r.converged, '-'):>10}"
        )
    return lines


def _ms(seconds: float | None, missing: str) -> str:
    return missing if seconds is None else f"{seconds * 1000:.3f} ms"


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "demo",
        help="the classic VXLAN demo (simulated by default: no root needed)",
        description="Two hosts, vxlan10 (VNI 10, group 239.1.1.1) in a bridge on each, a guest on each, three pings across.",
    )
    p.add_argument("--hosts", type=int, default=2, metavar="N", help="number of hosts, one guest each (default 2)")
    # --mode and --seed default to None so that giving one where it means nothing is refused.
    p.add_argument("--mode", choices=[m.value for m in FdbMode], help="how the FDBs are filled (default multicast)")
    p.add_argument("--pcap", metavar="FILE", help="write the underlay traffic to a pcap")
    p.add_argument("--seed", type=int, help="the simulator's seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--compare", action="store_true", help="run the workload in every mode and compare")
    p.add_argument("--backend", choices=["sim", "kernel"], default="sim", help="simulated (default) or real namespaces")
    p.add_argument("--print-commands", action="store_true", help="print the ip/bridge commands that build the lab")
    p.add_argument("--ipv6", action="store_true", help="an IPv6 underlay (2001:db8::/64, group ff05::100)")
    p.add_argument("--plot", metavar="FILE.svg", help="with --compare: chart the figures (needs pyvxlan[draw])")
    p.set_defaults(func=_main)


# Options that mean nothing together: (option, option, why), checked in this order. An option is
# "given" when it is not None/False (see refuse_conflicts).
_CONFLICTS: tuple[tuple[str, str, str], ...] = (
    ("compare", "pcap", "--compare runs three labs; capture one demo with --mode instead"),
    ("compare", "mode", "--compare runs every mode"),
    ("compare", "print_commands", "--print-commands prints one lab's commands and runs nothing"),
    ("compare", "kernel", "--compare runs in the simulator only"),
    ("print_commands", "json", "--print-commands prints shell commands, not JSON"),
    ("print_commands", "pcap", "--print-commands runs nothing to capture"),
    ("print_commands", "seed", "--print-commands runs nothing to seed"),
    ("print_commands", "plot", "--print-commands runs nothing to plot"),
    ("kernel", "seed", "the kernel backend has no seed: its timing is the machine's"),
)


def _given(args: argparse.Namespace, name: str) -> bool:
    if name == "kernel":
        return bool(getattr(args, "backend", None) == "kernel")
    value = getattr(args, name, None)
    return value is not None and value is not False


def _flag(name: str) -> str:
    return "--backend kernel" if name == "kernel" else "--" + name.replace("_", "-")


def refuse_conflicts(args: argparse.Namespace, conflicts: tuple[tuple[str, str, str], ...]) -> None:
    """Raise :class:`~pyvxlan.cli.UsageError` (one line, exit status 2) for the first pair of
    options in ``conflicts`` that were both given: an option ignored silently misleads."""
    from pyvxlan.cli import UsageError

    for a, b, why in conflicts:
        if _given(args, a) and _given(args, b):
            raise UsageError(f"{_flag(a)} and {_flag(b)} cannot be used together: {why}")


def check_output_path(path: str, option: str = "--pcap") -> None:
    """Refuse an output file (``--pcap``, ``--plot``) that cannot be written before the demo
    runs, not after it (the file itself is only opened once the lab is up, or at the end)."""
    from pyvxlan.cli import UsageError

    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: cannot write in {folder}")


def _main(args: argparse.Namespace) -> int:
    # trio loads here, not at import: every ``pyvxlan`` command imports this module to build its
    # parser, and ``pyvxlan decode`` should not pay for trio.
    import trio
    import trio.testing

    from pyvxlan.cli import UsageError

    refuse_conflicts(args, _CONFLICTS)
    if args.plot and not args.compare:
        raise UsageError("--plot charts the figures of --compare: give both")
    mode = FdbMode(args.mode or FdbMode.MULTICAST.value)
    args.seed = 0 if args.seed is None else args.seed
    topology = classic_demo(args.hosts, mode, args.ipv6)
    if args.pcap and not args.print_commands and not args.compare:
        check_output_path(args.pcap)
    if args.plot:
        check_output_path(args.plot, "--plot")
    if args.backend == "kernel" and not args.print_commands and not args.compare:
        from pyvxlan.kernel.lab import require_kernel_extra

        require_kernel_extra()
        from pyvxlan.kernel.netlink import require_privilege

        require_privilege("build a lab in network namespaces")  # before a line is printed
    if args.print_commands:
        from pyvxlan.kernel import lab_commands

        for line in lab_commands(topology):
            print(line)
        return 0
    if args.compare:
        rows = trio.run(compare, args.hosts, args.seed, args.ipv6, clock=trio.testing.MockClock(autojump_threshold=0))
        if args.json:
            print(json.dumps([asdict(r) for r in rows], indent=2))
        else:
            print(
                f"pyvxlan demo --compare: {args.hosts} hosts, guest1 pings every other guest {PINGS} times, seed {args.seed}"
            )
            for line in compare_table(rows):
                print(line)
        if args.plot:
            from pyvxlan.cli.draw import plot_compare

            title = f"pyvxlan demo --compare: {args.hosts} hosts (host1 .. host{args.hosts}), seed {args.seed}"
            plot_compare(rows, args.plot, title)
        return 0 if all(r.received for r in rows) else 1

    quiet = args.json

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    backend = "simulated in virtual time" if args.backend == "sim" else "on the kernel, in network namespaces"
    say(f"pyvxlan demo: the classic VXLAN demo, {backend} (seed {args.seed})")
    _describe(topology, say)
    if args.backend == "sim":
        clock = trio.testing.MockClock(autojump_threshold=0)
        report = trio.run(_sim_demo, topology, args, say, clock, clock=clock)
    else:
        report = trio.run(_kernel_demo, topology, args, say)
    if args.json:
        data = asdict(report)
        # Each FDB as `bridge -j fdb show` gives it (docs/quickstart.md), not as text lines.
        data["fdb"] = data.pop("fdb_objects")
        data["ok"] = report.ok
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        _print_report(report, print)
        if args.pcap:
            print(f"underlay capture: {args.pcap}")
    return 0 if report.ok else 1
