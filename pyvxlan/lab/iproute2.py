"""A :class:`~pyvxlan.VtepConfig` as the ``ip link add ... type vxlan ...`` command that makes it.

One renderer for every place that shows or runs the command: the kernel lab's plan
(:func:`pyvxlan.kernel.lab_commands`), ``pyvxlan demo``'s description of each host, and the
docs. It says what the kernel needs to make the same device as the netlink request the kernel lab
sends (:mod:`pyvxlan.kernel.netlink`): every option whose value differs from Linux's default, and
always ``dstport`` and ``srcport``, whose pyvxlan defaults (IANA's 4789, 49152-65535) are not
Linux's (8472, the local port range).

>>> from pyvxlan.core.config import VtepConfig
>>> link_add_command(VtepConfig(vni=10, local="198.51.100.1", group="239.1.1.1", dev="eth0", mac="02:00:00:00:00:0a"))
'ip link add vxlan10 address 02:00:00:00:00:0a type vxlan id 10 local 198.51.100.1 group 239.1.1.1 dev eth0 dstport 4789 srcport 49152 65535'
>>> link_add_command(VtepConfig(vni=7, learning=False, proxy=True, gbp=True, ageing=0.5, mac="02:00:00:00:00:07"), netns="ns1")
'ip -n ns1 link add vxlan7 address 02:00:00:00:00:07 type vxlan id 7 dstport 4789 srcport 49152 65535 nolearning ageing 1 proxy gbp'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

from pyvxlan.core.config import DEFAULT_AGEING, VtepConfig
from pyvxlan.lab.topology import FdbMode, Topology

__all__ = ["UPLINK", "device_config", "link_add_command", "vxlan_options"]

#: The name of a host's underlay interface in a kernel lab (and in the commands the demo prints):
#: a vxlan device with a multicast group needs one (``dev``).
UPLINK: Final = "eth0"

# The on/off options iproute2 spells as one word, in the order it prints them.
_FLAGS: Final = (
    ("udp6_zero_csum_tx", "udp6zerocsumtx"),
    ("udp6_zero_csum_rx", "udp6zerocsumrx"),
    ("proxy", "proxy"),
    ("l2miss", "l2miss"),
    ("l3miss", "l3miss"),
    ("gbp", "gbp"),
)


def vxlan_options(cfg: VtepConfig) -> list[str]:
    """The words after ``type vxlan``: ``id``, the addresses, the ports, then every option that is
    not at Linux's default (``ttl``, ``tos``, ``nolearning``, ``ageing``, ``maxaddress``, flags).

    ``ageing`` is in whole seconds, rounded up as the kernel lab's netlink request rounds it (and
    never 0, which Linux reads as 300). ``gbp_lost_on_change`` is a model of a kernel quirk, not a
    setting, so it renders as nothing.
    """
    words = [f"id {cfg.vni}"]
    if cfg.local is not None:
        words.append(f"local {cfg.local}")
    if cfg.group is not None:
        words.append(f"group {cfg.group}")
    if cfg.remote is not None:
        words.append(f"remote {cfg.remote}")
    if cfg.dev is not None:
        words.append(f"dev {cfg.dev}")
    words.append(f"dstport {cfg.dst_port}")
    words.append(f"srcport {cfg.src_port_range[0]} {cfg.src_port_range[1]}")
    if cfg.ttl_inherit:
        words.append("ttl inherit")
    elif cfg.ttl:
        words.append(f"ttl {cfg.ttl}")
    if cfg.tos == "inherit":
        words.append("tos inherit")
    elif cfg.tos:
        words.append(f"tos {cfg.tos:#04x}")
    if not cfg.learning:
        words.append("nolearning")
    ageing = max(1, math.ceil(cfg.ageing))
    if ageing != DEFAULT_AGEING:
        words.append(f"ageing {ageing}")
    if cfg.max_entries:
        words.append(f"maxaddress {cfg.max_entries}")
    words.extend(word for name, word in _FLAGS if getattr(cfg, name))
    return words


def link_add_command(cfg: VtepConfig, *, netns: str | None = None) -> str:
    """``ip [-n NETNS] link add NAME address MAC type vxlan ...``: the device ``cfg`` describes.

    The MAC is always given: Linux would pick a random one, and the model's (derived from the
    local address and the VNI unless set) must be the device's for both labs to agree.
    """
    ip = "ip" if netns is None else f"ip -n {netns}"
    return f"{ip} link add {cfg.name} address {cfg.mac} type vxlan {' '.join(vxlan_options(cfg))}"


def device_config(topology: Topology, host: str, vni: int) -> VtepConfig:
    """``host``'s device for ``vni`` as a kernel lab makes it: the mode's settings
    (:meth:`~pyvxlan.lab.topology.Topology.vtep_config`) on the host's :data:`UPLINK`.

    In ``EVPN`` mode without the device's proxy: FRR's zebra puts the neighbour entries on the
    bridge, which answers ARP/ND from them (``neigh_suppress``), and the device's own proxy would
    drop every request its empty table cannot answer."""
    cfg = topology.vtep_config(host, vni)
    if topology.mode is FdbMode.EVPN:
        return dataclasses.replace(cfg, dev=UPLINK, proxy=False)
    return dataclasses.replace(cfg, dev=UPLINK)
