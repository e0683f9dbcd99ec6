"""pyvxlan.lab.topology: validation, the classic demo, modes, and the TOML loader's errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyvxlan import ConfigError, VtepConfig
from pyvxlan.errors import LabKeyError
from pyvxlan.lab.topology import (
    FdbMode,
    GuestSpec,
    Host,
    Topology,
    TopologyFileError,
    Underlay,
    VxlanDevice,
    classic_demo,
    load_topology,
)

GOOD = """\
mode = "unicast"

[underlay]
subnet = "198.51.100.0/24"
mtu = 1450

[[hosts]]
name = "host1"
address = "198.51.100.1"
[[hosts.devices]]
vni = 10
group = "239.1.1.1"
ageing = 60
[[hosts.devices]]
vni = 20
name = "vx20"
learning = false
src_port_range = [50000, 50010]

[[hosts]]
name = "host2"
address = "198.51.100.2"
[[hosts.devices]]
vni = 10
group = "239.1.1.1"

[[guests]]
name = "a"
host = "host1"
vni = 10
mac = "02:00:00:00:00:0A"
ip = "203.0.113.1/24"

[[guests]]
name = "b"
host = "host2"
vni = 10
mac = "02:00:00:00:00:0b"
ip = "203.0.113.2/24"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


def test_classic_demo_shape() -> None:
    topo = classic_demo()
    assert topo.underlay == Underlay("198.51.100.0/24", 1500)
    assert topo.mode is FdbMode.MULTICAST
    assert [h.name for h in topo.hosts] == ["host1", "host2"]
    dev = topo.hosts[0].devices[0]
    assert (dev.name, dev.vni, dev.group, dev.bridge, dev.config.dst_port) == ("vxlan10", 10, "239.1.1.1", "br10", 4789)
    assert [(g.name, g.host, g.address) for g in topo.guests] == [
        ("guest1", "host1", "203.0.113.1"),
        ("guest2", "host2", "203.0.113.2"),
    ]


def test_classic_demo_ipv6_and_many_hosts() -> None:
    topo = classic_demo(12, FdbMode.UNICAST, ipv6=True)
    assert topo.underlay.subnet == "2001:db8::/64"
    assert topo.hosts[11].address == "2001:db8::c"
    assert topo.peers("host1", 10)[:2] == ["2001:db8::2", "2001:db8::3"]
    assert len(topo.peers("host1", 10)) == 11
    assert topo.vtep_config("host1", 10).group is None


def test_classic_demo_rejects_zero_hosts() -> None:
    with pytest.raises(ConfigError, match=r"^hosts: the classic demo has 1\.\.250 hosts, got 0$"):
        classic_demo(0)


def test_vtep_config_per_mode() -> None:
    topo = classic_demo()
    assert topo.vtep_config("host2", 10) == VtepConfig(vni=10, local="198.51.100.2", group="239.1.1.1")
    uni = topo.with_mode(FdbMode.UNICAST).vtep_config("host2", 10)
    assert (uni.group, uni.learning, uni.proxy) == (None, True, False)
    ctl = topo.with_mode(FdbMode.CONTROLLER).vtep_config("host2", 10)
    assert (ctl.group, ctl.learning, ctl.proxy) == (None, False, True)


def test_lookups_raise_lab_key_errors_as_the_labs_do() -> None:
    topo = classic_demo()
    for call, message in (
        (lambda: topo.host("nope"), "no host 'nope' (there are: host1, host2)"),
        (lambda: topo.vtep_config("host1", 11), "no vxlan device on host 'host1' with VNI 11 (there are: 10)"),
        (lambda: topo.guest("x"), "no guest 'x' (there are: guest1, guest2)"),
        (lambda: classic_demo(21).guest("x"), "no guest 'x'"),
    ):
        with pytest.raises(LabKeyError) as info:
            call()
        assert str(info.value) == message
        assert isinstance(info.value, KeyError)  # code written against KeyError keeps working


