"""The conformance engine: random episodes against two sides, compared after every step, and a
disagreement shrunk to a minimal episode with a runnable reproduction.

An episode is one device (made fresh) and a sequence of steps. Both sides get every step; after
each one the outcomes (``ok`` or the errno) and the snapshots must be equal. The first difference
ends the episode; the engine then delta-debugs the steps (Zeller's ddmin: drop halves, quarters,
... single steps, keeping any sequence that still disagrees on the same field) and reports the
smallest sequence it found, with the shell commands for the kernel and the Python calls for the
model, expected (kernel) and actual (model) side by side.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyvxlan.conform.oracle import (
    FDB_AGE_INTERVAL,
    ModelOracle,
    Oracle,
    Snapshot,
    device_commands,
    render,
    rig_commands,
)
from pyvxlan.conform.steps import (
    IMPLEMENTED,
    Category,
    Datagram,
    Device,
    LinkOp,
    Step,
    Wait,
    python_call,
    random_device,
    random_step,
)
from pyvxlan.core.config import VtepConfig

__all__ = ["Disagreement", "Episode", "Mismatch", "compare", "episodes", "play", "python_script", "shrink"]

EPISODE_STEPS = 100
AGE_EPISODE_STEPS = 16
AGE_EVERY = 6  # one episode in this many is an age episode, when age is asked for


@dataclass(frozen=True, slots=True)
class Episode:
    """One device and the steps done to it (the first is usually ``ip link set up``)."""

    device: Device
    steps: tuple[Step, ...]

    @property
    def categories(self) -> frozenset[Category]:
        """The categories of its steps."""
        return frozenset(s.category for s in self.steps)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One field where the sides differ after a step: the kernel's value, the model's."""

    field: str
    kernel: Any
    model: Any


@dataclass(frozen=True, slots=True)
class Disagreement:
    """The first step of ``episode`` after which the sides differ, and how."""

    episode: Episode
    index: int
    mismatches: tuple[Mismatch, ...]
    kernel: Snapshot
    model: Snapshot

    @property
    def step(self) -> Step:
        """The step after which the sides differed."""
        return self.episode.steps[self.index]

    @property
    def fields(self) -> frozenset[str]:
        """The names of the fields that differ."""
        return frozenset(m.field for m in self.mismatches)


def _detail(categories: Iterable[Category]) -> bool:
    return bool({Category.RX, Category.AGE, Category.TX, Category.PROXY, Category.NEIGH} & set(categories))


def compare(kernel: Snapshot, model: Snapshot, k_out: str, m_out: str, *, age: bool) -> tuple[Mismatch, ...]:
    """The fields where ``model`` differs from ``kernel``: the outcome, the link, the table, the
    neighbours, the rx counters; with ``age`` also each row's seconds since refresh (within 1 s:
    iproute2 prints whole seconds and the two clocks are read a moment apart)."""
    out: list[Mismatch] = []
    if k_out != m_out:
        out.append(Mismatch("outcome", k_out, m_out))
    for name in ("up", "remote", "group", "learning", "ageing"):
        k, m = getattr(kernel, name), getattr(model, name)
        if k != m:
            out.append(Mismatch(name, k, m))
    # Rows past their ageing time may linger in the kernel until vxlan_cleanup next runs.
    k_rows = tuple(r for r in kernel.rows if r not in model.maybe or r in model.rows)
    if k_rows != model.rows:
        out.append(Mismatch("fdb", list(kernel.rows), list(model.rows)))
    if kernel.neighbours != model.neighbours:
        out.append(Mismatch("neighbours", list(kernel.neighbours), list(model.neighbours)))
    if kernel.sent != model.sent:
        out.append(Mismatch("sent", list(kernel.sent), list(model.sent)))
    if kernel.replies != model.replies:
        out.append(Mismatch("replies", list(kernel.replies), list(model.replies)))
    if kernel.misses != model.misses:
        out.append(Mismatch("misses", list(kernel.misses), list(model.misses)))
    if kernel.counters != model.counters:
        k_c, m_c = dict(kernel.counters), dict(model.counters)
        names = [n for n in k_c.keys() | m_c.keys() if k_c.get(n) != m_c.get(n)]
        out.append(Mismatch("counters", {n: k_c.get(n) for n in sorted(names)}, {n: m_c.get(n) for n in sorted(names)}))
    if age:
        k_up = {(mac, dst): s for mac, dst, s in kernel.updated}
        far = [
            (mac, dst, k_up[(mac, dst)], s)
            for mac, dst, s in model.updated
            if (mac, dst) in k_up and abs(k_up[(mac, dst)] - s) > 1
        ]
        if far:
            out.append(
                Mismatch("updated", {f"{m} {d}": k for m, d, k, _ in far}, {f"{m} {d}": s for m, d, _, s in far})
            )
    return tuple(out)


