"""One test per Linux vxlan behaviour the core reproduces (see docs/state-machine.md).

Sources are in ../shared/research/kernel-vxlan.md; each test name says the behaviour.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import struct
import subprocess
import sys

import pytest

from pyvxlan import (
    ConfigError,
    DeliverFrame,
    Direction,
    Dropped,
    DropReason,
    EntryExpired,
    EntryLearned,
    EntryMigrated,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    FdbState,
    JoinGroup,
    L2Miss,
    L3Miss,
    LeaveGroup,
    SendDatagram,
    Vtep,
    VtepConfig,
    VtepCounters,
    decapsulate_payload,
    flow_source_port,
)
from pyvxlan.core.events import Output
from pyvxlan.wire.frame import internet_checksum

LOCAL = "198.51.100.1"
PEER = "198.51.100.2"
OTHER = "198.51.100.3"
DEV_MAC = "02:00:00:00:0a:01"
H1 = "02:00:00:00:00:01"  # a guest behind this VTEP
H2 = "02:00:00:00:00:02"  # a guest behind the peer
BCAST = "ff:ff:ff:ff:ff:ff"
ZERO = "00:00:00:00:00:00"


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def eth(dst: str, src: str, etype: int = 0x0800, payload: bytes = bytes(46)) -> bytes:
    return mac(dst) + mac(src) + etype.to_bytes(2, "big") + payload


def vx(frame: bytes, vni: int = 10, word0: int = 0x08000000, low: int = 0) -> bytes:
    return struct.pack("!II", word0, (vni << 8) | low) + frame


def make(now: float = 0.0, up: bool = True, **settings: object) -> Vtep:
    values: dict[str, object] = {"vni": 10, "local": LOCAL, "remote": PEER, "mac": DEV_MAC}
    values.update(settings)
    v = Vtep(VtepConfig(**values), now=now)  # type: ignore[arg-type]
    if up:
        v.up(now)
        v.take_outputs()
    return v


def sends(outputs: list[Output]) -> list[SendDatagram]:
    return [o for o in outputs if isinstance(o, SendDatagram)]


def drops(outputs: list[Output]) -> list[tuple[Direction, DropReason]]:
    return [(o.direction, o.reason) for o in outputs if isinstance(o, Dropped)]


# --- configuration and device life cycle ---------------------------------------------------------


def test_linux_ageing_zero_means_300() -> None:
    assert VtepConfig(vni=1, ageing=0).ageing == 300.0
    v = make()
    v.set_ageing(0)
    assert v.config.ageing == 300.0
    assert v.fdb.ageing == 300.0


def test_linux_remote_becomes_permanent_all_zeros_entry() -> None:
    v = make(up=False, dev="ul0")
    [entry] = v.fdb_dump()
    assert entry.bridge_line("vxlan10") == "00:00:00:00:00:00 dev vxlan10 dst 198.51.100.2 via ul0 self permanent"


def test_linux_no_remote_no_default_entry() -> None:
    v = make(remote=None)
    assert v.fdb_dump() == []


def test_linux_device_created_down_drops_traffic() -> None:
    v = make(up=False)
    assert not v.is_up
    v.transmit(eth(H2, H1), now=1.0)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [
        (Direction.TX, DropReason.DEVICE_DOWN),
        (Direction.RX, DropReason.DEVICE_DOWN),
    ]
    assert (v.counters().tx_dropped, v.counters().rx_dropped) == (1, 1)


def test_linux_group_joined_on_up_left_on_down() -> None:
    v = make(up=False, remote=None, group="239.1.1.1")
    v.up(1.0)
    v.up(2.0)  # already up: nothing more
    assert v.take_outputs() == [JoinGroup("239.1.1.1")]
    v.down(3.0)
    v.down(4.0)
    assert v.take_outputs() == [LeaveGroup("239.1.1.1")]


def test_linux_down_flushes_learned_and_dynamic_keeps_permanent_static_and_default() -> None:
    v = make()
    v.fdb_add("02:00:00:00:00:11", OTHER)
    v.fdb_add("02:00:00:00:00:12", OTHER, state=FdbState.STATIC)
    v.fdb_add("02:00:00:00:00:13", OTHER, state=FdbState.REACHABLE)
    v.fdb_add("02:00:00:00:00:14", OTHER, state=FdbState.REACHABLE, extern_learn=True)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=1.0)
    v.neigh_add("203.0.113.5", H2)
    v.down(2.0)
    assert [e.mac for e in v.fdb_dump()] == [ZERO, "02:00:00:00:00:11", "02:00:00:00:00:12"]
    assert v.neighbours() == []


# --- FDB control ---------------------------------------------------------------------------------


def test_linux_fdb_add_existing_raises_eexist() -> None:
    v = make()
    v.fdb_add(H2, OTHER)
    with pytest.raises(FdbEntryExists, match=r"^02:00:00:00:00:02 already has an entry$"):
        v.fdb_add(H2, PEER)


def test_linux_fdb_append_to_unicast_is_noop() -> None:
    v = make()
    v.fdb_add(H2, OTHER)
    v.fdb_append(H2, PEER)
    assert [(e.mac, e.dst) for e in v.fdb.get(H2)] == [(H2, OTHER)]


def test_linux_fdb_append_duplicate_remote_is_noop() -> None:
    v = make()
    v.fdb_append(ZERO, OTHER)
    v.fdb_append(ZERO, OTHER)
    assert [e.dst for e in v.fdb.get(ZERO)] == [PEER, OTHER]


def test_linux_fdb_replace_of_all_zeros_or_multicast_not_supported() -> None:
    v = make()
    with pytest.raises(FdbOperationNotSupported, match=r"^cannot replace non-unicast fdb entry 00:00:00:00:00:00$"):
        v.fdb_replace(ZERO, OTHER)
    with pytest.raises(FdbOperationNotSupported, match=r"^cannot replace non-unicast fdb entry 01:00:5e:01:01:01$"):
        v.fdb_replace("01:00:5e:01:01:01", OTHER)


def test_linux_fdb_replace_rewrites_the_first_remote() -> None:
    v = make()
    v.fdb_add(H2, OTHER, port=5555, vni=20, state=FdbState.STATIC)
    v.fdb_replace(H2, PEER)
    [e] = v.fdb.get(H2)
    assert (e.dst, e.port, e.vni, e.state) == (PEER, None, None, FdbState.PERMANENT)


def test_linux_fdb_delete_one_remote_keeps_the_others() -> None:
    v = make()
    v.fdb_append(ZERO, OTHER)
    v.fdb_del(ZERO, PEER)
    assert [e.dst for e in v.fdb.get(ZERO)] == [OTHER]
    v.fdb_del(ZERO, OTHER)  # the last remote: the whole MAC goes
    assert v.fdb.get(ZERO) == []


def test_linux_fdb_delete_needs_port_and_vni_to_match() -> None:
    v = make()
    v.fdb_append(ZERO, OTHER, port=5555)
    v.fdb_del(ZERO, OTHER)  # no port given means the device's 4789: no match, no error
    assert [(e.dst, e.port) for e in v.fdb.get(ZERO)] == [(PEER, None), (OTHER, 5555)]
    v.fdb_del(ZERO, OTHER, port=5555)
    assert [e.dst for e in v.fdb.get(ZERO)] == [PEER]


def test_linux_fdb_delete_missing_mac_raises_enoent() -> None:
    v = make()
    with pytest.raises(FdbEntryNotFound, match=r"^02:00:00:00:00:02 has no entry$"):
        v.fdb_del(H2)


def test_linux_maxaddress_counts_the_default_entry() -> None:
    v = make(max_entries=2)
    v.fdb_add(H2, OTHER)
    with pytest.raises(FdbFull, match=r"^the table holds max_entries=2 entries; cannot add 02:00:00:00:00:03$"):
        v.fdb_add("02:00:00:00:00:03", OTHER)
    v.fdb_replace(H2, PEER)  # replacing an existing entry works when full
    v.fdb_append(ZERO, OTHER)  # so does another remote on an existing MAC
    assert len(v.fdb) == 2


def test_linux_dump_omits_device_port_and_vni() -> None:
    v = make()
    v.fdb_add(H2, OTHER, port=4789, vni=10)
    v.fdb_add("02:00:00:00:00:03", OTHER, port=5555, vni=20)
    lines = [e.bridge_line("vx") for e in v.fdb_dump()[1:]]
    assert lines == [
        "02:00:00:00:00:02 dev vx dst 198.51.100.3 self permanent",
        "02:00:00:00:00:03 dev vx dst 198.51.100.3 port 5555 vni 20 self permanent",
    ]


# --- transmit ------------------------------------------------------------------------------------


def test_linux_tx_known_unicast_uses_its_entry() -> None:
    v = make()
    v.fdb_add(H2, OTHER)
    frame = eth(H2, H1)
    v.transmit(frame, now=1.0)
    [d] = v.take_outputs()
    assert d == SendDatagram(OTHER, 4789, flow_source_port(frame), 64, vx(frame), 10, LOCAL)


def test_linux_tx_entry_port_and_vni_override_the_device() -> None:
    v = make()
    v.fdb_add(H2, OTHER, port=5555, vni=20)
    frame = eth(H2, H1)
    v.transmit(frame, now=1.0)
    [d] = sends(v.take_outputs())
    assert (d.dst_port, d.vni, d.payload) == (5555, 20, vx(frame, vni=20))


def test_linux_tx_unknown_unicast_broadcast_and_multicast_take_the_default_path() -> None:
    v = make()
    for dst in (H2, BCAST, "01:00:5e:01:01:01"):
        v.transmit(eth(dst, H1), now=1.0)
    assert [d.dst for d in sends(v.take_outputs())] == [PEER, PEER, PEER]


def test_linux_tx_head_end_replication_one_copy_per_remote() -> None:
    v = make()
    v.fdb_append(ZERO, OTHER)
    frame = eth(BCAST, H1)
    v.transmit(frame, now=1.0)
    out = sends(v.take_outputs())
    assert [d.dst for d in out] == [PEER, OTHER]
    assert {d.payload for d in out} == {vx(frame)}
    assert (v.counters().tx_packets, v.counters().tx_bytes) == (2, 2 * (len(frame) - 14))


def test_linux_tx_multicast_mac_entry_wins_over_default() -> None:
    v = make()
    v.fdb_append("01:00:5e:01:01:01", OTHER)
    v.transmit(eth("01:00:5e:01:01:01", H1), now=1.0)
    assert [d.dst for d in sends(v.take_outputs())] == [OTHER]


def test_linux_tx_no_destination_counts_tx_dropped() -> None:
    v = make(remote=None)
    v.transmit(eth(BCAST, H1), now=1.0)
    assert v.take_outputs() == [Dropped(Direction.TX, DropReason.NO_TX_TARGET, 60, BCAST)]
    assert v.counters() == VtepCounters(tx_dropped=1)


def test_linux_l2miss_only_for_unicast_destinations() -> None:
    v = make(remote=None, l2miss=True)
    v.transmit(eth(H2, H1), now=1.0)
    v.transmit(eth(BCAST, H1), now=1.0)
    assert v.take_outputs() == [
        L2Miss(H2),
        Dropped(Direction.TX, DropReason.NO_TX_TARGET, 60, H2),
        Dropped(Direction.TX, DropReason.NO_TX_TARGET, 60, BCAST),
    ]


def test_linux_no_l2miss_without_the_flag() -> None:
    v = make(remote=None)
    v.transmit(eth(H2, H1), now=1.0)
    assert [o for o in v.take_outputs() if isinstance(o, L2Miss)] == []


def test_linux_ttl_auto_is_1_toward_a_group_and_64_toward_unicast() -> None:
    v = make(remote=None, group="239.1.1.1")
    v.fdb_add(H2, OTHER)
    v.transmit(eth(BCAST, H1), now=1.0)
    v.transmit(eth(H2, H1), now=1.0)
    assert [(d.dst, d.ttl) for d in sends(v.take_outputs())] == [("239.1.1.1", 1), (OTHER, 64)]
    fixed = make(ttl=9)
    fixed.transmit(eth(BCAST, H1), now=1.0)
    assert [d.ttl for d in sends(fixed.take_outputs())] == [9]


def test_linux_tx_refreshes_used_not_updated() -> None:
    v = make()
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=1.0)
    v.transmit(eth(H2, H1), now=5.0)
    [e] = v.fdb.get(H2)
    assert (e.updated, e.used) == (1.0, 5.0)
    assert v.fdb.get(ZERO)[0].used == 0.0  # the default entry was not looked up


def test_linux_source_port_is_a_flow_hash_inside_the_range() -> None:
    v = make(src_port_range=(5000, 5010))
    frames = [eth(H2, f"02:00:00:00:01:{i:02x}") for i in range(200)]
    for f in frames:
        v.transmit(f, now=1.0)
    ports = [d.src_port for d in sends(v.take_outputs())]
    assert set(ports) == set(range(5000, 5010))  # udp_flow_src_port: MAX itself is never used
    assert ports == [flow_source_port(f, (5000, 5010)) for f in frames]


def test_linux_udp_flow_src_port_never_uses_max() -> None:
    """udp_flow_src_port: ``(hash * (max - min)) >> 32) + min``; ``srcport 5000 5001`` sends from
    5000 only (seen live on Linux 6.18, IPv4 and IPv6 underlays)."""
    v = make(src_port_range=(5000, 5001))
    for i in range(100):
        v.transmit(eth(H2, f"02:00:00:00:01:{i:02x}"), now=1.0)
    assert {d.src_port for d in sends(v.take_outputs())} == {5000}
    assert flow_source_port(eth(H2, H1), (5000, 5001)) == 5000


def test_linux_udp_flow_src_port_empty_range_is_the_local_port_range() -> None:
    """udp_flow_src_port: ``min >= max`` takes inet_get_local_port_range (32768-60999 by default;
    ``srcport 5000 5000`` sent from 33844 to 60120 over 60 flows, seen live)."""
    v = make(src_port_range=(5000, 5000))
    for i in range(500):
        v.transmit(eth(H2, f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}"), now=1.0)
    ports = [d.src_port for d in sends(v.take_outputs())]
    assert min(ports) >= 32768 and max(ports) < 60999
    assert max(ports) - min(ports) > 25000
    assert flow_source_port(eth(H2, H1), (0, 0)) == flow_source_port(eth(H2, H1), (32768, 60999))


# --- proxy ARP / ND ------------------------------------------------------------------------------


def arp_request(sha: str, sip: str, tip: str) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac(sha)
    body += ipaddress.IPv4Address(sip).packed + bytes(6) + ipaddress.IPv4Address(tip).packed
    return eth(BCAST, sha, 0x0806, body + bytes(18))


def test_linux_proxy_arp_answers_from_the_neighbour_table() -> None:
    v = make(proxy=True)
    v.neigh_add("203.0.113.2", H2)
    v.transmit(arp_request(H1, "203.0.113.1", "203.0.113.2"), now=1.0)
    reply = mac(H1) + mac(H2) + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
    reply += mac(H2) + bytes([203, 0, 113, 2]) + mac(H1) + bytes([203, 0, 113, 1])
    assert v.take_outputs() == [DeliverFrame(reply)]
    assert v.counters() == VtepCounters()  # consumed: never tunnelled, not counted


def test_linux_proxy_arp_unresolved_raises_l3miss() -> None:
    v = make(proxy=True, l3miss=True)
    v.transmit(arp_request(H1, "203.0.113.1", "203.0.113.9"), now=1.0)
    out = v.take_outputs()
    assert out[0] == L3Miss("203.0.113.9")
    assert drops(out) == [(Direction.TX, DropReason.PROXY_UNRESOLVED)]


def test_linux_proxy_consumes_every_arp_frame() -> None:
    v = make(proxy=True)
    reply = arp_request(H1, "203.0.113.1", "203.0.113.2")
    reply = reply[:20] + b"\x00\x02" + reply[22:]  # an ARP reply is not tunnelled either
    v.transmit(reply, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.TX, DropReason.PROXY_CONSUMED)]


def test_linux_without_proxy_arp_is_flooded() -> None:
    v = make()
    v.neigh_add("203.0.113.2", H2)
    v.transmit(arp_request(H1, "203.0.113.1", "203.0.113.2"), now=1.0)
    assert [d.dst for d in sends(v.take_outputs())] == [PEER]


def neighbour_solicitation(src_mac: str, src_ip: str, target: str) -> bytes:
    s = ipaddress.IPv6Address(src_ip).packed
    t = ipaddress.IPv6Address(target).packed
    d = ipaddress.IPv6Address("ff02::1:ff00:0").packed[:13] + t[13:]
    icmp = bytes((135, 0, 0, 0, 0, 0, 0, 0)) + t + bytes((1, 1)) + mac(src_mac)
    ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + s + d
    return eth("33:33:" + d[12:].hex(":"), src_mac, 0x86DD, ip6 + icmp)


def test_linux_proxy_nd_answers_neighbour_solicitations() -> None:
    v = make(proxy=True)
    v.neigh_add("2001:db8::2", H2)
    v.transmit(neighbour_solicitation(H1, "2001:db8::1", "2001:db8::2"), now=1.0)
    [out] = v.take_outputs()
    assert isinstance(out, DeliverFrame)
    na = out.frame
    assert (na[0:6], na[6:12], na[12:14]) == (mac(H1), mac(H2), b"\x86\xdd")
    src, dst = na[22:38], na[38:54]
    assert (src, dst) == (ipaddress.IPv6Address("2001:db8::2").packed, ipaddress.IPv6Address("2001:db8::1").packed)
    assert (na[20], na[21]) == (58, 255)  # ICMPv6, hop limit 255
    icmp = na[54:]
    assert (icmp[0], icmp[1], icmp[4]) == (136, 0, 0x60)  # NA, solicited + override, not router
    assert icmp[8:24] == src and icmp[24:26] == b"\x02\x01" and icmp[26:32] == mac(H2)
    pseudo = src + dst + struct.pack("!IxxxB", len(icmp), 58)
    assert internet_checksum(pseudo + icmp) == 0


def test_linux_proxy_nd_unresolved_raises_l3miss() -> None:
    v = make(proxy=True, l3miss=True)
    v.transmit(neighbour_solicitation(H1, "2001:db8::1", "2001:db8::9"), now=1.0)
    assert v.take_outputs()[0] == L3Miss("2001:db8::9")


# --- receive -------------------------------------------------------------------------------------


def test_linux_rx_delivers_and_counts_the_inner_frame_minus_its_ethernet_header() -> None:
    v = make()
    frame = eth(H1, H2)
    v.receive(vx(frame), PEER, 50000, now=1.0)
    assert v.take_outputs() == [EntryLearned(H2, PEER), DeliverFrame(frame)]
    assert v.counters() == VtepCounters(rx_packets=1, rx_bytes=len(frame) - 14)


def test_linux_rx_requires_the_i_flag_without_counting() -> None:
    v = make()
    v.receive(vx(eth(H1, H2), word0=0), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.MISSING_I_FLAG)]
    assert v.counters() == VtepCounters()


def test_linux_rx_unknown_vni_dropped_without_counting() -> None:
    v = make()
    v.receive(vx(eth(H1, H2), vni=11), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.UNKNOWN_VNI)]
    assert v.counters() == VtepCounters()


@pytest.mark.parametrize(
    ("word0", "low"),
    [(0x0C000000, 0), (0x08000001, 0), (0x08000000, 1), (0x88000000, 0)],
    ids=["flag-0x04", "word0-low-byte", "word1-low-byte", "G-without-gbp"],
)
def test_linux_rx_reserved_bits_count_frame_errors(word0: int, low: int) -> None:
    v = make()
    v.receive(vx(eth(H1, H2), word0=word0, low=low), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.RESERVED_BITS)]
    assert v.counters() == VtepCounters(rx_errors=1, rx_frame_errors=1)


def test_linux_rx_gbp_device_accepts_group_policy_bits() -> None:
    v = make(gbp=True)
    frame = eth(H1, H2)
    v.receive(vx(frame, word0=0x8840C350), PEER, 50000, now=1.0)  # G, D, policy 50000
    assert v.take_outputs()[-1] == DeliverFrame(frame)
    v.receive(vx(frame, word0=0x8C40C350), PEER, 50000, now=1.0)  # plus the reserved 0x04 flag
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.RESERVED_BITS)]


def test_linux_gbp_dont_learn_bit_is_not_honoured() -> None:
    v = make(gbp=True)
    v.receive(vx(eth(H1, H2), word0=0x8840C350), PEER, 50000, now=1.0)
    assert EntryLearned(H2, PEER) in v.take_outputs()


def test_linux_rx_inner_frame_shorter_than_ethernet_dropped_without_counting() -> None:
    v = make()
    v.receive(vx(bytes(13)), PEER, 50000, now=1.0)
    v.receive(vx(b"", word0=0x0C000000), PEER, 50000, now=1.0)  # reserved bits are checked first
    assert drops(v.take_outputs()) == [
        (Direction.RX, DropReason.MALFORMED),
        (Direction.RX, DropReason.RESERVED_BITS),
    ]
    assert v.counters() == VtepCounters(rx_errors=1, rx_frame_errors=1)


@pytest.mark.parametrize(("etype", "ip_bytes"), [(0x0800, 19), (0x86DD, 39)])
def test_linux_rx_truncated_inner_ip_header_counts_length_errors_after_learning(etype: int, ip_bytes: int) -> None:
    v = make()
    v.receive(vx(eth(H1, H2, etype, bytes(ip_bytes))), PEER, 50000, now=1.0)
    assert v.take_outputs() == [
        EntryLearned(H2, PEER),
        Dropped(Direction.RX, DropReason.MALFORMED, 22 + ip_bytes, "inner IP header truncated"),
    ]
    assert v.counters() == VtepCounters(rx_errors=1, rx_length_errors=1)
    whole = eth(H1, H2, etype, bytes(ip_bytes + 1))
    v.receive(vx(whole), PEER, 50000, now=2.0)
    assert v.take_outputs() == [DeliverFrame(whole)]
    bare_arp = eth(H1, H2, 0x0806, b"")  # other types are not checked: 0 bytes counted
    v.receive(vx(bare_arp), PEER, 50000, now=3.0)
    assert v.take_outputs() == [DeliverFrame(bare_arp)]
    assert v.counters().rx_bytes == ip_bytes + 1


@pytest.mark.parametrize("learning", [True, False])
def test_linux_rx_own_mac_dropped_even_without_learning(learning: bool) -> None:
    v = make(learning=learning)
    v.receive(vx(eth(H1, DEV_MAC)), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.LOCAL_MAC)]
    assert v.counters() == VtepCounters()


@pytest.mark.parametrize("source", ["01:00:5e:00:00:01", BCAST, ZERO])
def test_linux_rx_multicast_or_zero_source_dropped_when_learning(source: str) -> None:
    v = make()
    v.receive(vx(eth(H1, source)), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.INVALID_SOURCE_MAC)]
    quiet = make(learning=False)
    frame = eth(H1, source)
    quiet.receive(vx(frame), PEER, 50000, now=1.0)
    assert quiet.take_outputs() == [DeliverFrame(frame)]


@pytest.mark.parametrize("state", [FdbState.PERMANENT, FdbState.STATIC])
def test_linux_static_entry_not_overwritten_frame_dropped(state: FdbState) -> None:
    v = make()
    v.fdb_add(H2, OTHER, state=state)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=1.0)
    assert drops(v.take_outputs()) == [(Direction.RX, DropReason.ENTRY_EXISTS)]
    [e] = v.fdb.get(H2)
    assert (e.dst, e.state) == (OTHER, state)
    assert v.counters() == VtepCounters()


def test_linux_learned_entry_migrates_keeping_port_and_vni() -> None:
    v = make()
    v.fdb_add(H2, OTHER, port=5555, vni=20, state=FdbState.REACHABLE, extern_learn=True)
    frame = eth(H1, H2)
    v.receive(vx(frame), PEER, 50000, now=1.0)
    assert v.take_outputs() == [EntryMigrated(H2, OTHER, PEER), DeliverFrame(frame)]
    [e] = v.fdb.get(H2)
    assert (e.dst, e.port, e.vni, e.extern_learn) == (PEER, 5555, 20, True)


def test_linux_learning_uses_the_device_port_not_the_udp_source_port() -> None:
    v = make(dst_port=8472)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=1.0)
    v.transmit(eth(H2, H1), now=2.0)
    [d] = sends(v.take_outputs())
    assert (d.dst, d.dst_port, d.vni) == (PEER, 8472, 10)
    [e] = v.fdb.get(H2)
    assert (e.port, e.vni, e.state) == (None, None, FdbState.REACHABLE)


def test_linux_any_outer_source_is_learned() -> None:
    v = make()
    v.receive(vx(eth(H1, H2)), "198.51.100.33", 50000, now=1.0)
    assert v.take_outputs()[0] == EntryLearned(H2, "198.51.100.33")


def test_linux_full_table_skips_learning_but_delivers() -> None:
    v = make(max_entries=2)
    frames = [eth(H1, f"02:00:00:00:01:{i:02x}") for i in range(3)]
    for f in frames:
        v.receive(vx(f), PEER, 50000, now=1.0)
    out = v.take_outputs()
    assert [o for o in out if isinstance(o, EntryLearned)] == [EntryLearned("02:00:00:00:01:00", PEER)]
    assert [o for o in out if isinstance(o, DeliverFrame)] == [DeliverFrame(f) for f in frames]
    assert len(v.fdb) == 2


def test_linux_no_learning_when_learning_is_off() -> None:
    v = make(learning=False)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=1.0)
    assert [e.mac for e in v.fdb_dump()] == [ZERO]
    v.set_learning(True)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=2.0)
    assert [e.mac for e in v.fdb_dump()] == [ZERO, H2]


def test_linux_tx_header_is_i_flag_vni_and_zero_reserved() -> None:
    v = make(vni=0xABCDEF)
    frame = eth(H2, H1)
    v.transmit(frame, now=1.0)
    [d] = sends(v.take_outputs())
    assert d.payload[:8] == bytes.fromhex("08000000abcdef00")
    header, inner = decapsulate_payload(d.payload, strict=True)
    assert (header.vni, bytes(inner)) == (0xABCDEF, frame)


# --- ageing --------------------------------------------------------------------------------------


def test_linux_ageing_on_rx_traffic_only() -> None:
    v = make(ageing=20)
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=0.0)
    for t in range(1, 20):
        v.transmit(eth(H2, H1), now=float(t))  # transmitting to H2 does not keep it alive
        v.handle_timer(float(t))
    assert v.next_timer() == 20.0
    v.take_outputs()
    v.handle_timer(20.0)
    assert v.take_outputs() == [EntryExpired(H2, PEER)]
    assert v.next_timer() is None


def test_linux_received_traffic_keeps_an_entry_alive() -> None:
    v = make(ageing=20)
    for t in range(36):
        v.receive(vx(eth(H1, H2)), PEER, 50000, now=float(t))
        v.handle_timer(float(t))
    assert v.fdb.get(H2)[0].updated == 35.0
    assert v.next_timer() == 55.0


def test_linux_static_permanent_and_extern_learn_never_age() -> None:
    v = make(ageing=10)
    v.fdb_add("02:00:00:00:00:11", OTHER)
    v.fdb_add("02:00:00:00:00:12", OTHER, state=FdbState.STATIC)
    v.fdb_add("02:00:00:00:00:13", OTHER, state=FdbState.REACHABLE, extern_learn=True)
    v.fdb_add("02:00:00:00:00:14", OTHER, state=FdbState.REACHABLE)  # "dynamic": ages
    assert v.next_timer() == 10.0
    v.handle_timer(1000.0)
    assert v.take_outputs() == [EntryExpired("02:00:00:00:00:14", OTHER)]
    assert len(v.fdb) == 4


def test_linux_set_ageing_applies_to_existing_entries() -> None:
    v = make()
    v.receive(vx(eth(H1, H2)), PEER, 50000, now=0.0)
    assert v.next_timer() == 300.0
    v.set_ageing(5, now=1.0)
    assert v.next_timer() == 5.0


def test_linux_no_ageing_timer_while_down() -> None:
    v = make()
    v.fdb_add(H2, OTHER, state=FdbState.REACHABLE)
    v.down(1.0)
    v.fdb_add(H2, OTHER, state=FdbState.REACHABLE)
    assert v.next_timer() is None
    v.handle_timer(1000.0)
    assert v.fdb.get(H2) != []


# --- against the real kernel ---------------------------------------------------------------------

_PROXY_PROBE = """
import socket, sys, time
requests = [bytes.fromhex(h) for h in sys.argv[1:]]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sock.bind(("h0", 0))
sock.settimeout(0.5)
for req in requests:
    sock.send(req)
    end, got = time.time() + 2, ""
    while time.time() < end and not got:
        try:
            frame = sock.recv(2000)
        except TimeoutError:
            continue
        if frame[6:12] == bytes.fromhex("020000000002"):
            got = frame.hex()
    print(got)
