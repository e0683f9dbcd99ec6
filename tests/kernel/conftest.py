"""Fixtures for the kernel backend's tests: root, a throw-away namespace, and a leak check.

Every test here needs root (or CAP_NET_ADMIN), network namespaces and vxlan devices. Without
them the tests skip with the reason, which ``CI=true`` turns into a failure (CI runs as root).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest

from pyvxlan.kernel import netlink as nl

# Everything these tests create is named pvxk... (their own namespaces) or pvx<4 hex>-... (labs).
TEST_PREFIX = "pvxk"


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}


def kernel_available() -> str | None:
    """Why the kernel tests cannot run here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and vxlan devices)"
    if not os.path.isdir("/proc/sys/net/ipv4"):
        return "no network stack"
    return None


@pytest.fixture
def root() -> None:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def netns(root: None) -> Iterator[str]:
    """A fresh network namespace named pvxk<4 hex>, removed afterwards whatever happens."""
    name = TEST_PREFIX + secrets.token_hex(2)
    nl.netns_create(name)
    try:
        yield name
    finally:
        nl.netns_remove(name)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the kernel tests: no namespace this process made is left, and no new pvx... link in
    the initial namespace. (Namespaces are recorded as they are made, so labs that other
    processes run at the same time do not count.)"""
    if kernel_available():
        yield
        return
    made: list[str] = []
    real_create = nl.netns_create

    def recording_create(name: str) -> None:
        real_create(name)
        made.append(name)

    before_links = _root_links()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nl, "netns_create", recording_create)
        yield
    left_ns = {n for n in made if nl.netns_exists(n)}
    left_links = {n for n in _root_links() - before_links if n.startswith("pvx")}
    assert not left_ns and not left_links, f"left behind: namespaces {sorted(left_ns)}, links {sorted(left_links)}"
