"""Fuzz ``VxlanHeader.decode``: lossless for any 8 bytes, only ``DecodeError`` otherwise.

Run: ``.venv/bin/python fuzz/fuzz_header.py -runs=100000`` (libFuzzer flags; a seed corpus from
the shared vectors is made when no corpus directory is given).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.wire.header import VxlanHeader

from _common import decoded, main, vector_headers


def test_one_input(data: bytes) -> None:
    got = decoded(data, lambda b, m: VxlanHeader.decode(b, strict=bool(m & 1), gbp=bool(m & 2), offset=m >> 6))
    if got is None:
        return
    h, mode, body = got
    raw = body[mode >> 6 : (mode >> 6) + 8]
    assert h.encode() == raw, (h, raw)
    assert VxlanHeader(h.vni, group_policy=h.group_policy, i_flag=h.i_flag, reserved=h.reserved) == h
    repr(h)


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + s for s in vector_headers()))