"""


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def test_linux_proxy_replies_match_the_kernel_byte_for_byte() -> None:
    """A host behind a bridge with a ``proxy`` vxlan port sends an ARP request and a neighbour
    solicitation; the kernel's replies and the core's are the same bytes."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 (network namespaces, a bridge and a vxlan device)")
    tag = secrets.token_hex(2)
    vx_ns, host_ns = f"pvxk3-p{tag}", f"pvxk3-h{tag}"
    requests = [arp_request(H1, "203.0.113.1", "203.0.113.2"), neighbour_solicitation(H1, "2001:db8::1", "2001:db8::2")]
    _run("ip", "netns", "add", vx_ns)
    try:
        _run("ip", "netns", "add", host_ns)
        p, h = ("ip", "netns", "exec", vx_ns), ("ip", "netns", "exec", host_ns)
        _run(*p, "ip", "link", "add", "br0", "type", "bridge")
        _run(*p, "ip", "link", "set", "br0", "up")
        _run(*p, "ip", "link", "add", "h0p", "type", "veth", "peer", "name", "h0", "netns", host_ns)
        _run(*p, "ip", "link", "set", "h0p", "master", "br0", "up")
        _run(*h, "ip", "link", "set", "h0", "address", H1, "up")
        _run(*p, "ip", "link", "add", "vx0", "type", "vxlan", "id", "10", "dstport", "4789", "local", LOCAL, "proxy")
        _run(*p, "ip", "link", "set", "vx0", "master", "br0", "up")
        for ip in ("203.0.113.2", "2001:db8::2"):
            _run(*p, "ip", "neigh", "add", ip, "lladdr", H2, "dev", "vx0", "nud", "permanent")
        probe = subprocess.run(
            [*h, sys.executable, "-c", _PROXY_PROBE, *(r.hex() for r in requests)],
            check=True,
            capture_output=True,
            text=True,
        )
        kernel = [bytes.fromhex(line) for line in probe.stdout.splitlines()]
    finally:
        subprocess.run(["ip", "netns", "del", vx_ns], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", host_ns], check=False, capture_output=True)
    v = make(remote=None, proxy=True)
    v.neigh_add("203.0.113.2", H2)
    v.neigh_add("2001:db8::2", H2)
    core = []
    for r in requests:
        v.transmit(r, now=1.0)
        [out] = v.take_outputs()
        assert isinstance(out, DeliverFrame)
        core.append(out.frame)
    assert kernel == core


_SENDER = """
import json, socket, subprocess, sys, time
datagrams = json.loads(sys.stdin.read())
socks = {}
for src, payload in datagrams:
    if src not in socks:
        socks[src] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        socks[src].bind((src, 0))
    socks[src].sendto(bytes.fromhex(payload), ("198.51.100.1", 4789))
time.sleep(0.5)
"""


def _rx_traffic(seed: int, own_mac: str) -> list[tuple[str, bytes]]:
    """Datagrams that exercise every receive rule: learning, migration, static conflicts, the
    own MAC, invalid sources, bad headers, short and truncated inner frames, a full table."""
    import random

    rng = random.Random(seed)
    sources = ["198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"]
    macs = [f"02:00:00:00:01:0{i}" for i in range(8)] + ["01:00:5e:00:00:01", ZERO, own_mac]
    out = []
    for _ in range(300):
        src_mac = rng.choice(macs)
        kind = rng.choices(["ok", "short", "trunc", "noi", "vni", "res"], [80, 4, 4, 4, 4, 4])[0]
        inner = eth(H1, src_mac, 0x0800, bytes.fromhex("45000014") + bytes(16) + bytes(rng.randrange(30)))
        word0, vni, low = 0x08000000, 10, 0
        if kind == "short":
            inner = inner[: rng.randrange(14)]
        elif kind == "trunc":
            inner = inner[: 14 + rng.randrange(20)]
        elif kind == "noi":
            word0 = 0
        elif kind == "vni":
            vni = 11
        elif kind == "res":
            word0, low = rng.choice([(0x0C000000, 0), (0x08000000, 1), (0x88000000, 0)])
        out.append((rng.choice(sources), vx(inner, vni=vni, word0=word0, low=low)))
    return out


def test_linux_receive_decisions_match_the_kernel() -> None:
    """The same 300 datagrams into a real vxlan device (a bridge port, learning, maxaddress 6, a
    static, a permanent and a dynamic entry) and into the core give the same table and counters."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("bridge") is None:
        pytest.skip("needs root and iproute2 (a network namespace, a bridge and a vxlan device)")
    import json

    ns = f"pvxk3-r{secrets.token_hex(2)}"
    n = ("ip", "netns", "exec", ns)
    user_entries = [
        ("02:00:00:00:01:00", "198.51.100.2", FdbState.STATIC, "static"),
        ("02:00:00:00:01:01", "198.51.100.3", FdbState.PERMANENT, "permanent"),
        ("02:00:00:00:01:02", "198.51.100.4", FdbState.REACHABLE, "dynamic"),
    ]
    _run("ip", "netns", "add", ns)
    try:
        _run(*n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        _run(*n, "ip", "link", "set", "lo", "up")
        for i in range(1, 6):
            _run(*n, "ip", "addr", "add", f"198.51.100.{i}/32", "dev", "lo")
        _run(*n, "ip", "link", "add", "br0", "type", "bridge")
        _run(*n, "ip", "link", "set", "br0", "up")
        vxlan = ("type", "vxlan", "id", "10", "dstport", "4789", "local", LOCAL, "remote", "198.51.100.9")
        _run(*n, "ip", "link", "add", "vx0", *vxlan, "maxaddress", "6")
        _run(*n, "ip", "link", "set", "vx0", "master", "br0", "up")
        for m, dst, _, word in user_entries:
            _run(*n, "bridge", "fdb", "add", m, "dev", "vx0", "dst", dst, *([] if word == "permanent" else [word]))
        own_mac = subprocess.run(
            [*n, "cat", "/sys/class/net/vx0/address"], check=True, capture_output=True, text=True
        ).stdout.strip()
        traffic = _rx_traffic(7, own_mac)
        subprocess.run(
            [*n, sys.executable, "-c", _SENDER],
            input=json.dumps([(s, p.hex()) for s, p in traffic]),
            check=True,
            capture_output=True,
            text=True,
        )
        dump = json.loads(
            subprocess.run(
                [*n, "bridge", "-j", "fdb", "show", "dev", "vx0"], check=True, capture_output=True, text=True
            ).stdout
        )
        stats = json.loads(
            subprocess.run(
                [*n, "ip", "-s", "-s", "-j", "link", "show", "vx0"], check=True, capture_output=True, text=True
            ).stdout
        )[0]["stats64"]["rx"]
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    kernel_table = sorted((e["mac"], e["dst"], e.get("state", "")) for e in dump if "dst" in e)
    names = ("packets", "bytes", "errors", "frame_errors", "length_errors", "dropped")
    kernel_counters = tuple(stats[name] for name in names)

    v = make(remote="198.51.100.9", max_entries=6, mac=own_mac)
    for m, dst, state, _ in user_entries:
        v.fdb_add(m, dst, state=state)
    for src, payload in traffic:
        v.receive(payload, src, 40000, now=1.0)
    core_table = sorted((e.mac, e.dst, e.state.value) for e in v.fdb_dump())
    c = v.counters()
    core_counters = (c.rx_packets, c.rx_bytes, c.rx_errors, c.rx_frame_errors, c.rx_length_errors, c.rx_dropped)
    assert core_table == kernel_table
    assert core_counters == kernel_counters
    assert len(core_table) == 6  # the table did fill up


_INJECT = """
import json, socket, sys, time
frames = json.loads(sys.stdin.read())
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sock.bind(("h0", 0))
for f in frames:
    sock.send(bytes.fromhex(f))
    time.sleep(0.002)
time.sleep(0.5)
"""

_COLLECT = """
import json, select, socket, sys, time
socks = []
for addr, port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
    s.bind((addr, port))
    socks.append((addr, port, s))
print("ready", flush=True)
got, idle = [], time.time() + 3
while time.time() < idle:
    ready, _, _ = select.select([s for _, _, s in socks], [], [], 0.2)
    for addr, port, s in socks:
        if s in ready:
            data, anc, _, _ = s.recvmsg(4096, 64)
            ttl = int.from_bytes(anc[0][2][:4], sys.byteorder) if anc else -1
            got.append([addr, port, data.hex(), ttl])
            idle = time.time() + 1
print(json.dumps(got), flush=True)
"""


def test_linux_transmit_decisions_match_the_kernel() -> None:
    """Frames from a guest behind a bridge reach a real vxlan device's remotes (head-end replication,
    per-entry port and VNI, a multicast MAC entry, an unspecified remote) and the core's remotes as
    the same datagrams, with the same TTL and tx counters."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("bridge") is None:
        pytest.skip("needs root and iproute2 (network namespaces, a bridge, veths and a vxlan device)")
    import json

    tag = secrets.token_hex(2)
    vx_ns, host_ns, far_ns = f"pvxk3-t{tag}", f"pvxk3-g{tag}", f"pvxk3-f{tag}"
    m1, m2, mc = "02:00:00:00:02:01", "02:00:00:00:02:02", "01:00:5e:01:01:01"
    entries = [
        ("append", ZERO, "198.51.100.2", ("port", "5555")),
        ("append", ZERO, "198.51.100.3", ("port", "5556")),
        ("add", m1, "198.51.100.4", ("port", "5557", "vni", "20")),
        ("add", m2, "0.0.0.0", ()),
        ("append", mc, "198.51.100.5", ("port", "5558")),
    ]
    listen = [["198.51.100.2", 5555], ["198.51.100.3", 5556], ["198.51.100.4", 5557], ["198.51.100.5", 5558]]
    dsts = [m1, m2, mc, BCAST, "02:00:00:00:02:99", "01:00:5e:00:00:07"]
    # A local experimental ethertype: a host's br_netfilter would drop IPv4 frames with a bad checksum.
    frames = [eth(d, H1, 0x88B5, bytes(45) + bytes([i])) for i, d in enumerate(dsts * 3)]
    names = (vx_ns, host_ns, far_ns)
    try:
        for name in names:
            _run("ip", "netns", "add", name)
            _run("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            _run("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        p, g, f = (("ip", "netns", "exec", name) for name in names)
        _run(*p, "ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", far_ns)
        _run(*p, "ip", "addr", "add", f"{LOCAL}/24", "dev", "ul0")
        _run(*p, "ip", "link", "set", "ul0", "up")
        for i in range(2, 6):
            _run(*f, "ip", "addr", "add", f"198.51.100.{i}/24", "dev", "ul0")
        _run(*f, "ip", "link", "set", "ul0", "up")
        _run(*p, "ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")  # no IGMP of its own
        _run(*p, "ip", "link", "set", "br0", "up")
        _run(*p, "ip", "link", "add", "h0p", "type", "veth", "peer", "name", "h0", "netns", host_ns)
        _run(*p, "ip", "link", "set", "h0p", "master", "br0", "up")
        _run(*g, "ip", "link", "set", "h0", "address", H1, "up")
        _run(*p, "ip", "link", "add", "vx0", "type", "vxlan", "id", "10", "dstport", "4789", "local", LOCAL)
        _run(*p, "ip", "link", "set", "vx0", "master", "br0", "up")
        for verb, m, dst, extra in entries:
            _run(*p, "bridge", "fdb", verb, m, "dev", "vx0", "dst", dst, *extra)
        collector = subprocess.Popen(
            [*f, sys.executable, "-c", _COLLECT, json.dumps(listen)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert collector.stdout is not None
            assert collector.stdout.readline().strip() == "ready"
            subprocess.run(
                [*g, sys.executable, "-c", _INJECT],
                input=json.dumps([fr.hex() for fr in frames]),
                check=True,
                capture_output=True,
                text=True,
            )
            received = json.loads(collector.stdout.readline())
        finally:
            collector.kill()
            collector.wait()
        stats = json.loads(
            subprocess.run(
                [*p, "ip", "-s", "-j", "link", "show", "vx0"], check=True, capture_output=True, text=True
            ).stdout
        )[0]["stats64"]["tx"]
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    kernel_all = [(a, port, bytes.fromhex(h), ttl) for a, port, h, ttl in received]
    kernel = sorted(d for d in kernel_all if d[2][14:20] == mac(H1))
    # Anything else the namespace's own stack sent through the bridge is left out of the counters.
    others = [d for d in kernel_all if d[2][14:20] != mac(H1)]
    kernel_tx = (stats["packets"] - len(others), stats["bytes"] - sum(len(d[2]) - 22 for d in others))

    v = make(remote=None)
    for verb, m, dst, extra in entries:
        options = dict(zip(extra[::2], map(int, extra[1::2]), strict=True))
        add = v.fdb_add if verb == "add" else v.fdb_append
        add(m, dst, port=options.get("port"), vni=options.get("vni"))
    for fr in frames:
        v.transmit(fr, now=1.0)
    core = sorted((d.dst, d.dst_port, d.payload, d.ttl) for d in sends(v.take_outputs()))
    c = v.counters()
    assert core == kernel
    assert (c.tx_packets, c.tx_bytes) == kernel_tx
    assert c.tx_dropped == stats["dropped"] == 3  # the frames to the entry with remote 0.0.0.0
    assert len(core) == 24  # 3 to m1, 3 to the multicast MAC, 2 copies of each of the 9 others


# --- issue 9, points 12-18: the data path and settings the kernel has -----------------------------

LOCAL6, PEER6 = "2001:db8::1", "2001:db8::2"


def ipv4(tos: int = 0, ttl: int = 64, payload: bytes = bytes(28)) -> bytes:
    """An IPv4 header (checksum filled in) and ``payload``, protocol UDP."""
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + len(payload),
        1,
        0,
        ttl,
        17,
        0,
        bytes((203, 0, 113, 1)),
        bytes((203, 0, 113, 2)),
    )
    check = internet_checksum(head)
    return head[:10] + check.to_bytes(2, "big") + head[12:] + payload


def ipv6(tclass: int = 0, hop_limit: int = 64, payload: bytes = bytes(28)) -> bytes:
    return (
        struct.pack("!IHBB", (6 << 28) | (tclass << 20), len(payload), 17, hop_limit)
        + ipaddress.IPv6Address("2001:db8:1::1").packed
        + ipaddress.IPv6Address("2001:db8:1::2").packed
        + payload
    )


def test_linux_neigh_reduce_na_keeps_only_the_priority_of_the_traffic_class() -> None:
    """vxlan_na_create: ``pip6->priority = ipv6_hdr(request)->priority`` (the top 4 bits of the
    traffic class), no flow label: an NS starting 61212345 is answered 61000000 (seen live)."""
    v = make(proxy=True)
    v.neigh_add("2001:db8::2", H2)
    ns = bytearray(neighbour_solicitation(H1, "2001:db8::1", "2001:db8::2"))
    ns[14:18] = bytes.fromhex("61212345")
    v.transmit(bytes(ns), now=1.0)
    [out] = v.take_outputs()
    assert isinstance(out, DeliverFrame)
    assert out.frame[14:18] == bytes.fromhex("61000000")


def test_linux_neigh_reduce_na_router_flag_from_the_neighbours_fdb_entry() -> None:
    """vxlan_na_create(skb, n, isrouter): Router is set when the FDB entry of the neighbour's MAC
    has NTF_ROUTER (``bridge fdb add ... router``)."""
    v = make(proxy=True)
    v.neigh_add("2001:db8::2", H2)
    v.fdb_add(H2, OTHER, router=True)
    v.transmit(neighbour_solicitation(H1, "2001:db8::1", "2001:db8::2"), now=1.0)
    [out] = v.take_outputs()
    assert isinstance(out, DeliverFrame)
    assert out.frame[54 + 4] == 0xE0  # router + solicited + override
    assert internet_checksum(out.frame[22:54] + struct.pack("!IxxxB", 32, 58) + out.frame[54:]) == 0


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (eth(H2, H1, 0x0800, bytes(19)), "IPv4"),
        (eth(H2, H1, 0x86DD, bytes(39)), "IPv6"),
        (eth(H2, H1, 0x8100, b"\x00\x05\x08\x00" + bytes(19)), "IPv4"),
        (eth(H2, H1, 0x88A8, b"\x00\x05\x81\x00\x00\x06\x86\xdd" + bytes(39)), "IPv6"),
    ],
)
def test_linux_skb_vlan_inet_prepare_drops_a_cut_inner_header_once_per_remote(frame: bytes, kind: str) -> None:
    """vxlan_xmit_one: skb_vlan_inet_prepare fails for an IPv4/IPv6 ethertype (after any VLAN
    tags) without a whole network header: the frame is dropped before encapsulation, tx_dropped
    once per remote (seen live: 33-byte IPv4, 53-byte IPv6, 37-byte tagged IPv4 frames)."""
    v = make()
    v.fdb_append(ZERO, OTHER)
    v.transmit(frame, now=1.0)
    out = v.take_outputs()
    assert out == [Dropped(Direction.TX, DropReason.INNER_TRUNCATED, len(frame), f"{kind} header cut short")] * 2
    assert (v.counters().tx_dropped, v.counters().tx_packets) == (2, 0)


