"""The public import path of :mod:`pyvxlan.lab.scenario`, where the code lives.

``from pyvxlan.scenario import ...`` is what the README and the guides show; the module sits with its
layer (``pyvxlan/lab/``) so that the tree shows the architecture. Everything it
exports is the layer module's own ``__all__``, so the two never differ.
"""

from __future__ import annotations

from pyvxlan.lab.scenario import *  # noqa: F403 - the layer module's public names, as they are
from pyvxlan.lab.scenario import __all__  # noqa: F401 - the same public names
