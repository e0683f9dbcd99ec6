"""Hypothesis strategies for EVPN routes, path attributes and BGP messages.

Addresses come from the documentation ranges only (VTEPs in 198.51.100.0/24 and 2001:db8::/64,
guests in 203.0.113.0/24 and 192.0.2.0/24), MACs are locally administered unicast.

>>> from hypothesis import find
>>> find(mac_ip_routes(), lambda r: r.ip is not None).ip
'203.0.113.0'
"""

from __future__ import annotations

from hypothesis import strategies as st

from pyvxlan.evpn.codec import (
    ENCAP_VXLAN,
    AsPath,
    AsPathSegment,
    Capability,
    CapabilityParameter,
    ClusterList,
    DefaultGateway,
    Encapsulation,
    EvpnRoute,
    ExtendedCommunities,
    ExtendedCommunity,
    FourOctetAs,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    Keepalive,
    LocalPref,
    MacIpRoute,
    MacMobility,
    Message,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    Multiprotocol,
    Notification,
    Open,
    Origin,
    OriginatorId,
    OriginType,
    PathAttribute,
    PmsiTunnel,
    RawAttribute,
    RawCapability,
    RawCommunity,
    RouteDistinguisher,
    RouteRefresh,
    RouteRefreshCapability,
    RouterMac,
    RouteTarget,
    UnknownRoute,
    Update,
)
from pyvxlan.wire.header import VNI_MAX

__all__ = [
    "bgp_messages",
    "evpn_routes",
    "extended_communities",
    "inclusive_multicast_routes",
    "ip_prefix_routes",
    "mac_ip_routes",
    "macs",
    "path_attributes",
    "route_distinguishers",
    "updates",
    "vnis",
    "vtep_ips",
]


def vnis() -> st.SearchStrategy[int]:
    """VNIs, 0 to 2^24 - 1."""
    return st.integers(0, VNI_MAX)


def _v6(prefix: str, i: int) -> str:
    # The canonical text (RFC 5952) of prefix + i: "2001:db8::", not "2001:db8::0", which no decoder
    # prints back (tshark, ipaddress and the codec all say "2001:db8::").
    return f"{prefix}{i:x}" if i else prefix


def vtep_ips() -> st.SearchStrategy[str]:
    """Underlay addresses: 198.51.100.0/24 and 2001:db8::/64."""
    return st.one_of(
        st.integers(0, 255).map(lambda i: f"198.51.100.{i}"),
        st.integers(0, 0xFFFF).map(lambda i: _v6("2001:db8::", i)),
    )


def _ipv4_vteps() -> st.SearchStrategy[str]:
    return st.integers(0, 255).map(lambda i: f"198.51.100.{i}")


def _guest_ips() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(0, 255).map(lambda i: f"203.0.113.{i}"),
        st.integers(0, 255).map(lambda i: f"192.0.2.{i}"),
        st.integers(0, 0xFFFF).map(lambda i: _v6("2001:db8:1::", i)),
    )


def macs() -> st.SearchStrategy[str]:
    """Locally administered unicast MACs (``02:...``)."""
    return st.binary(min_size=5, max_size=5).map(lambda b: (b"\x02" + b).hex(":"))


def route_distinguishers() -> st.SearchStrategy[RouteDistinguisher]:
    """Route distinguishers of the three types."""
    return st.one_of(
        st.builds(RouteDistinguisher.as2, st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)),
        st.builds(RouteDistinguisher.ipv4, _ipv4_vteps(), st.integers(0, 0xFFFF)),
        st.builds(RouteDistinguisher.as4, st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF)),
    )


_esis = st.one_of(st.just(bytes(10)), st.binary(min_size=10, max_size=10))


def mac_ip_routes() -> st.SearchStrategy[MacIpRoute]:
    """Type-2 routes, MAC-only or MAC+IP, one or two labels."""
    return st.builds(
        MacIpRoute,
        rd=route_distinguishers(),
        mac=macs(),
        ip=st.none() | _guest_ips(),
        labels=st.lists(vnis(), min_size=1, max_size=2).map(tuple),
        ethernet_tag=st.integers(0, 0xFFFFFFFF),
        esi=_esis,
    )


def inclusive_multicast_routes() -> st.SearchStrategy[InclusiveMulticastRoute]:
    """Type-3 routes."""
    return st.builds(
        InclusiveMulticastRoute,
        rd=route_distinguishers(),
        originator=vtep_ips(),
        ethernet_tag=st.integers(0, 0xFFFFFFFF),
    )


