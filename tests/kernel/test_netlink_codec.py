"""The rtnetlink message codec (pyvxlan.kernel.messages): examples and properties, no root needed.

Not kernel-marked: these run everywhere, pyroute2 or not."""

from __future__ import annotations

import inspect
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import BackendError, ConfigError, FdbEntry, FdbState, VtepConfig
from pyvxlan.kernel import messages as nlm

macs = st.binary(min_size=6, max_size=6)
dsts = st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16))
ports = st.none() | st.integers(1, 65535)
vnis = st.none() | st.integers(0, (1 << 24) - 1)
states = st.sampled_from([0x02, 0x42, 0xC0, 0x82, 0x04])
flags = st.sampled_from([nlm.NTF_SELF, nlm.NTF_SELF | nlm.NTF_EXT_LEARNED, nlm.NTF_MASTER, 0])


def _attr(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + bytes(-len(payload) % 4)


Record = tuple[bytes, bytes, "int | None", "int | None", "int | None", int, int, int]


def _dumped(record: Record) -> bytes:
    lladdr, dst, port, vni, via, state, ntf, ifindex = record
    # In vxlan_fdb_info's order: NDA_LLADDR, NDA_DST, [NDA_PORT], [NDA_VNI], [NDA_IFINDEX], NDA_CACHEINFO.
    body = struct.pack("=BxxxiHBB", nlm.AF_BRIDGE, ifindex, state, ntf, 1) + _attr(2, lladdr) + _attr(1, dst)
    if port is not None:
        body += _attr(6, struct.pack("!H", port))
    if vni is not None:
        body += _attr(7, struct.pack("=I", vni))
    if via is not None:
        body += _attr(8, struct.pack("=I", via))
    body += _attr(3, struct.pack("=IIII", 1, 2, 3, 4))
    return struct.pack("=IHHII", 16 + len(body), nlm.RTM_NEWNEIGH, 2, 1, 0) + body


entries = st.tuples(macs, dsts, ports, vnis, st.none() | st.integers(1, 99), states, flags, st.sampled_from([3, 4]))


@settings(max_examples=150)
@given(st.lists(entries, max_size=12))
def test_the_fast_dump_parser_equals_the_general_parser_filtered(records: list[Record]) -> None:
    buf = b"".join(_dumped(r) for r in records) + struct.pack("=IHHIIi", 20, 3, 2, 1, 0, 0)
    general = [
        (m.lladdr, m.dst, m.port, m.vni, m.via, m.state, m.flags, m.used, m.updated)
        for m in nlm.parse_neigh_messages(buf, 3)
        if m.flags & nlm.NTF_SELF
    ]
    assert nlm.parse_fdb_records(buf, 3) == general
    want = [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], 2, 3) for r in records if r[7] == 3 and r[6] & nlm.NTF_SELF]
    assert general == want


@settings(max_examples=150)
@given(st.tuples(macs, dsts, ports, vnis, states, flags))
def test_encoded_requests_parse_back(request: tuple[bytes, bytes, int | None, int | None, int, int]) -> None:
    lladdr, dst, port, vni, state, ntf = request
    msg = nlm.encode_neigh(
        nlm.RTM_NEWNEIGH,
        0x605,
        0,
        family=nlm.AF_BRIDGE,
        ifindex=9,
        state=state,
        ntf=ntf,
        lladdr=lladdr,
        dst=dst,
        port=port,
        vni=vni,
    )
    assert len(msg) % 4 == 0 and struct.unpack_from("=I", msg)[0] == len(msg)
    (m,) = nlm.parse_neigh_messages(msg)
    assert (m.family, m.ifindex, m.state, m.flags, m.lladdr, m.dst, m.port, m.vni) == (
        nlm.AF_BRIDGE,
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
            nlm.encode_fdb_request(nlm.RTM_NEWNEIGH, 0x605, ifindex=9, state=state, ntf=ntf, lladdr=lladdr, dst=dst)
            == msg
        )


# --- requests and dumps, by example --------------------------------------------------------------


