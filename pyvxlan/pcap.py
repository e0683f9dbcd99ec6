"""The public import path of :mod:`pyvxlan.wire.pcap`, where the code lives.

``from pyvxlan.pcap import ...`` is what the README and the guides show; the module sits with its
layer (``pyvxlan/wire/``) so that the tree shows the architecture. Everything it
exports is the layer module's own ``__all__``, so the two never differ.
"""

from __future__ import annotations

from pyvxlan.wire.pcap import *  # noqa: F403 - the layer module's public names, as they are
from pyvxlan.wire.pcap import __all__  # noqa: F401 - the same public names
