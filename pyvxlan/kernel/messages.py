"""The rtnetlink message codec of the kernel backend: bytes and values, no sockets, no pyroute2.

What the kernel backend sends and reads, as pure functions testable without root:

* neighbour messages (``RTM_*NEIGH``: FDB entries of a vxlan device, ARP/ND entries): requests
  encoded (:func:`encode_neigh`, and :func:`encode_fdb_request` for the common FDB shape),
  numbered in a batch (:func:`number_requests`), dump requests (:func:`encode_dump_request`);
  replies parsed (:func:`parse_neigh_messages`, :func:`parse_fdb_records` for the FDB dump's hot
  path, :func:`fdb_entries` turning its records into :class:`~pyvxlan.FdbEntry` values),
  acknowledgements (:func:`collect_acks`) and the end of a dump (:func:`dump_status`);
* links: a :class:`~pyvxlan.VtepConfig` as ``IFLA_VXLAN_*`` attributes (:func:`vxlan_attributes`,
  pyroute2's keywords, see docs/kernel-attributes.md) and back (:func:`config_from_link`);
* errors: a refusal (an errno and the kernel's extended-ack message) as one
  :class:`~pyvxlan.errors.BackendError` (:func:`refusal`).

:mod:`pyvxlan.kernel.netlink` carries these over sockets.
"""

from __future__ import annotations

import math
import os
import socket
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyvxlan.core.config import DEFAULT_AGEING, VtepConfig
from pyvxlan.core.entries import FdbEntry, FdbState
from pyvxlan.core.slot_setters import slot_setters
from pyvxlan.errors import BackendError, ConfigError
from pyvxlan.wire.addr import ip_info
from pyvxlan.wire.frame import LINUX_SOURCE_PORTS

__all__ = [
    "AF_BRIDGE",
    "NETLINK_ROUTE",
    "NLMSG_DONE",
    "NLMSG_ERROR",
    "NLM_F_ACK",
    "NLM_F_APPEND",
    "NLM_F_CREATE",
    "NLM_F_DUMP",
    "NLM_F_EXCL",
    "NLM_F_REPLACE",
    "NLM_F_REQUEST",
    "NTF_EXT_LEARNED",
    "NTF_MASTER",
    "NTF_ROUTER",
    "NTF_SELF",
    "NUD_NOARP",
    "NUD_PERMANENT",
    "NUD_REACHABLE",
    "NUD_STALE",
    "RTM_DELNEIGH",
    "RTM_GETNEIGH",
    "RTM_NEWNEIGH",
    "RTNLGRP_NEIGH_MASK",
    "STATE_BITS",
    "USER_HZ",
    "VXLAN_READ",
    "FdbRecord",
    "LinkInfo",
    "NeighMessage",
    "collect_acks",
    "config_from_link",
    "dump_status",
    "encode_dump_request",
    "encode_fdb_request",
    "encode_neigh",
    "fdb_entries",
    "fdb_state",
    "ip_text",
    "nud_state",
    "number_requests",
    "parse_fdb_records",
    "parse_neigh_messages",
    "refusal",
    "unnamed_interfaces",
    "vxlan_attributes",
]

# --- constants (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h) ---------------------------

NETLINK_ROUTE: Final = 0
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300
NLM_F_REPLACE: Final = 0x100
NLM_F_EXCL: Final = 0x200
NLM_F_CREATE: Final = 0x400
NLM_F_APPEND: Final = 0x800
NLM_F_ACK_TLVS: Final = 0x200  # in an NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG: Final = 1

RTM_NEWNEIGH: Final = 28
RTM_DELNEIGH: Final = 29
RTM_GETNEIGH: Final = 30
RTNLGRP_NEIGH_MASK: Final = 1 << (3 - 1)  # RTNLGRP_NEIGH = 3

AF_BRIDGE: Final = 7
NUD_REACHABLE: Final = 0x02
NUD_STALE: Final = 0x04
NUD_NOARP: Final = 0x40
NUD_PERMANENT: Final = 0x80
NTF_SELF: Final = 0x02
NTF_MASTER: Final = 0x04  # the bridge's own entry for a port (no remote)
NTF_EXT_LEARNED: Final = 0x10
NTF_ROUTER: Final = 0x80

