"""``pyvxlan demo`` and ``pyvxlan run``: exact output where it is stable, and exit statuses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyvxlan.cli import main

DEMO = """\
pyvxlan demo: the classic VXLAN demo, simulated in virtual time (seed 0)
underlay 198.51.100.0/24 (mtu 1500); FDB mode: multicast
host1 (198.51.100.1 on eth0):
  ip link add vxlan10 address 02:9f:c7:6a:99:01 type vxlan id 10 local 198.51.100.1 group 239.1.1.1 dev eth0 dstport 4789 srcport 49152 65535
  ip link add br10 type bridge; ip link set vxlan10 master br10
  ip link set vxlan10 up; ip link set br10 up
  guest1: 02:00:00:00:00:01 203.0.113.1/24, a veth port of br10
host2 (198.51.100.2 on eth0):
  ip link add vxlan10 address 02:8d:72:c5:77:01 type vxlan id 10 local 198.51.100.2 group 239.1.1.1 dev eth0 dstport 4789 srcport 49152 65535
  ip link add br10 type bridge; ip link set vxlan10 master br10
  ip link set vxlan10 up; ip link set br10 up
  guest2: 02:00:00:00:00:02 203.0.113.2/24, a veth port of br10
guest1 pings guest2 (203.0.113.2), 3 echo requests
  3 packets transmitted, 3 received, 0% packet loss, rtt min/avg/max = 2.000/2.667/4.000 ms
host1: bridge fdb show dev vxlan10
  00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent
  02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self
host2: bridge fdb show dev vxlan10
  00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent
  02:00:00:00:00:01 dev vxlan10 dst 198.51.100.1 self
