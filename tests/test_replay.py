"""pyvxlan.replay and ``pyvxlan replay``: a capture through model VTEPs (issue 14)."""

from __future__ import annotations

import io
import json
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyvxlan
from pyvxlan import ConfigError, encapsulate, pcap
from pyvxlan.cli import main
from pyvxlan.lab.topology import FdbMode, classic_demo
from pyvxlan.replay import (
    ChangeKind,
    Finding,
    FindingKind,
    Replay,
    TableChange,
    VtepSpec,
    format_time,
    parse_time,
    replay,
)
from pyvxlan.sim import EventKind, open_lab, run

A, B, C, D = "198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"
MAC_A, MAC_B, MAC_C, MAC_M = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c", "02:00:00:00:00:99"
BROADCAST = "ff:ff:ff:ff:ff:ff"


def eth(dst: str, src: str, size: int = 60) -> bytes:
    """An inner Ethernet frame (IPv4 type, zero payload) from ``src`` to ``dst``."""
    return bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + b"\x08\x06" + bytes(size - 14)


def dgram(src: str, dst: str, smac: str, dmac: str, *, vni: int = 10, **kw: object) -> bytes:
    return encapsulate(eth(dmac, smac), vni=vni, src=src, dst=dst, **kw)  # type: ignore[arg-type]


def capture(records: list[tuple[float, bytes]]) -> io.BytesIO:
    buf = io.BytesIO()
    pcap.write(buf, records)
    return buf


def findings(events: list[TableChange | Finding]) -> list[Finding]:
    return [e for e in events if isinstance(e, Finding)]


def changes(events: list[TableChange | Finding]) -> list[TableChange]:
    return [e for e in events if isinstance(e, TableChange)]


# --- a simulated lab, captured on the underlay and replayed ------------------------------------

_DETAIL = re.compile(r"(?P<mac>\S+) (?:dst (?P<dst>\S+)|from (?P<old>\S+) to (?P<new>\S+))$")
_KINDS = {
    EventKind.LEARNED: ChangeKind.LEARNED,
    EventKind.MIGRATED: ChangeKind.MIGRATED,
    EventKind.EXPIRED: ChangeKind.EXPIRED,
}


def lab_changes(lab: object, address_of: dict[str, str], latency: float) -> set[tuple[object, ...]]:
    """The lab's learned/migrated/expired events as (time on the capture's clock, vtep, vni, kind,
    mac, dst, old_dst): the capture records a datagram when it is sent, the lab reports the
    learning when it arrives, one link latency later."""
    out: set[tuple[object, ...]] = set()
    for e in lab.events:  # type: ignore[attr-defined]
        if e.kind not in _KINDS:
            continue
        host, device = e.where.split("/")
        m = _DETAIL.match(e.detail)
        assert m is not None, e.detail
        dst = m["dst"] or m["new"]
        out.add(
            (round(e.time - latency, 6), address_of[host], int(device[5:]), _KINDS[e.kind], m["mac"], dst, m["old"])
        )
    return out


def replay_changes(events: list[TableChange | Finding]) -> set[tuple[object, ...]]:
    return {(round(c.time, 6), c.vtep, c.vni, c.kind, c.mac, c.dst, c.old_dst) for c in changes(events)}


