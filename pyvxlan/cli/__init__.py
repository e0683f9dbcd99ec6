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
    """A problem the user can fix; printed as ``PROG: error: MESSAGE``, exit status 2."""

    def __init__(self, message: str, *, prog: str = "pyvxlan") -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors: one line and status 2, as for every other usage problem.
        raise UsageError(message, prog=self.prog)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that subcommand's module is imported.

    Importing every subcommand would cost ``pyvxlan decode`` the simulator's imports (trio and
    more) on every run: a fifth of a second that the decode benchmark counts.
    """
    parser = _Parser(prog="pyvxlan", description="VXLAN codecs, simulator and kernel labs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    names = (command,) if command in _COMMAND_MODULES else _COMMAND_MODULES
    for name in names:
        module = importlib.import_module(f"pyvxlan.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pyvxlan``; returns the exit status (0 ok, 1 an expectation failed, 2 usage)."""
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except (UsageError, VxlanError, OSError) as exc:
        prog = exc.prog if isinstance(exc, UsageError) else "pyvxlan"
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pyvxlan: interrupted", file=sys.stderr)
        return 130
