"""``ForwardingDatabase``: a vxlan device's FDB, with the Linux kernel's semantics.

Theory of operation
-------------------
The table holds one record per MAC (Linux's ``struct vxlan_fdb``), each with one or more remotes
(``struct vxlan_rdst``); ``dump()`` prints one :class:`~pyvxlan.FdbEntry` per (MAC, remote), as
``bridge fdb show`` does. Records are keyed by the 6 raw MAC bytes, which is what the data path has
in hand, so a lookup costs one dict access and no parsing.

The errors are the netlink errnos of ``vxlan_fdb_add``/``vxlan_fdb_delete`` as pyvxlan exceptions:
EEXIST -> :class:`~pyvxlan.FdbEntryExists`, ENOSPC -> :class:`~pyvxlan.FdbFull`, ENOENT ->
:class:`~pyvxlan.FdbEntryNotFound`, EOPNOTSUPP -> :class:`~pyvxlan.FdbOperationNotSupported`.

Records as slots: a record is not an object of its own but a slot, one index into seven parallel
lists (its MAC key, kind, remotes, ``updated``, ``used``, and its neighbours in the ageing order),
found through a dict from MAC key to slot. Everything those lists and that dict hold is an atom
(bytes, int, float) or an object shared by many records, so CPython's cyclic garbage collector
sees a table as a few lists, not as one tracked object per record: at ten million records (a
simulated lab of 10,000 VTEPs) a record object each made the collector's full passes a third of
the run. A removed record's slot is reused by the next new one.

Ageing without scanning: every record that can age (state REACHABLE, not externally learned) is
also a link of a doubly linked list kept in order of its ``updated`` time. The links are the slots
of the neighbouring records (two fields of the record, no node object of their own). A
refresh moves the record to the end (O(1)); expiry pops from the front until the first record
that is still fresh, so a timer costs O(expired + 1), and ``next_expiry()`` is the front record's
``updated + ageing``. This relies on time never going backwards, which is the contract of every
``now`` argument in pyvxlan: a ``now`` older than one already seen raises :class:`~pyvxlan.errors.ClockError`.

Learning (``vxlan_snoop``: refresh, migration, static conflict, new entry, full table) is
:meth:`ForwardingDatabase.learn`, which tells the caller what happened as a :class:`LearnOutcome`;
the table's records are its own, changed only by its methods.

A learned record costs about 120 bytes with its slot in the table when many devices learn the
same MACs (a flood in a simulation): the record's seven fields, its slot number and its place
in the table, and nothing else of its own. Learned
records share their remotes tuple (one per address and device settings in a :class:`RemotePool`,
which a simulator passes to all its devices), their MAC key (one parse of a flooded datagram,
:func:`~pyvxlan.core.datagram.parse_datagram`, slices one bytes object for all the devices it
reaches) and their time objects; the MAC's text form is made only when printed. A device on its own pays for its MAC key
and its ``now`` float too: about 200 bytes an entry (tests/sim/test_memory.py measures both).

>>> from pyvxlan import VtepConfig
>>> fdb = ForwardingDatabase(VtepConfig(vni=10, remote="198.51.100.2"))
>>> fdb.add("02:00:00:00:00:01", "198.51.100.3", port=4789)  # the device's port: not shown
>>> fdb.append("00:00:00:00:00:00", "198.51.100.4", port=5555)
>>> for e in fdb.dump():
...     print(e.bridge_line("vxlan10"))
02:00:00:00:00:01 dev vxlan10 dst 198.51.100.3 self permanent
00:00:00:00:00:00 dev vxlan10 dst 198.51.100.4 port 5555 self permanent
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterator, Sequence
from types import MappingProxyType
from typing import Final, TypeAlias

from pyvxlan.core.config import DEFAULT_AGEING, VtepConfig
from pyvxlan.core.entries import FdbEntry, FdbState, check_interface
from pyvxlan.core.events import EntryLearned
from pyvxlan.core.slot_setters import slot_setters
from pyvxlan.errors import (
    ClockError,
    ConfigError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
)
from pyvxlan.wire.addr import ip_info, parse_mac
from pyvxlan.wire.header import vxlan_header_bytes

__all__ = ["ZERO_MAC_BYTES", "ForwardingDatabase", "LearnOutcome", "Remote", "RemotePool"]

ZERO_MAC_BYTES: Final = bytes(6)

_REACHABLE: Final = FdbState.REACHABLE


class LearnOutcome(enum.Enum):
    """What :meth:`ForwardingDatabase.learn` did with a received datagram's source (``vxlan_snoop``)."""

    INVALID = "invalid"  # a multicast or all-zeros source: not learned, the datagram is dropped
    REFRESHED = "refreshed"  # the MAC was known at this remote: ``updated`` is now
    LEARNED = "learned"  # a new dynamic entry
    MIGRATED = "migrated"  # a dynamic entry moved to this remote ("MAC migrated from A to B")
    CONFLICT = "conflict"  # a static or permanent entry points elsewhere: the datagram is dropped
    FULL = "full"  # not learned: the table holds ``max_entries`` (Linux: ENOSPC); the frame still goes up


# The data path's outcomes as module constants: one global load instead of an Enum class lookup.
_OUT_REFRESHED: Final = LearnOutcome.REFRESHED
_OUT_LEARNED: Final = LearnOutcome.LEARNED


