"""The conformance engine without a kernel: episodes, comparison, shrinking, the report, the CLI's
usage errors, and the quirks registry against docs/kernel-quirks.md. A model stands in for the
kernel (``kernel=ModelOracle(Vtep)``), and deliberately broken models must be caught by it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pyvxlan import ConfigError, FdbState, SendDatagram, Vtep, VtepConfig
from pyvxlan.cli import main
from pyvxlan.conform import (
    QUIRKS,
    Category,
    Device,
    Disagreement,
    Episode,
    ModelOracle,
    Report,
    Snapshot,
    compare,
    conform,
    episodes,
    parse_only,
    play,
    shrink,
)
from pyvxlan.conform.engine import python_script, shell_script
from pyvxlan.conform.steps import DEV_MAC, VNI, Datagram, FdbOp, Frame, LinkOp, NeighOp, Wait
from pyvxlan.core.datagram import ParsedDatagram, parse_datagram
from pyvxlan.wire.packets import arp_frame

DOCS = Path(__file__).resolve().parent.parent / "docs"
M1 = "02:00:00:00:42:01"


class NeverMigrates(Vtep):
    """A broken model: a learned MAC seen from another address stays where it was (the frame is
    dropped), where Linux's vxlan_snoop migrates it."""

    def receive(
        self, payload: bytes | bytearray | memoryview | ParsedDatagram, src: str, src_port: int, now: float, **kw: Any
    ) -> None:
        smac = parse_datagram(payload).src_mac.hex(":")
        for entry in self.fdb_dump():
            if entry.mac == smac and entry.state is FdbState.REACHABLE and entry.dst != src:
                return
        super().receive(payload, src, src_port, now, **kw)


def ignores_maxaddress(config: VtepConfig) -> Vtep:
    """A broken model: ``maxaddress`` is never enforced."""
    import dataclasses

    return Vtep(dataclasses.replace(config, max_entries=0))


def arp_from(mac: str, vni: int = VNI) -> bytes:
    src = bytes.fromhex(mac.replace(":", ""))
    header = bytes((8, 0, 0, 0)) + vni.to_bytes(3, "big") + b"\x00"
    return header + b"\xff" * 6 + src + bytes.fromhex("08060001080006040001") + src + bytes(4) + bytes(6) + bytes(4)


def test_episodes_are_the_seeds_and_add_up_to_the_steps() -> None:
    cats = frozenset({Category.CTL, Category.RX, Category.AGE})
    first, again = episodes(7, 700, cats), episodes(7, 700, cats)
    assert first == again
    assert sum(len(e.steps) for e in first) == 700
    assert all(e.steps[0] == LinkOp("up") for e in first)
    ages = [e for e in first if e.categories <= {Category.AGE, Category.RX, Category.CTL} and e.device.ageing < 60]
    # Every sixth episode is an age episode: ageing of seconds, no maxaddress, a final sweep wait.
    assert len(ages) == 1
    assert ages[0].device.max_entries == 0
    assert ages[0].steps[-1] == Wait(10.5 + ages[0].device.ageing)
    assert episodes(8, 700, cats) != first


def test_the_model_agrees_with_itself_over_every_category() -> None:
    report = conform(seed=3, steps=600, kernel=ModelOracle(Vtep))
    assert report.ok, report.text()
    assert report.steps == report.comparisons == 600
    assert set(report.counts) == {"ctl", "rx", "age", "tx", "proxy", "neigh"}