underlay: 8 datagrams (floods: 1, to a multicast group: 1), 8 deliveries, 720 bytes; 2 FDB entries learned
"""

COMPARE = """\
pyvxlan demo --compare: 4 hosts, guest1 pings every other guest 3 times, seed 0
mode        datagrams floods unicast deliveries   bytes learned first reply replies  blackhole  converged
multicast          24      3      21         30    2160       6    4.000 ms     9/9   0.000 ms          -
unicast            30      9      21         30    2628       6    4.000 ms     9/9   0.000 ms          -
controller         18      0      18         18    1692       0    2.000 ms     9/9   0.000 ms          -
evpn               18      0      18         18    1692       0    2.000 ms     9/9  75.000 ms  75.000 ms
"""


def test_demo_prints_the_steps_pings_and_fdbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert capsys.readouterr().out == DEMO


def test_demo_compare(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--compare", "--hosts", "4"]) == 0
    assert capsys.readouterr().out == COMPARE


def test_demo_json_and_pcap(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pcap = tmp_path / "u.pcap"
    assert main(["demo", "--json", "--mode", "controller", "--hosts", "3", "--pcap", str(pcap)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["mode"], data["hosts"], data["backend"]) == (True, "controller", 3, "sim")
    assert [(p["target"], p["result"]["received"]) for p in data["pings"]] == [("guest2", 3), ("guest3", 3)]
    # bridge -j fdb show's objects (docs/quickstart.md), not text lines.
    assert data["fdb"]["host3/vxlan10"] == [
        # used/updated: whole seconds ago, as bridge -j -s fdb show gives them
        {
            "mac": "02:00:00:00:00:01",
            "ifname": "vxlan10",
            "dst": "198.51.100.1",
            "used": 0,
            "updated": 4,
            "flags": ["self"],
            "state": "permanent",
        },
        {
            "mac": "02:00:00:00:00:02",
            "ifname": "vxlan10",
            "dst": "198.51.100.2",
            "used": 4,
            "updated": 4,
            "flags": ["self"],
            "state": "permanent",
        },
    ]
    assert data["stats"]["flood_datagrams"] == 0
    assert pcap.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")


def test_demo_ipv6_unicast(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--ipv6", "--mode", "unicast"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "  bridge fdb append 00:00:00:00:00:00 dev vxlan10 dst 2001:db8::2" in out
    assert "  02:00:00:00:00:02 dev vxlan10 dst 2001:db8::2 self" in out


def test_demo_names_the_kernel_labs_underlay_interface() -> None:
    from pyvxlan.cli.demo import UPLINK
    from pyvxlan.kernel.lab import UPLINK as KERNEL_UPLINK

    assert UPLINK == KERNEL_UPLINK


def test_the_tutorial_shows_the_vxlan_command_the_demo_prints() -> None:
    from pyvxlan.cli.demo import vxlan_command
    from pyvxlan.lab.topology import classic_demo

    page = (Path(__file__).resolve().parents[2] / "docs" / "simulator-tutorial.md").read_text()
    assert vxlan_command(classic_demo(), "host1", 10) + "\n" in page


def _host_commands(out: str, host: str) -> list[str]:
    """The ``ip``/``bridge`` commands the demo prints for ``host``, one per ``;``-separated part."""
    lines = out.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{host} (")))
    commands: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        commands.extend(part.strip() for part in line.split(";") if part.strip().startswith(("ip ", "bridge ")))
    return commands


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("mode", ["multicast", "unicast", "controller"])
def test_the_demos_printed_commands_are_accepted_by_linux(
    capsys: pytest.CaptureFixture[str], mode: str, ipv6: bool
) -> None:
    # Linux refuses a multicast group without ``dev IF``; each printed line must run as typed.
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("bridge") is None:
        pytest.skip("needs root and iproute2 (ip, bridge) to run the printed commands")
    args = ["demo", "--mode", mode, "--hosts", "3"] + (["--ipv6"] if ipv6 else [])
    assert main(args) == 0
    commands = _host_commands(capsys.readouterr().out, "host1")
    assert commands[0].startswith("ip link add vxlan10 address ")
    expected = {"multicast": 5, "unicast": 7, "controller": 9}[mode]
    assert len(commands) == expected
    ns = f"pvxg{os.getpid() % 0xFFFF:04x}"
    address = "2001:db8::1/64" if ipv6 else "198.51.100.1/24"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        setup = [
            # A veth pair stands for the host's uplink (the dummy driver may not be loaded).
            ["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "uplink"],
            ["ip", "-n", ns, "addr", "add", address, "dev", "eth0", *(["nodad"] if ipv6 else [])],
            ["ip", "-n", ns, "link", "set", "uplink", "up"],
            ["ip", "-n", ns, "link", "set", "eth0", "up"],
        ]
        for argv in setup:
            subprocess.run(argv, check=True)
        for command in commands:
            done = subprocess.run(
                ["ip", "netns", "exec", ns, *command.split()], capture_output=True, text=True, check=False
            )
            assert (command, done.returncode, done.stderr) == (command, 0, "")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def test_demo_bad_argument_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--hosts", "0"]) == 2
    assert capsys.readouterr().err == "pyvxlan: error: hosts: the classic demo has 1..250 hosts, got 0\n"


GOOD = """\
[underlay]
subnet = "198.51.100.0/24"

[[hosts]]
name = "host1"
address = "198.51.100.1"
devices = [{ vni = 10, group = "239.1.1.1" }]

[[hosts]]
name = "host2"
address = "198.51.100.2"
devices = [{ vni = 10, group = "239.1.1.1" }]

[[guests]]
name = "a"
host = "host1"
vni = 10
mac = "02:00:00:00:00:01"
ip = "203.0.113.1/24"

[[guests]]
name = "b"
host = "host2"
vni = 10
mac = "02:00:00:00:00:02"
ip = "203.0.113.2/24"

[[steps]]
action = "ping"
from = "a"
to = "b"
count = 2
expect = "all"

[[steps]]
action = "expect-fdb"
host = "host1"
vni = 10
mac = "02:00:00:00:00:02"
dst = "198.51.100.2"

[[steps]]
action = "link-down"
host = "host2"

