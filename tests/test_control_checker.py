"""The conformance checker against the in-memory backend, and against broken backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from pyvxlan import FdbEntryExists, FdbState, Vtep, VtepConfig, VtepControl
from pyvxlan.memory import MemoryVtep
from pyvxlan.testing import OpenVtep, check_vtep_control


@asynccontextmanager
async def open_memory_vtep(config: VtepConfig) -> AsyncIterator[VtepControl]:
    yield MemoryVtep(Vtep(config))


def test_memory_vtep_is_a_vtep_control() -> None:
    control: VtepControl = MemoryVtep(Vtep(VtepConfig(vni=1)))  # mypy checks the Protocol here
    assert isinstance(control, VtepControl)


def test_memory_vtep_passes_the_checker() -> None:
    trio.run(check_vtep_control, open_memory_vtep)


class AppendsToUnicast(MemoryVtep):
    """Broken: a second remote on a unicast MAC (Linux ignores the append)."""

    async def fdb_append(self, mac: str, dst: str, *, port: int | None = None, vni: int | None = None) -> None:
        fdb = self.vtep.fdb
        if mac in fdb and not int(mac[:2], 16) & 1 and mac != "00:00:00:00:00:00":
            rec = fdb._records[bytes.fromhex(mac.replace(":", ""))]
            rec.remotes = (*rec.remotes, fdb._remote(dst, port, vni))
            return
        await super().fdb_append(mac, dst, port=port, vni=vni)


class DeleteIgnoresPort(MemoryVtep):
    """Broken: ``fdb_del`` with a dst removes a remote with that address whatever its port and VNI."""

    async def fdb_del(
        self, mac: str, dst: str | None = None, *, port: int | None = None, vni: int | None = None
    ) -> None:
        for e in self.vtep.fdb.get(mac):
            if dst is not None and e.dst == dst:
                port, vni = e.port, e.vni
                break
        await super().fdb_del(mac, dst, port=port, vni=vni)


class AddOverwrites(MemoryVtep):
    """Broken: ``fdb_add`` of an existing MAC replaces it instead of raising FdbEntryExists."""

    async def fdb_add(
        self,
        mac: str,
        dst: str,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
    ) -> None:
        try:
            await super().fdb_add(mac, dst, port=port, vni=vni, state=state, extern_learn=extern_learn)
        except FdbEntryExists:
            await super().fdb_replace(mac, dst, port=port, vni=vni, state=state)


class KeepsDynamicOnDown(MemoryVtep):
    """Broken: ``down`` keeps learned and dynamic entries."""

    async def down(self) -> None:
        saved = self.vtep.fdb.dump()
        await super().down()
        for e in saved:
            if e not in self.vtep.fdb.dump():
                self.vtep.fdb.append(e.mac, e.dst, port=e.port, vni=e.vni, state=e.state)


class AgeingZeroIsZero(MemoryVtep):
    """Broken: ``set_ageing(0)`` is ignored."""

    async def set_ageing(self, seconds: float) -> None:
        if seconds:
            await super().set_ageing(seconds)


def broken_opener(cls: type[MemoryVtep]) -> OpenVtep:
    @asynccontextmanager
    async def open_broken(config: VtepConfig) -> AsyncIterator[VtepControl]:
        yield cls(Vtep(config))

    return open_broken


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (AppendsToUnicast, "fdb_append to an existing unicast MAC is a no-op; a multicast MAC takes several remotes"),
        (DeleteIgnoresPort, "fdb_del with a dst, port or VNI that matches no remote is a no-op"),
        (AddOverwrites, "fdb_add of an existing MAC raises FdbEntryExists: did not raise FdbEntryExists"),
        (KeepsDynamicOnDown, "down flushes every entry but permanent and static ones"),
        (AgeingZeroIsZero, "ageing 0 means 300, as Linux: config.ageing is 20"),
    ],
)
def test_checker_fails_a_broken_backend(cls: type[MemoryVtep], message: str) -> None:
    opener = broken_opener(cls)
    with pytest.raises(AssertionError) as info:
        trio.run(check_vtep_control, opener)
    assert str(info.value).startswith(message)