def test_a_model_that_never_migrates_is_caught_and_shrunk_to_three_steps() -> None:
    """Linux's vxlan_snoop migrates a learned MAC to the new source address; this model does not."""
    report = conform(seed=1, steps=400, only=[Category.RX], model=NeverMigrates, kernel=ModelOracle(Vtep))
    assert not report.ok
    finding = report.findings[0]
    d = finding.disagreement
    # up, a datagram that learns the MAC, one from another address that should migrate it.
    assert len(d.episode.steps) == 3
    assert isinstance(d.episode.steps[1], Datagram) and isinstance(d.episode.steps[2], Datagram)
    assert d.episode.steps[1].src != d.episode.steps[2].src
    assert "fdb" in d.fields
    assert finding.original_steps > 3
    # Every finding is shrunk, at least to the steps up to its disagreement.
    assert all(len(f.disagreement.episode.steps) == f.disagreement.index + 1 for f in report.findings)
    assert [len(f.disagreement.episode.steps) for f in report.findings] == [3, 3, 3, 3]
    assert finding.python[-1].startswith("vtep.receive(bytes.fromhex(")


def test_a_model_that_ignores_maxaddress_is_caught_and_shrunk() -> None:
    report = conform(seed=3, steps=1000, only=[Category.CTL], model=ignores_maxaddress, kernel=ModelOracle(Vtep))
    assert not report.ok
    d = report.findings[0].disagreement
    assert d.episode.device.max_entries in (3, 5)
    assert "outcome" in d.fields
    [outcome] = [m for m in d.mismatches if m.field == "outcome"]
    assert (outcome.kernel, outcome.model) == ("ENOSPC", "ok")
    # up, then one new MAC more than maxaddress leaves room for (the default entry counts too).
    assert len(d.episode.steps) <= d.episode.device.max_entries + 1


def test_shrink_keeps_a_sequence_that_still_disagrees_on_the_same_field() -> None:
    """ddmin with a fake replay: the sides disagree once steps 3 and 11 have both run."""
    device = Device()
    steps = tuple(Wait(float(i)) for i in range(20))

    def replay(episode: Episode) -> Disagreement | None:
        seen = [s.seconds for s in episode.steps if isinstance(s, Wait)]
        if 3.0 in seen and 11.0 in seen:
            index = max(seen.index(3.0), seen.index(11.0))
            snap = Snapshot(True, None, None, True, 300, (), ())
            from pyvxlan.conform import Mismatch

            return Disagreement(episode, index, (Mismatch("fdb", [], [1]),), snap, snap)
        return None

    found = replay(Episode(device, steps))
    assert found is not None and found.index == 11
    small = shrink(found, replay)
    assert small.episode.steps == (Wait(3.0), Wait(11.0))
    assert small.index == 1


def _snap(**changes: object) -> Snapshot:
    values: dict[str, object] = {
        "up": True,
        "remote": "198.51.100.2",
        "group": None,
        "learning": True,
        "ageing": 300,
        "rows": (),
        "neighbours": (),
    }
    values.update(changes)
    return Snapshot(**values)  # type: ignore[arg-type]


ROW = (M1, "198.51.100.3", None, None, None, "", False, False)


def test_compare_names_each_field_that_differs() -> None:
    k = _snap(rows=(ROW,), counters=(("rx_packets", 2), ("rx_bytes", 10)))
    m = _snap(learning=False, counters=(("rx_packets", 1), ("rx_bytes", 10)))
    got = compare(k, m, "EEXIST", "ok", age=False)
    assert [(x.field, x.kernel, x.model) for x in got] == [
        ("outcome", "EEXIST", "ok"),
        ("learning", True, False),
        ("fdb", [ROW], []),
        ("counters", {"rx_packets": 2}, {"rx_packets": 1}),
    ]


def test_compare_lets_an_expired_row_linger_in_the_kernel_until_vxlan_cleanup() -> None:
    """vxlan_cleanup runs at most every FDB_AGE_INTERVAL (10 s): a row the model aged out may
    still be in the kernel; a row the model still has may not be missing from it."""
    assert compare(_snap(rows=(ROW,)), _snap(maybe=(ROW,)), "ok", "ok", age=True) == ()
    [miss] = compare(_snap(), _snap(rows=(ROW,), maybe=(ROW,)), "ok", "ok", age=True)
    assert (miss.field, miss.kernel, miss.model) == ("fdb", [], [ROW])


