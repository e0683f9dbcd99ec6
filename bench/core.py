"""Frames per second through the sans-I/O core, against a floor measured in the same run.

* transmit: a frame to a known unicast MAC, with 100,000 entries in the table; the floor is a plain
  ``dict`` lookup of the destination MAC plus ``encapsulate`` of the same frame.
* receive with learning: datagrams from 100,000 source MACs (the first pass learns them, later
  passes refresh them); the floor is a plain ``dict`` lookup plus ``decapsulate`` of the same frame.
  The same datagrams through ``receive_many`` in bursts of 32 (the UDP driver's chunk), against the
  same floor (a tree without ``receive_many`` leaves the row out); ``transmit_many`` likewise in
  bursts of 256.
* a flood reaching 1,000 cores, as the simulator hands it: each datagram read once
  (``parse_datagram``) and given to every core, which share one ``RemotePool``; the floor is one
  ``decapsulate`` per datagram plus a plain ``dict`` store per core. (A tree without
  ``parse_datagram`` hands every core the same bytes object instead, which it parsed once too.)

The goal is a ratio (core time / floor time) under 2. Each figure is the best of several rounds,
because the machine is shared and noisy. Run: ``.venv/bin/python bench/core.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyvxlan import Vtep, VtepConfig, decapsulate, encapsulate

ENTRIES = 100_000
N = 100_000
ROUNDS = 5
CORES = 1_000
LOCAL, PEER = "198.51.100.1", "198.51.100.2"


def mac(i: int) -> bytes:
    return b"\x02" + i.to_bytes(5, "big")


def icmp_frame(dst: bytes, src: bytes) -> bytes:
    # Ethernet + IPv4 + ICMP echo with 56 bytes of data: what `ping` sends (98 bytes).
    ip = bytes.fromhex("45000054abcd40004001") + bytes(2) + bytes([203, 0, 113, 1, 203, 0, 113, 2])
    return dst + src + b"\x08\x00" + ip + bytes.fromhex("0800f7ff00010001") + bytes(56)


def best(fn: Callable[[], None]) -> float:
    """Seconds per call of the best round of N calls."""
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) / N)
    return min(times)


def bench_transmit() -> tuple[float, float]:
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    for i in range(ENTRIES):
        vtep.fdb_add(mac(i).hex(":"), f"198.51.100.{2 + i % 200}")
    target = mac(ENTRIES // 2)
    frame = icmp_frame(target, b"\x02\xaa\x00\x00\x00\x01")
    transmit, take = vtep.transmit, vtep.take_outputs

    def core() -> None:
        for _ in range(N):
            transmit(frame, 1.0)
            take()

    table = {mac(i): f"198.51.100.{2 + i % 200}" for i in range(ENTRIES)}

    def floor() -> None:
        for _ in range(N):
            dst = table[frame[0:6]]
            encapsulate(frame, vni=10, src=LOCAL, dst=dst)

    return best(core), best(floor)


def bench_transmit_many() -> tuple[float, float]:
    """The same frame through ``transmit_many`` in bursts of 256 (the UDP driver's batch), against
    the same floor."""
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    for i in range(ENTRIES):
        vtep.fdb_add(mac(i).hex(":"), f"198.51.100.{2 + i % 200}")
    target = mac(ENTRIES // 2)
    burst = [icmp_frame(target, b"\x02\xaa\x00\x00\x00\x01")] * 256
    transmit_many, take = vtep.transmit_many, vtep.take_outputs

    def core() -> None:
        for _ in range(N // 256):
            transmit_many(burst, 1.0)
            take()

    table = {mac(i): f"198.51.100.{2 + i % 200}" for i in range(ENTRIES)}
    frame = burst[0]

    def floor() -> None:
        for _ in range(N // 256 * 256):
            dst = table[frame[0:6]]
            encapsulate(frame, vni=10, src=LOCAL, dst=dst)

    scale = N / (N // 256 * 256)  # best() divides by N
    return best(core) * scale, best(floor) * scale


def learning_floor(frames: list[bytes]) -> Callable[[], None]:
    """The receive benchmarks' floor: each frame decapsulated from the wire and its source MAC put
    in a dict behind the outer source (a dict lookup and the codec)."""
    table: dict[bytes, str] = {}
    wire = [encapsulate(f, vni=10, src=PEER, dst=LOCAL) for f in frames]

    def floor() -> None:
        for w in wire:
            d = decapsulate(w)
            table.setdefault(bytes(d.inner[6:12]), d.outer_src)

    return floor


def bench_receive() -> tuple[float, float]:
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    dst = b"\x02\xaa\x00\x00\x00\x01"
    frames = [icmp_frame(dst, mac(i)) for i in range(N)]
    payloads = [b"\x08\x00\x00\x00\x00\x00\x0a\x00" + f for f in frames]
    receive, take = vtep.receive, vtep.take_outputs
    clock = [0.0]

    def core() -> None:
        clock[0] += 1.0  # a new time each round: every refresh really moves the entry
        now = clock[0]
        for p in payloads:
            receive(p, PEER, 50000, now)
            take()

    floor = learning_floor(frames)

    first = time.perf_counter()
    core()  # the learning pass, timed on its own
    learn = (time.perf_counter() - first) / N
    print(f"  receive, first pass (learns {N:,} MACs): {1 / learn:12,.0f} frames/s")
    return best(core), best(floor)


def bench_receive_many() -> tuple[float, float] | None:
    """The receive benchmark's datagrams through ``receive_many`` in bursts of 32 (the UDP
    driver's chunk), against the same floor; None for a tree without it."""
    if not hasattr(Vtep, "receive_many"):
        return None
    vtep = Vtep(VtepConfig(vni=10, local=LOCAL, remote=PEER))
    vtep.up(0.0)
    dst = b"\x02\xaa\x00\x00\x00\x01"
    frames = [icmp_frame(dst, mac(i)) for i in range(N)]
    items = [(b"\x08\x00\x00\x00\x00\x00\x0a\x00" + f, PEER, 50000, 0, None) for f in frames]
    bursts = [items[i : i + 32] for i in range(0, N, 32)]
    receive_many, take = vtep.receive_many, vtep.take_outputs
    clock = [0.0]

    def core() -> None:
        clock[0] += 1.0
        now = clock[0]
        for burst in bursts:
            receive_many(burst, now)
            take()

    floor = learning_floor(frames)

    core()  # the learning pass
    return best(core), best(floor)


def bench_flood() -> tuple[float, float]:
    try:
        from pyvxlan.core.datagram import parse_datagram  # absent before issue 11
        from pyvxlan.core.fdb import RemotePool
    except ImportError:
        parse: Callable[[bytes], object] = lambda p: p  # noqa: E731 - the old core's memo read it once
        options: dict[str, object] = {}
    else:
        parse, options = parse_datagram, {"pool": RemotePool()}
    cores = []
    for i in range(CORES):
        config = VtepConfig(vni=10, local=f"198.51.{100 + i // 250}.{i % 250 + 1}", group="239.1.1.1")
        vtep = Vtep(config, **options)  # type: ignore[arg-type]
        vtep.up(0.0)
        vtep.take_outputs()
        cores.append((vtep.receive, vtep.take_outputs))
    floods = N // CORES
    payloads = [
        b"\x08\x00\x00\x00\x00\x00\x0a\x00" + b"\xff" * 6 + mac(i) + b"\x08\x06" + bytes(28) for i in range(floods)
    ]
    sources = [f"198.51.100.{i % 200 + 1}" for i in range(floods)]
    clock = [0.0]

    def core() -> None:
        clock[0] += 1.0  # the first round learns, the others refresh
        now = clock[0]
        for payload, src in zip(payloads, sources, strict=True):
            parsed = parse(payload)
            for receive, take in cores:
                receive(parsed, src, 50000, now)  # type: ignore[arg-type]
                take()

    tables: list[dict[bytes, str]] = [{} for _ in range(CORES)]
    wire = [encapsulate(p[8:], vni=10, src=s, dst="239.1.1.1") for p, s in zip(payloads, sources, strict=True)]

    def floor() -> None:
        for w in wire:
            d = decapsulate(w)
            smac = bytes(d.inner[6:12])
            for table in tables:
                table[smac] = d.outer_src

    return best(core), best(floor)


def main() -> None:
    print(f"pyvxlan core benchmark: {N:,} frames a round, best of {ROUNDS} rounds")
    rows: tuple[tuple[str, tuple[float, float] | None, str], ...] = (
        ("transmit to a known MAC (100,000 entries)", bench_transmit(), "goal: under 2"),
        ("transmit_many, bursts of 256 (100,000 entries)", bench_transmit_many(), "goal: under 2"),
        ("receive with learning (100,000 source MACs)", bench_receive(), "goal: under 2"),
        ("receive_many, bursts of 32 (100,000 source MACs)", bench_receive_many(), "goal: under 2"),
        # The floor reads each datagram once too, so the ratio is a core's own work per receiver;
        # this figure is judged against the tree before a change (bench/compare.py), not a goal.
        (f"a flood reaching {CORES:,} cores, read once (core-receives)", bench_flood(), "no goal"),
    )
    for name, figures, goal in rows:
        if figures is None:
            continue  # a tree without that path
        core, floor = figures
        # One line a row, named: bench/compare.py tells lines apart by their words, so a row that
        # one tree lacks shifts nothing.
        print(
            f"  {name}: core {1 / core:,.0f} frames/s ({core * 1e6:.2f} us/frame), floor {1 / floor:,.0f} "
            f"frames/s ({floor * 1e6:.2f} us/frame; dict lookup + codec), ratio core/floor {core / floor:.2f} ({goal})"
        )


if __name__ == "__main__":
    main()
