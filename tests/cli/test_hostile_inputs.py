"""Hostile input to the command line (issue 10, points 3-6): every bad input is one line naming the
file, the step or table and the field, exit status 2, before anything runs; nothing hangs,
nothing grows, nothing needs pyroute2 that does not use it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pyvxlan.cli import main
from pyvxlan.lab.topology import MAX_FILE_SIZE

BASE = """
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
count = 1
timeout = 1.0
interval = 1.0
expect = "all"

[[steps]]
action = "expect-fdb"
host = "host1"
vni = 10
mac = "02:00:00:00:00:02"
dst = "198.51.100.2"

[[steps]]
action = "wait"
seconds = 1

[[steps]]
action = "link"
host = "host2"
latency = 0.001
loss = 0.0
duplicate = 0.0

[[steps]]
action = "partition"
sides = [["host1"]]
"""


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_base_scenario_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Every case below changes one thing in this file; it is good as it stands.
    path = tmp_path / "ok.toml"
    path.write_text(BASE)
    code, out, err = _run(capsys, ["run", str(path)])
    assert (code, err, out.splitlines()[-1]) == (0, "", "5 steps, 2 expectations, 0 failed")


_MUST_BE_DURATION = "must be a number 0..4294967295"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # a list or a table where a name belongs (was: unhashable TypeError)
        (
            'host = "host2"\nlatency',
            "host = []\nlatency",
            "step 4.host: must be a host name (a string), got an array",
        ),
        ('from = "a"', "from = {x=1}", "step 1.from: must be a guest name (a string), got a table"),
        ('sides = [["host1"]]', "sides = [[{a=1}]]", "step 5.sides: must be a host name (a string), got a table"),
        ('to = "b"', "to = 5", "step 1.to: must be a guest name or an IP address (a string), got the number 5"),
        (
            'action = "wait"',
            'action = ["wait"]',
            "step 3.action: must be one of ping, wait, move, link-down, "
            "link-up, link, partition, heal, vtep-down, vtep-up, expect-fdb, "
            "expect-counter, expect-event, expect-converged, got ['wait']",
        ),
        # not a finite number (was: accepted, then a hang, a late error or nothing)
        ("latency = 0.001", "latency = nan", f"step 4.latency: {_MUST_BE_DURATION}, got nan"),
        ("seconds = 1", "seconds = inf", f"step 3.seconds: {_MUST_BE_DURATION}, got inf"),
        ("seconds = 1", "seconds = nan", f"step 3.seconds: {_MUST_BE_DURATION}, got nan"),
        ("seconds = 1", "seconds = 1e300", f"step 3.seconds: {_MUST_BE_DURATION}, got 1e+300"),
        ("interval = 1.0", "interval = inf", f"step 1.interval: {_MUST_BE_DURATION}, got inf"),
        ("timeout = 1.0", "timeout = nan", "step 1.timeout: must be a number > 0 and <= 4294967295, got nan"),
        ("timeout = 1.0", "timeout = 0", "step 1.timeout: must be a number > 0 and <= 4294967295, got 0"),
        ("loss = 0.0", "loss = nan", "step 4.loss: must be a number 0..1, got nan"),
        ("duplicate = 0.0", "duplicate = nan", "step 4.duplicate: must be a number 0..1, got nan"),
        ("duplicate = 0.0", "duplicate = true", "step 4.duplicate: must be a number 0..1, got True"),
        # an integer is not an address (was: 5 read as 0.0.0.5)
        ('dst = "198.51.100.2"', "dst = 5", "step 2.dst: must be an IP address (a string), got the number 5"),
    ],
)
def test_bad_step_values_are_one_line_naming_file_step_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, error: str
) -> None:
    assert old in BASE
    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace(old, new, 1))
    assert _run(capsys, ["run", str(path)]) == (2, "", f"pyvxlan: error: {path}: {error}\n")


def test_a_file_that_is_not_utf8_is_exit_2_not_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.replace('name = "a"', 'name = "\xe9"').encode("latin-1"))
    offset = BASE.index('name = "a"') + len('name = "')
    assert _run(capsys, ["run", str(path)]) == (
        2,
        "",
        f"pyvxlan: error: {path}: (file): not UTF-8 text (byte 0xe9 at offset {offset})\n",
    )


@pytest.mark.parametrize("opening", ["[", "{a="])
def test_deep_nesting_is_a_syntax_error_not_a_recursion_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, opening: str
) -> None:
    closing = "]" if opening == "[" else "}"
    path = tmp_path / "deep.toml"
    path.write_text(BASE + "x = " + opening * 50_000 + "1" + closing * 50_000 + "\n")
    assert _run(capsys, ["run", str(path)]) == (
        2,
        "",
        f"pyvxlan: error: {path}: (syntax): arrays or tables nested too deeply\n",
    )


def test_dev_zero_is_refused_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    """Was: memory grew about 1 GB/s until MemoryError."""
    assert _run(capsys, ["run", "/dev/zero"]) == (2, "", "pyvxlan: error: /dev/zero: (file): not a regular file\n")


def test_a_folder_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(capsys, ["run", str(tmp_path)]) == (2, "", f"pyvxlan: error: {tmp_path}: (file): not a regular file\n")


def test_a_fifo_is_refused_without_waiting_for_a_writer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)
    result: list[tuple[int, str, str]] = []
    # In a thread, so that a regression (open() blocking until a writer comes) fails, not hangs.
    worker = threading.Thread(target=lambda: result.append(_run(capsys, ["run", str(path)])), daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        with open(path, "wb"):  # let the blocked open() return
            pass
        worker.join(10)
        pytest.fail("pyvxlan run waited for a writer on a FIFO")
    assert result == [(2, "", f"pyvxlan: error: {path}: (file): not a regular file\n")]


def test_a_file_larger_than_any_scenario_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    text = BASE + "#" * (MAX_FILE_SIZE - len(BASE))
    path.write_text(text)
    assert _run(capsys, ["run", str(path)])[0] == 0  # exactly the limit: still read
    path.write_text(text + "#")
    assert _run(capsys, ["run", str(path)]) == (
        2,
        "",
        f"pyvxlan: error: {path}: (file): 1048577 bytes is larger than 1048576 bytes\n",
    )


def test_a_step_the_backend_cannot_do_fails_before_the_first_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Was: the kernel lab was built and steps 1-3 ran before ``link`` failed."""
    path = tmp_path / "link.toml"
    path.write_text(BASE)
    assert _run(capsys, ["run", str(path), "--backend", "kernel"]) == (
        2,
        "",
        f"pyvxlan: error: {path}: step 4.action: link is not supported by the kernel backend\n",
    )


