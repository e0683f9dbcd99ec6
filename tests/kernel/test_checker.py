"""``check_vtep_control`` against real vxlan devices: the same expectations as the simulated VTEP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from pyvxlan import VtepConfig, VtepControl
from pyvxlan.kernel import KernelVtep, open_vtep
from pyvxlan.testing import check_vtep_control

pytestmark = pytest.mark.kernel


def test_kernel_vtep_is_a_vtep_control(netns: str) -> None:
    async def main() -> None:
        async with open_vtep(VtepConfig(vni=7, local="198.51.100.1"), netns=netns) as vtep:
            control: VtepControl = vtep  # mypy checks the Protocol here
            assert isinstance(control, VtepControl)
            assert isinstance(vtep, KernelVtep)

    trio.run(main)


def test_kernel_vtep_passes_the_checker(netns: str) -> None:
    @asynccontextmanager
    async def opener(config: VtepConfig) -> AsyncIterator[VtepControl]:
        async with open_vtep(config, netns=netns) as vtep:
            yield vtep

    trio.run(check_vtep_control, opener)
