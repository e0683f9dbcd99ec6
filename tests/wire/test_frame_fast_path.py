"""decapsulate's fast path (plain IPv4 frames) gives exactly what the general path gives.

The fast path is skipped when ``strict=True``; for a header that passes Linux's checks, strict and
lenient decoding must agree, so comparing the two compares the two paths.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan import DecodeError, MissingIFlagError, ReservedBitsError, VxlanHeader, decapsulate, encapsulate
from pyvxlan.strategies import EncapsulatedFrame, vxlan_frames
from pyvxlan.wire.frame import PLAIN_IPV4_INNER, plain_ipv4

INNER = bytes.fromhex("0200000000020200000000010800") + bytes(40)
PLAIN = encapsulate(INNER, vni=10, src="198.51.100.1", dst="198.51.100.2", src_port=50000)


def both(frame: bytes) -> tuple[object, object]:
    def run(strict: bool) -> object:
        try:
            return decapsulate(frame, strict=strict, gbp=True)
        except DecodeError as exc:
            return (type(exc), str(exc))

    return run(False), run(True)


@settings(max_examples=150)
@given(vxlan_frames(), st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=3))
def test_fast_and_general_paths_agree(f: EncapsulatedFrame, changes: list[tuple[int, int]]) -> None:
    frame = bytearray(f.frame)
    for pos, value in changes:
        if pos < len(frame):
            frame[pos] = value
    lenient, strict = both(bytes(frame))
    if isinstance(strict, tuple) and strict[0] in (MissingIFlagError, ReservedBitsError):
        return  # strict refused the header: nothing to compare
    assert lenient == strict
    plain = plain_ipv4(bytes(frame), 0, len(frame))
    if plain is not None and plain[4] in (4789, 8472):
        # The one fast path's fields are the general path's (strict decodes take the general path).
        _tos, ttl, addrs, sport, dport, csum, header = plain
        assert not isinstance(strict, tuple)
        assert (ttl, addrs, sport, dport, csum, header, PLAIN_IPV4_INNER) == (
            strict.ttl,  # type: ignore[attr-defined]
            strict.outer_src_packed + strict.outer_dst_packed,  # type: ignore[attr-defined]
            strict.src_port,  # type: ignore[attr-defined]
            strict.dst_port,  # type: ignore[attr-defined]
            strict.udp_checksum,  # type: ignore[attr-defined]
            strict.header.encode(),  # type: ignore[attr-defined]
            strict.inner_offset,  # type: ignore[attr-defined]
        )
    if not isinstance(lenient, tuple):
        assert bytes(lenient.inner) == bytes(strict.inner)  # type: ignore[attr-defined]
        assert (lenient.outer_eth_dst, lenient.outer_eth_src, lenient.inner_offset, lenient.udp_checksum) == (  # type: ignore[attr-defined]
            strict.outer_eth_dst,  # type: ignore[attr-defined]
            strict.outer_eth_src,  # type: ignore[attr-defined]
            strict.inner_offset,  # type: ignore[attr-defined]
            strict.udp_checksum,  # type: ignore[attr-defined]
        )


def _with(frame: bytes, pos: int, raw: bytes) -> bytes:
    return frame[:pos] + raw + frame[pos + len(raw) :]


@pytest.mark.parametrize(
    ("frame", "outcome"),
    [
        (PLAIN, "vni 10 inner 54"),
        (PLAIN + bytes(6), "vni 10 inner 54"),  # Ethernet padding: the general path trims it
        (_with(PLAIN, 16, b"\x00\x00") + bytes(6), "vni 10 inner 54"),  # IPv4 length 0: UDP length bounds it
        (_with(PLAIN, 38, b"\x00\x00"), "vni 10 inner 54"),  # UDP length 0
        (_with(PLAIN, 20, b"\x20\x00"), "DecodeError"),  # more-fragments bit set
        (_with(PLAIN, 36, b"\x00\x35"), "NotVxlanError"),  # port 53
        (_with(PLAIN, 16, b"\x00\xff"), "TruncatedError"),  # total length beyond the frame
        (_with(PLAIN, 42, bytes.fromhex("0000000000000b00")), "vni 11 inner 54"),  # I flag clear: lenient
    ],
    ids=["plain", "padding", "total-0", "udp-0", "fragment", "port-53", "too-long", "no-i-flag"],
)
def test_frames_near_the_fast_path(frame: bytes, outcome: str) -> None:
    try:
        d = decapsulate(frame)
    except DecodeError as exc:
        got = type(exc).__name__
    else:
        assert type(d.header) is VxlanHeader
        got = f"vni {d.header.vni} inner {len(d.inner)}"
    assert got == outcome
