"""pyvxlan.lab.iproute2 against the real kernel: the rendered ``ip link add`` makes the device its
VtepConfig describes, read back with ``ip -d -j link show``, and the same device as the netlink
request the kernel backend sends for that config (KernelVtep.create)."""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvxlan import VtepConfig
from pyvxlan.kernel import KernelVtep
from pyvxlan.kernel import netlink as nl
from pyvxlan.lab.iproute2 import UPLINK, link_add_command

from .conftest import TEST_PREFIX, kernel_available

pytestmark = pytest.mark.kernel


def _run(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{shlex.join(args)}: {done.stderr.strip()}"
    return done.stdout


@pytest.fixture(scope="module")
def two_namespaces() -> Iterator[tuple[str, str]]:
    """Two namespaces with an ``eth0`` each (a bridge: always there, unlike dummy): one for the
    command, one for the netlink request (the same VNI and port cannot be made twice in one)."""
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    names = (TEST_PREFIX + "ipa", TEST_PREFIX + "ipb")
    made = []
    try:
        for ns in names:
            nl.netns_create(ns)
            made.append(ns)
            _run(["ip", "-n", ns, "link", "add", UPLINK, "type", "bridge"])
        yield names
    finally:
        for ns in made:
            nl.netns_remove(ns)


def _show(ns: str, name: str) -> tuple[dict[str, Any], str]:
    link = json.loads(_run(["ip", "-n", ns, "-d", "-j", "link", "show", name]))[0]
    text = _run(["ip", "-n", ns, "-d", "link", "show", name])
    return link, text


_V4 = ("198.51.100.1", "239.1.1.1", "198.51.100.2")
_V6 = ("2001:db8::1", "ff05::100", "2001:db8::2")


@st.composite
def configs(draw: st.DrawFn) -> VtepConfig:
    local, group, remote = draw(st.sampled_from([_V4, _V6]))
    where = draw(st.sampled_from(["group", "remote", "none"]))
    low = draw(st.integers(1, 65535))
    ttl_inherit = draw(st.booleans())
    return VtepConfig(
        vni=draw(st.integers(0, (1 << 24) - 1)),
        local=draw(st.sampled_from([local, None])) if where != "group" else local,
        group=group if where == "group" else None,
        remote=remote if where == "remote" else None,
        dev=UPLINK if where == "group" else draw(st.sampled_from([UPLINK, None])),
        dst_port=draw(st.integers(1, 65535)),
        src_port_range=(low, draw(st.integers(low, 65535))),
        ttl=0 if ttl_inherit else draw(st.sampled_from([0, 1, 64, 255])),
        ttl_inherit=ttl_inherit,
        tos=draw(st.sampled_from([0, "inherit", 0x10, 0xB8])),
        learning=draw(st.booleans()),
        ageing=draw(st.sampled_from([0.5, 1, 60, 299.5, 300, 4000])),
        max_entries=draw(st.sampled_from([0, 1, 1000])),
        proxy=draw(st.booleans()),
        l2miss=draw(st.booleans()),
        l3miss=draw(st.booleans()),
        gbp=draw(st.booleans()),
        udp6_zero_csum_tx=draw(st.booleans()),
        udp6_zero_csum_rx=draw(st.booleans()),
        mac=draw(st.sampled_from(["", "02:00:00:00:00:0a"])),
        name="vxt",
    )


def _expected(cfg: VtepConfig) -> dict[str, Any]:
    """What ``ip -d -j link show`` (iproute2's print_opt) says for a device made from ``cfg``."""
    six = cfg.ip_version == 6
    data: dict[str, Any] = {"id": cfg.vni}
    for key, value in (("group", cfg.group), ("remote", cfg.remote), ("local", cfg.local)):
        if value is not None:
            data[key + ("6" if six else "")] = value
    if cfg.dev is not None:
        data["link"] = cfg.dev
    data["port_range"] = {"low": cfg.src_port_range[0], "high": cfg.src_port_range[1]}
    data["port"] = cfg.dst_port
    data["learning"] = cfg.learning
    for flag in ("proxy", "l2miss", "l3miss"):
        if getattr(cfg, flag):
            data[flag] = True
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=configs())
def test_the_rendered_command_makes_the_configured_device(two_namespaces: tuple[str, str], cfg: VtepConfig) -> None:
    ns_cmd, ns_nl = two_namespaces
    _run(shlex.split(link_add_command(cfg, netns=ns_cmd)))
    try:
        link, text = _show(ns_cmd, cfg.name)
        data = link["linkinfo"]["info_data"]
        assert link["linkinfo"]["info_kind"] == "vxlan"
        assert link["address"] == cfg.mac
        assert {k: data[k] for k in _expected(cfg)} == _expected(cfg)
        assert not {"proxy", "l2miss", "l3miss"} & {k for k in data if not _expected(cfg).get(k)}
        assert data.get("gbp", False) is cfg.gbp
        assert data["ageing"] == max(1, -int(-cfg.ageing // 1))
        assert data.get("limit", 0) == cfg.max_entries
        assert data.get("ttl", 0) == cfg.ttl
        assert ("ttl inherit" in text) is cfg.ttl_inherit
        assert data.get("tos", "0x0") == ("0x1" if cfg.tos == "inherit" else f"{cfg.tos:#x}")
        assert data["udp_zero_csum6_tx"] is cfg.udp6_zero_csum_tx
        assert data["udp_zero_csum6_rx"] is cfg.udp6_zero_csum_rx

        # The netlink request of the kernel backend makes the very same device.
        async def create() -> None:
            vtep = await KernelVtep.create(cfg, netns=ns_nl)
            await vtep.aclose()

        trio.run(create)
        try:
            other, other_text = _show(ns_nl, cfg.name)
            assert other["linkinfo"] == link["linkinfo"]
            assert other["address"] == link["address"]
            assert ("ttl inherit" in other_text) is cfg.ttl_inherit
        finally:
            _run(["ip", "-n", ns_nl, "link", "del", cfg.name])
    finally:
        _run(["ip", "-n", ns_cmd, "link", "del", cfg.name])
