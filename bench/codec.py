"""Codec speed, as ratios against baselines measured in the same run (the machine is noisy).

    .venv/bin/python bench/codec.py [--packets 200000] [--skip-cli]

(a) ``VxlanHeader.decode`` cycling over 1,024 distinct headers, against a bare
    ``struct.unpack_from`` loop over the same bytes (goal: within 3x); scapy's ``VXLAN(bytes)`` is
    printed for information, not as a goal (skipped when scapy is not installed).
(b) ``decapsulate`` of a 100-byte IPv4 frame, against dpkt parsing it down to the UDP payload
    (goal: at most 1/5 of dpkt's time).
(c) ``pyvxlan decode`` (the installed command, output to a file) over a generated capture, against
    ``tshark -r FILE -T fields -e vxlan.vni`` (goal: at least 5x faster) and ``tcpdump -nr FILE``
    (goal: at most 3x tcpdump's time); the same with the capture on standard input
    (``pyvxlan decode - < FILE``: the streaming reader); and ``pyvxlan decode --json`` against the
    text output (goal: at most 1.5x its time).

Micro-benchmarks interleave candidate and baseline and keep the best of many rounds; commands run
alternately, best of five. Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path

from pyvxlan import GroupPolicy, VxlanHeader, decapsulate, encapsulate
from pyvxlan.pcap import write

try:
    from pyvxlan.wire.frame import internet_checksum
except ImportError:  # the tree before issue 11's layout, which bench/compare.py measures too
    from pyvxlan.frame import internet_checksum  # type: ignore[import-not-found,no-redef]

ROOT = Path(__file__).resolve().parent.parent


def best_of(funcs: dict[str, Callable[[], object]], number: int, rounds: int) -> dict[str, float]:
    """Seconds per call of each function: interleaved rounds, the best round of each."""
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, fn in funcs.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number)
    return best


def headers_1024() -> list[bytes]:
    rng = random.Random(7)
    out = []
    for i in range(1024):
        vni = rng.randrange(1 << 24)
        if i % 4 == 3:
            h = VxlanHeader(vni, group_policy=GroupPolicy(rng.randrange(1 << 16), dont_learn=bool(i & 8)))
        else:
            h = VxlanHeader(vni)
        out.append(h.encode())
    assert len(set(out)) == 1024
    return out


def bench_header(rounds: int) -> list[tuple[str, float, str, float, bool]]:
    hs = headers_1024()
    unpack = struct.Struct("!II").unpack_from
    decode = VxlanHeader.decode

    def bare() -> None:
        for b in hs:
            unpack(b, 0)

    def ours() -> None:
        for b in hs:
            decode(b)

    funcs: dict[str, Callable[[], object]] = {"bare": bare, "ours": ours}
    scapy_n = 64
    try:
        from scapy.layers.vxlan import VXLAN

        def scapy() -> None:
            for b in hs[:scapy_n]:
                VXLAN(b)

        funcs["scapy"] = scapy
    except ImportError:
        print("scapy is not installed: the scapy comparison is skipped")
    # Interleaved, same number of rounds for all three: the best round of each is comparable.
    t = best_of(funcs, number=1, rounds=rounds * 4)
    per = {k: v / (scapy_n if k == "scapy" else len(hs)) for k, v in t.items()}
    rows = [("header decode", per["ours"], "struct.unpack_from", per["bare"], per["ours"] / per["bare"] <= 3)]
    if "scapy" in per:  # information only: no goal
        rows.append(("header decode", per["ours"], "scapy VXLAN(bytes)", per["scapy"], True))
    return rows


def icmp_frame(seq: int, src: bytes, dst: bytes, reply: bool = False) -> bytes:
    icmp = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, 0x1234, seq & 0xFFFF) + b"pyvxlan!"
    icmp = icmp[:2] + struct.pack("!H", internet_checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq & 0xFFFF, 0x4000, 64, 1, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    macs = (b"\x02\x00" + dst, b"\x02\x00" + src) if not reply else (b"\x02\x00" + src, b"\x02\x00" + dst)
    return macs[0] + macs[1] + b"\x08\x00" + ip + icmp


def bench_decapsulate(rounds: int) -> list[tuple[str, float, str, float, bool]]:
    import dpkt

    frame = encapsulate(
        icmp_frame(1, bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2])), vni=10, src="198.51.100.1", dst="198.51.100.2"
    )
    assert len(frame) == 100, len(frame)

    def with_dpkt() -> bytes:
        return dpkt.ethernet.Ethernet(frame).data.data.data  # type: ignore[no-any-return]

    assert with_dpkt()[8:] == bytes(decapsulate(frame).inner)  # both reach the same bytes
    t = best_of({"dpkt": with_dpkt, "ours": lambda: decapsulate(frame)}, number=2000, rounds=rounds)
    return [("decapsulate (100 B)", t["ours"], "dpkt to UDP payload", t["dpkt"], t["ours"] / t["dpkt"] <= 0.2)]


def capture_records(n: int) -> Iterator[tuple[float, bytes]]:
    """A day-to-day overlay: 16 hosts on 4 VNIs behind 8 VTEPs (each host behind one VTEP), mostly
    pings, some ARP, UDP and TCP; one frame in 20 crosses an IPv6 underlay (the general path)."""
    rng = random.Random(11)
    hosts = [bytes([203, 0, 113, i]) for i in range(1, 17)]
    vtep_of = {h: f"198.51.100.{1 + h[3] % 8}" for h in hosts}
    base = 1764237600.0
    for i in range(n):
        a = rng.choice(hosts)
        b = rng.choice([h for h in hosts if h[3] % 4 == a[3] % 4 and vtep_of[h] != vtep_of[a]])
        vni = 100 + a[3] % 4
        kind = rng.random()
        if kind < 0.80:
            inner = icmp_frame(i, a, b, reply=bool(i & 1))
        elif kind < 0.85:
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + b"\x02\x00" + a + a + bytes(6) + b
            inner = b"\xff" * 6 + b"\x02\x00" + a + b"\x08\x06" + arp
        else:
            proto = 17 if kind < 0.95 else 6
            l4 = struct.pack("!HH", 40000 + (i % 100), 53 if proto == 17 else 443) + bytes(16)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0x4000, 64, proto, 0, a, b)
            inner = b"\x02\x00" + b + b"\x02\x00" + a + b"\x08\x00" + ip + l4
        src, dst = ("2001:db8::1", "2001:db8::2") if i % 20 == 19 else (vtep_of[a], vtep_of[b])
        yield base + i * 0.0001, encapsulate(inner, vni=vni, src=src, dst=dst)


def run_timed(cmd: list[str], out_path: Path, stdin: Path | None = None) -> float:
    with out_path.open("wb") as out, (stdin or Path(os.devnull)).open("rb") as inp:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdin=inp, stdout=out, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return elapsed


def bench_cli(packets: int) -> list[tuple[str, float, str, float, bool]]:
    pyvxlan_cmd = str(Path(sys.executable).parent / "pyvxlan")
    tools = {name: shutil.which(name) for name in ("tshark", "tcpdump")}
    with tempfile.TemporaryDirectory(prefix="pvxb-bench-") as tmp:
        pcap = Path(tmp) / "bench.pcap"
        t0 = time.perf_counter()
        write(pcap, capture_records(packets))
        print(f"generated {packets} packets ({pcap.stat().st_size >> 20} MiB) in {time.perf_counter() - t0:.1f} s")
        cmds = {
            "pyvxlan": [pyvxlan_cmd, "decode", str(pcap)],
            "pyvxlan-stdin": [pyvxlan_cmd, "decode", "-"],
            "pyvxlan-json": [pyvxlan_cmd, "decode", "--json", str(pcap)],
        }
        if tools["tshark"]:
            cmds["tshark"] = [tools["tshark"], "-r", str(pcap), "-T", "fields", "-e", "vxlan.vni"]
        if tools["tcpdump"]:
            cmds["tcpdump"] = [tools["tcpdump"], "-nr", str(pcap)]
        best = dict.fromkeys(cmds, float("inf"))
        for _ in range(5):
            for name, cmd in cmds.items():
                stdin = pcap if name == "pyvxlan-stdin" else None
                best[name] = min(best[name], run_timed(cmd, Path(tmp) / f"{name}.out", stdin))
        totals = f"{packets} packets: {packets} VXLAN, 0 not VXLAN, 0 malformed"
        for name in ("pyvxlan", "pyvxlan-stdin"):
            lines = (Path(tmp) / f"{name}.out").read_text().splitlines()
            assert len(lines) == packets + 1 and lines[-1] == totals, (name, lines[-1])
        lines = (Path(tmp) / "pyvxlan-json.out").read_text().splitlines()
        assert len(lines) == packets + 1 and json.loads(lines[-1])["totals"]["vxlan"] == packets
    rows = []
    per = {k: v / packets for k, v in best.items()}
    for name, label in (("pyvxlan", "pyvxlan decode"), ("pyvxlan-stdin", "pyvxlan decode - <")):
        if "tshark" in best:
            rows.append((label, per[name], "tshark -T fields", per["tshark"], best["tshark"] / best[name] >= 5))
        if "tcpdump" in best:
            rows.append((label, per[name], "tcpdump -nr", per["tcpdump"], best[name] / best["tcpdump"] <= 3))
    rows.append(
        (
            "pyvxlan decode --json",
            per["pyvxlan-json"],
            "pyvxlan decode (text)",
            per["pyvxlan"],
            best["pyvxlan-json"] / best["pyvxlan"] <= 1.5,
        )
    )
    for tool in ("tshark", "tcpdump"):
        if tool not in best:
            print(f"{tool} is not installed: skipped")
    print(
        f"wall time for {packets} packets: "
        + ", ".join(f"{name} {secs:.2f} s ({packets / secs / 1000:.0f}k packets/s)" for name, secs in best.items())
    )
    return rows


def fmt_time(seconds: float) -> str:
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    return f"{seconds * 1e6:.2f} us"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000, help="packets in the generated capture")
    parser.add_argument("--rounds", type=int, default=25, help="interleaved rounds of each micro-benchmark")
    parser.add_argument("--skip-cli", action="store_true", help="skip (c), the command-line comparison")
    args = parser.parse_args()
    rows = bench_header(args.rounds) + bench_decapsulate(args.rounds)
    if not args.skip_cli:
        rows += bench_cli(args.packets)
    print()
    print(f"{'pyvxlan':<22} {'time':>10}   {'baseline':<22} {'time':>10}   {'ratio':>12}  goal")
    ok = True
    for what, ours, base_name, base, passed in rows:
        ratio = f"{base / ours:.1f}x faster" if base >= ours else f"{ours / base:.2f}x slower"
        goal = {
            "struct.unpack_from": "<= 3x slower",
            "scapy VXLAN(bytes)": "(information)",
            "dpkt to UDP payload": ">= 5x faster",
            "tshark -T fields": ">= 5x faster",
            "tcpdump -nr": "<= 3x slower",
            "pyvxlan decode (text)": "<= 1.5x slower",
        }[base_name]
        verdict = "" if base_name == "scapy VXLAN(bytes)" else (" ok" if passed else " MISSED")
        print(f"{what:<22} {fmt_time(ours):>10}   {base_name:<22} {fmt_time(base):>10}   {ratio:>12}  {goal}{verdict}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