class Remote:
    """One remote of a record (Linux's ``vxlan_rdst``), with what transmit needs precomputed.

    Read-only: never changed once made (migration and replace swap in another), so tables share
    them (see :class:`RemotePool`). ``port`` and ``vni`` are ``None`` when they are the device's;
    ``out_port``, ``out_vni``, ``header`` (the 8 VXLAN header bytes) and ``ttl`` are what goes on
    the wire. A plain slotted class rather than a frozen dataclass: the data path reads these fields
    for every datagram it sends.
    """

    __slots__ = (
        "dst",
        "header",
        "interface",
        "key",
        "learned",
        "out_port",
        "out_vni",
        "port",
        "refreshed",
        "ttl",
        "unspecified",
        "vni",
    )

    def __init__(  # noqa: PLR0917 - the remote's fields
        self, dst: str, port: int | None, vni: int | None, interface: str | None, config: VtepConfig, header: bytes
    ) -> None:
        self.dst = dst
        self.port = port  # None: the device's dst_port (what bridge fdb show omits)
        self.vni = vni  # None: the device's VNI
        self.interface = interface
        self.out_port = config.dst_port if port is None else port
        self.out_vni = config.vni if vni is None else vni
        self.header = header
        # What tells two remotes of one MAC apart (Linux's vxlan_fdb_find_rdst): the interface
        # too, so the default entry of a device made with ``dev`` and the same address appended
        # without ``via`` are two remotes.
        self.key: RemoteKey = (dst, port, vni, interface)
        self.unspecified = ip_info(dst).is_unspecified
        self.ttl = config.ttl_for(dst)
        # learn()'s answers for a datagram from this remote, made once: a flood refreshes (or
        # makes) an entry in every device it reaches, and this saves each of them a tuple.
        self.refreshed: tuple[LearnOutcome, str] = (_OUT_REFRESHED, dst)
        self.learned: tuple[LearnOutcome, str] = (_OUT_LEARNED, dst)

    def __repr__(self) -> str:
        return f"<Remote {self.dst} port={self.out_port} vni={self.out_vni} via={self.interface}>"


# A record's remotes: a tuple while it has one (learned records share theirs), a list once
# ``append`` gives it more (head-end replication appends one peer at a time).
Remotes: TypeAlias = "tuple[Remote, ...] | list[Remote]"
RemoteKey: TypeAlias = "tuple[str, int | None, int | None, str | None]"
_LearnedTable: TypeAlias = "dict[str, tuple[Remote]]"

_POOL_MAX: Final = 1 << 16


class RemotePool:
    """Interned remotes, header bytes and learned notifications, for the tables that share it.

    Every :class:`ForwardingDatabase` (and so every :class:`~pyvxlan.Vtep`) has its own pool unless
    its owner passes one: a driver that runs many devices in one process (the simulator: thousands
    of VTEPs that learn the same sources from the same floods) passes one pool to all of them, so
    that their learned entries share one remote object and one ``(remote,)`` tuple per address and
    device settings, and their learned notifications one :class:`~pyvxlan.EntryLearned`. What is
    shared is never changed once made, so sharing a pool changes no result, only memory; each
    table is bounded (cleared when it reaches 65,536 objects; records keep theirs).

    >>> from pyvxlan import Vtep, VtepConfig
    >>> pool = RemotePool()
    >>> a = Vtep(VtepConfig(vni=10, local="198.51.100.1"), pool=pool)
    >>> b = Vtep(VtepConfig(vni=10, local="198.51.100.3"), pool=pool)
    """

    __slots__ = ("_headers", "_learned", "_note", "_note_mac", "_remotes")

    def __init__(self) -> None:
        self._headers: dict[int, bytes] = {}
        self._remotes: dict[tuple[str, int | None, int | None, str | None, int, int, int], Remote] = {}
        self._learned: dict[tuple[int, int, int], _LearnedTable] = {}
        self._note: EntryLearned = EntryLearned("", "")
        self._note_mac = b""

    def header(self, vni: int) -> bytes:
        """The 8 VXLAN header bytes for ``vni``, one object per VNI: transmit sees that two remotes
        have the same header by identity, and builds one datagram payload for all of them."""
        header = self._headers.get(vni)
        if header is None:
            if len(self._headers) >= _POOL_MAX:
                self._headers.clear()
            header = self._headers[vni] = vxlan_header_bytes(vni)
        return header

    def remote(self, dst: str, port: int | None, vni: int | None, interface: str | None, config: VtepConfig) -> Remote:
        """The remote ``dst`` (canonical text) with ``port``, ``vni`` (``None``: the device's) and
        ``interface``, for a device with ``config``'s port, VNI and TTL."""
        key = (dst, port, vni, interface, config.dst_port, config.vni, config.ttl)
        remote = self._remotes.get(key)
        if remote is None:
            if len(self._remotes) >= _POOL_MAX:
                self._remotes.clear()
            out_vni = config.vni if vni is None else vni
            remote = self._remotes[key] = Remote(dst, port, vni, interface, config, self.header(out_vni))
        return remote

    def learned_table(self, config: VtepConfig) -> _LearnedTable:
        """The ``(remote,)`` tuples of learned entries for a device with ``config``'s port, VNI and
        TTL, by source address as the driver gives it (see :meth:`learned`). A table looks this
        up once."""
        key = (config.dst_port, config.vni, config.ttl)
        table = self._learned.get(key)
        if table is None:
            table = self._learned[key] = {}
        return table

    def learned(self, src: str, config: VtepConfig, table: _LearnedTable) -> tuple[Remote]:
        """The remotes of an entry learned from ``src`` (the device's port and VNI, as
        ``vxlan_snoop``), shared; ``table`` is :meth:`learned_table` of ``config``."""
        remotes = table.get(src)
        if remotes is None:
            if len(table) >= _POOL_MAX:
                table.clear()
            remotes = table[src] = (self.remote(ip_info(src, "src").text, None, None, None, config),)
        return remotes

    def learned_note(self, mac: bytes, dst: str) -> EntryLearned:
        """``EntryLearned(mac, dst)``: the same object for consecutive calls with the same MAC and
        address objects (every device a flood reaches learns the same source at the same address)."""
        note = self._note
        if self._note_mac is not mac or note.dst is not dst:
            note = self._note = EntryLearned(mac.hex(":"), dst)
            self._note_mac = mac
        return note


