"""The public import path of :mod:`pyvxlan.wire.dpkt_vxlan`, where the code lives.

``from pyvxlan.dpkt_vxlan import ...`` is what the README and the guides show; the module sits with its
layer (``pyvxlan/wire/``) so that the tree shows the architecture. Everything it
exports is the layer module's own ``__all__``, so the two never differ.
"""

from __future__ import annotations

from pyvxlan.wire.dpkt_vxlan import *  # noqa: F403 - the layer module's public names, as they are
from pyvxlan.wire.dpkt_vxlan import __all__  # noqa: F401 - the same public names