def test_linux_whole_inner_headers_and_other_ethertypes_are_sent() -> None:
    v = make()
    for frame in (eth(H2, H1, 0x0800, bytes(20)), eth(H2, H1, 0x86DD, bytes(40)), eth(H2, H1, 0x0806, bytes(2))):
        v.transmit(frame, now=1.0)
    assert len(sends(v.take_outputs())) == 3
    assert v.counters().tx_dropped == 0


@pytest.mark.parametrize(
    ("mark", "word0"),
    [
        (0, 0x08000000),
        (0x1234, 0x88001234),
        (1 << 22, 0x88400000),  # Don't Learn
        (1 << 19, 0x88080000),  # Policy Applied
        ((1 << 22) | (1 << 19) | 0xABCD, 0x8848ABCD),
        (1 << 20, 0x88000000),  # any mark sets G, even one with no GBP bit
        ((1 << 31) | 5, 0x88000005),
    ],
)
def test_linux_vxlan_build_gbp_hdr_from_the_packet_mark(mark: int, word0: int) -> None:
    """vxlan_build_gbp_hdr (md->gbp = skb->mark): the headers Linux 6.18 sent for these marks."""
    v = make(gbp=True)
    v.transmit(eth(H2, H1, 0x0800, ipv4()), now=1.0, mark=mark)
    [d] = sends(v.take_outputs())
    assert d.payload[:8] == struct.pack("!II", word0, 10 << 8)


