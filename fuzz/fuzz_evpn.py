"""Fuzz the BGP/EVPN codec: ``decode_message``, ``split_messages`` and ``decode_routes``.

Invariants: any input gives values or a ``pyvxlan.DecodeError``; a message that decodes encodes
back to its own bytes (the codec is lossless), and so do the EVPN routes of an NLRI field.

Run: ``.venv/bin/python fuzz/fuzz_evpn.py -runs=100000`` (libFuzzer flags).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from pyvxlan.errors import DecodeError
    from pyvxlan.evpn import (
        Encapsulation,
        InclusiveMulticastRoute,
        IpPrefixRoute,
        Keepalive,
        MacIpRoute,
        MacMobility,
        Open,
        PmsiTunnel,
        RouteDistinguisher,
        RouteTarget,
        Update,
        decode_message,
        decode_routes,
        encode_routes,
        split_messages,
    )

from _common import main


def seeds() -> list[bytes]:
    """Messages as an EVPN speaker sends them: OPEN, KEEPALIVE, UPDATEs of types 2, 3 and 5."""
    rd = RouteDistinguisher.ipv4("198.51.100.1", 2)
    mac = MacIpRoute(rd, "02:aa:00:00:00:10", ip="203.0.113.10", labels=(100,))
    imet = InclusiveMulticastRoute(rd, "198.51.100.1")
    prefix = IpPrefixRoute(rd, "203.0.113.0", 24, "0.0.0.0", label=4000)
    rt = RouteTarget.as2(65000, 100)
    messages = [
        Open.build(65000, "198.51.100.1", 90).encode(),
        Keepalive().encode(),
        Update.announce([mac], next_hop="198.51.100.1", communities=[rt, Encapsulation(), MacMobility(3)]).encode(),
        Update.announce(
            [imet], next_hop="198.51.100.1", communities=[rt], pmsi=PmsiTunnel("198.51.100.1", 100)
        ).encode(),
        Update.announce([prefix], next_hop="198.51.100.1").encode(),
        Update.withdraw([mac]).encode(),
        Update.end_of_rib().encode(),
    ]
    return [b"\x00" + m for m in messages] + [
        b"\x01" + b"".join(messages),
        b"\x02" + encode_routes([mac, imet, prefix]),
    ]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    try:
        if mode == 0:
            message = decode_message(body)
            assert message.encode() == body, (message, body.hex())
            repr(message)
        elif mode == 1:
            messages, rest = split_messages(body)
            assert b"".join(m.encode() for m in messages) + rest == body
        else:
            routes = decode_routes(body)
            assert encode_routes(routes) == body, (routes, body.hex())
    except DecodeError:
        return


if __name__ == "__main__":
    main(test_one_input, seeds())
