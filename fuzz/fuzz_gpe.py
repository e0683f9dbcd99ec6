"""Fuzz ``GpeHeader.decode``: lossless for any 8 bytes, only ``DecodeError`` otherwise."""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.errors import DecodeError
    from pyvxlan.wire.header import GpeHeader

from _common import main, vector_headers


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    try:
        g = GpeHeader.decode(body, strict=bool(mode & 1), offset=mode >> 6)
    except DecodeError:
        return
    assert g.encode() == body[mode >> 6 : (mode >> 6) + 8]
    assert GpeHeader.decode(g.encode()) == g
    _ = (g.vni, g.version, g.i_flag, g.p_flag, g.bum, g.oam, g.next_protocol, g.reserved)
    repr(g)


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + s for s in vector_headers()))
