"""The atheris harnesses in ``fuzz/``: each runs a short, bounded libFuzzer session in the suite.

A session that lets any exception other than ``pyvxlan.DecodeError`` escape (or breaks a
harness's own assertion) ends with a crash report and a non-zero exit status, which fails here.
The seeds are made from the shared vectors at run time.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
HARNESSES = sorted(p.stem for p in FUZZ.glob("fuzz_*.py"))
RUNS = 3000


def atheris_or_skip() -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (it is in the dev extra)")


def test_every_decoder_has_a_harness() -> None:
    assert HARNESSES == [
        "fuzz_bgp_stream",
        "fuzz_decapsulate",
        "fuzz_evpn",
        "fuzz_gpe",
        "fuzz_header",
        "fuzz_payload",
        "fuzz_pcap",
        "fuzz_pcapng_options",
        "fuzz_scenario",
    ]


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_bounded_run(name: str, tmp_path: Path) -> None:
    atheris_or_skip()
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ / f"{name}.py"),
            f"-runs={RUNS}",
            "-seed=1",
            "-max_len=2048",
            f"-artifact_prefix={tmp_path}/",  # a crash input lands here, not in the checkout
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Done {RUNS} runs" in proc.stderr


def load(name: str) -> ModuleType:
    atheris_or_skip()
    sys.path.insert(0, str(FUZZ))
    try:
        spec = importlib.util.spec_from_file_location(f"pvxc_{name}", FUZZ / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(FUZZ))


def test_seeds_come_from_the_shared_vectors() -> None:
    from conftest import vectors_dir

    vectors_dir()
    common = load("_common")
    assert len(common.vector_frames()) >= 58
    assert len(common.vector_headers()) >= 50
    assert all(len(h) == 8 for h in common.vector_headers())
    files = common.capture_files()
    assert len(files) >= 12
    # The synthesized seeds (SLL, SLL2, raw IP, pcapng) decode like the frames they wrap.
    import io

    from pyvxlan.wire.pcap import PcapStats, read

    for seed in files[-4:]:
        stats = PcapStats()
        vnis = [d.header.vni for _, d in read(io.BytesIO(seed), stats=stats)]
        assert (stats.packets, stats.vxlan, len(vnis)) == (8, 8, 8)


@pytest.mark.parametrize("name", HARNESSES)
def test_harness_accepts_every_seed(name: str) -> None:
    from conftest import vectors_dir

    vectors_dir()
    common = load("_common")
    harness = load(name)
    one: Callable[[bytes], None] = harness.test_one_input
    if name == "fuzz_evpn":
        # Each seed carries its mode byte (a message, a stream of them, an NLRI field) and must
        # decode and encode back to itself: a seed that only raised DecodeError would test nothing.
        from pyvxlan.evpn import decode_message, decode_routes, split_messages

        for seed in harness.seeds():
            one(seed)
            mode, body = seed[0], seed[1:]
            decoded = (
                decode_message(body) if mode == 0 else split_messages(body)[0] if mode == 1 else decode_routes(body)
            )
            assert decoded
        return
    if name == "fuzz_bgp_stream":
        # Each seed is a session's segments: reassembled, they give its messages back (the last
        # seed's second flow is cut by the snap length: its UPDATE is lost, not invented).
        from pyvxlan.evpn import Keepalive, Open, Update

        for seed in harness.seeds():
            one(seed)
        kinds = [[type(i) for i in harness.reassemble(seed) if hasattr(i, "encode")] for seed in harness.seeds()]
        assert kinds == [[Open, Keepalive, Update], [Open, Keepalive, Update], [Keepalive, Update], [Keepalive]]
        return
    if name == "fuzz_pcapng_options":
        seeds = harness.seeds()  # recipes, not files: the harness builds the file
    elif name == "fuzz_scenario":
        seeds = [harness.SEED.encode()]
    else:
        seeds = {
            "fuzz_header": common.vector_headers,
            "fuzz_gpe": common.vector_headers,
            "fuzz_decapsulate": common.vector_frames,
            "fuzz_payload": common.vector_payloads,
            "fuzz_pcap": common.capture_files,
        }[name]()
    assert seeds
    for seed in seeds:
        for mode in (b"\x00", b"\x01", b"\x03"):
            one(seed if name == "fuzz_pcap" else mode + seed)


def test_the_pcapng_options_harness_reaches_absurd_timestamps() -> None:
    """Issue 10, "keep it so": the recipe harness builds the files of issue 10.6 (if_tsresol 0, a
    timestamp of 2^64-1), which the reader must refuse with a DecodeError."""
    import io

    from pyvxlan.errors import DecodeError
    from pyvxlan.wire.pcap import read

    harness = load("fuzz_pcapng_options")
    refused = 0
    for seed in harness.seeds():
        blob = harness.build(seed)
        assert blob[:4] == b"\x0a\x0d\x0d\x0a"
        try:
            list(read(io.BytesIO(blob)))
        except DecodeError as exc:
            refused += "timestamp" in str(exc) or "if_ts" in str(exc)
    assert refused >= 1


def test_harness_reports_an_escaping_exception(tmp_path: Path) -> None:
    # The invariant check is real: a decoder raising something else makes the run fail.
    atheris_or_skip()
    broken = tmp_path / "fuzz_broken.py"
    broken.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(FUZZ)!r})\n"
        "from _common import main\n"
        "def test_one_input(data: bytes) -> None:\n"
        "    if len(data) > 3:\n"
        "        raise IndexError('not a DecodeError')\n"
        "main(test_one_input, [b'abcd'])\n"
    )
    proc = subprocess.run(
        [sys.executable, str(broken), "-runs=100", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "IndexError: not a DecodeError" in proc.stdout + proc.stderr
    assert list(tmp_path.glob("crash-*"))
