"""How a kernel lab is built: one plan of steps, each an ``ip``/``bridge`` command and the netlink
call that does the same.

The plan drives both :func:`pyvxlan.kernel.open_lab` (each step's call, in order) and
:func:`lab_commands` (each step's command), so the script printed for a reader is exactly what the
lab does. The structure is the classic demo's: an underlay namespace holding one bridge, a
namespace per host joined to that bridge by a veth (the host's ``eth0`` with its underlay address),
on each host its vxlan devices (:func:`pyvxlan.lab.iproute2.link_add_command`), each a port of a
Linux bridge, a namespace per guest behind a veth on that bridge, and what the FDB mode programs
(:func:`pyvxlan.lab.controller.initial_ops`). In ``evpn`` mode FRR programs the tables instead: the
vxlan ports suppress ARP/ND and do not learn, the underlay bridge carries the route reflector's
address, and FRR's daemons start in the underlay and every host (:mod:`pyvxlan.kernel.frr`).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from pyvxlan.core.config import VtepConfig
from pyvxlan.errors import BackendError, ConfigError, PrivilegeError
from pyvxlan.kernel import frr
from pyvxlan.kernel.cleanup import check_prefix
from pyvxlan.kernel.extra import HAVE_NETLINK
from pyvxlan.kernel.messages import refusal
from pyvxlan.lab.controller import FdbOp, FloodOp, NeighbourOp, OpKind, initial_ops
from pyvxlan.lab.iproute2 import UPLINK, device_config, link_add_command
from pyvxlan.lab.topology import FdbMode, Topology
from pyvxlan.wire.addr import ip_info, parse_mac

if TYPE_CHECKING or HAVE_NETLINK:  # without pyroute2 nothing here that needs netlink is called
    from pyvxlan.kernel import netlink as nl

__all__ = [
    "UNDERLAY",
    "UNDERLAY_BRIDGE",
    "BuildContext",
    "LabNames",
    "Step",
    "add_bridge",
    "lab_commands",
    "link_up",
    "plan",
    "run_step",
    "set_master",
    "teardown",
]

#: The underlay namespace's name after the prefix (``pvx1a2b-underlay``).
UNDERLAY: Final = "underlay"
# No topology name can start with "_": the underlay bridges never collide with host ports.
UNDERLAY_BRIDGE: Final = "_ul"


@dataclass(slots=True)
class BuildContext:
    """What the steps share while a lab is built: sockets per namespace, what exists so far."""

    rtnl: dict[str, nl.Rtnl] = field(default_factory=dict)
    neigh: dict[str, nl.NeighSocket] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    index: dict[tuple[str, str], int] = field(default_factory=dict)
    #: FRR's daemons started so far (``evpn`` mode), stopped by :func:`teardown` by their pids.
    daemons: list[frr.FrrDaemon] = field(default_factory=list)
    #: The namespaces whose FRR pathspace exists (``/etc/frr/NS``, ``/var/run/frr/NS``).
    pathspaces: list[str] = field(default_factory=list)

    def ipr(self, ns: str) -> nl.Rtnl:
        if ns not in self.rtnl:
            self.rtnl[ns] = nl.Rtnl(ns)
        return self.rtnl[ns]

    def sock(self, ns: str) -> nl.NeighSocket:
        if ns not in self.neigh:
            self.neigh[ns] = nl.NeighSocket(ns)
        return self.neigh[ns]

    def idx(self, ns: str, name: str) -> int:
        key = (ns, name)
        if key not in self.index:
            found = self.ipr(ns).index(name)
            if found is None:
                raise ConfigError("lab", f"interface {name} is missing in namespace {ns}")
            self.index[key] = found
        return self.index[key]

    def close(self) -> None:
        errors = []
        closables: list[nl.NeighSocket | nl.Rtnl] = [*self.neigh.values(), *self.rtnl.values()]
        for closable in closables:
            try:
                closable.close()
            except Exception as exc:  # every socket gets its chance to close
                errors.append(exc)
        self.neigh.clear()
        self.rtnl.clear()
        if errors:
            raise errors[0]


class Step:
    """One line of the script and the netlink call that does the same: ``fn(ctx, *args)``."""

    __slots__ = ("args", "command", "fn")

    def __init__(self, command: str, fn: Callable[..., object], *args: Any) -> None:
        self.command = command
        self.fn = fn
        self.args = args

    def run(self, ctx: BuildContext) -> None:
        self.fn(ctx, *args) if (args := self.args) else self.fn(ctx)


def _ip(ns: str, args: str) -> str:
    return f"ip -n {ns} {args}"


class LabNames:
    """The lab's names: namespaces and the interfaces inside them."""

    def __init__(self, topology: Topology, prefix: str) -> None:
        self.prefix = prefix
        self.underlay = f"{prefix}-{UNDERLAY}"
        for name in [h.name for h in topology.hosts] + [g.name for g in topology.guests]:
            if name == UNDERLAY:
                raise ConfigError("name", f"{UNDERLAY!r} is reserved for the underlay namespace in a kernel lab")
        self.guest_if: dict[str, str] = {}
        for host in topology.hosts:
            taken = {UPLINK} | {d.name for d in host.devices} | {d.bridge for d in host.devices}
            for i, guest in enumerate(topology.guests_on(host.name)):
                name = guest.name if guest.name not in taken else f"g{i}"
                taken.add(name)
                self.guest_if[guest.name] = name

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"