@pytest.mark.parametrize(
    ("mode", "ipv6"),
    [(FdbMode.MULTICAST, False), (FdbMode.UNICAST, False), (FdbMode.MULTICAST, True)],
    ids=["multicast", "head-end-replication", "multicast-ipv6"],
)
def test_sim_lab_replayed_gives_its_tables_and_every_learn_migrate_and_expiry(
    tmp_path: Path, mode: FdbMode, ipv6: bool
) -> None:
    """The classic demo with three hosts: pings, a live migration (guest2 to host3), 400 s of
    quiet (every learned entry ages out), pings again. Replayed from the underlay capture, the
    model tables at the end equal the lab's fdb() and the timeline holds exactly the lab's learn,
    migrate and expire events, each at the lab's time minus the 1 ms link latency."""
    path = tmp_path / "lab.pcap"
    topology = classic_demo(3, mode=mode, ipv6=ipv6)
    address_of = {h.name: h.address for h in topology.hosts}
    seen: dict[str, object] = {}

    async def scenario() -> None:
        async with open_lab(topology) as lab:
            lab.capture(str(path))
            await lab.guest("guest1").ping(topology.guests[1].ip.split("/")[0])
            await lab.guest("guest3").ping(topology.guests[0].ip.split("/")[0])
            await lab.guest("guest2").ping(topology.guests[2].ip.split("/")[0])
            await lab.move_guest("guest2", "host3")
            await lab.sleep(1)
            await lab.guest("guest1").ping(topology.guests[1].ip.split("/")[0], count=2)
            await lab.sleep(400)
            await lab.guest("guest3").ping(topology.guests[0].ip.split("/")[0])
            seen["changes"] = lab_changes(lab, address_of, 0.001)
            seen["tables"] = {(address_of[h], 10): sorted(e.key() for e in lab.fdb(h, 10)) for h in address_of}

    run(scenario)
    r = Replay(path)
    events = list(r.events())
    assert findings(events) == []
    expected = seen["changes"]
    assert isinstance(expected, set)
    assert {c[3] for c in expected} == {ChangeKind.LEARNED, ChangeKind.MIGRATED, ChangeKind.EXPIRED}
    assert replay_changes(events) == expected
    assert {key: sorted(e.key() for e in entries) for key, entries in r.tables().items()} == seen["tables"]


def test_models_say_what_was_assumed(tmp_path: Path) -> None:
    """A VTEP that never floods is still a member of the one group its VNI floods to."""
    records = [
        (1.0, dgram(A, "239.1.1.1", MAC_A, BROADCAST)),
        (2.0, dgram(B, A, MAC_B, MAC_A, dst_port=8472)),
    ]
    r = Replay(capture(records), vteps=[VtepSpec(B, ageing=60.0, static=(("02:00:00:00:00:42", C),))])
    a, b = r.models
    assert (a.address, a.vni, a.port, a.group, a.ageing, a.learning) == (A, 10, 4789, "239.1.1.1", 300.0, True)
    assert a.assumed == (
        "port 4789: the port it sends to",
        "ageing 300 s: Linux's default",
        "learning on: Linux's default",
        "group 239.1.1.1: it floods to it",
        "no static entries",
    )
    assert (b.address, b.port, b.group, b.ageing, b.static) == (B, 8472, "239.1.1.1", 60.0, (("02:00:00:00:00:42", C),))
    assert b.assumed == (
        "port 8472: the port it sends to",
        "learning on: Linux's default",
        "group 239.1.1.1: the one group vni 10 floods to",
    )
    # Each listens where it sends: the flood to 4789 misses B, B's datagram to 8472 misses A.
    assert [(f.kind, f.frames, f.vtep) for f in findings(list(r.events()))] == [
        (FindingKind.WRONG_PORT, (1,), B),
        (FindingKind.WRONG_PORT, (2,), A),
    ]
    assert [e.bridge_line("vxlan10") for e in r.tables()[(B, 10)]] == [
        "00:00:00:00:00:00 dev vxlan10 dst 239.1.1.1 self permanent",
        "02:00:00:00:00:42 dev vxlan10 dst 198.51.100.3 self static",
    ]


