"""Fuzz ``VxlanHeader.decode``: lossless for any 8 bytes, only ``DecodeError`` otherwise.

Run: ``.venv/bin/python fuzz/fuzz_header.py -runs=100000`` (libFuzzer flags; a seed corpus from
the shared vectors is made when no corpus directory is given).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.errors import DecodeError
    from pyvxlan.wire.header import VxlanHeader

from _common import main, vector_headers


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    try:
        h = VxlanHeader.decode(body, strict=bool(mode & 1), gbp=bool(mode & 2), offset=mode >> 6)
    except DecodeError:
        return
    raw = body[mode >> 6 : (mode >> 6) + 8]
    assert h.encode() == raw, (h, raw)
    assert VxlanHeader(h.vni, group_policy=h.group_policy, i_flag=h.i_flag, reserved=h.reserved) == h
    repr(h)


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + s for s in vector_headers()))
