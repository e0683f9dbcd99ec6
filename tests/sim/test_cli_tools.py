"""Issue 13: demo and run's machine-readable output, refused option pairs, large scenario files,
counter and event expectations, progress on a terminal, pictures, packaging and a quiet Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import pyvxlan
from pyvxlan.cli import main

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

SCENARIO = """\
[underlay]
subnet = "198.51.100.0/24"

[[hosts]]
name = "host{n}"
address = "198.51.100.{n}"
devices = [{ vni = 10, group = "239.1.1.1" }]
count = 12

[[guests]]
name = "g{n}"
host = "host{n}"
vni = 10
mac = "02:00:00:00:00:{n:02x}"
ip = "203.0.113.{n}/24"
count = 12

[[steps]]
action = "ping"
from = "g1"
to = "g12"
count = 2
expect = "all"

[[steps]]
action = "expect-fdb"
host = "host1"
vni = 10
mac = "02:00:00:00:00:0c"
dst = "198.51.100.12"

[[steps]]
action = "expect-counter"
counter = "learned"
equals = 12

[[steps]]
action = "expect-event"
kind = "learned"
where = "host12/vxlan10"
detail = "02:00:00:00:00:01"
equals = 1
"""


def _write(tmp_path: Path, text: str = SCENARIO, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- point 1: JSON, pcap and every event ---------------------------------------------------------


def test_run_json_one_object_per_step_and_a_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _write(tmp_path)
    assert main(["run", str(path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["type"], o.get("step"), o.get("passed")) for o in lines] == [
        ("step", 1, True),
        ("step", 2, True),
        ("step", 3, True),
        ("step", 4, True),
        ("summary", None, None),
    ]
    assert lines[0]["args"] == {"from": "g1", "to": "g12", "count": 2, "expect": "all"}
    assert lines[1]["fdb"] == [
        {
            "mac": "02:00:00:00:00:0c",
            "ifname": "vxlan10",
            "dst": "198.51.100.12",
            "flags": ["self"],
            "state": "",
        }
    ]
    summary = lines[-1]
    assert {k: summary[k] for k in ("steps", "expectations", "failed", "ok", "backend", "seed")} == {
        "steps": 4,
        "expectations": 4,
        "failed": 0,
        "ok": True,
        "backend": "sim",
        "seed": 0,
    }
    assert summary["stats"]["learned"] == 12  # the first ARP request's flood taught every VTEP


def test_run_pcap_writes_the_underlay(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path, pcap = _write(tmp_path), tmp_path / "u.pcap"
    assert main(["run", str(path), "--pcap", str(pcap)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"underlay capture: {pcap}"
    data = pcap.read_bytes()
    assert data[:4] == bytes.fromhex("d4c3b2a1") and len(data) > 24 + 16 * 8


def test_run_events_prints_every_event_past_the_kept_window(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator keeps only the latest KEPT_EVENTS events unless asked: --events asks."""
    import pyvxlan.sim

    path = _write(tmp_path)
    assert main(["run", str(path), "--events"]) == 0
    full = capsys.readouterr().out
    monkeypatch.setattr(pyvxlan.sim, "KEPT_EVENTS", 3)
    assert main(["run", str(path), "--events"]) == 0
    assert capsys.readouterr().out == full
    events = full.split("events:\n", 1)[1].splitlines()[:-1]
    assert len(events) > 3
    assert sum(" joined " in e for e in events) == 12  # every host's join, the run's first events


# --- point 2: options that cannot work together --------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["demo", "--compare", "--pcap", "x.pcap"],
            "--compare and --pcap cannot be used together: --compare runs three labs; capture one demo with --mode instead",
        ),
        (
            ["demo", "--compare", "--mode", "unicast"],
            "--compare and --mode cannot be used together: --compare runs every mode",
        ),
        (
            ["demo", "--print-commands", "--compare"],
            "--compare and --print-commands cannot be used together: --print-commands prints one lab's commands and runs nothing",
        ),
        (
            ["demo", "--compare", "--backend", "kernel"],
            "--compare and --backend kernel cannot be used together: --compare runs in the simulator only",
        ),
        (
            ["demo", "--print-commands", "--json"],
            "--print-commands and --json cannot be used together: --print-commands prints shell commands, not JSON",
        ),
        (
            ["demo", "--print-commands", "--seed", "3"],
            "--print-commands and --seed cannot be used together: --print-commands runs nothing to seed",
        ),
        (
            ["demo", "--backend", "kernel", "--seed", "3"],
            "--backend kernel and --seed cannot be used together: the kernel backend has no seed: its timing is the machine's",
        ),
        (["demo", "--plot", "x.svg"], "--plot charts the figures of --compare: give both"),
        (
            ["run", "s.toml", "--backend", "kernel", "--events"],
            "--backend kernel and --events cannot be used together: the kernel backend keeps no event log (watch it with ip monitor)",
        ),
        (["draw", "--demo", "s.toml", "-o", "x.svg"], "draw: give either FILE.toml or --demo"),
    ],
)
def test_options_that_cannot_work_together_are_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"pyvxlan: error: {error}\n")


