"""``open_vtep``: one simulated device for a ``VtepConfig``, as ``pyvxlan.kernel.open_vtep`` makes a real one.

The three drivers open a device the same way (``pyvxlan.sim``, ``pyvxlan.kernel``, ``pyvxlan.udp``),
so a test or a conformance run holds any of them to the same calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from pyvxlan.core.config import VtepConfig
from pyvxlan.errors import ConfigError
from pyvxlan.lab.topology import FdbMode, Host, Topology, Underlay, VxlanDevice
from pyvxlan.sim.lab import SimVtep, open_lab
from pyvxlan.wire.addr import ip_info

__all__ = ["open_vtep"]


@asynccontextmanager
async def open_vtep(config: VtepConfig, *, up: bool = False) -> AsyncIterator[SimVtep]:
    """A one-host lab whose only device has ``config``; down, as ``ip link add`` leaves it, unless ``up``.

    ``config.local`` is required: it is the host's underlay address. Run it under
    :func:`pyvxlan.sim.run` (virtual time).

    >>> from pyvxlan.sim import run
    >>> async def main() -> list[str]:
    ...     async with open_vtep(VtepConfig(vni=10, local="198.51.100.1", remote="198.51.100.2")) as vtep:
    ...         return [e.dst for e in await vtep.fdb()]
    >>> run(main)
    ['198.51.100.2']
    """
    if config.local is None:
        raise ConfigError("local", "a simulated device needs its host's underlay address")
    subnet = "198.51.100.0/24" if ip_info(config.local).version == 4 else "2001:db8::/64"
    if config.dev is not None:
        raise ConfigError("dev", "a simulated host has one underlay interface: the simulator cannot express dev")
    # The host gives the device its address; every other setting is the device's own.
    device = VxlanDevice(replace(config, local=None))
    mode = FdbMode.MULTICAST if config.default_remote is not None else FdbMode.UNICAST
    topology = Topology(Underlay(subnet), (Host("h1", config.local, (device,)),), (), mode)
    async with open_lab(topology) as lab:
        vtep = lab.vtep("h1", config.vni)
        if vtep.config != config:
            # The topology makes each host's device from its settings as a mode does: refuse a
            # config it would make differently rather than simulate another device.
            differ = sorted(f for f in VtepConfig.__dataclass_fields__ if getattr(vtep.config, f) != getattr(config, f))
            raise ConfigError(differ[0], "the simulator's topology cannot express this setting yet")
        if not up:
            await vtep.down()
        yield vtep
