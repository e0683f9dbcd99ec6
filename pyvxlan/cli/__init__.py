"""The ``pyvxlan`` command. Each subcommand lives in its own module with a ``register`` function.

Errors a user can cause (a bad file, a bad argument, a missing privilege) print one line and exit
with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from pyvxlan.errors import VxlanError

__all__ = ["UsageError", "main"]

# Each module defines ``register(subparsers) -> None``; the parser it adds sets ``func`` to a
# callable taking the parsed namespace and returning the exit status.
_COMMAND_MODULES: tuple[str, ...] = ("decode", "demo", "run", "lab")


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors: one line and status 2, as for every other usage problem.
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pyvxlan", description="VXLAN codecs, simulator and kernel labs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"pyvxlan.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pyvxlan``; returns the exit status (0 ok, 1 an expectation failed, 2 usage)."""
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except (UsageError, VxlanError, OSError) as exc:
        print(f"pyvxlan: error: {exc}" if not isinstance(exc, UsageError) else f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyvxlan: interrupted", file=sys.stderr)
        return 130
