"""``pyvxlan replay`` against ``pyvxlan decode`` on the same capture, measured in the same run.

Usage: ``python bench/replay.py [PACKETS]`` (default 1,000,000). The capture is bench/codec.py's
day-to-day overlay (16 hosts on 4 VNIs behind 8 VTEPs, one frame in 20 over an IPv6 underlay).
Both commands run as the installed ``pyvxlan`` with their output to a file, best of three; the
goal is replay under 2x decode. Peak RSS (the children's ``ru_maxrss``) is measured for the full
size and a tenth of it: replay's memory is bounded by VTEPs and MACs, not packets, so the two
should be close.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from codec import capture_records

from pyvxlan.pcap import write

ROUNDS = 3


def timed(cmd: list[str], out_path: Path) -> tuple[float, int]:
    """Wall time of ``cmd`` and its peak RSS in KiB (run in a child of its own to measure it)."""
    probe = (
        "import resource, subprocess, sys, time;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'wb'), stderr=subprocess.PIPE);"
        "e = time.perf_counter() - t;"
        "sys.exit(p.stderr.decode() or p.returncode) if p.returncode else None;"
        "print(e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(out_path), *cmd], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    elapsed, rss = proc.stdout.split()
    return float(elapsed), int(rss)


def measure(packets: int, tmp: Path) -> dict[str, tuple[float, int]]:
    pcap = tmp / f"bench-{packets}.pcap"
    t0 = time.perf_counter()
    write(pcap, capture_records(packets))
    print(f"generated {packets} packets ({pcap.stat().st_size >> 20} MiB) in {time.perf_counter() - t0:.1f} s")
    exe = str(Path(sys.executable).parent / "pyvxlan")
    cmds = {"decode": [exe, "decode", str(pcap)], "replay": [exe, "replay", str(pcap)]}
    best = {name: (float("inf"), 0) for name in cmds}
    for _ in range(ROUNDS):
        for name, cmd in cmds.items():
            elapsed, rss = timed(cmd, tmp / f"{name}.out")
            best[name] = (min(best[name][0], elapsed), max(best[name][1], rss))
    tail = (tmp / "replay.out").read_text().splitlines()[-1]
    assert tail.startswith(f"# {packets} packets, "), tail
    pcap.unlink()
    return best


def main() -> None:
    packets = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="pvxb-replay-") as tmp:
        small = measure(max(1, packets // 10), Path(tmp))
        full = measure(packets, Path(tmp))
    for size, best in ((packets // 10, small), (packets, full)):
        (d, d_rss), (r, r_rss) = best["decode"], best["replay"]
        print(
            f"{size:>9} packets: decode {d:.2f} s ({size / d / 1000:.0f}k/s), replay {r:.2f} s "
            f"({size / r / 1000:.0f}k/s), replay/decode {r / d:.2f}x (goal < 2x); "
            f"peak RSS decode {d_rss >> 10} MiB, replay {r_rss >> 10} MiB"
        )
    ok = full["replay"][0] / full["decode"][0] < 2
    print("replay/decode:", "ok" if ok else "OVER the 2x goal")


if __name__ == "__main__":
    main()
