"""kernel/bridge's BridgeMacs: which of a bridge's FDB notifications are local MACs (no root: the
notifications are built here as the kernel sends them). Against a real bridge and FRR:
tests/kernel/test_evpn_frr.py."""

from __future__ import annotations

import trio

from pyvxlan.evpn import LocalMacAdded, LocalMacRemoved
from pyvxlan.kernel import messages as nlm
from pyvxlan.kernel.bridge import BridgeMacs
from pyvxlan.wire.addr import parse_mac

PORTS = {3: "guest1", 4: "guest2"}  # 5 is the vxlan device (excluded), 6 another bridge's port
GUEST, OTHER = "02:00:00:00:00:01", "02:00:00:00:00:02"


def neigh(msg_type: int, ifindex: int, mac: str, *, state: int = nlm.NUD_REACHABLE, ntf: int = 0) -> bytes:
    # The bridge's own entries carry no NTF_SELF (NDA_MASTER names the bridge); a port's own table does.
    return nlm.encode_neigh(
        msg_type, 0, 0, family=nlm.AF_BRIDGE, ifindex=ifindex, state=state, ntf=ntf, lladdr=parse_mac(mac)
    )


def watcher() -> tuple[BridgeMacs, list[int]]:
    asked: list[int] = []

    def port_of(index: int) -> str | None:
        asked.append(index)
        return PORTS.get(index)

    return BridgeMacs("br10", port_of, None), asked


def test_learned_and_removed_macs_on_the_bridge_ports() -> None:
    macs, asked = watcher()
    macs.feed(neigh(nlm.RTM_NEWNEIGH, 3, GUEST) + neigh(nlm.RTM_NEWNEIGH, 4, OTHER, state=nlm.NUD_NOARP))
    assert macs.pending() == [LocalMacAdded(GUEST), LocalMacAdded(OTHER)]
    assert macs.macs == {GUEST: "guest1", OTHER: "guest2"}
    # Seen again (a refresh) or on another local port: still local, no event.
    macs.feed(neigh(nlm.RTM_NEWNEIGH, 3, GUEST) + neigh(nlm.RTM_NEWNEIGH, 4, GUEST))
    assert macs.pending() == []
    assert macs.macs[GUEST] == "guest2"
    # A delete for the port it no longer is on is stale; the one for its port removes it.
    macs.feed(neigh(nlm.RTM_DELNEIGH, 3, GUEST))
    assert macs.pending() == []
    macs.feed(neigh(nlm.RTM_DELNEIGH, 4, GUEST, state=nlm.NUD_STALE))
    assert macs.pending() == [LocalMacRemoved(GUEST)]
    assert macs.macs == {OTHER: "guest2"}
    assert asked == [3, 4]  # each interface asked about once


def test_what_is_not_a_local_mac() -> None:
    macs, asked = watcher()
    macs.feed(
        neigh(nlm.RTM_NEWNEIGH, 3, "02:aa:00:00:00:03", state=nlm.NUD_PERMANENT)  # the port's own address
        + neigh(nlm.RTM_NEWNEIGH, 3, "33:33:00:00:00:01", state=nlm.NUD_PERMANENT, ntf=nlm.NTF_SELF)  # its own table
        + neigh(nlm.RTM_NEWNEIGH, 5, GUEST, ntf=nlm.NTF_EXT_LEARNED)  # zebra's remote MAC on the vxlan port
        + neigh(nlm.RTM_NEWNEIGH, 5, OTHER)  # anything else on the vxlan port (excluded)
        + neigh(nlm.RTM_NEWNEIGH, 6, OTHER)  # another bridge's port
        + neigh(nlm.RTM_DELNEIGH, 6, OTHER)
    )
    assert macs.pending() == []
    assert macs.macs == {}
    assert asked == [5, 6]
    # ARP and ND entries (families 2 and 10) are not the bridge's FDB.
    macs.feed(nlm.encode_neigh(nlm.RTM_NEWNEIGH, 0, 0, family=2, ifindex=3, state=2, ntf=0, lladdr=parse_mac(GUEST)))
    assert macs.pending() == []


def test_a_watch_without_a_socket_ends_after_what_it_was_fed() -> None:
    macs, _ = watcher()
    macs.feed(neigh(nlm.RTM_NEWNEIGH, 3, GUEST))

    async def main() -> list[object]:
        return [event async for event in macs]

    assert trio.run(main) == [LocalMacAdded(GUEST)]