def _overhead(version: int) -> int:
    return 70 if version == 6 else 50  # outer IP + UDP + VXLAN + inner Ethernet


# The step functions: each takes the context first, then what the step names.


def _new_ns(ctx: BuildContext, ns: str) -> None:
    nl.netns_create(ns)
    ctx.namespaces.append(ns)


def _sysctl(ctx: BuildContext, ns: str, key: str, value: str) -> None:
    nl.netns_sysctl(ns, key, value)


def link_up(ctx: BuildContext, ns: str, ifname: str) -> None:
    ctx.ipr(ns).set_state(ctx.idx(ns, ifname), True)


def add_bridge(ctx: BuildContext, ns: str, name: str, mcast_snooping: bool, ageing: int | None) -> None:
    ctx.index[(ns, name)] = ctx.ipr(ns).add_bridge(name, mcast_snooping=mcast_snooping, ageing=ageing)


def _add_veth(ctx: BuildContext, ns: str, name: str, peer_ns: str, mtu: int) -> None:
    ctx.index[(ns, name)] = ctx.ipr(ns).add_veth(name, UPLINK, peer_ns, mtu=mtu)


def set_master(ctx: BuildContext, ns: str, ifname: str, master: str) -> None:
    ctx.ipr(ns).set_master(ctx.idx(ns, ifname), ctx.idx(ns, master))


def _set_mac(ctx: BuildContext, ns: str, ifname: str, mac: str) -> None:
    ctx.ipr(ns).set_address(ctx.idx(ns, ifname), mac)


def _add_address(ctx: BuildContext, ns: str, ifname: str, address: str, prefixlen: int) -> None:
    ctx.ipr(ns).add_address(ctx.idx(ns, ifname), address, prefixlen)


def _add_vxlan(ctx: BuildContext, ns: str, cfg: VtepConfig) -> None:
    ctx.index[(ns, cfg.name)] = ctx.ipr(ns).add_vxlan(cfg, ctx.idx(ns, UPLINK))


def _fdb(ctx: BuildContext, ns: str, dev: str, op: FdbOp) -> None:
    if op.dst is None or op.kind not in (OpKind.ADD, OpKind.APPEND):
        raise ConfigError("op", f"a lab is built with fdb add and append only, got {op!r}")
    fields: dict[str, Any] = {
        "family": nl.AF_BRIDGE,
        "ifindex": ctx.idx(ns, dev),
        "state": nl.NUD_PERMANENT | nl.NUD_NOARP,  # what bridge fdb add/append make by default
        "ntf": nl.NTF_SELF,
        "lladdr": parse_mac(op.mac),
        "dst": ip_info(op.dst).packed,
    }
    flags = nl.NLM_F_CREATE | (nl.NLM_F_APPEND if op.kind is OpKind.APPEND else nl.NLM_F_EXCL)
    ((code, message),) = ctx.sock(ns).transact([(nl.RTM_NEWNEIGH, flags, fields)])
    if code:
        raise refusal(code, message, f"bridge fdb {op.kind.value} {op.mac} dev {dev} dst {op.dst}")


