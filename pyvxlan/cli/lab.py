"""``pyvxlan lab cleanup``: remove what crashed kernel labs left behind, and nothing else.

A lab's namespaces are named ``pvx`` + four hex digits + ``-`` + a host, guest or ``underlay``
(see :mod:`pyvxlan.kernel.lab`); every interface of a lab lives inside them, so removing the
namespaces removes the veths, bridges and vxlan devices too. Links in the initial namespace whose
name starts with a lab prefix are removed as well (a lab never makes any, but a crash while a
link is being moved could leave one).

A running lab holds a lock (``/run/pyvxlan/<prefix>.lock``) for its whole life, so cleanup can
tell a lab whose owner is gone from one still in use: it removes the first and leaves the second
alone, saying so, unless ``--force``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``lab`` (with ``cleanup``) to the ``pyvxlan`` command."""
    from pyvxlan.cli import _Parser  # one-line usage errors, exit status 2

    p = subparsers.add_parser("lab", help="manage kernel labs (network namespaces)", description="Manage kernel labs.")
    sub = p.add_subparsers(dest="lab_command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    c = sub.add_parser(
        "cleanup",
        help="remove the namespaces and links that crashed labs left behind",
        description="Remove the namespaces (pvx<4 hex digits>-...) and prefixed links of every lab whose owner "
        "process is gone, or of one --prefix. Labs still running are left alone unless --force. "
        "Needs root or CAP_NET_ADMIN.",
    )
    c.add_argument("--prefix", metavar="P", help="only this lab's (pvx and four hex digits, e.g. pvx1a2b)")
    c.add_argument("--force", action="store_true", help="remove labs whose owner is still running too")
    c.set_defaults(func=_cleanup)


def _cleanup(args: argparse.Namespace) -> int:
    from pyvxlan.kernel.lab import cleanup

    report = cleanup(args.prefix, force=args.force)
    for what in report.removed:
        print(f"removed {what}")
    for why in report.kept:
        print(f"left {why}")
    if not report.removed and not report.kept:
        print("nothing to remove")
    return 0