class _Kind:
    """A record's state and flags, as one shared object.

    The flags are ``extern_learn`` (NTF_EXT_LEARNED), ``router`` (NTF_ROUTER) and ``by_user``
    (Linux's internal NTF_VXLAN_ADDED_BY_USER: set by every ``bridge fdb`` request that changes
    the entry, absent on learned entries and on the default entry the device makes). There are 24
    combinations, so a record holds a reference to one of 24 objects instead of four fields, and
    "does it age?" is one attribute of a shared object.
    """

    __slots__ = ("ages", "by_user", "extern_learn", "router", "state")

    def __init__(self, state: FdbState, extern_learn: bool, router: bool, by_user: bool) -> None:
        self.state = state
        self.extern_learn = extern_learn
        self.router = router
        self.by_user = by_user
        self.ages = state is _REACHABLE and not extern_learn


_BOOLS: Final = (False, True)
_KINDS: Final = MappingProxyType(
    {(s, e, r, u): _Kind(s, e, r, u) for s in FdbState for e in _BOOLS for r in _BOOLS for u in _BOOLS}
)
_LEARNED: Final = _KINDS[_REACHABLE, False, False, False]


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be True or False, got {value!r}")
    return value


def _kind(state: FdbState, extern_learn: bool, router: bool = False, *, by_user: bool = True) -> _Kind:
    if not isinstance(state, FdbState):
        raise ConfigError("state", f"must be an FdbState, got {state!r}")
    return _KINDS[state, _flag(extern_learn, "extern_learn"), _flag(router, "router"), by_user]


def _check_vni(vni: object, field: str = "vni") -> int:
    if isinstance(vni, bool) or not isinstance(vni, int) or not 0 <= vni < 1 << 24:
        raise ConfigError(field, f"must be in 0..16777215, got {vni!r}")
    return vni


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
        raise ConfigError("port", f"must be in 1..65535, got {port!r}")
    return port


def _snoop_interface(src: str, interface: str | None) -> str | None:
    """The receive interface ``vxlan_snoop`` holds a remote to: the one the datagram came in on
    for an IPv6 link-local source (reachable only through it), none (ifindex 0) for any other."""
    if interface is None or ":" not in src:
        return None
    return interface if ipaddress.IPv6Address(src).is_link_local else None


def _is_unicast(mac: bytes) -> bool:
    return not mac[0] & 1 and mac != ZERO_MAC_BYTES


# FdbEntry's fields, set through their slot descriptors: the table's own records are valid by
# construction, and dump() of ten million of them should not validate each again.
_ENTRY_SETTERS: Final = slot_setters(
    FdbEntry, ("mac", "dst", "port", "vni", "interface", "state", "extern_learn", "updated", "used", "router")
)