def test_compare_takes_updated_within_one_second() -> None:
    k = _snap(updated=((M1, "198.51.100.3", 3),))
    assert compare(k, _snap(updated=((M1, "198.51.100.3", 2),)), "ok", "ok", age=True) == ()
    [far] = compare(k, _snap(updated=((M1, "198.51.100.3", 1),)), "ok", "ok", age=True)
    assert (far.field, far.kernel, far.model) == ("updated", {f"{M1} 198.51.100.3": 3}, {f"{M1} 198.51.100.3": 1})


def test_play_counts_steps_and_comparisons_per_category() -> None:
    device = Device()
    episode = Episode(
        device,
        (
            LinkOp("up"),
            FdbOp("add", M1, "198.51.100.3", state=FdbState.STATIC),
            Datagram("198.51.100.4", arp_from("02:00:00:00:42:02")),
        ),
    )
    counts: dict[Category, list[int]] = {}
    assert play(episode, ModelOracle(Vtep), ModelOracle(Vtep), counts) is None
    assert counts == {Category.CTL: [2, 2], Category.RX: [1, 1]}


def test_reproductions_are_the_commands_and_calls() -> None:
    device = Device(version=4, mode="remote", dst_port=8472, max_entries=3)
    episode = Episode(
        device,
        (
            LinkOp("up"),
            FdbOp("replace", "00:00:00:00:00:00", "198.51.100.3", port=5555, state=FdbState.REACHABLE, router=True),
            Datagram("198.51.100.3", arp_from(M1)),
            Wait(1.5),
        ),
    )
    shell = shell_script(episode, "NSA", "NSB", with_rig=False)
    assert shell == [
        f"ip -n NSA link add pvh8vx address {DEV_MAC} type vxlan id {VNI} local 198.51.100.1 remote 198.51.100.2 "
        "dstport 8472 maxaddress 3 ageing 300",
        "ip -n NSA link set pvh8vx addrgenmode none",
        "ip -n NSA link set pvh8vx master pvh8br",
        "ip -n NSA link set pvh8vx up",
        "bridge -n NSA fdb replace 00:00:00:00:00:00 dev pvh8vx dst 198.51.100.3 port 5555 self router dynamic",
        "ip netns exec NSB python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        's.bind(("198.51.100.3", 0)); '
        f's.sendto(bytes.fromhex("{arp_from(M1).hex()}"), ("198.51.100.1", 8472))\'',
        "sleep 1.5",
    ]
    assert python_script(episode) == [
        "from pyvxlan import FdbState, Vtep, VtepConfig",
        "vtep = Vtep(VtepConfig(vni=4242, local='198.51.100.1', remote='198.51.100.2', dst_port=8472, "
        f"max_entries=3, mac='{DEV_MAC}'))",
        "vtep.up()",
        "vtep.fdb_replace('00:00:00:00:00:00', '198.51.100.3', port=5555, state=FdbState.REACHABLE, router=True)",
        f"vtep.receive(bytes.fromhex('{arp_from(M1).hex()}'), '198.51.100.3', 0, now=0.000)",
        "vtep.handle_timer(1.500)",
    ]


def test_the_python_reproduction_runs() -> None:
    report = conform(seed=1, steps=400, only=[Category.RX], model=NeverMigrates, kernel=ModelOracle(Vtep))
    namespace: dict[str, object] = {}
    exec("\n".join(report.findings[0].python), namespace)
    vtep = namespace["vtep"]
    assert isinstance(vtep, Vtep)


