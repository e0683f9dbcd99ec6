"""``pyvxlan decode -i IFACE``: a live capture of what a real Linux vxlan device sends (issue 13).

A namespace holds a vxlan device over one end of a veth pair; pings to a static overlay neighbour
leave it as VXLAN datagrams, and the decoder captures them on the other end with its own packet
socket. Streaming from ``tcpdump -U -w -`` is checked here too.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from pyvxlan.cli.decode import run
from pyvxlan.errors import DecodeError
from pyvxlan.kernel import netlink as nl
from pyvxlan.wire.pcap import raw_records, read

pytestmark = pytest.mark.kernel

PYVXLAN = str(Path(sys.executable).parent / "pyvxlan")
LINE = re.compile(
    r"\d\d:\d\d:\d\d\.\d{6} 198\.51\.100\.1:\d+ > 198\.51\.100\.2:4789 VXLAN vni 10 flags \[I\]: "
    r"02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4 203\.0\.113\.1 > 203\.0\.113\.2 ICMP echo request id \d+ seq \d+"
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def sender(root: None) -> Iterator[str]:
    """A namespace pvh10<hex>: vxlan device pvh10vx (VNI 10, 198.51.100.1 to 198.51.100.2:4789)
    over veth pvh10u0, whose peer pvh10u1 is where the decoder listens."""
    ns = "pvh10" + secrets.token_hex(2)
    nl.netns_create(ns)
    try:
        _ip("-n", ns, "link", "add", "pvh10u0", "type", "veth", "peer", "name", "pvh10u1")
        for dev in ("lo", "pvh10u0", "pvh10u1"):
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", ns, "addr", "add", "198.51.100.1/24", "dev", "pvh10u0")
        _ip("-n", ns, "neigh", "add", "198.51.100.2", "lladdr", "02:00:c6:33:64:02", "dev", "pvh10u0")
        _ip("-n", ns, "link", "add", "pvh10vx", "type", "vxlan", "id", "10", "local", "198.51.100.1",
            "dstport", "4789", "dev", "pvh10u0", "nolearning")  # fmt: skip
        _ip("-n", ns, "link", "set", "pvh10vx", "address", "02:00:00:00:00:01", "up")
        _ip("-n", ns, "addr", "add", "203.0.113.1/24", "dev", "pvh10vx")
        _ip("-n", ns, "neigh", "add", "203.0.113.2", "lladdr", "02:00:00:00:00:02", "dev", "pvh10vx")
        subprocess.run(["bridge", "-n", ns, "fdb", "add", "02:00:00:00:00:02", "dev", "pvh10vx",
                        "dst", "198.51.100.2"], check=True, capture_output=True)  # fmt: skip
        yield ns
    finally:
        nl.netns_remove(ns)


def _ping(ns: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "203.0.113.2"],
                   check=False, capture_output=True)  # fmt: skip


def _ping_until_exit(ns: str, proc: subprocess.Popen[str], seconds: float = 30) -> None:
    """Ping until ``proc`` ends: the first pings may leave before its socket is bound."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        _ping(ns)
        time.sleep(0.1)