[[steps]]
action = "ping"
from = "a"
to = "203.0.113.2"
count = 1
expect = "none"
"""


def test_run_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(GOOD)
    assert main(["run", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"pyvxlan run {path}: 2 hosts, 2 guests, mode multicast, 4 steps, backend sim",
        "     1.002s ok     1. ping from=a to=b count=2 expect=all: 2 sent, 2 received, first rtt 4.000 ms (expected all)",
        "     1.002s ok     2. expect-fdb host=host1 vni=10 mac=02:00:00:00:00:02 dst=198.51.100.2: found: 02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self",
        "     1.002s        3. link-down host=host2",
        "     2.002s ok     4. ping from=a to=203.0.113.2 count=1 expect=none: 1 sent, 0 received (expected none)",
        "4 steps, 3 expectations, 0 failed",
    ]


def test_run_failed_expectation_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "fail.toml"
    path.write_text(GOOD.replace('expect = "none"', 'expect = "some"'))
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        out[-2]
        == "     2.002s FAIL   4. ping from=a to=203.0.113.2 count=1 expect=some: 1 sent, 0 received (expected some)"
    )
    assert out[-1] == "4 steps, 3 expectations, 1 failed"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            'action = "link-down"',
            'action = "explode"',
            "step 3.action: must be one of ping, wait, move, link-down, link-up, link, partition, heal, vtep-down, vtep-up, expect-fdb, expect-counter, expect-event, expect-converged, got 'explode'",
        ),
        (
            'host = "host2"\n\n[[steps]]\naction = "ping"',
            'host = "host9"\n\n[[steps]]\naction = "ping"',
            "step 3.host: no host is called 'host9'",
        ),
        ("count = 1", "count = 0", "step 4.count: must be an integer 1..10000, got 0"),
        ('expect = "all"', 'expect = "most"', "step 1.expect: must be one of all, some, none, got 'most'"),
        (
            'dst = "198.51.100.2"',
            'dst = "nowhere"',
            "step 2.dst: 'nowhere' does not appear to be an IPv4 or IPv6 address",
        ),
        (
            'subnet = "198.51.100.0/24"',
            'subnet = "198.51.100.0/33"',
            "underlay.subnet: '198.51.100.0/33' is not an IPv4 or IPv6 network such as 198.51.100.0/24",
        ),
    ],
)
def test_run_bad_file_exits_2_naming_file_key_and_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, error: str
) -> None:
    path = tmp_path / "bad.toml"
    assert old in GOOD
    path.write_text(GOOD.replace(old, new, 1))
    assert main(["run", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"pyvxlan: error: {path}: {error}\n"


def test_the_scenario_in_docs_runs_as_documented(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text()
    toml = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    expected = doc.split("$ pyvxlan run migration.toml\n", 1)[1].split("```", 1)[0].splitlines()
    path = tmp_path / "migration.toml"
    path.write_text(toml)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out.replace(str(path), "migration.toml").splitlines()
    assert out == expected


def test_demo_print_commands_needs_no_root(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(
        "link add vxlan10" in line and "type vxlan id 10" in line and "group 239.1.1.1" in line for line in lines
    )
    assert any("pvx0000-host2" in line and "198.51.100.2" in line for line in lines)


@pytest.mark.parametrize(
    ("dst", "detail"),
    [
        (
            "198.51.100.3",
            "no entry to 198.51.100.3; there is: 02:00:00:00:00:02 dev vxlan10 dst 198.51.100.2 self",
        ),
        (None, "no entry for 02:00:00:00:00:09"),
    ],
)
def test_a_failing_expect_fdb_says_what_is_there(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dst: str | None, detail: str
) -> None:
    """Issue 9 point 4: a MAC that points elsewhere is not "no such entry"."""
    path = tmp_path / "elsewhere.toml"
    if dst is None:
        text = GOOD.replace('mac = "02:00:00:00:00:02"\ndst = "198.51.100.2"', 'mac = "02:00:00:00:00:09"')
        where = "mac=02:00:00:00:00:09"
    else:
        text = GOOD.replace('dst = "198.51.100.2"', f'dst = "{dst}"')
        where = f"mac=02:00:00:00:00:02 dst={dst}"
    assert text != GOOD
    path.write_text(text)
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[2] == f"     1.002s FAIL   2. expect-fdb host=host1 vni=10 {where}: {detail}"
    assert out[-1] == "4 steps, 3 expectations, 1 failed"
