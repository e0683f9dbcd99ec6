"""Frames per second through the userspace VTEP, against a bare relay and the kernel, in one run.

Two namespaces joined by a veth: S (198.51.100.1) and R (198.51.100.2 and .3). In R, the relays:

* ``bare``: a Python loop doing only the system calls any Python VTEP must make (``read`` from a
  TAP device, ``sendto`` a UDP socket with an 8-byte header in front; ``recvmsg`` from the socket,
  ``write`` to the TAP), reading until EAGAIN before it polls again: the floor.
* ``pyvxlan``: :func:`pyvxlan.udp.open_vtep` with a TAP device (the core decides every frame).
* ``kernel``: a vxlan device (the frames go into it through a packet socket, the datagrams come
  out of it the kernel's way).

TAP to UDP: a source process writes one frame over and over into the TAP device (the vxlan
device for the kernel) through a packet socket; the rate is what leaves R's veth. UDP to TAP: a
source in S sends VXLAN datagrams to the relay's address, port 4789; the rate is what the TAP (the
vxlan device) passes up. The bare relay and pyvxlan run side by side, each with its TAP, address
and source, every process paused (SIGSTOP) but one relay and its source at a time: in each of
``--pairs`` slices (12) each is counted for ``SLICE_SECONDS`` of overload, in alternating order,
a fraction of a second apart, so that the machine's load, which moves within seconds, weighs on
both alike; the figure is the median of the slices' ratios. A source runs in its own process and
is faster than the Python relays. The kernel is measured alone after, over ``SECONDS``; its
figures are bounded by the source: read them as "at least".

Then the ping round trip from a guest namespace behind a kernel VTEP to one behind R, with R's side
a kernel vxlan device; the bare relay (epoll); the bare relay reading the TAP again right after
writing to it and the socket right after sending (the answer is often there already: one wake-up
a round trip, as the userspace VTEP's data thread does); the latter under trio instead of epoll;
``pyvxlan vtep --tap``; the bare relay reading the answer at once and never sleeping (polling
epoll without a timeout: the floor for busy polling); and ``pyvxlan vtep --tap --busy-poll``.
Every rig is built first and its relay paused (SIGSTOP); then in each of ``SLICES`` slices every
side in turn, its relay alone running, gets ``SLICE_PINGS`` pings ``PING_INTERVAL`` apart (or each
``--interval`` in turn), so the machine's load, which moves within seconds, weighs on each side
alike. The latency a side adds is the median over the slices of its median minus the kernel's in
the same slice: for each round, and for the run (every slice of its rounds).

Needs root. Run: ``.venv/bin/python bench/udp_relay.py [--pairs N] [--rounds N] [--parts rates|rtt]
[--interval MS ...]`` (``--rounds``: rounds of ping slices, 3; ``--interval``: ms between pings,
5, repeatable).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

SECONDS = 1.5
ROUNDS = 3
PAIRS = 12  # interleaved slices of each relay per rate
SLICE_WARM = 0.15  # s a resumed relay runs before it is counted
SLICE_SECONDS = 0.4  # s it is counted
# The busy-polling VTEP's window: longer than the time between two pings (5 ms unless --interval says
# otherwise), so that it never sleeps while they come; at longer intervals it sleeps between them.
BUSY_POLL_US = 20_000
PING_INTERVAL = 0.005  # s between pings: sparse traffic, each round trip on its own
SLICES = 15  # interleaved slices of each side's pings per round
SLICE_PINGS = 20
SIZES = (64, 1400)
S_ADDR, R_ADDR, SINK = "198.51.100.1", "198.51.100.2", "198.51.100.9"
R2_ADDR = "198.51.100.3"  # R's second address: the two relays of the interleaved rates side by side
SINK_MAC = "02:00:00:00:0b:09"
GUEST_MAC, PEER_MAC = bytes.fromhex("0200000000a1"), bytes.fromhex("0200000000a2")
PORT = 4789
VXLAN_HEADER = bytes.fromhex("0800000000000a00")  # I flag, VNI 10
PY = sys.executable
HERE = os.path.abspath(__file__)


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def frame(size: int, dst: bytes = PEER_MAC, src: bytes = GUEST_MAC) -> bytes:
    """An Ethernet frame of ``size`` bytes (IPv4, UDP) from ``src`` to ``dst``."""
    ip_len = size - 14
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, ip_len, 1, 0, 64, 17, 0, bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2])
    )
    udp = struct.pack("!HHHH", 40000, 9, ip_len - 20, 0)
    return dst + src + b"\x08\x00" + ip + udp + bytes(ip_len - 28)


# --- the processes (this file runs itself in a namespace with a role) -----------------------------


def _open_tap(name: str) -> int:
    from pyvxlan.udp.syscalls import open_tap

    fd, _ = open_tap(name)
    return fd


def role_bare(direction: str, chase: bool | str = False, tap_name: str = "rt0", addr: str = R_ADDR) -> None:
    """The floor: the same system calls as the driver, nothing else. With ``chase`` (the ping
    path), after writing to the TAP it reads the TAP again at once, and after sending it reads the
    socket, as the userspace VTEP does: the answer is often there already. With ``"spin"``, the
    same, polling epoll without ever sleeping (the floor for ``--busy-poll``)."""
    tap = _open_tap(tap_name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: DONT, as the driver
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    sock.bind((addr, PORT))
    sock.setblocking(False)
    print("ready", flush=True)
    poll = select.epoll()
    if direction == "both":  # the ping path: frames both ways, to the peer VTEP
        poll.register(tap, select.EPOLLIN)
        poll.register(sock.fileno(), select.EPOLLIN)
        space = socket.CMSG_SPACE(4)

        def drain(fd: int) -> bool:
            moved = False
            while True:
                try:
                    if fd == tap:
                        sock.sendto(VXLAN_HEADER + os.read(tap, 65536), (S_ADDR, PORT))
                    else:
                        os.write(tap, sock.recvmsg(65535, space)[0][8:])
                except BlockingIOError:
                    return moved
                moved = True

        timeout = 0 if chase == "spin" else -1  # spin: never sleep (the floor of busy polling)
        while True:
            for fd, _ in poll.poll(timeout):
                if not chase:
                    drain(fd)
                elif drain(fd):
                    drain(sock.fileno() if fd == tap else tap)
    if direction == "tx":
        poll.register(tap, select.EPOLLIN)
        read, send, dst = os.read, sock.sendto, (SINK, PORT)
        while True:
            poll.poll()
            for _ in range(256):
                try:
                    data = read(tap, 65536)
                except BlockingIOError:
                    break
                send(VXLAN_HEADER + data, dst)
    else:
        poll.register(sock.fileno(), select.EPOLLIN)
        recvmsg, write = sock.recvmsg, os.write
        space = socket.CMSG_SPACE(4)
        while True:
            poll.poll()
            for _ in range(256):
                try:
                    data, _anc, _flags, _addr = recvmsg(65535, space)
                except BlockingIOError:
                    break
                write(tap, data[8:])


def role_trio_relay(chase: bool = False) -> None:
    """The ping path's floor under trio: the bare relay's calls, woken by trio instead of epoll.
    With ``chase``, after writing to the TAP it reads the TAP once more before going back to trio
    (the answer is often there already), as the userspace VTEP does: one wake-up a round trip."""
    import trio

    tap = _open_tap("rt0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((R_ADDR, PORT))
    sock.setblocking(False)
    print("ready", flush=True)

    async def tap_to_udp() -> None:
        while True:
            await trio.lowlevel.wait_readable(tap)
            while True:
                try:
                    data = os.read(tap, 65536)
                except BlockingIOError:
                    break
                sock.sendto(VXLAN_HEADER + data, (S_ADDR, PORT))

    async def udp_to_tap() -> None:
        while True:
            await trio.lowlevel.wait_readable(sock)
            while True:
                try:
                    data = sock.recvmsg(65535, 64)[0]
                except BlockingIOError:
                    break
                os.write(tap, data[8:])
                while chase:
                    try:
                        answer = os.read(tap, 65536)
                    except BlockingIOError:
                        break
                    sock.sendto(VXLAN_HEADER + answer, (S_ADDR, PORT))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tap_to_udp)
            nursery.start_soon(udp_to_tap)

    trio.run(main)


def role_pyvxlan(tap_name: str = "rt0", addr: str = R_ADDR) -> None:
    import trio

    from pyvxlan import VtepConfig
    from pyvxlan.udp import open_vtep

    async def main() -> None:
        config = VtepConfig(vni=10, local=addr, remote=SINK, dst_port=PORT)
        async with open_vtep(config, tap=tap_name, up=True):
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main)


def role_source_frames(dev: str, size: int, seconds: float) -> None:
    """Write one frame into ``dev`` through a packet socket, as fast as this process can."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((dev, 0))
    data = frame(size)
    if not seconds:
        print("ready", flush=True)  # then until ended, paused and resumed by the rig
        seconds = math.inf
    send = sock.send
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            try:
                send(data)
            except OSError:
                pass  # the device queue is full: the relay is behind
        n += 1000
    print(int(n / seconds), flush=True)


