"""Fuzz ``pyvxlan.wire.pcap.read`` on whole files (pcap and pcapng, every link type it reads).

Bad packets are counted, not fatal; a bad file raises ``DecodeError``; nothing else escapes.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.wire import pcap  # noqa: F401 - instrumented before _common imports it

from _common import capture_files, main, read_capture


def test_one_input(data: bytes) -> None:
    packets, stats = read_capture(data)
    assert stats.vxlan == len(packets)
    assert stats.packets == stats.vxlan + stats.not_vxlan + stats.malformed


if __name__ == "__main__":
    main(test_one_input, capture_files())
