"""Conformance checkers for pyvxlan backends (after trio's ``trio.testing.check_*_stream``).

:func:`check_vtep_control` runs one :class:`~pyvxlan.VtepControl` implementation through what a
Linux vxlan device really does with ``bridge fdb``, ``ip neigh`` and ``ip link set``: the same
checker passes against the in-memory core (:class:`pyvxlan.memory.MemoryVtep`) and against real
kernel devices (``pyvxlan.kernel``). It checks only behaviour observed on Linux; a backend that
differs fails with an :class:`AssertionError` that names the behaviour.

``open_vtep`` is a factory: called with a :class:`~pyvxlan.VtepConfig` it returns an async context
manager that creates that device (down, as ``ip link add`` does), yields its control, and deletes
it on exit. Each check opens a fresh device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeAlias

from pyvxlan.config import VtepConfig
from pyvxlan.control import VtepControl
from pyvxlan.entries import FdbEntry, FdbState, Neighbour
from pyvxlan.errors import (
    FdbBatchError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbError,
    FdbFull,
    FdbOperationNotSupported,
)
from pyvxlan.events import VtepCounters

__all__ = ["OpenVtep", "check_vtep_control"]

OpenVtep: TypeAlias = Callable[[VtepConfig], AbstractAsyncContextManager[VtepControl]]

VNI = 4242
PORT = 4789
LOCAL = "198.51.100.1"
REMOTE = "198.51.100.2"
ZERO = "00:00:00:00:00:00"
M1, M2, M3, M4, M5 = (f"02:00:00:00:42:0{i}" for i in range(1, 6))
MCAST = "01:00:5e:01:01:01"
D3, D4, D5, D6 = (f"198.51.100.{i}" for i in range(3, 7))
PERMANENT, STATIC, DYNAMIC = FdbState.PERMANENT, FdbState.STATIC, FdbState.REACHABLE

Key: TypeAlias = tuple[str, str, int | None, int | None, str]


def _config(**changes: object) -> VtepConfig:
    settings: dict[str, object] = {"vni": VNI, "local": LOCAL, "remote": REMOTE, "dst_port": PORT}
    settings.update(changes)
    return VtepConfig(**settings)  # type: ignore[arg-type]


def _key(mac: str, dst: str, port: int | None = None, vni: int | None = None, state: FdbState = PERMANENT) -> Key:
    return (mac, dst, port, vni, state.value)


def _order(key: Key) -> tuple[str, str, int, int, str]:
    mac, dst, port, vni, state = key
    return (mac, dst, -1 if port is None else port, -1 if vni is None else vni, state)


def _keys(entries: list[FdbEntry]) -> list[Key]:
    return sorted((e.key() for e in entries), key=_order)


def _fail(behaviour: str, detail: str) -> AssertionError:
    return AssertionError(f"{behaviour}: {detail}")


async def _expect_table(vtep: VtepControl, want: list[Key], behaviour: str) -> None:
    got = _keys(await vtep.fdb())
    want = sorted(want, key=_order)
    if got != want:
        raise _fail(behaviour, f"fdb dump is {got}, expected {want}")


async def _expect_error(error: type[FdbError], action: Awaitable[None], behaviour: str) -> FdbError:
    try:
        await action
    except error as exc:
        return exc
    except Exception as exc:
        raise _fail(behaviour, f"raised {type(exc).__name__}({exc}), expected {error.__name__}") from exc
    raise _fail(behaviour, f"did not raise {error.__name__}")


DEFAULT = _key(ZERO, REMOTE)


async def _check_add_and_dump(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        if vtep.config.vni != VNI or vtep.config.dst_port != PORT:
            raise _fail("config", f"vni/dst_port are {vtep.config.vni}/{vtep.config.dst_port}, expected {VNI}/{PORT}")
        if await vtep.is_up():
            raise _fail("a device is created down, as ip link add does", "is_up() is True before up()")
        await vtep.up()
        if not await vtep.is_up():
            raise _fail("up", "is_up() is False after up()")
        await _expect_table(vtep, [DEFAULT], "remote becomes the permanent all-zeros entry")
        await vtep.fdb_add(M1, D3)
        await _expect_error(FdbEntryExists, vtep.fdb_add(M1, D4), "fdb_add of an existing MAC raises FdbEntryExists")
        await vtep.fdb_add(M2, D3, port=5555, vni=99, state=STATIC)
        await vtep.fdb_add(M3, D4, port=PORT, vni=VNI, state=DYNAMIC)
        await _expect_table(
            vtep,
            [DEFAULT, _key(M1, D3), _key(M2, D3, 5555, 99, STATIC), _key(M3, D4, state=DYNAMIC)],
            "fdb_add records state, port and VNI; the device's port and VNI are omitted in the dump",
        )


async def _check_append(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_append(ZERO, D3)
        await vtep.fdb_append(ZERO, D3)
        await _expect_table(
            vtep, [DEFAULT, _key(ZERO, D3)], "fdb_append adds a remote to all-zeros; a duplicate is a no-op"
        )
        await vtep.fdb_append(ZERO, D3, port=5555)
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D3), _key(ZERO, D3, 5555)],
            "fdb_append of the same address with another port is another remote",
        )
        await vtep.fdb_add(M1, D4)
        await vtep.fdb_append(M1, D5)
        await vtep.fdb_append(MCAST, D4)
        await vtep.fdb_append(MCAST, D5)
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D3), _key(ZERO, D3, 5555), _key(M1, D4), _key(MCAST, D4), _key(MCAST, D5)],
            "fdb_append to an existing unicast MAC is a no-op; a multicast MAC takes several remotes",
        )


async def _check_replace(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, D3)
        await vtep.fdb_replace(M1, D4, port=5555)
        await vtep.fdb_replace(M2, D5, state=STATIC)
        await _expect_table(
            vtep,
            [DEFAULT, _key(M1, D4, 5555), _key(M2, D5, state=STATIC)],
            "fdb_replace rewrites a unicast MAC's remote, or creates the MAC",
        )
        await _expect_error(
            FdbOperationNotSupported,
            vtep.fdb_replace(ZERO, D3),
            "fdb_replace of the all-zeros MAC raises FdbOperationNotSupported",
        )
        await _expect_error(
            FdbOperationNotSupported,
            vtep.fdb_replace(MCAST, D3),
            "fdb_replace of a new multicast MAC raises FdbOperationNotSupported",
        )
        await vtep.fdb_append(MCAST, D3)
        await _expect_error(
            FdbOperationNotSupported,
            vtep.fdb_replace(MCAST, D4),
            "fdb_replace of an existing multicast MAC raises FdbOperationNotSupported",
        )
        await _expect_table(
            vtep,
            [DEFAULT, _key(M1, D4, 5555), _key(M2, D5, state=STATIC), _key(MCAST, D3)],
            "a refused fdb_replace changes no remote",
        )


async def _check_delete(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await _expect_error(FdbEntryNotFound, vtep.fdb_del(M1), "fdb_del of a missing MAC raises FdbEntryNotFound")
        await _expect_error(
            FdbEntryNotFound, vtep.fdb_del(M1, D3), "fdb_del of a missing MAC with a dst raises FdbEntryNotFound"
        )
        await vtep.fdb_append(ZERO, D3)
        await vtep.fdb_append(ZERO, D4, port=5555)
        await vtep.fdb_add(M1, D3, vni=99)
        await vtep.fdb_del(ZERO, D5)
        await vtep.fdb_del(ZERO, D4)
        await vtep.fdb_del(M1, D3)
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D3), _key(ZERO, D4, 5555), _key(M1, D3, None, 99)],
            "fdb_del with a dst, port or VNI that matches no remote is a no-op",
        )
        await vtep.fdb_del(ZERO, D4, port=5555)
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D3), _key(M1, D3, None, 99)],
            "fdb_del with dst, port and VNI removes that remote only",
        )
        await vtep.fdb_del(M1, D3, vni=99)
        await _expect_table(vtep, [DEFAULT, _key(ZERO, D3)], "fdb_del of a MAC's last remote removes the MAC")
        await vtep.fdb_add(M2, D3)
        await vtep.fdb_del(M2)
        await vtep.fdb_del(ZERO)
        await _expect_table(vtep, [], "fdb_del without a dst removes the MAC with all its remotes")


async def _check_full(open_vtep: OpenVtep) -> None:
    # max_entries counts MACs, the all-zeros entry included: 3 leaves room for 2 more.
    async with open_vtep(_config(max_entries=3)) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, D3)
        await vtep.fdb_add(M2, D3)
        await _expect_error(FdbFull, vtep.fdb_add(M3, D3), "fdb_add to a full table raises FdbFull")
        await _expect_error(
            FdbFull, vtep.fdb_append(MCAST, D3), "fdb_append of a new MAC to a full table raises FdbFull"
        )
        await _expect_error(
            FdbFull, vtep.fdb_replace(M3, D3), "fdb_replace creating a MAC in a full table raises FdbFull"
        )
        await vtep.fdb_replace(M1, D4)
        await vtep.fdb_append(ZERO, D5)
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D5), _key(M1, D4), _key(M2, D3)],
            "a full table still takes replaces of existing MACs and more remotes of existing MACs",
        )
        await vtep.fdb_del(M2)
        batch = [FdbEntry(M4, D3), FdbEntry(M5, D3), FdbEntry(M3, D3)]
        exc = await _expect_error(
            FdbBatchError, vtep.fdb_append_many(batch), "fdb_append_many past max_entries raises FdbBatchError"
        )
        assert isinstance(exc, FdbBatchError)
        if (exc.applied, exc.index) != (1, 1) or not isinstance(exc.__cause__, FdbFull):
            raise _fail(
                "FdbBatchError says how many entries were applied",
                f"applied={exc.applied} index={exc.index} cause={exc.__cause__!r}, expected 1, 1 and FdbFull",
            )
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D5), _key(M1, D4), _key(M4, D3)],
            "fdb_append_many applies the entries before the one that failed",
        )


async def _check_append_many(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_append_many(
            [FdbEntry(ZERO, D3), FdbEntry(ZERO, D4, port=5555), FdbEntry(ZERO, D3), FdbEntry(M1, D5, vni=7)]
        )
        await _expect_table(
            vtep,
            [DEFAULT, _key(ZERO, D3), _key(ZERO, D4, 5555), _key(M1, D5, None, 7)],
            "fdb_append_many appends each entry in order, as fdb_append",
        )


async def _check_neighbours(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config(proxy=True)) as vtep:
        await vtep.up()
        await vtep.neigh_add("203.0.113.5", "02:00:00:00:00:05")
        await vtep.neigh_add("2001:db8::5", "02:00:00:00:00:06")
        want = [Neighbour("2001:db8::5", "02:00:00:00:00:06"), Neighbour("203.0.113.5", "02:00:00:00:00:05")]
        got = sorted(await vtep.neighbours(), key=lambda n: n.ip)
        if got != want:
            raise _fail("neigh_add adds proxy neighbours", f"neighbours() is {got}, expected {want}")
        await _expect_error(
            FdbEntryExists,
            vtep.neigh_add("203.0.113.5", "02:00:00:00:00:07"),
            "neigh_add of an existing address raises FdbEntryExists",
        )
        await vtep.neigh_del("203.0.113.5")
        await _expect_error(
            FdbEntryNotFound, vtep.neigh_del("203.0.113.5"), "neigh_del of a missing address raises FdbEntryNotFound"
        )
        got = await vtep.neighbours()
        if got != want[:1]:
            raise _fail("neigh_del removes one neighbour", f"neighbours() is {got}, expected {want[:1]}")


async def _check_settings(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config(ageing=120)) as vtep:
        if vtep.config.ageing != 120 or not vtep.config.learning:
            raise _fail("config", f"ageing/learning are {vtep.config.ageing}/{vtep.config.learning}, expected 120/True")
        await vtep.set_learning(False)
        if vtep.config.learning:
            raise _fail("set_learning(False) turns learning off", "config.learning is still True")
        await vtep.set_learning(True)
        if not vtep.config.learning:
            raise _fail("set_learning(True) turns learning on", "config.learning is still False")
        await vtep.set_ageing(20)
        if vtep.config.ageing != 20:
            raise _fail("set_ageing(20) sets ageing", f"config.ageing is {vtep.config.ageing}")
        await vtep.set_ageing(0)
        if vtep.config.ageing != 300:
            raise _fail("ageing 0 means 300, as Linux", f"config.ageing is {vtep.config.ageing}")


async def _check_up_down(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, D3)
        await vtep.fdb_add(M2, D3, state=STATIC)
        await vtep.fdb_add(M3, D4, state=DYNAMIC)
        await vtep.fdb_add(M4, D4, state=DYNAMIC, extern_learn=True)
        await vtep.fdb_append(ZERO, D5)
        await vtep.neigh_add("203.0.113.5", "02:00:00:00:00:05")
        await vtep.down()
        if await vtep.is_up():
            raise _fail("down", "is_up() is True after down()")
        kept = [DEFAULT, _key(ZERO, D5), _key(M1, D3), _key(M2, D3, state=STATIC)]
        await _expect_table(vtep, kept, "down flushes every entry but permanent and static ones")
        got = await vtep.neighbours()
        if got:
            raise _fail("down flushes the neighbour table, permanent entries included", f"neighbours() is {got}")
        await vtep.up()
        await _expect_table(vtep, kept, "up keeps the table")
        counters = await vtep.counters()
        if not isinstance(counters, VtepCounters) or any(
            not isinstance(v, int) or v < 0 for v in (counters.rx_packets, counters.tx_packets, counters.tx_dropped)
        ):
            raise _fail("counters() returns VtepCounters", f"got {counters!r}")
        async with vtep.subscribe() as stream:
            if not hasattr(stream, "__anext__"):
                raise _fail("subscribe() yields an async iterator", f"got {stream!r}")


async def _check_ipv6_underlay(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config(local="2001:db8::1", remote="2001:db8::2")) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, "2001:db8::3", port=5555)
        await vtep.fdb_append(ZERO, "2001:db8::4")
        await _expect_table(
            vtep,
            [_key(ZERO, "2001:db8::2"), _key(ZERO, "2001:db8::4"), _key(M1, "2001:db8::3", 5555)],
            "an IPv6 underlay keeps IPv6 remotes",
        )


CHECKS: tuple[Callable[[OpenVtep], Awaitable[None]], ...] = (
    _check_add_and_dump,
    _check_append,
    _check_replace,
    _check_delete,
    _check_full,
    _check_append_many,
    _check_neighbours,
    _check_settings,
    _check_up_down,
    _check_ipv6_underlay,
)


async def check_vtep_control(open_vtep: OpenVtep) -> None:
    """Check a :class:`~pyvxlan.VtepControl` implementation against Linux's vxlan FDB semantics.

    Raises :class:`AssertionError` naming the first behaviour that differs. Devices use VNI 4242,
    port 4789, local 198.51.100.1 and remote 198.51.100.2 (one check: 2001:db8::1 and ::2).
    """
    for check in CHECKS:
        await check(open_vtep)
