"""Wireshark's BGP dissector reads pyvxlan's EVPN UPDATEs field by field as pyvxlan meant them.

One capture per example (a batch of UPDATEs, one per TCP segment to port 179) and one ``tshark
-T fields`` run. The extended communities go before MP_REACH_NLRI: tshark 4.0 shows the label
field as a 24-bit VNI only after it has seen the VXLAN encapsulation community (evpn-frr.md 5).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvxlan.evpn import (
    ENCAP_VXLAN,
    ExtendedCommunities,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
    MacMobility,
    MpReachNlri,
    Open,
    Origin,
    PmsiTunnel,
    RouteDistinguisher,
    RouterMac,
    RouteTarget,
    Update,
)
from pyvxlan.evpn import strategies as evst
from pyvxlan.wire import pcap

from ._wire import tcp_frame

pytestmark = pytest.mark.tshark

FIELDS = [
    "bgp.type",
    "bgp.update.path_attribute.mp_reach_nlri.afi",
    "bgp.update.path_attribute.mp_reach_nlri.safi",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6",
    "bgp.evpn.nlri.rt",
    "bgp.evpn.nlri.len",
    "bgp.evpn.nlri.rd",
    "bgp.evpn.nlri.esi",
    "bgp.evpn.nlri.etag",
    "bgp.evpn.nlri.maclen",
    "bgp.evpn.nlri.mac_addr",
    "bgp.evpn.nlri.iplen",
    "bgp.evpn.nlri.ip.addr",
    "bgp.evpn.nlri.ipv6.addr",
    "bgp.evpn.nlri.vni",
    "bgp.ext_com.value_as2",
    "bgp.ext_com.value_an4",
    "bgp.ext_com.tunnel_type",
    "bgp.ext_com_evpn.mmac.seq",
    "bgp.ext_com_evpn.mmac.flags.sticky",
    "bgp.ext_com_evpn.esi.router_mac",
    "bgp.update.path_attribute.pmsi.tunnel.type",
    "bgp.update.path_attribute.pmsi.ingress_rep_ip",
]


def tshark_rows(frames: list[bytes]) -> list[dict[str, str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed")
    with tempfile.TemporaryDirectory(prefix="pvh11") as tmp:
        path = Path(tmp) / "bgp.pcap"
        pcap.write(path, [(float(i), f) for i, f in enumerate(frames)])
        args = [exe, "-n", "-r", str(path), "-d", "tcp.port==179,bgp", "-T", "fields", "-E", "separator=\t"]
        for name in FIELDS:
            args += ["-e", name]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in out.splitlines()]


def expected(update: Update, route: MacIpRoute | InclusiveMulticastRoute, vteps: tuple[str, str]) -> dict[str, str]:
    nh, pmsi_ip = vteps
    body = route.body()
    want = {name: "" for name in FIELDS}
    want |= {
        "bgp.type": "2",
        "bgp.update.path_attribute.mp_reach_nlri.afi": "25",
        "bgp.update.path_attribute.mp_reach_nlri.safi": "70",
        "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6"
        if ":" in nh
        else "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4": nh,
        "bgp.evpn.nlri.rt": str(int(route.route_type)),
        "bgp.evpn.nlri.len": str(len(body)),
        "bgp.evpn.nlri.rd": route.rd.encode().hex(),
        "bgp.evpn.nlri.etag": str(route.ethernet_tag),
        "bgp.ext_com.value_as2": "65000",
        "bgp.ext_com.value_an4": "100",
        "bgp.ext_com.tunnel_type": "8",
        "bgp.update.path_attribute.pmsi.tunnel.type": "6",
    }
    pmsi = update.pmsi
    assert pmsi is not None
    want["bgp.update.path_attribute.pmsi.ingress_rep_ip"] = pmsi_ip if ":" not in pmsi_ip else ""
    if isinstance(route, MacIpRoute):
        want["bgp.evpn.nlri.esi"] = route.esi.hex(":")
        want["bgp.evpn.nlri.maclen"] = "48"
        want["bgp.evpn.nlri.mac_addr"] = route.mac
        want["bgp.evpn.nlri.iplen"] = "0" if route.ip is None else str(32 if ":" not in route.ip else 128)
        if route.ip is not None:
            want["bgp.evpn.nlri.ipv6.addr" if ":" in route.ip else "bgp.evpn.nlri.ip.addr"] = route.ip
        want["bgp.evpn.nlri.vni"] = f"{route.vni},{pmsi.vni}"
    else:
        want["bgp.evpn.nlri.iplen"] = "32" if ":" not in route.originator else "128"
        want["bgp.evpn.nlri.ipv6.addr" if ":" in route.originator else "bgp.evpn.nlri.ip.addr"] = route.originator
        want["bgp.evpn.nlri.vni"] = str(pmsi.vni)
    for c in update.communities:
        if isinstance(c, MacMobility):
            want["bgp.ext_com_evpn.mmac.seq"] = str(c.sequence)
            want["bgp.ext_com_evpn.mmac.flags.sticky"] = "1" if c.sticky else "0"
        if isinstance(c, RouterMac):
            want["bgp.ext_com_evpn.esi.router_mac"] = c.mac
    return want


@st.composite
def evpn_updates(draw: st.DrawFn) -> tuple[Update, MacIpRoute | InclusiveMulticastRoute, tuple[str, str]]:
    route = draw(
        st.one_of(
            evst.mac_ip_routes().map(lambda r: MacIpRoute(r.rd, r.mac, r.ip, r.labels[:1], r.ethernet_tag, r.esi)),
            evst.inclusive_multicast_routes(),
        )
    )
    nh = draw(evst.vtep_ips())
    pmsi_ip = draw(st.integers(0, 255).map(lambda i: f"198.51.100.{i}"))
    extra = draw(
        st.lists(
            st.one_of(
                st.builds(MacMobility, st.integers(0, 0xFFFFFFFF), st.booleans()), st.builds(RouterMac, evst.macs())
            ),
            max_size=2,
            unique_by=type,
        )
    )
    communities = (RouteTarget.as2(65000, 100), ENCAP_VXLAN, *extra)
    update = Update(
        (ExtendedCommunities(communities), MpReachNlri(nh, (route,)), Origin(), PmsiTunnel(pmsi_ip, draw(evst.vnis())))
    )
    return update, route, (nh, pmsi_ip)


@settings(max_examples=8, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(evpn_updates(), min_size=1, max_size=25))
def test_tshark_reads_evpn_updates_as_pyvxlan_wrote_them(
    batch: list[tuple[Update, MacIpRoute | InclusiveMulticastRoute, tuple[str, str]]],
) -> None:
    frames = [tcp_frame(u.encode(), sport=40000 + i) for i, (u, _, _) in enumerate(batch)]
    rows = tshark_rows(frames)
    assert len(rows) == len(batch)
    for row, (update, route, vteps) in zip(rows, batch, strict=True):
        assert row == expected(update, route, vteps)


def test_tshark_reads_the_open() -> None:
    rows = subprocess_open_fields(Open.build(65000, "198.51.100.7", 9).encode())
    assert rows == ["1\t65000\t9\t198.51.100.7\t25\t70"]


def subprocess_open_fields(message: bytes) -> list[str]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed")
    with tempfile.TemporaryDirectory(prefix="pvh11") as tmp:
        path = Path(tmp) / "open.pcap"
        pcap.write(path, [(0.0, tcp_frame(message))])
        fields = [
            "bgp.type",
            "bgp.open.myas",
            "bgp.open.holdtime",
            "bgp.open.identifier",
            "bgp.cap.mp.afi",
            "bgp.cap.mp.safi",
        ]
        args = [exe, "-n", "-r", str(path), "-T", "fields"]
        for name in fields:
            args += ["-e", name]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()


def tshark_fields(frames: list[bytes], fields: list[str]) -> list[list[str]]:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip("tshark is not installed")
    with tempfile.TemporaryDirectory(prefix="pvh11") as tmp:
        path = Path(tmp) / "bgp.pcap"
        pcap.write(path, [(float(i), f) for i, f in enumerate(frames)])
        args = [exe, "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t"]
        for name in fields:
            args += ["-e", name]
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_tshark_reads_withdrawals_end_of_rib_and_type5() -> None:
    rd = RouteDistinguisher.as2(65000, 7)
    mac = MacIpRoute(rd, "02:00:00:00:00:01", "203.0.113.1", (0,))
    imet = InclusiveMulticastRoute(rd, "198.51.100.9")
    prefix = IpPrefixRoute(rd, "192.0.2.0", 24, "198.51.100.9", label=5000)
    updates = [
        Update.withdraw([mac, imet]),
        Update.end_of_rib(),
        Update.announce([prefix], next_hop="198.51.100.9", communities=[RouteTarget.as2(65000, 5000), ENCAP_VXLAN]),
    ]
    rows = tshark_fields(
        [tcp_frame(u.encode(), sport=41000 + i) for i, u in enumerate(updates)],
        [
            "bgp.update.path_attribute.type_code",
            "bgp.update.path_attribute.mp_unreach_nlri.afi",
            "bgp.update.path_attribute.mp_unreach_nlri.safi",
            "bgp.evpn.nlri.rt",
            "bgp.evpn.nlri.rd",
            "bgp.evpn.nlri.mac_addr",
            "bgp.evpn.nlri.ip.addr",
            "bgp.evpn.nlri.prefix_len",
            "bgp.evpn.nlri.ipv4.gtw_addr",
        ],
    )
    assert rows == [
        [
            "15",
            "25",
            "70",
            "2,3",
            "0000fde800000007,0000fde800000007",
            "02:00:00:00:00:01",
            "203.0.113.1,198.51.100.9",
            "",
            "",
        ],
        ["15", "25", "70", "", "", "", "", "", ""],
        ["14,1,2,5,16", "", "", "5", "0000fde800000007", "", "192.0.2.0", "24", "198.51.100.9"],
    ]