def test_report_json_holds_what_the_issue_asks() -> None:
    report = conform(seed=1, steps=400, only=[Category.RX], model=NeverMigrates, kernel=ModelOracle(Vtep))
    data = json.loads(report.json())
    assert set(data) == {
        "kernel_release",
        "iproute2",
        "seed",
        "categories",
        "counts",
        "steps",
        "comparisons",
        "disagreements",
        "quirks",
        "seconds",
    }
    assert data["seed"] == 1 and data["steps"] == sum(c["steps"] for c in data["counts"].values())
    first = data["disagreements"][0]
    assert set(first) == {"device", "steps", "original_steps", "step", "mismatches", "shell", "python"}
    assert first["mismatches"][0]["field"] in ("fdb", "counters")
    assert len(data["quirks"]) == len(QUIRKS)
    text = report.text()
    assert "kernel (expected):" in text and "model  (actual):" in text
    assert "known kernel quirks the model copies (20):" in text


def test_parse_only() -> None:
    assert parse_only("ctl, rx") == frozenset({Category.CTL, Category.RX})
    with pytest.raises(ConfigError, match=r"^only: unknown category 'txx' \(known: ctl,rx,age,tx,proxy,neigh\)$"):
        parse_only("ctl,txx")
    assert parse_only("proxy,neigh,tx,age") == frozenset({Category.PROXY, Category.NEIGH, Category.TX, Category.AGE})
    with pytest.raises(ConfigError, match=r"^only: names no category$"):
        parse_only(",")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--only", "nope"],
            "pyvxlan conform: error: --only: unknown category 'nope' (known: ctl,rx,age,tx,proxy,neigh)",
        ),
        (["--steps", "0"], "pyvxlan conform: error: argument --steps: invalid count '0': must be at least 1"),
        (["--seed", "x"], "pyvxlan conform: error: argument --seed: invalid seed 'x': not a number"),
        (
            ["--prefix", "a b"],
            "pyvxlan conform: error: argument --prefix: invalid prefix 'a b': letters, digits, - and _ (at most 40)",
        ),
    ],
)
def test_cli_usage_errors_are_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conform", *argv]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_cli_without_privilege_is_status_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert main(["conform", "--steps", "5"]) == 2
    assert (
        capsys.readouterr().err == "pyvxlan: error: pyvxlan conform needs root (network namespaces and vxlan devices)\n"
    )


def _doc_functions() -> list[str]:
    text = (DOCS / "kernel-quirks.md").read_text()
    out = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| quirk"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        assert len(cells) == 3, f"a quirks table row with {len(cells)} cells: {line[:80]}"
        out.append(cells[1])
    return out


def test_the_quirks_page_shows_the_registry() -> None:
    """docs/kernel-quirks.md's tables list exactly the registry's quirks, by kernel function, in order."""
    assert _doc_functions() == [q.kernel_function for q in QUIRKS]
    assert len({q.name for q in QUIRKS}) == len(QUIRKS)


def test_pyvxlan_testing_exports_conform_for_property_tests() -> None:
    """Other projects hold their own model against the kernel through pyvxlan.testing."""
    from pyvxlan import testing

    assert testing.conform is conform
    report = testing.conform(seed=4, steps=200, only=[Category.RX], model=NeverMigrates, kernel=ModelOracle(Vtep))
    assert isinstance(report, testing.ConformReport)
    assert not report.ok


@pytest.mark.parametrize(("broken", "status"), [(False, 0), (True, 1)])
def test_cli_status_is_1_on_a_disagreement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], broken: bool, status: int
) -> None:
    import pyvxlan.conform

    def fake(**kw: Any) -> Report:
        kw.pop("keep")
        kw.pop("prefix")
        return conform(**kw, kernel=ModelOracle(Vtep), model=NeverMigrates if broken else Vtep)

    monkeypatch.setattr(pyvxlan.conform, "conform", fake)
    assert main(["conform", "--seed", "1", "--steps", "300", "--only", "rx"]) == status
    out = capsys.readouterr().out
    assert out.startswith("kernel (a model), (none), seed 1\n")
    found = int(re.search(r"^  (\d+) disagreement\(s\) in ", out, re.M).group(1))  # type: ignore[union-attr]
    assert (found > 0) is broken


