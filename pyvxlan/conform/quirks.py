"""The kernel quirks the model copies on purpose: one registry, printed in every conformance report
and shown by docs/kernel-quirks.md (a test holds the page's tables to this list).

A quirk here is behaviour of the Linux vxlan driver that looks like a bug or a surprise, which the
model reproduces so that both sides agree; a conformance run compares it like everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvxlan.conform.steps import Category

__all__ = ["QUIRKS", "Quirk"]


@dataclass(frozen=True, slots=True)
class Quirk:
    """One quirk: a short name, what the kernel does, and where (``kernel_function`` is the text of
    docs/kernel-quirks.md's "kernel function" column)."""

    name: str
    category: Category
    behaviour: str
    kernel_function: str


QUIRKS: tuple[Quirk, ...] = (
    Quirk(
        "refused-replace-rewrites",
        Category.CTL,
        "bridge fdb replace of an existing all-zeros or multicast MAC answers EOPNOTSUPP after writing the "
        "request's state and flags",
        "`vxlan_fdb_update_existing` (the state and flags are written before the `NLM_F_REPLACE` check)",
    ),
    Quirk(
        "extern-learn-spares-users-entry",
        Category.CTL,
        "an extern_learn request leaves the state and flags of an entry the user made alone, but rewrites the "
        "device's own default entry",
        "`vxlan_fdb_update_existing` (`NTF_VXLAN_ADDED_BY_USER`)",
    ),
    Quirk(
        "del-unspecified-dst-deletes-mac",
        Category.CTL,
        "bridge fdb del MAC dst 0.0.0.0 (or ::) deletes the whole MAC whatever port and vni say",
        "`__vxlan_fdb_delete` (`vxlan_addr_any`: no remote is looked for)",
    ),
    Quirk(
        "del-other-family-succeeds",
        Category.CTL,
        "bridge fdb del with a dst of the other family succeeds and removes nothing when the MAC exists",
        "`vxlan_fdb_delete`, `vxlan_fdb_find_rdst`",
    ),
    Quirk(
        "remote-includes-interface",
        Category.CTL,
        "a remote is its address, port, VNI and interface (via): appending the device's remote without via "
        "adds a second row",
        "`vxlan_fdb_find_rdst` (compares `remote_ifindex`)",
    ),
    Quirk(
        "no-dst-einval",
        Category.CTL,
        "add, append or replace without dst is EINVAL",
        "`vxlan_fdb_parse`",
    ),
    Quirk(
        "src-vni-unfindable",
        Category.CTL,
        "an entry made with another src_vni on a device that is not external is dumped and counted but found by "
        "no lookup",
        "`vxlan_fdb_add`, `vxlan_find_mac` (rhashtable key {MAC, VNI}, 6.16+)",
    ),
    Quirk(
        "changelink-swaps-default-remote",
        Category.CTL,
        "ip link set DEV type vxlan remote|group NEW appends NEW to the all-zeros entry as the device's own, "
        "then deletes the old remote",
        "`vxlan_changelink`",
    ),
    Quirk(
        "append-unicast-sets-state",
        Category.CTL,
        "append to an existing unicast MAC adds nothing but sets the request's state and flags",
        "`vxlan_fdb_update_existing` (`NLM_F_APPEND` honoured only for all-zeros and multicast MACs)",
    ),
    Quirk(
        "gbp-lost-on-change",
        Category.RX,
        "a gbp device refuses every GBP datagram (a frame error) after any change of the link",
        "`vxlan_nl2conf` (`used_bits`, `conf->reserved_bits`), `vxlan_changelink`, checked in `vxlan_rcv`",
    ),
    Quirk(
        "srcport-max-unused",
        Category.TX,
        "srcport MIN MAX never uses MAX; an empty range is the local port range",
        "`udp_flow_src_port`",
    ),
    Quirk(
        "proxy-na-priority-only",
        Category.PROXY,
        "the proxy NA keeps only the top 4 bits of the solicitation's traffic class and no flow label",
        "`vxlan_na_create`",
    ),
    Quirk(
        "cut-inner-header-dropped-per-remote",
        Category.TX,
        "a frame with an IP ethertype but less than a whole IP header is dropped once per remote (tx_dropped)",
        "`skb_vlan_inet_prepare` in `vxlan_xmit_one`",
    ),
    Quirk(
        "gbp-from-any-mark",
        Category.TX,
        "on a gbp device any non-zero packet mark sets G",
        "`vxlan_build_gbp_hdr` (`md->gbp = skb->mark`)",
    ),
    Quirk(
        "ttl-inherit-toward-group",
        Category.TX,
        "ttl inherit copies the inner TTL also toward a group, 64 for a non-IP frame",
        "`ip_tunnel_get_ttl`, `ip4_dst_hoplimit`",
    ),
    Quirk(
        "outer-ecn-follows-inner",
        Category.TX,
        "the outer ECN always follows the inner packet's, with or without tos inherit",
        "`ip_tunnel_get_dsfield`, `INET_ECN_encapsulate`",
    ),
    Quirk(
        "ce-over-not-ect-learned-then-dropped",
        Category.RX,
        "an outer CE over a not-ECT inner packet is learned from, then dropped as a frame error",
        "`IP_ECN_decapsulate` in `vxlan_rcv`, `IP_ECN_set_ce`",
    ),
    Quirk(
        "link-local-learned-via",
        Category.RX,
        "a source learned from an IPv6 link-local address is recorded via the receiving interface",
        "`vxlan_snoop` (`IPV6_ADDR_LINKLOCAL`)",
    ),
    Quirk(
        "via-entry-is-another-remote",
        Category.RX,
        "an entry made via an interface is not the remote of a datagram from its own address (ifindex 0): "
        "a static one drops it, a dynamic one migrates to the same address, keeping its interface",
        "`vxlan_snoop` (`remote_ifindex`; only `remote_ip` is rewritten)",
    ),
    Quirk(
        "udp6-zero-checksum",
        Category.RX,
        "an IPv6 datagram with UDP checksum 0 never reaches the device without udp6zerocsumrx",
        "`udp6_csum_init`, `udp_tunnel6_xmit_skb`",
    ),
)
