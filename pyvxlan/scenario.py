"""Scenario files: a topology plus a list of steps, run by ``pyvxlan run FILE.toml``.

A scenario file is a topology file (see :func:`pyvxlan.topology.load_topology`) with
``[[steps]]`` tables, each with an ``action`` and its keys:

==============  ===============================================  ===================================
action          keys                                             does
==============  ===============================================  ===================================
``ping``        ``from``, ``to`` (guest or IP), ``count`` (3),    ping; with ``expect`` ("all",
                ``timeout`` (1.0), ``interval`` (1.0),            "some", "none") the step is an
                ``expect``                                        expectation
``wait``        ``seconds``                                       let time pass
``move``        ``guest``, ``to`` (a host)                        migrate a guest to another host
``link-down``   ``host``                                          take the host's underlay link down
``link-up``     ``host``                                          ... and up
``link``        ``host``, ``latency``, ``jitter``, ``loss``,      change the link's behaviour
                ``duplicate``, ``reorder``
``partition``   ``sides`` (lists of hosts)                        split the underlay
``heal``                                                          end the partition
``vtep-down``   ``host``, ``vni``                                 ``ip link set vxlanN down``
``vtep-up``     ``host``, ``vni``                                 ... and up
``expect-fdb``  ``host``, ``vni``, ``mac``, ``dst`` (optional),   an FDB entry is there (or not)
                ``present`` (true)
==============  ===============================================  ===================================

A step that is wrong (an unknown action or key, a host that does not exist) makes the whole file
bad: :func:`load_scenario` raises :class:`~pyvxlan.topology.TopologyFileError` before anything runs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvxlan.errors import ConfigError
from pyvxlan.lab import Lab
from pyvxlan.topology import Topology, TopologyFileError, parse_topology, read_toml

__all__ = ["Scenario", "Step", "StepResult", "load_scenario", "parse_scenario", "run_scenario"]

_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # action: (required keys, optional keys)
    "ping": (("from", "to"), ("count", "timeout", "interval", "expect")),
    "wait": (("seconds",), ()),
    "move": (("guest", "to"), ()),
    "link-down": (("host",), ()),
    "link-up": (("host",), ()),
    "link": (("host",), ("latency", "jitter", "loss", "duplicate", "reorder", "reorder_delay")),
    "partition": (("sides",), ()),
    "heal": ((), ()),
    "vtep-down": (("host", "vni"), ()),
    "vtep-up": (("host", "vni"), ()),
    "expect-fdb": (("host", "vni", "mac"), ("dst", "present")),
}
_EXPECT = ("all", "some", "none")


@dataclass(frozen=True, slots=True)
class Step:
    """One step: its ``action`` and the keys given for it (validated)."""

    action: str
    args: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.args:
            if k == key:
                return v
        return default

    def describe(self) -> str:
        """One line, as the report prints it."""
        return " ".join([self.action, *(f"{k}={_text(v)}" for k, v in self.args)])


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    return str(value)


@dataclass(frozen=True, slots=True)
class Scenario:
    topology: Topology
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a step did; ``passed`` is ``None`` for a step that expects nothing."""

    index: int
    step: Step
    time: float
    passed: bool | None
    detail: str


def _number(value: Any, key: str, *, integer: bool = False, low: float = 0.0, high: float | None = None) -> Any:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        kind = "an integer" if integer else "a number"
        raise ConfigError("", f"must be {kind} {bound}, got {value!r}")
    return value


def _check_step(raw: Any, topology: Topology, key: str) -> Step:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"must be a table, got {type(raw).__name__}")
    action = raw.get("action")
    if action not in _KEYS:
        raise ConfigError(f"{key}.action", f"must be one of {', '.join(_KEYS)}, got {action!r}")
    required, optional = _KEYS[action]
    for name in raw:
        if name != "action" and name not in required and name not in optional:
            raise ConfigError(
                f"{key}.{name}", f"unknown key for {action} (expected {', '.join(required + optional) or 'none'})"
            )
    for name in required:
        if name not in raw:
            raise ConfigError(f"{key}.{name}", f"is required for {action}")
    hosts = {h.name for h in topology.hosts}
    guests = {g.name for g in topology.guests}
    args: list[tuple[str, Any]] = []
    for name in (*required, *optional):
        if name not in raw:
            continue
        value = raw[name]
        where = f"{key}.{name}"
        try:
            if name == "host" or (action == "move" and name == "to"):
                if value not in hosts:
                    raise ConfigError("", f"no host is called {value!r}")
            elif name in ("guest", "from"):
                if value not in guests:
                    raise ConfigError("", f"no guest is called {value!r}")
            elif action == "ping" and name == "to":
                if value not in guests:
                    try:
                        ipaddress.ip_address(value)
                    except ValueError:
                        raise ConfigError("", f"{value!r} is neither a guest nor an IP address") from None
            elif name == "vni":
                _number(value, name, integer=True, high=(1 << 24) - 1)
            elif name == "count":
                _number(value, name, integer=True, low=1, high=10000)
            elif name in ("seconds", "latency", "jitter", "timeout", "interval", "reorder_delay"):
                _number(value, name)
            elif name in ("loss", "duplicate", "reorder"):
                _number(value, name, high=1.0)
            elif name == "expect":
                if value not in _EXPECT:
                    raise ConfigError("", f"must be one of {', '.join(_EXPECT)}, got {value!r}")
            elif name == "present":
                if not isinstance(value, bool):
                    raise ConfigError("", f"must be true or false, got {value!r}")
            elif name == "mac":
                from pyvxlan.addr import normalize_mac

                value = normalize_mac(value, name) if isinstance(value, str) else None
                if value is None:
                    raise ConfigError("", "must be a MAC address")
            elif name == "dst":
                value = str(ipaddress.ip_address(value))
            elif name == "sides":
                if not isinstance(value, list) or not all(isinstance(s, list) for s in value):
                    raise ConfigError("", "must be a list of lists of host names")
                for side in value:
                    for h in side:
                        if h not in hosts:
                            raise ConfigError("", f"no host is called {h!r}")
        except ConfigError as exc:
            raise ConfigError(where, exc.reason) from None
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
        args.append((name, value))
    if action in ("vtep-down", "vtep-up", "expect-fdb"):
        host = topology.host(raw["host"])
        if all(d.vni != raw["vni"] for d in host.devices):
            raise ConfigError(f"{key}.vni", f"host {host.name} has no vxlan device with VNI {raw['vni']}")
    return Step(action, tuple(args))


