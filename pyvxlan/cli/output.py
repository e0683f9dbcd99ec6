"""Writing a command's output: bounded chunks, and a short or failed write is an error that says so.

Shared by the commands that stream lines (``decode``, ``replay``): nothing written is lost
silently, and a reader that goes away (``| head``) ends the command quietly as it ends tcpdump.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable
from typing import IO, Final

__all__ = ["EXIT_SIGPIPE", "WRITE_CHUNK", "OutputError", "checked_writer", "flush_checked", "output_failed"]

WRITE_CHUNK: Final = 1 << 20

EXIT_SIGPIPE: Final = 128 + 13  # what a shell reports for a process that SIGPIPE ended


class OutputError(OSError):
    """Writing the output failed or wrote short: the lines after the failure are lost.

    ``errno`` is the failed write's (EIO for a short write); the message names the stream.
    """

    def __init__(self, stream: str, reason: str, errno_: int | None) -> None:
        super().__init__(f"{stream}: {reason}; the rest of the output is lost")
        self.errno = errno_


def _stream_name(out: IO[str]) -> str:
    name = getattr(out, "name", None)
    return "standard output" if name == "<stdout>" else name if isinstance(name, str) else "output"


def checked_writer(out: IO[str]) -> Callable[[str], None]:
    """A function that writes text to ``out`` in chunks of at most :data:`WRITE_CHUNK` characters.

    A write that reports fewer characters than it was given, or fails, raises :class:`OutputError`
    naming the stream: output is never lost silently.
    """
    name = _stream_name(out)
    write = out.write

    def put(text: str) -> None:
        for i in range(0, len(text), WRITE_CHUNK):
            chunk = text[i : i + WRITE_CHUNK] if len(text) > WRITE_CHUNK else text
            try:
                n = write(chunk)
            except OSError as exc:
                raise OutputError(name, exc.strerror or str(exc), exc.errno) from exc
            if n is not None and n != len(chunk):
                raise OutputError(name, f"short write: {n} of {len(chunk)} characters written", errno.EIO)

    return put


def flush_checked(out: IO[str]) -> None:
    """Flush ``out``; a failure (a closed pipe, a full disk) raises :class:`OutputError`."""
    try:
        out.flush()
    except OSError as exc:
        raise OutputError(_stream_name(out), exc.strerror or str(exc), exc.errno) from exc


def output_failed(exc: OutputError) -> int:
    """End a command whose output failed: the exit status for a closed pipe, else ``exc`` again.

    Standard output is pointed at /dev/null first, so that the interpreter's final flush does not
    fail a second time. A reader that went away (`| head`) wanted no more, as tcpdump's reader does
    when SIGPIPE ends tcpdump: no message, SIGPIPE's status (so `set -o pipefail` sees it). A full
    disk or a short write lost lines, which the error says (the command exits 2).
    """
    with contextlib.suppress(OSError, ValueError):  # ValueError: not a real file (a test's capture)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if exc.errno == errno.EPIPE:
        return EXIT_SIGPIPE
    raise exc
