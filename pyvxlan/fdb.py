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

Ageing without scanning: every record that can age (state REACHABLE, not externally learned) also
sits in an ``OrderedDict`` kept in order of its ``updated`` time. A refresh moves the record to the
end (O(1)); expiry pops from the front until the first record that is still fresh, so a timer costs
O(expired + 1), and ``next_expiry()`` is the front record's ``updated + ageing``. This relies on
time never going backwards, which is the contract of every ``now`` argument in pyvxlan (a ``now``
older than one already seen is treated as that latest time).

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

import struct
from collections import OrderedDict
from collections.abc import Iterator
from typing import Final

from pyvxlan.addr import ip_info, parse_mac
from pyvxlan.config import DEFAULT_AGEING, VtepConfig
from pyvxlan.entries import FdbEntry, FdbState
from pyvxlan.errors import (
    ConfigError,
    FdbEntryExists,
    FdbEntryNotFound,
    FdbFull,
    FdbOperationNotSupported,
)

__all__ = ["ZERO_MAC_BYTES", "ForwardingDatabase"]

ZERO_MAC_BYTES: Final = bytes(6)
_HEADER = struct.Struct("!II")
_FLAG_I: Final = 0x08000000

_REACHABLE: Final = FdbState.REACHABLE


class _Remote:
    """One remote of a record (Linux's ``vxlan_rdst``), with what transmit needs precomputed.

    A plain slotted class rather than a frozen dataclass: the data path reads these fields for
    every datagram it sends, and ``header`` (the 8 VXLAN header bytes) and ``ttl`` are computed once
    here instead of once per packet.
    """

    __slots__ = ("dst", "header", "interface", "out_port", "out_vni", "port", "ttl", "unspecified", "vni")

    def __init__(self, dst: str, port: int | None, vni: int | None, interface: str | None, config: VtepConfig) -> None:
        self.dst = dst
        self.port = port  # None: the device's dst_port (what bridge fdb show omits)
        self.vni = vni  # None: the device's VNI
        self.interface = interface
        self.out_port = config.dst_port if port is None else port
        self.out_vni = config.vni if vni is None else vni
        self.header = _HEADER.pack(_FLAG_I, self.out_vni << 8)
        info = ip_info(dst)
        self.unspecified = info.is_unspecified
        self.ttl = config.ttl if config.ttl else (1 if info.is_multicast else 64)

    def same(self, dst: str, port: int | None, vni: int | None) -> bool:
        return self.dst == dst and self.port == port and self.vni == vni


class _Record:
    """All remotes of one MAC, with its state and timers (Linux's ``vxlan_fdb``)."""

    __slots__ = ("extern_learn", "mac", "remotes", "state", "updated", "used")

    def __init__(self, mac: bytes, state: FdbState, extern_learn: bool, remote: _Remote, now: float) -> None:
        self.mac = mac
        self.state = state
        self.extern_learn = extern_learn
        # A tuple, rebuilt on the rare control-plane change: 40 bytes an entry less than a list.
        self.remotes: tuple[_Remote, ...] = (remote,)
        self.updated = now
        self.used = now

    @property
    def text(self) -> str:
        # Computed, not stored: a million learned entries would hold a million 17-character strings.
        return self.mac.hex(":")

    @property
    def ages(self) -> bool:
        return self.state is _REACHABLE and not self.extern_learn


_learned_remotes: dict[tuple[str, int, int, int], _Remote] = {}
_LEARNED_REMOTES_MAX: Final = 1 << 16


def learned_remote(src: str, config: VtepConfig) -> _Remote:
    """The remote a learned entry gets: ``src`` with the device's port and VNI.

    Remotes are never changed once made (migration and replace swap in a new one), so learned entries
    share them: one object per (address, port, VNI, TTL) across every table in the process, which
    keeps a simulation of thousands of VTEPs that learn from each other small.
    """
    key = (src, config.dst_port, config.vni, config.ttl)
    remote = _learned_remotes.get(key)
    if remote is None:
        if len(_learned_remotes) >= _LEARNED_REMOTES_MAX:
            _learned_remotes.clear()
        remote = _Remote(ip_info(src, "src").text, None, None, None, config)
        _learned_remotes[key] = remote
    return remote


def _is_unicast(mac: bytes) -> bool:
    return not mac[0] & 1 and mac != ZERO_MAC_BYTES