def test_demo_pcap_into_a_missing_folder_fails_before_the_demo(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "demo.pcap"
    assert _run(capsys, ["demo", "--pcap", str(target)]) == (
        2,
        "",
        f"pyvxlan: error: --pcap {target}: no such folder {tmp_path / 'missing'}\n",
    )
    assert _run(capsys, ["demo", "--pcap", str(tmp_path)]) == (
        2,
        "",
        f"pyvxlan: error: --pcap {tmp_path}: is a folder\n",
    )


# --- without the kernel extra (pyroute2) ---------------------------------------------------------------

# pyroute2 made unimportable, as on a machine without ``pip install 'pyvxlan[kernel]'``.
_NO_PYROUTE2 = "import sys; sys.modules['pyroute2'] = None; from pyvxlan.cli import main; sys.exit(main(sys.argv[1:]))"
_INSTALL = "pyvxlan: error: backend: the kernel backend needs pyroute2: pip install 'pyvxlan[kernel]'\n"


def _without_pyroute2(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _NO_PYROUTE2, *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_print_commands_needs_no_pyroute2() -> None:
    done = _without_pyroute2("demo", "--print-commands")
    lines = done.stdout.splitlines()
    assert (done.returncode, done.stderr, lines[0], lines[-1]) == (
        0,
        "",
        "ip netns add pvx0000-underlay",
        "ip netns del pvx0000-underlay",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--backend", "kernel"],
        ["run", "{path}", "--backend", "kernel"],
        ["lab", "cleanup"],
        ["lab", "cleanup", "--prefix", "pvx0001"],
    ],
)
def test_kernel_commands_without_pyroute2_say_what_to_install(tmp_path: Path, argv: list[str]) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(BASE.split('[[steps]]\naction = "link"', maxsplit=1)[0])
    done = _without_pyroute2(*(a.format(path=path) for a in argv))
    assert (done.returncode, done.stdout, done.stderr) == (2, "", _INSTALL)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("latency", float("nan"), "latency: must be a finite number >= 0 seconds, got nan"),
        ("jitter", float("inf"), "jitter: must be a finite number >= 0 seconds, got inf"),
        ("reorder_delay", "1", "reorder_delay: must be a finite number >= 0 seconds, got '1'"),
        ("loss", float("nan"), "loss: must be a probability in 0..1, got nan"),
        ("duplicate", True, "duplicate: must be a probability in 0..1, got True"),
    ],
)
def test_link_profile_refuses_what_is_not_a_finite_number(field: str, value: object, error: str) -> None:
    """Was: NaN latency accepted (NaN < 0 is false), failing later in the scheduler."""
    from pyvxlan.errors import ConfigError
    from pyvxlan.sim.underlay import LinkProfile

    with pytest.raises(ConfigError) as info:
        LinkProfile(**{field: value})  # type: ignore[arg-type]
    assert str(info.value) == error


