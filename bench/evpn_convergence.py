"""EVPN in the simulator: how long the VTEPs take to follow a moved guest, for N VTEPs.

Workload per N (100 and 1,000 by default): N hosts with VNI 10 (IPv6 underlay 2001:db8::/64), one
guest each, ``FdbMode.EVPN`` with the route reflector's delays at FRR's defaults for iBGP
(``RrTimings()``: advertisement interval 0, 25 ms per BGP speaker). The lab opens once every
host's routes are programmed everywhere (N type-3 and N x 2 type-2 routes reflected to N - 1
hosts). Then guest g1 moves from h1 to h2 and g<N> pings it every 10 ms (20 echo requests) from
the moment of the move: the requests sent before h<N> hears of the move go to h1 and are lost.

The table gives, per N: wall time to open the lab (the routes of the start), the move's figures in
virtual time (convergence: until every VTEP's tables are what the routes imply; blackhole: until
every VTEP sends g1's frames to h2; frames dropped meanwhile, echo replies received), the wall time
of the move and pings, and the ratio of each wall time and of the convergence to N = 100's,
measured in the same run.

Run: ``.venv/bin/python bench/evpn_convergence.py [--sizes 100,1000] [--mrai 0] [--processing 0.025]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any


def topology(n: int) -> Any:
    from pyvxlan.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice

    device = VxlanDevice(10, group="ff05::100")
    hosts = tuple(Host(f"h{i}", f"2001:db8::{i:x}", (device,)) for i in range(1, n + 1))
    guests = tuple(
        GuestSpec(f"g{i}", f"h{i}", 10, "02:00:00:" + (i).to_bytes(3, "big").hex(":"), f"2001:db8:1::{i:x}/64")
        for i in range(1, n + 1)
    )
    return Topology(Underlay("2001:db8::/64"), hosts, guests, FdbMode.EVPN)


def one(n: int, mrai: float, processing: float) -> dict[str, Any]:
    from pyvxlan.sim import open_lab, run
    from pyvxlan.sim.evpn import RrTimings

    topo = topology(n)
    figures: dict[str, Any] = {"n": n}

    async def main() -> None:
        t0 = time.perf_counter()
        rr = RrTimings(advertisement_interval=mrai, processing=processing)
        async with open_lab(topo, keep_events=False, rr=rr) as lab:
            t1 = time.perf_counter()
            figures["setup_s"] = t1 - t0
            figures["opened_at"] = lab.now
            # g<N> resolves g1 first, so that its echo requests go straight out after the move.
            await lab.guest(f"g{n}").ping("2001:db8:1::1", count=1)
            await lab.move_guest("g1", "h2")
            r = await lab.guest(f"g{n}").ping("2001:db8:1::1", count=20, interval=0.01, timeout=0.5)
            assert lab.evpn is not None
            await lab.evpn.settled()
            figures["move_s"] = time.perf_counter() - t1
            (conv,) = lab.convergence
            figures.update(
                convergence=conv.time,
                blackhole=conv.blackhole,
                dropped=conv.dropped,
                replies=f"{r.received}/{r.sent}",
                floods=lab.stats().flood_datagrams,
            )

    run(main)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="numbers of VTEPs, the first is the baseline")
    parser.add_argument("--mrai", type=float, default=0.0, help="advertisement interval in seconds (FRR iBGP: 0)")
    parser.add_argument("--processing", type=float, default=0.025, help="seconds per BGP speaker (default 0.025)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"EVPN move convergence, route reflector at advertisement interval {args.mrai:g} s, "
        f"{args.processing * 1000:g} ms per BGP speaker"
    )
    head = (
        f"{'N':>6} {'open s':>8} {'converged':>10} {'blackhole':>10} {'dropped':>7} {'replies':>7} "
        f"{'floods':>6} {'move s':>7} {'open x':>7} {'move x':>7} {'conv x':>7}"
    )
    print(head)
    base: dict[str, Any] | None = None
    for n in sizes:
        gc.collect()
        f = one(n, args.mrai, args.processing)
        base = base or f
        print(
            f"{n:>6} {f['setup_s']:>8.2f} {f['convergence'] * 1000:>7.3f} ms {f['blackhole'] * 1000:>7.3f} ms "
            f"{f['dropped']:>7} {f['replies']:>7} {f['floods']:>6} {f['move_s']:>7.2f} "
            f"{f['setup_s'] / base['setup_s']:>7.2f} {f['move_s'] / base['move_s']:>7.2f} "
            f"{f['convergence'] / base['convergence']:>7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