class ForwardingDatabase:
    """The FDB of one vxlan device: MAC -> remotes, with Linux's add/append/replace/delete rules.

    ``config`` gives the device defaults (``dst_port``, ``vni``, ``ttl``), the bound
    (``max_entries``, which counts every MAC including all-zeros, 0 = no bound) and ``ageing``.
    The all-zeros default entry is the owner's to add (:class:`~pyvxlan.Vtep` does at creation).
    """

    __slots__ = ("_ageing", "_ageable", "_config", "_now", "_records")

    def __init__(self, config: VtepConfig, *, now: float = 0.0) -> None:
        self._config = config
        self._ageing = config.ageing
        self._records: dict[bytes, _Record] = {}
        self._ageable: OrderedDict[bytes, _Record] = OrderedDict()
        self._now = now

    # --- inspection -------------------------------------------------------------------------------

    @property
    def config(self) -> VtepConfig:
        return self._config

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
        return len(self._records)

    def __contains__(self, mac: object) -> bool:
        if not isinstance(mac, (str, bytes, bytearray)):
            return False
        return parse_mac(bytes(mac) if isinstance(mac, bytearray) else mac) in self._records

    def __iter__(self) -> Iterator[FdbEntry]:
        return iter(self.dump())

    def get(self, mac: str | bytes) -> list[FdbEntry]:
        """The records of ``mac`` (one per remote), or ``[]``."""
        rec = self._records.get(parse_mac(mac))
        return [] if rec is None else [self._entry(rec, rd) for rd in rec.remotes]

    def dump(self) -> list[FdbEntry]:
        """Every record, one per (MAC, remote), MACs in the order they were created."""
        return [self._entry(rec, rd) for rec in self._records.values() for rd in rec.remotes]

    def _entry(self, rec: _Record, rd: _Remote) -> FdbEntry:
        return FdbEntry(
            mac=rec.text,
            dst=rd.dst,
            port=rd.port,
            vni=rd.vni,
            interface=rd.interface,
            state=rec.state,
            extern_learn=rec.extern_learn,
            updated=rec.updated,
            used=rec.used,
        )

    # --- control (bridge fdb) ---------------------------------------------------------------------

    def _clock(self, now: float | None) -> float:
        if now is not None and now > self._now:
            self._now = now
        return self._now

    def _remote(self, dst: str, port: int | None, vni: int | None, interface: str | None = None) -> _Remote:
        cfg = self._config
        info = ip_info(str(dst), "dst")
        family = cfg.ip_version or 4  # a device without addresses is IPv4, as in Linux
        if info.version != family:
            raise ConfigError("dst", f"{info.text} is IPv{info.version} but the device is IPv{family}")
        if port is not None:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= 65535:
                raise ConfigError("port", f"must be in 1..65535, got {port!r}")
            if port == cfg.dst_port:
                port = None
        if vni is not None:
            if isinstance(vni, bool) or not isinstance(vni, int) or not 0 <= vni < 1 << 24:
                raise ConfigError("vni", f"must be in 0..16777215, got {vni!r}")
            if vni == cfg.vni:
                vni = None
        return _Remote(info.text, port, vni, interface, cfg)

    def _create(self, mac: bytes, state: FdbState, extern_learn: bool, remote: _Remote, now: float) -> _Record:
        limit = self._config.max_entries
        if limit and len(self._records) >= limit:
            raise FdbFull(f"the table holds max_entries={limit} entries; cannot add {mac.hex(':')}")
        rec = _Record(mac, state, extern_learn, remote, now)
        self._records[mac] = rec
        if rec.ages:
            self._ageable[mac] = rec
        return rec

    def _set_state(self, rec: _Record, state: FdbState, extern_learn: bool, now: float) -> None:
        rec.state = state
        rec.extern_learn = extern_learn
        rec.updated = now
        self._ageable.pop(rec.mac, None)
        if rec.ages:
            self._ageable[rec.mac] = rec

    def add(
        self,
        mac: str | bytes,
        dst: str,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        extern_learn: bool = False,
        interface: str | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb add``: a new MAC with one remote.

        Raises :class:`~pyvxlan.FdbEntryExists` when ``mac`` has an entry and
        :class:`~pyvxlan.FdbFull` when the table is full.
        """
        raw = parse_mac(mac)
        remote = self._remote(dst, port, vni, interface)
        if raw in self._records:
            raise FdbEntryExists(f"{raw.hex(':')} already has an entry")
        self._create(raw, state, extern_learn, remote, self._clock(now))

    def append(
        self,
        mac: str | bytes,
        dst: str,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        interface: str | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb append``: add a remote (head-end replication).

        A missing MAC is created (:class:`~pyvxlan.FdbFull` when the table is full). On an existing
        all-zeros or multicast MAC the remote is added unless it is already there; on an existing
        unicast MAC nothing is added (Linux returns success). The state is set as given, as Linux.
        """
        raw = parse_mac(mac)
        remote = self._remote(dst, port, vni, interface)
        t = self._clock(now)
        rec = self._records.get(raw)
        if rec is None:
            self._create(raw, state, False, remote, t)
            return
        changed = rec.state is not state or rec.extern_learn
        if not _is_unicast(raw) and not any(rd.same(remote.dst, remote.port, remote.vni) for rd in rec.remotes):
            rec.remotes += (remote,)
            changed = True
        if changed:
            self._set_state(rec, state, False, t)

    def replace(
        self,
        mac: str | bytes,
        dst: str,
        *,
        port: int | None = None,
        vni: int | None = None,
        state: FdbState = FdbState.PERMANENT,
        interface: str | None = None,
        now: float | None = None,
    ) -> None:
        """``bridge fdb replace``: create ``mac``, or rewrite its first remote.

        Only unicast MACs: the all-zeros and multicast MACs raise
        :class:`~pyvxlan.FdbOperationNotSupported` (whether or not they exist), as Linux.
        """
        raw = parse_mac(mac)
        remote = self._remote(dst, port, vni, interface)
        if not _is_unicast(raw):
            raise FdbOperationNotSupported(f"cannot replace non-unicast fdb entry {raw.hex(':')}")
        t = self._clock(now)
        rec = self._records.get(raw)
        if rec is None:
            self._create(raw, state, False, remote, t)
            return
        rec.remotes = (remote, *rec.remotes[1:])
        self._set_state(rec, state, False, t)

    def delete(
        self, mac: str | bytes, dst: str | None = None, *, port: int | None = None, vni: int | None = None
    ) -> None:
        """``bridge fdb del``: without ``dst`` the whole MAC; with it, the remote matching ``dst``,
        ``port`` and ``vni`` (``None`` meaning the device's), or the whole MAC when that remote is its
        last. A ``dst`` that matches no remote changes nothing (Linux returns success).
        :class:`~pyvxlan.FdbEntryNotFound` when ``mac`` has no entry.
        """
        raw = parse_mac(mac)
        rec = self._records.get(raw)
        if dst is not None:
            want = self._remote(dst, port, vni)
        if rec is None:
            raise FdbEntryNotFound(f"{raw.hex(':')} has no entry")
        if dst is not None:
            matches = [rd for rd in rec.remotes if rd.same(want.dst, want.port, want.vni)]
            if not matches:
                return
            if len(rec.remotes) > 1:
                i = rec.remotes.index(matches[0])
                rec.remotes = rec.remotes[:i] + rec.remotes[i + 1 :]
                return
        self._remove(rec)

    def _remove(self, rec: _Record) -> None:
        del self._records[rec.mac]
        self._ageable.pop(rec.mac, None)

    def flush(self) -> int:
        """``ip link set down``: drop every entry but permanent and static ones; returns how many.

        The all-zeros entry is kept whatever its state (Linux deletes it only with the device).
        """
        gone = [rec for rec in self._records.values() if not rec.state.is_sticky and rec.mac != ZERO_MAC_BYTES]
        for rec in gone:
            self._remove(rec)
        return len(gone)

    def clear(self) -> None:
        """Remove everything, the all-zeros entry included."""
        self._records.clear()
        self._ageable.clear()

    # --- data path and ageing ---------------------------------------------------------------------

    def next_expiry(self) -> float | None:
        """When the oldest ageing entry expires, or ``None`` when none can age."""
        for rec in self._ageable.values():
            return rec.updated + self._ageing
        return None

    def expire(self, now: float) -> list[FdbEntry]:
        """Remove the entries whose ``updated + ageing <= now``; returns them (one per remote)."""
        t = self._clock(now)
        ageable = self._ageable
        ageing = self._ageing
        gone: list[FdbEntry] = []
        while ageable:
            mac, rec = next(iter(ageable.items()))
            if rec.updated + ageing > t:
                break
            del ageable[mac]
            del self._records[mac]
            gone.extend(self._entry(rec, rd) for rd in rec.remotes)
        return gone
