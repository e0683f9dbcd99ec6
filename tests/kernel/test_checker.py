"""``check_vtep_control`` against real vxlan devices: the same expectations as the simulated VTEP."""

from __future__ import annotations

import math
import random
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from pyvxlan import ConfigError, FdbEntry, FdbState, Vtep, VtepConfig, VtepControl, VxlanError
from pyvxlan.kernel import KernelVtep, open_vtep
from pyvxlan.sim import open_vtep as open_sim_vtep
from pyvxlan.sim import run
from pyvxlan.sim.memory import MemoryVtep
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


# --- the simulated VTEP against the kernel, step by step ------------------------------------------

Row = tuple[str, str, "int | None", "int | None", "str | None", str, bool, bool]


def _rows(entries: list[FdbEntry]) -> list[Row]:
    rows = [(e.mac, e.dst, e.port, e.vni, e.interface, e.state.value, e.extern_learn, e.router) for e in entries]
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, ConfigError):
        return f"ConfigError({exc.field})"
    return type(exc).__name__


async def _same_step(
    step: int,
    rng: random.Random,
    kernel: VtepControl,
    model: VtepControl,
    *,
    six: bool,
    name: str,
    fields: tuple[str, ...],
) -> None:
    """One random control call on both: the same outcome, then the same FDB and config ``fields``."""
    op, args, kw = _random_step(rng, six)
    outcomes = []
    for backend in (kernel, model):
        try:
            await getattr(backend, op)(*args, **kw)
        except VxlanError as exc:
            outcomes.append(_outcome(exc))
        else:
            outcomes.append(_outcome(None))
    call = f"step {step}: {op}{args} {kw}"
    assert outcomes[0] == outcomes[1], f"{call}: kernel {outcomes[0]}, {name} {outcomes[1]}"
    k_rows, m_rows = _rows(await kernel.fdb()), _rows(await model.fdb())
    assert k_rows == m_rows, f"{call}:\n kernel {k_rows}\n {name} {m_rows}"
    assert [getattr(kernel.config, f) for f in fields] == [getattr(model.config, f) for f in fields], call


def _random_step(rng: random.Random, six: bool) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """One random control call: a method name, its arguments and keywords."""
    base = "2001:db8::" if six else "198.51.100."
    other = "198.51.100.3" if six else "2001:db8::3"
    unspecified = "::" if six else "0.0.0.0"
    mac = rng.choice(["00:00:00:00:00:00", "01:00:5e:01:01:01", "02:00:00:00:42:01", "02:00:00:00:42:02"])
    dst = f"{base}{rng.choice([2, 3, 4])}"
    kw: dict[str, Any] = {}
    if rng.random() < 0.2:
        kw["port"] = 5555
    if rng.random() < 0.2:
        kw["vni"] = 99
    if rng.random() < 0.15:
        kw["interface"] = "lo"
    op = rng.choice(["fdb_add", "fdb_append", "fdb_append", "fdb_replace", "fdb_del", "fdb_del", "set_remote"])
    if op == "set_remote":
        return op, (rng.choice([dst, dst, None, unspecified, other, "239.1.1.1" if not six else "ff05::100"]),), {}
    if op == "fdb_del":
        return op, (mac, rng.choice([None, dst, dst, unspecified, other])), kw
    kw["state"] = rng.choice(list(FdbState))
    kw["extern_learn"] = rng.random() < 0.3
    kw["router"] = rng.random() < 0.2
    if rng.random() < 0.1:
        kw["src_vni"] = rng.choice([VNI, 77])
    roll = rng.random()
    return op, (mac, None if roll < 0.03 else unspecified if roll < 0.06 else dst), kw


VNI = 4242


@pytest.mark.parametrize(
    ("seed", "six", "limit"),
    # 38 once found a second orphan of one MAC and src_vni, which the kernel refuses (EEXIST).
    [(1, False, 0), (2, True, 0), (3, False, 5), (4, True, 4), (38, False, 0)],
)
def test_simulated_vtep_matches_the_kernel_step_by_step(netns: str, seed: int, six: bool, limit: int) -> None:
    """The same random ``bridge fdb`` / ``ip link set`` sequence on the simulated VTEP and on a
    real vxlan device gives the same outcome (error kind) and the same table after every step:
    tests/sim/test_conformance.py's simulated VTEP held against Linux, not only against itself."""
    local, remote = ("2001:db8::1", "2001:db8::2") if six else ("198.51.100.1", "198.51.100.2")
    config = VtepConfig(vni=VNI, local=local, remote=remote, dst_port=4789, max_entries=limit, name="pvxkdiff")
    rng = random.Random(seed)

    async def main() -> None:
        async with open_vtep(config, netns=netns) as kernel, open_sim_vtep(config) as sim:
            # Virtual time must stand still while the kernel's calls block in worker threads:
            # autojumping, it would race to the simulated device's ageing timer.
            clock = trio.lowlevel.current_clock()
            assert isinstance(clock, trio.testing.MockClock)
            clock.autojump_threshold = math.inf
            await kernel.up()
            await sim.up()
            for step in range(200):
                await _same_step(step, rng, kernel, sim, six=six, name="simulator", fields=("remote", "group"))

    run(main)  # the simulator's virtual clock; the kernel's calls run in worker threads all the same


@pytest.mark.parametrize(
    ("seed", "six", "group"), [(11, False, False), (12, True, True), (13, False, True), (14, True, False)]
)
def test_core_matches_the_kernel_step_by_step_on_devices_made_with_dev(
    netns: str, seed: int, six: bool, group: bool
) -> None:
    """As above, for what a simulated host cannot make: devices with ``dev`` (here ``lo``), whose
    default remote has ``via``, and groups (``set_remote`` moves between groups and remotes). The
    core behind :class:`~pyvxlan.sim.memory.MemoryVtep` against a real device."""
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    local = "2001:db8::1" if six else "198.51.100.1"
    address = ("ff05::100" if six else "239.1.1.1") if group else ("2001:db8::2" if six else "198.51.100.2")
    config = VtepConfig(
        vni=VNI,
        local=local,
        group=address if group else None,
        remote=None if group else address,
        dev="lo",
        dst_port=4789,
        name="pvxkdiff",
    )
    rng = random.Random(seed)

    async def main() -> None:
        async with open_vtep(config, netns=netns) as kernel:
            core = MemoryVtep(Vtep(config))
            await kernel.up()
            await core.up()
            for step in range(200):
                await _same_step(step, rng, kernel, core, six=six, name="core", fields=("remote", "group", "dev"))

    trio.run(main)
