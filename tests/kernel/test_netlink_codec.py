"""The neighbour-message codec of pyvxlan.kernel.netlink: properties, no root needed."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan.kernel import netlink as nl

macs = st.binary(min_size=6, max_size=6)
dsts = st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16))
ports = st.none() | st.integers(1, 65535)
vnis = st.none() | st.integers(0, (1 << 24) - 1)
states = st.sampled_from([0x02, 0x42, 0xC0, 0x82, 0x04])
flags = st.sampled_from([nl.NTF_SELF, nl.NTF_SELF | nl.NTF_EXT_LEARNED, nl.NTF_MASTER, 0])


def _attr(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + bytes(-len(payload) % 4)


Record = tuple[bytes, bytes, "int | None", "int | None", "int | None", int, int, int]


def _dumped(record: Record) -> bytes:
    lladdr, dst, port, vni, via, state, ntf, ifindex = record
    # In vxlan_fdb_info's order: NDA_LLADDR, NDA_DST, [NDA_PORT], [NDA_VNI], [NDA_IFINDEX], NDA_CACHEINFO.
    body = struct.pack("=BxxxiHBB", nl.AF_BRIDGE, ifindex, state, ntf, 1) + _attr(2, lladdr) + _attr(1, dst)
    if port is not None:
        body += _attr(6, struct.pack("!H", port))
    if vni is not None:
        body += _attr(7, struct.pack("=I", vni))
    if via is not None:
        body += _attr(8, struct.pack("=I", via))
    body += _attr(3, struct.pack("=IIII", 1, 2, 3, 4))
    return struct.pack("=IHHII", 16 + len(body), nl.RTM_NEWNEIGH, 2, 1, 0) + body


entries = st.tuples(macs, dsts, ports, vnis, st.none() | st.integers(1, 99), states, flags, st.sampled_from([3, 4]))


@settings(max_examples=150)
@given(st.lists(entries, max_size=12))
def test_the_fast_dump_parser_equals_the_general_parser_filtered(records: list[Record]) -> None:
    buf = b"".join(_dumped(r) for r in records) + struct.pack("=IHHIIi", 20, 3, 2, 1, 0, 0)
    general = [
        (m.lladdr, m.dst, m.port, m.vni, m.via, m.state, m.flags, m.used, m.updated)
        for m in nl.parse_neigh_messages(buf, 3)
        if m.flags & nl.NTF_SELF
    ]
    assert nl.parse_fdb_records(buf, 3) == general
    want = [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], 2, 3) for r in records if r[7] == 3 and r[6] & nl.NTF_SELF]
    assert general == want


@settings(max_examples=150)
@given(st.tuples(macs, dsts, ports, vnis, states, flags))
def test_encoded_requests_parse_back(request: tuple[bytes, bytes, int | None, int | None, int, int]) -> None:
    lladdr, dst, port, vni, state, ntf = request
    msg = nl.encode_neigh(
        nl.RTM_NEWNEIGH,
        0x605,
        0,
        family=nl.AF_BRIDGE,
        ifindex=9,
        state=state,
        ntf=ntf,
        lladdr=lladdr,
        dst=dst,
        port=port,
        vni=vni,
    )
    assert len(msg) % 4 == 0 and struct.unpack_from("=I", msg)[0] == len(msg)
    (m,) = nl.parse_neigh_messages(msg)
    assert (m.family, m.ifindex, m.state, m.flags, m.lladdr, m.dst, m.port, m.vni) == (
        nl.AF_BRIDGE,
        9,
        state,
        ntf,
        lladdr,
        dst,
        port,
        vni,
    )
    if port is None and vni is None:
        assert (
            nl.encode_fdb_request(nl.RTM_NEWNEIGH, 0x605, ifindex=9, state=state, ntf=ntf, lladdr=lladdr, dst=dst)
            == msg
        )
