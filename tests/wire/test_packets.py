"""The guest packets shared by the simulator and the kernel lab."""

from __future__ import annotations

from pyvxlan.wire.frame import internet_checksum
from pyvxlan.wire.packets import ALL_NODES, ARP_REPLY, announcement_frame, arp_frame, na_frame, unpadded

MAC = bytes.fromhex("020000000001")


def test_ipv4_announcement_is_a_gratuitous_arp_request() -> None:
    ip = bytes((203, 0, 113, 1))
    frame = announcement_frame(MAC, ip)
    assert frame == (b"\xff" * 6 + MAC + bytes.fromhex("08060001080006040001") + MAC + ip + bytes(6) + ip).ljust(
        60, b"\0"
    )


def test_ipv6_announcement_is_an_unsolicited_na_with_only_the_override_flag() -> None:
    ip = bytes.fromhex("20010db8000000000000000000000001")
    frame = announcement_frame(MAC, ip)
    assert frame[0:6] == bytes.fromhex("333300000001")
    assert frame[6:12] == MAC
    assert frame[12:14] == bytes.fromhex("86dd")
    ip6, icmp = frame[14:54], frame[54:]
    assert (ip6[6], ip6[7], ip6[8:24], ip6[24:40]) == (58, 255, ip, ALL_NODES)
    # Type 136 (NA), code 0; flags: Override only (RFC 4861 7.2.6: Solicited clear when unsolicited).
    assert (icmp[0], icmp[1], icmp[4]) == (136, 0, 0x20)
    assert icmp[8:24] == ip
    assert icmp[24:32] == b"\x02\x01" + MAC  # target link-layer address option
    pseudo = ip + ALL_NODES + len(icmp).to_bytes(4, "big") + bytes((0, 0, 0, 58))
    assert internet_checksum(pseudo + icmp) == 0


def test_na_frame_with_router_and_traffic_class_is_the_proxy_nd_answer() -> None:
    """vxlan_na_create's reply, byte for byte: S, O and R flags, the request's traffic class (its
    top four bits), hop limit 255, the target link-layer option, a valid checksum, no padding."""
    target = bytes.fromhex("20010db8000000000000000000000005")
    asker = bytes.fromhex("20010db8000000000000000000000001")
    asker_mac = bytes.fromhex("020000000009")
    frame = na_frame(MAC, asker_mac, target, asker, router=True, traffic_class=0xA0)
    assert len(frame) == 86
    assert frame[0:14] == asker_mac + MAC + b"\x86\xdd"
    ip6, icmp = frame[14:54], frame[54:]
    assert ip6[0:4] == bytes.fromhex("6a000000")  # version 6, traffic class 0xa0, flow label 0
    assert (int.from_bytes(ip6[4:6], "big"), ip6[6], ip6[7], ip6[8:24], ip6[24:40]) == (32, 58, 255, target, asker)
    assert (icmp[0], icmp[1], icmp[4:8], icmp[8:24], icmp[24:32]) == (
        136,
        0,
        bytes((0xE0, 0, 0, 0)),
        target,
        b"\x02\x01" + MAC,
    )
    pseudo = target + asker + len(icmp).to_bytes(4, "big") + bytes((0, 0, 0, 58))
    assert internet_checksum(pseudo + icmp) == 0
    plain = na_frame(MAC, asker_mac, target, asker)
    assert (plain[14], plain[54 + 4]) == (0x60, 0x60)  # no traffic class; S and O only


def test_an_unpadded_arp_reply_is_the_proxy_arp_answer() -> None:
    """arp_create(ARPOP_REPLY, ...) as vxlan's arp_reduce sends it up the stack: 42 bytes."""
    asker_mac, asker_ip, ip = bytes.fromhex("020000000009"), bytes((203, 0, 113, 9)), bytes((203, 0, 113, 1))
    reply = unpadded(arp_frame(ARP_REPLY, MAC, ip, asker_ip, dst_mac=asker_mac, target_mac=asker_mac))
    assert reply == asker_mac + MAC + bytes.fromhex("08060001080006040002") + MAC + ip + asker_mac + asker_ip
