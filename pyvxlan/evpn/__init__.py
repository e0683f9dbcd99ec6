"""BGP EVPN for VXLAN (RFC 7432, RFC 8365): the wire codec and the sans-I/O EVPN state machine.

:mod:`pyvxlan.evpn.codec` turns BGP messages carrying EVPN routes into frozen values and back.
"""

from __future__ import annotations

from pyvxlan.evpn import codec
from pyvxlan.evpn.codec import *  # noqa: F403 - the codec's __all__ is this package's surface

__all__ = list(codec.__all__)
