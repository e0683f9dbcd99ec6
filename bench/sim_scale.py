"""How the simulator scales: N VTEPs on one multicast group, one guest each, pings between guests.

Workload per N (10, 100, 1,000, 10,000) and FDB mode:

* ``multicast`` and ``unicast``: 1,000 pings (one echo request each) between random pairs of
  guests. Each ping first resolves its target (IPv6 neighbour discovery: 10,000 guests do not fit
  in a documentation IPv4 /24), and that solicitation is flooded to all N VTEPs: by the group
  (one datagram, N - 1 deliveries) or by head-end replication (N - 1 datagrams). So the underlay
  carries about 1,000 x N deliveries.
* ``controller``: every guest pings one other (guest i pings guest i + 1), with the on-miss
  controller (entries are programmed when a VTEP reports a miss; nothing is flooded). Each ping
  sends three echo requests: the first two wait for the controller twice, once for the pinger's
  neighbour solicitation and once for the answering guest's (it resolves the pinger before
  replying, as Linux does), so only the third is answered in time (see docs/modes.md).

Each configuration runs in a fresh process, so that its peak memory (``ru_maxrss``) is its own,
with CPython's default garbage-collector settings: what a user's obvious script gets (the bench
neither disables nor tunes the collector).
The table gives wall time (set-up and run), underlay deliveries, deliveries per second of run time
and peak memory, and the ratio of each rate to the rate at N = 100 in the same mode, measured in
the same run (the machine is shared and noisy).

Run: ``.venv/bin/python bench/sim_scale.py [--sizes 10,100,1000,10000] [--modes multicast,controller]``;
``bench/compare.py sim_scale -- --sizes 1000,10000 --modes multicast`` runs it against an older tree too.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import subprocess
import sys
import time
from typing import Any

PINGS = int(__import__("os").environ.get("PVXS_PINGS", "1000"))


def topology(n: int, mode: str) -> Any:
    from pyvxlan.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice

    device = VxlanDevice(10, group="ff05::100")
    hosts = tuple(Host(f"h{i}", f"2001:db8::{i:x}", (device,)) for i in range(1, n + 1))
    guests = tuple(
        GuestSpec(f"g{i}", f"h{i}", 10, "02:00:00:" + (i).to_bytes(3, "big").hex(":"), f"2001:db8:1::{i:x}/64")
        for i in range(1, n + 1)
    )
    return Topology(Underlay("2001:db8::/64"), hosts, guests, FdbMode(mode))


def one(n: int, mode: str, seed: int) -> dict[str, Any]:
    """Run one configuration in this process; returns its figures."""
    from pyvxlan.sim import open_lab, run

    t0 = time.perf_counter()
    topo = topology(n, mode)
    rng = random.Random(seed)
    figures: dict[str, Any] = {"n": n, "mode": mode}

    async def main() -> None:
        async with open_lab(topo, seed=seed, keep_events=False, controller="on-miss") as lab:
            t1 = time.perf_counter()
            figures["setup_s"] = t1 - t0
            sent = received = 0
            if mode == "controller":
                pairs = [(i, i % n + 1) for i in range(1, n + 1)]
                count = 3
            else:
                pairs = [(a, b) for a, b in (rng.sample(range(1, n + 1), 2) for _ in range(PINGS))]
                count = 1
            for a, b in pairs:
                r = await lab.guest(f"g{a}").ping(f"2001:db8:1::{b:x}", count=count, interval=1.0, timeout=1.0)
                sent += r.sent
                received += r.received
            t2 = time.perf_counter()
            s = lab.stats()
            figures.update(
                run_s=t2 - t1,
                pings=len(pairs),
                echo_sent=sent,
                echo_received=received,
                datagrams=s.datagrams,
                floods=s.flood_datagrams,
                deliveries=s.deliveries,
                learned=s.learned,
                virtual_s=lab.now,
                balance=lab.ledger.balance(),
            )

    run(main)
    figures["wall_s"] = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["peak_mib"] = usage.ru_maxrss / 1024
    # CPU seconds: on a shared machine the wall time says how busy the others were, not only us.
    figures["cpu_s"] = usage.ru_utime + usage.ru_stime
    return figures


def floor(n: int, floods: int) -> float:
    """Deliveries per second of the cores alone: ``floods`` datagrams, each from a new source MAC,
    handed to ``n`` cores as the simulator hands them (parsed once, ``Vtep.receive_parsed`` and
    ``take_outputs`` per core, one remote pool), with nothing else: the part of a flood-and-learn
    delivery the simulator cannot avoid. (A tree without the parsed input: ``Vtep.receive``.)"""
    from pyvxlan import Vtep, VtepConfig, VxlanHeader

    parse: Any = None
    kw: dict[str, Any] = {}
    try:
        from pyvxlan.core.datagram import parse_datagram
        from pyvxlan.core.fdb import RemotePool
    except ImportError:  # the pre-refactor tree
        pass
    else:
        parse, kw = parse_datagram, {"pool": RemotePool()}
    cores = []
    for i in range(1, n + 1):
        core = Vtep(VtepConfig(vni=10, local=f"2001:db8::{i:x}", group="ff05::100"), **kw)
        core.up(0.0)
        core.take_outputs()
        cores.append((core.receive if parse is None else core.receive_parsed, core.take_outputs))
    header = VxlanHeader(10).encode()
    # A neighbour solicitation's Ethernet header (to a solicited-node group) and some payload.
    datagrams = [
        header + bytes.fromhex("3333ff000001") + (0x02FF00000000 + i).to_bytes(6, "big") + b"\x86\xdd" + bytes(72)
        for i in range(floods)
    ]
    t0 = time.perf_counter()
    for payload in datagrams:
        datagram = payload if parse is None else parse(payload)
        for receive, take in cores:
            receive(datagram, "2001:db8::ffff", 50000, 1.0)
            take()
    return n * floods / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--modes", default="multicast,unicast,controller")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "N,mode": run in this process, print JSON
    parser.add_argument("--floor", help=argparse.SUPPRESS)  # "N,floods": the cores-only floor, print JSON
    args = parser.parse_args()
    if args.floor:
        n, floods = (int(x) for x in args.floor.split(","))
        print(json.dumps({"n": n, "floor": floor(n, floods)}))
        return 0
    if args.one:
        n, mode = args.one.split(",")
        print(json.dumps(one(int(n), mode, args.seed)))
        return 0
    sizes = [int(x) for x in args.sizes.split(",")]
    modes = args.modes.split(",")
    rows = []
    for mode in modes:
        for n in sizes:
            if mode == "unicast" and n > 1000:
                continue  # 10 million unicast copies: the multicast row makes the point
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    f"{n},{mode}",
                    "--seed",
                    str(args.seed),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            row = json.loads(out.splitlines()[-1])
            row["rate"] = row["deliveries"] / row["run_s"] if row["run_s"] else 0.0
            rows.append(row)
            print(_line(row, None), flush=True)
    floors = {}
    for n in sizes:
        if n >= 100 and "multicast" in modes:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--floor",
                    f"{n},{max(1, 1_000_000 // n)}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            floors[n] = json.loads(out.splitlines()[-1])["floor"]
    print()
    print(f"garbage collector: CPython's defaults, thresholds {gc.get_threshold()}")
    print(
        "| N | mode | pings | echo replies | wall s (set-up + run) | underlay datagrams | floods | deliveries | deliveries/s | rate vs N=100 | peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next((r for r in rows if r["n"] == 100 and r["mode"] == row["mode"]), None)
        print(_line(row, base))
    unbalanced = [f"N={r['n']} {r['mode']}: {r['balance']}" for r in rows if r["balance"]]
    print()
    print("frame ledger balance: " + (", ".join(unbalanced) if unbalanced else "0 in every run"))
    if floors:
        print()
        print("| N | cores alone (floor), deliveries/s | the simulator, multicast | simulator / floor |")
        print("|---|---|---|---|")
        for n, rate in floors.items():
            row = next((r for r in rows if r["n"] == n and r["mode"] == "multicast"), None)
            sim = row["rate"] if row else 0.0
            print(f"| {n:,} | {rate:,.0f} | {sim:,.0f} | {sim / rate:.2f} |")
    return 0


def _line(row: dict[str, Any], base: dict[str, Any] | None) -> str:
    ratio = f"{row['rate'] / base['rate']:.2f}" if base and base["rate"] else "-"
    return (
        f"| {row['n']:,} | {row['mode']} | {row['pings']:,} | {row['echo_received']:,}/{row['echo_sent']:,} "
        f"| {row['wall_s']:.1f} ({row['setup_s']:.1f} + {row['run_s']:.1f}) | {row['datagrams']:,} | {row['floods']:,} "
        f"| {row['deliveries']:,} | {row['rate']:,.0f} | {ratio} | {row['peak_mib']:,.0f} |"
    )


if __name__ == "__main__":
    sys.exit(main())
