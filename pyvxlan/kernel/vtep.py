"""``KernelVtep``: :class:`~pyvxlan.VtepControl` over a real Linux vxlan device.

The kernel runs the data path; this class only programs it (FDB, neighbours, settings) and turns
the kernel's netlink notifications into pyvxlan's notification types. Every netlink call runs in a
worker thread, so the trio loop never blocks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio

from pyvxlan.core.config import DEFAULT_AGEING, VtepConfig
from pyvxlan.core.entries import FdbEntry, FdbState, Neighbour, check_interface
from pyvxlan.core.events import EntryExpired, EntryLearned, EntryMigrated, L2Miss, L3Miss, Notification, VtepCounters
from pyvxlan.errors import (
    BackendError,
    ConfigError,
    FdbBatchError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
    NeighbourExists,
    NeighbourNotFound,
    PrivilegeError,
    VxlanError,
)
from pyvxlan.kernel import messages as nlm
from pyvxlan.kernel import netlink as nl
from pyvxlan.kernel.messages import ip_text
from pyvxlan.wire.addr import ZERO_MAC, format_mac, ip_info, normalize_mac, parse_mac

__all__ = ["KernelVtep", "NotificationStream", "open_vtep"]

_AF = {4: 2, 6: 10}  # AF_INET, AF_INET6
# The request flags of each RTM_NEWNEIGH command, as iproute2's bridge sends them.
_NEW_FLAGS = {
    "fdb add": nlm.NLM_F_CREATE | nlm.NLM_F_EXCL,
    "fdb append": nlm.NLM_F_CREATE | nlm.NLM_F_APPEND,
    "fdb replace": nlm.NLM_F_CREATE | nlm.NLM_F_REPLACE,
}


def _is_learned_state(bits: int) -> bool:
    return not bits & (nlm.NUD_PERMANENT | nlm.NUD_NOARP)


def _dst_info(text: str) -> Any:
    try:
        return ip_info(text, "dst")
    except ConfigError:
        return None  # reported, with the same words, by the general path


async def _run(fn: Any, *args: Any) -> Any:
    # Netlink calls are short but blocking; a worker thread keeps the trio loop free.
    return await trio.to_thread.run_sync(fn, *args)


def _check_port(port: int | None) -> int | None:
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise ConfigError("port", f"must be in 1..65535, got {port!r}")
    return port


def _check_vni(vni: int | None, field: str = "vni") -> int | None:
    if vni is None:
        return None
    if isinstance(vni, bool) or not isinstance(vni, int) or not 0 <= vni < 1 << 24:
        raise ConfigError(field, f"must be in 0..16777215, got {vni!r}")
    return vni


class KernelVtep:
    """A Linux vxlan device driven through netlink; implements :class:`~pyvxlan.VtepControl`.

    Make one with :meth:`create` (a new device from a :class:`~pyvxlan.VtepConfig`) or
    :meth:`attach` (an existing device, e.g. made by ``ip link add``), in any network namespace;
    :func:`open_vtep` does the first and deletes the device afterwards. Close with :meth:`aclose`.

    Methods take and return what ``bridge fdb`` and ``ip neigh`` print. Inputs are checked before
    anything is sent (:class:`~pyvxlan.ConfigError` naming the field). The kernel's FDB refusals
    become the simulated VTEP's exceptions (EEXIST: :class:`~pyvxlan.FdbEntryExists`, ENOSPC:
    :class:`~pyvxlan.FdbFull`, ENOENT: :class:`~pyvxlan.FdbEntryNotFound`, EOPNOTSUPP:
    :class:`~pyvxlan.FdbOperationNotSupported`), the neighbour table's
    :class:`~pyvxlan.errors.NeighbourError`, EPERM :class:`~pyvxlan.PrivilegeError`, and any other
    refusal :class:`~pyvxlan.errors.BackendError` carrying the errno and the kernel's reason.
    """

    def __init__(
        self, config: VtepConfig, *, netns: str | None, index: int, rtnl: nl.Rtnl, sock: nl.NeighSocket
    ) -> None:
        self._config = config
        self._netns = netns
        self._index = index
        self._rtnl = rtnl
        self._sock = sock
        self._family = _AF[config.ip_version or 4]
        self._names: dict[int, str] = {}
        self._dst_texts: dict[bytes, str] = {}  # remote addresses as text: a table has few
        # Open subscriptions: each is told of the user's own dynamic entries before they are
        # sent, so that their RTM_NEWNEIGH echo (identical to a learned entry's) is not "learned".
        self._streams: set[NotificationStream] = set()
        self._closed = False

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    async def create(cls, config: VtepConfig, *, netns: str | None = None) -> KernelVtep:
        """Create the vxlan device ``config`` describes (down, as ``ip link add`` leaves it).

        ``config.dev`` names the underlay interface (required with a multicast group, as Linux
        requires). Raises :class:`~pyvxlan.ConfigError` for a name in use or a missing ``dev``
        or namespace, :class:`~pyvxlan.PrivilegeError` without CAP_NET_ADMIN, and
        :class:`~pyvxlan.errors.BackendError` when the kernel refuses the device (e.g. EEXIST:
        another device of the namespace has the VNI on the same port).
        """
        if not isinstance(config, VtepConfig):
            raise ConfigError("config", f"must be a VtepConfig, got {type(config).__name__}")
        if config.group is not None and config.dev is None:
            raise ConfigError("dev", f"a multicast group ({config.group}) needs an underlay interface (dev)")
        nl.require_privilege(f"create vxlan device {config.name}")
        rtnl = await _run(nl.Rtnl, netns)
        try:
            link_index = None
            if config.dev is not None:
                link_index = await _run(rtnl.index, config.dev)
                if link_index is None:
                    raise ConfigError("dev", f"no interface named {config.dev!r}{_in(netns)}")
            if await _run(rtnl.index, config.name) is not None:
                raise ConfigError("name", f"an interface named {config.name!r} exists already{_in(netns)}")
            try:
                index = await _run(rtnl.add_vxlan, config, link_index)
            except BackendError as exc:
                raise _link_error(exc, f"create vxlan device {config.name}") from None
            sock = await _run(nl.NeighSocket, netns)
        except BaseException:
            rtnl.close()
            raise
        # What the kernel keeps: whole seconds of ageing (see messages.vxlan_attributes).
        config = dataclasses.replace(config, ageing=float(max(1, math.ceil(config.ageing))))
        return cls(config, netns=netns, index=index, rtnl=rtnl, sock=sock)

    @classmethod
    async def attach(cls, name: str, *, netns: str | None = None) -> KernelVtep:
        """Drive the existing vxlan device ``name`` (in namespace ``netns``); its settings are
        read from the kernel into :attr:`config`."""
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 15 or "/" in name or " " in name:
            raise ConfigError("name", f"{name!r} is not a valid interface name (at most 15 bytes)")
        rtnl = await _run(nl.Rtnl, netns)
        try:
            try:
                info = await _run(rtnl.link, name)
            except BackendError as exc:
                if exc.errno == errno.ENODEV:
                    raise ConfigError("name", f"no interface named {name!r}{_in(netns)}") from None
                raise _link_error(exc, f"read interface {name}") from None
            if info.kind != "vxlan":
                raise ConfigError("name", f"{name!r} is not a vxlan device (it is {info.kind or 'of no kind'})")
            dev = None
            if info.vxlan.get("link"):
                names = await _run(rtnl.names)
                dev = names.get(int(info.vxlan["link"]))
            config = nlm.config_from_link(name, info, dev)
            sock = await _run(nl.NeighSocket, netns)
        except BaseException:
            rtnl.close()
            raise
        return cls(config, netns=netns, index=info.index, rtnl=rtnl, sock=sock)

    async def aclose(self) -> None:
        """Close the netlink sockets (the device stays; see :meth:`delete`)."""
        if not self._closed:
            self._closed = True
            self._sock.close()
            self._rtnl.close()

    async def delete(self) -> None:
        """``ip link del DEV``, then close."""
        try:
            await _run(self._rtnl.delete, self._index)
        except BackendError as exc:
            if exc.errno != errno.ENODEV:
                raise _link_error(exc, f"delete {self.name}") from None
        finally:
            await self.aclose()

    # --- identity ---------------------------------------------------------------------------------

    @property
    def config(self) -> VtepConfig:
        """The device's settings (as created, or as read from the kernel by :meth:`attach`)."""
        return self._config

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def index(self) -> int:
        """The device's interface index in its namespace."""
        return self._index

    @property
    def netns(self) -> str | None:
        return self._netns

    def __repr__(self) -> str:
        return f"<KernelVtep {self.name} vni {self._config.vni}{_in(self._netns)}>"

    # --- FDB ------------------------------------------------------------------------------------

    def _fields(
        self,
        mac: str,
        dst: str | None,
        port: int | None,
        vni: int | None,
        *,
        state: FdbState,
        extern_learn: bool,
        router: bool = False,
        via: int | None = None,
        src_vni: int | None = None,
        any_dst: bool = False,
    ) -> dict[str, Any]:
        """Validate one entry and give its :func:`~pyvxlan.kernel.messages.encode_neigh` fields.

        ``any_dst`` (``fdb del``) lets an address of the other family through: Linux answers
        itself (nothing is deleted, or ENOENT).
        """
        raw_mac = parse_mac(mac, "mac")
        if not isinstance(state, FdbState):
            raise ConfigError("state", f"must be an FdbState, got {state!r}")
        for name, flag in (("extern_learn", extern_learn), ("router", router)):
            if not isinstance(flag, bool):
                raise ConfigError(name, f"must be True or False, got {flag!r}")
        fields: dict[str, Any] = {
            "family": nlm.AF_BRIDGE,
            "ifindex": self._index,
            "state": nlm.nud_state(state),
            "ntf": nlm.NTF_SELF | (nlm.NTF_EXT_LEARNED if extern_learn else 0) | (nlm.NTF_ROUTER if router else 0),
            "lladdr": raw_mac,
            "port": _check_port(port),
            "vni": _check_vni(vni),
            "via": via,
            "src_vni": _check_vni(src_vni, "src_vni"),
        }
        if dst is not None:
            if not isinstance(dst, str):
                raise ConfigError("dst", f"{dst!r} is not an IPv4 or IPv6 address")
            info = ip_info(dst, "dst")
            # An unspecified dst is allowed, as Linux does: the entry of a bridge-local MAC.
            if not any_dst and _AF[info.version] != self._family:
                raise ConfigError(
                    "dst", f"{info.text} is IPv{info.version} but the device is IPv{4 if self._family == 2 else 6}"
                )
            fields["dst"] = info.packed
        return fields

    def _via_blocking(self, interface: str | None) -> int | None:
        """The index of the underlay interface ``interface`` (``via``), ``None`` for none."""
        if interface is None:
            return None
        check_interface(interface, "interface")
        index = self._rtnl.index(interface)
        if index is None:
            raise ConfigError("interface", f"no interface named {interface!r}{_in(self._netns)}")
        return index

    async def _via(self, interface: str | None) -> int | None:
        if interface is None:
            return None
        index: int | None = await _run(self._via_blocking, interface)
        return index

    async def _one(self, msg_type: int, flags: int, fields: dict[str, Any], what: str, mac: str) -> None:
        ((code, message),) = await _run(self._sock.transact, [(msg_type, flags, fields)])
        if code:
            raise self._fdb_error(code, message, what, mac)

    def _fdb_error(self, code: int, message: str, what: str, mac: str) -> VxlanError:
        """pyvxlan's exception for an FDB request refused with errno ``code`` (``what`` is the
        ``bridge`` command)."""
        # The same messages as the simulated VTEP's ForwardingDatabase, so both backends read alike.
        mac = normalize_mac(mac)
        if code == errno.EEXIST:
            return FdbEntryExists(f"{mac} already has an entry")
        if code == errno.ENOSPC:
            return FdbFull(f"the table holds max_entries={self._config.max_entries} entries; cannot add {mac}")
        if code == errno.ENOENT:
            return FdbEntryNotFound(f"{mac} has no entry")
        if code == errno.EOPNOTSUPP:
            if what == "fdb replace":
                return FdbOperationNotSupported(f"cannot replace non-unicast fdb entry {mac}")
            detail = f" ({message})" if message else ""
            return FdbOperationNotSupported(f"{what} {mac} is not supported on {self.name}{detail}")
        return self._refused(code, message, f"{what} {mac}")

    def _refused(self, code: int, message: str, what: str) -> VxlanError:
        """A refusal of ``what`` (``fdb add MAC``, ``neigh del IP``) that no table explains:
        PrivilegeError for EPERM and EACCES, otherwise a BackendError with the errno."""
        if code in (errno.EPERM, errno.EACCES):
            return PrivilegeError(f"root or CAP_NET_ADMIN is needed to {what} on {self.name}")
        if code == errno.ENODEV:
            message = f"{self.name} no longer exists{_in(self._netns)}"
        return nlm.refusal(code, message, f"{what} on {self.name}")

    async def fdb_add(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb add MAC dev DEV dst DST [port P] [vni V] [src_vni S] [via IF] [router]
        [extern_learn] [STATE]``."""
        await self._new("fdb add", mac, dst, port, vni, state, extern_learn, router, interface, src_vni)

    async def _new(  # noqa: PLR0917 - the bridge fdb request's fields, in its order
        self,
        what: str,
        mac: str,
        dst: str | None,
        port: int | None,
        vni: int | None,
        state: FdbState,
        extern_learn: bool,
        router: bool,
        interface: str | None,
        src_vni: int | None,
    ) -> None:
        """``what`` (``fdb add``, ``fdb append`` or ``fdb replace``) as an RTM_NEWNEIGH request."""
        flags = _NEW_FLAGS[what]
        via = await self._via(interface)
        fields = self._fields(
            mac, dst, port, vni, state=state, extern_learn=extern_learn, router=router, via=via, src_vni=src_vni
        )
        if dst is None:
            # Sent all the same: Linux answers EINVAL (vxlan_fdb_parse), reported as the model does.
            ((code, message),) = await _run(self._sock.transact, [(nlm.RTM_NEWNEIGH, flags, fields)])
            if code == errno.EINVAL:
                raise ConfigError("dst", f"{what} needs a remote address (Linux: EINVAL)")
            if code:
                raise self._fdb_error(code, message, what, mac)
            return
        with self._own_echo(mac, dst, state, extern_learn):
            await self._one(nlm.RTM_NEWNEIGH, flags, fields, what, mac)

    async def fdb_append(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb append MAC dev DEV dst DST ...``: one more remote (head-end replication)."""
        await self._new("fdb append", mac, dst, port, vni, state, extern_learn, router, interface, src_vni)

    async def fdb_append_many(self, entries: Sequence[FdbEntry]) -> None:
        """``fdb_append`` for every entry, in batched netlink messages (2,000 per ``send``).

        Each entry's ``state`` and ``extern_learn`` are honoured. Every entry is validated before
        it is sent: an invalid entry is never sent, the ones before it are, and
        :class:`~pyvxlan.FdbBatchError` follows. When the kernel refuses one, the error says which:
        ``applied`` entries before it took effect, and the message says how many of the later ones
        in the same batch the kernel applied too (netlink does not stop at an error).
        """
        await _run(self._append_many_blocking, list(entries))

    def _append_many_blocking(self, entries: list[FdbEntry]) -> None:
        # Validation and encoding of 10,000 entries take milliseconds: in the worker thread too.
        messages = []
        invalid: ConfigError | None = None
        for entry in entries:
            try:
                messages.append(self._append_message(entry))
            except ConfigError as exc:
                invalid = exc  # never sent; the valid entries before it are, as the simulated VTEP does
                break
        results = self._sock.transact_messages(messages) if messages else []
        for i, (code, message) in enumerate(results):
            if code:
                later = sum(1 for c, _ in results[i + 1 :] if c == 0)
                error = self._fdb_error(code, message, "fdb append", entries[i].mac)
                reason = str(error)
                if later:
                    reason += (
                        f" (the kernel also applied {later} later entr{'y' if later == 1 else 'ies'} of the batch)"
                    )
                raise FdbBatchError(i, i, reason) from error
        if invalid is not None:
            raise FdbBatchError(len(messages), len(messages), str(invalid)) from invalid

    def _append_message(self, entry: FdbEntry) -> bytes:
        """One validated ``fdb append`` request (the common shape packed in one call)."""
        if not isinstance(entry, FdbEntry):
            raise ConfigError("entry", f"must be an FdbEntry, got {type(entry).__name__}")
        flags = nlm.NLM_F_REQUEST | nlm.NLM_F_ACK | nlm.NLM_F_CREATE | nlm.NLM_F_APPEND
        mac = entry.mac
        state = nlm.STATE_BITS.get(entry.state)
        dst = _dst_info(entry.dst) if type(entry.dst) is str else None
        if (
            entry.port is None
            and entry.vni is None
            and entry.interface is None
            and state is not None
            and dst is not None
            and not dst.is_unspecified
            and _AF[dst.version] == self._family
            and type(mac) is str
            and len(mac) == 17
            and mac[2::3] == ":::::"
        ):
            try:
                raw = bytes.fromhex(mac.replace(":", ""))
            except ValueError:
                raw = b""
            if len(raw) == 6:
                ntf = (
                    nlm.NTF_SELF
                    | (nlm.NTF_EXT_LEARNED if entry.extern_learn else 0)
                    | (nlm.NTF_ROUTER if entry.router else 0)
                )
                return nlm.encode_fdb_request(
                    nlm.RTM_NEWNEIGH, flags, ifindex=self._index, state=state, ntf=ntf, lladdr=raw, dst=dst.packed
                )
        # Anything else (a port, a VNI, an interface, or an error to report) the general way.
        fields = self._fields(
            entry.mac,
            entry.dst,
            entry.port,
            entry.vni,
            state=entry.state,
            extern_learn=entry.extern_learn,
            router=entry.router,
            via=self._via_blocking(entry.interface),
        )
        return nlm.encode_neigh(nlm.RTM_NEWNEIGH, flags, 0, **fields)

    async def fdb_replace(
        self,
        mac: str,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb replace``: create, or rewrite the first remote of a unicast MAC."""
        # pyroute2's fdb('replace') leaves out NTF_SELF and the state (EOPNOTSUPP); they go explicitly here.
        await self._new("fdb replace", mac, dst, port, vni, state, extern_learn, router, interface, src_vni)

    async def fdb_del(
        self,
        mac: str,
        dst: str | None = None,
        *,
        port: int | None = None,
        vni: int | None = None,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb del MAC dev DEV [dst DST] [port P] [vni V] [via IF] [src_vni S]``.

        Without ``dst`` (or with ``0.0.0.0`` or ``::``) the whole MAC goes (every remote). With
        ``dst``, Linux matches the remote on (dst, port, VNI, via), ``None`` meaning the device's
        own port and VNI and no interface, and deletes nothing (silently) when no remote matches,
        an address of the other family included.
        """
        via = await self._via(interface)
        fields = self._fields(
            mac, dst, port, vni, state=FdbState.PERMANENT, extern_learn=False, via=via, src_vni=src_vni, any_dst=True
        )
        fields["ntf"] = nlm.NTF_SELF
        if dst is not None:
            # Sent explicitly even when they are the device's: what is matched is then visible here.
            fields["port"] = self._config.dst_port if port is None else port
            fields["vni"] = self._config.vni if vni is None else vni
        await self._one(nlm.RTM_DELNEIGH, 0, fields, "fdb del", mac)

    @contextlib.contextmanager
    def _own_echo(self, mac: str, dst: str, state: FdbState, extern_learn: bool) -> Iterator[None]:
        """Tell open subscriptions, before the request goes out, that a ``dynamic`` entry of the
        user's is coming: a subscriber may read the kernel's echo before this task resumes."""
        if FdbState(state) is not FdbState.REACHABLE or extern_learn or not self._streams:
            yield
            return
        mac, dst = normalize_mac(mac), ip_info(dst).text
        streams = list(self._streams)
        for stream in streams:
            stream.expect_own_entry(mac, dst)
        try:
            yield
        except BaseException:
            for stream in streams:  # refused: no echo will come
                stream.forget_own_entry(mac, dst)
            raise

    async def fdb(self) -> list[FdbEntry]:
        """``bridge fdb show dev DEV`` (the device's own entries): one record per (MAC, remote).

        ``updated``/``used`` are in :func:`trio.current_time`'s clock.
        """
        # Dump and parse in the worker thread: 10,000 entries are tens of milliseconds of work.
        entries: list[FdbEntry] = await _run(self.read_fdb, trio.current_time())
        return entries

    def read_fdb(self, now: float) -> list[FdbEntry]:
        """:meth:`fdb`'s work, blocking, its times in the clock of ``now``: for synchronous
        callers (the kernel lab's ``fdb``); in async code ``await fdb()`` runs it in a thread."""
        records = nlm.parse_fdb_records(self._sock.dump(nlm.AF_BRIDGE, self._index), self._index)
        if nlm.unnamed_interfaces(records, self._names):
            # An underlay interface (``via``) we have not named yet: learn the names once.
            self._names = self._rtnl.names()
        return nlm.fdb_entries(records, now, self._names, self._dst_texts)

    # --- neighbours (proxy ARP/ND) ---------------------------------------------------------------

    def _neigh_fields(self, ip: str, mac: str | None) -> dict[str, Any]:
        info = ip_info(ip, "ip") if isinstance(ip, str) else ip_info(str(ip), "ip")
        if info.is_multicast or info.is_unspecified:
            raise ConfigError("ip", f"{info.text} is not a unicast address")
        return {
            "family": _AF[info.version],
            "ifindex": self._index,
            "state": nlm.NUD_PERMANENT,
            "ntf": 0,
            "dst": info.packed,
            "lladdr": None if mac is None else parse_mac(mac, "mac"),
        }

    async def neigh_add(self, ip: str, mac: str) -> None:
        """``ip neigh add IP lladdr MAC dev DEV nud permanent``; :class:`~pyvxlan.errors.NeighbourError`
        when ``ip`` has an entry (EEXIST)."""
        fields = self._neigh_fields(ip, mac)
        ((code, message),) = await _run(
            self._sock.transact, [(nlm.RTM_NEWNEIGH, nlm.NLM_F_CREATE | nlm.NLM_F_EXCL, fields)]
        )
        if code == errno.EEXIST:
            raise NeighbourExists(f"neighbour {ip_text(fields['dst'])} already exists")
        if code:
            raise self._refused(code, message, f"neigh add {ip_text(fields['dst'])}")

    async def neigh_del(self, ip: str) -> None:
        """``ip neigh del IP dev DEV``; :class:`~pyvxlan.errors.NeighbourError` when ``ip`` has no
        entry (ENOENT)."""
        fields = self._neigh_fields(ip, None)
        ((code, message),) = await _run(self._sock.transact, [(nlm.RTM_DELNEIGH, 0, fields)])
        if code == errno.ENOENT:
            raise NeighbourNotFound(f"neighbour {ip_text(fields['dst'])} does not exist")
        if code:
            raise self._refused(code, message, f"neigh del {ip_text(fields['dst'])}")

    async def neighbours(self) -> list[Neighbour]:
        """The device's permanent neighbour entries (``ip neigh show dev DEV nud permanent``)."""
        raw = await _run(self._sock.dump, 0, self._index)
        return [
            Neighbour(ip_text(m.dst), format_mac(m.lladdr))
            for m in nlm.parse_neigh_messages(raw, self._index)
            if m.family in (2, 10) and m.state & nlm.NUD_PERMANENT and m.dst is not None and m.lladdr is not None
        ]

    # --- settings and state ----------------------------------------------------------------------

    async def set_learning(self, on: bool) -> None:
        """``ip link set DEV type vxlan [no]learning``."""
        await self._set_vxlan(f"set learning {'on' if on else 'off'}", vxlan_learning=int(bool(on)))
        self._config = dataclasses.replace(self._config, learning=bool(on))

    async def set_ageing(self, seconds: float) -> None:
        """``ip link set DEV type vxlan ageing S`` (0 means 300, as in Linux; whole seconds,
        a fraction rounded up)."""
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not 0 <= seconds < 2**32
            or math.isnan(seconds)
        ):
            raise ConfigError("ageing", f"must be in 0..4294967295 seconds, got {seconds!r}")
        # Whole seconds, as Linux keeps them; 0 means 300 and a fraction rounds up (not to 0).
        value = math.ceil(seconds) if seconds else int(DEFAULT_AGEING)
        await self._set_vxlan(f"set ageing {value}", vxlan_ageing=value)
        self._config = dataclasses.replace(self._config, ageing=float(value))

    async def set_remote(self, address: str | None, *, dev: str | None = None) -> None:
        """``ip link set DEV type vxlan remote|group ADDRESS [dev IF]``: Linux swaps the
        all-zeros entry's remote (``None``, ``0.0.0.0`` or ``::`` deletes it) and, when up,
        leaves the old group and joins the new one."""
        six = self._family == _AF[6]
        text = "::" if six else "0.0.0.0"
        if address is not None:
            if not isinstance(address, str):
                raise ConfigError("remote", f"{address!r} is not an IPv4 or IPv6 address")
            info = ip_info(address, "remote")
            if _AF[info.version] != self._family:
                raise ConfigError("remote", f"{info.text} is IPv{info.version} but the device is IPv{6 if six else 4}")
            text = info.text
        new = None if ip_info(text).is_unspecified else text
        lower = self._config.dev if dev is None else check_interface(dev, "dev")
        is_group = new is not None and ip_info(new).is_multicast
        if is_group and lower is None:
            raise ConfigError("dev", f"a multicast group ({new}) needs an underlay interface (dev)")
        kw: dict[str, Any] = {"vxlan_group6" if six else "vxlan_group": text}
        if dev is not None:
            kw["vxlan_link"] = await self._via(dev)
        try:
            await _run(lambda: self._rtnl.set_vxlan(self._index, **kw))
        except BackendError as exc:
            if exc.errno == errno.ENOSPC:  # the new all-zeros entry does not fit (maxaddress)
                raise self._fdb_error(exc.errno, exc.reason, "set remote", ZERO_MAC) from None
            raise _link_error(exc, f"set remote {text} on {self.name}") from None
        self._config = dataclasses.replace(
            self._config, group=new if is_group else None, remote=None if is_group else new, dev=lower
        )

    async def _set_vxlan(self, what: str, **kw: Any) -> None:
        try:
            await _run(lambda: self._rtnl.set_vxlan(self._index, **kw))
        except BackendError as exc:
            raise _link_error(exc, f"{what} on {self.name}") from None

    async def up(self) -> None:
        """``ip link set DEV up`` (Linux joins the group)."""
        try:
            await _run(self._rtnl.set_state, self._index, True)
        except BackendError as exc:
            raise _link_error(exc, f"bring {self.name} up") from None

    async def down(self) -> None:
        """``ip link set DEV down`` (Linux leaves the group and flushes learned entries)."""
        try:
            await _run(self._rtnl.set_state, self._index, False)
        except BackendError as exc:
            raise _link_error(exc, f"bring {self.name} down") from None

    async def is_up(self) -> bool:
        return bool((await self._link()).up)

    async def _link(self) -> nlm.LinkInfo:
        try:
            info: nlm.LinkInfo = await _run(lambda: self._rtnl.link(index=self._index))
        except BackendError as exc:
            raise _link_error(exc, f"read {self.name}") from None
        return info

    async def counters(self) -> VtepCounters:
        """The device's counters from the kernel's 64-bit link statistics (``ip -s link``)."""
        stats = (await self._link()).stats
        return VtepCounters(**{f.name: stats.get(f.name, 0) for f in dataclasses.fields(VtepCounters)})

    # --- notifications ---------------------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Notification]]:
        """The device's notifications while the context is open.

        RTM_NEWNEIGH (AF_BRIDGE, NUD_REACHABLE) is :class:`~pyvxlan.EntryLearned` (or
        :class:`~pyvxlan.EntryMigrated` when the MAC had another remote), RTM_DELNEIGH of an
        entry the ageing timer made STALE is :class:`~pyvxlan.EntryExpired`, and RTM_GETNEIGH
        (AF_INET/AF_INET6) is :class:`~pyvxlan.L2Miss` (a MAC) or :class:`~pyvxlan.L3Miss` (an IP).
        """
        sock = await _run(lambda: nl.NeighSocket(self._netns, groups=nlm.RTNLGRP_NEIGH_MASK))
        try:
            sock.sock.setblocking(False)
            known = {e.mac: e.dst for e in await self.fdb() if e.state is FdbState.REACHABLE}
            stream = NotificationStream(self, sock, known)
            self._streams.add(stream)
            try:
                yield stream
            finally:
                self._streams.discard(stream)
        finally:
            trio.lowlevel.notify_closing(sock.sock)  # a task still waiting on it gets ClosedResourceError
            sock.close()


class NotificationStream:
    """An async iterator over one subscription's notifications (see :meth:`KernelVtep.subscribe`)."""

    def __init__(self, vtep: KernelVtep, sock: nl.NeighSocket, known: dict[str, str]) -> None:
        self._vtep = vtep
        self._sock = sock
        self._known = known
        self._pending: Counter[tuple[str, str]] = Counter()  # echoes of the user's own entries
        self._ready: deque[Notification] = deque()
        self.overruns = 0  # times the kernel dropped notifications because we read too slowly

    def __aiter__(self) -> NotificationStream:
        return self

    def expect_own_entry(self, mac: str, dst: str) -> None:
        """The user is about to add the ``dynamic`` entry ``mac`` -> ``dst`` (canonical texts):
        its echo, identical to a learned entry's RTM_NEWNEIGH, is not reported as learned."""
        self._pending[(mac, dst)] += 1

    def forget_own_entry(self, mac: str, dst: str) -> None:
        """The entry :meth:`expect_own_entry` announced was refused: no echo will come."""
        key = (mac, dst)
        if self._pending[key] > 1:
            self._pending[key] -= 1
        else:
            del self._pending[key]

    async def __anext__(self) -> Notification:
        while not self._ready:
            await trio.lowlevel.wait_readable(self._sock.sock)
            try:
                data = self._sock.recv_events()
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise BackendError(
                    exc.errno or 0, f"read notifications of {self._vtep.name}", str(exc.strerror)
                ) from None
            self._feed(data)
        return self._ready.popleft()

    def _feed(self, data: bytes) -> None:
        vtep = self._vtep
        for m in nlm.parse_neigh_messages(data, vtep.index):
            if m.family == nlm.AF_BRIDGE:
                if m.lladdr is None or m.dst is None or not m.flags & nlm.NTF_SELF:
                    continue
                mac, dst = format_mac(m.lladdr), ip_text(m.dst)
                if mac == ZERO_MAC and m.msg_type == nlm.RTM_NEWNEIGH:
                    continue  # the default entry is never learned (its expiry is reported below)
                if m.msg_type == nlm.RTM_NEWNEIGH and _is_learned_state(m.state) and not m.flags & nlm.NTF_EXT_LEARNED:
                    old = self._known.get(mac)
                    self._known[mac] = dst
                    if self._pending[(mac, dst)] > 0:
                        self._pending[(mac, dst)] -= 1
                        continue  # the echo of the user's own `fdb add ... dynamic`
                    if old is None:
                        self._ready.append(EntryLearned(mac, dst))
                    elif old != dst:
                        self._ready.append(EntryMigrated(mac, old, dst))
                elif m.msg_type == nlm.RTM_DELNEIGH:
                    self._known.pop(mac, None)
                    for key in [k for k in self._pending if k[0] == mac]:
                        del self._pending[key]  # an echo that never came (a no-op change)
                    # vxlan_cleanup marks an aged entry NUD_STALE before deleting it; a user
                    # delete or the flush of `ip link set down` leaves the state as it was.
                    if m.state == nlm.NUD_STALE:
                        self._ready.append(EntryExpired(mac, dst))
            elif m.msg_type == nlm.RTM_GETNEIGH and m.family in (2, 10):
                if m.lladdr is not None and m.dst is None:
                    self._ready.append(L2Miss(format_mac(m.lladdr)))
                elif m.dst is not None and m.lladdr is None:
                    self._ready.append(L3Miss(ip_text(m.dst)))


@asynccontextmanager
async def open_vtep(config: VtepConfig, *, netns: str | None = None, up: bool = False) -> AsyncIterator[KernelVtep]:
    """Create the device of ``config`` (in ``netns``), yield its :class:`KernelVtep`, delete it on exit.

    ``up=True`` also brings it up.
    """
    vtep = await KernelVtep.create(config, netns=netns)
    try:
        if up:
            await vtep.up()
        yield vtep
    finally:
        with trio.CancelScope(shield=True):
            await vtep.delete()


# --- helpers ----------------------------------------------------------------------------------------


def _in(netns: str | None) -> str:
    return f" in namespace {netns}" if netns else ""


def _link_error(exc: BackendError, what: str) -> VxlanError:
    """A refused link request as pyvxlan's exception, its operation ``what`` (``create vxlan
    device vxlan7``): PrivilegeError for EPERM and EACCES, a BackendError with the errno and the
    kernel's reason otherwise (e.g. EEXIST from vxlan_vni_in_use: "A VXLAN device with the
    specified VNI already exists")."""
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PrivilegeError(f"root or CAP_NET_ADMIN is needed to {what}")
    return BackendError(exc.errno or 0, what, exc.reason)
