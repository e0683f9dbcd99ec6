"""``pyvxlan.sim.open_vtep``: one simulated device for any VtepConfig the topology can express."""

from __future__ import annotations

import pytest

from pyvxlan import VtepConfig
from pyvxlan.errors import ConfigError
from pyvxlan.sim import open_vtep, run

CONFIGS = [
    VtepConfig(vni=10, local="198.51.100.1", remote="198.51.100.2", tos="inherit", ttl=5),
    VtepConfig(vni=10, local="2001:db8::1", group="ff05::100", udp6_zero_csum_rx=True, gbp=True),
    VtepConfig(vni=20, local="198.51.100.1", group="239.1.1.1", mac="02:00:00:00:00:aa", learning=False),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_the_device_has_the_config_it_was_opened_with_and_is_down(config: VtepConfig) -> None:
    async def main() -> tuple[bool, bool]:
        async with open_vtep(config) as vtep:
            return vtep.config == config, await vtep.is_up()

    assert run(main) == (True, False)


def test_an_underlay_interface_cannot_be_expressed() -> None:
    async def main() -> None:
        async with open_vtep(VtepConfig(vni=10, local="198.51.100.1", dev="eth0")):
            pass

    with pytest.raises(ConfigError, match=r"^dev: a simulated host has one underlay interface"):
        run(main)


def test_a_device_needs_its_hosts_address() -> None:
    async def main() -> None:
        async with open_vtep(VtepConfig(vni=10)):
            pass

    with pytest.raises(ConfigError, match=r"^local: a simulated device needs its host's underlay address$"):
        run(main)