def role_source_datagrams(size: int, seconds: float, to: str = R_ADDR) -> None:
    """Send one VXLAN datagram (an inner frame of ``size`` bytes) to R, as fast as this process can."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((S_ADDR, 0))
    data = VXLAN_HEADER + frame(size, dst=GUEST_MAC, src=PEER_MAC)
    if not seconds:
        print("ready", flush=True)  # then until ended, paused and resumed by the rig
        seconds = math.inf
    send = sock.sendto
    dst = (to, PORT)
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(1000):
            try:
                send(data, dst)
            except OSError:
                pass
        n += 1000
    print(int(n / seconds), flush=True)


# --- the rig --------------------------------------------------------------------------------------


class Rig:
    def __init__(self) -> None:
        self.prefix = "pvh9b" + secrets.token_hex(2)
        self.s, self.r = f"{self.prefix}-s", f"{self.prefix}-r"
        self.made: list[str] = []

    def __enter__(self) -> Rig:
        for ns in (self.s, self.r):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.s, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", self.r)
        for ns, addr in ((self.s, S_ADDR), (self.r, R_ADDR)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", self.r, "addr", "add", f"{R2_ADDR}/24", "dev", "eth0")  # the second relay's
        # The sink: an address on S's segment that no one has; S drops what comes (not its MAC).
        sh("ip", "-n", self.r, "neigh", "add", SINK, "lladdr", SINK_MAC, "dev", "eth0")
        return self

    def __exit__(self, *exc: object) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], check=False)

    def counter(self, ns: str, dev: str, key: str) -> int:
        info = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show", dev))[0]
        return int(info["stats64"][key]["packets"])


@contextmanager
def process(ns: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, PY, HERE, *args], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"{args[0]} did not start: {line!r}")
        yield proc
    finally:
        proc.send_signal(signal.SIGCONT)  # a stopped process ends only once continued
        proc.terminate()
        proc.wait()


def measure_kernel(rig: Rig, direction: str, size: int) -> float:
    """Frames/s through a vxlan device in R over ``SECONDS`` of overload (bounded by the source:
    read it as "at least")."""
    sh("ip", "-n", rig.r, "link", "add", "vx0", "type", "vxlan", "id", "10", "local", R_ADDR,
       "remote", SINK, "dstport", str(PORT))  # fmt: skip
    sh("ip", "-n", rig.r, "link", "set", "vx0", "up")
    try:
        if direction == "tx":
            out_dev, key = "eth0", "tx"
            source = ["ip", "netns", "exec", rig.r, PY, HERE, "source-frames", "vx0", str(size), str(SECONDS)]
        else:
            out_dev, key = "vx0", "rx"
            source = ["ip", "netns", "exec", rig.s, PY, HERE, "source-datagrams", str(size), str(SECONDS)]
        proc = subprocess.Popen(source, stdout=subprocess.PIPE, text=True)
        time.sleep(0.25)  # the source's start-up (Python's import) is not counted
        before, t0 = rig.counter(rig.r, out_dev, key), time.perf_counter()
        time.sleep(SECONDS - 0.5)
        after, t1 = rig.counter(rig.r, out_dev, key), time.perf_counter()
        proc.communicate()
        return (after - before) / (t1 - t0)
    finally:
        sh("ip", "-n", rig.r, "link", "del", "vx0")


def interleaved(rig: Rig, direction: str, size: int, slices: int) -> list[tuple[float, float]]:
    """(bare, pyvxlan) frames/s in each of ``slices`` slices. Both relays run side by side, each
    with its own TAP, address and source, all paused (SIGSTOP) but the relay being measured and its
    source: the two are measured a fraction of a second apart, in alternating order, so that the
    machine's load, which moves within seconds, weighs on both alike."""
    sides = (("bare", "rtb", R_ADDR), ("pyvxlan", "rtp", R2_ADDR))
    with ExitStack() as stack:
        running: dict[str, tuple[subprocess.Popen[str], subprocess.Popen[str], str, str]] = {}
        for name, tap, addr in sides:
            relay_args = ["bare-at", direction, tap, addr] if name == "bare" else ["pyvxlan", tap, addr]
            relay = stack.enter_context(process(rig.r, *relay_args))
            if direction == "tx":
                source = stack.enter_context(process(rig.r, "source-frames", tap, str(size), "0"))
                where = (rig.r, "eth0", "tx")
            else:
                source = stack.enter_context(process(rig.s, "source-datagrams", str(size), "0", addr))
                where = (rig.r, tap, "rx")
            relay.send_signal(signal.SIGSTOP)
            source.send_signal(signal.SIGSTOP)
            running[name] = (relay, source, *where[1:])
        out = []
        for i in range(slices):
            rates = {}
            for name, _tap, _addr in sides if i % 2 == 0 else sides[::-1]:
                relay, source, dev, key = running[name]
                relay.send_signal(signal.SIGCONT)
                source.send_signal(signal.SIGCONT)
                try:
                    time.sleep(SLICE_WARM)  # the backlog of the last slice drained, the caches warm
                    before, t0 = rig.counter(rig.r, dev, key), time.perf_counter()
                    time.sleep(SLICE_SECONDS)
                    after, t1 = rig.counter(rig.r, dev, key), time.perf_counter()
                finally:
                    source.send_signal(signal.SIGSTOP)
                    relay.send_signal(signal.SIGSTOP)
                rates[name] = (after - before) / (t1 - t0)
            out.append((rates["bare"], rates["pyvxlan"]))
        return out