# --- point 3: many hosts, counters and events, step numbers --------------------------------------


def test_count_form_makes_many_hosts_and_guests(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pyvxlan.lab.topology import load_topology

    topo = load_topology(_write(tmp_path))
    assert [h.name for h in topo.hosts] == [f"host{n}" for n in range(1, 13)]
    assert (topo.hosts[11].address, topo.guests[11].mac, topo.guests[11].ip) == (
        "198.51.100.12",
        "02:00:00:00:00:0c",
        "203.0.113.12/24",
    )
    ranged = SCENARIO.replace("count = 12\n", "count = 3\nfirst = 10\n")
    topo = load_topology(_write(tmp_path, ranged, "r.toml"))
    assert [g.name for g in topo.guests] == ["g10", "g11", "g12"]


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("count = 12\n", "count = 300\n", "hosts[0](n=256).address: '198.51.100.256' is not an IPv4 or IPv6 address"),
        ("count = 12\n", "count = 0\n", "hosts[0].count: must be an integer 1..65536, got 0"),
        ("count = 12\n", "count = 5000\n", "hosts[0].count: must be an integer 1..4096, got 5000"),
        ('name = "host{n}"\n', 'name = "host{n}"\nfirst = 2\ncount = 1\n', "hosts[0].count: unknown key"),
    ],
)
def test_count_form_errors_name_the_generated_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, error: str
) -> None:
    path = _write(tmp_path, SCENARIO.replace(old, new, 1))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    if error.endswith("unknown key"):  # a table cannot hold count twice: TOML itself refuses
        assert err.startswith(f"pyvxlan: error: {path}: (syntax): ")
    else:
        assert err == f"pyvxlan: error: {path}: {error}\n"