def test_neigh_messages_encode_and_parse_back() -> None:
    msg = nlm.encode_neigh(
        nlm.RTM_NEWNEIGH,
        nlm.NLM_F_REQUEST,
        7,
        family=nlm.AF_BRIDGE,
        ifindex=3,
        state=nlm.NUD_PERMANENT | nlm.NUD_NOARP,
        ntf=nlm.NTF_SELF,
        lladdr=bytes.fromhex("020000000001"),
        dst=bytes([198, 51, 100, 3]),
        port=5555,
        vni=99,
    )
    (m,) = nlm.parse_neigh_messages(
        msg + nlm.encode_neigh(nlm.RTM_NEWNEIGH, 0, 8, family=7, ifindex=4, state=0, ntf=0), 3
    )
    assert (m.msg_type, m.family, m.ifindex, m.state, m.flags) == (nlm.RTM_NEWNEIGH, 7, 3, 0xC0, 2)
    assert (m.lladdr, m.dst, m.port, m.vni, m.via) == (
        bytes.fromhex("020000000001"),
        bytes([198, 51, 100, 3]),
        5555,
        99,
        None,
    )


def test_via_and_src_vni_are_encoded_as_nda_ifindex_and_nda_src_vni() -> None:
    msg = nlm.encode_neigh(
        nlm.RTM_NEWNEIGH,
        0,
        1,
        family=nlm.AF_BRIDGE,
        ifindex=3,
        state=0x80,
        ntf=nlm.NTF_SELF | nlm.NTF_ROUTER,
        via=9,
        src_vni=77,
    )
    assert msg[28:].hex() == "0800080009000000" + "08000b004d000000"
    (m,) = nlm.parse_neigh_messages(msg)
    assert (m.via, m.flags) == (9, nlm.NTF_SELF | nlm.NTF_ROUTER)


@pytest.mark.parametrize(
    "dst", [bytes([198, 51, 100, 3]), bytes.fromhex("20010db8" + "00" * 11 + "03")], ids=["v4", "v6"]
)
def test_the_bulk_encoder_writes_the_same_bytes_as_the_general_one(dst: bytes) -> None:
    mac = bytes.fromhex("020000000001")
    fast = nlm.encode_fdb_request(
        nlm.RTM_NEWNEIGH, 0x0C05, ifindex=3, state=0xC0, ntf=nlm.NTF_SELF, lladdr=mac, dst=dst
    )
    general = nlm.encode_neigh(
        nlm.RTM_NEWNEIGH, 0x0C05, 0, family=nlm.AF_BRIDGE, ifindex=3, state=0xC0, ntf=nlm.NTF_SELF, lladdr=mac, dst=dst
    )
    assert fast == general


def test_the_fast_dump_parser_agrees_with_the_general_one() -> None:
    v6 = bytes.fromhex("20010db8" + "00" * 11 + "03")

    def entry(i: int, dst: bytes, port: int | None = None, ifindex: int = 3) -> bytes:
        return _dumped((bytes.fromhex(f"02000000000{i}"), dst, port, None, None, 0x02, nlm.NTF_SELF, ifindex))

    buf = b"".join(
        [
            entry(1, bytes([198, 51, 100, 3])),  # the one-unpack layout
            entry(2, v6),  # its IPv6 twin
            entry(3, bytes([198, 51, 100, 4]), 5555),  # attribute by attribute
            entry(4, bytes([198, 51, 100, 5]), ifindex=4),  # another device
            struct.pack("=IHHIIi", 20, 3, 2, 9, 0, 0),  # NLMSG_DONE
        ]
    )
    general = [
        (m.lladdr, m.dst, m.port, m.vni, m.via, m.state, m.flags, m.used, m.updated)
        for m in nlm.parse_neigh_messages(buf, 3)
    ]
    assert nlm.parse_fdb_records(buf, 3) == general
    assert [r[0] for r in general] == [bytes.fromhex(f"02000000000{i}") for i in (1, 2, 3)]
    assert general[2][2] == 5555 and general[0][7:] == (2, 3)


def test_the_bulk_encoder_falls_back_to_the_general_one_for_other_shapes() -> None:
    odd = bytes(5)  # neither IPv4 nor IPv6: no fixed layout, the same bytes all the same
    fast = nlm.encode_fdb_request(nlm.RTM_NEWNEIGH, 0x0C05, ifindex=3, state=0xC0, ntf=2, lladdr=bytes(6), dst=odd)
    general = nlm.encode_neigh(
        nlm.RTM_NEWNEIGH, 0x0C05, 0, family=nlm.AF_BRIDGE, ifindex=3, state=0xC0, ntf=2, lladdr=bytes(6), dst=odd
    )
    assert fast == general


