"""Scenario files: a topology plus a list of steps, run by ``pyvxlan run FILE.toml``.

A scenario file is a topology file (see :func:`pyvxlan.lab.topology.load_topology`) with
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
``expect-       ``counter`` (a :class:`~pyvxlan.sim.LabStats`     a lab total since the start is
counter``       field such as ``flood_datagrams``), ``equals``,   in range (simulator only)
                ``at_least``, ``at_most`` (one or more)
``expect-       ``kind`` (``learned``, ``dropped``, ...),         so many events of that kind
event``         ``where`` (``host1/vxlan10``), ``detail`` (text   (filtered by place and text)
                it contains), ``equals``, ``at_least``,           since the start (simulator only)
                ``at_most`` (default: at least 1)
``expect-       ``within`` (seconds, 10.0)                        the latest move converged within
converged``                                                       that long (``mode = "evpn"``,
                                                                  simulator only; waits for it)
==============  ===============================================  ===================================

Steps are numbered from 1, in the report and in errors alike (``step 3.host``).

The simulator-only expectations (:data:`SIM_ONLY`: ``expect-counter``, ``expect-event``) are
refused by ``--backend kernel`` before anything runs; ``--backend both`` checks them on the
simulator side and reports them as "simulator only" on the kernel side, which does nothing for them.

A step that is wrong (an unknown action or key, a host that does not exist) makes the whole file
bad: :func:`load_scenario` raises :class:`~pyvxlan.lab.topology.TopologyFileError` before anything runs.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvxlan.core.entries import FdbEntry
from pyvxlan.errors import ConfigError
from pyvxlan.lab import Lab, SimulatedLab
from pyvxlan.lab.topology import LinkProfile, Topology, TopologyFileError, parse_topology, read_toml

__all__ = [
    "BACKENDS",
    "MAX_SECONDS",
    "SIMULATED_STEPS",
    "SIM_ONLY",
    "Scenario",
    "Step",
    "StepResult",
    "COUNTERS",
    "EVENT_KINDS",
    "check_backend",
    "load_scenario",
    "needs_all_events",
    "parse_scenario",
    "run_scenario",
]

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
    "expect-counter": (("counter",), ("equals", "at_least", "at_most")),
    "expect-event": (("kind",), ("where", "detail", "equals", "at_least", "at_most")),
    "expect-converged": ((), ("within",)),
}
# The lab totals ``expect-counter`` may name: LabStats' integer fields (its ``drops`` is a table).
COUNTERS = (
    "datagrams",
    "multicast_datagrams",
    "unicast_datagrams",
    "flood_datagrams",
    "deliveries",
    "bytes",
    "learned",
    "migrated",
    "expired",
    "missed",
    "delivered",
    "proxy_answered",
)
# EventKind's values (pyvxlan.sim.log), spelled here so that parsing a file loads no simulator.
EVENT_KINDS = ("learned", "migrated", "expired", "missed", "dropped", "joined", "left", "action")
#: The expectations that read the simulator's own totals and events: ``--backend both`` checks
#: them on the simulator side only (the kernel side does nothing for them); ``--backend kernel``
#: refuses them.
SIM_ONLY = frozenset({"expect-counter", "expect-event", "expect-converged"})
#: Every step only a simulated lab (:class:`~pyvxlan.lab.SimulatedLab`) can do: the expectations
#: above and ``link``, which shapes a link (delay, loss, ...).
SIMULATED_STEPS = SIM_ONLY | {"link"}
#: The backends a scenario runs on (``pyvxlan run --backend``), and whether each is simulated.
BACKENDS = {"sim": True, "kernel": False}
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
    entries: tuple[FdbEntry, ...] = ()  # expect-fdb: the entries found for the MAC


# The longest a ``wait`` may be: the largest ageing Linux accepts (``ageing`` is a u32), so any
# entry can be waited out; anything longer is a typo, and infinity would never end.
MAX_SECONDS = 4294967295.0


def _number(
    value: Any, *, integer: bool = False, low: float = 0.0, high: float = MAX_SECONDS, above: bool = False
) -> Any:
    """``value`` when it is a finite number in range; NaN fails every comparison, so it is
    refused by name rather than slipping past ``value < low``."""
    ok_type = int if integer else (int, float)
    kind = "an integer" if integer else "a number"
    bound = f"> {_bound(low)} and <= {_bound(high)}" if above else f"{_bound(low)}..{_bound(high)}"
    if (
        isinstance(value, bool)
        or not isinstance(value, ok_type)
        or not math.isfinite(value)
        or not (value > low if above else value >= low)
        or value > high
    ):
        raise ConfigError("", f"must be {kind} {bound}, got {value!r}")
    return value


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _name(value: Any, names: set[str], what: str) -> str:
    # A TOML list or table where a name belongs is unhashable: check the type before the set.
    if not isinstance(value, str):
        raise ConfigError("", f"must be a {what} name (a string), got {_toml_type(value)}")
    if value not in names:
        raise ConfigError("", f"no {what} is called {value!r}")
    return value


def _toml_type(value: Any) -> str:
    """What a TOML value is, as a user would call it (without echoing a huge value)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _check_step(raw: Any, topology: Topology, key: str) -> Step:
    if not isinstance(raw, Mapping):
        raise ConfigError(key, f"must be a table, got {type(raw).__name__}")
    action = raw.get("action")
    if not isinstance(action, str) or action not in _KEYS:
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
                _name(value, hosts, "host")
            elif name in ("guest", "from"):
                _name(value, guests, "guest")
            elif action == "ping" and name == "to":
                if not isinstance(value, str):
                    raise ConfigError("", f"must be a guest name or an IP address (a string), got {_toml_type(value)}")
                if value not in guests:
                    try:
                        ipaddress.ip_address(value)
                    except ValueError:
                        raise ConfigError("", f"{value!r} is neither a guest nor an IP address") from None
            elif name == "vni":
                _number(value, integer=True, high=(1 << 24) - 1)
            elif name in ("equals", "at_least", "at_most"):
                _number(value, integer=True, high=float(1 << 63))
            elif name == "counter":
                if value not in COUNTERS:
                    raise ConfigError("", f"must be one of {', '.join(COUNTERS)}, got {value!r}")
            elif name == "kind":
                if value not in EVENT_KINDS:
                    raise ConfigError("", f"must be one of {', '.join(EVENT_KINDS)}, got {value!r}")
            elif name in ("where", "detail"):
                if not isinstance(value, str):
                    raise ConfigError("", f"must be a string, got {_toml_type(value)}")
            elif name == "count":
                _number(value, integer=True, low=1, high=10000)
            elif name == "timeout":
                _number(value, above=True)  # a ping that may never wait for its reply waits for none
            elif name in ("seconds", "latency", "jitter", "interval", "reorder_delay", "within"):
                _number(value)
            elif name in ("loss", "duplicate", "reorder"):
                _number(value, high=1.0)
            elif name == "expect":
                if value not in _EXPECT:
                    raise ConfigError("", f"must be one of {', '.join(_EXPECT)}, got {value!r}")
            elif name == "present":
                if not isinstance(value, bool):
                    raise ConfigError("", f"must be true or false, got {value!r}")
            elif name == "mac":
                from pyvxlan.wire.addr import normalize_mac

                value = normalize_mac(value, name) if isinstance(value, str) else None
                if value is None:
                    raise ConfigError("", "must be a MAC address")
            elif name == "dst":
                # A TOML integer would be read as an IPv4 address (5 is 0.0.0.5): text only.
                if not isinstance(value, str):
                    raise ConfigError("", f"must be an IP address (a string), got {_toml_type(value)}")
                value = str(ipaddress.ip_address(value))
            elif name == "sides":
                if not isinstance(value, list) or not all(isinstance(s, list) for s in value):
                    raise ConfigError("", "must be a list of lists of host names")
                for side in value:
                    for h in side:
                        _name(h, hosts, "host")
        except ConfigError as exc:
            raise ConfigError(where, exc.reason) from None
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
        args.append((name, value))
    if action == "expect-converged" and topology.mode.value != "evpn":
        raise ConfigError(f"{key}.action", f'expect-converged needs mode = "evpn", not {topology.mode.value!r}')
    if action == "expect-counter" and not any(k in raw for k in ("equals", "at_least", "at_most")):
        raise ConfigError(f"{key}.equals", "expect-counter needs equals, at_least or at_most")
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
    # "step 3", counted from 1 as the report counts, not TOML's steps[2].
    return Scenario(topology, tuple(_check_step(raw, topology, f"step {i + 1}") for i, raw in enumerate(raw_steps)))


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file; a bad one raises :class:`~pyvxlan.lab.topology.TopologyFileError`
    naming the file, the key (``step 3.host``: steps count from 1) and what is wrong."""
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
        found: list[FdbEntry] = []
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
            for_mac = [e for e in entries if e.mac == mac]
            found = [e for e in for_mac if dst is None or e.dst == dst]
            passed = bool(found) == step.get("present", True)
            name = topology.host(step.get("host")).device(step.get("vni")).name
            if found:
                detail = "found: " + "; ".join(e.bridge_line(name) for e in found)
            elif for_mac:
                # The entry is elsewhere: say where, which is what the reader needs to know.
                detail = f"no entry to {dst}; there is: " + "; ".join(e.bridge_line(name) for e in for_mac)
            else:
                detail = f"no entry for {mac}"
        elif a == "expect-converged":
            passed, detail = await _expect_converged(_simulated(lab, step), step, now, sleep)
        elif a in SIM_ONLY:
            passed, detail = _expect_count(_simulated(lab, step), step)
        else:
            await _fault(lab, step)
        result = StepResult(i, step, now(), passed, detail, tuple(found))
        results.append(result)
        report(result)
    return results


def _simulated(lab: Lab, step: Step) -> SimulatedLab:
    """``lab`` as the simulated lab ``step`` needs (:func:`check_backend` refuses such a step on
    another backend before a run starts)."""
    if not isinstance(lab, SimulatedLab):
        raise ConfigError("action", f"{step.action} is not supported by this backend")
    return lab


async def _expect_converged(
    sim: SimulatedLab, step: Step, now: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
) -> tuple[bool, str]:
    """An ``expect-converged`` step: wait until the latest move converged, or ``within`` seconds
    after it, and say what it cost (``pyvxlan.sim.evpn.Convergence``)."""
    within = float(step.get("within", 10.0))
    moves = getattr(sim, "convergence", [])
    if not moves:
        return False, "no guest has moved"
    last = moves[-1]
    if last.time is None and now() < last.moved_at + within:
        await sleep(last.moved_at + within - now())
        last = getattr(sim, "convergence", moves)[-1]
    if last.time is None:
        return False, f"not converged after {within:g} s ({last.dropped} frames dropped)"
    return last.time <= within, (
        f"converged in {last.time:.3f} s (blackhole {last.blackhole:.3f} s, {last.dropped} frames dropped; "
        f"expected within {within:g} s)"
    )


def _expect_count(sim: SimulatedLab, step: Step) -> tuple[bool, str]:
    """An ``expect-counter`` or ``expect-event`` step against the lab's totals since it opened."""
    if step.action == "expect-counter":
        value = int(getattr(sim.stats(), step.get("counter")))
        what = step.get("counter")
    else:
        kind, where, text = step.get("kind"), step.get("where"), step.get("detail")
        if where is None and text is None:
            counts = sim.event_counts
            value = sum(n for k, n in counts.items() if k.value == kind)
        else:
            # Only kept events can be filtered: ``pyvxlan run`` keeps every one for such steps.
            value = sum(
                1
                for e in sim.events
                if e.kind.value == kind and (where is None or e.where == where) and (text is None or text in e.detail)
            )
        what = f"{kind} events"
    checks = [(k, step.get(k)) for k in ("equals", "at_least", "at_most") if step.get(k) is not None]
    if not checks:
        checks = [("at_least", 1)]
    ok = all({"equals": value == b, "at_least": value >= b, "at_most": value <= b}[k] for k, b in checks)
    expected = ", ".join(f"{'' if k == 'equals' else k.replace('_', ' ') + ' '}{b}" for k, b in checks)
    return ok, f"{value} {what} (expected {expected})"


