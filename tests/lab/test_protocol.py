"""pyvxlan.lab.protocol: both labs are a Lab (mypy holds that below), the simulator a SimulatedLab,
and scenarios ask the protocol, not getattr, what a backend can do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pyvxlan import ConfigError
from pyvxlan.errors import LabKeyError
from pyvxlan.lab import Lab, SimulatedLab, lab_key_error
from pyvxlan.lab.scenario import BACKENDS, SIMULATED_STEPS, check_backend, parse_scenario
from pyvxlan.lab.topology import classic_demo

if TYPE_CHECKING:
    from pyvxlan.kernel import KernelLab
    from pyvxlan.sim import SimLab

    # mypy --strict checks these: each lab has every method of its protocol, with its signature.
    def _kernel_is_a_lab(lab: KernelLab) -> Lab:
        return lab

    def _sim_is_a_simulated_lab(lab: SimLab) -> SimulatedLab:
        return lab


def test_the_simulated_lab_is_a_simulated_lab() -> None:
    from pyvxlan.sim import open_lab, run

    async def main() -> tuple[bool, bool]:
        async with open_lab(classic_demo()) as lab:
            return isinstance(lab, SimulatedLab), isinstance(lab, Lab)

    assert run(main) == (True, True)


def test_every_lab_method_exists_on_both_labs() -> None:
    from pyvxlan.kernel import KernelLab
    from pyvxlan.sim import SimLab

    members = [name for name in vars(Lab) if not name.startswith("_") and name != "topology"]
    assert len(members) == 16
    for cls in (KernelLab, SimLab):
        assert [m for m in members if not callable(getattr(cls, m, None)) and not hasattr(cls, m)] == []


SCENARIO: dict[str, Any] = {
    "underlay": {"subnet": "198.51.100.0/24"},
    "hosts": [
        {"name": "host1", "address": "198.51.100.1", "devices": [{"vni": 10, "group": "239.1.1.1"}]},
        {"name": "host2", "address": "198.51.100.2", "devices": [{"vni": 10, "group": "239.1.1.1"}]},
    ],
    "steps": [{"action": "link-down", "host": "host1"}],
}


@pytest.mark.parametrize(
    "step",
    [
        {"action": "link", "host": "host1", "loss": 0.5},
        {"action": "expect-counter", "counter": "learned", "at_least": 1},
    ],
)
def test_the_kernel_backend_refuses_simulated_steps_before_a_run(step: dict[str, object]) -> None:
    scenario = parse_scenario({**SCENARIO, "steps": [SCENARIO["steps"][0], step]})
    check_backend(scenario, "sim")
    with pytest.raises(ConfigError) as info:
        check_backend(scenario, "kernel")
    assert str(info.value) == f"step 2.action: {step['action']} is not supported by the kernel backend"
    if step["action"] == "link":
        with pytest.raises(ConfigError):
            check_backend(scenario, "kernel", skip_sim_only=True)  # both sides must shape the link
    else:
        check_backend(scenario, "kernel", skip_sim_only=True)
    assert step["action"] in SIMULATED_STEPS


def test_check_backend_names_the_backends() -> None:
    with pytest.raises(ConfigError) as info:
        check_backend(parse_scenario(SCENARIO), "vm")
    assert str(info.value) == "backend: must be one of sim, kernel, got 'vm'"
    assert BACKENDS == {"sim": True, "kernel": False}


def test_lab_key_error_lists_at_most_twenty_names() -> None:
    err = lab_key_error("guest", "g0", [f"g{i}" for i in range(1, 21)])
    assert isinstance(err, LabKeyError) and isinstance(err, KeyError)
    assert (err.what, err.name) == ("guest", "g0")
    assert str(err).endswith(", g20)")
    assert str(lab_key_error("guest", "g0", [f"g{i}" for i in range(1, 22)])) == "no guest 'g0'"