@pytest.mark.parametrize(
    ("device", "error"),
    [
        ("ageing = nan", "ageing: must be in 0..4294967295 seconds, got nan"),
        ("ageing = inf", "ageing: must be in 0..4294967295 seconds, got inf"),
        ("ageing = 1e300", "ageing: must be in 0..4294967295 seconds, got 1e+300"),
        ('src_port_range = "x"', "src_port_range: must be a (low, high) tuple of ports, got str 'x'"),
    ],
)
def test_bad_device_settings_name_file_table_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, device: str, error: str
) -> None:
    """VtepConfig validates these (in one place); the loader says where in the file they are.
    Was: ageing accepted silently; ``src_port_range = "x"`` said "not enough values to unpack"."""
    path = tmp_path / "bad.toml"
    old = 'devices = [{ vni = 10, group = "239.1.1.1" }]'
    path.write_text(BASE.replace(old, f'devices = [{{ vni = 10, group = "239.1.1.1", {device} }}]', 1))
    assert _run(capsys, ["run", str(path)]) == (2, "", f"pyvxlan: error: {path}: hosts[0].devices[0].{error}\n")


def test_an_interrupt_outside_main_is_one_line_not_a_traceback() -> None:
    """Once ``pyvxlan.cli`` is loaded, a Ctrl-C that reaches the interpreter's top level (before
    ``main`` runs or after it returned) prints one line."""
    done = subprocess.run(
        [sys.executable, "-c", "import pyvxlan.cli; raise KeyboardInterrupt"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (-2, "pyvxlan: interrupted\n")


_SET_NAME_INTERRUPTED = """
import argparse
import sys
import pyvxlan.cli as cli

class Interrupting:
    def __set_name__(self, owner, name):
        raise KeyboardInterrupt  # a Ctrl-C while a class body is being made

def command(args):
    class Made:  # Python 3.11: RuntimeError("Error calling __set_name__ ...") from the KeyboardInterrupt
        field = Interrupting()
    return 0

class Parser:  # the command line names the command above
    def parse_args(self, argv):
        return argparse.Namespace(func=command)

cli.build_parser = lambda name: Parser()
sys.exit(cli.main(["demo"]))
"""


def test_an_interrupt_that_python_wrapped_while_making_a_class_is_one_line() -> None:
    """Was: a Ctrl-C 0.3 s into ``pyvxlan demo`` landed in ``import trio.testing`` (which imports
    pytest, whose dataclasses run ``__set_name__``) and came out as a RuntimeError traceback."""
    done = subprocess.run(
        [sys.executable, "-c", _SET_NAME_INTERRUPTED], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stderr) == (130, "pyvxlan: interrupted\n")


_FORKED = """
import os, signal, time
from pyvxlan.cli import _Signals
_Signals().install()  # as main() does
pid = os.fork()  # as pyroute2 does to enter a namespace, without exec
if pid == 0:
    time.sleep(10)
    os._exit(0)
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}")
"""


def test_sigterm_to_a_forked_helper_ends_the_helper() -> None:
    """A fork without exec inherits the SIGTERM handler; there SIGTERM must end the process as
    its sender expects. Was: the helper pyroute2 forks ran pyvxlan's unwinding in a copy of the
    command, and the lab's owner waited for it forever."""
    done = subprocess.run([sys.executable, "-c", _FORKED], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "15\n", "")
