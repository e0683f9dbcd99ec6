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


def _leftovers() -> set[str]:
    return {n for n in nl.netns_list() if n.startswith(TEST_PREFIX) or nl.netns_exists(n) and _is_lab(n)}


def _is_lab(name: str) -> bool:
    from pyvxlan.kernel.lab import lab_namespaces

    return name in lab_namespaces()


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
    """After the kernel tests: no namespace of ours and no new link in the root namespace."""
    if kernel_available():
        yield
        return
    before_ns, before_links = _leftovers(), _root_links()
    yield
    left_ns = _leftovers() - before_ns
    left_links = {n for n in _root_links() - before_links if n.startswith("pvx")}
    assert not left_ns and not left_links, f"left behind: namespaces {sorted(left_ns)}, links {sorted(left_links)}"
