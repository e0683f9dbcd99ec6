"""``pyvxlan demo --backend kernel``: the demo the simulator's CLI tests run, in real namespaces."""

from __future__ import annotations

import json

import pytest

from pyvxlan.cli import main

pytestmark = pytest.mark.kernel


def test_demo_on_the_kernel_backend(root: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--backend", "kernel", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["backend"], data["ok"], data["pings"][0]["result"]["received"]) == ("kernel", True, 3)
    fdb = data["fdb"]["host1/vxlan10"]
    # Ages depend on the machine's timing: present, whole seconds, and no more than the run took.
    assert all(type(e["used"]) is int and type(e["updated"]) is int and 0 <= e["updated"] < 30 for e in fdb)
    timeless = [{k: v for k, v in e.items() if k not in ("used", "updated")} for e in fdb]
    assert sorted(timeless, key=lambda e: str(e["mac"])) == [
        {
            "mac": "00:00:00:00:00:00",
            "ifname": "vxlan10",
            "dst": "239.1.1.1",
            "viaIf": "eth0",
            "flags": ["self"],
            "state": "permanent",
        },
        {"mac": "02:00:00:00:00:02", "ifname": "vxlan10", "dst": "198.51.100.2", "flags": ["self"], "state": ""},
    ]