class NoReplication(Vtep):
    """A broken model: a frame goes to the first remote of its entry only (no head-end replication)."""

    def take_outputs(self) -> list[Any]:
        out = super().take_outputs()
        sends = [o for o in out if isinstance(o, SendDatagram)]
        return [o for o in out if not isinstance(o, SendDatagram)] + sends[:1]


def test_a_model_without_head_end_replication_is_caught_on_tx() -> None:
    report = conform(seed=5, steps=600, only=[Category.CTL, Category.TX], model=NoReplication, kernel=ModelOracle(Vtep))
    assert not report.ok
    d = report.findings[0].disagreement
    assert "sent" in d.fields
    [sent] = [m for m in d.mismatches if m.field == "sent"]
    assert len(sent.kernel) > len(sent.model) == 1
    assert isinstance(d.step, Frame)
    assert len(d.episode.steps) <= 4  # up, a second remote for the MAC (or all-zeros), the frame


def test_a_model_without_proxy_arp_is_caught_on_proxy() -> None:
    """Linux's arp_reduce answers an ARP request for a neighbour of a proxy device."""
    import dataclasses

    def no_proxy(config: VtepConfig) -> Vtep:
        return Vtep(dataclasses.replace(config, proxy=False))

    report = conform(seed=1, steps=400, only=[Category.PROXY], model=no_proxy, kernel=ModelOracle(Vtep))
    assert not report.ok
    d = report.findings[0].disagreement
    # A proxy device keeps every ARP request to itself (arp_reduce), answered or not: the model
    # without proxy floods it to the remotes instead.
    [sent] = [m for m in d.mismatches if m.field == "sent"]
    assert sent.kernel == [] and len(sent.model) == 1
    assert d.episode.device.proxy
    assert len(d.episode.steps) == 2  # up, the request
    assert isinstance(d.step, Frame) and d.step.category is Category.PROXY
    # A request for a neighbour: the kernel's side answers it, byte for byte as arp_reduce builds it.
    request = arp_frame(1, bytes.fromhex("020000004301"), bytes((203, 0, 113, 1)), bytes((203, 0, 113, 5)))
    episode = Episode(d.episode.device, (LinkOp("up"), NeighOp("add", "203.0.113.5", M1), Frame(request)))
    found = play(episode, ModelOracle(Vtep), ModelOracle(no_proxy))
    assert found is not None and found.index == 2
    [replies] = [m for m in found.mismatches if m.field == "replies"]
    # arp_reduce's reply is not padded to 60 bytes: the 42 of an Ethernet ARP packet.
    reply = arp_frame(
        2,
        bytes.fromhex(M1.replace(":", "")),
        bytes((203, 0, 113, 5)),
        bytes((203, 0, 113, 1)),
        dst_mac=bytes.fromhex("020000004301"),
        target_mac=bytes.fromhex("020000004301"),
    )
    assert replies.kernel == [reply[:42].hex()]
    assert replies.model == []


# --- run --backend both: the engine with the simulator on both sides ------------------------------

TWO = """
mode = "multicast"
[underlay]
subnet = "198.51.100.0/24"
[[hosts]]
name = "host1"
address = "198.51.100.1"
devices = [{ vni = 10, group = "239.1.1.1" }]
[[hosts]]
name = "host2"
address = "198.51.100.2"
devices = [{ vni = 10, group = "239.1.1.1" }]
[[guests]]
name = "a"
host = "host1"
vni = 10
mac = "02:00:00:00:00:01"
ip = "203.0.113.1/24"
[[guests]]
name = "b"
host = "host2"
vni = 10
mac = "02:00:00:00:00:02"
ip = "203.0.113.2/24"
[[steps]]
action = "ping"
from = "a"
to = "b"
count = 2
expect = "all"
[[steps]]
action = "expect-fdb"
host = "host1"
vni = 10
mac = "02:00:00:00:00:02"
dst = "198.51.100.2"
"""