def test_expiry_at_updated_plus_ageing_as_vxlan_cleanup() -> None:
    """Entries age out at their last refresh plus the ageing time (Linux's vxlan_cleanup), also
    between packets and at the end of the capture; --at stops the replay there."""
    records = [
        (100.0, dgram(A, B, MAC_A, MAC_B)),
        (104.0, dgram(A, B, MAC_A, MAC_B)),  # refreshes B's entry
        (105.0, dgram(B, A, MAC_B, MAC_A)),
        (130.0, dgram(C, B, MAC_C, MAC_B)),
    ]
    specs = [VtepSpec(B, ageing=10.0), VtepSpec(A, ageing=20.0)]
    events = list(replay(capture(records), vteps=specs))
    assert [str(e) for e in events] == [
        "00:01:40.000 198.51.100.2 vni 10 learned 02:00:00:00:00:0a -> 198.51.100.1 [frame 1]",
        "00:01:45.000 198.51.100.1 vni 10 learned 02:00:00:00:00:0b -> 198.51.100.2 [frame 3]",
        "00:01:54.000 198.51.100.2 vni 10 expired 02:00:00:00:00:0a -> 198.51.100.1",
        "00:02:05.000 198.51.100.1 vni 10 expired 02:00:00:00:00:0b -> 198.51.100.2",
        "00:02:10.000 198.51.100.2 vni 10 learned 02:00:00:00:00:0c -> 198.51.100.3 [frame 4]",
    ]
    r = Replay(capture(records), vteps=specs)
    assert [str(e) for e in r.events(until=110.0)][-1] == (
        "00:01:45.000 198.51.100.1 vni 10 learned 02:00:00:00:00:0b -> 198.51.100.2 [frame 3]"
    )
    assert [e.bridge_line("vxlan10") for e in r.tables()[(B, 10)]] == [
        "02:00:00:00:00:0a dev vxlan10 dst 198.51.100.1 self"
    ]


def test_a_capture_whose_clock_steps_back_replays_at_the_latest_time_seen() -> None:
    """Merged or reordered captures step back in time; the model VTEPs' time never does (the core
    raises ClockError), so a record stamped earlier is taken in at the latest time seen, and its
    event keeps the record's own time."""
    records = [
        (100.0, dgram(A, B, MAC_A, BROADCAST)),
        (99.5, dgram(B, A, MAC_B, MAC_A)),
        (101.0, dgram(A, B, MAC_A, MAC_B)),  # refreshes B's entry
        (130.0, dgram(C, B, MAC_C, MAC_B)),
    ]
    specs = [VtepSpec(B, ageing=10.0), VtepSpec(A, ageing=10.0)]
    assert [str(e) for e in replay(capture(records), vteps=specs)] == [
        "00:01:40.000 198.51.100.2 vni 10 learned 02:00:00:00:00:0a -> 198.51.100.1 [frame 1]",
        "00:01:39.500 198.51.100.1 vni 10 learned 02:00:00:00:00:0b -> 198.51.100.2 [frame 2]",
        "00:01:50.000 198.51.100.1 vni 10 expired 02:00:00:00:00:0b -> 198.51.100.2",
        "00:01:51.000 198.51.100.2 vni 10 expired 02:00:00:00:00:0a -> 198.51.100.1",
        "00:02:10.000 198.51.100.2 vni 10 learned 02:00:00:00:00:0c -> 198.51.100.3 [frame 4]",
    ]


def test_refreshed_only_when_asked() -> None:
    records = [(1.0, dgram(A, B, MAC_A, MAC_B)), (2.0, dgram(A, B, MAC_A, MAC_B)), (3.0, dgram(B, A, MAC_B, MAC_A))]
    quiet = [e.kind for e in replay(capture(records))]
    assert quiet == [ChangeKind.LEARNED, ChangeKind.LEARNED]
    noisy = [(e.kind, e.vtep, e.frame) for e in replay(capture(records), refreshed=True)]  # type: ignore[union-attr]
    assert noisy == [(ChangeKind.LEARNED, B, 1), (ChangeKind.REFRESHED, B, 2), (ChangeKind.LEARNED, A, 3)]


# --- findings ------------------------------------------------------------------------------------