def test_linux_mark_is_ignored_without_gbp() -> None:
    v = make()
    v.transmit(eth(H2, H1, 0x0800, ipv4()), now=1.0, mark=(1 << 22) | 5)
    [d] = sends(v.take_outputs())
    assert d.payload[:8] == struct.pack("!II", 0x08000000, 10 << 8)


def test_linux_ttl_inherit_copies_the_inner_ttl_or_hop_limit_also_toward_a_group() -> None:
    """ip_tunnel_get_ttl with IFLA_VXLAN_TTL_INHERIT; no TTL (non-IP, or 0) gives 64
    (ip4_dst_hoplimit) toward a group too (seen live, IPv4 and IPv6 underlays)."""
    v = make(ttl_inherit=True, remote=None)
    v.fdb_append(ZERO, PEER)
    v.fdb_append(ZERO, "239.1.1.1")
    frames = [
        eth(H2, H1, 0x0800, ipv4(ttl=9)),
        eth(H2, H1, 0x86DD, ipv6(hop_limit=7)),
        eth(H2, H1, 0x8100, b"\x00\x05\x08\x00" + ipv4(ttl=5)),
        eth(H2, H1, 0x0800, ipv4(ttl=0)),
        eth(H2, H1, 0x0806, bytes(28)),
    ]
    for f in frames:
        v.transmit(f, now=1.0)
    assert [d.ttl for d in sends(v.take_outputs())] == [9, 9, 7, 7, 5, 5, 64, 64, 64, 64]


