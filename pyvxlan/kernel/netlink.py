"""Netlink sockets for the kernel backend: the one module that imports pyroute2.

The messages themselves are :mod:`pyvxlan.kernel.messages`' (pure, testable without root); this
module carries them, blocking (callers run it in a worker thread):

* :class:`Rtnl` wraps pyroute2's ``IPRoute`` for the slow, rich operations: links (vxlan, veth,
  bridge) and addresses. It carries the pyroute2 traps in one place: the destination port is
  always sent (the kernel would pick 8472), a unicast remote goes in ``IFLA_VXLAN_GROUP``
  (``vxlan_remote`` is silently dropped), and a namespace is opened with ``flags=0`` so that a
  typo fails instead of creating a namespace.
* :class:`NeighSocket` speaks ``RTM_*NEIGH`` itself on a raw ``NETLINK_ROUTE`` socket, because
  FDB programming and dumps are the hot path: many requests go out in one ``send`` (each with
  ``NLM_F_ACK``, acknowledgements matched by sequence number), and dumps are parsed by a lean
  parser instead of pyroute2's generic one (about 15 times faster for 10,000 entries).
* namespaces (``ip netns``), sockets inside them, and the privilege check. Entering a namespace
  is :mod:`pyvxlan.kernel.netns`'s (a thread, no fork), here as everywhere in pyvxlan.

A request the kernel refuses raises :class:`~pyvxlan.errors.BackendError` carrying the errno and
the kernel's extended-ack reason; a missing namespace is a :class:`~pyvxlan.ConfigError`
(``netns``), missing privilege a :class:`~pyvxlan.PrivilegeError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from pyvxlan.core.config import VtepConfig
from pyvxlan.errors import BackendError, ConfigError, PrivilegeError
from pyvxlan.kernel.messages import (
    AF_BRIDGE,
    NETLINK_ROUTE,
    NLM_F_ACK,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NTF_SELF,
    NUD_NOARP,
    NUD_PERMANENT,
    RTM_DELNEIGH,
    RTM_NEWNEIGH,
    VXLAN_READ,
    LinkInfo,
    collect_acks,
    dump_status,
    encode_dump_request,
    encode_neigh,
    number_requests,
    parse_neigh_messages,
    refusal,
    vxlan_attributes,
)
from pyvxlan.kernel.netns import NETNS_DIR, check_netns_name, in_netns, netns_path, socket_in
from pyvxlan.wire.addr import ip_info

__all__ = [
    # The message kinds and flags a caller of NeighSocket names, re-exported from
    # pyvxlan.kernel.messages (where they are defined) so that one import serves.
    "AF_BRIDGE",
    "NLM_F_APPEND",
    "NLM_F_CREATE",
    "NLM_F_EXCL",
    "NTF_SELF",
    "NUD_NOARP",
    "NUD_PERMANENT",
    "RTM_DELNEIGH",
    "RTM_NEWNEIGH",
    "NeighSocket",
    "has_cap_net_admin",
    "Rtnl",
    "netns_create",
    "netns_exists",
    "netns_list",
    "netns_remove",
    "netns_sysctl",
    "open_socket",
    "parse_neigh_messages",
    "require_privilege",
]

SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10  # acks carry only the request header, not the whole request
NETLINK_EXT_ACK: Final = 11  # errors carry the kernel's message ("VXLAN ID must be lower than ...")
NETLINK_GET_STRICT_CHK: Final = 12  # lets a dump be filtered by ndm_ifindex in the kernel
SO_RCVBUFFORCE: Final = 33
CAP_NET_ADMIN: Final = 12


# --- privilege -------------------------------------------------------------------------------------


def has_cap_net_admin(status_path: str = "/proc/self/status") -> bool:
    """True when the effective capabilities in ``status_path`` hold CAP_NET_ADMIN."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return False