def test_planted_duplicate_mac_flagged_with_its_frames() -> None:
    """MAC_M sends from A, then from C, then from A again within the window: two hosts share it."""
    records = [
        (1.0, dgram(A, B, MAC_M, MAC_B)),
        (1.5, dgram(B, A, MAC_B, MAC_M)),
        (2.0, dgram(C, B, MAC_M, MAC_B)),
        (2.5, dgram(B, C, MAC_B, MAC_M)),
        (3.0, dgram(A, B, MAC_M, MAC_B)),
        (3.5, dgram(C, B, MAC_M, MAC_B)),
    ]
    events = list(replay(capture(records)))
    assert findings(events) == [
        Finding(
            3.0,
            FindingKind.DUPLICATE_MAC,
            (1, 3, 5, 6),
            "vni 10 02:00:00:00:00:99 seen behind 198.51.100.1 and 198.51.100.3 alternately within 10 s",
            count=2,
            vni=10,
            mac=MAC_M,
        )
    ]
    assert [(c.vtep, c.kind, c.frame) for c in changes(events) if c.mac == MAC_M] == [
        (B, ChangeKind.LEARNED, 1),
        (B, ChangeKind.MIGRATED, 3),
        (B, ChangeKind.MIGRATED, 5),
        (B, ChangeKind.MIGRATED, 6),
    ]
    # A MAC that moves once is a migration, not a duplicate; a return after the window is too.
    assert findings(list(replay(capture(records[:4])))) == []
    assert findings(list(replay(capture(records), flap_window=0.5))) == []


def test_blackhole_after_a_move_flagged_with_its_frames() -> None:
    """MAC_M moves from A to C (frame 3, seen going to D); B, which never heard, keeps sending
    MAC_M's frames to A (frames 4 and 5)."""
    records = [
        (1.0, dgram(A, B, MAC_M, MAC_B)),
        (1.1, dgram(B, A, MAC_B, MAC_M)),
        (2.0, dgram(C, D, MAC_M, MAC_C)),
        (2.1, dgram(B, A, MAC_B, MAC_M)),
        (2.2, dgram(B, A, MAC_B, MAC_M)),
        (2.3, dgram(D, C, MAC_C, MAC_M)),  # D learned the move: not a blackhole
    ]
    assert findings(list(replay(capture(records)))) == [
        Finding(
            2.1,
            FindingKind.BLACKHOLE,
            (3, 4, 5),
            "198.51.100.2 sent vni 10 frames for 02:00:00:00:00:99 to 198.51.100.1 after it moved to "
            "198.51.100.3 (frame 3)",
            count=2,
            vni=10,
            mac=MAC_M,
            vtep=B,
        )
    ]


def test_receive_path_drops_flagged_as_vxlan_rcv_would_drop() -> None:
    """vxlan_rcv drops a header with the I flag clear (before the VNI lookup), reserved bits set
    (rx_frame_errors), and a datagram to a port the device does not listen on."""
    reserved = pyvxlan.VxlanHeader.decode(bytes.fromhex("0c00000000000a00"))
    no_i = pyvxlan.VxlanHeader.decode(bytes.fromhex("0000000000000a00"))
    records = [
        (1.0, dgram(A, B, MAC_A, MAC_B)),
        (2.0, dgram(B, A, MAC_B, MAC_A)),
        (3.0, encapsulate(eth(MAC_B, MAC_A), header=reserved, src=A, dst=B)),
        (4.0, encapsulate(eth(MAC_B, MAC_A), header=no_i, src=A, dst=B)),
        (5.0, dgram(C, B, MAC_C, MAC_B, dst_port=8472)),
    ]
    assert [(f.kind, f.frames, f.vtep, f.detail) for f in findings(list(replay(capture(records))))] == [
        (
            FindingKind.RESERVED_BITS,
            (3,),
            B,
            "198.51.100.2 vni 10 drops datagrams from 198.51.100.1: reserved_bits (header 0c00000000000a00)",
        ),
        (
            FindingKind.MISSING_I_FLAG,
            (4,),
            B,
            "198.51.100.1 > 198.51.100.2: I flag clear (header 0000000000000a00); Linux drops it",
        ),
        (
            FindingKind.WRONG_PORT,
            (5,),
            B,
            "198.51.100.3 > 198.51.100.2:8472 vni 10, but 198.51.100.2 listens on port 4789",
        ),
    ]