@pytest.mark.parametrize(
    ("tos", "inner", "outer"),
    [
        (0, eth(H2, H1, 0x0800, ipv4(tos=0x03)), 0x02),  # CE goes out as ECT(0)
        (0, eth(H2, H1, 0x0800, ipv4(tos=0x02)), 0x02),
        (0, eth(H2, H1, 0x0800, ipv4(tos=0xB9)), 0x01),  # only the ECN bits without inherit
        ("inherit", eth(H2, H1, 0x0800, ipv4(tos=0xB9)), 0xB9),
        ("inherit", eth(H2, H1, 0x0800, ipv4(tos=0xA3)), 0xA2),
        ("inherit", eth(H2, H1, 0x86DD, ipv6(tclass=0xB7)), 0xB6),
        ("inherit", eth(H2, H1, 0x8100, b"\x00\x05\x08\x00" + ipv4(tos=0x48)), 0x48),
        ("inherit", eth(H2, H1, 0x0806, bytes(28)), 0x00),
        (0x10, eth(H2, H1, 0x0800, ipv4(tos=0x01)), 0x11),
    ],
)
def test_linux_ip_tunnel_ecn_encap_outer_tos(tos: int | str, inner: bytes, outer: int) -> None:
    """ip_tunnel_get_dsfield (``tos inherit``) and INET_ECN_encapsulate: the outer ECN copies the
    inner ECT, CE becomes ECT(0); the values Linux 6.18 sent for these frames."""
    v = make(tos=tos)
    v.transmit(inner, now=1.0)
    [d] = sends(v.take_outputs())
    assert d.tos == outer