def require_privilege(action: str, *, euid: int | None = None, cap_net_admin: bool | None = None) -> None:
    """Raise :class:`~pyvxlan.PrivilegeError` unless the process is root or has CAP_NET_ADMIN.

    ``euid`` and ``cap_net_admin`` override what the process has (for tests).

    >>> require_privilege("create a lab", euid=1000, cap_net_admin=False)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.PrivilegeError: root or CAP_NET_ADMIN is needed to create a lab
    """
    if euid is None:
        euid = os.geteuid()
    if euid == 0:
        return
    if cap_net_admin is None:
        cap_net_admin = has_cap_net_admin()
    if not cap_net_admin:
        raise PrivilegeError(f"root or CAP_NET_ADMIN is needed to {action}")


# --- namespaces ------------------------------------------------------------------------------------


def netns_list() -> list[str]:
    """The named network namespaces (``ip netns list``)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def netns_exists(name: str) -> bool:
    """True when ``/run/netns/NAME`` exists."""
    return os.path.exists(os.path.join(NETNS_DIR, name))


def netns_create(name: str) -> None:
    """``ip netns add NAME``; :class:`~pyvxlan.ConfigError` if it exists already."""
    check_netns_name(name)
    if netns_exists(name):
        raise ConfigError("netns", f"network namespace {name!r} exists already")
    try:
        netns.create(name)
    except PermissionError:
        raise PrivilegeError(f"root or CAP_NET_ADMIN is needed to create network namespace {name!r}") from None
    except OSError as exc:
        raise BackendError(exc.errno or 0, f"ip netns add {name}", exc.strerror or str(exc)) from None


def netns_remove(name: str) -> None:
    """``ip netns del NAME``; its interfaces go with it. A missing namespace is not an error."""
    if netns_exists(name):
        netns.remove(name)


def netns_sysctl(netns_name: str, key: str, value: str) -> None:
    """``ip netns exec NS sysctl -w KEY=VALUE`` (``key`` as a /proc/sys path: ``net/ipv6/...``).

    Written from inside the namespace (:func:`~pyvxlan.kernel.netns.in_netns`): ``/proc/sys/net``
    shows the namespace of the thread that opens it. A key the kernel refuses (or does not have) is
    a :class:`~pyvxlan.errors.BackendError`.
    """

    def write() -> None:
        try:
            with open(f"/proc/sys/{key}", "w") as f:
                f.write(value)
        except PermissionError:
            raise PrivilegeError(f"root or CAP_NET_ADMIN is needed to set {key} in {netns_name}") from None
        except OSError as exc:
            operation = f"sysctl -w {key.replace('/', '.')}={value} in {netns_name}"
            raise BackendError(exc.errno or 0, operation, exc.strerror or str(exc)) from None

    in_netns(check_netns_name(netns_name), write)  # a name: None would write our own namespace's sysctl


def open_socket(netns_name: str | None, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket in network namespace ``netns_name`` (``None``: ours), never creating the namespace."""
    return socket_in(netns_name, family, kind, proto)


# --- neighbours: a raw socket -------------------------------------------------------------------------


@contextlib.contextmanager
def _socket_errors(operation: str) -> Iterator[None]:
    """A failure of the socket itself (a buffer the kernel found full, a reply that never came) as
    the one :class:`~pyvxlan.errors.BackendError`; privilege errors pass as they are."""
    try:
        yield
    except (PermissionError, BackendError, PrivilegeError):
        raise
    except TimeoutError:
        raise BackendError(errno.ETIMEDOUT, operation, "the kernel did not answer within 30 s") from None
    except OSError as exc:
        raise BackendError(exc.errno or 0, operation, exc.strerror or str(exc)) from None


