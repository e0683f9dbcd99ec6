"""The guest packets shared by the simulator and the kernel lab."""

from __future__ import annotations

from pyvxlan.wire.frame import internet_checksum
from pyvxlan.wire.packets import ALL_NODES, announcement_frame

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