class PingRig:
    """G1 (behind a kernel VTEP on K) and G2 (behind H, where ``side`` is a kernel vxlan device,
    ``pyvxlan vtep --tap``, or a bare relay on a TAP), built once; :meth:`ping` gives round trips
    G1 to G2. The relay process (any but the kernel's) can be paused (SIGSTOP) so that rigs wait
    side by side without taking a CPU, and the sides be measured in interleaved slices."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.prefix = "pvh9r" + secrets.token_hex(2)
        self.k, self.h, self.g1, self.g2 = (f"{self.prefix}-{n}" for n in ("k", "h", "g1", "g2"))
        self.made: list[str] = []
        self.relay: subprocess.Popen[str] | None = None

    def __enter__(self) -> PingRig:
        try:
            self._build()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _build(self) -> None:
        k, h, g1, g2, side = self.k, self.h, self.g1, self.g2, self.side
        for ns in (k, h, g1, g2):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", k, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", h)
        for ns, addr in ((k, S_ADDR), (h, R_ADDR)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", ns, "link", "set", "br0", "up")
        for ns, guest, ip in ((k, g1, "203.0.113.1"), (h, g2, "203.0.113.2")):
            sh("ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "eth0", "netns", guest)
            sh("ip", "-n", ns, "link", "set", "v0", "master", "br0", "up")
            sh("ip", "-n", guest, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", guest, "link", "set", "eth0", "up")
        sh("ip", "-n", k, "link", "add", "vx0", "type", "vxlan", "id", "10", "local", S_ADDR, "remote", R_ADDR,
           "dstport", str(PORT))  # fmt: skip
        sh("ip", "-n", k, "link", "set", "vx0", "master", "br0", "up")
        if side == "kernel":
            sh("ip", "-n", h, "link", "add", "vx0", "type", "vxlan", "id", "10", "local", R_ADDR,
               "remote", S_ADDR, "dstport", str(PORT))  # fmt: skip
            sh("ip", "-n", h, "link", "set", "vx0", "master", "br0", "up")
        else:
            if side in ("pyvxlan", "pyvxlan-busy"):
                busy = ["--busy-poll", str(BUSY_POLL_US)] if side == "pyvxlan-busy" else []
                argv = [os.path.join(os.path.dirname(PY), "pyvxlan"), "vtep", "--vni", "10", "--local", R_ADDR,
                        "--remote", S_ADDR, "--tap", "rt0", *busy]  # fmt: skip
            else:
                role = {
                    "bare": ["bare", "both"],
                    "bare-chase": ["bare", "both", "chase"],
                    "bare-spin": ["bare", "both", "spin"],
                    "trio-chase": ["trio-chase"],
                }[side]
                argv = [PY, HERE, *role]
            self.relay = subprocess.Popen(["ip", "netns", "exec", h, *argv], stdout=subprocess.PIPE, text=True)
            assert self.relay.stdout is not None
            self.relay.stdout.readline()  # "ready", or pyvxlan's start line: the TAP exists
            sh("ip", "-n", h, "link", "set", "rt0", "master", "br0")
        self.ping(3, interval=0.1)  # ARP, learning

    def ping(self, count: int, interval: float = PING_INTERVAL) -> list[float]:
        """Round trips in µs of ``count`` pings G1 to G2, ``interval`` s apart."""
        out = sh("ip", "netns", "exec", self.g1, "ping", "-n", "-c", str(count), "-i", str(interval), "203.0.113.2")
        return [float(x.split("time=")[1].split()[0]) * 1000 for x in out.splitlines() if "time=" in x]

    def pause(self) -> None:
        if self.relay is not None:
            self.relay.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.relay is not None:
            self.relay.send_signal(signal.SIGCONT)

    def __exit__(self, *exc: object) -> None:
        if self.relay is not None:
            self.relay.send_signal(signal.SIGCONT)  # a stopped process ends only once continued
            self.relay.terminate()
            self.relay.wait()
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def main(rounds: int = ROUNDS, parts: str = "all", pairs: int = PAIRS, intervals: list[float] | None = None) -> None:
    if os.geteuid() != 0:
        sys.exit("bench/udp_relay.py needs root (namespaces, TAP and vxlan devices)")
    if parts in ("all", "rates"):
        rates_part(pairs)
    if parts in ("all", "rtt"):
        rtt_part(rounds, intervals or [PING_INTERVAL])


def rates_part(count: int) -> None:
    """The relays' rates: bare and pyvxlan interleaved in ``count`` slices each (see
    :func:`interleaved`), the median of the slices' ratios reported with their quartiles; the
    kernel's alone, after."""
    print(
        f"frames/s, bare and pyvxlan interleaved in {count} slices of {SLICE_SECONDS:.1f} s of overload each",
        flush=True,
    )
    with Rig() as rig:
        for direction, label in (("tx", "TAP to UDP"), ("rx", "UDP to TAP")):
            for size in SIZES:
                pairs = interleaved(rig, direction, size, count)
                kern = measure_kernel(rig, direction, size)
                ratios = [ours / bare for bare, ours in pairs]
                ratio = statistics.median(ratios)
                q1, _, q3 = statistics.quantiles(ratios, n=4)
                bare = statistics.median(p[0] for p in pairs)
                ours = statistics.median(p[1] for p in pairs)
                goal = 0.75 if direction == "tx" else 0.6
                verdict = "meets" if ratio >= goal else "misses"
                print(
                    f"{label} {size:>5} B: bare {bare:>9,.0f}  pyvxlan {ours:>9,.0f}  kernel >= {kern:>9,.0f}  "
                    f"pyvxlan/bare {ratio:.2f}x (quartiles {q1:.2f}-{q3:.2f}; {verdict} the {goal}x goal), "
                    f"kernel/pyvxlan {kern / ours:.1f}x",
                    flush=True,
                )