def _ip_neigh(ctx: BuildContext, ns: str, dev: str, ip: str, mac: str) -> None:
    info = ip_info(ip)
    fields: dict[str, Any] = {
        "family": 10 if info.version == 6 else 2,
        "ifindex": ctx.idx(ns, dev),
        "state": nl.NUD_PERMANENT,
        "ntf": 0,
        "lladdr": parse_mac(mac),
        "dst": info.packed,
    }
    ((code, message),) = ctx.sock(ns).transact([(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_EXCL, fields)])
    if code:
        raise refusal(code, message, f"ip neigh add {info.text} lladdr {mac} dev {dev}")


def _bridge_port(ctx: BuildContext, ns: str, ifname: str) -> None:
    ctx.ipr(ns).set_bridge_port(ctx.idx(ns, ifname), neigh_suppress=True, learning=False)


def _frr_config(ctx: BuildContext, ns: str, text: str) -> None:
    ctx.pathspaces.append(ns)
    frr.write_config(ns, text)


def _frr_start(ctx: BuildContext, ns: str, daemon: str) -> None:
    ctx.daemons.append(frr.start_daemon(ns, daemon))


def _frr_load(ctx: BuildContext, ns: str) -> None:
    frr.load_config(ns)


def plan(topology: Topology, prefix: str) -> tuple[list[Step], LabNames]:
    n = LabNames(topology, prefix)
    ul = n.underlay
    steps: list[Step] = []

    def add(command: str, fn: Callable[..., object], *args: Any) -> None:
        steps.append(Step(command, fn, *args))

    def new_ns(ns: str) -> None:
        add(f"ip netns add {ns}", _new_ns, ns)
        # Interfaces made from now on have no IPv6: no router solicitations, MLD reports or DAD
        # probes crossing the overlay and teaching the VTEPs MACs that nobody sent a packet to.
        key = "net.ipv6.conf.default.disable_ipv6"
        add(f"ip netns exec {ns} sysctl -qw {key}=1", _sysctl, ns, key.replace(".", "/"), "1")

    def enable_ipv6(ns: str) -> None:
        key = f"net.ipv6.conf.{UPLINK}.disable_ipv6"
        add(f"ip netns exec {ns} sysctl -qw {key}=0", _sysctl, ns, key.replace(".", "/"), "0")

    def up(ns: str, ifname: str) -> None:
        add(_ip(ns, f"link set {ifname} up"), link_up, ns, ifname)

    mtu = topology.underlay.mtu
    overlay_mtu = mtu - _overhead(topology.underlay.ip_version)
    plen = topology.underlay.prefixlen

    evpn = topology.mode is FdbMode.EVPN
    # The underlay: one bridge that floods multicast (no snooping, so no querier is needed).
    new_ns(ul)
    add(_ip(ul, f"link add {UNDERLAY_BRIDGE} type bridge mcast_snooping 0 forward_delay 0 stp_state 0"),
        add_bridge, ul, UNDERLAY_BRIDGE, False, None)  # fmt: skip
    if evpn:  # the route reflector's address
        rr = frr.reflector_address(topology)
        add(_ip(ul, f"addr add {rr}/{plen} dev {UNDERLAY_BRIDGE}"), _add_address, ul, UNDERLAY_BRIDGE, rr, plen)
    up(ul, UNDERLAY_BRIDGE)

    for host in topology.hosts:
        hns = n.ns(host.name)
        new_ns(hns)
        add(_ip(ul, f"link add {host.name} mtu {mtu} type veth peer name {UPLINK} mtu {mtu} netns {hns}"),
            _add_veth, ul, host.name, hns, mtu)  # fmt: skip
        add(_ip(ul, f"link set {host.name} master {UNDERLAY_BRIDGE}"), set_master, ul, host.name, UNDERLAY_BRIDGE)
        up(ul, host.name)
        v6 = topology.underlay.ip_version == 6
        if v6:
            enable_ipv6(hns)
        add(_ip(hns, f"addr add {host.address}/{plen} dev {UPLINK}" + (" nodad" if v6 else "")),
            _add_address, hns, UPLINK, host.address, plen)  # fmt: skip
        up(hns, UPLINK)
        for dev in host.devices:
            cfg = device_config(topology, host.name, dev.vni)
            add(link_add_command(cfg, netns=hns), _add_vxlan, hns, cfg)
            if any(g.vni == dev.vni and g.ip_version == 6 for g in topology.guests):
                # IPv6 guests: proxy ND and IPv6 neighbour entries need IPv6 on the device, but
                # without addresses of its own (none to announce, so nothing crosses the overlay).
                for key, value in (("addr_gen_mode", "1"), ("disable_ipv6", "0")):
                    path = f"net/ipv6/conf/{cfg.name}/{key}"  # slashes: a name may hold a dot
                    add(f"ip netns exec {hns} sysctl -qw {path}={value}", _sysctl, hns, path, value)
            ageing = int(dev.bridge_ageing * 100)
            # No multicast snooping: with it the bridge joins 224.0.0.106 (multicast router
            # discovery) and its IGMP report, sent through the tunnel from the vxlan device's
            # MAC, would teach the peers a MAC that no guest has. Multicast is flooded instead.
            add(_ip(hns, f"link add {dev.bridge} type bridge mcast_snooping 0 forward_delay 0 stp_state 0 ageing_time {ageing}"),
                add_bridge, hns, dev.bridge, False, ageing)  # fmt: skip
            add(_ip(hns, f"link set {cfg.name} master {dev.bridge}"), set_master, hns, cfg.name, dev.bridge)
            if evpn:
                # FRR's layout: the bridge answers ARP/ND from the neighbour entries zebra installs,
                # and learns nothing through the tunnel (remote MACs come from type-2 routes).
                add(f"bridge -n {hns} link set dev {cfg.name} neigh_suppress on learning off",
                    _bridge_port, hns, cfg.name)  # fmt: skip
                # The bridge has no address, so its ARP table takes the guests' IPs from their
                # gratuitous ARPs only with arp_accept; zebra advertises those as MAC/IP routes.
                path = f"net/ipv4/conf/{dev.bridge}/arp_accept"
                add(f"ip netns exec {hns} sysctl -qw {path}=1", _sysctl, hns, path, "1")
                if any(g.vni == dev.vni and g.ip_version == 6 for g in topology.guests):
                    # The same for IPv6 guests' unsolicited neighbour advertisements, on a bridge
                    # with IPv6 but no address of its own (nothing to announce over the overlay);
                    # Linux takes untracked advertisements on a forwarding interface only (RFC 9131).
                    nd = (
                        ("addr_gen_mode", "1"),
                        ("disable_ipv6", "0"),
                        ("forwarding", "1"),
                        ("accept_untracked_na", "1"),
                    )
                    for key, value in nd:
                        path = f"net/ipv6/conf/{dev.bridge}/{key}"
                        add(f"ip netns exec {hns} sysctl -qw {path}={value}", _sysctl, hns, path, value)
            up(hns, cfg.name)
            up(hns, dev.bridge)

    for guest in topology.guests:
        gns, hns, gif = n.ns(guest.name), n.ns(guest.host), n.guest_if[guest.name]
        bridge = topology.host(guest.host).device(guest.vni).bridge
        new_ns(gns)
        add(_ip(hns, f"link add {gif} mtu {overlay_mtu} type veth peer name {UPLINK} mtu {overlay_mtu} netns {gns}"),
            _add_veth, hns, gif, gns, overlay_mtu)  # fmt: skip
        add(_ip(hns, f"link set {gif} master {bridge}"), set_master, hns, gif, bridge)
        up(hns, gif)
        add(_ip(gns, f"link set {UPLINK} address {guest.mac}"), _set_mac, gns, UPLINK, guest.mac)
        v6 = guest.ip_version == 6
        if v6 and evpn:
            # The bridges forward IPv6 in evpn mode (to take advertisements): a router
            # solicitation would teach them the guest's link-local address, which zebra would
            # advertise and the simulated guest does not have. There is no router to solicit.
            key = f"net/ipv6/conf/{UPLINK}/router_solicitations"
            add(f"ip netns exec {gns} sysctl -qw {key}=0", _sysctl, gns, key, "0")
        if v6:
            enable_ipv6(gns)
        add(_ip(gns, f"addr add {guest.ip} dev {UPLINK}" + (" nodad" if v6 else "")),
            _add_address, gns, UPLINK, guest.address, guest.prefixlen)  # fmt: skip
        up(gns, UPLINK)
        up(gns, "lo")

    steps.extend(_fdb_steps(topology, n))
    if evpn:
        steps.extend(_frr_steps(topology, n))
    return steps, n


