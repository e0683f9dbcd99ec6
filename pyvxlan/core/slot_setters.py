"""Building a frozen dataclass through its slot descriptors, for the hot paths that make many.

A frozen dataclass's ``__init__`` sets each field with ``object.__setattr__``, which finds and
calls the field's slot descriptor; calling the descriptors' ``__set__`` directly does the same
work without the generated ``__init__`` around it: a quarter of its cost for the ten fields of an
``FdbEntry`` (bench/kernel_fdb.py), about half for a ``SendBatch``, warm or with cold caches
(bench/cold_path.py). It is for values the library builds from its own state, valid by
construction: nothing is checked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["slot_setters"]


def slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The ``__set__`` of each of dataclass ``cls``'s fields, which must be ``names`` in order (the
    caller unpacks them by position; a changed class fails here, at import, not later with a value
    in the wrong field).

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, slots=True)
    ... class Point:
    ...     x: int
    ...     y: int
    >>> set_x, set_y = slot_setters(Point, ("x", "y"))
    >>> p = object.__new__(Point)
    >>> set_x(p, 1); set_y(p, 2)
    >>> p == Point(1, 2)
    True
    >>> slot_setters(Point, ("y", "x"))
    Traceback (most recent call last):
    ...
    TypeError: Point's fields are ('x', 'y'), not ('y', 'x')
    """
    fields = tuple(f.name for f in dataclasses.fields(cls))
    if fields != names:
        raise TypeError(f"{cls.__name__}'s fields are {fields}, not {names}")
    return tuple(getattr(cls, name).__set__ for name in names)
