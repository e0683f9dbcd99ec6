"""BGP EVPN for VXLAN (RFC 7432, RFC 8365): the wire codec and the sans-I/O EVPN state machine.

:mod:`pyvxlan.evpn.codec` turns BGP messages carrying EVPN routes into frozen values and back;
:mod:`pyvxlan.evpn.machine` turns received routes into VTEP operations and local MACs into routes;
:mod:`pyvxlan.evpn.session` is a BGP session (sans-I/O core, trio driver) and
:mod:`pyvxlan.evpn.agent` runs the machine on a VTEP over such a session.
"""

from __future__ import annotations

from pyvxlan.evpn import agent, codec, machine, session
from pyvxlan.evpn.agent import *  # noqa: F403 - each module's __all__ is part of this package's surface
from pyvxlan.evpn.codec import *  # noqa: F403
from pyvxlan.evpn.machine import *  # noqa: F403
from pyvxlan.evpn.session import *  # noqa: F403

__all__ = [*codec.__all__, *machine.__all__, *session.__all__, *agent.__all__]  # noqa: PLE0604
