"""The conformance checker against the in-memory backend, and against broken backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from pyvxlan import (
    ConfigError,
    FdbEntry,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbOperationNotSupported,
    FdbState,
    Vtep,
    VtepConfig,
    VtepControl,
)
from pyvxlan.sim.memory import MemoryVtep
from pyvxlan.testing import OpenVtep, check_vtep_control

ZERO = "00:00:00:00:00:00"


@asynccontextmanager
async def open_memory_vtep(config: VtepConfig) -> AsyncIterator[VtepControl]:
    yield MemoryVtep(Vtep(config))


def test_memory_vtep_is_a_vtep_control() -> None:
    control: VtepControl = MemoryVtep(Vtep(VtepConfig(vni=1)))  # mypy checks the Protocol here
    assert isinstance(control, VtepControl)


def test_memory_vtep_passes_the_checker() -> None:
    trio.run(check_vtep_control, open_memory_vtep)


def rewrite(vtep: Vtep, mac: str, entries: list[FdbEntry], **changes: Any) -> None:
    """Make ``mac``'s entries ``entries`` again (with ``changes``), through the public API only."""
    if mac in vtep.fdb:
        vtep.fdb_del(mac)
    for e in entries:
        fields = {"port": e.port, "vni": e.vni, "state": e.state, "extern_learn": e.extern_learn, "router": e.router}
        vtep.fdb_append(mac, e.dst, interface=e.interface, **{**fields, **changes})


class AppendsToUnicast(MemoryVtep):
    """Broken: a second remote on a unicast MAC (Linux ignores the append); its dump shows it."""

    def __init__(self, vtep: Vtep) -> None:
        super().__init__(vtep)
        self.extra: list[FdbEntry] = []

    async def fdb_append(self, mac: str, dst: str | None, **kw: Any) -> None:
        if mac in self.vtep.fdb and not int(mac[:2], 16) & 1 and mac != ZERO and dst is not None:
            self.extra.append(FdbEntry(mac, dst, port=kw.get("port"), vni=kw.get("vni")))
            return
        await super().fdb_append(mac, dst, **kw)

    async def fdb(self) -> list[FdbEntry]:
        return [*await super().fdb(), *self.extra]


class DeleteIgnoresPort(MemoryVtep):
    """Broken: ``fdb_del`` with a dst removes a remote with that address whatever its port and VNI."""

    async def fdb_del(self, mac: str, dst: str | None = None, **kw: Any) -> None:
        for e in self.vtep.fdb.get(mac):
            if dst is not None and e.dst == dst:
                kw.update(port=e.port, vni=e.vni)
                break
        await super().fdb_del(mac, dst, **kw)


class AddOverwrites(MemoryVtep):
    """Broken: ``fdb_add`` of an existing MAC replaces it instead of raising FdbEntryExists."""

    async def fdb_add(self, mac: str, dst: str | None, **kw: Any) -> None:
        try:
            await super().fdb_add(mac, dst, **kw)
        except FdbEntryExists:
            await super().fdb_replace(mac, dst, **kw)


class RefusedReplaceKeepsState(MemoryVtep):
    """Broken (what pyvxlan did before): a refused replace leaves the entry as it was."""

    async def fdb_replace(self, mac: str, dst: str | None, **kw: Any) -> None:
        saved = self.vtep.fdb.get(mac)
        try:
            await super().fdb_replace(mac, dst, **kw)
        except FdbOperationNotSupported:
            if saved:
                rewrite(self.vtep, mac, saved)
            raise


class DeleteAnyDstIsNoOp(MemoryVtep):
    """Broken (what pyvxlan did before): ``fdb_del`` with dst 0.0.0.0 matches no remote."""

    async def fdb_del(self, mac: str, dst: str | None = None, **kw: Any) -> None:
        if dst in ("0.0.0.0", "::"):
            if mac not in self.vtep.fdb:
                raise FdbEntryNotFound(f"{mac} has no entry")
            return
        await super().fdb_del(mac, dst, **kw)


class DeleteOtherFamilyRefused(MemoryVtep):
    """Broken (what pyvxlan did before): ``fdb_del`` with a dst of the other family is a ConfigError."""

    async def fdb_del(self, mac: str, dst: str | None = None, **kw: Any) -> None:
        if dst is not None and ":" in dst and dst != "::" and self.config.ip_version == 4:
            raise ConfigError("dst", f"{dst} is IPv6 but the device is IPv4")
        await super().fdb_del(mac, dst, **kw)


class RemoteIgnoresVia(MemoryVtep):
    """Broken (what pyvxlan did before): remotes that differ only in ``via`` are one remote."""

    async def fdb_append(self, mac: str, dst: str | None, **kw: Any) -> None:
        if any(e.dst == dst and e.port == kw.get("port") and e.vni == kw.get("vni") for e in self.vtep.fdb.get(mac)):
            return
        await super().fdb_append(mac, dst, **kw)


class ExternLearnTakesOver(MemoryVtep):
    """Broken: an extern_learn append rewrites the state of the user's entry."""

    async def fdb_append(self, mac: str, dst: str | None, **kw: Any) -> None:
        await super().fdb_append(mac, dst, **kw)
        if kw.get("extern_learn"):
            state = kw.get("state", FdbState.PERMANENT)
            rewrite(self.vtep, mac, self.vtep.fdb.get(mac), state=state, extern_learn=True, router=False)


class SrcVniIgnored(MemoryVtep):
    """Broken: ``src_vni`` is ignored, so an entry made with another one is an ordinary entry."""

    async def fdb_add(self, mac: str, dst: str | None, **kw: Any) -> None:
        kw.pop("src_vni", None)
        await super().fdb_add(mac, dst, **kw)


class SetRemoteKeepsFlags(MemoryVtep):
    """Broken: ``set_remote`` keeps the all-zeros entry's state and flags."""

    async def set_remote(self, address: str | None, *, dev: str | None = None) -> None:
        saved = self.vtep.fdb.get(ZERO)
        await super().set_remote(address, dev=dev)
        now = self.vtep.fdb.get(ZERO)
        if saved and now:
            flags = {"state": saved[0].state, "extern_learn": saved[0].extern_learn, "router": saved[0].router}
            rewrite(self.vtep, ZERO, now, **flags)


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
        (
            RefusedReplaceKeepsState,
            "a refused fdb_replace of the all-zeros MAC has already rewritten its state (vxlan_fdb_update_existing)",
        ),
        (
            DeleteAnyDstIsNoOp,
            "fdb_del with dst 0.0.0.0 deletes the whole MAC, whatever port and VNI say (__vxlan_fdb_delete)",
        ),
        (
            DeleteOtherFamilyRefused,
            "fdb_del with a dst of the other family succeeds: raised ConfigError",
        ),
        (
            RemoteIgnoresVia,
            "on a device made with dev, appending its remote without via adds a second remote",
        ),
        (ExternLearnTakesOver, "an extern_learn request leaves the state and flags of the user's entry alone"),
        (SrcVniIgnored, "a second entry of a MAC with the same other src_vni raises FdbEntryExists"),
        (SetRemoteKeepsFlags, "set_remote makes the all-zeros entry the device's own, which an extern_learn"),
    ],
)
def test_checker_fails_a_broken_backend(cls: type[MemoryVtep], message: str) -> None:
    opener = broken_opener(cls)
    with pytest.raises(AssertionError) as info:
        trio.run(check_vtep_control, opener)
    assert str(info.value).startswith(message)