def _sim_other(learning: bool) -> Any:
    import dataclasses
    from contextlib import asynccontextmanager

    from pyvxlan.sim import open_lab

    @asynccontextmanager
    async def opener(topology: Any) -> Any:
        hosts = [
            dataclasses.replace(h, devices=tuple(dataclasses.replace(d, learning=learning) for d in h.devices))
            if h.name == "host1"
            else h
            for h in topology.hosts
        ]
        async with open_lab(dataclasses.replace(topology, hosts=tuple(hosts))) as lab:
            yield lab

    return opener


@pytest.mark.parametrize("learning", [True, False])
def test_run_both_compares_after_every_step_and_names_the_first_divergence(tmp_path: Path, learning: bool) -> None:
    import trio.testing

    from pyvxlan.conform.labs import run_both
    from pyvxlan.lab.scenario import load_scenario

    path = tmp_path / "two.toml"
    path.write_text(TWO)
    scenario = load_scenario(path)
    seen: list[tuple[str, int]] = []
    sim, other, divergence = run_both(
        scenario,
        report=lambda side, r: seen.append((side, r.index)),
        other=_sim_other(learning),
        other_clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert [r.passed for r in sim] == [True, True]
    if learning:
        assert divergence is None
        assert seen == [("sim", 0), ("sim", 1), ("kernel", 0), ("kernel", 1)]
        return
    # host1 without learning: its table lacks b's MAC after the ping; the run stops there.
    assert divergence is not None
    assert (divergence.index, divergence.field) == (0, "fdb of host1 vni 10")
    assert ("02:00:00:00:00:02", "198.51.100.2", None, None, None, "", False, False) in divergence.sim
    assert all(row[0] != "02:00:00:00:00:02" for row in divergence.kernel)
    assert len(other) == 1
    assert divergence.text().startswith(
        "first divergence after step 1 (ping from=a to=b count=2 expect=all), fdb of host1 vni 10:\n  sim:    ["
    )


class NeverAges(Vtep):
    """A broken model: learned entries never expire (Linux's vxlan_cleanup removes them)."""

    def handle_timer(self, now: float) -> None:
        self._clock(now)


def test_a_model_that_never_ages_is_caught_on_age() -> None:
    report = conform(seed=21, steps=64, only=[Category.AGE], model=NeverAges, kernel=ModelOracle(Vtep))
    assert not report.ok
    d = report.findings[0].disagreement
    assert "fdb" in d.fields
    [fdb] = [m for m in d.mismatches if m.field == "fdb"]
    assert len(fdb.model) > len(fdb.kernel)
    assert isinstance(d.step, Wait)
    # up, a datagram that learns, waits past the ageing time (here an ageing change first).
    kinds = [type(s) for s in d.episode.steps]
    assert len(kinds) <= 4 and kinds[0] is LinkOp and Datagram in kinds


SIM_ONLY_STEPS = """
[[steps]]
action = "expect-counter"
counter = "flood_datagrams"
equals = 1
[[steps]]
action = "expect-event"
kind = "learned"
where = "host2/vxlan10"
detail = "02:00:00:00:00:01"
equals = 1
[[steps]]
action = "expect-counter"
counter = "learned"
equals = 99
[[steps]]
action = "ping"
from = "b"
to = "a"
count = 1
expect = "all"
"""


def test_run_both_checks_simulator_only_steps_on_the_simulator_and_reports_them_on_the_other(tmp_path: Path) -> None:
    """expect-counter and expect-event read the simulator's own totals and events: the simulator
    side checks them (one holds, one fails here), the other side does nothing and says
    "simulator only" (neither passed nor failed), the comparison after each still finds the labs
    alike, and the run goes on to the end."""
    import trio.testing

    from pyvxlan.conform.labs import SIM_ONLY_DETAIL, run_both
    from pyvxlan.lab.scenario import load_scenario

    path = tmp_path / "counters.toml"
    path.write_text(TWO + SIM_ONLY_STEPS)
    seen: list[tuple[str, int, bool | None]] = []
    sim, other, divergence = run_both(
        load_scenario(path),
        report=lambda side, r: seen.append((side, r.index, r.passed)),
        other=_sim_other(True),
        other_clock=trio.testing.MockClock(autojump_threshold=0),
    )
    assert divergence is None, divergence.text()
    assert [r.passed for r in sim] == [True, True, True, True, False, True]
    assert sim[2].detail == "1 flood_datagrams (expected 1)"
    assert sim[3].detail == "1 learned events (expected 1)"
    assert sim[4].detail == "2 learned (expected 99)"  # each VTEP learned the other guest
    assert [r.passed for r in other] == [True, True, None, None, None, True]
    assert [r.detail for r in other[2:5]] == [SIM_ONLY_DETAIL] * 3 == ["simulator only"] * 3
    assert seen == [("sim", i, r.passed) for i, r in enumerate(sim)] + [
        ("kernel", i, r.passed) for i, r in enumerate(other)
    ]


def test_run_both_still_compares_the_labs_after_a_simulator_only_step(tmp_path: Path) -> None:
    """The step does nothing on the other side, but the state after it is compared: a lab that
    differs from the start (here a static entry the simulator lacks) diverges at that step."""
    from contextlib import asynccontextmanager

    import trio.testing

    from pyvxlan.conform.labs import run_both
    from pyvxlan.lab.scenario import load_scenario
    from pyvxlan.sim import open_lab

    @asynccontextmanager
    async def with_an_entry(topology: Any) -> Any:
        async with open_lab(topology) as lab:
            await lab.vtep("host1", 10).fdb_add("02:00:00:00:00:09", "198.51.100.9")
            yield lab

    path = tmp_path / "counter-first.toml"
    topology, steps = TWO.split("[[steps]]", 1)
    path.write_text(topology + '[[steps]]\naction = "expect-counter"\ncounter = "flood_datagrams"\nequals = 1\n')
    scenario = load_scenario(path)
    assert scenario.steps[0].action == "expect-counter"
    sim, other, divergence = run_both(
        scenario, other=with_an_entry, other_clock=trio.testing.MockClock(autojump_threshold=0)
    )
    assert divergence is not None
    assert (divergence.index, divergence.field) == (0, "fdb of host1 vni 10")
    assert len(other) == 1 and other[0].passed is None
    assert sim[0].passed is False  # nothing sent yet: 0 flood_datagrams, expected 1


def test_run_both_refuses_steps_the_kernel_lab_cannot_do_before_anything_runs(tmp_path: Path) -> None:
    """``link`` changes a simulated link's latency or loss: the kernel lab has no such links, so
    the whole run is refused up front, naming the step (the CLI prints it as a bad file, status 2)."""
    from pyvxlan.conform.labs import run_both
    from pyvxlan.lab.scenario import load_scenario

    path = tmp_path / "link.toml"
    path.write_text(TWO + '[[steps]]\naction = "link"\nhost = "host1"\nloss = 0.5\n')
    seen: list[str] = []
    with pytest.raises(ConfigError, match=r"^step 3\.action: link is not supported by the kernel backend$"):
        run_both(load_scenario(path), report=lambda side, r: seen.append(side))
    assert seen == []


@pytest.mark.parametrize("option", ["--json", "--events"])
def test_run_backend_both_refuses_per_lab_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    path = tmp_path / "two.toml"
    path.write_text(TWO)
    assert main(["run", str(path), "--backend", "both", option]) == 2
    assert capsys.readouterr().err == (
        f"pyvxlan: error: --backend both and {option} cannot be used together: it compares two labs in step\n"
    )
