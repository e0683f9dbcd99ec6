"""Shared plumbing of the atheris harnesses: the seed corpus and the libFuzzer entry point.

The seeds come from the shared vectors beside the checkout (``../shared/vectors``), written to a
temporary directory when a harness starts: the vectors are never copied into the repository.
Every harness states the fuzzing invariant for one decoder: any input gives a value or a
``pyvxlan.DecodeError``; any other exception escapes and libFuzzer reports it as a crash.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import atheris

# Imported by each harness first, inside atheris.instrument_imports(): these are the instrumented modules.
from pyvxlan.errors import DecodeError
from pyvxlan.wire.frame import Decapsulated
from pyvxlan.wire.pcap import PcapStats, read

T = TypeVar("T")

VECTORS = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors"


def decoded(data: bytes, decode: Callable[[bytes, int], T]) -> tuple[T, int, bytes] | None:
    """``(decode(body, mode), mode, body)`` for an input whose first byte is the mode (the
    decoder's flags: bit 0 strict, bit 1 gbp, bits 6-7 an offset) and the rest the bytes to decode.

    ``None`` for an empty input or a ``DecodeError``, which the invariant allows; any other
    exception escapes, and libFuzzer reports it.
    """
    if not data:
        return None
    mode, body = data[0], data[1:]
    try:
        return decode(body, mode), mode, body
    except DecodeError:
        return None


def read_capture(blob: bytes) -> tuple[list[tuple[float, Decapsulated]], PcapStats]:
    """Every VXLAN packet ``pcap.read`` gives for ``blob`` and its totals; a bad file's
    ``DecodeError`` ends the list (the packets before it are kept, and counted)."""
    stats = PcapStats()
    packets: list[tuple[float, Decapsulated]] = []
    try:
        for ts, d in read(io.BytesIO(blob), stats=stats):
            _ = (d.header.vni, d.outer_src, d.outer_dst, bytes(d.inner))  # every accessor works
            packets.append((ts, d))
    except DecodeError:
        pass
    return packets, stats


def vector_frames() -> list[bytes]:
    """The ``hex`` of every shared vector (frames, slices and bare headers)."""
    path = VECTORS / "vxlan_vectors.json"
    if not path.is_file():
        return []
    return [bytes.fromhex(v["hex"]) for v in json.loads(path.read_text())]


def vector_payloads() -> list[bytes]:
    """The UDP payloads (VXLAN header onward) of the vectors that say where their header starts."""
    path = VECTORS / "vxlan_vectors.json"
    if not path.is_file():
        return []
    out = []
    for v in json.loads(path.read_text()):
        offset = v["expect"].get("vxlan_offset_tagged", v["expect"].get("vxlan_offset"))
        if offset is not None:
            out.append(bytes.fromhex(v["hex"])[offset:])
    return out


def vector_headers() -> list[bytes]:
    return [p[:8] for p in vector_payloads() if len(p) >= 8] + [f for f in vector_frames() if len(f) == 8]


def capture_files() -> list[bytes]:
    """The vectors' captures, plus the same frames re-wrapped in every link type and pcapng."""
    folder = VECTORS / "pcaps"
    files = [p.read_bytes() for p in sorted(folder.glob("*.pcap"))] if folder.is_dir() else []
    frames = [f for f in vector_frames() if len(f) > 42][:8]
    if frames:
        files += [_pcap(linktype, [wrap(f) for f in frames]) for linktype, wrap in _WRAPPERS.items()]
        files.append(_pcapng(frames))
    return files


def _sll(frame: bytes) -> bytes:  # Linux cooked v1: pkttype, hatype, halen, address(8), protocol
    return struct.pack("!HHH8s", 0, 1, 6, frame[6:12]) + frame[12:14] + frame[14:]


def _sll2(frame: bytes) -> bytes:  # v2: protocol, reserved, ifindex, hatype, pkttype, halen, address(8)
    return frame[12:14] + struct.pack("!HIHBB8s", 0, 2, 1, 0, 6, frame[6:12]) + frame[14:]


def _raw(frame: bytes) -> bytes:
    return frame[14:]


_WRAPPERS: dict[int, Callable[[bytes], bytes]] = {113: _sll, 276: _sll2, 101: _raw}


def _pcap(linktype: int, records: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    for i, rec in enumerate(records):
        out += struct.pack("<IIII", i, 0, len(rec), len(rec)) + rec
    return out


def _block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _pcapng(frames: list[bytes]) -> bytes:
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))  # section header
    out += _block(1, struct.pack("<HHI", 1, 0, 262144))  # interface: Ethernet
    for i, frame in enumerate(frames):
        out += _block(6, struct.pack("<IIIII", 0, 0, i, len(frame), len(frame)) + frame)  # enhanced packet
    return out


def write_seeds(folder: str, seeds: Iterable[bytes]) -> None:
    for i, seed in enumerate(seeds):
        Path(folder, f"seed-{i:04d}").write_bytes(seed)


def main(test_one_input: Callable[[bytes], None], seeds: Iterable[bytes]) -> None:
    """Run libFuzzer on ``test_one_input``; ``sys.argv`` takes libFuzzer flags such as ``-runs=N``.

    Without a corpus directory on the command line, the harness runs itself in a child process on
    a temporary corpus made from ``seeds`` and removes it afterwards (libFuzzer ends the process
    with ``exit()``, so no clean-up could run after it in this one).
    """
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        with tempfile.TemporaryDirectory(prefix="pvxc-fuzz-") as folder:
            write_seeds(folder, seeds)
            code = subprocess.run([sys.executable, *argv, folder], check=False).returncode
        sys.exit(code)
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
