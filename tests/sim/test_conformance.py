"""The simulated VTEP (``lab.vtep(...)``) passes the same conformance checker as the kernel's.

The simulator is also held against the kernel itself, step by step on the same random control
sequences: tests/kernel/test_checker.py (it needs root), through :func:`pyvxlan.sim.open_vtep`.
"""

from __future__ import annotations

import functools

from pyvxlan.lab.topology import classic_demo
from pyvxlan.sim import open_lab, open_vtep, run
from pyvxlan.testing import check_vtep_control


def test_simulated_vtep_passes_check_vtep_control() -> None:
    # dev=None: a simulated host has no named underlay interface to make a device with ``dev``.
    run(functools.partial(check_vtep_control, dev=None), open_vtep)


def test_set_remote_on_a_running_simulated_vtep_moves_its_group_membership() -> None:
    """vxlan_changelink on a running device leaves the old group and joins the new one: the
    simulated underlay's membership follows, as /proc/net/igmp does on Linux
    (tests/kernel/test_vtep.py::test_set_remote_swaps_the_group_joined_vxlan_changelink)."""

    async def main() -> None:
        async with open_lab(classic_demo(2)) as lab:
            vtep = lab.vtep("host1", 10)
            address = lab.topology.host("host1").address
            assert address in lab.underlay.members("239.1.1.1")
            await vtep.set_remote("239.1.1.2", dev="ul0")
            assert address not in lab.underlay.members("239.1.1.1")
            assert address in lab.underlay.members("239.1.1.2")
            assert [(e.mac, e.dst, e.interface) for e in await vtep.fdb()] == [
                ("00:00:00:00:00:00", "239.1.1.2", "ul0")
            ]
            await vtep.set_remote("198.51.100.9")
            assert address not in lab.underlay.members("239.1.1.2")

    run(main)
