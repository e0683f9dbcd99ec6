"""The public import path of :mod:`pyvxlan.lab.scenario`, where the code lives.

``from pyvxlan.scenario import ...`` is what the README and the docs show; the module sits with its
layer (``pyvxlan/lab/``) so the tree shows the architecture.
"""

from __future__ import annotations

from pyvxlan.lab.scenario import (
    COUNTERS,
    EVENT_KINDS,
    MAX_SECONDS,
    SIM_ONLY,
    Scenario,
    Step,
    StepResult,
    check_backend,
    load_scenario,
    needs_all_events,
    parse_scenario,
    run_scenario,
)

__all__ = [
    "MAX_SECONDS",
    "SIM_ONLY",
    "Scenario",
    "Step",
    "StepResult",
    "COUNTERS",
    "EVENT_KINDS",
    "check_backend",
    "load_scenario",
    "needs_all_events",
    "parse_scenario",
    "run_scenario",
]
