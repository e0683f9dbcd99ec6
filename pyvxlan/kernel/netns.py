"""Entering a network namespace: the one place pyvxlan does it, from a short-lived thread.

A network namespace belongs to a thread (``setns(2)`` moves only its caller), and a socket, a TAP
device or an open ``/proc/sys/net`` file belongs for life to the namespace it was made in. So
:func:`in_netns` runs a function in a thread of its own that enters the namespace and ends with
it: the caller's thread never changes namespace, and nothing is forked (a forked helper would
inherit the process's signal handlers and run its clean-up, and costs a process per socket).

The UDP driver, the kernel backend and the conformance oracle all come here. No pyroute2: the
UDP driver runs without the ``kernel`` extra.

>>> in_netns(None, lambda: "here")
'here'
>>> in_netns("../x", lambda: "there")
Traceback (most recent call last):
...
pyvxlan.errors.ConfigError: netns: '../x' is not a valid namespace name
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import socket
import threading
from collections.abc import Callable
from typing import Final, TypeVar

from pyvxlan.errors import BackendError, ConfigError, PrivilegeError

__all__ = ["CLONE_NEWNET", "NETNS_DIR", "check_netns_name", "in_netns", "netns_path", "socket_in"]

NETNS_DIR: Final = "/run/netns"  # where ``ip netns add NAME`` keeps the namespace's handle
CLONE_NEWNET: Final = 0x40000000  # include/uapi/linux/sched.h

T = TypeVar("T")


def check_netns_name(name: object) -> str:
    """``name`` if it can name a namespace (one file name in :data:`NETNS_DIR`, as ``ip netns``
    takes it); :class:`~pyvxlan.ConfigError` (``netns``) otherwise."""
    if type(name) is not str or not name or "/" in name or name in (".", "..") or len(name) > 255:
        raise ConfigError("netns", f"{name!r} is not a valid namespace name")
    return name


def netns_path(name: str) -> str:
    """The handle of the existing namespace ``name`` (``/run/netns/NAME``); :class:`~pyvxlan.ConfigError`
    (``netns``) when the name is not valid or there is no such namespace. Nothing is created."""
    path = os.path.join(NETNS_DIR, check_netns_name(name))
    if not os.path.exists(path):
        raise ConfigError("netns", f"no network namespace named {name!r}")
    return path


@functools.cache
def _libc() -> ctypes.CDLL:
    # The process's own symbols, libc's setns among them (os.setns needs Python 3.12).
    return ctypes.CDLL(None, use_errno=True)


def _enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc().setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            if code == errno.EPERM:
                raise PrivilegeError("netns: entering a network namespace needs CAP_SYS_ADMIN")
            raise BackendError(code, "netns", f"setns failed: {os.strerror(code)}")
    finally:
        os.close(fd)


def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """``fn()`` run in network namespace ``netns`` (``None``: here, in the caller's thread).

    ``fn`` runs in a new thread that enters the namespace; its result is returned and whatever it
    raises is raised here. The caller blocks until it is done: keep ``fn`` short (make a socket,
    open a device, write a sysctl) and use what it made from any thread afterwards.

    A name that is not valid or not there is a :class:`~pyvxlan.ConfigError` (``netns``), checked
    before any thread starts; a refused ``setns`` is a :class:`~pyvxlan.PrivilegeError` (no
    CAP_SYS_ADMIN) or a :class:`~pyvxlan.errors.BackendError` carrying the errno.
    """
    if netns is None:
        return fn()
    path = netns_path(netns)
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _enter(path)
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=run, name=f"pyvxlan-netns-{netns}")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]


def socket_in(netns: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket made in network namespace ``netns`` (``None``: here); it stays there for life.

    Errors as :func:`in_netns`'s, and :class:`OSError` from :func:`socket.socket` itself.
    """
    return in_netns(netns, lambda: socket.socket(family, kind, proto))
