"""Fuzz ``decapsulate_payload`` (a UDP payload as a socket returns it)."""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.wire.frame import decapsulate_payload

from _common import decoded, main, vector_payloads


def test_one_input(data: bytes) -> None:
    got = decoded(data, lambda b, m: decapsulate_payload(b, strict=bool(m & 1), gbp=bool(m & 2)))
    if got is None:
        return
    (header, inner), _, body = got
    assert header.encode() == body[:8]
    assert bytes(inner) == body[8:] and len(inner) >= 14


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + p for p in vector_payloads()))
