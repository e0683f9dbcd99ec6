"""``pyvxlan conform`` against the running kernel: broken models are caught with a minimal
reproduction, the CI run (fixed seeds, over 2,000 steps over every category), the command's exit
statuses and its clean-up on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_conform import NeverMigrates, arp_from, ignores_maxaddress

from pyvxlan import ConfigError, FdbState, Vtep
from pyvxlan.conform import Category, Device, Episode, KernelOracle, ModelOracle, conform, play
from pyvxlan.conform.steps import Datagram, FdbOp, LinkOp

pytestmark = pytest.mark.kernel

PREFIX = "pvh8"
ROOT = Path(__file__).resolve().parents[2]
M1 = "02:00:00:00:42:01"
CLI = (sys.executable, "-c", "import sys; from pyvxlan.cli import main; sys.exit(main())")


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_a_model_that_never_migrates_is_reported_with_three_steps(root: None) -> None:
    """The kernel's vxlan_snoop migrates a learned MAC to a new source address."""
    report = conform(seed=1, steps=300, only=[Category.RX], model=NeverMigrates, prefix=f"{PREFIX}nm")
    assert not report.ok
    finding = report.findings[0]
    d = finding.disagreement
    assert len(d.episode.steps) == 3
    assert [type(s) for s in d.episode.steps] == [LinkOp, Datagram, Datagram]
    assert "fdb" in d.fields
    assert report.kernel_release == os.uname().release
    assert finding.shell[0] == f"ip netns add {PREFIX}nma"
    assert finding.shell[-1].startswith(f"ip netns exec {PREFIX}nmb python3 -c ")
    assert f"{PREFIX}nma" not in _netns()


def test_a_model_that_ignores_maxaddress_is_reported_with_a_few_steps(root: None) -> None:
    """The kernel refuses a new MAC past maxaddress with ENOSPC (vxlan_fdb_create)."""
    report = conform(seed=3, steps=600, only=[Category.CTL], model=ignores_maxaddress, prefix=f"{PREFIX}mx")
    assert not report.ok
    d = report.findings[0].disagreement
    [outcome] = [m for m in d.mismatches if m.field == "outcome"]
    assert (outcome.kernel, outcome.model) == ("ENOSPC", "ok")
    assert len(d.episode.steps) <= d.episode.device.max_entries + 1


@pytest.mark.parametrize("state", [FdbState.STATIC, FdbState.PERMANENT, FdbState.REACHABLE])
def test_vxlan_snoop_compares_remote_ifindex_so_an_entry_with_via_is_another_remote(
    root: None, state: FdbState
) -> None:
    """Found by ``pyvxlan conform --seed 11``: after ``bridge fdb add M dst D via pvh8u static``, a
    datagram from D with source M is dropped by the kernel (vxlan_snoop compares remote_ip and
    remote_ifindex, and the receive ifindex is 0 unless the source is link-local; a static or
    permanent entry is not migrated). A dynamic one "migrates" to the same address and keeps its
    interface (vxlan_snoop rewrites remote_ip only). The model does the same, step for step."""
    device = Device(version=4, mode="remote-dev")
    episode = Episode(
        device,
        (
            LinkOp("up"),
            FdbOp("add", M1, "198.51.100.3", via="pvh8u", state=state),
            Datagram("198.51.100.3", arp_from(M1)),
            Datagram("198.51.100.3", arp_from(M1)),
        ),
    )
    kernel = KernelOracle(f"{PREFIX}sn")
    try:
        found = play(episode, kernel, ModelOracle(Vtep))
    finally:
        kernel.close()
    assert found is None, found and found.mismatches


# The CI run: fixed seeds, every category, over 2,000 steps, well under 5 minutes on 2 cores.
CI_SEEDS = (11, 12)
CI_STEPS = 1000


def test_ci_run_finds_no_disagreement(root: None) -> None:
    """Fixed seeds over every category: the model agrees with the kernel after every step (72 s
    here for 2,000 steps; docs/conformance.md has the figures)."""
    start = time.monotonic()
    findings = []
    steps = comparisons = 0
    for seed in CI_SEEDS:
        report = conform(seed=seed, steps=CI_STEPS, prefix=f"{PREFIX}ci", max_findings=3)
        assert set(report.counts) == {"ctl", "rx", "age", "tx", "proxy", "neigh"}
        steps += report.steps
        comparisons += report.comparisons
        findings += [f.text() for f in report.findings]
    assert time.monotonic() - start < 300
    assert not findings, "\n\n".join(findings)
    assert steps >= 2000 and comparisons == steps


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "conform", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_cli_json_report_and_status_0(root: None) -> None:
    done = _cli("--seed", "5", "--steps", "150", "--only", "ctl", "--json", "--prefix", f"{PREFIX}cj")
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["kernel_release"] == os.uname().release
    assert data["iproute2"].startswith("ip utility, iproute2-")
    assert (data["seed"], data["steps"], data["comparisons"]) == (5, 150, 150)
    assert data["counts"] == {"ctl": {"steps": 150, "comparisons": 150}}
    assert data["disagreements"] == []
    assert not {f"{PREFIX}cja", f"{PREFIX}cjb", f"{PREFIX}cjc"} & _netns()