def _frr_steps(topology: Topology, n: LabNames) -> Iterator[Step]:
    """FRR's configuration written and its daemons started: the reflector first, then each host."""
    for name, text in frr.frr_configs(topology).items():
        ns = n.underlay if name == UNDERLAY else n.ns(name)
        yield Step("\n".join(frr.config_commands(ns, text)), _frr_config, ns, text)
        start = frr.start_commands(ns)
        for daemon, command in zip(frr.DAEMONS, start, strict=False):
            yield Step(command, _frr_start, ns, daemon)
        yield Step(start[-1], _frr_load, ns)


def _fdb_steps(topology: Topology, n: LabNames) -> Iterator[Step]:
    """The FDB and neighbour programming the mode asks for (:func:`pyvxlan.lab.controller.initial_ops`)."""
    for op in initial_ops(topology):
        hns = n.ns(op.host)
        name = topology.host(op.host).device(op.vni).name
        if isinstance(op, NeighbourOp):
            yield Step(op.command(name, netns=hns), _ip_neigh, hns, name, op.ip, op.mac)
        elif isinstance(op, FloodOp):
            for append in op.appends():
                yield Step(append.command(name, netns=hns), _fdb, hns, name, append)
        else:
            yield Step(op.command(name, netns=hns), _fdb, hns, name, op)