NDA_DST: Final = 1
NDA_LLADDR: Final = 2
NDA_CACHEINFO: Final = 3
NDA_PORT: Final = 6
NDA_VNI: Final = 7
NDA_IFINDEX: Final = 8
NDA_SRC_VNI: Final = 11

USER_HZ: Final = 100  # the clock_t of NDA_CACHEINFO

_NLMSGHDR = struct.Struct("=IHHII")
_NLATTR = struct.Struct("=HH")
_NLMSGERR = struct.Struct("=i")
_HDR_NDMSG = struct.Struct("=IHHIIBxxxiHBB")  # nlmsghdr + ndmsg in one go (the hot path)
_U32 = struct.Struct("=I")
_BE16 = struct.Struct("!H")
_CACHEINFO = struct.Struct("=IIII")  # confirmed, used, updated, refcnt (clock_t, USER_HZ)


# --- errors ------------------------------------------------------------------------------------------


def refusal(code: int, message: str, operation: str) -> BackendError:
    """The :class:`~pyvxlan.errors.BackendError` of a request the kernel refused with errno ``code``.

    ``message`` is the kernel's extended-ack text (``""`` for none, or when it only repeats
    strerror's words); the reason is that text, or strerror's when there is none.

    >>> str(refusal(17, "A VXLAN device with the specified VNI already exists", "create vxlan device vx7"))
    'create vxlan device vx7: A VXLAN device with the specified VNI already exists (errno 17)'
    >>> str(refusal(19, "", "RTM_GETNEIGH dump"))
    'RTM_GETNEIGH dump: No such device (errno 19)'
    """
    return BackendError(code, operation, message or os.strerror(code))


# --- neighbour requests ---------------------------------------------------------------------------


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return _NLATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def encode_neigh(
    msg_type: int,
    flags: int,
    seq: int,
    *,
    family: int,
    ifindex: int,
    state: int,
    ntf: int,
    lladdr: bytes | None = None,
    dst: bytes | None = None,
    port: int | None = None,
    vni: int | None = None,
    via: int | None = None,
    src_vni: int | None = None,
) -> bytes:
    """One ``RTM_*NEIGH`` message (nlmsghdr + ndmsg + attributes); ``via`` is NDA_IFINDEX (the
    remote's underlay interface), ``src_vni`` NDA_SRC_VNI."""
    attrs = b""
    if dst is not None:
        attrs += _attr(NDA_DST, dst)
    if lladdr is not None:
        attrs += _attr(NDA_LLADDR, lladdr)
    if port is not None:
        attrs += _attr(NDA_PORT, _BE16.pack(port))
    if vni is not None:
        attrs += _attr(NDA_VNI, _U32.pack(vni))
    if via is not None:
        attrs += _attr(NDA_IFINDEX, _U32.pack(via))
    if src_vni is not None:
        attrs += _attr(NDA_SRC_VNI, _U32.pack(src_vni))
    length = _HDR_NDMSG.size + len(attrs)
    return _HDR_NDMSG.pack(length, msg_type, flags, seq, 0, family, ifindex, state, ntf, 1) + attrs


# The common shapes of an FDB request, packed in one call: header, ndmsg, NDA_DST, NDA_LLADDR.
_FDB_REQUEST = {
    4: struct.Struct("=IHHIIBxxxiHBBHH4sHH6sxx"),
    16: struct.Struct("=IHHIIBxxxiHBBHH16sHH6sxx"),
}


def encode_fdb_request(
    msg_type: int, flags: int, *, ifindex: int, state: int, ntf: int, lladdr: bytes, dst: bytes
) -> bytes:
    """An AF_BRIDGE ``RTM_*NEIGH`` with a MAC and a remote (no port or VNI), sequence number 0.

    The same bytes as :func:`encode_neigh` gives, at a fraction of the cost (bulk programming).
    """
    layout = _FDB_REQUEST.get(len(dst))
    if layout is None or len(lladdr) != 6:  # not the common shape: the general encoder
        return encode_neigh(
            msg_type, flags, 0, family=AF_BRIDGE, ifindex=ifindex, state=state, ntf=ntf, lladdr=lladdr, dst=dst
        )
    return layout.pack(
        layout.size,
        msg_type,
        flags,
        0,
        0,
        AF_BRIDGE,
        ifindex,
        state,
        ntf,
        1,
        4 + len(dst),
        NDA_DST,
        dst,
        10,
        NDA_LLADDR,
        lladdr,
    )


