"""The public import path of :mod:`pyvxlan.sim.memory`, where the code lives.

``from pyvxlan.memory import ...`` is what the README and the guides show; the module sits with its
layer (``pyvxlan/sim/``) so that the tree shows the architecture. Everything it
exports is the layer module's own ``__all__``, so the two never differ.
"""

from __future__ import annotations

from pyvxlan.sim.memory import *  # noqa: F403 - the layer module's public names, as they are
from pyvxlan.sim.memory import __all__  # noqa: F401 - the same public names