def lab_commands(topology: Topology, *, prefix: str | None = None) -> list[str]:
    """The ``ip``/``bridge`` commands that build ``topology`` by hand, then ping and tear down.

    What :func:`open_lab` does, as a script (run it as root). Needs no privilege itself.

    >>> from pyvxlan.lab.topology import classic_demo
    >>> cmds = lab_commands(classic_demo(), prefix="pvx0001")
    >>> cmds[0], cmds[-1]
    ('ip netns add pvx0001-underlay', 'ip netns del pvx0001-underlay')
    """
    prefix = check_prefix(prefix) if prefix is not None else "pvx0000"
    steps, names = plan(topology, prefix)
    lines = [s.command for s in steps]
    if topology.mode is FdbMode.EVPN:
        # open_lab waits for every table (KernelLab.evpn_settled); a script waits long enough.
        lines.append("sleep 5  # FRR: the BGP sessions come up and every route is distributed")
    for guest in topology.guests:
        for other in topology.guests:
            if other.vni == guest.vni and other.name != guest.name:
                lines.append(f"ip netns exec {names.ns(guest.name)} ping -c 1 -W 1 {other.address}")
                break
    namespaces = [names.ns(g.name) for g in topology.guests] + [names.ns(h.name) for h in topology.hosts]
    if topology.mode is FdbMode.EVPN:
        for ns in [*(names.ns(h.name) for h in reversed(topology.hosts)), names.underlay]:
            lines.extend(frr.stop_commands(ns))
    lines.extend(f"ip netns del {ns}" for ns in [*namespaces, names.underlay])
    return lines


def run_step(step: Step, ctx: BuildContext) -> None:
    try:
        step.run(ctx)
    except BackendError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise PrivilegeError(f"root or CAP_NET_ADMIN is needed to run: {step.command}") from None
        raise BackendError(exc.errno or 0, step.command, exc.reason) from None


def teardown(ctx: BuildContext, prefix: str) -> None:
    # Guests, then hosts, then the underlay: the reverse of creation. Only what this lab made:
    # steps run in worker threads that a cancellation waits for, so the record is complete.
    # Nothing here may stop the namespaces from going, not even a socket that fails to close.
    try:
        try:
            # FRR's daemons first: they hold sockets in the namespaces and write to their pathspace.
            frr.stop_daemons(ctx.daemons)
            ctx.daemons.clear()
        finally:
            for ns in ctx.pathspaces:
                frr.remove_pathspace(ns)
            ctx.close()  # sockets hold their namespace alive; close them first
    finally:
        failures = []
        for ns in reversed(ctx.namespaces):
            try:
                nl.netns_remove(ns)
            except OSError as exc:
                failures.append(f"{ns}: {exc}")
        if failures:
            raise OSError(f"could not remove {', '.join(failures)} (pyvxlan lab cleanup --prefix {prefix})")