def parse_scenario(data: Mapping[str, Any]) -> Scenario:
    """A :class:`Scenario` from parsed TOML; :class:`~pyvxlan.ConfigError` names the key."""
    topology = parse_topology(data, allow=frozenset({"steps"}))
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ConfigError("steps", "a scenario needs at least one [[steps]] table")
    return Scenario(topology, tuple(_check_step(raw, topology, f"steps[{i}]") for i, raw in enumerate(raw_steps)))


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file; a bad one raises :class:`~pyvxlan.topology.TopologyFileError`
    naming the file, the key (``steps[2].host``) and what is wrong."""
    data = read_toml(path)
    try:
        return parse_scenario(data)
    except ConfigError as exc:
        raise TopologyFileError(str(path), exc.field, exc.reason) from None


def _guest_ip(topology: Topology, target: str) -> str:
    for guest in topology.guests:
        if guest.name == target:
            return guest.address
    return target


async def run_scenario(
    lab: Lab,
    scenario: Scenario,
    *,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    report: Callable[[StepResult], None] = lambda _r: None,
) -> list[StepResult]:
    """Run every step against ``lab``; ``now`` and ``sleep`` are the lab's clock (virtual in the
    simulator). Steps a backend cannot do raise :class:`~pyvxlan.ConfigError`."""
    results = []
    topology = scenario.topology
    for i, step in enumerate(scenario.steps):
        passed: bool | None = None
        detail = ""
        a = step.action
        if a == "ping":
            ip = _guest_ip(topology, step.get("to"))
            r = await lab.guest(step.get("from")).ping(
                ip, count=step.get("count", 3), timeout=step.get("timeout", 1.0), interval=step.get("interval", 1.0)
            )
            detail = f"{r.sent} sent, {r.received} received"
            if r.rtts:
                detail += f", first rtt {r.rtts[0] * 1000:.3f} ms"
            expect = step.get("expect")
            if expect is not None:
                passed = {"all": r.received == r.sent, "some": r.received > 0, "none": r.received == 0}[expect]
                detail += f" (expected {expect})"
        elif a == "wait":
            await sleep(step.get("seconds"))
        elif a == "expect-fdb":
            entries = await lab.vtep(step.get("host"), step.get("vni")).fdb()
            mac, dst = step.get("mac"), step.get("dst")
            found = [e for e in entries if e.mac == mac and (dst is None or e.dst == dst)]
            want = step.get("present", True)
            passed = bool(found) == want
            detail = (
                "found: "
                + "; ".join(e.bridge_line(topology.host(step.get("host")).device(step.get("vni")).name) for e in found)
                if found
                else "no such entry"
            )
        else:
            await _fault(lab, step)
        result = StepResult(i, step, now(), passed, detail)
        results.append(result)
        report(result)
    return results


async def _fault(lab: Lab, step: Step) -> None:
    a = step.action
    method = {
        "move": "move_guest",
        "link-down": "link_down",
        "link-up": "link_up",
        "link": "set_link",
        "partition": "partition",
        "heal": "heal",
        "vtep-down": "vtep_down",
        "vtep-up": "vtep_up",
    }[a]
    func = getattr(lab, method, None)
    if func is None:
        raise ConfigError("action", f"{a} is not supported by this backend")
    if a == "move":
        await func(step.get("guest"), step.get("to"))
    elif a in ("link-down", "link-up"):
        func(step.get("host"))
    elif a == "link":
        from pyvxlan.sim.underlay import LinkProfile

        fields = {k: v for k, v in step.args if k != "host"}
        func(step.get("host"), LinkProfile(**fields))
    elif a == "partition":
        func(*step.get("sides"))
    elif a == "heal":
        func()
    else:
        await func(step.get("host"), step.get("vni"))
