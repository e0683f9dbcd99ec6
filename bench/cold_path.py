"""One ping's work in the core, warm and with cold caches, against a floor measured the same way.

A ping through the userspace VTEP is one datagram in (``Vtep.receive_many`` of one, as the UDP
driver takes a lone datagram) and one frame out (``Vtep.transmit_many`` of one, the answer). When
pings are milliseconds apart, other code runs in between and the caches have forgotten the core:
the same calls then cost several times what they cost in a loop. This measures both:

* warm: each call right after the same call;
* cold: each call right after ``EVICT_MB`` of other memory has been written (two buffers of half
  that, one copied over the other: every cache line of both).

The floor is the bare relay's Python in bench/udp_relay.py (the floor for any Python VTEP): the
datagram's frame cut from behind its 8-byte header, the answer put behind one. The figures are the median of
``SAMPLES`` calls of each, the kinds interleaved so that the machine's load weighs on all alike;
the ratios are within this run. Run: ``.venv/bin/python bench/cold_path.py [--evict MB]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from core import icmp_frame  # the ping frame bench/core.py sends

from pyvxlan import Vtep, VtepConfig

SAMPLES = 300
EVICT_MB = 16
LOCAL, PEER = "198.51.100.2", "198.51.100.1"
GUEST, FAR = bytes.fromhex("0200000000a2"), bytes.fromhex("0200000000a1")


def calls() -> dict[str, Callable[[float], None]]:
    """The four calls, each taking the time to pass to the core."""
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    vtep.take_outputs()
    request = icmp_frame(GUEST, FAR)  # from the peer's guest to ours
    answer = icmp_frame(FAR, GUEST)
    header = bytes.fromhex("0800000000000a00")  # I flag, VNI 10
    payload = header + request  # what recvmsg gives
    receive_many, transmit_many, take = vtep.receive_many, vtep.transmit_many, vtep.take_outputs

    def core_in(now: float) -> None:
        receive_many([(payload, PEER, 50000, 0, None)], now)
        take()

    def core_out(now: float) -> None:
        transmit_many([answer], now)
        take()

    def floor_in(now: float) -> None:
        payload[8:]

    def floor_out(now: float) -> None:
        header + answer

    return {"core in": core_in, "core out": core_out, "floor in": floor_in, "floor out": floor_out}


def measure(evict_mb: int = EVICT_MB) -> dict[str, tuple[float, float]]:
    """(warm, cold) µs of each call, medians of ``SAMPLES``."""
    half = evict_mb << 19
    dirty, clean = bytearray(half), bytes(half)
    fns = calls()
    warm: dict[str, list[float]] = {name: [] for name in fns}
    cold: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter_ns
    now = 1.0
    for _ in range(SAMPLES):
        for name, fn in fns.items():
            now += 0.005
            dirty[:] = clean  # every line of both buffers: the core's code and data leave the caches
            t = clock()
            fn(now)
            cold[name].append((clock() - t) / 1000)
            now += 0.005
            t = clock()
            fn(now)
            warm[name].append((clock() - t) / 1000)
    return {name: (statistics.median(warm[name]), statistics.median(cold[name])) for name in fns}


def main(evict_mb: int = EVICT_MB) -> None:
    figures = measure(evict_mb)
    print(f"one ping's work, median of {SAMPLES} calls each, cold: after writing {evict_mb} MB")
    for way in ("in", "out"):
        (cw, cc), (fw, fc) = figures[f"core {way}"], figures[f"floor {way}"]
        what = "receive_many of one datagram" if way == "in" else "transmit_many of one frame"
        print(
            f"  {what}: warm {cw:.1f} us, cold {cc:.1f} us (cold/warm {cc / cw:.1f}x); "
            f"floor warm {fw:.1f} us, cold {fc:.1f} us (cold/warm {fc / fw:.1f}x); "
            f"core/floor warm {cw / fw:.1f}x, cold {cc / fc:.1f}x"
        )
    (iw, ic), (ow, oc) = figures["core in"], figures["core out"]
    (jw, jc), (pw, pc) = figures["floor in"], figures["floor out"]
    print(
        f"  both ways: core warm {iw + ow:.1f} us, cold {ic + oc:.1f} us; floor warm {jw + pw:.1f} us, "
        f"cold {jc + pc:.1f} us; the core's excess over the floor warm {iw + ow - jw - pw:.1f} us, cold {ic + oc - jc - pc:.1f} us"
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evict", type=int, default=EVICT_MB, metavar="MB", help="memory written before a cold call")
    main(parser.parse_args().evict)