def test_flood_to_a_vtep_outside_the_vni_flagged() -> None:
    records = [
        (1.0, dgram(A, B, MAC_A, BROADCAST)),
        (1.0, dgram(A, D, MAC_A, BROADCAST)),  # D has no VTEP for VNI 10: it never sends in it
        (2.0, dgram(B, A, MAC_B, MAC_A)),
        (3.0, dgram(A, D, MAC_A, BROADCAST)),
    ]
    (f,) = findings(list(replay(capture(records))))
    assert (f.kind, f.frames, f.count, f.vtep, f.detail) == (
        FindingKind.FLOOD_OUTSIDE_MEMBERSHIP,
        (2, 4),
        2,
        D,
        "198.51.100.1 floods vni 10 to 198.51.100.4, which has no VTEP for vni 10",
    )


def icmp_frag_needed(datagram: bytes, mtu: int) -> bytes:
    """A router's ICMP fragmentation-needed for ``datagram`` (quoting its IP header and 8 bytes)."""
    quoted = datagram[14 : 14 + 28]
    icmp = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quoted
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, bytes([198, 51, 100, 254]), bytes([198, 51, 100, 1])
    )
    return bytes(6) + bytes(6) + b"\x08\x00" + ip + icmp


def test_packet_too_big_when_an_icmp_error_quotes_a_vxlan_datagram() -> None:
    big = encapsulate(eth(MAC_B, MAC_A, 1500), vni=10, src=A, dst=B)
    records = [(1.0, dgram(B, A, MAC_B, MAC_A)), (2.0, big), (2.0001, icmp_frag_needed(big, 1450))]
    (f,) = findings(list(replay(capture(records))))
    assert (f.kind, f.frames, f.vtep, f.detail) == (
        FindingKind.PACKET_TOO_BIG,
        (2, 3),
        A,
        "198.51.100.1 > 198.51.100.2:4789 datagrams of 1536 bytes exceed the path MTU 1450 "
        "(frame 2 is the last one sent before the ICMP error)",
    )


# --- settings and times ---------------------------------------------------------------------------


def test_vtep_spec_parse() -> None:
    spec = VtepSpec.parse(
        "198.51.100.2,vni=10,port=8472,ageing=30,learning=off,group=239.1.1.1,static=02:00:00:00:00:01@198.51.100.3"
    )
    assert spec == VtepSpec(
        B, vni=10, port=8472, ageing=30.0, learning=False, group="239.1.1.1", static=(("02:00:00:00:00:01", C),)
    )
    for text, message in [
        ("198.51.100.2,vni=x", "vni: 'x' is not a number"),
        ("198.51.100.2,learning=maybe", "learning: must be on or off, got 'maybe'"),
        ("198.51.100.2,colour=red", "vtep: unknown option 'colour' (vni, port, ageing, learning, group, static)"),
        ("198.51.100.2,vni", "vtep: 'vni' is not KEY=VALUE"),
        ("nowhere", "address: 'nowhere' is not an IPv4 or IPv6 address"),
        ("198.51.100.2,group=198.51.100.9", "group: 198.51.100.9 is not a multicast address"),
        ("198.51.100.2,ageing=0", "ageing: must be a number of seconds > 0, got 0.0"),
        ("198.51.100.2,static=02:00:00:00:00:01", "static: '02:00:00:00:00:01' is not MAC@DST"),
    ]:
        with pytest.raises(ConfigError) as info:
            VtepSpec.parse(text)
        assert str(info.value) == message


