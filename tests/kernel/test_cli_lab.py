"""``pyvxlan lab cleanup`` and the kernel backend of ``pyvxlan demo``."""

from __future__ import annotations

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