def test_a_batch_is_numbered_in_place_from_seq0() -> None:
    one = nlm.encode_neigh(nlm.RTM_NEWNEIGH, 5, 0, family=7, ifindex=3, state=0, ntf=2, lladdr=bytes(6))
    two = nlm.encode_neigh(nlm.RTM_DELNEIGH, 5, 0, family=7, ifindex=3, state=0, ntf=2)
    buf = nlm.number_requests([one, two], 0x7FFFFFFF)
    assert bytes(buf) == one[:8] + struct.pack("=I", 0x7FFFFFFF) + one[12:] + two[:8] + bytes(4) + two[12:]


@pytest.mark.parametrize(
    ("family", "ifindex", "tail"),
    [(nlm.AF_BRIDGE, 3, ""), (0, 3, "0800080003000000"), (0, 0, "")],
    ids=["fdb", "neighbours of a device", "all neighbours"],
)
def test_dump_requests_filter_by_device_as_the_kernel_wants_it(family: int, ifindex: int, tail: str) -> None:
    msg = nlm.encode_dump_request(family, ifindex, 42)
    assert struct.unpack_from("=IHHII", msg) == (len(msg), nlm.RTM_GETNEIGH, 0x301, 42, 0)
    assert struct.unpack_from("=BxxxiHBB", msg, 16) == (family, ifindex if family == nlm.AF_BRIDGE else 0, 0, 0, 0)
    assert msg[28:].hex() == tail


def _error(seq: int, code: int, message: str = "") -> bytes:
    # NLMSG_ERROR with NETLINK_CAP_ACK: the error, the request's header, then NLMSGERR_ATTR_MSG.
    attrs = b""
    if message:
        text = message.encode() + b"\0"
        attrs = struct.pack("=HH", 4 + len(text), 1) + text + bytes(-len(text) % 4)
    body = struct.pack("=i", -code) + struct.pack("=IHHII", 40, nlm.RTM_NEWNEIGH, 5, seq, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), nlm.NLMSG_ERROR, 0x300 if message else 0x100, seq, 0) + body


def test_acknowledgements_carry_the_sequence_number_the_errno_and_the_kernels_reason() -> None:
    buf = _error(7, 0) + _error(8, 17, "A VXLAN device with the specified VNI already exists") + _error(9, 2)
    out = [(-1, "")] * 3
    assert nlm.collect_acks(buf, 7, out) == 3
    assert out == [(0, ""), (17, "A VXLAN device with the specified VNI already exists"), (2, "")]
    late = [(-1, "")] * 2  # requests 8 and 9: 7's answer is another batch's, 8's is cut short
    assert nlm.collect_acks(buf[:56], 8, late) == 0
    assert late == [(-1, ""), (-1, "")]
    again = [(0, ""), (-1, "")]  # an answer already recorded is kept (a duplicate does not count)
    assert nlm.collect_acks(_error(7, 5) + _error(8, 0), 7, again) == 1
    assert again == [(0, ""), (0, "")]


def test_a_dump_ends_with_done_or_with_an_error() -> None:
    entry = _dumped((bytes.fromhex("020000000001"), bytes([198, 51, 100, 3]), None, None, None, 0x02, 2, 3))  # seq 1
    done = struct.pack("=IHHIIi", 20, nlm.NLMSG_DONE, 2, 1, 0, 0)
    assert nlm.dump_status(entry, 1) is None
    assert nlm.dump_status(entry + done, 1) == 0
    assert nlm.dump_status(entry + done, 2) is None  # another request's end
    assert nlm.dump_status(entry + _error(1, 95), 1) == 95


