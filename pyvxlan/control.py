"""``VtepControl``: the one API that the simulated VTEP and the kernel VTEP both implement.

Every method is async, because the kernel implementation talks netlink from a worker thread. The
semantics are Linux's (``bridge fdb``, ``ip neigh``, ``ip link set``); the errors are pyvxlan's
:class:`~pyvxlan.FdbError` subclasses. ``pyvxlan.testing.check_vtep_control`` checks an
implementation against them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from pyvxlan.config import VtepConfig
from pyvxlan.entries import FdbEntry, FdbState, Neighbour
from pyvxlan.events import Notification, VtepCounters

__all__ = ["VtepControl"]


@runtime_checkable
class VtepControl(Protocol):
    """Control of one VTEP (a vxlan device), simulated or real."""

    @property
    def config(self) -> VtepConfig:
        """The device's configuration (as created, or as read from the kernel), including the
        changes made by ``set_learning`` and ``set_ageing``."""
        ...

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
        """``bridge fdb add``: create an entry; :class:`~pyvxlan.FdbEntryExists` if ``mac`` has one,
        :class:`~pyvxlan.FdbFull` when ``max_entries`` are in the table."""
        ...

    async def fdb_append(self, mac: str, dst: str, *, port: int | None = None, vni: int | None = None) -> None:
        """``bridge fdb append``: add a remote to the all-zeros or a multicast MAC (head-end
        replication); a duplicate remote, or any append to an existing unicast MAC, is a no-op."""
        ...

    async def fdb_append_many(self, entries: Sequence[FdbEntry]) -> None:
        """``fdb_append`` for many entries at once (a control plane's bulk path). Raises
        :class:`~pyvxlan.FdbBatchError` saying how many were applied when one fails."""
        ...

    async def fdb_replace(
        self,
        mac: str,
        dst: str,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
    ) -> None:
        """``bridge fdb replace``: create, or rewrite the first remote of a unicast MAC;
        :class:`~pyvxlan.FdbOperationNotSupported` for the all-zeros MAC."""
        ...

    async def fdb_del(
        self, mac: str, dst: str | None = None, *, port: int | None = None, vni: int | None = None
    ) -> None:
        """``bridge fdb del``: one remote (by dst, port and VNI) or, without ``dst``, the whole MAC;
        :class:`~pyvxlan.FdbEntryNotFound` when there is no such MAC."""
        ...

    async def fdb(self) -> list[FdbEntry]:
        """``bridge fdb show dev DEV``: one record per (MAC, remote)."""
        ...

    async def neigh_add(self, ip: str, mac: str) -> None:
        """``ip neigh add IP lladdr MAC dev DEV`` (what proxy ARP/ND answers from);
        :class:`~pyvxlan.FdbEntryExists` when ``ip`` has an entry. ``down`` flushes them all."""
        ...

    async def neigh_del(self, ip: str) -> None:
        """``ip neigh del IP dev DEV``; :class:`~pyvxlan.FdbEntryNotFound` when absent."""
        ...

    async def neighbours(self) -> list[Neighbour]:
        """The device's permanent neighbour entries."""
        ...

    async def set_learning(self, on: bool) -> None:
        """``ip link set DEV type vxlan [no]learning``."""
        ...

    async def set_ageing(self, seconds: float) -> None:
        """``ip link set DEV type vxlan ageing S`` (0 means 300, as in Linux)."""
        ...

    async def up(self) -> None:
        """``ip link set DEV up``: joins the group."""
        ...

    async def down(self) -> None:
        """``ip link set DEV down``: leaves the group, flushes all but permanent and static entries."""
        ...

    async def is_up(self) -> bool: ...

    async def counters(self) -> VtepCounters:
        """The device's counters."""
        ...

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Notification]]:
        """``async with vtep.subscribe() as stream: async for n in stream``: the notifications
        (learned, expired, l2miss, l3miss, ...) that happen while the context is open."""
        ...
