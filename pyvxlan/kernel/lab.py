"""Labs in network namespaces: a :class:`~pyvxlan.lab.topology.Topology` built for real.

The structure is the classic demo's: an underlay namespace holding one bridge, a namespace per
host joined to that bridge by a veth (the host's ``eth0`` with its underlay address), on each host
its vxlan devices, each a port of a Linux bridge, and a namespace per guest behind a veth on that
bridge. Every name carries the lab's prefix (``pvx`` and four hex digits), so labs run side by
side; ``pyvxlan lab cleanup`` removes what a crashed run left.

One plan (a list of steps, each an ``ip``/``bridge`` command and the netlink call that does the
same) drives both :func:`open_lab` and :func:`lab_commands`, so the script printed for a reader
is exactly what the lab does.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from pyvxlan.core.config import VtepConfig
from pyvxlan.core.entries import FdbEntry
from pyvxlan.errors import BackendError, ConfigError, PrivilegeError
from pyvxlan.kernel.messages import refusal
from pyvxlan.wire.addr import ip_info, parse_mac
from pyvxlan.wire.frame import internet_checksum

try:
    from pyvxlan.kernel import netlink as nl
    from pyvxlan.kernel.vtep import KernelVtep
except ModuleNotFoundError as exc:
    # Without the kernel extra this module still renders a lab as commands (lab_commands), which
    # needs no netlink; everything that touches the kernel calls require_kernel_extra() first.
    if (exc.name or "").partition(".")[0] != "pyroute2":
        raise
    HAVE_NETLINK = False
else:
    HAVE_NETLINK = True
from pyvxlan.lab import PingResult, lab_key_error
from pyvxlan.lab.controller import FdbOp, NeighbourOp, OpKind, apply_op, attach_ops, initial_ops
from pyvxlan.lab.iproute2 import UPLINK, device_config, link_add_command
from pyvxlan.lab.topology import FdbMode, GuestSpec, Topology
from pyvxlan.wire.packets import announcement_frame, unpadded
from pyvxlan.wire.pcap import PcapWriter

__all__ = [
    "HAVE_NETLINK",
    "LAB_PREFIX",
    "LOCK_DIR",
    "UPLINK",
    "CleanupReport",
    "KernelGuest",
    "KernelLab",
    "LabLock",
    "cleanup",
    "lab_owner",
    "lab_commands",
    "lab_namespaces",
    "new_prefix",
    "open_lab",
    "require_kernel_extra",
]

#: Names of every lab namespace start with this, then four hex digits and ``-``.
LAB_PREFIX: Final = "pvx"
_PREFIX_RE = re.compile(r"pvx[0-9a-f]{4}\Z")
UNDERLAY: Final = "underlay"
# No topology name can start with "_": the underlay bridges never collide with host ports.
UNDERLAY_BRIDGE: Final = "_ul"


def require_kernel_extra() -> None:
    """Raise :class:`~pyvxlan.ConfigError` (field ``backend``) when pyroute2, the ``kernel``
    extra, is not installed: one line that says what to install, instead of an import traceback."""
    if not HAVE_NETLINK:
        raise ConfigError("backend", "the kernel backend needs pyroute2: pip install 'pyvxlan[kernel]'")


def new_prefix() -> str:
    """A fresh lab prefix: ``pvx`` and four random hex digits."""
    return LAB_PREFIX + secrets.token_hex(2)


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ConfigError("prefix", f"{prefix!r} is not a lab prefix (pvx and four lowercase hex digits, e.g. pvx1a2b)")
    return prefix


# --- ownership: a lock held for a lab's lifetime ------------------------------------------------------

#: Each running lab holds an exclusive ``flock`` on ``LOCK_DIR/<prefix>.lock`` from before its first
#: namespace is made until its last one is gone. The kernel drops the lock when the owner exits,
#: however it exits (SIGKILL included), so a lock nobody holds means the lab's owner is gone.
LOCK_DIR: Final = "/run/pyvxlan"


class LabLock:
    """The lock of lab ``prefix``, held (``flock(LOCK_EX)``) while this object is open.

    Take it with :meth:`acquire`; ``None`` means another process holds it (the lab is running).
    """

    def __init__(self, prefix: str, fd: int, path: str) -> None:
        self.prefix = prefix
        self._fd = fd
        self._path = path

    @staticmethod
    def path(prefix: str) -> str:
        return os.path.join(LOCK_DIR, f"{prefix}.lock")

    @classmethod
    def acquire(cls, prefix: str, *, create: bool = True) -> LabLock | None:
        """The lock of ``prefix``, or ``None`` when a live process holds it. With ``create=False``
        a missing lock file is not made: then a :class:`LabLock` holding nothing is returned."""
        path = cls.path(_check_prefix(prefix))
        if create:
            os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
            except FileNotFoundError:
                return cls(prefix, -1, path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            # The previous holder unlinks the file before it lets go: a lock on an unlinked file
            # guards nothing, so take the one now at the path.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(prefix, fd, path)
            os.close(fd)
            if not create:
                return cls(prefix, -1, path)

    def release(self) -> None:
        """Remove the lock file and let go (in that order: see :meth:`acquire`)."""
        if self._fd >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            os.close(self._fd)
            self._fd = -1


def lab_owner(prefix: str) -> int | None:
    """The pid recorded by the process that holds lab ``prefix``'s lock, if one holds it (0 if it
    wrote none yet); ``None`` when nobody does."""
    lock = LabLock.acquire(prefix, create=False)
    if lock is not None:
        lock.release()
        return None
    try:
        with open(LabLock.path(prefix)) as f:
            text = f.read(32).strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """What :func:`cleanup` did: ``removed`` (``namespace NAME``, ``link NAME``) and ``kept``
    (one line per live lab it left alone, saying why)."""

    removed: tuple[str, ...]
    kept: tuple[str, ...]


def cleanup(prefix: str | None = None, *, force: bool = False) -> CleanupReport:
    """Remove the namespaces (and prefixed links) of labs whose owner is gone: those of
    ``prefix``, or of every lab. A lab whose owner still runs is left alone unless ``force``.

    Each lab's lock is held while its namespaces go, so no lab can start under that prefix
    meanwhile. Raises :class:`~pyvxlan.PrivilegeError` without root or CAP_NET_ADMIN and
    :class:`~pyvxlan.ConfigError` for a prefix that is not a lab prefix.
    """
    require_kernel_extra()
    if prefix is not None:
        _check_prefix(prefix)
    nl.require_privilege("remove lab namespaces")
    namespaces = lab_namespaces(prefix)
    rtnl = nl.Rtnl(None)
    try:
        links = _lab_links(rtnl, prefix)
        prefixes = sorted(
            {ns[:7] for ns in namespaces} | {name[:7] for name in links.values()} | _lock_prefixes(prefix)
        )
        removed: list[str] = []
        kept: list[str] = []
        for p in prefixes:
            lock = LabLock.acquire(p, create=False)
            if lock is None:
                pid = lab_owner(p)
                owner = f"pid {pid}" if pid else "a process"
                if not force:
                    kept.append(f"lab {p}: its owner ({owner}) is still running; --force removes it")
                    continue
            try:
                for ns in namespaces:
                    if ns.startswith(p + "-"):
                        nl.netns_remove(ns)
                        removed.append(f"namespace {ns}")
                for index, name in links.items():
                    if name.startswith(p):
                        try:
                            rtnl.delete(index)
                        except BackendError as exc:
                            if exc.errno != errno.ENODEV:
                                raise OSError(exc.errno, f"cannot remove link {name}: {exc}") from None
                            continue  # the other end of a veth pair removed just before
                        removed.append(f"link {name}")
            finally:
                if lock is not None:
                    lock.release()
    finally:
        rtnl.close()
    return CleanupReport(tuple(removed), tuple(kept))


def _lab_links(rtnl: nl.Rtnl, prefix: str | None) -> dict[int, str]:
    """Links in the initial namespace named after ``prefix`` or any lab prefix, by index."""
    return {
        index: name
        for index, name in sorted(rtnl.names().items())
        if _PREFIX_RE.match(name[:7]) and (prefix is None or name.startswith(prefix))
    }


def _lock_prefixes(prefix: str | None) -> set[str]:
    """Prefixes that have a lock file (a lab whose namespaces may all be gone already)."""
    try:
        names = os.listdir(LOCK_DIR)
    except FileNotFoundError:
        return set()
    found = {n[:-5] for n in names if n.endswith(".lock") and _PREFIX_RE.match(n[:-5])}
    return found if prefix is None else found & {prefix}


def lab_namespaces(prefix: str | None = None) -> list[str]:
    """The lab namespaces that exist now: those of ``prefix``, or of every lab."""
    require_kernel_extra()
    pattern = re.compile(re.escape(prefix) + "-" if prefix else r"pvx[0-9a-f]{4}-")
    return [name for name in nl.netns_list() if pattern.match(name)]


# --- the plan ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    """What the steps share while a lab is built: sockets per namespace, what exists so far."""

    rtnl: dict[str, nl.Rtnl] = field(default_factory=dict)
    neigh: dict[str, nl.NeighSocket] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    index: dict[tuple[str, str], int] = field(default_factory=dict)

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


class _Step:
    """One line of the script and the netlink call that does the same: ``fn(ctx, *args)``."""

    __slots__ = ("args", "command", "fn")

    def __init__(self, command: str, fn: Callable[..., object], *args: Any) -> None:
        self.command = command
        self.fn = fn
        self.args = args

    def run(self, ctx: _Ctx) -> None:
        self.fn(ctx, *args) if (args := self.args) else self.fn(ctx)


def _ip(ns: str, args: str) -> str:
    return f"ip -n {ns} {args}"


class _Names:
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


def _new_ns(ctx: _Ctx, ns: str) -> None:
    nl.netns_create(ns)
    ctx.namespaces.append(ns)


def _sysctl(ctx: _Ctx, ns: str, key: str, value: str) -> None:
    nl.netns_sysctl(ns, key, value)


def _link_up(ctx: _Ctx, ns: str, ifname: str) -> None:
    ctx.ipr(ns).set_state(ctx.idx(ns, ifname), True)


def _add_bridge(ctx: _Ctx, ns: str, name: str, mcast_snooping: bool, ageing: int | None) -> None:
    ctx.index[(ns, name)] = ctx.ipr(ns).add_bridge(name, mcast_snooping=mcast_snooping, ageing=ageing)


def _add_veth(ctx: _Ctx, ns: str, name: str, peer_ns: str, mtu: int) -> None:
    ctx.index[(ns, name)] = ctx.ipr(ns).add_veth(name, UPLINK, peer_ns, mtu=mtu)


def _set_master(ctx: _Ctx, ns: str, ifname: str, master: str) -> None:
    ctx.ipr(ns).set_master(ctx.idx(ns, ifname), ctx.idx(ns, master))


def _set_mac(ctx: _Ctx, ns: str, ifname: str, mac: str) -> None:
    ctx.ipr(ns).set_address(ctx.idx(ns, ifname), mac)


def _add_address(ctx: _Ctx, ns: str, ifname: str, address: str, prefixlen: int) -> None:
    ctx.ipr(ns).add_address(ctx.idx(ns, ifname), address, prefixlen)


def _add_vxlan(ctx: _Ctx, ns: str, cfg: VtepConfig) -> None:
    ctx.index[(ns, cfg.name)] = ctx.ipr(ns).add_vxlan(cfg, ctx.idx(ns, UPLINK))


def _fdb(ctx: _Ctx, ns: str, dev: str, op: FdbOp) -> None:
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


def _ip_neigh(ctx: _Ctx, ns: str, dev: str, ip: str, mac: str) -> None:
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


def _plan(topology: Topology, prefix: str) -> tuple[list[_Step], _Names]:
    n = _Names(topology, prefix)
    ul = n.underlay
    steps: list[_Step] = []

    def add(command: str, fn: Callable[..., object], *args: Any) -> None:
        steps.append(_Step(command, fn, *args))

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
        add(_ip(ns, f"link set {ifname} up"), _link_up, ns, ifname)

    mtu = topology.underlay.mtu
    overlay_mtu = mtu - _overhead(topology.underlay.ip_version)
    plen = topology.underlay.prefixlen

    # The underlay: one bridge that floods multicast (no snooping, so no querier is needed).
    new_ns(ul)
    add(_ip(ul, f"link add {UNDERLAY_BRIDGE} type bridge mcast_snooping 0 forward_delay 0 stp_state 0"),
        _add_bridge, ul, UNDERLAY_BRIDGE, False, None)  # fmt: skip
    up(ul, UNDERLAY_BRIDGE)

    for host in topology.hosts:
        hns = n.ns(host.name)
        new_ns(hns)
        add(_ip(ul, f"link add {host.name} mtu {mtu} type veth peer name {UPLINK} mtu {mtu} netns {hns}"),
            _add_veth, ul, host.name, hns, mtu)  # fmt: skip
        add(_ip(ul, f"link set {host.name} master {UNDERLAY_BRIDGE}"), _set_master, ul, host.name, UNDERLAY_BRIDGE)
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
                _add_bridge, hns, dev.bridge, False, ageing)  # fmt: skip
            add(_ip(hns, f"link set {cfg.name} master {dev.bridge}"), _set_master, hns, cfg.name, dev.bridge)
            up(hns, cfg.name)
            up(hns, dev.bridge)

    for guest in topology.guests:
        gns, hns, gif = n.ns(guest.name), n.ns(guest.host), n.guest_if[guest.name]
        bridge = topology.host(guest.host).device(guest.vni).bridge
        new_ns(gns)
        add(_ip(hns, f"link add {gif} mtu {overlay_mtu} type veth peer name {UPLINK} mtu {overlay_mtu} netns {gns}"),
            _add_veth, hns, gif, gns, overlay_mtu)  # fmt: skip
        add(_ip(hns, f"link set {gif} master {bridge}"), _set_master, hns, gif, bridge)
        up(hns, gif)
        add(_ip(gns, f"link set {UPLINK} address {guest.mac}"), _set_mac, gns, UPLINK, guest.mac)
        v6 = guest.ip_version == 6
        if v6:
            enable_ipv6(gns)
        add(_ip(gns, f"addr add {guest.ip} dev {UPLINK}" + (" nodad" if v6 else "")),
            _add_address, gns, UPLINK, guest.address, guest.prefixlen)  # fmt: skip
        up(gns, UPLINK)
        up(gns, "lo")

    steps.extend(_fdb_steps(topology, n))
    return steps, n


def _fdb_steps(topology: Topology, n: _Names) -> Iterator[_Step]:
    """The FDB and neighbour programming the mode asks for (:func:`pyvxlan.lab.controller.initial_ops`)."""
    for op in initial_ops(topology):
        hns = n.ns(op.host)
        name = topology.host(op.host).device(op.vni).name
        if isinstance(op, NeighbourOp):
            yield _Step(op.command(name, netns=hns), _ip_neigh, hns, name, op.ip, op.mac)
        else:
            yield _Step(op.command(name, netns=hns), _fdb, hns, name, op)


def lab_commands(topology: Topology, *, prefix: str | None = None) -> list[str]:
    """The ``ip``/``bridge`` commands that build ``topology`` by hand, then ping and tear down.

    What :func:`open_lab` does, as a script (run it as root). Needs no privilege itself.

    >>> from pyvxlan.lab.topology import classic_demo
    >>> cmds = lab_commands(classic_demo(), prefix="pvx0001")
    >>> cmds[0], cmds[-1]
    ('ip netns add pvx0001-underlay', 'ip netns del pvx0001-underlay')
    """
    prefix = _check_prefix(prefix) if prefix is not None else "pvx0000"
    steps, names = _plan(topology, prefix)
    lines = [s.command for s in steps]
    for guest in topology.guests:
        for other in topology.guests:
            if other.vni == guest.vni and other.name != guest.name:
                lines.append(f"ip netns exec {names.ns(guest.name)} ping -c 1 -W 1 {other.address}")
                break
    namespaces = [names.ns(g.name) for g in topology.guests] + [names.ns(h.name) for h in topology.hosts]
    lines.extend(f"ip netns del {ns}" for ns in [*namespaces, names.underlay])
    return lines


# --- the running lab --------------------------------------------------------------------------------


class KernelGuest:
    """A guest namespace: real ICMP from its ``eth0``. Implements :class:`~pyvxlan.lab.Guest`."""

    def __init__(self, spec: GuestSpec, netns: str) -> None:
        self._spec = spec
        self.netns = netns

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def mac(self) -> str:
        return self._spec.mac

    @property
    def ip(self) -> str:
        return self._spec.address

    @property
    def spec(self) -> GuestSpec:
        return self._spec

    async def ping(self, ip: str, *, count: int = 1, timeout: float = 1.0, interval: float = 1.0) -> PingResult:
        """``ping -c COUNT -W TIMEOUT -i INTERVAL IP`` from the guest's namespace (ICMP or ICMPv6
        echo on a raw socket; the guest's kernel resolves ``ip`` with ARP or ND first)."""
        info = ip_info(str(ip), "ip")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError("count", f"must be >= 1, got {count!r}")
        if not timeout > 0 or interval < 0:
            raise ConfigError("timeout", f"timeout must be > 0 and interval >= 0, got {timeout!r}, {interval!r}")
        family, proto = (
            (socket.AF_INET6, socket.IPPROTO_ICMPV6) if info.version == 6 else (socket.AF_INET, socket.IPPROTO_ICMP)
        )
        raw = await _socket_in(self.netns, family, socket.SOCK_RAW, proto)
        sock = trio.socket.from_stdlib_socket(raw)
        ident = secrets.randbits(16)
        rtts: list[float] = []
        try:
            for seq in range(count):
                if seq:
                    await trio.sleep(interval)
                rtt = await _echo(sock, info.version, info.text, ident=ident, seq=seq, timeout=timeout)
                if rtt is not None:
                    rtts.append(rtt)
        finally:
            sock.close()
        return PingResult(sent=count, received=len(rtts), rtts=tuple(rtts))

    async def announce(self) -> None:
        """Send a gratuitous ARP (IPv6: an unsolicited neighbour advertisement to all nodes), as
        a migrated VM does, so that bridges and VTEPs relearn where it is."""
        # Short, as the simulated guest and Linux's own ARP send it on a veth: both labs' counters agree.
        frame = unpadded(announcement_frame(parse_mac(self._spec.mac), ip_info(self._spec.address).packed))
        raw = await _socket_in(self.netns, socket.AF_PACKET, socket.SOCK_RAW, 0)
        with raw:
            raw.bind((UPLINK, 0))
            raw.send(frame)

    async def flush_arp(self) -> None:
        """``ip neigh flush dev eth0``: forget every ARP (ND) cache entry."""
        await trio.to_thread.run_sync(_flush_neighbours, self.netns)

    def __repr__(self) -> str:
        return f"<KernelGuest {self.name} {self.ip} in {self.netns}>"