def rtt_part(rounds: int, intervals: list[float]) -> None:
    """The ping round trips. Every side's rig is built first; then, ``SLICES`` times, each side in
    turn (its relay alone running, the others paused) gets ``SLICE_PINGS`` pings, so that the
    machine's load, which moves within seconds, weighs on every side alike. The latency a side
    adds is the median over the slices of its median minus the kernel's in the same slice; the
    whole is done ``rounds`` times for each of ``intervals`` (s between two pings), and the run's
    figure is the median over the slices of all its rounds."""
    sides = ("kernel", "bare", "bare-chase", "trio-chase", "pyvxlan", "bare-spin", "pyvxlan-busy")
    names = {
        "bare": "a bare relay",
        "bare-chase": "a bare relay reading the answer at once",
        "trio-chase": "the same under trio",
        "pyvxlan": "pyvxlan",
        "bare-spin": "the bare relay reading the answer at once and never sleeping",
        "pyvxlan-busy": f"pyvxlan --busy-poll {BUSY_POLL_US}",
    }
    with ExitStack() as stack:
        rigs = {}
        for side in sides:
            rigs[side] = stack.enter_context(PingRig(side))
            rigs[side].pause()
        for interval in intervals:
            every = f"{interval * 1000:g} ms"
            print(f"ping round trips every {every}, {SLICES} slices of {SLICE_PINGS} pings a side, {rounds} rounds",
                  flush=True)  # fmt: skip
            run: dict[str, list[float]] = {side: [] for side in sides[1:]}
            for n in range(rounds):
                added: dict[str, list[float]] = {side: [] for side in sides[1:]}
                medians: dict[str, list[float]] = {side: [] for side in sides}
                for i in range(SLICES):
                    order = sides[i % len(sides) :] + sides[: i % len(sides)]  # each side first in turn
                    got = {}
                    for side in order:
                        rig = rigs[side]
                        rig.resume()
                        try:
                            got[side] = statistics.median(rig.ping(SLICE_PINGS, interval))
                        finally:
                            rig.pause()
                    for side in sides:
                        medians[side].append(got[side])
                    for side in sides[1:]:
                        added[side].append(got[side] - got["kernel"])
                        run[side].append(got[side] - got["kernel"])
                print(
                    f"{every} round {n + 1}, median RTT: "
                    + ", ".join(f"{side} {statistics.median(medians[side]):.0f} us" for side in sides),
                    flush=True,
                )
                print(
                    f"{every} round {n + 1}, added over the kernel VTEP (median of {SLICES} slices; quartiles): "
                    + ", ".join(f"{names[side]} {_quartiles(added[side])}" for side in sides[1:]),
                    flush=True,
                )
            verdicts = "; ".join(
                f"{names[side]} {_quartiles(run[side])}, "
                f"{'meets' if statistics.median(run[side]) < 100 else 'misses'} the 100 us goal"
                for side in ("pyvxlan", "pyvxlan-busy")
            )
            print(f"{every}, the run (median of {len(run['pyvxlan'])} slices; quartiles): {verdicts}", flush=True)


