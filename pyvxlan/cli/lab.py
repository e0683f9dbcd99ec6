"""``pyvxlan lab cleanup``: remove what crashed kernel labs left behind, and nothing else.

The command only parses and prints: what a lab's names are, who owns a lab and what cleanup
removes (namespaces, and prefixed links in the initial namespace) live in
:mod:`pyvxlan.kernel.cleanup`. A lab whose owner still runs is left alone, saying so, unless
``--force``.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``lab`` (with ``cleanup``) to the ``pyvxlan`` command."""
    from pyvxlan.cli import Parser  # one-line usage errors, exit status 2

    p = subparsers.add_parser("lab", help="manage kernel labs (network namespaces)", description="Manage kernel labs.")
    sub = p.add_subparsers(dest="lab_command", metavar="COMMAND", parser_class=Parser)
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
    from pyvxlan.kernel.cleanup import cleanup

    report = cleanup(args.prefix, force=args.force)
    for what in report.removed:
        print(f"removed {what}")
    for why in report.kept:
        print(f"left {why}")
    if not report.removed and not report.kept:
        print("nothing to remove")
    return 0