def number_requests(messages: Sequence[bytes], seq0: int) -> bytearray:
    """``messages`` joined into one buffer, numbered ``seq0``, ``seq0 + 1``, ... (31 bits, wrapping)."""
    buf = bytearray().join(messages)
    off = 0
    pack = _U32.pack_into
    for i, m in enumerate(messages):
        pack(buf, off + 8, (seq0 + i) & 0x7FFFFFFF)
        off += len(m)
    return buf


def encode_dump_request(family: int, ifindex: int, seq: int) -> bytes:
    """An ``RTM_GETNEIGH`` dump of ``family`` (``AF_BRIDGE``: the FDB; 0: ARP and ND), filtered
    by device ``ifindex`` in the kernel (0: every device)."""
    if family == AF_BRIDGE:  # rtnl_fdb_dump filters on ndm_ifindex
        body, attrs = (family, ifindex, 0, 0, 0), b""
    else:  # strict neighbour dumps want a zero header and NDA_IFINDEX instead
        body, attrs = (family, 0, 0, 0, 0), _attr(NDA_IFINDEX, _U32.pack(ifindex)) if ifindex else b""
    size = _HDR_NDMSG.size + len(attrs)
    return _HDR_NDMSG.pack(size, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq, 0, *body) + attrs


# --- replies --------------------------------------------------------------------------------------


def collect_acks(buf: bytes | bytearray | memoryview, seq0: int, out: list[tuple[int, str]]) -> int:
    """Record the NLMSG_ERROR answers in ``buf`` to requests ``seq0``, ``seq0 + 1``, ... as
    ``out[i] = (errno, extack message)`` (errno 0: an ack), where ``out`` holds ``(-1, "")`` for
    a request not answered yet; returns how many were answered here. Others are ignored.

    One pass, no per-message objects: the acknowledgements of a 10,000-entry batch.
    """
    mv = memoryview(buf)
    end = len(mv)
    count = len(out)
    answered = 0
    off = 0
    nlh = _NLMSGHDR.unpack_from
    error = NLMSG_ERROR
    while off + 16 <= end:
        length, msg_type, flags, _, _ = nlh(mv, off)
        if length < 16:
            break
        if msg_type == error and off + 36 <= end:
            seq, code, message = _parse_error(mv, off, length if off + length <= end else end - off, flags)
            i = (seq - seq0) & 0x7FFFFFFF
            if i < count and out[i][0] == -1:
                out[i] = (code, message)
                answered += 1
        off += (length + 3) & ~3
    return answered


def _parse_error(mv: memoryview, off: int, length: int, flags: int) -> tuple[int, int, str]:
    """``(seq of the request, errno, extack message)`` of an NLMSG_ERROR at ``off``."""
    (code,) = _NLMSGERR.unpack_from(mv, off + 16)
    seq = _NLMSGHDR.unpack_from(mv, off + 20)[3]
    message = ""
    if flags & NLM_F_ACK_TLVS and code:
        # With NETLINK_CAP_ACK the echoed request is only its 16-byte header.
        a = off + 16 + 4 + 16
        while a + 4 <= off + length:
            alen, akind = _NLATTR.unpack_from(mv, a)
            if alen < 4:
                break
            if akind == NLMSGERR_ATTR_MSG:
                message = bytes(mv[a + 4 : a + alen]).rstrip(b"\0").decode(errors="replace")
            a += (alen + 3) & ~3
    return seq, -code, message


