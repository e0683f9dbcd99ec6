"""Argument types the commands share: one parser per kind of value, one wording of its errors."""

from __future__ import annotations

import argparse

__all__ = ["udp_port"]


def udp_port(text: str) -> int:
    """A UDP port on the command line: a decimal number in 1..65535.

    >>> udp_port("4789")
    4789
    """
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 0 < value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: must be in 1..65535")
    return value
