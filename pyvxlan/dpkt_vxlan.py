"""The public import path of :mod:`pyvxlan.wire.dpkt_vxlan`, where the code lives.

``from pyvxlan.dpkt_vxlan import ...`` is what the README and the docs show; the module sits with its
layer (``pyvxlan/wire/``) so the tree shows the architecture.
"""

from __future__ import annotations

from pyvxlan.wire.dpkt_vxlan import (
    VXLAN,
    vxlan_of,
)

__all__ = [
    "VXLAN",
    "vxlan_of",
]
