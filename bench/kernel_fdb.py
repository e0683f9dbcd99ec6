"""Kernel backend speed: programming and reading 10,000 FDB entries, and the demo lab's round trip.

Run as root: ``.venv/bin/python bench/kernel_fdb.py [--entries N] [--repeat R]``.

Every figure is measured in this run, against baselines measured in the same run (the machine is
shared and noisy): ``bridge -batch`` and a loop of ``bridge fdb append`` processes (iproute2),
pyroute2's one-request-per-entry ``fdb('append')`` and its generic dump, ``bridge fdb show``.
Each device is fresh (an empty table) for every programming run; the median of ``--repeat`` runs
is reported. The slow baselines (a process per entry, pyroute2 per entry) are measured on a
sample and extrapolated to the full count, as printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import trio
from pyroute2 import IPRoute

from pyvxlan import FdbEntry
from pyvxlan.kernel import KernelVtep, open_lab
from pyvxlan.kernel import netlink as nl
from pyvxlan.topology import classic_demo

NS = "pvxkbench"
DEV = "vxlan7"


def entries(n: int) -> list[FdbEntry]:
    return [
        FdbEntry(f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}", f"198.51.100.{i % 250 + 2}")
        for i in range(n)
    ]


def median_time(fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def fresh_device() -> None:
    subprocess.run(["ip", "-n", NS, "link", "del", DEV], capture_output=True, check=False)
    subprocess.run(
        [
            "ip",
            "-n",
            NS,
            "link",
            "add",
            DEV,
            "type",
            "vxlan",
            "id",
            "7",
            "dstport",
            "4789",
            "local",
            "198.51.100.1",
            "nolearning",
        ],
        check=True,
    )


def bridge(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["bridge", "-n", NS, *args], input=stdin, capture_output=True, text=True, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300, help="entries for the process-per-entry loop")
    parser.add_argument("--pyroute2-sample", type=int, default=2000, help="entries for pyroute2's per-entry path")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/kernel_fdb.py needs root (a namespace and a vxlan device)", file=sys.stderr)
        return 2
    n, repeat = args.entries, args.repeat
    batch = entries(n)
    lines = "".join(f"fdb append {e.mac} dev {DEV} dst {e.dst}\n" for e in batch)
    nl.netns_create(NS)
    try:
        print(f"kernel_fdb: {n} static FDB entries on {DEV} (VNI 7) in namespace {NS}; median of {repeat} runs")

        # --- programming ---------------------------------------------------------------------
        attached: list[KernelVtep] = []

        def fresh_and_attach() -> None:
            # Attaching (two netlink sockets in the namespace) is set-up, not programming.
            for vtep in attached:
                trio.run(vtep.aclose)
            attached.clear()
            fresh_device()

            async def attach() -> None:
                attached.append(await KernelVtep.attach(DEV, netns=NS))

            trio.run(attach)

        def pyvxlan_bulk() -> None:
            trio.run(attached[0].fdb_append_many, batch)

        t_pyvxlan = median_time(pyvxlan_bulk, repeat, fresh_and_attach)
        for vtep in attached:
            trio.run(vtep.aclose)
        assert len(bridge("fdb", "show", "dev", DEV).splitlines()) == n
        with tempfile.NamedTemporaryFile("w", suffix=".batch") as f:
            f.write(lines)
            f.flush()
            t_batch = median_time(lambda: bridge("-batch", f.name), repeat, fresh_device)
        assert len(bridge("fdb", "show", "dev", DEV).splitlines()) == n

        sample = batch[: args.sample]
        fresh_device()
        t = time.perf_counter()
        for e in sample:
            bridge("fdb", "append", e.mac, "dev", DEV, "dst", e.dst)
        t_loop = (time.perf_counter() - t) / len(sample) * n

        fresh_device()
        ipr = IPRoute(netns=NS, flags=0)
        try:
            index = ipr.link_lookup(ifname=DEV)[0]
            sample2 = batch[: args.pyroute2_sample]
            t = time.perf_counter()
            for e in sample2:
                ipr.fdb("append", ifindex=index, lladdr=e.mac, dst=e.dst)
            t_pr2 = (time.perf_counter() - t) / len(sample2) * n

            # --- reading back ------------------------------------------------------------------
            fresh_device()
            bridge("-batch", "-", stdin=lines)
            vtep_holder: list[KernelVtep] = []

            async def attach() -> None:
                vtep_holder.append(await KernelVtep.attach(DEV, netns=NS))

            trio.run(attach)
            vtep = vtep_holder[0]
            got: list[int] = []

            def pyvxlan_dump() -> None:
                async def run() -> None:
                    got.append(len(await vtep.fdb()))

                trio.run(run)

            t_read = median_time(pyvxlan_dump, repeat)
            assert got[-1] == n
            t_show = median_time(lambda: bridge("fdb", "show", "dev", DEV), repeat)
            t_show_lines = len(bridge("fdb", "show", "dev", DEV).splitlines())
            assert t_show_lines == n
            t_pr2_dump = median_time(lambda: [m for m in ipr.fdb("dump", ifindex=index) if m.get("NDA_DST")], repeat)
            trio.run(vtep.aclose)
        finally:
            ipr.close()
    finally:
        nl.netns_remove(NS)

    # --- the demo lab ------------------------------------------------------------------------------
    def demo() -> None:
        async def run() -> None:
            async with open_lab(classic_demo()) as lab:
                result = await lab.guest("guest1").ping("203.0.113.2", timeout=2)
                assert result.received == 1

        trio.run(run)

    t_demo = median_time(demo, repeat)

    def rate(seconds: float) -> str:
        return f"{n / seconds:>9,.0f}/s"

    print("programming (fresh device each run)")
    print(f"  pyvxlan KernelVtep.fdb_append_many   {t_pyvxlan * 1000:8.1f} ms  {rate(t_pyvxlan)}  1.00x")
    print(
        f"  bridge -batch (same {n} lines)     {t_batch * 1000:8.1f} ms  {rate(t_batch)}  {t_batch / t_pyvxlan:5.2f}x the time of pyvxlan"
    )
    print(
        f"  pyroute2 fdb('append') per entry     {t_pr2 * 1000:8.1f} ms  {rate(t_pr2)}  {t_pr2 / t_pyvxlan:5.1f}x"
        f"  (measured on {args.pyroute2_sample}, extrapolated)"
    )
    print(
        f"  bridge fdb append, a process each    {t_loop * 1000:8.0f} ms  {rate(t_loop)}  {t_loop / t_pyvxlan:5.0f}x"
        f"  (measured on {args.sample}, extrapolated)"
    )
    print(f"reading {n} entries back")
    print(
        f"  pyvxlan KernelVtep.fdb()             {t_read * 1000:8.1f} ms  {t_read / t_show:5.2f}x the time of bridge fdb show"
    )
    print(f"  bridge fdb show dev {DEV}            {t_show * 1000:8.1f} ms  1.00x")
    print(
        f"  pyroute2 fdb('dump') (generic parse) {t_pr2_dump * 1000:8.1f} ms  {t_pr2_dump / t_read:5.1f}x the time of pyvxlan"
    )
    print("the demo lab (classic_demo: 5 namespaces, 2 vxlan devices)")
    print(f"  set-up + one ping + teardown         {t_demo * 1000:8.0f} ms  (goal: under 3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
