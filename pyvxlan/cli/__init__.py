"""The ``pyvxlan`` command. Each subcommand lives in its own module with a ``register`` function.

Errors a user can cause (a bad file, a bad argument, a missing privilege) print one line and exit
with status 2, never a traceback.

SIGTERM and SIGHUP end a command as Ctrl-C (SIGINT) does: whatever is running unwinds, so a kernel
lab removes its namespaces, then one line and status 128 + the signal (130, 143, 129).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType


def _only_interrupts(exc: BaseException) -> bool:
    """A KeyboardInterrupt, or a group of nothing else (trio nurseries wrap what they carry), or
    a RuntimeError that Python made of one: 3.11 wraps whatever a class body's ``__set_name__``
    raises ("Error calling __set_name__"), and a Ctrl-C during an import that defines a dataclass
    (the demo imports ``trio.testing``, which imports pytest) arrives so."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(e) for e in exc.exceptions)
    if type(exc) is RuntimeError and exc.__cause__ is not None:
        return _only_interrupts(exc.__cause__)
    return isinstance(exc, KeyboardInterrupt)


def _quiet_interrupt_hook(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None, previous: Callable[..., object]
) -> None:
    if _only_interrupts(value):
        print("pyvxlan: interrupted", file=sys.stderr)
    else:
        previous(kind, value, tb)


def _install_excepthook() -> None:
    # A Ctrl-C after main() returned, or before it started, reaches the interpreter's top level:
    # one line instead of a KeyboardInterrupt traceback.
    previous = sys.excepthook
    sys.excepthook = lambda kind, value, tb: _quiet_interrupt_hook(kind, value, tb, previous)


# First, before any other import: a Ctrl-C during the rest of start-up is then one line too.
_install_excepthook()

import argparse  # noqa: E402 - after the hook, on purpose
import importlib  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from types import FrameType  # noqa: E402

from pyvxlan.errors import VxlanError  # noqa: E402

__all__ = ["Parser", "UsageError", "main"]

# Each module defines ``register(subparsers) -> None``; the parser it adds sets ``func`` to a
# callable taking the parsed namespace and returning the exit status.
_COMMAND_MODULES: tuple[str, ...] = ("decode", "demo", "run", "draw", "lab", "replay", "conform", "vtep")

# The line printed for each signal that ends a command; the status is 128 + the signal number.
_SIGNALS: dict[int, str] = {
    signal.SIGINT: "interrupted",
    signal.SIGTERM: "terminated",
    signal.SIGHUP: "hung up",
}


class UsageError(Exception):
    """A problem the user can fix; printed as ``PROG: error: MESSAGE``, exit status 2."""

    def __init__(self, message: str, *, prog: str = "pyvxlan") -> None:
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """The parser of ``pyvxlan`` and its subcommands (``parser_class`` of nested subcommands too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors: one line and status 2, as for every other usage problem.
        raise UsageError(message, prog=self.prog)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that subcommand's module is imported.

    Importing every subcommand would cost ``pyvxlan decode`` the simulator's imports (trio and
    more) on every run: a fifth of a second that the decode benchmark counts.
    """
    parser = Parser(prog="pyvxlan", description="VXLAN codecs, simulator and kernel labs.")
    parser.add_argument("--version", action="version", version=f"pyvxlan {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    names = (command,) if command in _COMMAND_MODULES else _COMMAND_MODULES
    for name in names:
        module = importlib.import_module(f"pyvxlan.cli.{name}")
        module.register(sub)
    return parser


def _version() -> str:
    from pyvxlan import __version__

    return __version__


def _os_error(exc: OSError) -> str:
    """``FILE: No such file or directory``, as ls and cp say it, not ``[Errno 2] ...: 'FILE'``."""
    text = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{os.fsdecode(exc.filename)}: {text}"
    return text


class _Signals:
    """SIGTERM and SIGHUP turned into SIGINT, remembering which came.

    Not a handler that raises: inside trio an exception raised at an arbitrary point could break
    the run loop. Handing the signal to SIGINT's own handler lets trio deliver KeyboardInterrupt
    where it is safe, and the labs' clean-up on Ctrl-C then covers every signal.
    """

    def __init__(self) -> None:
        self.received = signal.SIGINT
        self.pid = os.getpid()
        self._saved: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python runs signal handlers in the main thread only, and sets them there only
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # A background job of a shell without job control starts with SIGINT ignored. The
            # other signals are handed to SIGINT's handler, which trio installs only over Python's
            # default one: without it SIGTERM could not unwind a lab safely.
            self._saved[signal.SIGINT] = signal.SIG_IGN
            signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue  # nohup and friends: the user asked for this signal to be ignored
            self._saved[signum] = previous
            signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, previous)
        self._saved.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:
            # A fork that did not exec (pyroute2 forks a helper to enter a namespace) inherits
            # this handler: there the signal must do what its sender expects, end the process,
            # not run pyvxlan's unwinding in a copy of it (the helper's parent then waits forever).
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.received = signal.Signals(signum)
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # someone set SIG_IGN or SIG_DFL since: still end, as asked
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)  # trio's (deferred while protected) or Python's default


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pyvxlan``; returns the exit status (0 ok, 1 an expectation failed, 2 usage, 128 +
    the signal number when SIGINT, SIGTERM or SIGHUP ended it)."""
    signals = _Signals()
    signals.install()
    starting = _starting(signals)
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        if starting:
            # From here a KeyboardInterrupt unwinds (trio installs its handler over this one only).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            starting = False
        return func(args)
    except (UsageError, VxlanError, OSError) as exc:
        prog = exc.prog if isinstance(exc, UsageError) else "pyvxlan"
        print(f"{prog}: error: {_os_error(exc) if isinstance(exc, OSError) else exc}", file=sys.stderr)
        return 2
    except BaseException as exc:
        if not _only_interrupts(exc):
            raise
        print(f"pyvxlan: {_SIGNALS[signals.received]}", file=sys.stderr)
        return 128 + signals.received
    finally:
        if starting:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signals.restore()


def _starting(signals: _Signals) -> bool:
    """While the command starts (imports, parsing), SIGINT ends the process at once with the one
    line: a KeyboardInterrupt raised inside an import's lock callback or a weakref callback is
    printed as "Exception ignored" and lost, and nothing exists yet that needs unwinding. Returns
    whether the handler was installed (only over Python's default one, in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != signals.pid:
            return  # not in a fork: see _Signals._handle
        os.write(2, f"pyvxlan: {_SIGNALS[signals.received]}\n".encode())
        os._exit(128 + signals.received)

    signal.signal(signal.SIGINT, interrupted)
    return True