def test_linux_ip_ecn_decapsulate_outer_ce_with_not_ect_inner_is_learned_then_a_frame_error() -> None:
    """IP_ECN_decapsulate returns 2: vxlan_rcv counts rx_frame_errors and rx_errors and drops,
    after vxlan_set_mac learned the source (seen live)."""
    v = make()
    v.receive(vx(eth(DEV_MAC, H2, 0x0800, ipv4(tos=0))), PEER, 50000, now=1.0, tos=3)
    out = v.take_outputs()
    assert out == [
        EntryLearned(H2, PEER),
        Dropped(Direction.RX, DropReason.ECN_ERROR, 8 + 14 + 48, "outer CE, inner not ECT"),
    ]
    c = v.counters()
    assert (c.rx_errors, c.rx_frame_errors, c.rx_packets, c.rx_dropped) == (1, 1, 0, 0)


@pytest.mark.parametrize(
    ("inner", "delivered"),
    [
        (eth(DEV_MAC, H2, 0x0800, ipv4(tos=0x02)), eth(DEV_MAC, H2, 0x0800, ipv4(tos=0x03))),
        (eth(DEV_MAC, H2, 0x0800, ipv4(tos=0xB9)), eth(DEV_MAC, H2, 0x0800, ipv4(tos=0xBB))),
        (eth(DEV_MAC, H2, 0x0800, ipv4(tos=0x03)), eth(DEV_MAC, H2, 0x0800, ipv4(tos=0x03))),
        (eth(DEV_MAC, H2, 0x86DD, ipv6(tclass=0xB6)), eth(DEV_MAC, H2, 0x86DD, ipv6(tclass=0xB7))),
        (eth(DEV_MAC, H2, 0x0806, bytes(28)), eth(DEV_MAC, H2, 0x0806, bytes(28))),
    ],
)
def test_linux_ip_ecn_decapsulate_outer_ce_marks_an_ect_inner_packet(inner: bytes, delivered: bytes) -> None:
    """IP_ECN_set_ce / IP6_ECN_set_ce: an ECN-capable inner packet is delivered marked CE, its
    IPv4 checksum adjusted (seen live: inner ECT(0) under an outer CE arrives as CE)."""
    v = make()
    v.receive(vx(inner), PEER, 50000, now=1.0, tos=0xFF)
    assert v.take_outputs()[-1] == DeliverFrame(delivered)


