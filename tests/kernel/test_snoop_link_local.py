"""vxlan_snoop's migration away from an IPv6 link-local source, on the kernel and in the core.

A MAC learned from a link-local underlay address is held to the interface the datagram came in on
(``via``). When the MAC then comes from a global address, Linux rewrites only the remote's
address: the entry keeps ``via`` (its ``remote_ifindex``), and since a datagram from a global
address carries no interface, every later one "migrates" the entry again, from the same address
to the same address. The core copies that; this test asks a real kernel (Linux 6.18 logs "MAC
migrated from 2001:db8::1 to 2001:db8::1" on each such datagram).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator

import pytest

from pyvxlan import EntryLearned, EntryMigrated, Vtep, VtepConfig

MAC = "02:00:00:00:00:0a"
HEADER = bytes.fromhex("0800000000000a00")  # I flag, VNI 10
# A broadcast ARP request from MAC, as the sending device's ping puts it on the wire.
FRAME = b"\xff" * 6 + bytes.fromhex(MAC.replace(":", "")) + b"\x08\x06" + bytes(28)


def _ip(*argv: str) -> str:
    return subprocess.run(["ip", *argv], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def rig(root: None) -> Iterator[tuple[str, str]]:
    """Namespaces A and B on a veth pair (va, vb) with link-local and global addresses; B has a
    learning vxlan device on group ff05::100 via vb, bound to every address."""
    a, b = f"pvxk{secrets.token_hex(2)}a", f"pvxk{secrets.token_hex(2)}b"
    _ip("netns", "add", a)
    _ip("netns", "add", b)
    try:
        _ip("link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b)
        for ns, dev, n in ((a, "va", 1), (b, "vb", 2)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "addr", "add", f"fe80::{n}/64", "dev", dev, "nodad")
            _ip("-n", ns, "addr", "add", f"2001:db8::{n}/64", "dev", dev, "nodad")
        _ip(
            "-n",
            b,
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            "10",
            "group",
            "ff05::100",
            "dev",
            "vb",
            "dstport",
            "4789",
        )
        _ip("-n", b, "link", "set", "vx0", "up")
        yield a, b
    finally:
        _ip("netns", "del", a)
        _ip("netns", "del", b)


def _send_from(a: str, local: str, remote: str, *extra: str) -> None:
    """(Re)make A's vxlan device with ``local`` and ``remote`` and have it flood one ARP request."""
    subprocess.run(["ip", "-n", a, "link", "del", "vx0"], capture_output=True, check=False)
    _ip("-n", a, "link", "add", "vx0", "address", MAC, "type", "vxlan", "id", "10", "local", local, "remote", remote,
        *extra, "dstport", "4789")  # fmt: skip
    _ip("-n", a, "link", "set", "vx0", "up")
    _ip("-n", a, "addr", "add", "203.0.113.1/24", "dev", "vx0")


def _arp_again(a: str) -> None:
    subprocess.run(["ip", "netns", "exec", a, "ping", "-c1", "-W1", "203.0.113.2"], capture_output=True, check=False)


def _entry(b: str) -> str:
    """B's FDB line for MAC, up to its flags: ``dst ADDR [via DEV]``."""
    deadline = time.monotonic() + 5
    while True:
        out = subprocess.run(
            ["ip", "netns", "exec", b, "bridge", "fdb", "show", "dev", "vx0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(rf"^{MAC} (dst \S+(?: via \S+)?)", out, re.M)
        if match or time.monotonic() > deadline:
            return match.group(1) if match else ""
        time.sleep(0.05)


def test_a_mac_that_moves_from_a_link_local_source_keeps_its_interface_and_migrates_again(
    rig: tuple[str, str],
) -> None:
    a, b = rig
    _send_from(a, "fe80::1", "fe80::2", "dev", "va")
    _arp_again(a)
    kernel = [_entry(b)]
    _send_from(a, "2001:db8::1", "2001:db8::2")
    _arp_again(a)
    kernel.append(_entry(b))
    assert kernel == ["dst fe80::1 via vb", "dst 2001:db8::1 via vb"]

    core = Vtep(VtepConfig(vni=10, group="ff05::100", dev="vb"))
    core.up(now=0.0)
    core.take_outputs()
    notes = []
    for t, src in enumerate(["fe80::1", "2001:db8::1", "2001:db8::1"], start=1):
        core.receive(HEADER + FRAME, src, 50000, float(t), interface="vb")
        notes.append([o for o in core.take_outputs() if isinstance(o, (EntryLearned, EntryMigrated))])
        entry = core.fdb.get(MAC)[0]
        assert f"dst {entry.dst} via {entry.interface}" == kernel[min(t, 2) - 1]
    assert notes == [
        [EntryLearned(MAC, "fe80::1")],
        [EntryMigrated(MAC, "fe80::1", "2001:db8::1")],
        [EntryMigrated(MAC, "2001:db8::1", "2001:db8::1")],  # again: the entry's via is not the datagram's
    ]