def test_with_guest_on_moves_the_guest() -> None:
    moved = classic_demo(3).with_guest_on("guest1", "host3")
    assert moved.guest("guest1").host == "host3"
    assert [g.name for g in moved.guests_on("host3")] == ["guest1", "guest3"]


def test_device_validation_uses_vtep_config_rules() -> None:
    with pytest.raises(ConfigError, match=r"^group: 198\.51\.100\.9 is not a multicast address \(use remote\)$"):
        VxlanDevice(10, group="198.51.100.9")
    with pytest.raises(ConfigError, match=r"^vni: must be in 0\.\.16777215, got -1$"):
        VxlanDevice(-1)
    with pytest.raises(ConfigError, match=r"^learning: must be true or false, got 'yes'$"):
        VxlanDevice(10, learning="yes")
    with pytest.raises(ConfigError, match=r"^bridge: 'vxlan10' is also the vxlan device's name$"):
        VxlanDevice(10, bridge="vxlan10")


def test_topology_validation_messages() -> None:
    u = Underlay("198.51.100.0/24")
    dev = VxlanDevice(10, group="239.1.1.1")
    h1 = Host("host1", "198.51.100.1", (dev,))
    with pytest.raises(ConfigError, match=r"^hosts\[1\]\.name: host 'host1' is defined twice$"):
        Topology(u, (h1, Host("host1", "198.51.100.2")))
    with pytest.raises(
        ConfigError,
        match=r"^hosts\[0\]\.address: 192\.0\.2\.1 is not a host address in the underlay 198\.51\.100\.0/24$",
    ):
        Topology(u, (Host("h", "192.0.2.1"),))
    with pytest.raises(ConfigError, match=r"^hosts\[0\]\.devices\[0\]\.group: multicast mode needs a group"):
        Topology(u, (Host("h", "198.51.100.1", (VxlanDevice(10),)),))
    g = GuestSpec("g1", "host1", 10, "02:00:00:00:00:01", "203.0.113.1/24")
    with pytest.raises(ConfigError, match=r"^guests\[0\]\.vni: host host1 has no vxlan device with VNI 20$"):
        Topology(u, (h1,), (GuestSpec("g1", "host1", 20, "02:00:00:00:00:01", "203.0.113.1/24"),))
    with pytest.raises(ConfigError, match=r"^guests\[1\]\.mac: 02:00:00:00:00:01 is also guest g1's MAC$"):
        Topology(u, (h1,), (g, GuestSpec("g2", "host1", 10, "02:00:00:00:00:01", "203.0.113.2/24")))
    with pytest.raises(ConfigError, match=r"^guests\[1\]\.ip: 203\.0\.113\.1 is also guest g1's address in VNI 10$"):
        Topology(u, (h1,), (g, GuestSpec("g2", "host1", 10, "02:00:00:00:00:02", "203.0.113.1/24")))
    with pytest.raises(ConfigError, match=r"^ip: '203\.0\.113\.1' needs a prefix length, such as 203\.0\.113\.1/24$"):
        GuestSpec("g", "h", 10, "02:00:00:00:00:01", "203.0.113.1")
    with pytest.raises(ConfigError, match=r"^mac: 01:00:00:00:00:01 is not a unicast MAC address$"):
        GuestSpec("g", "h", 10, "01:00:00:00:00:01", "203.0.113.1/24")
    with pytest.raises(ConfigError, match=r"^devices\[1\]\.vni: VNI 10 already has a device on host h$"):
        Host("h", "198.51.100.1", (dev, VxlanDevice(10, name="vx10b", bridge="brb")))


def test_underlay_ipv6_group_must_match_family() -> None:
    with pytest.raises(
        ConfigError, match=r"^hosts\[0\]\.devices\[0\]\.group: 239\.1\.1\.1 is not IPv6 like the underlay$"
    ):
        Topology(Underlay("2001:db8::/64"), (Host("h", "2001:db8::1", (VxlanDevice(10, group="239.1.1.1"),)),))


