"""The public import path of :mod:`pyvxlan.sim.memory`, where the code lives.

``from pyvxlan.memory import ...`` is what the README and the docs show; the module sits with its
layer (``pyvxlan/sim/``) so the tree shows the architecture.
"""

from __future__ import annotations

from pyvxlan.sim.memory import (
    MemoryVtep,
)

__all__ = [
    "MemoryVtep",
]