def needs_all_events(scenario: Scenario) -> bool:
    """Whether a step filters events by place or text, which needs every event kept."""
    return any(
        s.action == "expect-event" and (s.get("where") is not None or s.get("detail") is not None)
        for s in scenario.steps
    )


def check_backend(scenario: Scenario, backend: str, *, skip_sim_only: bool = False) -> None:
    """Raise :class:`~pyvxlan.ConfigError` (field ``step N.action``, N from 1) for the first step
    that the ``backend`` (a key of :data:`BACKENDS`) cannot do, so that a run fails before its
    first step, not half-way. With ``skip_sim_only`` the :data:`SIM_ONLY` expectations are not
    checked: the side of ``--backend both`` held against the simulator does nothing for them."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if BACKENDS[backend]:
        return
    for i, step in enumerate(scenario.steps):
        if skip_sim_only and step.action in SIM_ONLY:
            continue
        if step.action in SIMULATED_STEPS:
            raise ConfigError(f"step {i + 1}.action", f"{step.action} is not supported by the {backend} backend")


async def _fault(lab: Lab, step: Step) -> None:
    a = step.action
    if a == "move":
        await lab.move_guest(step.get("guest"), step.get("to"))
    elif a == "link-down":
        lab.link_down(step.get("host"))
    elif a == "link-up":
        lab.link_up(step.get("host"))
    elif a == "link":
        fields = {k: v for k, v in step.args if k != "host"}
        _simulated(lab, step).set_link(step.get("host"), LinkProfile(**fields))
    elif a == "partition":
        lab.partition(*step.get("sides"))
    elif a == "heal":
        lab.heal()
    elif a == "vtep-down":
        await lab.vtep_down(step.get("host"), step.get("vni"))
    elif a == "vtep-up":
        await lab.vtep_up(step.get("host"), step.get("vni"))
    else:
        raise ConfigError("action", f"{a} is not an action")