def play(
    episode: Episode,
    kernel: Oracle,
    model: ModelOracle,
    counts: dict[Category, list[int]] | None = None,
) -> Disagreement | None:
    """Run ``episode`` on both sides; the first disagreement, or ``None``. ``counts`` (per category:
    steps, comparisons) is added to."""
    kernel.reset(episode.device)
    model.reset(episode.device)
    detail = _detail(episode.categories)
    age = Category.AGE in episode.categories
    for index, step in enumerate(episode.steps):
        k_out = kernel.apply(step)
        model.tick(kernel.now())
        m_out = "ok" if isinstance(step, Wait) else model.apply(step)
        k_snap, m_snap = kernel.snapshot(detail), model.snapshot(detail)
        mismatches = compare(k_snap, m_snap, k_out, m_out, age=age)
        if counts is not None:
            tally = counts.setdefault(Category.AGE if age else step.category, [0, 0])
            tally[0] += 1
            tally[1] += 1
        if mismatches:
            return Disagreement(episode, index, mismatches, k_snap, m_snap)
    return None


def shrink(
    found: Disagreement,
    replay: Callable[[Episode], Disagreement | None],
    *,
    budget: int = 200,
    seconds: float = 60.0,
) -> Disagreement:
    """The smallest episode ``replay`` still finds disagreeing on one of ``found``'s fields
    (ddmin over the steps up to the disagreement; at most ``budget`` replays and about ``seconds``
    of them: an age episode's replay sleeps as long as the episode did)."""
    deadline = time.monotonic() + seconds
    wanted = found.fields
    steps = list(found.episode.steps[: found.index + 1])
    # What follows the disagreement is never part of it, even when nothing else can be dropped.
    best = dataclasses.replace(found, episode=Episode(found.episode.device, tuple(steps)))
    n = 2
    tries = 0
    while len(steps) >= 2 and tries < budget and time.monotonic() < deadline:
        size = -(-len(steps) // n)
        progressed = False
        for start in range(0, len(steps), size):
            candidate = steps[:start] + steps[start + size :]
            if not candidate:
                continue
            tries += 1
            result = replay(Episode(found.episode.device, tuple(candidate)))
            if result is not None and result.fields & wanted:
                best = result
                steps = list(candidate[: result.index + 1])
                n = max(n - 1, 2)
                progressed = True
                break
            if tries >= budget or time.monotonic() >= deadline:
                break
        if not progressed:
            if n >= len(steps):
                break
            n = min(2 * n, len(steps))
    return best


def episodes(seed: int, steps: int, only: frozenset[Category]) -> list[Episode]:
    """The episodes of a run: ``steps`` steps in all, drawn from ``seed`` (the same seed, the same
    episodes). Age episodes (when asked for) use ageing 2 or 3 s and end with a wait long enough
    for ``vxlan_cleanup`` to have swept everything that expired."""
    rng = random.Random(seed)
    out: list[Episode] = []
    left = steps
    mixed = only - {Category.AGE}
    number = 0
    while left > 0:
        number += 1
        age = Category.AGE in only and (not mixed or number % AGE_EVERY == 0)
        if age:
            cats = frozenset({Category.AGE})
            device = random_device(rng, cats)
            count = min(left, AGE_EPISODE_STEPS)
            body = [random_step(rng, device, cats) for _ in range(max(count - 2, 0))]
            body.append(Wait(FDB_AGE_INTERVAL + device.ageing))
        else:
            device = random_device(rng, mixed)
            count = min(left, EPISODE_STEPS)
            body = [random_step(rng, device, mixed) for _ in range(max(count - 1, 0))]
        out.append(Episode(device, (LinkOp("up"), *body)[:count] if count > 1 else (LinkOp("up"),)))
        left -= len(out[-1].steps)
    return out


def _config_call(config: VtepConfig) -> str:
    defaults = VtepConfig(vni=config.vni)
    parts = [f"vni={config.vni}"]
    for f in dataclasses.fields(VtepConfig):
        if f.name in ("vni", "name"):
            continue
        value = getattr(config, f.name)
        if value != getattr(defaults, f.name):
            parts.append(f"{f.name}={value!r}")
    return f"VtepConfig({', '.join(parts)})"


def python_script(episode: Episode, times: list[float] | None = None) -> list[str]:
    """The Python calls that do ``episode`` to the model (``times``: the clock at each step)."""
    lines = [
        "from pyvxlan import FdbState, Vtep, VtepConfig",
        f"vtep = Vtep({_config_call(episode.device.config())})",
    ]
    clock = 0.0
    for i, step in enumerate(episode.steps):
        if times is not None and i < len(times):
            clock = times[i]
        elif isinstance(step, Wait):
            clock += step.seconds
        if isinstance(step, Wait):
            lines.append(f"vtep.handle_timer({clock:.3f})")
            continue
        method, args, kw = step.call()
        if isinstance(step, Datagram):
            kw = {"now": clock}
        lines.append(python_call(method, args, kw))
    return lines


def shell_script(episode: Episode, a: str, b: str, *, with_rig: bool = True) -> list[str]:
    """The shell commands that do ``episode`` to a real device in namespace ``a``."""
    lines = rig_commands(a, b) if with_rig else []
    lines += device_commands(episode.device, a)
    lines += [render(step, episode.device, a, b) for step in episode.steps]
    return lines


def elapsed(start: float) -> float:
    """Seconds since ``start`` (``time.monotonic``)."""
    return time.monotonic() - start


def implemented(only: Iterable[Category]) -> frozenset[Category]:
    """The categories of ``only`` this engine drives."""
    return frozenset(c for c in only if c in IMPLEMENTED)