def test_counter_and_event_expectations_that_fail_say_what_was_seen(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = SCENARIO.replace("equals = 12", "at_most = 1").replace("equals = 1\n", "at_least = 2\n")
    assert main(["run", str(_write(tmp_path, text))]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[3].endswith("FAIL   3. expect-counter counter=learned at_most=1: 12 learned (expected at most 1)")
    assert out[4].endswith(
        "FAIL   4. expect-event kind=learned where=host12/vxlan10 detail=02:00:00:00:00:01 at_least=2: "
        "1 learned events (expected at least 2)"
    )
    assert out[-1] == "4 steps, 4 expectations, 2 failed"


def test_step_numbers_in_errors_count_as_the_report_does(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The report prints step 3 as "3."; an error in that step says "step 3"."""
    path = _write(tmp_path, SCENARIO.replace('counter = "learned"', 'counter = "lerned"'))
    assert main(["run", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"pyvxlan: error: {path}: step 3.counter: must be one of datagrams,")


def test_the_kernel_backend_refuses_counter_expectations_before_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from pyvxlan.lab.scenario import check_backend, load_scenario

    with pytest.raises(pyvxlan.ConfigError) as exc:
        check_backend(load_scenario(_write(tmp_path)), "kernel")
    assert str(exc.value) == "step 3.action: expect-counter is not supported by the kernel backend"


def test_the_count_form_in_docs_runs_as_documented(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    toml = doc.split("```toml\n# many.toml", 1)[1].split("```", 1)[0]
    expected = doc.split("$ pyvxlan run many.toml\n", 1)[1].split("```", 1)[0].splitlines()
    path = tmp_path / "many.toml"
    path.write_text("# many.toml" + toml)
    assert main(["run", str(path)]) == 0
    assert capsys.readouterr().out.replace(str(path), "many.toml").splitlines() == expected


# --- point 4: progress on a terminal only --------------------------------------------------------


def _run_with_stderr_on_a_pty(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    seen = bytearray()
    # Read the terminal while the child runs: once its end closes, Linux may drop what is unread.
    reader = threading.Thread(target=_drain, args=(master, seen))
    reader.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    status = proc.wait(timeout=60)
    reader.join(timeout=10)
    os.close(master)
    return status, out, bytes(seen)


def _drain(fd: int, into: bytearray) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 10)
        if not ready:
            return
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed its end
            return
        if not chunk:
            return
        into += chunk


def test_progress_on_a_terminal_only_and_results_unchanged(tmp_path: Path) -> None:
    text = SCENARIO.replace("count = 2\n", "count = 400\ninterval = 0.01\n", 1)
    path = _write(tmp_path, text)
    env = dict(os.environ, PYVXLAN_PROGRESS_AFTER="0")
    argv = [PY, "-m", "pyvxlan", "run", str(path), "--events"]
    status, out, progress = _run_with_stderr_on_a_pty(argv, env)
    piped = subprocess.run(argv, check=False, capture_output=True, env=env, cwd=ROOT, timeout=60)
    assert (status, piped.returncode) == (0, 0)
    assert out == piped.stdout  # same results and events, byte for byte
    assert piped.stderr == b""  # not a terminal: no progress
    shown = progress.decode()
    assert re.search(r"\[1/4\] [0-9]+\.[0-9]{3}s virtual, [0-9]+ deliveries: ping from=g1 to=g12", shown), shown
    assert shown.endswith("\r\x1b[K")  # erased at the end


def test_demo_progress_on_a_terminal_only_and_results_unchanged() -> None:
    env = dict(os.environ, PYVXLAN_PROGRESS_AFTER="0")
    argv = [PY, "-m", "pyvxlan", "demo", "--hosts", "40"]
    status, out, progress = _run_with_stderr_on_a_pty(argv, env)
    piped = subprocess.run(argv, check=False, capture_output=True, env=env, cwd=ROOT, timeout=60)
    assert (status, piped.returncode, out, piped.stderr) == (0, 0, piped.stdout, b"")
    assert re.search(r"\[[0-9]+/39\] [0-9]+\.[0-9]{3}s virtual, [0-9]+ deliveries: ", progress.decode())


# --- point 5: kernel backend -----------------------------------------------------------------------


def test_a_missing_file_is_reported_without_errno(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    for argv in (["run", str(missing)], ["draw", str(missing), "-o", str(tmp_path / "x.svg")]):
        assert main(argv) == 2
        assert capsys.readouterr().err == f"pyvxlan: error: {missing}: (file): No such file or directory\n"
    assert main(["demo", "--compare", "--plot", str(tmp_path / "no" / "x.svg")]) == 2
    assert capsys.readouterr().err == f"pyvxlan: error: --plot {tmp_path}/no/x.svg: no such folder {tmp_path}/no\n"


def test_the_kernel_backend_checks_privilege_before_printing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user without CAP_NET_ADMIN: one line, status 2, and not a line of output before it."""
    pytest.importorskip("pyroute2")
    import pyvxlan.kernel.netlink as nl

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(nl, "has_cap_net_admin", lambda status_path="": False)
    path = _write(tmp_path, SCENARIO.split("[[steps]]", maxsplit=1)[0] + '[[steps]]\naction = "wait"\nseconds = 1\n')
    for argv in (["demo", "--backend", "kernel"], ["run", str(path), "--backend", "kernel"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == (
            "",
            "pyvxlan: error: root or CAP_NET_ADMIN is needed to build a lab in network namespaces\n",
        )


# --- point 6: pictures ---------------------------------------------------------------------------


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # parses as XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return " ".join(t for t in root.itertext())


def test_the_pictures_in_docs_are_what_the_commands_draw(tmp_path: Path) -> None:
    """docs/img/*.svg are regenerated here and must match: the docs show what the commands make."""
    lab, chart = tmp_path / "classic-demo.svg", tmp_path / "classic-compare.svg"
    assert main(["draw", "--demo", "-o", str(lab)]) == 0
    assert main(["demo", "--compare", "--hosts", "3", "--plot", str(chart)]) == 0
    text = _svg_text(lab)
    for word in ("host1", "host2", "guest1", "guest2", "vxlan10", "br10", "group 239.1.1.1", "FDB mode: multicast"):
        assert word in text, word
    text = _svg_text(chart)
    for word in ("host1", "host3", "multicast", "unicast", "controller", "floods"):
        assert word in text, word
    for made in (lab, chart):
        assert made.read_bytes() == (ROOT / "docs" / "img" / made.name).read_bytes(), made.name


def test_draw_a_scenario_file_with_its_mode(tmp_path: Path) -> None:
    path, out = (
        _write(tmp_path, 'mode = "controller"\n' + SCENARIO.replace(', group = "239.1.1.1"', "")),
        tmp_path / "l.svg",
    )
    assert main(["draw", str(path), "-o", str(out)]) == 0
    text = _svg_text(out)
    assert "host12" in text and "g12" in text and "FDB mode: controller" in text and "nolearning proxy" in text


@pytest.mark.parametrize(
    ("module", "argv", "error"),
    [
        (
            "graphviz",
            ["draw", "--demo", "-o", "x.svg"],
            "pyvxlan draw needs the draw extra: pip install 'pyvxlan[draw]'",
        ),
        (
            "matplotlib",
            ["demo", "--compare", "--plot", "x.svg"],
            "--plot needs the draw extra: pip install 'pyvxlan[draw]'",
        ),
    ],
)
def test_a_missing_draw_extra_is_one_line(  # noqa: PLR0917 - pytest's fixtures and parameters
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    module: str,
    argv: list[str],
    error: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"pyvxlan: error: {error}\n"


# --- point 7: packaging ----------------------------------------------------------------------------


def test_version_and_python_dash_m() -> None:
    for argv in ([PY, "-m", "pyvxlan", "--version"], [str(Path(PY).parent / "pyvxlan"), "--version"]):
        r = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
        assert (r.returncode, r.stdout) == (0, f"pyvxlan {pyvxlan.__version__}\n")
    with (ROOT / "pyproject.toml").open("rb") as f:
        assert tomllib.load(f)["project"]["version"] == pyvxlan.__version__


def test_license_matches_pyproject() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        assert tomllib.load(f)["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the pyvxlan authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_dir_pyvxlan_is_the_api_and_every_name_loads() -> None:
    names = dir(pyvxlan)
    assert names == sorted([*pyvxlan.__all__, "__version__"])
    for helper in ("Any", "annotations", "importlib", "TYPE_CHECKING"):
        assert helper not in names
    assert all(getattr(pyvxlan, name) is not None for name in pyvxlan.__all__)


def test_import_pyvxlan_loads_neither_trio_dpkt_nor_pyroute2() -> None:
    code = "import sys, pyvxlan.cli; print(sorted(m for m in ('trio', 'dpkt', 'pyroute2', 'pyvxlan.core.vtep') if m in sys.modules))"
    r = subprocess.run([PY, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert r.stdout == "[]\n"


def test_sigint_early_in_start_up_ends_without_a_traceback() -> None:
    """Once pyvxlan's code runs, a Ctrl-C at any moment of start-up is one line (exit 130)."""
    ready = "import sys; sys.stderr.write('R\\n'); sys.stderr.flush(); from pyvxlan.cli import main; sys.exit(main())"
    for delay in (0.03, 0.05, 0.08, 0.12, 0.15, 0.2, 0.3):
        proc = subprocess.Popen(
            [PY, "-c", ready, "demo", "--hosts", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        assert proc.stderr.readline() == b"R\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        err = proc.stderr.read().decode()
        status = proc.wait(timeout=60)
        assert "Traceback" not in err and "Exception ignored" not in err, (delay, err)
        # Interrupted: one line, and 130 (or, before main() ran, killed by SIGINT as Python ends an
        # uncaught KeyboardInterrupt), or finished before the signal came; or finished and the
        # signal came while the interpreter was shutting down, after it had reset its handlers
        # to the default (killed by SIGINT, nothing printed: seen once on a fresh-clone CI run).
        assert (status, err) in (
            (130, "pyvxlan: interrupted\n"),
            (-signal.SIGINT, "pyvxlan: interrupted\n"),
            (0, ""),
            (-signal.SIGINT, ""),
        ), (
            delay,
            status,
            err,
        )