class ForwardingDatabase:
    """The FDB of one vxlan device: MAC -> remotes, with Linux's add/append/replace/delete rules.

    ``config`` gives the device defaults (``dst_port``, ``vni``, ``ttl``), the bound
    (``max_entries``, which counts every MAC including all-zeros, 0 = no bound) and ``ageing``.
    The all-zeros default entry is the owner's to add (:class:`~pyvxlan.Vtep` does at creation).
    """

    # A record is a slot: one index into parallel lists (see "Records as slots" in the module's
    # docstring), so that no record is an object the cyclic garbage collector tracks.
    __slots__ = (
        "_ageing",
        "_config",
        "_free",
        "_head",
        "_keys",
        "_kinds",
        "_learned",
        "_limit",
        "_macs",
        "_next",
        "_now",
        "_pool",
        "_prev",
        "_remotes",
        "_slots",
        "_tail",
        "_updated",
        "_used",
    )

    def __init__(self, config: VtepConfig, *, now: float = 0.0, pool: RemotePool | None = None) -> None:
        self._config = config
        self._ageing = config.ageing
        self._limit = config.max_entries  # fixed for the table's life (a settings change keeps it)
        self._slots: dict[bytes, int] = {}  # MAC key -> its record's slot
        # The records' fields, by slot (a slot freed by a removal is reused by the next record):
        self._macs: list[bytes] = []  # the MAC key (what expiry and dump report)
        self._kinds: list[_Kind] = []  # state and flags
        self._remotes: list[Remotes] = []
        self._updated: list[float] = []
        self._used: list[float] = []
        # The neighbours' slots in the ageing order (-1: none; also for records that do not age).
        self._prev: list[int] = []
        self._next: list[int] = []
        self._free: list[int] = []
        # The ends of the ageing order (slots, -1: empty), oldest first.
        self._head = -1
        self._tail = -1
        # The remote keys of each MAC with more than one remote: append's duplicate check in O(1).
        self._keys: dict[bytes, set[RemoteKey]] = {}
        self._now = now
        self._pool = RemotePool() if pool is None else pool
        # The remotes of learned entries for this device's port, VNI and TTL, by source address.
        self._learned = self._pool.learned_table(config)

    # --- inspection -------------------------------------------------------------------------------

    @property
    def config(self) -> VtepConfig:
        """The device's settings the table follows."""
        return self._config

    def reconfigure(self, config: VtepConfig) -> None:
        """The device's settings changed (``ip link set ... type vxlan``): the table follows its
        ``ageing`` (existing entries included) and the all-zeros entry's changes come through
        :meth:`change_default`. Port, VNI, TTL and ``max_entries`` are fixed for a table's life."""
        self._config = config
        self._ageing = config.ageing

    @property
    def pool(self) -> RemotePool:
        """The pool the table's remotes come from (its own, or the one it was made with)."""
        return self._pool

    @property
    def now(self) -> float:
        """The latest time the table has seen."""
        return self._now

    @property
    def ageing(self) -> float:
        """Seconds after the last received frame at which a learned entry expires."""
        return self._ageing

    @ageing.setter
    def ageing(self, seconds: float) -> None:
        if seconds < 0:
            raise ConfigError("ageing", f"must be >= 0 seconds, got {seconds!r}")
        self._ageing = float(seconds) if seconds else DEFAULT_AGEING  # 0 means 300, as Linux

    def __len__(self) -> int:
        """The number of MACs (Linux's ``addrcnt``), which ``max_entries`` bounds."""
        return len(self._slots)

    def __contains__(self, mac: object) -> bool:
        if not isinstance(mac, (str, bytes, bytearray)):
            return False
        return parse_mac(bytes(mac) if isinstance(mac, bytearray) else mac) in self._slots

    def __iter__(self) -> Iterator[FdbEntry]:
        return iter(self.dump())

    def get(self, mac: str | bytes) -> list[FdbEntry]:
        """The records of ``mac`` (one per remote), or ``[]``."""
        raw = parse_mac(mac)
        slot = self._slots.get(raw)
        return [] if slot is None else [self._entry(raw, slot, rd) for rd in self._remotes[slot]]

    def dump(self) -> list[FdbEntry]:
        """Every record, one per (MAC, remote), MACs in the order they were created."""
        entry, remotes = self._entry, self._remotes
        return [entry(mac, slot, rd) for mac, slot in self._slots.items() for rd in remotes[slot]]

    def _entry(self, mac: bytes, slot: int, rd: Remote) -> FdbEntry:
        kind = self._kinds[slot]
        e = object.__new__(FdbEntry)
        s_mac, s_dst, s_port, s_vni, s_if, s_state, s_ext, s_upd, s_used, s_router = _ENTRY_SETTERS
        # The MAC's text is made here, not stored: ten million entries would hold ten million
        # strings. [:6]: an orphan's key carries more (see _create_key).
        s_mac(e, mac[:6].hex(":"))
        s_dst(e, rd.dst)
        s_port(e, rd.port)
        s_vni(e, rd.vni)
        s_if(e, rd.interface)
        s_state(e, kind.state)
        s_ext(e, kind.extern_learn)
        s_upd(e, self._updated[slot])
        s_used(e, self._used[slot])
        s_router(e, kind.router)
        return e

    # --- the ageing order -------------------------------------------------------------------------

    def _link(self, slot: int) -> None:
        """Put ``slot`` (not in the order) at the end: it is the most recently updated."""
        tail = self._tail
        self._prev[slot] = tail
        self._next[slot] = -1
        if tail < 0:
            self._head = slot
        else:
            self._next[tail] = slot
        self._tail = slot

    def _unlink(self, slot: int) -> None:
        """Take ``slot`` (in the order) out of it."""
        prev, nxt = self._prev, self._next
        p, n = prev[slot], nxt[slot]
        if p < 0:
            self._head = n
        else:
            nxt[p] = n
        if n < 0:
            self._tail = p
        else:
            prev[n] = p
        prev[slot] = nxt[slot] = -1

    def _touch(self, slot: int) -> None:
        """An ageing record was refreshed: move it to the end of the order. O(1), allocates nothing.

        ``_unlink`` then ``_link``, written out: the receive path calls this for every refresh.
        """
        nxt = self._next
        n = nxt[slot]
        if n < 0:  # already the last
            return
        prev = self._prev
        p = prev[slot]
        if p < 0:
            self._head = n
        else:
            nxt[p] = n
        prev[n] = p
        tail = self._tail
        nxt[tail] = slot
        prev[slot] = tail
        nxt[slot] = -1
        self._tail = slot

    # --- control (bridge fdb) ---------------------------------------------------------------------

    def _clock(self, now: float | None) -> float:
        """``now``, or the latest time seen for ``None``; a time before that is a :class:`ClockError`."""
        if now is None:
            return self._now
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        return self._now

    def _remote(
        self, dst: str | None, port: int | None, vni: int | None, interface: str | None = None, *, what: str = "add"
    ) -> Remote:
        cfg = self._config
        if dst is None:
            # vxlan_fdb_parse: neither NDA_DST nor a nexthop id -> EINVAL.
            raise ConfigError("dst", f"fdb {what} needs a remote address (Linux: EINVAL)")
        if not isinstance(dst, str):
            raise ConfigError("dst", f"{dst!r} is not an IPv4 or IPv6 address")
        info = ip_info(dst, "dst")
        family = self.family
        if info.version != family:
            raise ConfigError("dst", f"{info.text} is IPv{info.version} but the device is IPv{family}")
        if port is not None:
            port = _check_port(port)
            if port == cfg.dst_port:
                port = None
        if vni is not None:
            vni = _check_vni(vni)
            if vni == cfg.vni:
                vni = None
        if interface is not None:
            check_interface(interface, "interface")
        return self._pool.remote(info.text, port, vni, interface, cfg)

    @property
    def family(self) -> int:
        """The underlay's IP version (4 for a device without addresses, as in Linux)."""
        return self._config.ip_version or 4

    def _create_key(self, mac: bytes, src_vni: int | None) -> bytes:
        """The table key of a new record of ``mac`` made with ``src_vni``.

        On a device that is not ``external``, Linux 6.18 looks every entry up under the device's
        VNI but files a new one under the ``src_vni`` it was made with (vxlan_fdb_create; the
        rhashtable key is {MAC, VNI}). A record made with another ``src_vni`` is an orphan: it is
        dumped and counts toward ``maxaddress``, but no lookup finds it (not transmit, learning,
        add, del or get), so it stays until the device goes (or ageing or ``down`` removes it).
        Its key here is the MAC followed by the VNI: never 6 bytes, so no lookup finds it either;
        a second one with the same MAC and ``src_vni`` is refused with EEXIST by the kernel's
        hash table, and here by ``_create``.
        """
        if src_vni is None:
            return mac
        if _check_vni(src_vni, "src_vni") == self._config.vni:
            return mac
        return mac + src_vni.to_bytes(3, "big")

    def _create(self, mac: bytes, kind: _Kind, remotes: Remotes, now: float) -> None:
        limit = self._limit
        slots = self._slots
        if limit and len(slots) >= limit:
            raise FdbFull(f"the table holds max_entries={limit} entries; cannot add {mac[:6].hex(':')}")
        if mac in slots:  # an orphan's key (see _create_key): rhashtable_lookup_insert_fast's EEXIST
            raise FdbEntryExists(f"{mac[:6].hex(':')} already has an entry")
        slot = slots[mac] = self._new_slot(mac, kind, remotes, now)
        if kind.ages:
            self._link(slot)

    def _new_slot(self, mac: bytes, kind: _Kind, remotes: Remotes, now: float) -> int:
        """A slot holding a new record, out of the ageing order: a freed one, else a new one at the end."""
        if not self._free:
            slot = len(self._macs)
            self._macs.append(mac)
            self._kinds.append(kind)
            self._remotes.append(remotes)
            self._updated.append(now)
            self._used.append(now)
            self._prev.append(-1)
            self._next.append(-1)
            return slot
        slot = self._free.pop()
        self._macs[slot] = mac
        self._kinds[slot] = kind
        self._remotes[slot] = remotes
        self._updated[slot] = self._used[slot] = now
        return slot

    # --- data path: transmit lookups and learning --------------------------------------------------

    def forward(self, mac: bytes, now: float) -> Sequence[Remote] | None:
        """Transmit's lookup (``vxlan_xmit``): the remotes of ``mac``'s entry (6 raw bytes), else
        of the all-zeros entry, else ``None``; the entry found is marked ``used`` at ``now``."""
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        slots = self._slots
        slot = slots.get(mac)
        if slot is None:
            slot = slots.get(ZERO_MAC_BYTES)
            if slot is None:
                return None
        self._used[slot] = now
        return self._remotes[slot]

    def is_router(self, mac: bytes) -> bool:
        """Whether ``mac`` (6 raw bytes) has an entry with the ``router`` flag (proxy ND's R flag)."""
        slot = self._slots.get(mac)
        return slot is not None and self._kinds[slot].router

    def is_bridge_local(self, mac: bytes) -> bool:
        """Whether ``mac`` (6 raw bytes) has an entry whose first remote is unspecified (``0.0.0.0``
        or ``::``): a MAC behind the local bridge, which proxy ARP/ND does not answer for."""
        slot = self._slots.get(mac)
        return slot is not None and self._remotes[slot][0].unspecified

    def learn(self, mac: bytes, src: str, now: float, interface: str | None = None) -> tuple[LearnOutcome, str]:
        """``vxlan_snoop``: a datagram from underlay address ``src`` carried a frame from ``mac``.

        ``mac`` is the inner source MAC (6 raw bytes), ``interface`` the underlay interface the
        datagram came in on (only an IPv6 link-local source is held to it). Linux's policy, in
        order: an invalid source (multicast, all-zeros) is :attr:`~LearnOutcome.INVALID`; a known
        MAC is refreshed (``updated = now``, static and permanent entries too), and then if its
        entry points elsewhere a dynamic one migrates (port and VNI kept) and a static or permanent
        one is a :attr:`~LearnOutcome.CONFLICT` (the datagram is dropped); an unknown MAC is learned
        with the device's port and VNI, unless the table is :attr:`~LearnOutcome.FULL`.

        Returns the outcome and the address it names: the entry's (refreshed, conflict), the new
        entry's (learned), the one migrated from (migrated), ``src`` (invalid, full).
        """
        if now > self._now:
            self._now = now
        elif now < self._now:
            raise ClockError(self._now, now)
        if len(mac) != 6 or mac[0] & 1 or mac == ZERO_MAC_BYTES:
            return LearnOutcome.INVALID, src
        slots = self._slots
        slot = slots.get(mac)
        if slot is None:
            # Learned entries use the device's port and VNI, not the packet's (vxlan_snoop). This
            # branch is _create and _link written out: a flood makes every device of a large
            # simulation take it.
            remotes = self._learned.get(src) if interface is None else None
            if remotes is None:
                remotes = self._learned_remotes(src, interface)
            limit = self._limit
            if limit and len(slots) >= limit:
                return LearnOutcome.FULL, src  # Linux: ENOSPC; the frame is still delivered
            tail = self._tail
            if self._free:
                slot = self._new_slot(mac, _LEARNED, remotes, now)
                self._prev[slot] = tail
            else:
                slot = len(self._macs)
                self._macs.append(mac)
                self._kinds.append(_LEARNED)
                self._remotes.append(remotes)
                self._updated.append(now)
                self._used.append(now)
                self._prev.append(tail)
                self._next.append(-1)
            slots[mac] = slot
            if tail < 0:
                self._head = slot
            else:
                self._next[tail] = slot
            self._tail = slot
            return remotes[0].learned
        rd = self._remotes[slot][0]
        # vxlan_snoop compares the remote's address and its interface (ifindex) with the
        # datagram's; the interface is only ever set for an IPv6 link-local source.
        if rd.dst != src or rd.interface is not None or interface is not None:
            return self._snoop_moved(slot, rd, src, interface, now)
        updated = self._updated
        if updated[slot] != now:  # the common case of _refresh_rx, written out: every datagram does this
            updated[slot] = now
            nxt = self._next
            n = nxt[slot]
            if n >= 0:  # in the ageing order and not its last: to the end (_touch, written out)
                prev = self._prev
                p = prev[slot]
                if p < 0:
                    self._head = n
                else:
                    nxt[p] = n
                prev[n] = p
                tail = self._tail
                nxt[tail] = slot
                prev[slot] = tail
                nxt[slot] = -1
                self._tail = slot
        return rd.refreshed

    def _refresh_rx(self, slot: int, now: float) -> None:
        """Received traffic refreshes every entry, static ones included (Linux 6.15 and later)."""
        if self._updated[slot] != now:
            self._updated[slot] = now
            if self._next[slot] >= 0:  # in the ageing order (learned, or dynamic by hand) and not last
                self._touch(slot)  # to the end of the ageing order: O(1)

    def _learned_remotes(self, src: str, interface: str | None) -> tuple[Remote]:
        """The remotes of an entry learned from ``src`` that came in on ``interface``."""
        self._check_family(src)
        via = _snoop_interface(src, interface)
        if via is not None:
            # vxlan_snoop: a link-local source is only reachable through the interface it came in on.
            return (self._pool.remote(ip_info(src, "src").text, None, None, via, self._config),)
        return self._pool.learned(src, self._config, self._learned)

    def _snoop_moved(
        self, slot: int, rd: Remote, src: str, interface: str | None, now: float
    ) -> tuple[LearnOutcome, str]:
        """The source MAC's entry may point elsewhere: migrate it, or report the conflict (static).

        Elsewhere is another address, or another interface: an entry made ``via`` an interface
        is not the remote a datagram from the same address came from (its ifindex is 0 unless
        the source is link-local), so a static entry drops it and a dynamic one "migrates" to the
        same address, its interface kept (Linux's vxlan_snoop rewrites remote_ip only).
        """
        self._check_family(src)  # before anything changes
        src = ip_info(src, "src").text
        self._refresh_rx(slot, now)
        if rd.dst == src and rd.interface == _snoop_interface(src, interface):
            return LearnOutcome.REFRESHED, rd.dst
        if self._kinds[slot].state is not _REACHABLE:
            return LearnOutcome.CONFLICT, rd.dst
        # "MAC migrated from A to B": only the address changes; port and VNI stay.
        remotes = self._remotes
        if rd.port is None and rd.vni is None and rd.interface is None and len(remotes[slot]) == 1:
            remotes[slot] = self._pool.learned(src, self._config, self._learned)  # shared, as learned ones
        else:
            remotes[slot] = (self._pool.remote(src, rd.port, rd.vni, rd.interface, self._config), *remotes[slot][1:])
        return LearnOutcome.MIGRATED, rd.dst

    def _check_family(self, src: str) -> None:
        info = ip_info(src, "src")
        if info.version != self.family:
            raise ConfigError("src", f"{src!r} is not an IPv{self.family} address, as the device is")

    def _restate(self, slot: int, kind: _Kind) -> bool:
        """vxlan_fdb_update_existing's first step: the request's state and flags replace the
        entry's, unless the request is ``extern_learn`` and the entry is the user's. ``updated``
        is left alone (the caller refreshes it when anything changed). True when changed."""
        old = self._kinds[slot]
        if old is kind or (kind.extern_learn and old.by_user):
            return False
        if old.ages:
            self._unlink(slot)
        self._kinds[slot] = kind
        if kind.ages:
            self._link_in_order(slot)
        return True

    def _link_in_order(self, slot: int) -> None:
        """Put ``slot`` (not in the order) where its ``updated`` belongs: usually the end, but a
        record whose state became dynamic without a refresh keeps its old time (and ages by it)."""
        updated, prev, nxt = self._updated, self._prev, self._next
        t = updated[slot]
        after = self._tail
        while after >= 0 and updated[after] > t:
            after = prev[after]
        if after == self._tail:
            self._link(slot)
            return
        before = self._head if after < 0 else nxt[after]
        assert before >= 0  # after is not the tail
        prev[slot], nxt[slot] = after, before
        prev[before] = slot
        if after < 0:
            self._head = slot
        else:
            nxt[after] = slot

    def _refresh(self, slot: int, now: float) -> None:
        """The entry changed (Linux notifies and sets ``updated``): it is now the newest."""
        self._updated[slot] = now
        if self._kinds[slot].ages:
            self._unlink(slot)
            self._link(slot)

    def add(
        self,
        mac: str | bytes,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb add``: a new MAC with one remote.

        Raises :class:`~pyvxlan.FdbEntryExists` when ``mac`` has an entry,
        :class:`~pyvxlan.FdbFull` when the table is full and :class:`~pyvxlan.ConfigError`
        (``dst``) without a remote address (Linux: EINVAL). ``interface`` is ``via``, the
        remote's underlay interface; ``src_vni`` other than the device's VNI makes an orphan (see
        :meth:`_create_key`).
        """
        raw = parse_mac(mac)
        remote = self._remote(dst, port, vni, interface)
        kind = _kind(state, extern_learn, router)
        if src_vni is not None:
            _check_vni(src_vni, "src_vni")
        if raw in self._slots:
            raise FdbEntryExists(f"{raw.hex(':')} already has an entry")
        self._create(self._create_key(raw, src_vni), kind, (remote,), self._clock(now))

    def add_default(self, dst: str, *, interface: str | None = None, now: float | None = None) -> None:
        """The all-zeros entry that ``ip link add ... remote|group`` makes: permanent, and not
        the user's, so an ``extern_learn`` request may still change its state (Linux makes it
        with NTF_SELF only)."""
        remote = self._remote(dst, None, None, interface)
        self._create(ZERO_MAC_BYTES, _kind(FdbState.PERMANENT, False, by_user=False), (remote,), self._clock(now))

    def append(
        self,
        mac: str | bytes,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb append``: add a remote (head-end replication).

        A missing MAC is created (:class:`~pyvxlan.FdbFull` when the table is full). On an existing
        all-zeros or multicast MAC the remote is added unless it is already there (a remote is its
        address, port, VNI and interface); on an existing unicast MAC nothing is added (Linux
        returns success). The state and flags are set as given, as Linux does, except that an
        ``extern_learn`` request leaves a user's entry's state and flags alone. The duplicate
        check is a set lookup, so appending N peers one by one costs O(N).
        """
        kind = _kind(state, extern_learn, router)
        self._append(mac, dst, port=port, vni=vni, kind=kind, interface=interface, src_vni=src_vni, now=now)

    def _append(
        self,
        mac: str | bytes,
        dst: str | None,
        *,
        port: int | None,
        vni: int | None,
        kind: _Kind,
        interface: str | None,
        src_vni: int | None,
        now: float | None,
    ) -> None:
        raw = parse_mac(mac)
        remote = self._remote(dst, port, vni, interface, what="append")
        if src_vni is not None:
            _check_vni(src_vni, "src_vni")
        t = self._clock(now)
        slot = self._slots.get(raw)
        if slot is None:
            self._create(self._create_key(raw, src_vni), kind, (remote,), t)
            return
        changed = self._restate(slot, kind)
        if not _is_unicast(raw) and self._add_remote(raw, slot, remote):
            changed = True
        if changed:
            self._refresh(slot, t)

    def _add_remote(self, mac: bytes, slot: int, remote: Remote) -> bool:
        """Add ``remote`` to the record in ``slot`` unless a remote with its key is there; True when added."""
        key = remote.key
        keys = self._keys.get(mac)
        remotes = self._remotes[slot]
        if keys is None:
            if any(rd.key == key for rd in remotes):  # one remote, or a few set by hand
                return False
            self._keys[mac] = {rd.key for rd in remotes} | {key}
            self._remotes[slot] = [*remotes, remote]
            return True
        if key in keys:
            return False
        keys.add(key)
        if isinstance(remotes, list):
            remotes.append(remote)
        else:
            self._remotes[slot] = [*remotes, remote]
        return True

    def replace(
        self,
        mac: str | bytes,
        dst: str | None,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        router: bool = False,
        interface: str | None = None,
        src_vni: int | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb replace``: create ``mac``, or rewrite its first remote.

        Only unicast MACs: the all-zeros and multicast MACs raise
        :class:`~pyvxlan.FdbOperationNotSupported` (whether or not they exist), as Linux. A kernel
        quirk copied here (vxlan_fdb_update_existing): on an existing all-zeros or multicast MAC
        the request's state and flags are written before the refusal, so the entry keeps its
        remotes but takes the new state (a dynamic one then ages out) and loses ``extern_learn``
        unless the request had it.
        """
        raw = parse_mac(mac)
        remote = self._remote(dst, port, vni, interface, what="replace")
        kind = _kind(state, extern_learn, router)
        if src_vni is not None:
            _check_vni(src_vni, "src_vni")
        t = self._clock(now)
        slot = self._slots.get(raw)
        if not _is_unicast(raw):
            if slot is not None:
                self._restate(slot, kind)  # no refresh: Linux returns before its notify
            raise FdbOperationNotSupported(f"cannot replace non-unicast fdb entry {raw.hex(':')}")
        if slot is None:
            self._create(self._create_key(raw, src_vni), kind, (remote,), t)
            return
        changed = self._restate(slot, kind)
        remotes = self._remotes[slot]
        if remotes[0].key != remote.key:  # vxlan_fdb_replace: an equal remote is no change
            self._keys.pop(raw, None)  # a unicast MAC has one remote (set by hand otherwise): rebuilt if needed
            self._remotes[slot] = (remote, *remotes[1:])
            changed = True
        if changed:
            self._refresh(slot, t)

    def delete(
        self,
        mac: str | bytes,
        dst: str | None = None,
        *,
        port: int | None = None,
        vni: int | None = None,
        interface: str | None = None,
        src_vni: int | None = None,
    ) -> None:
        """``bridge fdb del``: without ``dst`` the whole MAC; with it, the remote matching ``dst``,
        ``port``, ``vni`` (``None`` meaning the device's) and ``interface`` (``via``), or the whole
        MAC when that remote is its last. :class:`~pyvxlan.FdbEntryNotFound` when ``mac`` has no
        entry.

        Linux's ``__vxlan_fdb_delete``, quirks included: a ``dst`` that matches no remote (an
        address of the other family too) changes nothing and succeeds, and an unspecified ``dst``
        (``0.0.0.0`` or ``::``) deletes the whole MAC whatever ``port`` and ``vni`` say.
        ``src_vni`` is checked but, as in Linux on a device that is not ``external``, not used.
        """
        raw = parse_mac(mac)
        key: RemoteKey | None = None
        whole = dst is None
        if dst is not None:
            if not isinstance(dst, str):
                raise ConfigError("dst", f"{dst!r} is not an IPv4 or IPv6 address")
            info = ip_info(dst, "dst")
            if port is not None:
                _check_port(port)
            if vni is not None:
                _check_vni(vni)
            if interface is not None:
                check_interface(interface, "interface")
            if info.is_unspecified:
                whole = True  # vxlan_addr_any(): no remote to match, the entry goes
            elif info.version == self.family:
                key = self._remote(dst, port, vni, interface).key
        if src_vni is not None:
            _check_vni(src_vni, "src_vni")
        slot = self._slots.get(raw)
        if slot is None:
            raise FdbEntryNotFound(f"{raw.hex(':')} has no entry")
        if not whole:
            remotes = self._remotes[slot]
            i = None if key is None else next((i for i, rd in enumerate(remotes) if rd.key == key), None)
            if i is None:
                return
            if len(remotes) > 1:
                left = self._remotes[slot] = [*remotes[:i], *remotes[i + 1 :]]
                keys = self._keys.get(raw)
                if keys is not None and not any(rd.key == key for rd in left):
                    keys.discard(key)
                return
        self._remove(raw, slot)

    def change_default(
        self,
        old: str | None,
        new: str | None,
        *,
        old_interface: str | None = None,
        interface: str | None = None,
        now: float | None = None,
    ) -> None:
        """``ip link set DEV type vxlan remote|group NEW`` on a device whose remote was ``old``
        (Linux's vxlan_changelink): ``new`` is appended to the all-zeros entry (created if
        missing) with the device's port and VNI and ``interface``, as the device's own
        (permanent, no flags), then ``old`` (with ``old_interface``) is deleted from it, the whole
        entry when it was its last remote. ``new`` ``None`` only deletes ``old``.
        """
        t = self._clock(now)
        if new is not None:
            own = _kind(FdbState.PERMANENT, False, by_user=False)
            self._append(ZERO_MAC_BYTES, new, port=None, vni=None, kind=own, interface=interface, src_vni=None, now=t)
        if old is not None and ZERO_MAC_BYTES in self._slots:
            self.delete(ZERO_MAC_BYTES, old, interface=old_interface)

    def _remove(self, mac: bytes, slot: int) -> None:
        if self._kinds[slot].ages:
            self._unlink(slot)
        del self._slots[mac]
        self._free_slot(slot)
        if self._keys:
            self._keys.pop(mac, None)

    def _free_slot(self, slot: int) -> None:
        """``slot`` (out of the ageing order and of the table) holds no record any more."""
        self._macs[slot] = ZERO_MAC_BYTES
        self._remotes[slot] = ()  # the record's remotes go now, not when the slot is reused
        self._free.append(slot)

    def flush(self) -> int:
        """``ip link set down``: drop every entry but permanent and static ones; returns how many.

        The all-zeros entry is kept whatever its state (Linux deletes it only with the device).
        """
        kinds = self._kinds
        gone = [
            (mac, slot)
            for mac, slot in self._slots.items()
            if not kinds[slot].state.is_sticky and mac != ZERO_MAC_BYTES
        ]
        for mac, slot in gone:
            self._remove(mac, slot)
        return len(gone)

    def clear(self) -> None:
        """Remove everything, the all-zeros entry included."""
        for table in (self._slots, self._keys, self._macs, self._kinds, self._remotes, self._updated, self._used):
            table.clear()
        for links in (self._prev, self._next, self._free):
            links.clear()
        self._head = self._tail = -1

    # --- data path and ageing ---------------------------------------------------------------------

    def next_expiry(self) -> float | None:
        """When the oldest ageing entry expires, or ``None`` when none can age."""
        head = self._head
        if head < 0:
            return None
        return self._updated[head] + self._ageing

    def expire(self, now: float) -> list[FdbEntry]:
        """Remove the entries whose ``updated + ageing <= now``; returns them (one per remote)."""
        t = self._clock(now)
        slots, keys, macs, updated, nxt = self._slots, self._keys, self._macs, self._updated, self._next
        ageing = self._ageing
        gone: list[FdbEntry] = []
        head = self._head
        while head >= 0:
            if updated[head] + ageing > t:
                break
            mac = macs[head]
            del slots[mac]
            if keys:
                keys.pop(mac, None)
            gone.extend(self._entry(mac, head, rd) for rd in self._remotes[head])
            slot, head = head, nxt[head]
            self._prev[slot] = nxt[slot] = -1
            self._free_slot(slot)
        self._head = head
        if head < 0:
            self._tail = -1
        else:
            self._prev[head] = -1
        return gone
