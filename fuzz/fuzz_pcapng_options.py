"""Fuzz the pcapng reader's options and timestamps, through ``pcap.read`` and ``pyvxlan decode``.

Random bytes seldom make a pcapng file whose interface blocks parse, so the input is read as a
recipe (atheris' FuzzedDataProvider): a section header with options, one to four interface blocks
whose options are chosen by the fuzzer (``if_tsresol`` and ``if_tsoffset`` of every value and of
wrong sizes, other codes, lengths that run past the block, a missing end-of-options), then enhanced,
obsolete and simple packet blocks with any interface id, any 64-bit timestamp and options of their
own, carrying VXLAN frames. The invariant: records or a ``DecodeError``; every timestamp finite and
within the years 1 to 9999; and the decode command's printer turns every record into lines without
raising anything else (its clock formatting is where the 2^64-1 timestamp once broke).

Run: ``.venv/bin/python fuzz/fuzz_pcapng_options.py -runs=100000`` (libFuzzer flags; a seed corpus
is made when no corpus directory is given).
"""

from __future__ import annotations

import io
import math
import random
import struct

import atheris

with atheris.instrument_imports():
    from pyvxlan.cli.decode import DecodePrinter
    from pyvxlan.errors import DecodeError
    from pyvxlan.wire.frame import encapsulate
    from pyvxlan.wire.header import GpeHeader, GroupPolicy, VxlanHeader
    from pyvxlan.wire.pcap import raw_records

from _common import main, read_capture

_INNER = bytes.fromhex("ffffffffffff02000000000108060001080006040001020000000001cb007101000000000000cb007102")
FRAMES = [
    encapsulate(_INNER, vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000),
    encapsulate(_INNER, vni=20, src="2001:db8::1", dst="2001:db8::2", src_port=50001, vlan=7),
    encapsulate(
        _INNER, header=VxlanHeader(30, group_policy=GroupPolicy(7)), src="198.51.100.1", dst="239.1.1.1", dst_port=8472
    ),
    encapsulate(_INNER, header=GpeHeader(40), src="198.51.100.1", dst="198.51.100.2", dst_port=4790),
]
# Interface options the reader interprets, ones it skips, and the end-of-options marker.
_OPTION_CODES = [9, 9, 9, 14, 14, 14, 0, 1, 2, 3, 4, 8, 10, 11, 12, 13, 15, 2988, 0xFFFF]
_LINKTYPES = [1, 1, 1, 113, 276, 101, 228, 229, 0, 105]
_TS_MIN = -62135596800.0
_TS_MAX = 253402300800.0


def _options(fdp: atheris.FuzzedDataProvider, order: str) -> bytes:
    out = b""
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        code = _OPTION_CODES[fdp.ConsumeIntInRange(0, len(_OPTION_CODES) - 1)]
        if code == 9:
            value = bytes([fdp.ConsumeIntInRange(0, 255)])
        elif code == 14:
            value = struct.pack(order + "q", fdp.ConsumeIntInRange(-(2**63), 2**63 - 1))
        else:
            value = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))
        if fdp.ConsumeProbability() < 0.1:
            value = value[:-1] if fdp.ConsumeBool() else value + b"\x00"  # a wrong size
        length = len(value)
        if fdp.ConsumeProbability() < 0.05:
            length = fdp.ConsumeIntInRange(0, 0xFFFF)  # runs past the block, or stops short
        out += struct.pack(order + "HH", code, length) + value + bytes(-len(value) % 4)
    if out and fdp.ConsumeProbability() < 0.8:
        out += struct.pack(order + "HH", 0, 0)
    return out


def _block(order: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def build(data: bytes) -> bytes:
    """The pcapng file that ``data`` describes."""
    fdp = atheris.FuzzedDataProvider(data)
    order = "<" if fdp.ConsumeBool() else ">"
    out = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + _options(fdp, order))
    interfaces = fdp.ConsumeIntInRange(1, 4)
    for _ in range(interfaces):
        linktype = _LINKTYPES[fdp.ConsumeIntInRange(0, len(_LINKTYPES) - 1)]
        snaplen = fdp.ConsumeIntInRange(0, 0xFFFFFFFF) if fdp.ConsumeProbability() < 0.2 else 0
        out += _block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + _options(fdp, order))
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        frame = FRAMES[fdp.ConsumeIntInRange(0, len(FRAMES) - 1)]
        if fdp.ConsumeProbability() < 0.2:
            frame = frame[: fdp.ConsumeIntInRange(0, len(frame))]
        ifid = fdp.ConsumeIntInRange(0, interfaces)  # one past the last is undescribed
        # Timestamps near the edges of what a resolution allows are the interesting ones.
        ticks = fdp.ConsumeIntInRange(0, 2**64 - 1) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 2**40)
        kind = fdp.ConsumeIntInRange(0, 2)
        if kind == 0:  # enhanced packet
            head = struct.pack(order + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
            out += _block(order, 6, head + frame + bytes(-len(frame) % 4) + _options(fdp, order))
        elif kind == 1:  # obsolete packet
            head = struct.pack(
                order + "HHIIII", ifid & 0xFFFF, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
            )
            out += _block(order, 2, head + frame + bytes(-len(frame) % 4) + _options(fdp, order))
        else:  # simple packet: interface 0, no timestamp
            out += _block(order, 3, struct.pack(order + "I", len(frame)) + frame)
    rest: bytes = fdp.ConsumeBytes(fdp.remaining_bytes())  # a trailing block, maybe broken
    return out + rest


def test_one_input(data: bytes) -> None:
    blob = build(data)
    packets, stats = read_capture(blob)
    for ts, _ in packets:
        assert math.isfinite(ts) and _TS_MIN <= ts < _TS_MAX, ts
    assert stats.vxlan == len(packets)
    for as_json in (False, True):
        lines: list[str] = []
        printer = DecodePrinter((4789, 8472), (4790,))
        try:
            printer.record_lines(raw_records(io.BytesIO(blob)), lines.append, as_json=as_json, batch=2)
        except DecodeError:
            pass
        # One line per VXLAN packet and per malformed one (a cooked header too short to read is
        # counted as malformed without a line: nothing says it carried VXLAN).
        s = printer.stats
        assert s.vxlan <= "".join(lines).count("\n") <= s.vxlan + s.malformed, (lines, s)
        assert all(line.endswith("\n") for line in lines)
        assert (printer.totals_json() if as_json else printer.totals_text()).endswith("\n")


def seeds() -> list[bytes]:
    """Recipes for the corpus: fixed patterns and a few seeded random ones."""
    rng = random.Random(7)
    return [bytes(64), b"\xff" * 64, bytes(range(256)), *(rng.randbytes(n) for n in (32, 96, 200, 400, 800))]


if __name__ == "__main__":
    main(test_one_input, seeds())