def test_load_good_file(tmp_path: Path) -> None:
    topo = load_topology(write(tmp_path, GOOD))
    assert topo.mode is FdbMode.UNICAST
    assert topo.underlay.mtu == 1450
    h1 = topo.host("host1")
    assert h1.devices[0].config.ageing == 60.0
    cfg = h1.devices[1].config
    assert (cfg.name, cfg.learning, cfg.src_port_range) == ("vx20", False, (50000, 50010))
    assert topo.guest("a").mac == "02:00:00:00:00:0a"
    assert topo.peers("host1", 10) == ["198.51.100.2"]
    assert topo.peers("host1", 20) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'address = "198.51.100.2"',
            'address = "198.51.100.300"',
            "hosts[1].address: '198.51.100.300' is not an IPv4 or IPv6 address",
        ),
        ("mtu = 1450", "mtu = 20", "underlay.mtu: must be in 68..65535 for IPv4, got 20"),
        ("ageing = 60", "ageing = -1", "hosts[0].devices[0].ageing: must be in 0..4294967295 seconds, got -1"),
        ('mode = "unicast"', 'mode = "bgp"', "mode: must be one of multicast, unicast, controller, evpn, got 'bgp'"),
        ("learning = false", "learnin = false", "hosts[0].devices[1].learnin: unknown key (expected one of "),
        ('host = "host2"', 'host = "host9"', "guests[1].host: no host is called 'host9'"),
        ('ip = "203.0.113.2/24"', "", "guests[1].ip: is required"),
        ("[underlay]", "[underlay2]", "underlay2: unknown key (expected one of guests, hosts, mode, steps, underlay)"),
        ("vni = 20", 'vni = "20"', "hosts[0].devices[1].vni: must be an int, got str '20'"),
    ],
)
def test_bad_file_names_file_key_and_problem(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert info.value.path == str(path)
    assert isinstance(info.value, ConfigError)


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[underlay\n")
    with pytest.raises(TopologyFileError, match=r": \(syntax\): "):
        load_topology(path)
    with pytest.raises(TopologyFileError, match=r"nothere\.toml: \(file\): No such file or directory$"):
        load_topology(tmp_path / "nothere.toml")


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Host("host1", 5), "address: 5 is not an IPv4 or IPv6 address"),  # type: ignore[arg-type]
        (lambda: Host("host1", True), "address: True is not an IPv4 or IPv6 address"),  # type: ignore[arg-type]
        (
            lambda: Underlay(3325256704),  # type: ignore[arg-type]
            "subnet: 3325256704 is not an IPv4 or IPv6 network such as 198.51.100.0/24",
        ),
    ],
)
def test_an_integer_is_not_an_address(make: Any, error: str) -> None:
    """ipaddress reads integers as addresses (5 is 0.0.0.5); a topology file means text."""
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value) == error


def test_a_device_takes_every_vtep_config_option_but_the_hosts() -> None:
    dev = VxlanDevice(10, group="239.1.1.1", tos="inherit", ttl_inherit=True, gbp=True, gbp_lost_on_change=False)
    topo = Topology(Underlay("198.51.100.0/24"), (Host("h1", "198.51.100.1", (dev,)),))
    cfg = topo.vtep_config("h1", 10)
    assert (cfg.local, cfg.tos, cfg.ttl_inherit, cfg.gbp, cfg.gbp_lost_on_change) == (
        "198.51.100.1",
        "inherit",
        True,
        True,
        False,
    )
    assert cfg == VtepConfig(
        vni=10,
        local="198.51.100.1",
        group="239.1.1.1",
        tos="inherit",
        ttl_inherit=True,
        gbp=True,
        gbp_lost_on_change=False,
    )
    # From a VtepConfig: the same device.
    assert (
        VxlanDevice(VtepConfig(vni=10, group="239.1.1.1", tos=1, ttl_inherit=True, gbp=True, gbp_lost_on_change=False))
        == dev
    )
    with pytest.raises(ConfigError, match=r"^local: is the host's address: give it as the host's address$"):
        VxlanDevice(10, local="198.51.100.1")
    with pytest.raises(
        ConfigError, match=r"^dev: is the host's underlay interface: give it as the host's underlay interface$"
    ):
        VxlanDevice(VtepConfig(vni=10, dev="eth1"))
    with pytest.raises(TypeError, match=r"^VxlanDevice\(\) got an unexpected keyword argument 'colour'$"):
        VxlanDevice(10, colour="red")


