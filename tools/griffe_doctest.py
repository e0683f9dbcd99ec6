"""A griffe extension for the API reference (docs/api.md): doctest examples become code blocks.

pyvxlan's docstrings carry ``>>>`` examples (the tests run them); as plain Markdown their output
lines would be read as text and links (``[(1.25, 7)]``). Each run of ``>>>`` lines and the output
after them, up to a blank line, is fenced as a ``pycon`` block instead.
"""

from __future__ import annotations

from typing import Any

import griffe


def fence(text: str) -> str:
    """``text`` with every doctest example fenced."""
    out: list[str] = []
    indent: str | None = None
    for line in text.splitlines():
        stripped = line.lstrip()
        if indent is None and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            out.append(f"{indent}```pycon")
        elif indent is not None and not stripped:
            out.append(f"{indent}```")
            indent = None
        out.append(line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctests of every object's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence(obj.docstring.value)
