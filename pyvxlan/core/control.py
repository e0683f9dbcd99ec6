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

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbEntry, FdbState, Neighbour
from pyvxlan.core.events import Notification, VtepCounters

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
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb add MAC dst DST [port P] [vni V] [src_vni S] [via IF] [router]
        [extern_learn] [STATE]``: create an entry; :class:`~pyvxlan.FdbEntryExists` if ``mac``
        has one, :class:`~pyvxlan.FdbFull` when ``max_entries`` are in the table,
        :class:`~pyvxlan.ConfigError` (``dst``) without a remote address (Linux: EINVAL).
        ``interface`` is ``via`` (the remote's underlay interface); a ``src_vni`` other than the
        device's VNI makes an entry that no lookup finds (see docs/kernel-quirks.md)."""
        ...

    async def fdb_append(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb append``: add a remote to the all-zeros or a multicast MAC (head-end
        replication); a duplicate remote, or any append to an existing unicast MAC, adds nothing.
        The state and flags are the request's (unless it is ``extern_learn`` and the entry the
        user's), as in Linux."""
        ...

    async def fdb_append_many(self, entries: Sequence[FdbEntry]) -> None:
        """``fdb_append`` for many entries at once (a control plane's bulk path). Raises
        :class:`~pyvxlan.FdbBatchError` saying how many were applied when one fails."""
        ...

    async def fdb_replace(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb replace``: create, or rewrite the first remote of a unicast MAC;
        :class:`~pyvxlan.FdbOperationNotSupported` for the all-zeros and multicast MACs, whose
        existing entry has nevertheless taken the request's state and flags (Linux's quirk)."""
        ...

    async def fdb_del(
        self,
        mac: str,
        dst: str | None = None,
        *,
        port: int | None = None,
        vni: int | None = None,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb del``: one remote (by dst, port, VNI and ``via`` interface) or, without
        ``dst`` or with an unspecified one, the whole MAC; a ``dst`` matching no remote (of the
        other family too) deletes nothing. :class:`~pyvxlan.FdbEntryNotFound` when there is no
        such MAC."""
        ...

    async def fdb(self) -> list[FdbEntry]:
        """``bridge fdb show dev DEV``: one record per (MAC, remote)."""
        ...

    async def neigh_add(self, ip: str, mac: str) -> None:
        """``ip neigh add IP lladdr MAC dev DEV`` (what proxy ARP/ND answers from);
        :class:`~pyvxlan.errors.NeighbourError` when ``ip`` has an entry (not an FDB error: the
        neighbour table is another table). ``down`` flushes them all."""
        ...

    async def neigh_del(self, ip: str) -> None:
        """``ip neigh del IP dev DEV``; :class:`~pyvxlan.errors.NeighbourError` when absent."""
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

    async def set_remote(self, address: str | None, *, dev: str | None = None) -> None:
        """``ip link set DEV type vxlan remote|group ADDRESS [dev IF]``: swaps the all-zeros
        entry's remote (``None``, ``0.0.0.0`` or ``::`` deletes it) and, when up, the group joined.
        :class:`~pyvxlan.ConfigError` for another address family, or a group without ``dev``."""
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
