"""``pyvxlan decode -i IFACE``: a live capture of what a real Linux vxlan device sends (issue 13).

A namespace holds a vxlan device over one end of a veth pair; pings to a static overlay neighbour
leave it as VXLAN datagrams, and the decoder captures them on the other end with its own packet
socket. Streaming from ``tcpdump -U -w -`` is checked here too.
"""

from __future__ import annotations

import json
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

from pyvxlan.kernel import netlink as nl

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
