"""``pyvxlan demo --json``'s FDB objects are what ``bridge -j -s fdb show`` prints (issue 13)."""

from __future__ import annotations

import json
import subprocess

import pytest
import trio

from pyvxlan.cli.demo import fdb_object
from pyvxlan.kernel import open_lab
from pyvxlan.lab.topology import FdbMode, classic_demo

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("mode", [FdbMode.MULTICAST, FdbMode.UNICAST])
def test_fdb_objects_match_bridge_json(root: None, mode: FdbMode) -> None:
    """iproute2's print_fdb: the same keys in the same order, a learned entry's state "" and the
    ages in whole seconds (`-s`); bridge without ``dev`` adds ``ifname``, as ours always has."""

    async def main() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        async with open_lab(classic_demo(mode=mode)) as lab:
            result = await lab.guest("guest1").ping("203.0.113.2", count=1)
            assert result.received == 1
            ns = lab.netns("host1")
            now = trio.current_time()
            ours = [fdb_object(e, "vxlan10", now) for e in await lab.vtep("host1", 10).fdb()]
            out = subprocess.run(
                ["bridge", "-n", ns, "-j", "-s", "fdb", "show", "br", "br10"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            # The device's own (self) entries with a remote: those pyvxlan reads.
            theirs = [e for e in json.loads(out) if e.get("ifname") == "vxlan10" and "dst" in e]
            return ours, theirs

    ours, theirs = trio.run(main)
    key = lambda e: (str(e["mac"]), str(e["dst"]))  # noqa: E731
    ours, theirs = sorted(ours, key=key), sorted(theirs, key=key)
    assert [list(e) for e in ours] == [list(e) for e in theirs]  # keys, in iproute2's order
    timeless = [{k: v for k, v in e.items() if k not in ("used", "updated")} for e in theirs]
    assert [{k: v for k, v in e.items() if k not in ("used", "updated")} for e in ours] == timeless
    for a, b in zip(ours, theirs, strict=True):
        for age in ("used", "updated"):
            assert abs(int(str(a[age])) - int(str(b[age]))) <= 1
    assert any(e["state"] == "" for e in theirs)  # the learned entry, as bridge prints it