def test_each_host_derives_its_own_mac_unless_one_is_given() -> None:
    dev = VxlanDevice(VtepConfig(vni=10, group="239.1.1.1"))
    hosts = (Host("h1", "198.51.100.1", (dev,)), Host("h2", "198.51.100.2", (dev,)))
    topo = Topology(Underlay("198.51.100.0/24"), hosts)
    macs = [topo.vtep_config(h, 10).mac for h in ("h1", "h2")]
    assert macs == [VtepConfig(vni=10, local=a).mac for a in ("198.51.100.1", "198.51.100.2")]
    fixed = VxlanDevice(10, group="239.1.1.1", mac="02:00:00:00:10:01")
    topo = Topology(Underlay("198.51.100.0/24"), (Host("h1", "198.51.100.1", (fixed,)),))
    assert topo.vtep_config("h1", 10).mac == "02:00:00:00:10:01"


def test_a_topology_file_sets_any_vtep_config_option(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        '[underlay]\nsubnet = "2001:db8::/64"\n[[hosts]]\nname = "h1"\naddress = "2001:db8::1"\n'
        'devices = [{ vni = 10, remote = "2001:db8::2", tos = "inherit", ttl = 9, udp6_zero_csum_tx = true, '
        "udp6_zero_csum_rx = true, max_entries = 7, bridge_ageing = 30 }]\n"
    )
    dev = load_topology(path).host("h1").device(10)
    assert dev == VxlanDevice(
        10,
        remote="2001:db8::2",
        tos="inherit",
        ttl=9,
        udp6_zero_csum_tx=True,
        udp6_zero_csum_rx=True,
        max_entries=7,
        bridge_ageing=30,
    )
    path.write_text(path.read_text().replace("ttl = 9", 'dev = "eth1"'))
    with pytest.raises(TopologyFileError, match=r"hosts\[0\]\.devices\[0\]\.dev: unknown key \(expected one of "):
        load_topology(path)


def test_a_device_is_replaced_like_a_value() -> None:
    """dataclasses.replace with a config option changes the config and keeps the rest (the conform
    engine's episodes turn learning off this way)."""
    from dataclasses import replace

    def options(given: dict[str, Any]) -> Any:
        # The options are VtepConfig's, not VxlanDevice's fields, so mypy's dataclass plugin does
        # not know them: the call is checked at run time.
        return given

    dev = VxlanDevice(10, group="239.1.1.1", ttl=5, bridge="br-x")
    off = replace(dev, **options({"learning": False}))
    assert (off.config.learning, off.config.ttl, off.group, off.bridge, off.mac_given) == (
        False,
        5,
        "239.1.1.1",
        "br-x",
        False,
    )
    assert replace(off, **options({"learning": True})) == dev
    assert replace(dev, **options({"mac": "02:00:00:00:00:09"})).mac_given is True
    with pytest.raises(TypeError, match="^VxlanDevice\\(\\) got an unexpected keyword argument 'colour'$"):
        replace(dev, **options({"colour": "red"}))
    with pytest.raises(ConfigError, match="^local: is the host's address: give it as the host's address$"):
        replace(dev, **options({"local": "198.51.100.1"}))
