"""pyvxlan.kernel.netns: a function run in a network namespace from a thread of its own."""

from __future__ import annotations

import doctest
import errno
import os
import secrets
import socket
import threading

import pytest

from pyvxlan import ConfigError
from pyvxlan.kernel import netns as netns_module
from pyvxlan.kernel.netns import NETNS_DIR, in_netns, netns_path, socket_in


def test_module_examples() -> None:
    # tests/test_docs.py leaves pyvxlan.kernel's modules to their own tests.
    result = doctest.testmod(netns_module)
    assert (result.attempted, result.failed) == (2, 0)


def test_none_runs_here_in_the_callers_thread() -> None:
    assert in_netns(None, threading.get_ident) == threading.get_ident()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "netns: '' is not a valid namespace name"),
        ("a/b", "netns: 'a/b' is not a valid namespace name"),
        ("..", "netns: '..' is not a valid namespace name"),
        ("x" * 256, f"netns: '{'x' * 256}' is not a valid namespace name"),
        (5, "netns: 5 is not a valid namespace name"),
    ],
)
def test_a_name_that_cannot_be_a_namespace(name: object, message: str) -> None:
    ran: list[bool] = []
    with pytest.raises(ConfigError) as info:
        in_netns(name, lambda: ran.append(True))  # type: ignore[arg-type]
    assert (str(info.value), ran) == (message, [])


def test_a_missing_namespace_is_refused_before_anything_runs() -> None:
    name = "pvxk-none-" + secrets.token_hex(4)
    ran: list[bool] = []
    with pytest.raises(ConfigError) as info:
        in_netns(name, lambda: ran.append(True))
    assert (str(info.value), ran) == (f"netns: no network namespace named {name!r}", [])


def _thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@pytest.mark.kernel
def test_fn_runs_inside_and_the_caller_stays_where_it_was(netns: str) -> None:
    here = _thread_netns()
    inside, thread = in_netns(netns, lambda: (_thread_netns(), threading.get_ident()))
    assert inside == os.stat(netns_path(netns)).st_ino == os.stat(os.path.join(NETNS_DIR, netns)).st_ino
    assert inside != here
    assert thread != threading.get_ident()
    assert _thread_netns() == here


@pytest.mark.kernel
def test_what_fn_raises_is_raised_to_the_caller(netns: str) -> None:
    def fails() -> None:
        raise LookupError("from inside")

    with pytest.raises(LookupError, match=r"^from inside$"):
        in_netns(netns, fails)


@pytest.mark.kernel
def test_a_socket_made_inside_stays_there(netns: str) -> None:
    with socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM) as inside:
        inside.bind(("0.0.0.0", 0))
        port = inside.getsockname()[1]
        # The same port is free here (another namespace) and taken there.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as here:
            here.bind(("0.0.0.0", port))
        with socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM) as twin, pytest.raises(OSError) as info:
            twin.bind(("0.0.0.0", port))
        assert info.value.errno == errno.EADDRINUSE