def _quartiles(values: list[float]) -> str:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return f"{statistics.median(values):.0f} us ({q1:.0f}-{q3:.0f})"


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):  # a role, run by the rig itself
        role, rest = sys.argv[1], sys.argv[2:]
        if role == "bare":
            role_bare(rest[0], chase="spin" if rest[1:] == ["spin"] else rest[1:] == ["chase"])
        elif role == "bare-at":  # direction, TAP, address: a relay of the interleaved rates
            role_bare(rest[0], tap_name=rest[1], addr=rest[2])
        elif role == "pyvxlan":
            role_pyvxlan(*rest)
        elif role == "trio-chase":
            role_trio_relay(chase=True)
        elif role == "source-frames":
            role_source_frames(rest[0], int(rest[1]), float(rest[2]))
        elif role == "source-datagrams":
            role_source_datagrams(int(rest[0]), float(rest[1]), *rest[2:])
    else:
        import argparse

        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--pairs", type=int, default=PAIRS, help="interleaved bare/pyvxlan slices per rate")
        parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of interleaved ping slices")
        parser.add_argument("--parts", choices=("all", "rates", "rtt"), default="all")
        parser.add_argument(
            "--interval",
            type=float,
            action="append",
            metavar="MS",
            help=f"ms between two pings (again for more: each gets its rounds); {PING_INTERVAL * 1000:g}",
        )
        args = parser.parse_args()
        main(args.rounds, args.parts, args.pairs, [ms / 1000 for ms in args.interval or []])
