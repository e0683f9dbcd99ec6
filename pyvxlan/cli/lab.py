"""``pyvxlan lab cleanup``: remove what crashed kernel labs left behind, and nothing else.

A lab's namespaces are named ``pvx`` + four hex digits + ``-`` + a host, guest or ``underlay``
(see :mod:`pyvxlan.kernel.lab`); every interface of a lab lives inside them, so removing the
namespaces removes the veths, bridges and vxlan devices too. Links in the initial namespace whose
name starts with a lab prefix are removed as well (a lab never makes any, but a crash while a
link is being moved could leave one).
"""

from __future__ import annotations

import argparse
import errno
import re
from typing import Any

__all__ = ["cleanup", "register"]


def cleanup(prefix: str | None = None) -> list[str]:
    """Remove lab namespaces (and prefixed links) of ``prefix``, or of every lab; returns what went.

    Raises :class:`~pyvxlan.PrivilegeError` without root or CAP_NET_ADMIN and
    :class:`~pyvxlan.ConfigError` for a prefix that is not a lab prefix.
    """
    from pyvxlan.kernel import lab_namespaces
    from pyvxlan.kernel import netlink as nl
    from pyvxlan.kernel.lab import _check_prefix

    if prefix is not None:
        _check_prefix(prefix)
    nl.require_privilege("remove lab namespaces")
    removed = []
    for ns in lab_namespaces(prefix):
        nl.netns_remove(ns)
        removed.append(f"namespace {ns}")
    pattern = re.compile(re.escape(prefix) if prefix else r"pvx[0-9a-f]{4}")
    rtnl = nl.Rtnl(None)
    try:
        for index, name in sorted(rtnl.names().items()):
            if pattern.match(name):
                try:
                    rtnl.delete(index)
                except nl.NetlinkFailure as exc:
                    if exc.errno != errno.ENODEV:
                        raise OSError(exc.errno, f"cannot remove link {name}: {exc}") from None
                    continue  # the other end of a veth pair removed just before
                removed.append(f"link {name}")
    finally:
        rtnl.close()
    return removed


def register(subparsers: Any) -> None:
    """Add ``lab`` (with ``cleanup``) to the ``pyvxlan`` command."""
    from pyvxlan.cli import _Parser  # one-line usage errors, exit status 2

    p = subparsers.add_parser("lab", help="manage kernel labs (network namespaces)", description="Manage kernel labs.")
    sub = p.add_subparsers(dest="lab_command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    c = sub.add_parser(
        "cleanup",
        help="remove the namespaces and links that crashed labs left behind",
        description="Remove every lab namespace (pvx<4 hex digits>-...) and prefixed link, or those of one --prefix. "
        "Needs root or CAP_NET_ADMIN.",
    )
    c.add_argument("--prefix", metavar="P", help="only this lab's (pvx and four hex digits, e.g. pvx1a2b)")
    c.set_defaults(func=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    removed = cleanup(args.prefix)
    for what in removed:
        print(f"removed {what}")
    if not removed:
        print("nothing to remove")
    return 0