def dump_status(buf: bytes | bytearray | memoryview, seq: int) -> int | None:
    """How a datagram of dump ``seq``'s reply ends: ``None`` (more follows), 0 (NLMSG_DONE, or an
    ack) or the errno of the NLMSG_ERROR that ended it."""
    mv = memoryview(buf)
    end = len(mv)
    off = 0
    status = None
    while off + 16 <= end:
        length, msg_type, _, mseq, _ = _NLMSGHDR.unpack_from(mv, off)
        if length < 16:
            break
        if mseq == seq and msg_type == NLMSG_DONE:
            status = 0
        elif mseq == seq and msg_type == NLMSG_ERROR and off + 20 <= end:
            status = -_NLMSGERR.unpack_from(mv, off + 16)[0]
        off += (length + 3) & ~3
    return status


@dataclass(frozen=True, slots=True)
class NeighMessage:
    """A parsed ``RTM_*NEIGH`` message, addresses still as bytes (formatting is the caller's)."""

    msg_type: int
    family: int
    ifindex: int
    state: int
    flags: int
    lladdr: bytes | None
    dst: bytes | None
    port: int | None
    vni: int | None
    via: int | None
    used: int | None  # clock_t ticks ago (USER_HZ), from NDA_CACHEINFO
    updated: int | None


_NeighAttrs = tuple[
    "bytes | None", "bytes | None", "int | None", "int | None", "int | None", "int | None", "int | None"
]


def _neigh_attrs(mv: memoryview, a: int, stop: int) -> _NeighAttrs:
    """``(lladdr, dst, port, vni, via, used, updated)`` from the attributes of a neighbour message
    between offsets ``a`` and ``stop``; ``None`` for each one that is absent."""
    lladdr = dst = None
    port = vni = via = used = updated = None
    nla = _NLATTR.unpack_from
    while a + 4 <= stop:
        alen, akind = nla(mv, a)
        if alen < 4:
            break
        akind &= 0x3FFF
        if akind == NDA_LLADDR:
            lladdr = bytes(mv[a + 4 : a + alen])
        elif akind == NDA_DST:
            dst = bytes(mv[a + 4 : a + alen])
        elif akind == NDA_CACHEINFO:
            _, used, updated, _ = _CACHEINFO.unpack_from(mv, a + 4)
        elif akind == NDA_PORT:
            port = _BE16.unpack_from(mv, a + 4)[0]
        elif akind == NDA_VNI:
            vni = _U32.unpack_from(mv, a + 4)[0]
        elif akind == NDA_IFINDEX:
            via = _U32.unpack_from(mv, a + 4)[0]
        a += (alen + 3) & ~3
    return lladdr, dst, port, vni, via, used, updated


def parse_neigh_messages(
    buf: bytes | bytearray | memoryview, wanted_ifindex: int | None = None
) -> Iterator[NeighMessage]:
    """The neighbour messages in ``buf``; others (DONE, errors, links) are skipped.

    Written for speed: one ``unpack_from`` for the headers, attributes walked by offset.
    """
    mv = memoryview(buf)
    end = len(mv)
    off = 0
    hdr = _HDR_NDMSG.unpack_from
    while off + 16 <= end:
        length, msg_type = _NLMSGHDR.unpack_from(mv, off)[:2]
        if length < 16:
            break
        nxt = off + ((length + 3) & ~3)
        if RTM_NEWNEIGH <= msg_type <= RTM_GETNEIGH and length >= _HDR_NDMSG.size:
            _, _, _, _, _, family, ifindex, state, flags, _ = hdr(mv, off)
            if wanted_ifindex is None or ifindex == wanted_ifindex:
                yield NeighMessage(
                    msg_type, family, ifindex, state, flags, *_neigh_attrs(mv, off + _HDR_NDMSG.size, off + length)
                )
        off = nxt


# A dumped FDB entry without port, VNI or via: header, ndmsg, NDA_LLADDR, NDA_DST, NDA_CACHEINFO.
_FDB_DUMP = {
    68: struct.Struct("=IHHIIBxxxiHBBHH6sxxHH4sHHIIII"),
    80: struct.Struct("=IHHIIBxxxiHBBHH6sxxHH16sHHIIII"),
}

FdbRecord = tuple[bytes, bytes, "int | None", "int | None", "int | None", int, int, "int | None", "int | None"]


