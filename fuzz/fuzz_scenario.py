"""Fuzz the TOML scenario loader (``pyvxlan run FILE.toml``): any input gives a scenario or a
``pyvxlan.ConfigError`` (a ``TopologyFileError`` for the file itself) whose message is one line.

Two kinds of input, chosen by the first byte: raw bytes read as a scenario file (encoding, TOML
syntax, nesting), or a valid scenario with some of its values replaced by hostile ones (NaN,
infinities, huge numbers, booleans, strings, arrays and tables where a name or number belongs),
which reaches the checks behind the TOML parser far more often than random text would.

Run: ``.venv/bin/python fuzz/fuzz_scenario.py -runs=100000`` (libFuzzer flags; a seed corpus is
made when no corpus directory is given).
"""

from __future__ import annotations

import copy
import math
import tomllib
from typing import Any

import atheris

with atheris.instrument_imports():
    from pyvxlan.errors import ConfigError
    from pyvxlan.lab.scenario import MAX_SECONDS, check_backend, parse_scenario
    from pyvxlan.lab.topology import parse_toml

from _common import main

SEED = """
mode = "multicast"
underlay = { subnet = "198.51.100.0/24", mtu = 1500 }

[[hosts]]
name = "host1"
address = "198.51.100.1"
devices = [{ vni = 10, group = "239.1.1.1", ageing = 300, src_port_range = [49152, 65535] }]

[[hosts]]
name = "host2"
address = "198.51.100.2"
devices = [{ vni = 10, remote = "198.51.100.1", ttl = 64, learning = false }]

[[guests]]
name = "a"
host = "host1"
vni = 10
mac = "02:00:00:00:00:01"
ip = "203.0.113.1/24"

[[steps]]
action = "ping"
from = "a"
to = "203.0.113.2"
count = 2
timeout = 1.0
interval = 0.5
expect = "some"

[[steps]]
action = "link"
host = "host2"
latency = 0.001
jitter = 0.0
loss = 0.1
duplicate = 0.0
reorder = 0.0

[[steps]]
action = "partition"
sides = [["host1"], ["host2"]]

[[steps]]
action = "expect-fdb"
host = "host1"
vni = 10
mac = "02:00:00:00:00:02"
dst = "198.51.100.2"
present = true

[[steps]]
action = "wait"
seconds = 2
"""

_HOSTILE: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    1e300,
    -1,
    0,
    1,
    2**24,
    2**32,
    2**64,
    True,
    False,
    "",
    "x",
    "5",
    "a\nb",
    "198.51.100.9",
    "host1",
    "a",
    "02:00:00:00:00:01",
    [],
    {},
    [[{"a": 1}]],
    [1, 2],
    [1.5, 2.5],
    {"x": 1},
]


def _mutate(fdp: atheris.FuzzedDataProvider, data: Any) -> Any:
    """``data`` with the value at one path (a random walk from the root) replaced."""
    if isinstance(data, dict) and data:
        keys = sorted(data)
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        if fdp.ConsumeIntInRange(0, 3) == 0:
            data[key] = _value(fdp)
        else:
            data[key] = _mutate(fdp, data[key])
        return data
    if isinstance(data, list) and data:
        i = fdp.ConsumeIntInRange(0, len(data) - 1)
        data[i] = _value(fdp) if fdp.ConsumeIntInRange(0, 3) == 0 else _mutate(fdp, data[i])
        return data
    return _value(fdp)


def _value(fdp: atheris.FuzzedDataProvider) -> Any:
    kind = fdp.ConsumeIntInRange(0, 4)
    if kind == 0:
        return fdp.ConsumeInt(8)
    if kind == 1:
        return fdp.ConsumeRegularFloat() if fdp.ConsumeBool() else fdp.ConsumeFloat()
    if kind == 2:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 24))
    return copy.deepcopy(_HOSTILE[fdp.ConsumeIntInRange(0, len(_HOSTILE) - 1)])


def test_one_input(data: bytes) -> None:
    if not data:
        return
    try:
        if data[0] & 1:
            fdp = atheris.FuzzedDataProvider(data[1:])
            parsed: Any = tomllib.loads(SEED)
            for _ in range(fdp.ConsumeIntInRange(1, 4)):
                parsed = _mutate(fdp, parsed)
        else:
            parsed = parse_toml(data[1:], "fuzz.toml")
        if not isinstance(parsed, dict):
            return
        scenario = parse_scenario(parsed)
        check_backend(scenario, "sim")
    except ConfigError as exc:
        assert "\n" not in str(exc), f"a bad input is one line: {str(exc)!r}"
        return
    for step in scenario.steps:
        step.describe()
        for key, value in step.args:
            if isinstance(value, float):
                assert math.isfinite(value) and 0 <= value <= MAX_SECONDS, (key, value)


if __name__ == "__main__":
    seed = SEED.encode()
    main(test_one_input, [b"\x00" + seed, b"\x01" + bytes(range(64)), b"\x01" + bytes(64), b"\x03" + b"\xff" * 64])
