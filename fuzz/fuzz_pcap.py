"""Fuzz ``pyvxlan.wire.pcap.read`` on whole files (pcap and pcapng, every link type it reads).

Bad packets are counted, not fatal; a bad file raises ``DecodeError``; nothing else escapes.
"""

from __future__ import annotations

import io

import atheris

with atheris.instrument_imports():
    from pyvxlan.errors import DecodeError
    from pyvxlan.wire.pcap import PcapStats, read

from _common import capture_files, main


def test_one_input(data: bytes) -> None:
    stats = PcapStats()
    n = 0
    try:
        for _, d in read(io.BytesIO(data), stats=stats):
            _ = (d.header.vni, d.outer_src, d.outer_dst, bytes(d.inner))
            n += 1
    except DecodeError:
        return
    assert stats.vxlan == n
    assert stats.packets == stats.vxlan + stats.not_vxlan + stats.malformed


if __name__ == "__main__":
    main(test_one_input, capture_files())