def test_replay_settings_checked() -> None:
    buf = capture([(1.0, dgram(A, B, MAC_A, MAC_B))])
    for kw, message in [
        ({"ports": []}, "ports: must be a non-empty collection of UDP ports, got []"),
        ({"ports": [0]}, "ports: must be in 1..65535, got 0"),
        ({"flap_window": -1}, "flap_window: must be a number of seconds >= 0, got -1"),
        ({"refreshed": 1}, "refreshed: must be True or False, got 1"),
        ({"vteps": ["198.51.100.1"]}, "vteps: must be a sequence of VtepSpec"),
    ]:
        with pytest.raises(ConfigError) as info:
            Replay(buf, **kw)  # type: ignore[arg-type]
        assert str(info.value) == message
    r = Replay(buf)
    list(r.events())
    with pytest.raises(ConfigError, match="^events: a Replay runs once; make a new one to replay again$"):
        r.events()


def test_times() -> None:
    assert format_time(1764237845.1234) == "10:04:05.123"
    assert parse_time("10:04:05.5", 1764237600.0) == 1764237845.5
    assert parse_time("+2.5", 100.0) == 102.5
    assert parse_time("1764237845", None) == 1764237845.0
    with pytest.raises(
        ConfigError, match=r"^at: '25:00:00' is not a time \(HH:MM:SS\[\.fff\], \+SECONDS or SECONDS\)$"
    ):
        parse_time("25:00:00", 0.0)


# --- the command ----------------------------------------------------------------------------------


def write_capture(path: Path, records: list[tuple[float, bytes]]) -> str:
    pcap.write(path, records)
    return str(path)


def test_cli_timeline_findings_and_assumptions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_capture(tmp_path / "c.pcap", [(1.0, dgram(A, B, MAC_A, MAC_B)), (2.0, dgram(B, A, MAC_B, MAC_A))])
    assert main(["replay", path]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "# vtep 198.51.100.1 vni 10 port 4789; assumed: port 4789: the port it sends to; ageing 300 s: Linux's "
        "default; learning on: Linux's default; no static entries",
        "# vtep 198.51.100.2 vni 10 port 4789; assumed: port 4789: the port it sends to; ageing 300 s: Linux's "
        "default; learning on: Linux's default; no static entries",
        "00:00:01.000 198.51.100.2 vni 10 learned 02:00:00:00:00:0a -> 198.51.100.1 [frame 1]",
        "00:00:02.000 198.51.100.1 vni 10 learned 02:00:00:00:00:0b -> 198.51.100.2 [frame 2]",
        "# 2 packets, 2 vteps, 0 findings",
    ]


def test_cli_at_prints_bridge_fdb_show_of_every_vtep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_capture(tmp_path / "c.pcap", [(1.0, dgram(A, B, MAC_A, MAC_B)), (2.0, dgram(B, A, MAC_B, MAC_A))])
    assert (
        main(["replay", path, "--at", "00:00:01.5", "--vtep", "198.51.100.2,static=02:00:00:00:00:42@198.51.100.3"])
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("# vtep")]
    assert lines == [
        "# 00:00:01.500 198.51.100.1 vni 10",
        "# 00:00:01.500 198.51.100.2 vni 10",
        "02:00:00:00:00:42 dev vxlan10 dst 198.51.100.3 self static",
        "02:00:00:00:00:0a dev vxlan10 dst 198.51.100.1 self",
        "# 1 packets, 2 vteps, 0 findings",
    ]


