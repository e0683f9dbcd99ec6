"""Whether the kernel backend's extra (pyroute2) is installed, and the one error saying it is not.

Without it the kernel modules still import: a lab renders as commands (:func:`pyvxlan.kernel.lab_commands`),
which needs no netlink; everything that touches the kernel calls :func:`require_kernel_extra` first.
"""

from __future__ import annotations

from pyvxlan.errors import ConfigError

__all__ = ["HAVE_NETLINK", "require_kernel_extra"]

try:
    from pyvxlan.kernel import netlink as _netlink  # noqa: F401 - imported to learn whether pyroute2 is there
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] != "pyroute2":
        raise
    HAVE_NETLINK = False
else:
    HAVE_NETLINK = True


def require_kernel_extra() -> None:
    """Raise :class:`~pyvxlan.ConfigError` (field ``backend``) when pyroute2, the ``kernel``
    extra, is not installed: one line that says what to install, instead of an import traceback."""
    if not HAVE_NETLINK:
        raise ConfigError("backend", "the kernel backend needs pyroute2: pip install 'pyvxlan[kernel]'")
