"""The kernel backend: real Linux vxlan devices and labs in network namespaces.

:class:`KernelVtep` drives one vxlan device through netlink (the same
:class:`~pyvxlan.VtepControl` as the simulator's VTEP); :func:`open_lab` builds a whole
:class:`~pyvxlan.lab.topology.Topology` in namespaces and :func:`lab_commands` prints the ``ip`` and
``bridge`` commands that build the same by hand. Needs the ``kernel`` extra (pyroute2), and root or
CAP_NET_ADMIN for anything but :func:`lab_commands`, which works without either. Without pyroute2,
the rest raises :class:`~pyvxlan.ConfigError` saying to install ``pyvxlan[kernel]``.

Inside: :mod:`pyvxlan.kernel.messages` is the rtnetlink message codec (bytes and values, no
sockets, no pyroute2), :mod:`pyvxlan.kernel.netlink` the sockets that carry it (the only pyroute2
importer), :mod:`pyvxlan.kernel.vtep` the device driver, and the other modules the labs.
A kernel refusal is a :class:`~pyvxlan.errors.BackendError` carrying the errno.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyvxlan.kernel.lab import (
    HAVE_NETLINK,
    KernelGuest,
    KernelLab,
    lab_commands,
    lab_namespaces,
    new_prefix,
    open_lab,
    require_kernel_extra,
)

if TYPE_CHECKING or HAVE_NETLINK:
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
    "require_kernel_extra",
]


def __getattr__(name: str) -> Any:
    # Only reached without pyroute2: the VTEP names were not imported above.
    if name in ("KernelVtep", "NotificationStream", "open_vtep"):
        require_kernel_extra()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
