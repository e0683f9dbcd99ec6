"""BGP EVPN for VXLAN (RFC 7432, RFC 8365): the wire codec and the sans-I/O EVPN state machine.

:mod:`pyvxlan.evpn.codec` turns BGP messages carrying EVPN routes into frozen values and back;
:mod:`pyvxlan.evpn.machine` turns received routes into VTEP operations and local MACs into routes.
"""

from __future__ import annotations

from pyvxlan.evpn import codec, machine
from pyvxlan.evpn.codec import *  # noqa: F403 - the codec's __all__ is part of this package's surface
from pyvxlan.evpn.machine import *  # noqa: F403 - and so is the machine's

__all__ = [*codec.__all__, *machine.__all__]  # noqa: PLE0604