def parse_fdb_records(buf: bytes | bytearray | memoryview, ifindex: int) -> list[FdbRecord]:
    """The device's own FDB records in a dump: ``(lladdr, dst, port, vni, via, state, flags,
    used, updated)`` tuples, for AF_BRIDGE messages of ``ifindex`` with NTF_SELF and a remote.

    The hot path of reading 10,000 entries: plain tuples and one pass over the attributes (the
    bridge's own "master" entries for the port, which have no remote, are left out).
    """
    mv = memoryview(buf)
    end = len(mv)
    off = 0
    out: list[FdbRecord] = []
    append = out.append
    hdr = _HDR_NDMSG.unpack_from
    nlh = _NLMSGHDR.unpack_from
    size = _HDR_NDMSG.size
    while off + 16 <= end:
        length, msg_type, _, _, _ = nlh(mv, off)
        if length < 16:
            break
        if msg_type != RTM_NEWNEIGH or length < size:
            off += (length + 3) & ~3
            continue
        if length in _FDB_DUMP:
            # Linux writes NDA_LLADDR, NDA_DST, then NDA_CACHEINFO: an entry without a port, VNI
            # or via interface (most of them) has one fixed layout, unpacked in one call.
            v = _FDB_DUMP[length].unpack_from(mv, off)
            if (v[10], v[11], v[14], v[16], v[17]) == (10, NDA_LLADDR, NDA_DST, 20, NDA_CACHEINFO):
                if v[5] == AF_BRIDGE and v[6] == ifindex and v[8] & NTF_SELF:
                    append((v[12], v[15], None, None, None, v[7], v[8], v[19], v[20]))
                off += length
                continue
        _, _, _, _, _, family, index, state, flags, _ = hdr(mv, off)
        if family == AF_BRIDGE and index == ifindex and flags & NTF_SELF:
            lladdr, dst, port, vni, via, used, updated = _neigh_attrs(mv, off + size, off + length)
            if lladdr is not None and dst is not None:
                append((lladdr, dst, port, vni, via, state, flags, used, updated))
        off += (length + 3) & ~3
    return out


# --- FDB states and entries -------------------------------------------------------------------------

#: The NUD_* bits ``bridge fdb add ... STATE`` sends for each :class:`~pyvxlan.FdbState`.
STATE_BITS: Final = {
    FdbState.PERMANENT: NUD_PERMANENT | NUD_NOARP,  # bridge fdb add's default
    FdbState.STATIC: NUD_REACHABLE | NUD_NOARP,  # bridge fdb add ... static
    FdbState.REACHABLE: NUD_REACHABLE,  # bridge fdb add ... dynamic (and learned entries)
}
_STATES = {bits: state for state, bits in STATE_BITS.items()} | {NUD_PERMANENT | NUD_REACHABLE: FdbState.PERMANENT}


def nud_state(state: FdbState) -> int:
    """The NUD_* bits ``bridge fdb add ... STATE`` sends for ``state``.

    >>> nud_state(FdbState.STATIC) == NUD_REACHABLE | NUD_NOARP
    True
    """
    bits = STATE_BITS.get(state)
    if bits is None:
        raise ConfigError("state", f"must be an FdbState, got {state!r}")
    return bits


def fdb_state(bits: int) -> FdbState:
    """The :class:`~pyvxlan.FdbState` ``bridge fdb show`` prints for an entry's NUD_* bits."""
    if bits & NUD_PERMANENT:
        return FdbState.PERMANENT
    if bits & NUD_NOARP:
        return FdbState.STATIC
    return FdbState.REACHABLE


def ip_text(raw: bytes) -> str:
    """The text of a 4- or 16-byte address as the kernel sends it (``NDA_DST``)."""
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


# Reading 10,000 entries is a measured hot path (bench/kernel_fdb.py): FdbEntry is built through
# its slot descriptors, which costs a quarter of its frozen __init__ (0.6 against 2.6 microseconds
# an entry); the kernel's records are valid by construction.
_SLOT_SETTERS = slot_setters(
    FdbEntry, ("mac", "dst", "port", "vni", "interface", "state", "extern_learn", "updated", "used", "router")
)


