"""The kernel backend: real Linux vxlan devices and labs in network namespaces.

:class:`KernelVtep` drives one vxlan device through netlink (the same
:class:`~pyvxlan.VtepControl` as the simulator's VTEP); :func:`open_lab` builds a whole
:class:`~pyvxlan.topology.Topology` in namespaces and :func:`lab_commands` prints the ``ip`` and
``bridge`` commands that build the same by hand. Needs the ``kernel`` extra (pyroute2), and root or
CAP_NET_ADMIN for anything but :func:`lab_commands`.
"""

from __future__ import annotations

from pyvxlan.kernel.lab import KernelGuest, KernelLab, lab_commands, lab_namespaces, new_prefix, open_lab
from pyvxlan.kernel.vtep import KernelVtep, NotificationStream, open_vtep

__all__ = [
    "KernelGuest",
    "KernelLab",
    "KernelVtep",
    "NotificationStream",
    "lab_commands",
    "lab_namespaces",
    "new_prefix",
    "open_lab",
    "open_vtep",
]
