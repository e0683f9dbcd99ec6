"""Fuzz ``GpeHeader.decode``: lossless for any 8 bytes, only ``DecodeError`` otherwise."""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.wire.header import GpeHeader

from _common import decoded, main, vector_headers


def test_one_input(data: bytes) -> None:
    got = decoded(data, lambda b, m: GpeHeader.decode(b, strict=bool(m & 1), offset=m >> 6))
    if got is None:
        return
    g, mode, body = got
    assert g.encode() == body[mode >> 6 : (mode >> 6) + 8]
    assert GpeHeader.decode(g.encode()) == g
    _ = (g.vni, g.version, g.i_flag, g.p_flag, g.bum, g.oam, g.next_protocol, g.reserved)
    repr(g)


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + s for s in vector_headers()))