@st.composite
def ip_prefix_routes(draw: st.DrawFn) -> IpPrefixRoute:
    """Type-5 routes, IPv4 or IPv6."""
    v6 = draw(st.booleans())
    prefix = (
        draw(st.integers(0, 0xFFFF).map(lambda i: _v6("2001:db8:1::", i)))
        if v6
        else draw(_guest_ips().filter(lambda a: ":" not in a))
    )
    gateway = draw(st.integers(0, 0xFFFF).map(lambda i: _v6("2001:db8::", i))) if v6 else draw(_ipv4_vteps())
    return IpPrefixRoute(
        rd=draw(route_distinguishers()),
        prefix=prefix,
        prefix_len=draw(st.integers(0, 128 if v6 else 32)),
        gateway=gateway,
        label=draw(vnis()),
        ethernet_tag=draw(st.integers(0, 0xFFFFFFFF)),
        esi=draw(_esis),
    )


def evpn_routes() -> st.SearchStrategy[EvpnRoute]:
    """Routes of types 2, 3 and 5, and of other types kept raw."""
    return st.one_of(
        mac_ip_routes(),
        inclusive_multicast_routes(),
        ip_prefix_routes(),
        st.builds(UnknownRoute, st.sampled_from([1, 4, 6, 200]), st.binary(max_size=40)),
    )


def extended_communities() -> st.SearchStrategy[ExtendedCommunity]:
    """The extended communities EVPN over VXLAN uses, and raw ones."""
    return st.one_of(
        st.builds(RouteTarget.as2, st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)),
        st.builds(RouteTarget.ipv4, _ipv4_vteps(), st.integers(0, 0xFFFF)),
        st.builds(RouteTarget.as4, st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF)),
        st.just(ENCAP_VXLAN),
        st.builds(Encapsulation, st.integers(0, 0xFFFF)),
        st.builds(MacMobility, st.integers(0, 0xFFFFFFFF), st.booleans()),
        st.builds(RouterMac, macs()),
        st.just(DefaultGateway()),
        st.builds(RawCommunity, st.binary(min_size=8, max_size=8)),
    )


_flags = st.sampled_from([0x40, 0x50, 0x80, 0x90, 0xC0, 0xD0])


def path_attributes() -> st.SearchStrategy[PathAttribute]:
    """Path attributes, typed and raw."""
    routes = st.lists(evpn_routes(), max_size=4).map(tuple)
    return st.one_of(
        st.builds(Origin, st.sampled_from(OriginType), _flags),
        st.builds(
            AsPath,
            st.lists(
                st.builds(
                    AsPathSegment,
                    st.sampled_from([1, 2]),
                    st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=4).map(tuple),
                ),
                max_size=2,
            ).map(tuple),
            _flags,
        ),
        st.builds(MultiExitDisc, st.integers(0, 0xFFFFFFFF), _flags),
        st.builds(LocalPref, st.integers(0, 0xFFFFFFFF), _flags),
        st.builds(OriginatorId, _ipv4_vteps(), _flags),
        st.builds(ClusterList, st.lists(_ipv4_vteps(), max_size=3).map(tuple), _flags),
        st.builds(MpReachNlri, vtep_ips(), routes, _flags),
        st.builds(MpUnreachNlri, routes, _flags),
        st.builds(ExtendedCommunities, st.lists(extended_communities(), max_size=5).map(tuple), _flags),
        st.builds(PmsiTunnel, vtep_ips(), vnis(), st.integers(0, 255), _flags),
        st.builds(RawAttribute, _flags, st.sampled_from([8, 32, 128, 200]), st.binary(max_size=300)),
    )


@st.composite
def updates(draw: st.DrawFn) -> Update:
    """UPDATE messages with distinct attribute types."""
    attrs = draw(st.lists(path_attributes(), max_size=6, unique_by=lambda a: a.type_code))
    return Update(tuple(attrs), draw(st.just(b"") | st.binary(max_size=8)), draw(st.just(b"") | st.binary(max_size=8)))


def _capabilities() -> st.SearchStrategy[Capability]:
    return st.one_of(
        st.builds(Multiprotocol, st.integers(0, 0xFFFF), st.integers(0, 255)),
        st.just(RouteRefreshCapability()),
        st.builds(FourOctetAs, st.integers(0, 0xFFFFFFFF)),
        st.builds(RawCapability, st.sampled_from([5, 64, 69, 73, 128]), st.binary(max_size=8)),
    )


def bgp_messages() -> st.SearchStrategy[Message]:
    """Every kind of BGP message."""
    opens = st.builds(
        Open,
        st.integers(0, 0xFFFF),
        st.sampled_from([0, 3, 9, 90, 180, 0xFFFF]),
        _ipv4_vteps(),
        st.lists(st.builds(CapabilityParameter, st.lists(_capabilities(), max_size=3).map(tuple)), max_size=6).map(
            tuple
        ),
    )
    return st.one_of(
        opens,
        updates(),
        st.builds(Notification, st.integers(1, 6), st.integers(0, 255), st.binary(max_size=8)),
        st.just(Keepalive()),
        st.builds(RouteRefresh, st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 2)),
    )