def test_linux_outer_ect_with_not_ect_inner_is_delivered() -> None:
    v = make()
    v.receive(vx(eth(DEV_MAC, H2, 0x0800, ipv4(tos=0))), PEER, 50000, now=1.0, tos=1)
    assert v.take_outputs()[-1] == DeliverFrame(eth(DEV_MAC, H2, 0x0800, ipv4(tos=0)))


def test_linux_vxlan_snoop_link_local_source_is_learned_via_the_receiving_interface() -> None:
    """vxlan_snoop: an IPv6 link-local source gets ``remote_ifindex`` = the interface it came in
    on; a migration to a global address keeps it (both seen live: ``dst fe80::2 via pvh6u``)."""
    v = make(local=LOCAL6, remote=PEER6)
    v.receive(vx(eth(DEV_MAC, H2)), "fe80::2", 50000, now=1.0, interface="eth0")
    [e] = v.fdb.get(H2)
    assert (e.dst, e.interface) == ("fe80::2", "eth0")
    v.receive(vx(eth(DEV_MAC, H2)), PEER6, 50000, now=2.0, interface="eth0")
    [e] = v.fdb.get(H2)
    assert (e.dst, e.interface) == (PEER6, "eth0")
    v.receive(vx(eth(DEV_MAC, H1)), PEER6, 50000, now=3.0, interface="eth0")
    [e] = v.fdb.get(H1)
    assert (e.dst, e.interface) == (PEER6, None)  # a global source is learned without via


