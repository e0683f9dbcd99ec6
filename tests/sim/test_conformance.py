"""The simulated VTEP (``lab.vtep(...)``) passes the same conformance checker as the kernel's.

The simulator is also held against the kernel itself, step by step on the same random control
sequences: tests/kernel/test_checker.py (it needs root) imports :func:`open_sim_vtep` from here.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pyvxlan import VtepConfig, VtepControl
from pyvxlan.addr import ip_info
from pyvxlan.sim import open_lab, run
from pyvxlan.testing import check_vtep_control
from pyvxlan.topology import FdbMode, Host, Topology, Underlay, VxlanDevice, classic_demo


@asynccontextmanager
async def open_sim_vtep(config: VtepConfig) -> AsyncIterator[VtepControl]:
    """A one-host lab whose only device has ``config``; down, as ``ip link add`` leaves it."""
    assert config.local is not None
    subnet = "198.51.100.0/24" if ip_info(config.local).version == 4 else "2001:db8::/64"
    device = VxlanDevice(
        config.vni,
        name=config.name,
        group=config.group,
        remote=config.remote,
        dst_port=config.dst_port,
        src_port_range=config.src_port_range,
        ttl=config.ttl,
        learning=config.learning,
        ageing=config.ageing,
        max_entries=config.max_entries,
        proxy=config.proxy,
        l2miss=config.l2miss,
        l3miss=config.l3miss,
        gbp=config.gbp,
        mac=config.mac,
    )
    mode = FdbMode.MULTICAST if config.default_remote is not None else FdbMode.UNICAST
    topology = Topology(Underlay(subnet), (Host("h1", config.local, (device,)),), (), mode)
    async with open_lab(topology) as lab:
        vtep = lab.vtep("h1", config.vni)
        assert vtep.config == config
        await vtep.down()
        yield vtep


def test_simulated_vtep_passes_check_vtep_control() -> None:
    # dev=None: a simulated host has no named underlay interface to make a device with ``dev``.
    run(functools.partial(check_vtep_control, dev=None), open_sim_vtep)


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