class NeighSocket:
    """A raw rtnetlink socket for neighbour (FDB, ARP/ND) requests, dumps and events.

    Blocking; one caller at a time (a lock serializes requests from several worker threads).
    """

    # Requests per send: a batch must fit the socket's send buffer, and its acks the receive one.
    CHUNK: Final = 2000

    def __init__(self, netns_name: str | None = None, *, groups: int = 0) -> None:
        self.netns = netns_name
        try:
            sock = open_socket(netns_name, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        except PermissionError:
            raise PrivilegeError("root or CAP_NET_ADMIN is needed to open a netlink socket in a namespace") from None
        self.sock = sock
        for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK):
            try:
                sock.setsockopt(SOL_NETLINK, opt, 1)
            except OSError:  # pragma: no cover - very old kernels
                pass
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.bind((0, groups))
        # The kernel answers every request at once; a reply that never comes must not hang us.
        sock.settimeout(30.0)
        self._seq = 1
        self._lock = threading.Lock()

    def close(self) -> None:
        self.sock.close()

    def _next_seq(self, count: int = 1) -> int:
        """Reserve ``count`` sequence numbers; returns the first."""
        first = self._seq
        self._seq = (self._seq + count) & 0x7FFFFFFF or 1
        return first

    def transact(self, build: Sequence[tuple[int, int, dict[str, Any]]]) -> list[tuple[int, str]]:
        """Send requests and wait for every acknowledgement; ``(errno, message)`` per request.

        ``build`` holds ``(msg_type, nlm_flags, fields)`` where ``fields`` are the keyword
        arguments of :func:`~pyvxlan.kernel.messages.encode_neigh`.
        """
        return self.transact_messages([encode_neigh(t, f | NLM_F_REQUEST | NLM_F_ACK, 0, **kw) for t, f, kw in build])

    def transact_messages(self, messages: Sequence[bytes]) -> list[tuple[int, str]]:
        """Send encoded requests (NLM_F_ACK set, sequence number left 0) and collect their acks.

        They go out ``CHUNK`` at a time, each chunk in one ``send``; the kernel answers every
        request in order. Sequence numbers are written in here, under the lock, so that requests
        from several threads never share one.
        """
        results: list[tuple[int, str]] = []
        with self._lock, _socket_errors("RTM_*NEIGH requests"):
            for start in range(0, len(messages), self.CHUNK):
                part = messages[start : start + self.CHUNK]
                seq0 = self._next_seq(len(part))
                results.extend(self._send_collect(number_requests(part, seq0), seq0, len(part)))
        return results

    def _send_collect(self, payload: bytes | bytearray, seq0: int, count: int) -> list[tuple[int, str]]:
        sock = self.sock
        try:
            sock.send(payload)
        except PermissionError:
            raise PrivilegeError("root or CAP_NET_ADMIN is needed to change the FDB") from None
        out: list[tuple[int, str]] = [(-1, "")] * count
        pending = count
        buf = bytearray(1 << 20)
        while pending:
            n = sock.recv_into(buf)
            pending -= collect_acks(memoryview(buf)[:n], seq0, out)
        return out

    def dump(self, family: int, ifindex: int = 0) -> bytearray:
        """The raw reply of an ``RTM_GETNEIGH`` dump (filtered by ``ifindex`` in the kernel)."""
        with self._lock, _socket_errors(f"RTM_GETNEIGH dump of family {family}"):
            seq = self._next_seq()
            try:
                self.sock.send(encode_dump_request(family, ifindex, seq))
            except PermissionError:  # pragma: no cover - dumps need no privilege
                raise PrivilegeError("root or CAP_NET_ADMIN is needed to read the FDB") from None
            out = bytearray()
            buf = bytearray(1 << 20)
            status = None
            while status is None:
                n = self.sock.recv_into(buf)
                mv = memoryview(buf)[:n]
                # Only the last message of the last datagram can be DONE or an error.
                status = dump_status(mv, seq)
                out += mv
            if status:
                raise refusal(status, "", f"RTM_GETNEIGH dump of family {family}")
            return out

    def recv_events(self) -> bytes:
        """One datagram of multicast notifications (non-blocking socket: may raise BlockingIOError)."""
        return self.sock.recv(1 << 20)


