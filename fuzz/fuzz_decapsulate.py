"""Fuzz ``decapsulate``: any bytes give a ``Decapsulated`` or a ``DecodeError``, nothing else."""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.wire.frame import decapsulate

from _common import decoded, main, vector_frames


def test_one_input(data: bytes) -> None:
    got = decoded(data, lambda b, m: decapsulate(b, strict=bool(m & 1), gbp=bool(m & 2)))
    if got is None:
        return
    d, _, body = got
    # Every accessor works on what decoded, and the inner frame lies inside the input.
    _ = (d.header.vni, d.outer_src, d.outer_dst, d.outer_eth_src, d.outer_eth_dst, d.src_port, d.dst_port)
    _ = (d.ttl, d.vlans, d.ip_version, d.udp_checksum, repr(d))
    inner = bytes(d.inner)
    assert body[d.inner_offset : d.inner_offset + len(inner)] == inner
    assert d.header.encode() == body[d.inner_offset - 8 : d.inner_offset]


if __name__ == "__main__":
    main(test_one_input, (b"\x00" + f for f in vector_frames()))
