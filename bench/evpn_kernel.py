"""EVPN convergence after a move on real FRR, against the simulator's for the same topology, one run.

The classic demo in evpn mode (``classic_demo(N, FdbMode.EVPN)``: N hosts, one guest each, FRR's
bgpd and zebra in every host namespace and a route reflector in the underlay, see
docs/kernel-lab.md) opens in network namespaces; then guest1 moves to the next host and back,
``--moves`` times, and each move is timed from ``move_guest`` until every device's FDB, flood list
and neighbour table is what the routes imply (``KernelLab.evpn_settled``, polled every 10 ms). The
baseline is the simulator's convergence for the same topology and move at FRR's default delays,
measured in the same run; the ratio says how close the model's 75 ms is to what FRR does.

Needs root, iproute2 and FRR (``dev.py`` installs them). Run:
``sudo .venv/bin/python bench/evpn_kernel.py [--hosts 4] [--moves 6]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def kernel(hosts: int, moves: int) -> tuple[float, list[float]]:
    import trio

    from pyvxlan.kernel import open_lab
    from pyvxlan.topology import FdbMode, classic_demo

    topo = classic_demo(hosts, FdbMode.EVPN)
    times: list[float] = []
    ready = 0.0

    async def main() -> None:
        nonlocal ready
        t0 = time.perf_counter()
        async with open_lab(topo) as lab:  # a fresh pvx prefix of its own
            ready = time.perf_counter() - t0
            for i in range(moves):
                where = "host2" if i % 2 == 0 else "host1"
                start = trio.current_time()
                await lab.move_guest("guest1", where)
                await lab.evpn_settled()
                times.append(trio.current_time() - start)

    trio.run(main)
    return ready, times


def simulated(hosts: int) -> float:
    from pyvxlan.sim import open_lab, run
    from pyvxlan.topology import FdbMode, classic_demo

    out: list[float] = []

    async def main() -> None:
        async with open_lab(classic_demo(hosts, FdbMode.EVPN), keep_events=False) as lab:
            await lab.move_guest("guest1", "host2")
            assert lab.evpn is not None
            await lab.evpn.settled()
            out.append(lab.convergence[0].time)

    run(main)
    return out[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4, help="hosts in the classic demo (default 4)")
    parser.add_argument("--moves", type=int, default=6, help="moves of guest1, timed each (default 6)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/evpn_kernel.py needs root (namespaces, vxlan devices, FRR)", file=sys.stderr)
        return 2
    sim = simulated(args.hosts)
    ready, times = kernel(args.hosts, args.moves)
    med = statistics.median(times)
    print(f"evpn convergence after a move, classic demo with {args.hosts} hosts, {args.moves} moves")
    print(f"  simulator (FRR's default delays, virtual time)   {sim * 1000:8.1f} ms  1.00")
    print(
        f"  kernel + FRR, every table right (median)        {med * 1000:8.1f} ms  {med / sim:.2f}x"
        f"  (range {min(times) * 1000:.0f}-{max(times) * 1000:.0f} ms)"
    )
    print(f"  kernel lab ready after open_lab                 {ready:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