# --- links through pyroute2 --------------------------------------------------------------------------


def _from_pyroute2(exc: NetlinkError, operation: str) -> BackendError:
    # With ext_ack the second argument is the kernel's own message (e.g. "A VXLAN device with the
    # specified VNI already exists"); without one it is strerror's text, which says nothing more.
    code = int(exc.code)
    message = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else ""
    return refusal(code, "" if message == os.strerror(code) else message, operation)


class Rtnl:
    """pyroute2's ``IPRoute`` in one namespace, for links and addresses. Blocking.

    A refused request raises :class:`~pyvxlan.errors.BackendError` (its ``operation`` the
    ``ip`` command's words; an interface named by index as ``#INDEX``).
    """

    def __init__(self, netns_name: str | None = None) -> None:
        self.netns = netns_name
        if netns_name is not None:
            netns_path(netns_name)
        try:
            # flags=0: never create a namespace that is not there.
            # ext_ack: the kernel's refusals carry its reason, which iproute2 prints too.
            self._ipr = IPRoute(netns=netns_name, flags=0, ext_ack=True) if netns_name else IPRoute(ext_ack=True)
        except FileNotFoundError:
            raise ConfigError("netns", f"no network namespace named {netns_name!r}") from None
        except PermissionError:
            raise PrivilegeError(f"root or CAP_NET_ADMIN is needed to enter network namespace {netns_name!r}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        self._ipr.close()

    def _call(self, operation: str, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return getattr(self._ipr, method)(*args, **kwargs)
            except NetlinkError as exc:
                raise _from_pyroute2(exc, operation) from None

    # links

    def index(self, name: str) -> int | None:
        found = self._call(f"ip link show {name}", "link_lookup", ifname=name)
        return int(found[0]) if found else None

    def names(self) -> dict[int, str]:
        return {int(m["index"]): str(m.get("ifname")) for m in self._call("ip link show", "get_links")}

    def link(self, name: str | None = None, index: int | None = None) -> LinkInfo:
        """The link called ``name`` (or with ``index``); ``BackendError`` (ENODEV) when absent."""
        operation = f"ip link show {name if index is None else f'#{index}'}"
        try:
            (msg,) = self._call(operation, "link", "get", **({"ifname": name} if index is None else {"index": index}))
        except BackendError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                raise refusal(errno.ENODEV, "", operation) from None
            raise
        vxlan: dict[str, Any] = {}
        kind = msg.get(("linkinfo", "kind"))
        if kind == "vxlan":
            data = msg.get(("linkinfo", "data"))
            for key, value in data["attrs"] if data else ():
                if key in VXLAN_READ:
                    vxlan[VXLAN_READ[key]] = value
        stats = dict(msg.get("stats64") or {})
        return LinkInfo(
            index=int(msg["index"]),
            name=str(msg.get("ifname")),
            kind=kind,
            up=bool(msg["flags"] & 1),
            mac=str(msg.get("address") or "00:00:00:00:00:00"),
            master=msg.get("master"),
            vxlan=vxlan,
            stats={k: int(v) for k, v in stats.items()},
        )

    def _added(self, name: str) -> int:
        index = self.index(name)
        if index is None:  # pragma: no cover - removed by someone else at once
            raise refusal(errno.ENODEV, "", f"ip link show {name}")
        return index

    def add_vxlan(self, config: VtepConfig, link_index: int | None) -> int:
        """Create the vxlan device of ``config``; returns its index."""
        kw = vxlan_attributes(config, link_index)
        name = config.name
        self._call(f"ip link add {name} type vxlan", "link", "add", ifname=name, kind="vxlan", address=config.mac, **kw)
        return self._added(name)

    def set_vxlan(self, index: int, **kw: Any) -> None:
        """``ip link set DEV type vxlan ...`` (changelink: learning, ageing, ...)."""
        self._call(f"ip link set #{index} type vxlan", "link", "set", index=index, kind="vxlan", **kw)

    def set_state(self, index: int, up: bool) -> None:
        state = "up" if up else "down"
        self._call(f"ip link set #{index} {state}", "link", "set", index=index, state=state)

    def set_master(self, index: int, master: int) -> None:
        self._call(f"ip link set #{index} master #{master}", "link", "set", index=index, master=master)

    def set_bridge_port(self, index: int, *, neigh_suppress: bool, learning: bool) -> None:
        """``bridge link set dev DEV neigh_suppress on|off learning on|off`` (a bridge port's flags)."""
        words = f"neigh_suppress {'on' if neigh_suppress else 'off'} learning {'on' if learning else 'off'}"
        self._call(
            f"bridge link set dev #{index} {words}",
            "brport",
            "set",
            index=index,
            neigh_suppress=int(neigh_suppress),
            learning=int(learning),
        )

    def set_netns(self, index: int, netns_name: str) -> None:
        """``ip link set DEV netns NS`` (the namespace must exist)."""
        netns_path(netns_name)
        self._call(f"ip link set #{index} netns {netns_name}", "link", "set", index=index, net_ns_fd=netns_name)

    def delete(self, index: int) -> None:
        self._call(f"ip link del #{index}", "link", "del", index=index)

    def add_bridge(self, name: str, *, mcast_snooping: bool = True, ageing: int | None = None) -> int:
        """A Linux bridge; forwarding delay 0 and no STP, so ports forward at once (not after 15 s)."""
        kw: dict[str, Any] = {"br_forward_delay": 0, "br_stp_state": 0}
        if not mcast_snooping:
            kw["br_mcast_snooping"] = 0
        if ageing is not None:
            kw["br_ageing_time"] = ageing  # centiseconds
        self._call(f"ip link add {name} type bridge", "link", "add", ifname=name, kind="bridge", **kw)
        return self._added(name)

    def add_veth(self, name: str, peer: str, peer_netns: str, *, mtu: int | None = None) -> int:
        """A veth pair: ``name`` here and ``peer`` created directly in namespace ``peer_netns``."""
        netns_path(peer_netns)
        peer_spec: dict[str, Any] = {"ifname": peer, "net_ns_fd": peer_netns}
        kw: dict[str, Any] = {}
        if mtu is not None:
            peer_spec["mtu"] = kw["mtu"] = mtu
        operation = f"ip link add {name} type veth peer {peer} netns {peer_netns}"
        self._call(operation, "link", "add", ifname=name, kind="veth", peer=peer_spec, **kw)
        return self._added(name)

    def flush_neighbours(self, index: int) -> None:
        """``ip neigh flush dev DEV``: forget the interface's ARP and ND entries (all but
        permanent ones, as iproute2 does). pyroute2 has no flush: a dump, then one delete each."""
        for msg in self._call(f"ip neigh show dev #{index}", "neigh", "dump", ifindex=index):
            dst = msg.get_attr("NDA_DST")
            if dst is None or msg["state"] & NUD_PERMANENT:
                continue
            with contextlib.suppress(BackendError):  # gone meanwhile (it expired)
                self._call(
                    f"ip neigh del {dst} dev #{index}", "neigh", "del", ifindex=index, dst=dst, family=msg["family"]
                )

    def set_address(self, index: int, mac: str) -> None:
        """``ip link set DEV address MAC``."""
        self._call(f"ip link set #{index} address {mac}", "link", "set", index=index, address=mac)

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        info = ip_info(address)
        # IFA_F_NODAD for IPv6: usable at once, where duplicate detection would hold it back ~1 s.
        flags = 0x02 if info.version == 6 else 0
        operation = f"ip address add {info.text}/{prefixlen} dev #{index}"
        self._call(operation, "addr", "add", index=index, address=info.text, prefixlen=prefixlen, flags=flags)