#: How long opening a socket in a guest's namespace may take (a few milliseconds normally).
SOCKET_TIMEOUT = 10.0


async def _socket_in(netns: str, family: int, kind: int, proto: int) -> socket.socket:
    """A socket in ``netns``, opened in a worker thread.

    pyroute2 forks a helper process that enters the namespace and passes the socket back. The wait
    for it is bounded, and a cancellation (Ctrl-C, SIGTERM) abandons the thread (a socket it opens
    later is closed when collected): a helper that never answers cannot hold the lab's owner.
    """
    with trio.move_on_after(SOCKET_TIMEOUT):
        return await trio.to_thread.run_sync(nl.open_socket, netns, family, kind, proto, abandon_on_cancel=True)
    raise ConfigError("netns", f"no socket could be opened in network namespace {netns!r} within {SOCKET_TIMEOUT:g} s")


def _flush_neighbours(ns: str) -> None:
    sock = nl.NeighSocket(ns)
    try:
        raw = sock.dump(0)
        doomed = [
            (nl.RTM_DELNEIGH, 0, {"family": m.family, "ifindex": m.ifindex, "state": 0, "ntf": 0, "dst": m.dst})
            for m in nl.parse_neigh_messages(raw)
            if m.family in (2, 10) and m.dst is not None and not m.state & nl.NUD_NOARP
        ]
        if doomed:
            sock.transact(doomed)
    finally:
        sock.close()