def test_fdb_records_become_entries_in_the_callers_clock() -> None:
    v6 = bytes.fromhex("20010db8" + "00" * 11 + "03")
    records: list[nlm.FdbRecord] = [
        (bytes.fromhex("020000000001"), bytes([198, 51, 100, 3]), None, None, None, 0xC0, 0x02, 150, 250),
        (bytes.fromhex("020000000002"), v6, 5555, 99, 4, 0x02, 0x02 | 0x10 | 0x80, None, None),
        (bytes(6), bytes([198, 51, 100, 4]), None, None, None, 0x42, 0x02, 0, 0),
    ]
    texts: dict[bytes, str] = {}
    got = nlm.fdb_entries(records, 100.0, {4: "eth1"}, texts)
    assert got == [
        FdbEntry("02:00:00:00:00:01", "198.51.100.3", updated=97.5, used=98.5),
        FdbEntry(
            "02:00:00:00:00:02",
            "2001:db8::3",
            port=5555,
            vni=99,
            interface="eth1",
            state=FdbState.REACHABLE,
            extern_learn=True,
            router=True,
        ),
        FdbEntry("00:00:00:00:00:00", "198.51.100.4", state=FdbState.STATIC, updated=100.0, used=100.0),
    ]
    assert texts == {
        bytes([198, 51, 100, 3]): "198.51.100.3",
        v6: "2001:db8::3",
        bytes([198, 51, 100, 4]): "198.51.100.4",
    }
    assert (nlm.unnamed_interfaces(records, {4: "eth1"}), nlm.unnamed_interfaces(records, {5: "eth2"})) == (False, True)
    # An interface the caller cannot name (gone meanwhile) is iproute2's if<index>.
    assert [e.interface for e in nlm.fdb_entries(records, 100.0, {}, texts)] == [None, "if4", None]


@pytest.mark.parametrize("state", list(FdbState))
def test_fdb_states_round_trip_through_their_nud_bits(state: FdbState) -> None:
    assert nlm.fdb_state(nlm.nud_state(state)) is state


def test_a_state_that_is_not_an_fdb_state_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        nlm.nud_state("static")  # type: ignore[arg-type]
    assert str(info.value) == "state: must be an FdbState, got 'static'"


def test_a_config_becomes_vxlan_attributes_and_reads_back() -> None:
    config = VtepConfig(vni=7, local="2001:db8::1", group="ff05::100", dev="eth1", ageing=0.4, gbp=True, tos="inherit")
    kw = nlm.vxlan_attributes(config, 4)
    assert {k: kw[k] for k in ("vxlan_id", "vxlan_port", "vxlan_ageing", "vxlan_gbp", "vxlan_tos", "vxlan_link")} == {
        "vxlan_id": 7,
        "vxlan_port": 4789,  # always sent: left out, Linux picks 8472
        "vxlan_ageing": 1,
        "vxlan_gbp": True,
        "vxlan_tos": 1,
        "vxlan_link": 4,
    }
    assert (kw["vxlan_local6"], kw["vxlan_group6"]) == ("2001:db8::1", "ff05::100")
    assert "vxlan_remote" not in nlm.vxlan_attributes(VtepConfig(vni=7, remote="198.51.100.2"), None)
    read = {nlm.VXLAN_READ[k]: v for k, v in (("IFLA_VXLAN_ID", 7), ("IFLA_VXLAN_GROUP6", "ff05::100"))}
    info = nlm.LinkInfo(3, "vx7", "vxlan", False, "02:00:00:00:00:07", None, {**read, "learning": 0}, {})
    back = nlm.config_from_link("vx7", info, "eth1")
    assert (back.vni, back.group, back.remote, back.dst_port, back.learning, back.dev, back.mac) == (
        7,
        "ff05::100",
        None,
        8472,  # no IFLA_VXLAN_PORT: the kernel's default
        False,
        "eth1",
        "02:00:00:00:00:07",
    )


def test_a_refusal_is_one_backend_error_carrying_the_errno() -> None:
    exc = nlm.refusal(17, "A VXLAN device with the specified VNI already exists", "create vxlan device vx7")
    assert (type(exc), exc.errno, exc.operation, exc.reason) == (
        BackendError,
        17,
        "create vxlan device vx7",
        "A VXLAN device with the specified VNI already exists",
    )
    assert isinstance(exc, OSError)
    assert str(nlm.refusal(19, "", "RTM_GETNEIGH dump")) == "RTM_GETNEIGH dump: No such device (errno 19)"


def test_the_codec_works_without_pyroute2() -> None:
    # pyroute2 made unimportable, as on a machine without the kernel extra.
    code = (
        "import sys; sys.modules['pyroute2'] = None\n"
        "from pyvxlan.kernel import messages\n"
        "print(len(messages.encode_dump_request(messages.AF_BRIDGE, 3, 1)), sys.modules['pyroute2'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "28 None\n"  # pyroute2 still blocked: nothing imported it
    assert "socket(" not in inspect.getsource(nlm)


def test_the_codecs_doctests_pass() -> None:
    import doctest

    result = doctest.testmod(nlm, optionflags=doctest.ELLIPSIS)
    assert (result.failed, result.attempted >= 3) == (0, True)