def test_linux_udp6zerocsumtx_sends_ipv6_datagrams_without_checksum() -> None:
    """IFLA_VXLAN_UDP_ZERO_CSUM6_TX (seen live: checksum 0 only with udp6zerocsumtx)."""
    for flag in (False, True):
        v = make(local=LOCAL6, remote=PEER6, udp6_zero_csum_tx=flag)
        v.transmit(eth(H2, H1), now=1.0)
        [d] = sends(v.take_outputs())
        assert d.zero_checksum is flag


def test_linux_udp6zerocsumrx_accepts_zero_checksum_ipv6_datagrams() -> None:
    """udp6_csum_init drops an IPv6 UDP datagram with checksum 0 unless the socket allows it
    (IFLA_VXLAN_UDP_ZERO_CSUM6_RX); no counter of the device moves (seen live)."""
    v = make(local=LOCAL6, remote=PEER6)
    payload = vx(eth(DEV_MAC, H2))
    v.receive(payload, PEER6, 50000, now=1.0, zero_checksum=True)
    assert v.take_outputs() == [Dropped(Direction.RX, DropReason.ZERO_CHECKSUM, len(payload), "IPv6 UDP checksum 0")]
    assert v.counters() == VtepCounters()
    v = make(local=LOCAL6, remote=PEER6, udp6_zero_csum_rx=True)
    v.receive(payload, PEER6, 50000, now=1.0, zero_checksum=True)
    assert v.take_outputs()[-1] == DeliverFrame(eth(DEV_MAC, H2))
    v = make()  # an IPv4 underlay: a zero UDP checksum means "none"
    v.receive(payload, PEER, 50000, now=1.0, zero_checksum=True)
    assert v.take_outputs()[-1] == DeliverFrame(eth(DEV_MAC, H2))


def test_linux_vxlan_nl2conf_a_link_change_loses_gbp_on_receive() -> None:
    """Linux 6.13+ (vxlan_nl2conf rebuilds cfg.reserved_bits from the change request, which has no
    IFLA_VXLAN_GBP): after ``ip link set ... ageing N`` (or [no]learning) a gbp device counts GBP
    datagrams as frame errors and neither delivers nor learns from them (seen live on 6.18)."""
    gbp = vx(eth(DEV_MAC, H2), word0=0x88001234)
    for change in ("ageing", "learning"):
        v = make(gbp=True)
        v.receive(gbp, PEER, 50000, now=1.0)
        assert isinstance(v.take_outputs()[-1], DeliverFrame)
        if change == "ageing":
            v.set_ageing(200)
        else:
            v.set_learning(True)
        v.receive(vx(eth(DEV_MAC, H1), word0=0x88000000), PEER, 50000, now=2.0)
        assert drops(v.take_outputs()) == [(Direction.RX, DropReason.RESERVED_BITS)]
        assert v.fdb.get(H1) == [] and v.counters().rx_frame_errors == 1
        v.transmit(eth(H2, H1), now=3.0, mark=0x1234)  # transmit keeps GBP
        assert sends(v.take_outputs())[0].payload[:4] == bytes.fromhex("88001234")


def test_gbp_lost_on_change_false_keeps_gbp() -> None:
    v = make(gbp=True, gbp_lost_on_change=False)
    v.set_ageing(200)
    v.receive(vx(eth(DEV_MAC, H2), word0=0x88001234), PEER, 50000, now=1.0)
    assert v.take_outputs()[-1] == DeliverFrame(eth(DEV_MAC, H2))


def test_receive_from_the_other_family_is_refused() -> None:
    """A device's socket is of one family; fdb_add refuses such a remote, and so does receive."""
    v = make()
    with pytest.raises(ConfigError) as info:
        v.receive(vx(eth(DEV_MAC, H2)), PEER6, 50000, now=1.0)
    assert str(info.value) == "src: '2001:db8::2' is not an IPv4 address, as the device is"
    assert v.fdb.get(H2) == [] and v.take_outputs() == []
    v6 = make(local=LOCAL6, remote=PEER6)
    with pytest.raises(ConfigError, match=r"^src: '198.51.100.2' is not an IPv6 address, as the device is$"):
        v6.receive(vx(eth(DEV_MAC, H2)), PEER, 50000, now=1.0)


def test_transmit_mark_and_receive_tos_are_checked() -> None:
    v = make(gbp=True)
    with pytest.raises(ConfigError, match=r"^mark: must be in 0\.\.4294967295, got -1$"):
        v.transmit(eth(H2, H1), now=1.0, mark=-1)
    with pytest.raises(ConfigError, match=r"^tos: must be in 0\.\.255, got True$"):
        v.receive(vx(eth(DEV_MAC, H2)), PEER, 50000, now=1.0, tos=True)


def test_linux_vxlan_snoop_an_entry_via_an_interface_is_another_remote_than_the_datagrams() -> None:
    """vxlan_snoop compares remote_ip and remote_ifindex; a datagram's ifindex is 0 unless its
    source is IPv6 link-local (seen live, found by ``pyvxlan conform --seed 11``): a static entry
    made ``via`` an interface drops a datagram from its own address, and a dynamic one "migrates"
    to the same address, keeping its interface (only remote_ip is rewritten)."""
    v = make(dev="ul0")
    v.fdb_add(H2, PEER, interface="ul0", state=FdbState.STATIC)
    v.receive(vx(eth(DEV_MAC, H2)), PEER, 50000, now=1.0)
    out = v.take_outputs()
    assert drops(out) == [(Direction.RX, DropReason.ENTRY_EXISTS)]
    assert not [o for o in out if isinstance(o, DeliverFrame)]

    v = make(dev="ul0")
    v.fdb_add(H2, PEER, interface="ul0", state=FdbState.REACHABLE)
    v.receive(vx(eth(DEV_MAC, H2)), PEER, 50000, now=1.0)
    out = v.take_outputs()
    assert [o for o in out if isinstance(o, EntryMigrated)] == [EntryMigrated(H2, PEER, PEER)]
    assert isinstance(out[-1], DeliverFrame)
    [e] = v.fdb.get(H2)
    assert (e.dst, e.interface) == (PEER, "ul0")


def test_linux_vxlan_snoop_a_link_local_source_on_its_interface_is_the_same_remote() -> None:
    """The other side of the same comparison: a link-local source learned via eth0 is the same
    remote for the next datagram that comes in on eth0 (no migration), not on another one."""
    v = make(local=LOCAL6, remote=PEER6)
    v.receive(vx(eth(DEV_MAC, H2)), "fe80::2", 50000, now=1.0, interface="eth0")
    v.take_outputs()
    v.receive(vx(eth(DEV_MAC, H2)), "fe80::2", 50000, now=2.0, interface="eth0")
    assert not [o for o in v.take_outputs() if isinstance(o, EntryMigrated)]
    v.receive(vx(eth(DEV_MAC, H2)), "fe80::2", 50000, now=3.0, interface="eth1")
    assert [o for o in v.take_outputs() if isinstance(o, EntryMigrated)] == [EntryMigrated(H2, "fe80::2", "fe80::2")]