def test_cli_keep_leaves_the_namespaces(root: None) -> None:
    done = _cli("--steps", "5", "--only", "ctl", "--keep", "--prefix", f"{PREFIX}kp")
    try:
        assert done.returncode == 0, done.stderr
        assert {f"{PREFIX}kpa", f"{PREFIX}kpb", f"{PREFIX}kpc"} <= _netns()
    finally:
        for ns in (f"{PREFIX}kpa", f"{PREFIX}kpb", f"{PREFIX}kpc"):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@pytest.mark.parametrize(
    ("signum", "status", "line"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_cli_cleans_up_on_a_signal(root: None, signum: int, status: int, line: str) -> None:
    prefix = f"{PREFIX}sg{status}"
    proc = subprocess.Popen(
        [*CLI, "conform", "--steps", "100000", "--prefix", prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while f"{prefix}b" not in _netns() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # into the episodes
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status
    assert err.strip().splitlines()[-1] == f"pyvxlan: {line}"
    assert not {f"{prefix}a", f"{prefix}b", f"{prefix}c"} & _netns()


# --- every scenario in docs/ on the simulator and the kernel lab in step --------------------------


def _doc_scenarios() -> list[tuple[str, str, str | None]]:
    """(name, TOML, why the kernel lab cannot run it or None) of each scenario the docs show
    (```toml blocks, and files a python block writes). The simulator-only expectations
    (``expect-counter``, ``expect-event``) are no reason: ``--backend both`` checks them on the
    simulator side and does nothing for them on the kernel side. A step the kernel lab has no
    counterpart for (``link``: the latency, loss, ... of a simulated link) is one, and
    ``--backend both`` refuses such a scenario before it starts: the reason names the step."""
    import tomllib

    from pyvxlan.lab.scenario import check_backend, parse_scenario

    out: list[tuple[str, str, str | None]] = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        written = re.findall(r"write_text\(('''|\"\"\")\n?(.*?)\1\)", text, re.S)  # either quote style
        blocks = re.findall(r"```toml\n(.*?)```", text, re.S) + [body for _, body in written]
        for i, block in enumerate(blocks):
            if "[[steps]]" not in block:
                continue
            why = None
            try:
                check_backend(parse_scenario(tomllib.loads(block)), "kernel", skip_sim_only=True)
            except ConfigError as exc:
                why = f"the kernel lab cannot run it ({exc}), so --backend both refuses it"
            out.append((f"{doc.stem}-{i}", block, why))
    return out


def test_doc_scenarios_with_simulator_only_steps_are_not_skipped() -> None:
    """The docs' counters-and-events scenario (many.toml) is among those run on both backends."""
    [(name, why)] = [(n, why) for n, toml, why in _doc_scenarios() if "# many.toml" in toml]
    assert why is None, f"{name}: {why}"


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.skip(reason=f"{n}: {why}")) if why else n for n, _, why in _doc_scenarios()],
)
def test_doc_scenarios_agree_on_both_backends(root: None, tmp_path: Path, name: str) -> None:
    """``pyvxlan run FILE --backend both`` for every scenario in docs/: no divergence. A
    simulator-only expectation is checked on the simulator and reported as such on the kernel."""
    from pyvxlan.conform.labs import SIM_ONLY_DETAIL, run_both
    from pyvxlan.lab.scenario import SIM_ONLY, load_scenario

    toml = {n: t for n, t, _ in _doc_scenarios()}[name]
    path = tmp_path / f"{name}.toml"
    path.write_text(toml)
    scenario = load_scenario(path)
    sim, kernel, divergence = run_both(scenario)
    assert divergence is None, divergence.text()
    assert [r.passed for r in kernel] == [None if r.step.action in SIM_ONLY else r.passed for r in sim]
    assert [r.detail for r in kernel if r.step.action in SIM_ONLY] == [
        SIM_ONLY_DETAIL for s in scenario.steps if s.action in SIM_ONLY
    ]
    assert len(kernel) == len(scenario.steps)


def test_cli_run_backend_both(root: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``pyvxlan run FILE --backend both``: each side's steps, then no divergence (status 0). How
    the first divergence is named (status 1) is tested without root in tests/test_conform.py
    (test_run_both_compares_after_every_step_and_names_the_first_divergence)."""
    from pyvxlan.cli import main

    # The docs' two-step scenario (vtep-down, then a ping): no move, no simulator-only step.
    agreeing = next(t for _, t, why in _doc_scenarios() if why is None and t.count("[[steps]]") == 2)
    path = tmp_path / "two.toml"
    path.write_text(agreeing)
    assert main(["run", str(path), "--backend", "both"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(", backend both")
    assert [line.split()[0] for line in out[1:5]] == ["sim", "sim", "kernel", "kernel"]
    assert out[-2:] == ["no divergence in 2 steps", "2 steps, 0 failed expectations, 0 divergence"]


def test_cli_run_backend_both_checks_simulator_only_steps_on_the_simulator(
    root: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The docs' many.toml (a ping, then expect-counter and two expect-event): the simulator's
    lines pass or fail as with --backend sim; the kernel's say "simulator only" (no mark)."""
    from pyvxlan.cli import main

    [toml] = [t for _, t, _ in _doc_scenarios() if "# many.toml" in t]
    path = tmp_path / "many.toml"
    path.write_text(toml)
    assert main(["run", str(path), "--backend", "both"]) == 0
    out = capsys.readouterr().out.splitlines()
    sim = [line for line in out if line.startswith("sim ")]
    kernel = [line for line in out if line.startswith("kernel ")]
    assert [line.split()[2] for line in sim] == ["ok"] * 4
    assert sim[1].endswith("2. expect-counter counter=flood_datagrams equals=1: 1 flood_datagrams (expected 1)")
    assert kernel[0].split()[2] == "ok"
    assert [line.split(maxsplit=2)[2] for line in kernel[1:]] == [
        "2. expect-counter counter=flood_datagrams equals=1: simulator only",
        "3. expect-event kind=learned where=host20/vxlan10 detail=02:00:00:00:00:01 equals=1: simulator only",
        "4. expect-event kind=learned at_least=19: simulator only",
    ]
    assert out[-2:] == [
        "no divergence in 4 steps",
        "4 steps, 0 failed expectations, 0 divergence, 3 checked on the simulator only",
    ]