def unnamed_interfaces(records: Sequence[FdbRecord], names: Mapping[int, str]) -> bool:
    """True when a record's ``via`` interface index is not in ``names`` (time to read them again)."""
    return any(r[4] and r[4] not in names for r in records)


def fdb_entries(
    records: Sequence[FdbRecord], now: float, names: Mapping[int, str], dst_texts: dict[bytes, str]
) -> list[FdbEntry]:
    """``records`` (from :func:`parse_fdb_records`) as :class:`~pyvxlan.FdbEntry` values.

    ``updated`` and ``used`` become times in the clock of ``now``; ``names`` maps a ``via``
    interface index to its name (one it lacks is named ``if<index>``, as iproute2 names it; see
    :func:`unnamed_interfaces`). ``dst_texts`` caches remote addresses as text across calls (a
    table has few distinct remotes); it is the caller's, and kept under 65,536 entries here.
    """
    hz = float(USER_HZ)
    out: list[FdbEntry] = []
    append = out.append
    new = object.__new__
    s_mac, s_dst, s_port, s_vni, s_if, s_state, s_ext, s_upd, s_used, s_router = _SLOT_SETTERS
    texts = dst_texts
    states = _STATES
    ext_bit = NTF_EXT_LEARNED
    router_bit = NTF_ROUTER
    for lladdr, dst, port, vni, via, state, flags, used, updated in records:
        dst_text = texts.get(dst)
        if dst_text is None:
            if len(texts) > 65536:
                texts.clear()
            dst_text = texts[dst] = ip_text(dst)
        e = new(FdbEntry)
        s_mac(e, lladdr.hex(":"))
        s_dst(e, dst_text)
        s_port(e, port)
        s_vni(e, vni)
        s_if(e, (names.get(via) or f"if{via}") if via else None)
        s_state(e, states.get(state) or fdb_state(state))
        s_ext(e, bool(flags & ext_bit))
        s_upd(e, None if updated is None else now - updated / hz)
        s_used(e, None if used is None else now - used / hz)
        s_router(e, bool(flags & router_bit))
        append(e)
    return out


# --- links --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What pyvxlan reads back of a link; ``vxlan`` holds its IFLA_VXLAN_* attributes under
    :class:`~pyvxlan.VtepConfig`'s names (``vni``, ``group``, ``dst_port``, ...)."""

    index: int
    name: str
    kind: str | None
    up: bool
    mac: str
    master: int | None
    vxlan: dict[str, Any]
    stats: dict[str, int]


def vxlan_attributes(config: VtepConfig, link_index: int | None) -> dict[str, Any]:
    """pyroute2's keywords for the IFLA_VXLAN_* attributes of ``config`` (see
    docs/kernel-attributes.md); ``link_index`` is the underlay device's (``dev``).

    >>> kw = vxlan_attributes(VtepConfig(vni=7, local="198.51.100.1", ageing=0.4), None)
    >>> (kw["vxlan_id"], kw["vxlan_port"], kw["vxlan_ageing"], kw["vxlan_local"])
    (7, 4789, 1, '198.51.100.1')
    """
    kw: dict[str, Any] = {
        "vxlan_id": config.vni,
        # Always explicit: left out, the kernel picks its module default 8472.
        "vxlan_port": config.dst_port,
        "vxlan_port_range": {"low": config.src_port_range[0], "high": config.src_port_range[1]},
        "vxlan_ttl": config.ttl,
        "vxlan_learning": int(config.learning),
        # Linux counts whole seconds and reads 0 as 300: a fraction rounds up, never down to 0.
        "vxlan_ageing": max(1, math.ceil(config.ageing)),
        "vxlan_limit": config.max_entries,
        "vxlan_proxy": int(config.proxy),
        "vxlan_l2miss": int(config.l2miss),
        "vxlan_l3miss": int(config.l3miss),
    }
    if config.gbp:
        kw["vxlan_gbp"] = True
    # IFLA_VXLAN_TOS 1 is the kernel's "inherit"; TTL_INHERIT is a flag on the way in.
    if config.tos:
        kw["vxlan_tos"] = 1 if config.tos == "inherit" else config.tos
    if config.ttl_inherit:
        kw["vxlan_ttl_inherit"] = True
    if config.udp6_zero_csum_tx:
        kw["vxlan_udp_zero_csum6_tx"] = 1
    if config.udp6_zero_csum_rx:
        kw["vxlan_udp_zero_csum6_rx"] = 1
    six = config.ip_version == 6
    if config.local is not None:
        kw["vxlan_local6" if six else "vxlan_local"] = config.local
    # The kernel keeps a multicast group and a unicast remote in the same attribute; pyroute2's
    # ``vxlan_remote`` keyword is accepted and silently dropped.
    if config.default_remote is not None:
        kw["vxlan_group6" if six else "vxlan_group"] = config.default_remote
    if link_index is not None:
        kw["vxlan_link"] = link_index
    return kw


