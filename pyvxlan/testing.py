"""Conformance checkers for pyvxlan backends (after trio's ``trio.testing.check_*_stream``).

:func:`check_vtep_control` runs one :class:`~pyvxlan.VtepControl` implementation through what a
Linux vxlan device really does with ``bridge fdb``, ``ip neigh`` and ``ip link set``: the same
checker passes against the in-memory core (:class:`pyvxlan.sim.memory.MemoryVtep`) and against real
kernel devices (``pyvxlan.kernel``). It checks only behaviour observed on Linux; a backend that
differs fails with an :class:`AssertionError` that names the behaviour.

``open_vtep`` is a factory: called with a :class:`~pyvxlan.VtepConfig` it returns an async context
manager that creates that device (down, as ``ip link add`` does), yields its control, and deletes
it on exit. Each check opens a fresh device.

:func:`conform` (from :mod:`pyvxlan.conform`) is the randomized counterpart for property tests: it
holds a model (``model=``, :class:`pyvxlan.Vtep` by default) against the running kernel step by
step and returns a :class:`ConformReport` whose findings carry shrunk reproductions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeAlias, TypeVar

from pyvxlan.conform import Report as ConformReport
from pyvxlan.conform import conform
from pyvxlan.core.config import VtepConfig
from pyvxlan.core.control import VtepControl
from pyvxlan.core.entries import FdbEntry, FdbState, Neighbour
from pyvxlan.core.events import VtepCounters
from pyvxlan.errors import (
    ConfigError,
    FdbBatchError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    NeighbourExists,
    NeighbourNotFound,
    VxlanError,
)

_E = TypeVar("_E", bound=VxlanError)

__all__ = ["ConformReport", "OpenVtep", "check_vtep_control", "conform"]

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


async def _expect_error(error: type[_E], action: Awaitable[None], behaviour: str) -> _E:
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
        await vtep.fdb_add(M2, D3)
        await vtep.fdb_del(ZERO)
        await vtep.fdb_add(M3, D3)
        await _expect_error(
            FdbFull, vtep.set_remote(D6), "set_remote that needs a new all-zeros entry in a full table raises FdbFull"
        )
        if vtep.config.remote != REMOTE:
            raise _fail("a refused set_remote keeps the config", f"remote is {vtep.config.remote}")
        await vtep.fdb_del(M3)
        await vtep.set_remote(D6)
        await vtep.set_remote(REMOTE)
        await vtep.fdb_append(ZERO, D5)
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
            NeighbourExists,
            vtep.neigh_add("203.0.113.5", "02:00:00:00:00:07"),
            "neigh_add of an existing address raises NeighbourExists (Linux: EEXIST)",
        )
        await vtep.neigh_del("203.0.113.5")
        await _expect_error(
            NeighbourNotFound,
            vtep.neigh_del("203.0.113.5"),
            "neigh_del of a missing address raises NeighbourNotFound (Linux: ENOENT)",
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


# --- rows with every field a backend reports: interface (via) and the flags ----------------------

Row: TypeAlias = tuple[str, str, int | None, int | None, str | None, str, bool, bool]


def _row(
    mac: str,
    dst: str,
    port: int | None = None,
    vni: int | None = None,
    state: FdbState = PERMANENT,
    *,
    via: str | None = None,
    extern: bool = False,
    router: bool = False,
) -> Row:
    return (mac, dst, port, vni, via, state.value, extern, router)


def _row_order(row: Row) -> tuple[str, ...]:
    return tuple("" if v is None else str(v) for v in row)


async def _expect_rows(vtep: VtepControl, want: list[Row], behaviour: str) -> None:
    got = sorted(
        ((e.mac, e.dst, e.port, e.vni, e.interface, e.state.value, e.extern_learn, e.router) for e in await vtep.fdb()),
        key=_row_order,
    )
    want = sorted(want, key=_row_order)
    if got != want:
        raise _fail(behaviour, f"fdb dump is {got}, expected {want}")


async def _expect_ok(action: Awaitable[None], behaviour: str) -> None:
    try:
        await action
    except Exception as exc:
        raise _fail(behaviour, f"raised {type(exc).__name__}({exc})") from exc


async def _expect_config_error(field: str, action: Awaitable[None], behaviour: str) -> None:
    try:
        await action
    except ConfigError as exc:
        if exc.field != field:
            raise _fail(behaviour, f"raised ConfigError({exc}) naming {exc.field!r}, expected {field!r}") from exc
        return
    except Exception as exc:
        raise _fail(behaviour, f"raised {type(exc).__name__}({exc}), expected ConfigError({field!r})") from exc
    raise _fail(behaviour, f"did not raise ConfigError({field!r})")


async def _check_refused_replace_rewrites(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await _expect_error(
            FdbOperationNotSupported,
            vtep.fdb_replace(ZERO, REMOTE, state=DYNAMIC),
            "fdb_replace of the all-zeros MAC raises FdbOperationNotSupported",
        )
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE, state=DYNAMIC)],
            "a refused fdb_replace of the all-zeros MAC has already rewritten its state (vxlan_fdb_update_existing)",
        )
        await vtep.fdb_append(MCAST, D3, state=STATIC, extern_learn=True)
        await _expect_error(
            FdbOperationNotSupported,
            vtep.fdb_replace(MCAST, D4),
            "fdb_replace of an existing multicast MAC raises FdbOperationNotSupported",
        )
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE, state=DYNAMIC), _row(MCAST, D3)],
            "a refused fdb_replace of a multicast MAC keeps its remotes but takes the request's state and "
            "drops extern_learn (vxlan_fdb_update_existing)",
        )


async def _check_default_takes_extern_learn(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config(local="2001:db8::1", remote="2001:db8::2")) as vtep:
        await vtep.up()
        await vtep.fdb_append(ZERO, "2001:db8::5", extern_learn=True)
        await _expect_rows(
            vtep,
            [_row(ZERO, "2001:db8::2", extern=True), _row(ZERO, "2001:db8::5", extern=True)],
            "an extern_learn append takes over the device's own all-zeros entry (not the user's)",
        )
        await _expect_error(
            FdbOperationNotSupported,
            vtep.fdb_replace(ZERO, "2001:db8::7", router=True),
            "fdb_replace of the all-zeros MAC raises FdbOperationNotSupported",
        )
        await _expect_rows(
            vtep,
            [_row(ZERO, "2001:db8::2", router=True), _row(ZERO, "2001:db8::5", router=True)],
            "a refused fdb_replace of the all-zeros MAC sets its flags to the request's (router, no extern_learn)",
        )
        await vtep.fdb_append(ZERO, "2001:db8::6", state=STATIC, extern_learn=True)
        await _expect_rows(
            vtep,
            [
                _row(ZERO, "2001:db8::2", router=True),
                _row(ZERO, "2001:db8::5", router=True),
                _row(ZERO, "2001:db8::6", router=True),
            ],
            "an extern_learn request leaves the state and flags of the user's entry alone",
        )


async def _check_delete_any_or_other_family(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, D3, port=5555, vni=7)
        await vtep.fdb_append(MCAST, D3)
        await vtep.fdb_append(MCAST, D4)
        await vtep.fdb_add(M2, D3)
        await vtep.fdb_del(M1, "0.0.0.0", port=1, vni=9)
        await vtep.fdb_del(MCAST, "0.0.0.0")
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE), _row(M2, D3)],
            "fdb_del with dst 0.0.0.0 deletes the whole MAC, whatever port and VNI say (__vxlan_fdb_delete)",
        )
        await _expect_error(
            FdbEntryNotFound, vtep.fdb_del(MCAST, "0.0.0.0"), "fdb_del with dst 0.0.0.0 of a missing MAC"
        )
        await _expect_ok(vtep.fdb_del(M2, "2001:db8::3"), "fdb_del with a dst of the other family succeeds")
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE), _row(M2, D3)],
            "fdb_del with a dst of the other family deletes nothing and succeeds",
        )
        await _expect_error(
            FdbEntryNotFound,
            vtep.fdb_del(M3, "2001:db8::3"),
            "fdb_del with a dst of the other family of a missing MAC raises FdbEntryNotFound",
        )
        await vtep.fdb_del(M2, "::")
        await _expect_rows(vtep, [_row(ZERO, REMOTE)], "fdb_del with dst :: deletes the whole MAC on an IPv4 device")
    async with open_vtep(_config(local="2001:db8::1", remote="2001:db8::2")) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, "2001:db8::3")
        await _expect_ok(vtep.fdb_del(M1, D3), "fdb_del with a dst of the other family succeeds")
        await _expect_error(
            FdbEntryNotFound,
            vtep.fdb_del(M2, D3),
            "fdb_del with a dst of the other family of a missing MAC raises FdbEntryNotFound",
        )
        await _expect_rows(
            vtep,
            [_row(ZERO, "2001:db8::2"), _row(M1, "2001:db8::3")],
            "fdb_del with an IPv4 dst on an IPv6 device deletes nothing",
        )
        await vtep.fdb_del(M1, "0.0.0.0")
        await _expect_rows(
            vtep, [_row(ZERO, "2001:db8::2")], "fdb_del with dst 0.0.0.0 deletes the whole MAC on an IPv6 device"
        )


async def _check_via_flags_src_vni(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_add(M1, D3, interface="lo", router=True)
        await vtep.fdb_del(M1, D3)
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE), _row(M1, D3, via="lo", router=True)],
            "fdb_add records via and router; fdb_del without the remote's via matches no remote",
        )
        await vtep.fdb_del(M1, D3, interface="lo")
        await _expect_config_error("dst", vtep.fdb_add(M2, None), "fdb_add without dst is refused (Linux: EINVAL)")
        await _expect_config_error(
            "dst", vtep.fdb_append(M2, None), "fdb_append without dst is refused (Linux: EINVAL)"
        )
        await vtep.fdb_append(MCAST, D3, state=DYNAMIC, extern_learn=True)
        await vtep.fdb_replace(M3, D3, extern_learn=True, state=STATIC)
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE), _row(MCAST, D3, state=DYNAMIC, extern=True), _row(M3, D3, state=STATIC, extern=True)],
            "fdb_append and fdb_replace record extern_learn",
        )
        await vtep.fdb_append(MCAST, D4, state=STATIC, extern_learn=True)
        await vtep.fdb_replace(M3, D4)
        await _expect_rows(
            vtep,
            [
                _row(ZERO, REMOTE),
                _row(MCAST, D3, state=DYNAMIC, extern=True),
                _row(MCAST, D4, state=DYNAMIC, extern=True),
                _row(M3, D4),
            ],
            "an extern_learn append adds its remote but keeps the user's state; a replace without it drops it",
        )
        await vtep.fdb_add(M4, D3, src_vni=VNI)
        await _expect_error(
            FdbEntryExists,
            vtep.fdb_add(M4, D4, src_vni=77),
            "fdb_add with another src_vni finds the MAC's entry (a device that is not external looks up its own VNI)",
        )
        await vtep.fdb_add(M5, D3, src_vni=77)
        await _expect_error(
            FdbEntryExists,
            vtep.fdb_replace(M5, D4, src_vni=77),
            "a second entry of a MAC with the same other src_vni raises FdbEntryExists (the hash table's key)",
        )
        await _expect_error(
            FdbEntryNotFound,
            vtep.fdb_del(M5, src_vni=77),
            "an entry made with another src_vni is found by no lookup (fdb_del raises FdbEntryNotFound)",
        )
        await vtep.fdb_add(M5, D4)
        await vtep.fdb_del(M3)
        await vtep.fdb_del(MCAST)
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE), _row(M4, D3), _row(M5, D3), _row(M5, D4)],
            "an entry made with another src_vni is dumped, and a second entry of its MAC can be added",
        )
        await vtep.fdb_del(M5)
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE), _row(M4, D3), _row(M5, D3)],
            "fdb_del removes the findable entry and leaves the one made with another src_vni",
        )


async def _check_set_remote(open_vtep: OpenVtep) -> None:
    async with open_vtep(_config()) as vtep:
        await vtep.up()
        await vtep.fdb_append(ZERO, D3)
        await vtep.set_remote(D4)
        await _expect_rows(
            vtep,
            [_row(ZERO, D3), _row(ZERO, D4)],
            "set_remote appends the new remote to the all-zeros entry and deletes the old one (vxlan_changelink)",
        )
        if vtep.config.remote != D4 or vtep.config.group is not None:
            raise _fail("set_remote changes the config", f"remote/group are {vtep.config.remote}/{vtep.config.group}")
        await vtep.fdb_append(ZERO, D5, state=STATIC, extern_learn=True)
        await _expect_rows(
            vtep,
            [_row(ZERO, d, state=STATIC, extern=True) for d in (D3, D4, D5)],
            "set_remote makes the all-zeros entry the device's own, which an extern_learn append takes over",
        )
        await vtep.set_remote(D3)
        await _expect_rows(
            vtep,
            [_row(ZERO, D3), _row(ZERO, D5)],
            "set_remote makes the all-zeros entry the device's own again: permanent, no extern_learn",
        )
        await vtep.set_remote(None)
        await _expect_rows(vtep, [_row(ZERO, D5)], "set_remote(None) deletes only the device's remote")
        await vtep.fdb_del(ZERO)
        await vtep.set_remote(D6)
        await _expect_rows(vtep, [_row(ZERO, D6)], "set_remote creates the all-zeros entry when it is gone")
        await vtep.set_remote("0.0.0.0")
        await _expect_rows(vtep, [], "set_remote 0.0.0.0 deletes the all-zeros entry")
        if vtep.config.remote is not None:
            raise _fail("set_remote 0.0.0.0 clears the config's remote", f"remote is {vtep.config.remote}")
        await _expect_config_error(
            "remote", vtep.set_remote("2001:db8::9"), "set_remote of the other family is refused"
        )
        await _expect_config_error(
            "dev", vtep.set_remote("239.1.1.1"), "set_remote to a group needs an underlay interface"
        )
    async with open_vtep(_config(local="2001:db8::1", remote="2001:db8::2")) as vtep:
        await vtep.set_remote("2001:db8::3")
        await _expect_rows(vtep, [_row(ZERO, "2001:db8::3")], "set_remote on an IPv6 device swaps its remote")
        await vtep.set_remote("::")
        await _expect_rows(vtep, [], "set_remote :: deletes the all-zeros entry of an IPv6 device")


async def _check_dev_default_entry(open_vtep: OpenVtep, dev: str) -> None:
    async with open_vtep(_config(dev=dev)) as vtep:
        await vtep.up()
        await vtep.fdb_append(ZERO, REMOTE)
        await _expect_rows(
            vtep,
            [_row(ZERO, REMOTE, via=dev), _row(ZERO, REMOTE)],
            "on a device made with dev, appending its remote without via adds a second remote",
        )
        await vtep.fdb_del(ZERO, REMOTE)
        await _expect_rows(vtep, [_row(ZERO, REMOTE, via=dev)], "fdb_del without via deletes the remote without via")
        await vtep.set_remote(D3)
        await _expect_rows(vtep, [_row(ZERO, D3, via=dev)], "set_remote keeps the device's interface (via)")
        await vtep.set_remote("239.1.1.1")
        await _expect_rows(vtep, [_row(ZERO, "239.1.1.1", via=dev)], "set_remote to a group")
        if vtep.config.group != "239.1.1.1" or vtep.config.remote is not None:
            raise _fail("set_remote to a group sets the config's group", f"group is {vtep.config.group}")
        await vtep.fdb_del(ZERO, "239.1.1.1", interface=dev)
        await _expect_rows(vtep, [], "fdb_del with the remote's via deletes it")


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
    _check_refused_replace_rewrites,
    _check_default_takes_extern_learn,
    _check_delete_any_or_other_family,
    _check_via_flags_src_vni,
    _check_set_remote,
)


async def check_vtep_control(open_vtep: OpenVtep, *, dev: str | None = "lo") -> None:
    """Check a :class:`~pyvxlan.VtepControl` implementation against Linux's vxlan FDB semantics.

    Raises :class:`AssertionError` naming the first behaviour that differs. Devices use VNI 4242,
    port 4789, local 198.51.100.1 and remote 198.51.100.2 (some checks: 2001:db8::1 and ::2).
    ``dev`` names an interface the backend can use as an underlay (``dev``) and as an entry's
    ``via``; ``None`` leaves out the check of a device made with ``dev`` (for a backend that
    cannot make one).
    """
    for check in CHECKS:
        await check(open_vtep)
    if dev is not None:
        await _check_dev_default_entry(open_vtep, dev)
