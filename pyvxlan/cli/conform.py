"""``pyvxlan conform``: the model against the kernel running here, step by step (needs root).

Exit status 0 when every comparison agreed, 1 on a disagreement (each printed, shrunk, with its
reproduction), 2 on bad usage or without the privilege to make namespaces. Ctrl-C and SIGTERM
unwind through the engine, which removes its namespaces (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pyvxlan.cli import UsageError
from pyvxlan.errors import ConfigError

__all__ = ["register"]


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be at least 1")
    return value


def _seed(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: not a number") from None


def _prefix(text: str) -> str:
    if not 1 <= len(text) <= 40 or not all(c.isalnum() or c in "-_" for c in text):
        raise argparse.ArgumentTypeError(f"invalid prefix {text!r}: letters, digits, - and _ (at most 40)")
    return text


def register(subparsers: Any) -> None:
    """Add ``conform`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "conform",
        help="hold pyvxlan's model against this machine's kernel (root)",
        description="Run random sequences of bridge fdb / ip neigh / ip link commands, crafted VXLAN "
        "datagrams and frames from a guest behind a bridge against a real vxlan device in scratch namespaces and against pyvxlan.Vtep side by side, "
        "compare after every step (iproute2's JSON is the kernel's side), and print each disagreement "
        "shrunk to a minimal reproduction. Exit 0: all agree; 1: a disagreement; 2: usage or privilege.",
    )
    p.add_argument("--seed", type=_seed, default=0, metavar="N", help="the random seed (default 0)")
    p.add_argument("--steps", type=_count, default=500, metavar="N", help="steps in all (default 500)")
    p.add_argument(
        "--only",
        default="ctl,rx,age,tx,proxy,neigh",
        metavar="CATS",
        help="comma-separated categories: ctl, rx, age, tx, proxy, neigh (default all)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--keep", action="store_true", help="leave the scratch namespaces for inspection")
    p.add_argument(
        "--prefix",
        type=_prefix,
        default=None,
        metavar="NAME",
        help="the scratch namespaces are NAMEa and NAMEb (default pvc and 6 random hex digits)",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from pyvxlan.conform import conform, parse_only

    try:
        only = parse_only(args.only)
    except ConfigError as exc:
        raise UsageError(f"--only: {exc.reason}", prog="pyvxlan conform") from None
    report = conform(seed=args.seed, steps=args.steps, only=only, keep=args.keep, prefix=args.prefix)
    print(report.json() if args.json else report.text())
    sys.stdout.flush()
    return 0 if report.ok else 1