def _line_within(stream: IO[str], ns: str, seconds: float = 30) -> str:
    """Ping until a line can be read from ``stream``; that line ("" when none came)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _ping(ns)
        if select.select([stream], [], [], 0.3)[0]:
            return stream.readline()
    return ""


def test_live_capture_prints_what_the_kernel_sends(sender: str) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", sender, PYVXLAN, "decode", "-i", "pvh10u1", "-c", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _ping_until_exit(sender, proc)
    out, err = proc.communicate(timeout=30)
    lines = out.splitlines()
    assert (proc.returncode, err, len(lines)) == (0, "", 4), out
    assert all(LINE.fullmatch(line) for line in lines[:3]), lines
    assert re.fullmatch(r"\d+ packets: 3 VXLAN, \d+ not VXLAN, 0 malformed, 3 shown", lines[3]), lines[3]


def test_live_capture_verbose_reads_the_kernels_outer_headers(sender: str) -> None:
    """-v shows the device's ttl and tos, no DF (Linux's df unset), no checksum with noudpcsum,
    and the inner lengths (a 64-byte ping: 84 bytes of IP in a 98-byte frame)."""
    _ip("-n", sender, "link", "set", "pvh10vx", "down")
    _ip("-n", sender, "link", "del", "pvh10vx")
    _ip("-n", sender, "link", "add", "pvh10vx", "type", "vxlan", "id", "10", "local", "198.51.100.1",
        "dstport", "4789", "dev", "pvh10u0", "nolearning", "noudpcsum", "tos", "0xb8", "ttl", "9")  # fmt: skip
    _ip("-n", sender, "link", "set", "pvh10vx", "address", "02:00:00:00:00:01", "up")
    _ip("-n", sender, "addr", "add", "203.0.113.1/24", "dev", "pvh10vx")
    _ip("-n", sender, "neigh", "add", "203.0.113.2", "lladdr", "02:00:00:00:00:02", "dev", "pvh10vx")
    subprocess.run(["bridge", "-n", sender, "fdb", "add", "02:00:00:00:00:02", "dev", "pvh10vx",
                    "dst", "198.51.100.2"], check=True, capture_output=True)  # fmt: skip
    proc = subprocess.Popen(
        ["ip", "netns", "exec", sender, PYVXLAN, "decode", "-i", "pvh10u1", "-c", "1", "-v", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _ping_until_exit(sender, proc)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (0, "")
    obj = json.loads(out.splitlines()[0])
    assert (obj["ttl"], obj["tos"], obj["df"], obj["udp_checksum"], obj["inner_length"], obj["inner_ip_length"]) == (
        9,
        0xB8,
        False,
        "none",
        98,
        84,
    )


def test_ctrl_c_ends_a_live_capture_with_the_totals(sender: str) -> None:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", sender, PYVXLAN, "decode", "-i", "pvh10u1", "--vni", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        first = _line_within(proc.stdout, sender)
        assert LINE.fullmatch(first.rstrip("\n")), first
    finally:
        proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (0, "")
    assert re.fullmatch(r"\d+ packets: (\d+) VXLAN, \d+ not VXLAN, 0 malformed, \1 shown", rest.splitlines()[-1])


def test_a_missing_interface_is_one_line(sender: str) -> None:
    proc = subprocess.run(["ip", "netns", "exec", sender, PYVXLAN, "decode", "-i", "pvh10nosuch"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", "pyvxlan: error: pvh10nosuch: no such interface\n")


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_tcpdump_into_decode_streams_each_packet(sender: str) -> None:
    """`tcpdump -U -w - | pyvxlan decode -`: a packet is printed while tcpdump still runs."""
    tcpdump = subprocess.Popen(
        ["ip", "netns", "exec", sender, "tcpdump", "-U", "-w", "-", "-i", "pvh10u1", "udp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    decode = subprocess.Popen([PYVXLAN, "decode", "-"], stdin=tcpdump.stdout, stdout=subprocess.PIPE, text=True)
    assert tcpdump.stdout is not None and decode.stdout is not None
    tcpdump.stdout.close()  # decode holds the pipe now
    try:
        first = _line_within(decode.stdout, sender)
        assert LINE.fullmatch(first.rstrip("\n")), first
        assert tcpdump.poll() is None  # still capturing: the line came through the pipe as it arrived
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=30)
    rest = decode.communicate(timeout=30)[0]
    assert decode.returncode == 0
    assert re.fullmatch(r"\d+ packets: \d+ VXLAN, 0 not VXLAN, 0 malformed", rest.splitlines()[-1])


# --- a real capture: Linux sends two VNIs on one outer flow ---------------------------------------


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _records_in(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in raw_records(f))
    except (OSError, DecodeError):  # not written yet, or cut in the middle of a record
        return 0


@pytest.fixture
def two_vnis_one_flow(tmp_path: Path) -> Iterator[Path]:
    """A capture of two Linux vxlan devices (VNI 10 and 20) between two namespaces over IPv6, both
    with `srcport 5000 5001`: Linux then sends every packet from port 5000 (it never uses the
    range's last port), so both VNIs share one outer flow and take the general path."""
    if os.geteuid() != 0 or shutil.which("tcpdump") is None:
        pytest.skip("needs root (network namespaces, vxlan devices) and tcpdump")
    tag = f"pvxd{os.getpid() % 10000}"
    ns = [f"{tag}a", f"{tag}b"]
    for name in ns:
        _sh("ip", "netns", "add", name)
    tcpdump = None
    try:
        _sh("ip", "link", "add", f"{tag}va", "netns", ns[0], "type", "veth", "peer", "name", f"{tag}vb", "netns", ns[1])
        for me, (name, veth) in enumerate(zip(ns, (f"{tag}va", f"{tag}vb"), strict=True), start=1):
            peer = 3 - me
            _sh("ip", "-n", name, "link", "set", "lo", "up")
            _sh("ip", "-n", name, "addr", "add", f"2001:db8::{me}/64", "dev", veth, "nodad")
            _sh("ip", "-n", name, "link", "set", veth, "up")
            for vni, subnet in ((10, "203.0.113"), (20, "192.0.2")):
                dev = f"{tag}x{vni}"
                vxlan = ["id", str(vni), "local", f"2001:db8::{me}", "remote", f"2001:db8::{peer}", "dstport", "4789"]
                _sh("ip", "-n", name, "link", "add", dev, "type", "vxlan", *vxlan, "srcport", "5000", "5001")
                _sh("ip", "-n", name, "addr", "add", f"{subnet}.{me}/24", "dev", dev)
                _sh("ip", "-n", name, "link", "set", dev, "up")
        path = tmp_path / "live.pcap"
        cmd = ["ip", "netns", "exec", ns[0], "tcpdump", "-i", f"{tag}va", "--immediate-mode", "-U", "-w", str(path)]
        cmd += ["udp", "port", "4789"]
        tcpdump = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert tcpdump.stderr is not None
        seen = ""
        while "listening on" not in seen:  # tcpdump says so once it is capturing
            line = tcpdump.stderr.readline()
            assert line, f"tcpdump exited: {seen}"
            seen += line
        for _ in range(3):
            for dst in ("203.0.113.2", "192.0.2.2"):
                subprocess.run(
                    ["ip", "netns", "exec", ns[0], "ping", "-c1", "-W2", dst], check=True, capture_output=True
                )
        deadline = time.monotonic() + 20
        while _records_in(path) < 12 and time.monotonic() < deadline:  # the last replies may lag
            time.sleep(0.05)
        tcpdump.terminate()
        tcpdump.wait(timeout=30)
        yield path
    finally:
        if tcpdump is not None and tcpdump.poll() is None:
            tcpdump.kill()
            tcpdump.wait()
        for name in ns:
            subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_linux_capture_of_two_vnis_on_one_flow_prints_each_packets_vni(two_vnis_one_flow: Path) -> None:
    """Issue 9.1 on a real capture (Linux 6.18): before the fix, half of these lines showed the
    other device's VNI. Each line's VNI is the one pcap.read decodes from that packet."""
    out = io.StringIO()
    stats = run(str(two_vnis_one_flow), out)
    lines = out.getvalue().splitlines()[:-1]
    packets = [(d.src_port, d.header.vni) for _ts, d in read(two_vnis_one_flow)]
    assert len(lines) == len(packets) == stats.vxlan >= 12  # 6 echo requests and their replies, ND too
    assert {sport for sport, _ in packets} == {5000}
    assert {vni for _, vni in packets} == {10, 20}
    printed = [int(line.split(" VXLAN vni ", 1)[1].split(" ", 1)[0]) for line in lines]
    assert printed == [vni for _, vni in packets]