#: The IFLA_VXLAN_* attributes read back, under the names :attr:`LinkInfo.vxlan` uses.
VXLAN_READ: Final = {
    "IFLA_VXLAN_ID": "vni",
    "IFLA_VXLAN_GROUP": "group",
    "IFLA_VXLAN_GROUP6": "group",
    "IFLA_VXLAN_LOCAL": "local",
    "IFLA_VXLAN_LOCAL6": "local",
    "IFLA_VXLAN_LINK": "link",
    "IFLA_VXLAN_PORT": "dst_port",
    "IFLA_VXLAN_PORT_RANGE": "src_port_range",
    "IFLA_VXLAN_TTL": "ttl",
    "IFLA_VXLAN_LEARNING": "learning",
    "IFLA_VXLAN_AGEING": "ageing",
    "IFLA_VXLAN_LIMIT": "max_entries",
    "IFLA_VXLAN_PROXY": "proxy",
    "IFLA_VXLAN_L2MISS": "l2miss",
    "IFLA_VXLAN_L3MISS": "l3miss",
    "IFLA_VXLAN_GBP": "gbp",
    "IFLA_VXLAN_COLLECT_METADATA": "external",
    "IFLA_VXLAN_TOS": "tos",
    "IFLA_VXLAN_UDP_ZERO_CSUM6_TX": "udp6_zero_csum_tx",
    "IFLA_VXLAN_UDP_ZERO_CSUM6_RX": "udp6_zero_csum_rx",
}


def config_from_link(name: str, info: LinkInfo, dev: str | None) -> VtepConfig:
    """The :class:`~pyvxlan.VtepConfig` of vxlan device ``name`` read back as ``info``; ``dev``
    is the name of its underlay device (``IFLA_VXLAN_LINK``), if any."""
    v = info.vxlan
    group = remote = None
    address = v.get("group")
    if address and not ip_info(address).is_unspecified:
        if ip_info(address).is_multicast:
            group = address
        else:
            remote = address
    local = v.get("local")
    if local and ip_info(local).is_unspecified:
        local = None
    pr = v.get("src_port_range") or {}
    low, high = int(pr.get("low", 0)), int(pr.get("high", 0))
    port_range = (low, high) if low and high else LINUX_SOURCE_PORTS
    return VtepConfig(
        vni=int(v.get("vni", 0)),
        local=local,
        group=group,
        remote=remote,
        dst_port=int(v.get("dst_port") or 8472),
        src_port_range=port_range,
        ttl=int(v.get("ttl", 0)),
        learning=bool(v.get("learning", 1)),
        ageing=float(v.get("ageing", DEFAULT_AGEING)),
        max_entries=int(v.get("max_entries", 0)),
        proxy=bool(v.get("proxy", 0)),
        l2miss=bool(v.get("l2miss", 0)),
        l3miss=bool(v.get("l3miss", 0)),
        gbp=bool(v.get("gbp", False)),
        mac=info.mac,
        name=name,
        dev=dev,
        # IFLA_VXLAN_TTL_INHERIT is not read: the kernel always sends it (a u8), and pyroute2
        # decodes it as a flag, so it would read as on for every device.
        tos=int(v.get("tos", 0)),
        udp6_zero_csum_tx=bool(v.get("udp6_zero_csum_tx", 0)),
        udp6_zero_csum_rx=bool(v.get("udp6_zero_csum_rx", 0)),
    )
