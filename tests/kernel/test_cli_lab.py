"""``pyvxlan lab cleanup`` and the kernel backend of ``pyvxlan demo``."""

from __future__ import annotations

import re

import pytest

from pyvxlan.cli import main
from pyvxlan.kernel import netlink as nl

pytestmark = pytest.mark.kernel


def test_cleanup_removes_lab_leftovers_by_prefix_and_nothing_else(
    root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    made = ["pvx0b01-host1", "pvx0b01-underlay", "pvx0b02-guest1", "pvxk0b03", "pvxzzzz-host1"]
    for ns in made:
        nl.netns_create(ns)
    try:
        assert main(["lab", "cleanup", "--prefix", "pvx0b01"]) == 0
        assert capsys.readouterr().out == "removed namespace pvx0b01-host1\nremoved namespace pvx0b01-underlay\n"
        assert [ns for ns in made if nl.netns_exists(ns)] == ["pvx0b02-guest1", "pvxk0b03", "pvxzzzz-host1"]
        assert main(["lab", "cleanup", "--prefix", "pvx0b01"]) == 0
        assert capsys.readouterr().out == "nothing to remove\n"
    finally:
        for ns in made:
            nl.netns_remove(ns)


def test_cleanup_refuses_what_is_not_a_lab_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "cleanup", "--prefix", "pvxk"]) == 2
    assert capsys.readouterr().err == (
        "pyvxlan: error: prefix: 'pvxk' is not a lab prefix (pvx and four lowercase hex digits, e.g. pvx1a2b)\n"
    )


def test_cleanup_without_privilege_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nl.os, "geteuid", lambda: 1000)  # type: ignore[attr-defined]
    monkeypatch.setattr(nl, "_has_cap_net_admin", lambda status_path="": False)
    assert main(["lab", "cleanup"]) == 2
    assert capsys.readouterr().err == "pyvxlan: error: root or CAP_NET_ADMIN is needed to remove lab namespaces\n"


def test_demo_on_the_kernel_without_privilege_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(nl.os, "geteuid", lambda: 1000)  # type: ignore[attr-defined]
    monkeypatch.setattr(nl, "_has_cap_net_admin", lambda status_path="": False)
    assert main(["demo", "--backend", "kernel"]) == 2
    assert (
        capsys.readouterr().err
        == "pyvxlan: error: root or CAP_NET_ADMIN is needed to build a lab in network namespaces\n"
    )


@pytest.mark.parametrize("mode", ["multicast", "unicast", "controller"])
def test_demo_runs_on_the_kernel(root: None, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "kernel", "--mode", mode]) == 0
    out = capsys.readouterr().out
    assert "3 packets transmitted, 3 received, 0% packet loss" in out
    assert "  02:00:00:00:00:01 dev vxlan10 dst 198.51.100.1 self" in out


def test_print_commands_prints_the_lab_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ip netns add pvx0000-underlay"
    assert lines[-1] == "ip netns del pvx0000-underlay"


SCENARIO = """
mode = "multicast"
underlay = { subnet = "198.51.100.0/24" }

[[hosts]]
name = "host1"
address = "198.51.100.1"
devices = [{ vni = 10, group = "239.1.1.1" }]

[[hosts]]
name = "host2"
address = "198.51.100.2"
devices = [{ vni = 10, group = "239.1.1.1" }]

[[hosts]]
name = "host3"
address = "198.51.100.3"
devices = [{ vni = 10, group = "239.1.1.1" }]

[[guests]]
name = "guest1"
host = "host1"
vni = 10
mac = "02:00:00:00:00:01"
ip = "203.0.113.1/24"

[[guests]]
name = "guest2"
host = "host2"
vni = 10
mac = "02:00:00:00:00:02"
ip = "203.0.113.2/24"

[[guests]]
name = "guest3"
host = "host3"
vni = 10
mac = "02:00:00:00:00:03"
ip = "203.0.113.3/24"

[[steps]]
action = "ping"
from = "guest1"
to = "guest2"
count = 1
expect = "all"

[[steps]]
action = "expect-fdb"
host = "host2"
vni = 10
mac = "02:00:00:00:00:01"
dst = "198.51.100.1"

[[steps]]
action = "partition"
sides = [["host1"]]

[[steps]]
action = "ping"
from = "guest1"
to = "guest3"
count = 1
timeout = 0.3
expect = "none"

[[steps]]
action = "heal"

[[steps]]
action = "move"
guest = "guest1"
to = "host3"

[[steps]]
action = "wait"
seconds = 0.1

[[steps]]
action = "ping"
from = "guest2"
to = "guest1"
count = 1
timeout = 2.0
expect = "all"

[[steps]]
action = "expect-fdb"
host = "host2"
vni = 10
mac = "02:00:00:00:00:01"
dst = "198.51.100.3"

[[steps]]
action = "vtep-down"
host = "host3"
vni = 10

[[steps]]
action = "ping"
from = "guest2"
to = "guest1"
count = 1
timeout = 0.3
expect = "none"

[[steps]]
action = "vtep-up"
host = "host3"
vni = 10

[[steps]]
action = "link-down"
host = "host2"

[[steps]]
action = "link-up"
host = "host2"
"""


def test_a_scenario_runs_on_the_kernel_as_on_the_simulator(
    root: None, tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scenario.toml"  # type: ignore[operator]
    path.write_text(SCENARIO)
    assert main(["run", str(path), "--backend", "sim"]) == 0
    sim_out = capsys.readouterr().out
    assert main(["run", str(path), "--backend", "kernel"]) == 0
    kernel_out = capsys.readouterr().out
    assert kernel_out.splitlines()[-1] == sim_out.splitlines()[-1] == "14 steps, 6 expectations, 0 failed"

    # the same lines, step by step, but for the times and round trips
    def shape(out: str) -> list[str]:
        return [re.sub(r"^ *[0-9.]+s|, first rtt [0-9.]+ ms", "", line) for line in out.splitlines()[1:]]

    assert shape(kernel_out) == shape(sim_out)


def test_cleanup_removes_prefixed_links_in_the_initial_namespace(
    root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    subprocess.run(["ip", "link", "add", "pvx0b04a", "type", "veth", "peer", "name", "pvx0b04b"], check=True)
    try:
        assert main(["lab", "cleanup", "--prefix", "pvx0b04"]) == 0
        # deleting one end of a veth pair deletes the other
        assert capsys.readouterr().out in ("removed link pvx0b04a\n", "removed link pvx0b04b\n")
        rtnl = nl.Rtnl(None)
        assert (rtnl.index("pvx0b04a"), rtnl.index("pvx0b04b")) == (None, None)
        rtnl.close()
    finally:
        subprocess.run(["ip", "link", "del", "pvx0b04a"], capture_output=True, check=False)
