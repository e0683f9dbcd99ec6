"""Differential conformance: the model against the kernel actually running here.

:func:`conform` builds scratch namespaces, plays random episodes (a fresh vxlan device and a
sequence of ``bridge fdb``/``ip neigh``/``ip link`` commands, crafted datagrams from a peer
namespace, waits) on a real device and on the model side by side, compares after every step, and
shrinks the first disagreement of each episode to a minimal reproduction. The kernel's state is
read back through iproute2's JSON, not through pyvxlan's netlink code.

Other projects hold their own model against the kernel by passing ``model``: any callable that
takes a :class:`~pyvxlan.VtepConfig` and returns an object with :class:`pyvxlan.Vtep`'s methods::

    report = pyvxlan.conform.conform(seed=1, steps=300, model=MyVtep)
    assert report.ok, report.text()
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyvxlan.conform.engine import (
    Disagreement,
    Episode,
    Mismatch,
    compare,
    episodes,
    implemented,
    play,
    python_script,
    shell_script,
    shrink,
)
from pyvxlan.conform.oracle import KernelOracle, ModelFactory, ModelOracle, Oracle, Snapshot
from pyvxlan.conform.quirks import QUIRKS, Quirk
from pyvxlan.conform.steps import IMPLEMENTED, Category, Device
from pyvxlan.errors import ConfigError

__all__ = [
    "IMPLEMENTED",
    "QUIRKS",
    "Category",
    "Device",
    "Disagreement",
    "Episode",
    "Finding",
    "KernelOracle",
    "Mismatch",
    "ModelOracle",
    "Oracle",
    "Quirk",
    "Report",
    "Snapshot",
    "compare",
    "conform",
    "episodes",
    "parse_only",
    "play",
    "shrink",
]


def parse_only(text: str) -> frozenset[Category]:
    """``--only``'s value (``ctl,rx``) as categories; :class:`~pyvxlan.ConfigError` ("only") for an
    unknown name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("only", "names no category")
    out: set[Category] = set()
    for name in names:
        try:
            category = Category(name)
        except ValueError:
            known = ",".join(c.value for c in Category)
            raise ConfigError("only", f"unknown category {name!r} (known: {known})") from None
        out.add(category)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Finding:
    """A disagreement, shrunk: the minimal episode, and both reproductions."""

    disagreement: Disagreement
    shell: tuple[str, ...]
    python: tuple[str, ...]
    original_steps: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        d = self.disagreement
        return {
            "device": d.episode.device.ip_link_add(),
            "steps": len(d.episode.steps),
            "original_steps": self.original_steps,
            "step": d.index,
            "mismatches": [{"field": m.field, "kernel": m.kernel, "model": m.model} for m in d.mismatches],
            "shell": list(self.shell),
            "python": list(self.python),
        }

    def text(self) -> str:
        """The finding as the report prints it."""
        d = self.disagreement
        lines = [
            f"disagreement after step {d.index + 1} of {len(d.episode.steps)} "
            f"(shrunk from {self.original_steps} steps)",
        ]
        for m in d.mismatches:
            lines.append(f"  {m.field}:")
            lines.append(f"    kernel (expected): {m.kernel}")
            lines.append(f"    model  (actual):   {m.model}")
        lines.append("  kernel reproduction (shell, as root):")
        lines += [f"    {c}" for c in self.shell]
        lines.append("  model reproduction (Python):")
        lines += [f"    {c}" for c in self.python]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Report:
    """What a run found: where it ran, what it compared (``counts``: per category, the steps
    played and the comparisons made), what differed."""

    seed: int
    kernel_release: str
    iproute2: str
    categories: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    findings: tuple[Finding, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """No disagreement."""
        return not self.findings

    @property
    def steps(self) -> int:
        """Steps played (shrinking's replays not counted)."""
        return sum(c["steps"] for c in self.counts.values())

    @property
    def comparisons(self) -> int:
        """Comparisons made (one after every step)."""
        return sum(c["comparisons"] for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return {
            "kernel_release": self.kernel_release,
            "iproute2": self.iproute2,
            "seed": self.seed,
            "categories": list(self.categories),
            "counts": self.counts,
            "steps": self.steps,
            "comparisons": self.comparisons,
            "disagreements": [f.as_dict() for f in self.findings],
            "quirks": [
                {
                    "name": q.name,
                    "category": q.category.value,
                    "behaviour": q.behaviour,
                    "kernel_function": q.kernel_function,
                }
                for q in QUIRKS
            ],
            "seconds": round(self.seconds, 1),
        }

    def json(self) -> str:
        """The report as one JSON object."""
        return json.dumps(self.as_dict(), indent=2)

    def text(self) -> str:
        """The report for a terminal."""
        lines = [
            f"kernel {self.kernel_release}, {self.iproute2}, seed {self.seed}",
        ]
        for name, c in sorted(self.counts.items()):
            lines.append(f"  {name:<6} {c['steps']:>6} steps {c['comparisons']:>6} comparisons")
        lines.append(f"  {len(self.findings)} disagreement(s) in {self.seconds:.1f} s")
        for finding in self.findings:
            lines.append(finding.text())
        lines.append(f"known kernel quirks the model copies ({len(QUIRKS)}):")
        lines += [f"  {q.name} [{q.category.value}] ({q.kernel_function.replace('`', '')})" for q in QUIRKS]
        return "\n".join(lines)


def conform(
    seed: int = 0,
    steps: int = 500,
    only: Iterable[Category] = IMPLEMENTED,
    *,
    model: ModelFactory | None = None,
    kernel: Oracle | None = None,
    keep: bool = False,
    prefix: str | None = None,
    shrink_budget: int = 150,
    shrink_seconds: float = 60.0,
    max_findings: int = 5,
) -> Report:
    """Hold ``model`` (default :class:`pyvxlan.Vtep`) against ``kernel`` (default: a real vxlan
    device in scratch namespaces, :class:`KernelOracle`; needs root) for ``steps`` random steps of
    the ``only`` categories drawn from ``seed``. Every disagreement (at most ``max_findings``, one
    per episode) is shrunk and reported with its reproduction; the namespaces are removed on every
    exit path unless ``keep`` (they are named ``PREFIXa``, ``PREFIXb`` and ``PREFIXc``; ``prefix``
    defaults to ``pvc`` and 6 random hex digits)."""
    from pyvxlan.core.vtep import Vtep

    cats = implemented(only)
    if not cats:
        raise ConfigError("only", "names no category this engine compares")
    factory: ModelFactory = model if model is not None else Vtep
    start = time.monotonic()
    owned = kernel is None
    side: Oracle = KernelOracle(prefix, keep=keep) if kernel is None else kernel
    if isinstance(side, KernelOracle):
        release, iproute2 = side.kernel_release, side.iproute2_version()
    else:
        release, iproute2 = "(a model)", "(none)"
    findings: list[Finding] = []
    counts: dict[Category, list[int]] = {}
    mirror = ModelOracle(factory)
    try:
        for episode in episodes(seed, steps, cats):
            found = play(episode, side, mirror, counts)
            if found is None:
                continue
            small = shrink(found, lambda e: play(e, side, mirror), budget=shrink_budget, seconds=shrink_seconds)
            a, b = (side.a, side.b) if isinstance(side, KernelOracle) else ("A", "B")
            findings.append(
                Finding(
                    small,
                    tuple(shell_script(small.episode, a, b)),
                    tuple(python_script(small.episode)),
                    len(episode.steps),
                )
            )
            if len(findings) >= max_findings:
                break
    finally:
        if owned:
            side.close()
        mirror.close()
    return Report(
        seed=seed,
        kernel_release=release,
        iproute2=iproute2,
        categories=tuple(sorted(c.value for c in cats)),
        counts={c.value: {"steps": n[0], "comparisons": n[1]} for c, n in counts.items()},
        findings=tuple(findings),
        seconds=time.monotonic() - start,
    )
