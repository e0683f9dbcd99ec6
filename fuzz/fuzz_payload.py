"""Fuzz ``decapsulate_payload`` (a UDP payload as a socket returns it)."""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.errors import DecodeError
    from pyvxlan.wire.frame import decapsulate_payload

from _common import main, vector_payloads


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0], data[1:]
    try:
        header, inner = decapsulate_payload(body, strict=bool(mode & 1), gbp=bool(mode & 2))
    except DecodeError:
        return
    assert header.encode() == body[:8]
    assert bytes(inner) == body[8:] and len(inner) >= 14


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + p for p in vector_payloads()))