def test_cli_mac_history_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [
        (1.0, dgram(A, B, MAC_M, MAC_B)),
        (1.5, dgram(B, A, MAC_B, MAC_M)),
        (2.0, dgram(C, B, MAC_M, MAC_B)),
        (3.0, dgram(A, B, MAC_M, MAC_B)),
    ]
    path = write_capture(tmp_path / "c.pcap", records)
    assert main(["replay", path, "--mac", "02:00:00:00:00:99", "--json"]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["type"] for o in objects] == ["vtep", "vtep", "vtep", "change", "change", "change", "finding", "totals"]
    assert objects[0] == {
        "type": "vtep",
        "address": A,
        "vni": 10,
        "port": 4789,
        "ageing": 300.0,
        "learning": True,
        "group": None,
        "remotes": [],
        "static": [],
        "assumed": [
            "port 4789: the port it sends to",
            "ageing 300 s: Linux's default",
            "learning on: Linux's default",
            "no static entries",
        ],
    }
    assert objects[4] == {
        "type": "change",
        "time": 2.0,
        "vtep": B,
        "vni": 10,
        "kind": "migrated",
        "mac": MAC_M,
        "dst": C,
        "old_dst": A,
        "frame": 3,
    }
    assert objects[6] == {
        "type": "finding",
        "time": 3.0,
        "kind": "duplicate_mac",
        "frames": [1, 3, 4],
        "count": 1,
        "vni": 10,
        "mac": MAC_M,
        "vtep": None,
        "detail": "vni 10 02:00:00:00:00:99 seen behind 198.51.100.1 and 198.51.100.3 alternately within 10 s",
    }
    assert objects[7] == {"type": "totals", "packets": 4, "findings": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/c.pcap"], "pyvxlan replay: error: /nonexistent/c.pcap: no such file"),
        (["{tmp}"], "pyvxlan replay: error: {tmp}: is a directory"),
        (["{bad}"], "pyvxlan replay: error: {bad}: pcap at offset 0: not a pcap or pcapng file (magic 6e6f7420)"),
        (["{cut}"], "pyvxlan replay: error: {cut}: pcap at offset 24: record of 110 bytes is cut after 50 bytes"),
        (
            ["{good}", "--vtep", "198.51.100.1,vni=x"],
            "pyvxlan replay: error: --vtep '198.51.100.1,vni=x': vni: 'x' is not a number",
        ),
        (
            ["{good}", "--at", "noon"],
            "pyvxlan replay: error: --at 'noon': at: 'noon' is not a time (HH:MM:SS[.fff], +SECONDS or SECONDS)",
        ),
        (["{good}", "--mac", "nope"], "pyvxlan replay: error: --mac 'nope': mac: 'nope' is not a MAC address"),
        (["{good}", "--port", "0"], "pyvxlan replay: error: argument --port: invalid port '0': must be in 1..65535"),
    ],
    ids=["missing", "directory", "not-a-capture", "cut", "vtep", "at", "mac", "port"],
)
def test_cli_bad_input_is_one_line_naming_input_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all, just text")
    good = write_capture(tmp_path / "good.pcap", [(1.0, dgram(A, B, MAC_A, MAC_B))])
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(Path(good).read_bytes()[: 24 + 16 + 50])
    names = {"tmp": str(tmp_path), "bad": str(bad), "good": good, "cut": str(cut)}
    assert main(["replay", *(a.format(**names) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err == message.format(**names) + "\n"
    assert "Errno" not in err


def test_a_caller_file_is_read_twice_and_left_open() -> None:
    buf = capture([(1.0, dgram(A, B, MAC_A, MAC_B))])
    assert [str(e) for e in replay(buf)] == [
        "00:00:01.000 198.51.100.2 vni 10 learned 02:00:00:00:00:0a -> 198.51.100.1 [frame 1]"
    ]
    assert not buf.closed


def test_frame_numbers_count_every_record_as_wireshark_does() -> None:
    """Frames that are not VXLAN (a short ARP, a DNS datagram) still count; VLAN-tagged and IPv6
    datagrams take the general path to the same model."""
    arp = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06" + bytes(28)
    dns = encapsulate(eth(MAC_B, MAC_A), vni=10, src=A, dst=B, dst_port=53)
    records = [
        (1.0, arp),
        (1.1, dns),
        (1.2, dgram(A, B, MAC_A, MAC_B, vlan=7)),
        (1.3, dgram("2001:db8::1", "2001:db8::2", MAC_C, MAC_M)),
        (1.4, dgram(B, A, MAC_B, MAC_A)),
    ]
    r = Replay(capture(records))
    assert [(c.vtep, c.mac, c.frame) for c in changes(list(r.events()))] == [
        (B, MAC_A, 3),
        ("2001:db8::2", MAC_C, 4),
        (A, MAC_B, 5),
    ]
    assert r.stats.packets == 5


def test_the_docs_page_shows_what_the_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/replay.md's first two output blocks are the command's output, line for line."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "replay.md").read_text()
    shown = re.findall(r"^```text\n(.*?)^```", page, re.S | re.M)
    monkeypatch.chdir(tmp_path)

    async def lab() -> None:
        async with open_lab(classic_demo(3)) as lab:
            lab.capture("underlay.pcap")
            await lab.guest("guest1").ping("203.0.113.2")
            await lab.move_guest("guest2", "host3")
            await lab.sleep(1)
            await lab.guest("guest1").ping("203.0.113.2")

    run(lab)
    assert main(["replay", "underlay.pcap"]) == 0
    assert capsys.readouterr().out == shown[0]
    assert main(["replay", "underlay.pcap", "--at", "+0.002"]) == 0
    assert capsys.readouterr().out == shown[1]


def test_cli_a_reader_that_goes_away_ends_replay_quietly(tmp_path: Path) -> None:
    """As decode: `pyvxlan replay x | head` ends with no message and SIGPIPE's status 141."""
    import subprocess
    import sys

    records = [(1.0 + i / 1000, dgram(A, B, MAC_A, MAC_B) if i % 2 else dgram(B, A, MAC_B, MAC_A)) for i in range(2000)]
    path = write_capture(tmp_path / "c.pcap", records)
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pyvxlan"), "replay", "-v", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before anything is read: every write fails
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=60), err) == (141, "")


def _cooked(frame: bytes) -> bytes:
    """The same packet as a Linux cooked (SLL) record: replay's general path reads it."""
    return struct.pack("!HHH8sH", 0, 1, 6, frame[6:12] + bytes(2), int.from_bytes(frame[12:14], "big")) + frame[14:]


_VTEPS = ("198.51.100.1", "198.51.100.2", "198.51.100.3", "239.1.1.1")
_MACS = ("02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c", BROADCAST)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_VTEPS[:3]),
            st.sampled_from(_VTEPS),
            st.sampled_from(_MACS[:3]),
            st.sampled_from(_MACS),
            st.sampled_from((10, 11)),
            st.sampled_from((0x08000000, 0x08000000, 0x0C000000, 0x00000000)),
            st.sampled_from((0, 0, 1)),
            st.sampled_from((4789, 4789, 8472)),
            st.floats(0.0, 400.0),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_fast_and_general_paths_give_the_same_replay(
    steps: list[tuple[str, str, str, str, int, int, int, int, float]],
) -> None:
    """Replay's inline fast path (untagged Ethernet/IPv4) against its general path (the same packets
    as cooked records), on repeated flows whose VNI, flags, reserved bits, port, direction and
    timing change: the same events, findings and frame numbers, every run."""
    records: list[tuple[float, bytes]] = []
    now = 1.0
    for src, dst, smac, dmac, vni, word0, low, port, gap in steps:
        if src == dst:
            continue
        now += gap
        header = pyvxlan.VxlanHeader.from_words(word0, (vni << 8) | low)
        records.append((now, encapsulate(eth(dmac, smac), header=header, src=src, dst=dst, dst_port=port)))
    fast = [str(e) for e in replay(capture(records), ports=(4789, 8472))]
    buf = io.BytesIO()
    pcap.write(buf, [(ts, _cooked(f)) for ts, f in records], linktype=113)
    buf.seek(0)
    assert [str(e) for e in replay(buf, ports=(4789, 8472))] == fast