async def _echo(
    sock: trio.socket.SocketType, version: int, dst: str, *, ident: int, seq: int, timeout: float
) -> float | None:
    request, reply = (128, 129) if version == 6 else (8, 0)
    payload = b"pyvxlan-" + struct.pack("!d", time.time())
    header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
    if version == 4:  # the kernel computes ICMPv6 checksums of raw sockets itself
        header = struct.pack("!BBHHH", request, 0, internet_checksum(header + payload), ident, seq)
    start = trio.current_time()
    await sock.sendto(header + payload, (dst, 0))
    with trio.move_on_after(timeout):
        while True:
            data, _ = await sock.recvfrom(65535)
            if version == 4:
                data = data[(data[0] & 0x0F) * 4 :]  # raw IPv4 sockets hand over the IP header
            if len(data) >= 8 and data[0] == reply:
                _, _, _, rid, rseq = struct.unpack_from("!BBHHH", data)
                if rid == ident and rseq == seq:
                    return trio.current_time() - start
    return None


class KernelLab:
    """A running lab in namespaces (:func:`open_lab`). Implements :class:`~pyvxlan.lab.Lab`
    (the simulator's extras, :class:`~pyvxlan.lab.SimulatedLab`, it has not)."""

    def __init__(self, topology: Topology, prefix: str, names: _Names, nursery: trio.Nursery, ctx: _Ctx) -> None:
        self.topology = topology
        self.prefix = prefix
        self._names = names
        self._nursery = nursery
        self._ctx = ctx
        self._start = trio.current_time()
        self._guest_host = {g.name: g.host for g in topology.guests}
        self._vteps: dict[tuple[str, int], KernelVtep] = {}
        self._guests: dict[str, KernelGuest] = {}
        self._captures: list[_Capture] = []

    @property
    def namespaces(self) -> list[str]:
        """The lab's namespaces that exist now."""
        return lab_namespaces(self.prefix)

    def netns(self, name: str) -> str:
        """The namespace of host or guest ``name`` (``underlay`` for the underlay)."""
        return self._names.underlay if name == UNDERLAY else self._names.ns(name)

    def vtep(self, host: str, vni: int) -> KernelVtep:
        """The vxlan device with ``vni`` on ``host``; :class:`~pyvxlan.errors.LabKeyError` when
        there is none."""
        if (host, vni) not in self._vteps:
            self.topology.host(host).device(vni)  # the LabKeyError naming the missing host or device
        return self._vteps[(host, vni)]

    def vteps(self) -> dict[tuple[str, int], KernelVtep]:
        """Every VTEP, keyed by (host, VNI)."""
        return dict(self._vteps)

    def guest(self, name: str) -> KernelGuest:
        """The guest called ``name``; :class:`~pyvxlan.errors.LabKeyError` when there is none."""
        guest = self._guests.get(name)
        if guest is None:
            raise lab_key_error("guest", name, self._guests)
        return guest

    def guests(self) -> list[KernelGuest]:
        return list(self._guests.values())

    def capture(self, path: str, *, guest: str | None = None) -> None:
        """Record every frame crossing the underlay bridge (each once, as it enters the bridge),
        or with ``guest`` every frame on that guest's ``eth0``, from now until the lab closes,
        into a pcap at ``path``."""
        if guest is not None:
            ns, ifname = self.guest(guest).netns, UPLINK
        else:
            ns, ifname = self._names.underlay, None
        # Opened here, not in the task, so that nothing sent after this call is missed; opening a
        # socket in a namespace takes a few milliseconds.
        raw = nl.open_socket(ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        if ifname is not None:
            raw.bind((ifname, 0))
        raw.setblocking(False)
        cap = _Capture(raw, PcapWriter(path), skip_outgoing=guest is None)
        self._captures.append(cap)
        self._nursery.start_soon(cap.run)

    # --- time, as the simulated lab offers it (real time here) ---------------------------------

    @property
    def now(self) -> float:
        """Seconds since the lab opened."""
        return trio.current_time() - self._start

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (real time: the kernel's timers run on their own)."""
        await trio.sleep(max(0.0, seconds))

    # --- reading state ---------------------------------------------------------------------------

    def fdb(self, host: str, vni: int) -> list[FdbEntry]:
        """``bridge fdb show dev DEV`` of a device, read synchronously as the simulated lab's.

        One short netlink dump made inline (well under a millisecond for a lab's tables); in
        async code ``await lab.vtep(host, vni).fdb()`` does the same from a worker thread.
        """
        return self.vtep(host, vni).read_fdb(trio.current_time())

    def fdb_lines(self, host: str, vni: int) -> list[str]:
        """The same in ``bridge fdb show`` form."""
        vtep = self.vtep(host, vni)
        return [e.bridge_line(vtep.name) for e in self.fdb(host, vni)]

    def guest_host(self, name: str) -> str:
        """The host a guest is attached to now."""
        self.guest(name)
        return self._guest_host[name]

    # --- faults and changes ----------------------------------------------------------------------

    def link_down(self, host: str) -> None:
        """Take ``host``'s underlay link down (its port on the underlay bridge)."""
        self._set_port(host, False)

    def link_up(self, host: str) -> None:
        """Bring ``host``'s underlay link back up."""
        self._set_port(host, True)

    def partition(self, *sides: Iterable[str]) -> None:
        """Split the hosts into ``sides`` (lists of host names); the rest form one more side.

        Each side's underlay ports move to a bridge of their own (``_ul1``, ``_ul2``, ...), so
        nothing, multicast included, crosses between sides; :meth:`heal` moves them back.
        """
        named = [[self.topology.host(h).name for h in side] for side in sides]
        ctx, ul = self._ctx, self._names.underlay
        self.heal()
        for k, side in enumerate(named, 1):
            bridge = f"{UNDERLAY_BRIDGE}{k}"
            if (ul, bridge) not in ctx.index:
                _add_bridge(ctx, ul, bridge, False, None)
                _link_up(ctx, ul, bridge)
            for host in side:
                _set_master(ctx, ul, host, bridge)

    def heal(self) -> None:
        """End a partition: every host's port back on the one underlay bridge."""
        ctx, ul = self._ctx, self._names.underlay
        for host in self.topology.hosts:
            _set_master(ctx, ul, host.name, UNDERLAY_BRIDGE)

    def _set_port(self, host: str, up: bool) -> None:
        self.topology.host(host)
        ul = self._names.underlay
        # One netlink request made inline, as the simulated lab's method is synchronous.
        self._ctx.ipr(ul).set_state(self._ctx.idx(ul, host), up)

    async def vtep_down(self, host: str, vni: int) -> None:
        """``ip link set DEV down`` (leaves the group, flushes learned entries)."""
        await self.vtep(host, vni).down()

    async def vtep_up(self, host: str, vni: int) -> None:
        """``ip link set DEV up`` (joins the group again)."""
        await self.vtep(host, vni).up()

    async def move_guest(self, name: str, host: str) -> None:
        """Move a guest to ``host``'s bridge (a live migration): its veth moves to the other host's
        namespace, the guest keeps its MAC and IP and sends a gratuitous ARP; in controller mode
        every VTEP is reprogrammed first, as the simulated lab's controller does.

        The guest's link goes down while its veth moves, and Linux forgets its ARP/ND cache when
        the carrier change is processed (linkwatch, asynchronously: sometimes before the next
        ping, sometimes not). The move flushes the cache itself, so a move is the same every time
        and the same as in the simulated lab.
        """
        guest = self.guest(name)
        spec = self.topology.guest(name)
        old = self._guest_host[name]
        bridge = self.topology.host(host).device(spec.vni).bridge
        if old == host:
            return
        await trio.to_thread.run_sync(self._move_veth, name, old, host, bridge)
        self._guest_host[name] = host
        if self.topology.mode is FdbMode.CONTROLLER:
            # What the controller reprograms after a move, as in the simulated lab.
            for op in attach_ops(self.topology, spec, host, old):
                await apply_op(self.vtep(op.host, op.vni), op)
        await guest.announce()

    def _move_veth(self, name: str, old: str, host: str, bridge: str) -> None:
        ctx, gif = self._ctx, self._names.guest_if[name]
        old_ns, new_ns = self._names.ns(old), self._names.ns(host)
        if ctx.ipr(new_ns).index(gif) is not None:
            raise ConfigError("host", f"host {host} already has an interface named {gif}")
        ctx.ipr(old_ns).set_netns(ctx.idx(old_ns, gif), new_ns)
        del ctx.index[(old_ns, gif)]
        _set_master(ctx, new_ns, gif, bridge)
        _link_up(ctx, new_ns, gif)
        gns = self._names.ns(name)
        ctx.ipr(gns).flush_neighbours(ctx.idx(gns, UPLINK))

    async def fdb_tables(self) -> dict[tuple[str, int], list[FdbEntry]]:
        """Every VTEP's FDB (``bridge fdb show``), keyed by (host, VNI)."""
        return {key: await vtep.fdb() for key, vtep in self._vteps.items()}

    async def _attach(self) -> None:
        for host in self.topology.hosts:
            for dev in host.devices:
                name = self.topology.vtep_config(host.name, dev.vni).name
                self._vteps[(host.name, dev.vni)] = await KernelVtep.attach(name, netns=self._names.ns(host.name))
        for guest in self.topology.guests:
            self._guests[guest.name] = KernelGuest(guest, self._names.ns(guest.name))

    async def _close(self) -> None:
        for cap in self._captures:
            cap.finish()
        for vtep in self._vteps.values():
            await vtep.aclose()


class _Capture:
    _OUTGOING: Final = 4  # PACKET_OUTGOING: the copy leaving a port; the incoming one is kept

    def __init__(self, sock: socket.socket, writer: PcapWriter, *, skip_outgoing: bool) -> None:
        self.sock = sock
        self.writer = writer
        self.skip_outgoing = skip_outgoing
        self._done = False

    async def run(self) -> None:
        try:
            while not self._done:
                await trio.lowlevel.wait_readable(self.sock)
                self._drain()
        except trio.ClosedResourceError:
            pass  # finish() closed the socket: the lab is closing
        finally:
            self.finish()

    def _drain(self) -> None:
        while True:
            try:
                frame, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, OSError):
                return
            # On the underlay, a frame is seen entering one port and leaving another (and
            # multicast once more on the bridge device): keep the copy entering the bridge.
            if not self.skip_outgoing or (addr[2] != self._OUTGOING and not addr[0].startswith(UNDERLAY_BRIDGE)):
                self.writer.write(frame, time.time())

    def finish(self) -> None:
        if not self._done:
            self._done = True
            self._drain()
            self.writer.close()
            trio.lowlevel.notify_closing(self.sock)  # wakes run() if it waits on the socket
            self.sock.close()


@asynccontextmanager
async def open_lab(topology: Topology, *, prefix: str | None = None) -> AsyncIterator[KernelLab]:
    """Build ``topology`` in network namespaces, yield the running :class:`KernelLab`, and
    remove every namespace (and so every interface) it made, on exit, on error and on
    cancellation, Ctrl-C during set-up included.

    ``prefix`` (``pvx`` and four hex digits) names the lab; by default a random one.
    """
    if not isinstance(topology, Topology):
        raise ConfigError("topology", f"must be a Topology, got {type(topology).__name__}")
    require_kernel_extra()
    nl.require_privilege("build a lab in network namespaces")
    prefix = _check_prefix(prefix) if prefix is not None else new_prefix()
    steps, names = _plan(topology, prefix)
    lock = LabLock.acquire(prefix)
    if lock is None:
        pid = lab_owner(prefix)
        raise ConfigError("prefix", f"a lab with prefix {prefix} is running (pid {pid or 'unknown'})")
    if nl.netns_exists(names.underlay):
        lock.release()
        raise ConfigError(
            "prefix", f"a lab with prefix {prefix} exists already (pyvxlan lab cleanup --prefix {prefix})"
        )
    ctx = _Ctx()
    lab: KernelLab | None = None
    try:
        for step in steps:
            await trio.to_thread.run_sync(_run_step, step, ctx)
        try:
            async with trio.open_nursery() as nursery:  # the captures' tasks
                lab = KernelLab(topology, prefix, names, nursery, ctx)
                await lab._attach()
                try:
                    yield lab
                finally:
                    with trio.CancelScope(shield=True):
                        await lab._close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The caller's own error, not a group the caller never asked for (the nursery
            # only holds captures, which end quietly).
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    finally:
        try:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_teardown, ctx, prefix)
        finally:
            # Let go only once the namespaces are gone: until then the lab is still ours.
            lock.release()


def _run_step(step: _Step, ctx: _Ctx) -> None:
    try:
        step.run(ctx)
    except BackendError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise PrivilegeError(f"root or CAP_NET_ADMIN is needed to run: {step.command}") from None
        raise BackendError(exc.errno or 0, step.command, exc.reason) from None


def _teardown(ctx: _Ctx, prefix: str) -> None:
    # Guests, then hosts, then the underlay: the reverse of creation. Only what this lab made:
    # steps run in worker threads that a cancellation waits for, so the record is complete.
    # Nothing here may stop the namespaces from going, not even a socket that fails to close.
    try:
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
