"""A lab described as data: underlay, hosts, vxlan devices, bridges and guests.

One :class:`Topology` is realized by either backend: the simulator (:func:`pyvxlan.sim.open_lab`)
and real network namespaces (:func:`pyvxlan.kernel.open_lab`). It therefore says only what a
network engineer would write down (addresses, ``ip link add ... type vxlan`` options, which guest
sits on which bridge) and nothing about how either backend runs it.

Every host has, for each of its :class:`VxlanDevice` entries, a Linux bridge (``br<vni>`` unless
named) with the vxlan device as one port and the host's guests of that VNI on the others. The
:class:`FdbMode` says how the VTEPs' forwarding tables get filled.

>>> topo = classic_demo()
>>> [(h.name, h.address) for h in topo.hosts]
[('host1', '198.51.100.1'), ('host2', '198.51.100.2')]
>>> cfg = topo.vtep_config("host1", 10)
>>> (cfg.name, cfg.vni, cfg.local, cfg.group, cfg.learning)
('vxlan10', 10, '198.51.100.1', '239.1.1.1', True)
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from pyvxlan.core.config import DEFAULT_AGEING, VtepConfig
from pyvxlan.errors import ConfigError
from pyvxlan.lab.protocol import lab_key_error
from pyvxlan.wire.addr import normalize_mac

__all__ = [
    "MAX_COUNT",
    "MAX_FILE_SIZE",
    "HOST_FIELDS",
    "FdbMode",
    "GuestSpec",
    "Host",
    "LinkProfile",
    "Topology",
    "TopologyFileError",
    "Underlay",
    "VxlanDevice",
    "classic_demo",
    "load_topology",
    "parse_toml",
    "parse_topology",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z")
_CONFIG_KEYS: Final = frozenset(f.name for f in fields(VtepConfig))


class FdbMode(enum.Enum):
    """How the VTEPs' forwarding databases are filled.

    ``MULTICAST``: flood-and-learn. Each device joins its group; broadcast and unknown unicast go
    to the group, and VTEPs learn remote MACs from what they receive (the classic demo).

    ``UNICAST``: head-end replication. No group; every device gets one all-zeros entry per peer
    VTEP of its VNI (``bridge fdb append 00:00:00:00:00:00 dst PEER``), so a flood is one unicast
    copy per peer, and learning fills in the rest.

    ``CONTROLLER``: as Docker's overlay driver or an EVPN control plane does. No group, no
    all-zeros entries, learning off, proxy ARP on; when a guest attaches, every other VTEP of its
    VNI gets a static FDB entry (guest MAC behind the guest's host) and a neighbour entry (guest
    IP to guest MAC), so ARP is answered locally and nothing is ever flooded.

    ``EVPN``: BGP EVPN as FRR runs it (RFC 7432, RFC 8365). No group, learning off, proxy ARP on;
    each host runs an EVPN state machine per VNI and a route reflector distributes its routes:
    type-2 routes become static FDB and neighbour entries, type-3 routes the all-zeros flood list
    (head-end replication for what ARP/ND suppression does not answer).
    """

    MULTICAST = "multicast"
    UNICAST = "unicast"
    CONTROLLER = "controller"
    EVPN = "evpn"


def _check_name(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            field_name,
            f"{value!r} is not a valid name (1-15 of letters, digits, '_', '.', '-', not starting with one of '_.-')",
        )
    return value


@dataclass(frozen=True, slots=True)
class Underlay:
    """The network the hosts share: one IPv4 or IPv6 subnet and its MTU.

    >>> Underlay("2001:db8::/64").ip_version
    6
    >>> Underlay("198.51.100.0/24", mtu=40)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: mtu: must be in 68..65535 for IPv4, got 40
    """

    subnet: str
    mtu: int = 1500

    def __post_init__(self) -> None:
        try:
            if not isinstance(self.subnet, str):  # ipaddress reads an integer as an address
                raise TypeError
            net = ipaddress.ip_network(self.subnet, strict=True)
        except (ValueError, TypeError):
            raise ConfigError(
                "subnet", f"{self.subnet!r} is not an IPv4 or IPv6 network such as 198.51.100.0/24"
            ) from None
        object.__setattr__(self, "subnet", str(net))
        low = 68 if net.version == 4 else 1280  # the protocols' minimum MTUs (RFC 791, RFC 8200)
        if isinstance(self.mtu, bool) or not isinstance(self.mtu, int) or not low <= self.mtu <= 65535:
            raise ConfigError("mtu", f"must be in {low}..65535 for IPv{net.version}, got {self.mtu!r}")

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.subnet)

    @property
    def ip_version(self) -> int:
        return self.network.version

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen


#: The :class:`~pyvxlan.VtepConfig` fields a topology's device does not set itself: ``local`` is
#: its host's address, and ``dev`` the host's underlay interface (``eth0`` in a kernel lab).
HOST_FIELDS: Final = frozenset({"local", "dev"})


@dataclass(frozen=True, slots=True, init=False)
class VxlanDevice:
    """A vxlan device on a host and the bridge it is a port of.

    ``config`` holds the device's settings, every option of :class:`~pyvxlan.VtepConfig`
    (``ip link add NAME type vxlan ...``) except ``local`` and ``dev``, which come from the host
    (:data:`HOST_FIELDS`). Give it as a ``VtepConfig`` or as the VNI and ``VtepConfig``'s keyword
    arguments. ``bridge`` names the Linux bridge (``br<vni>`` by default) and ``bridge_ageing`` is
    its MAC ageing time (Linux's default 300 s).

    >>> dev = VxlanDevice(10, group="239.1.1.1", tos="inherit")
    >>> (dev.name, dev.bridge, dev.config.tos)
    ('vxlan10', 'br10', 'inherit')
    >>> VxlanDevice(VtepConfig(vni=20, learning=False)).config.learning
    False
    >>> from dataclasses import replace
    >>> replace(dev, learning=False, bridge="br-a").config.learning, replace(dev, learning=False).config.tos
    (False, 'inherit')
    >>> VxlanDevice(10, local="198.51.100.1")
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: local: is the host's address: give it as the host's address
    """

    config: VtepConfig
    bridge: str
    bridge_ageing: float
    # Whether config.mac was given; if not, each host's device derives its own from the host's
    # address (as VtepConfig does from local), so the same VxlanDevice on two hosts has two MACs.
    mac_given: bool = field(repr=False)
    # config's arguments, kept to make each host's VtepConfig at VtepConfig's own cost
    # (dataclasses.replace walks every field's metadata: ~1.4x slower for 10,000 hosts).
    _arguments: dict[str, Any] = field(init=False, repr=False, compare=False, hash=False)

    def __init__(
        self,
        vni: int | VtepConfig | None = None,
        *,
        config: VtepConfig | None = None,
        bridge: str = "",
        bridge_ageing: float = DEFAULT_AGEING,
        mac_given: bool | None = None,
        **options: Any,
    ) -> None:
        if isinstance(vni, VtepConfig):
            vni, config = None, vni
        if config is None:
            if vni is None:
                raise TypeError("VxlanDevice() needs a VNI or a VtepConfig")
            for name in options:
                if name not in _CONFIG_KEYS:
                    raise TypeError(f"VxlanDevice() got an unexpected keyword argument {name!r}")
            self._refuse_host_fields(options)
            config = VtepConfig(vni=vni, **options)
            given = bool(options.get("mac"))
        elif not isinstance(config, VtepConfig):
            raise ConfigError("config", f"must be a VtepConfig, got {type(config).__name__}")
        elif vni is not None:
            raise TypeError("VxlanDevice() takes a VtepConfig or a VNI, not both")
        else:
            if options:
                # Options beside a config change it: dataclasses.replace(device, learning=False)
                # calls VxlanDevice(config=..., learning=False), so a device is replaced like a value.
                for name in options:
                    if name not in _CONFIG_KEYS:
                        raise TypeError(f"VxlanDevice() got an unexpected keyword argument {name!r}")
                self._refuse_host_fields(options)
                config = replace(config, **options)
            self._refuse_host_fields({k: getattr(config, k) for k in HOST_FIELDS if getattr(config, k) is not None})
            if "mac" in options:
                given = bool(options["mac"])
            elif mac_given is None:
                # A VtepConfig made without a MAC holds the one derived from no address.
                given = replace(config, mac="").mac != config.mac
            else:
                given = mac_given
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "mac_given", given)
        arguments = {name: getattr(config, name) for name in _CONFIG_KEYS}
        if not given:
            arguments["mac"] = ""
        object.__setattr__(self, "_arguments", arguments)
        object.__setattr__(self, "bridge", _check_name(bridge or f"br{config.vni}", "bridge"))
        if self.bridge == config.name:
            raise ConfigError("bridge", f"{self.bridge!r} is also the vxlan device's name")
        if isinstance(bridge_ageing, bool) or not isinstance(bridge_ageing, (int, float)) or bridge_ageing < 0:
            raise ConfigError("bridge_ageing", f"must be >= 0 seconds, got {bridge_ageing!r}")
        object.__setattr__(self, "bridge_ageing", bridge_ageing)

    @staticmethod
    def _refuse_host_fields(options: Mapping[str, Any]) -> None:
        for name in sorted(HOST_FIELDS & options.keys()):
            where = "address" if name == "local" else "underlay interface"
            raise ConfigError(name, f"is the host's {where}: give it as the host's {where}")

    @property
    def vni(self) -> int:
        return self.config.vni

    @property
    def name(self) -> str:
        """The device's name (``vxlan<vni>`` unless set)."""
        return self.config.name

    @property
    def group(self) -> str | None:
        return self.config.group

    @property
    def remote(self) -> str | None:
        return self.config.remote

    def vtep_config(self, local: str | None) -> VtepConfig:
        """This device's :class:`~pyvxlan.VtepConfig` with ``local`` as its underlay address."""
        return VtepConfig(**{**self._arguments, "local": local})


@dataclass(frozen=True, slots=True)
class Host:
    """A machine on the underlay with one address and its vxlan devices (at most one per VNI)."""

    name: str
    address: str
    devices: tuple[VxlanDevice, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        try:
            if not isinstance(self.address, str):  # ipaddress reads 5 as 0.0.0.5
                raise TypeError
            addr = ipaddress.ip_address(self.address)
        except (ValueError, TypeError):
            raise ConfigError("address", f"{self.address!r} is not an IPv4 or IPv6 address") from None
        if addr.is_multicast or addr.is_unspecified:
            raise ConfigError("address", f"{addr} is not a unicast address")
        object.__setattr__(self, "address", str(addr))
        object.__setattr__(self, "devices", tuple(self.devices))
        seen_vni: set[int] = set()
        seen_name: set[str] = set()
        for i, dev in enumerate(self.devices):
            if not isinstance(dev, VxlanDevice):
                raise ConfigError(f"devices[{i}]", f"must be a VxlanDevice, got {dev!r}")
            if dev.vni in seen_vni:
                raise ConfigError(f"devices[{i}].vni", f"VNI {dev.vni} already has a device on host {self.name}")
            if dev.name in seen_name or dev.bridge in seen_name:
                raise ConfigError(f"devices[{i}].name", f"interface name {dev.name!r} or {dev.bridge!r} is used twice")
            seen_vni.add(dev.vni)
            seen_name.update((dev.name, dev.bridge))

    def device(self, vni: int) -> VxlanDevice:
        """The device with ``vni``; :class:`~pyvxlan.errors.LabKeyError` when the host has none."""
        for dev in self.devices:
            if dev.vni == vni:
                return dev
        raise lab_key_error(f"vxlan device on host {self.name!r} with VNI", vni, [d.vni for d in self.devices])


@dataclass(frozen=True, slots=True)
class GuestSpec:
    """A guest (a VM or container) on ``host``'s bridge for ``vni``, with one overlay address.

    ``ip`` carries the prefix length (``203.0.113.1/24``); :attr:`address` is without it.

    >>> g = GuestSpec("guest1", "host1", 10, "02:00:00:00:00:01", "203.0.113.1/24")
    >>> (g.address, g.prefixlen)
    ('203.0.113.1', 24)
    """

    name: str
    host: str
    vni: int
    mac: str
    ip: str

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        _check_name(self.host, "host")
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 0 <= self.vni < 1 << 24:
            raise ConfigError("vni", f"must be in 0..16777215, got {self.vni!r}")
        mac = normalize_mac(self.mac, "mac") if isinstance(self.mac, (str, bytes)) else None
        if mac is None:
            raise ConfigError("mac", f"{self.mac!r} is not a MAC address")
        if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
            raise ConfigError("mac", f"{mac} is not a unicast MAC address")
        object.__setattr__(self, "mac", mac)
        if not isinstance(self.ip, str) or "/" not in self.ip:
            raise ConfigError("ip", f"{self.ip!r} needs a prefix length, such as 203.0.113.1/24")
        try:
            iface = ipaddress.ip_interface(self.ip)
        except ValueError:
            raise ConfigError("ip", f"{self.ip!r} is not an address with a prefix length") from None
        if iface.ip.is_multicast or iface.ip.is_unspecified:
            raise ConfigError("ip", f"{iface.ip} is not a unicast address")
        object.__setattr__(self, "ip", str(iface))

    @property
    def address(self) -> str:
        """The overlay address without the prefix length."""
        return self.ip.split("/", 1)[0]

    @property
    def prefixlen(self) -> int:
        return int(self.ip.split("/", 1)[1])

    @property
    def ip_version(self) -> int:
        return ipaddress.ip_interface(self.ip).version


@dataclass(frozen=True, slots=True)
class Topology:
    """The whole lab: underlay, hosts with their devices, guests, and the FDB mode.

    Checks that names and addresses are unique, that host addresses lie in the underlay subnet,
    that each guest's host has a device for its VNI, and that the mode fits the devices (flood-and-
    learn needs a group on every device).
    """

    underlay: Underlay
    hosts: tuple[Host, ...]
    guests: tuple[GuestSpec, ...] = ()
    mode: FdbMode = FdbMode.MULTICAST
    _hosts_by_name: dict[str, Host] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", tuple(self.hosts))
        object.__setattr__(self, "guests", tuple(self.guests))
        if not isinstance(self.mode, FdbMode):
            try:
                object.__setattr__(self, "mode", FdbMode(self.mode))
            except ValueError:
                raise ConfigError(
                    "mode", f"must be one of multicast, unicast, controller, evpn, got {self.mode!r}"
                ) from None
        if not self.hosts:
            raise ConfigError("hosts", "a topology needs at least one host")
        net = self.underlay.network
        by_name: dict[str, Host] = {}
        by_addr: dict[str, str] = {}
        for i, host in enumerate(self.hosts):
            if host.name in by_name:
                raise ConfigError(f"hosts[{i}].name", f"host {host.name!r} is defined twice")
            if host.address in by_addr:
                raise ConfigError(
                    f"hosts[{i}].address", f"{host.address} is also host {by_addr[host.address]}'s address"
                )
            addr = ipaddress.ip_address(host.address)
            if addr not in net or addr in (net.network_address, net.broadcast_address) and net.version == 4:
                raise ConfigError(f"hosts[{i}].address", f"{addr} is not a host address in the underlay {net}")
            for j, dev in enumerate(host.devices):
                for key in ("group", "remote"):
                    value = getattr(dev, key)
                    if value is not None and ipaddress.ip_address(value).version != net.version:
                        raise ConfigError(
                            f"hosts[{i}].devices[{j}].{key}", f"{value} is not IPv{net.version} like the underlay"
                        )
                if self.mode is FdbMode.MULTICAST and dev.group is None and dev.remote is None:
                    raise ConfigError(
                        f"hosts[{i}].devices[{j}].group", "multicast mode needs a group (or a remote) on every device"
                    )
            by_name[host.name] = host
            by_addr[host.address] = host.name
        object.__setattr__(self, "_hosts_by_name", by_name)
        guest_names: set[str] = set()
        macs: dict[str, str] = {}
        ips: dict[tuple[int, str], str] = {}
        for i, guest in enumerate(self.guests):
            if guest.name in guest_names:
                raise ConfigError(f"guests[{i}].name", f"guest {guest.name!r} is defined twice")
            if guest.name in by_name:
                raise ConfigError(f"guests[{i}].name", f"{guest.name!r} is also a host's name")
            if guest.host not in by_name:
                raise ConfigError(f"guests[{i}].host", f"no host is called {guest.host!r}")
            if all(dev.vni != guest.vni for dev in by_name[guest.host].devices):
                raise ConfigError(f"guests[{i}].vni", f"host {guest.host} has no vxlan device with VNI {guest.vni}")
            if guest.mac in macs:
                raise ConfigError(f"guests[{i}].mac", f"{guest.mac} is also guest {macs[guest.mac]}'s MAC")
            ip_key = (guest.vni, guest.address)
            if ip_key in ips:
                raise ConfigError(
                    f"guests[{i}].ip", f"{guest.address} is also guest {ips[ip_key]}'s address in VNI {guest.vni}"
                )
            guest_names.add(guest.name)
            macs[guest.mac] = guest.name
            ips[ip_key] = guest.name

    # --- lookups ----------------------------------------------------------------------------------

    def host(self, name: str) -> Host:
        """The host called ``name``; :class:`~pyvxlan.errors.LabKeyError` when there is none."""
        host = self._hosts_by_name.get(name)
        if host is None:
            raise lab_key_error("host", name, self._hosts_by_name)
        return host

    def guest(self, name: str) -> GuestSpec:
        """The guest called ``name``; :class:`~pyvxlan.errors.LabKeyError` when there is none."""
        for guest in self.guests:
            if guest.name == name:
                return guest
        raise lab_key_error("guest", name, [g.name for g in self.guests])

    def vnis(self) -> list[int]:
        """Every VNI that some host has a device for, in ascending order."""
        return sorted({dev.vni for host in self.hosts for dev in host.devices})

    def vtep_config(self, host: str, vni: int) -> VtepConfig:
        """The vxlan device's settings as the mode makes them: what both backends create.

        In ``UNICAST``, ``CONTROLLER`` and ``EVPN`` modes the group is left out (the FDB is
        programmed instead); ``CONTROLLER`` and ``EVPN`` also turn learning off and proxy ARP on.

        >>> cfg = classic_demo(mode=FdbMode.CONTROLLER).vtep_config("host2", 10)
        >>> (cfg.local, cfg.group, cfg.learning, cfg.proxy)
        ('198.51.100.2', None, False, True)
        """
        h = self.host(host)
        cfg = h.device(vni).vtep_config(h.address)
        if self.mode is FdbMode.UNICAST:
            return replace(cfg, group=None)
        if self.mode is FdbMode.CONTROLLER or self.mode is FdbMode.EVPN:
            return replace(cfg, group=None, learning=False, proxy=True)
        return cfg

    def peers(self, host: str, vni: int) -> list[str]:
        """The underlay addresses of the other hosts with a device for ``vni``, in host order:
        the head-end replication list of ``host``'s device in ``UNICAST`` mode."""
        self.host(host).device(vni)
        return [h.address for h in self.hosts if h.name != host and any(d.vni == vni for d in h.devices)]

    def guests_on(self, host: str, vni: int | None = None) -> list[GuestSpec]:
        """The guests attached to ``host`` (to its bridge for ``vni`` when given)."""
        return [g for g in self.guests if g.host == host and (vni is None or g.vni == vni)]

    def with_mode(self, mode: FdbMode) -> Topology:
        """The same lab with another FDB mode."""
        return Topology(self.underlay, self.hosts, self.guests, mode)

    def with_guest_on(self, guest: str, host: str) -> Topology:
        """The same lab with ``guest`` attached to ``host`` instead (a migrated VM)."""
        moved = tuple(replace(g, host=host) if g.name == guest else g for g in self.guests)
        self.guest(guest)
        return Topology(self.underlay, self.hosts, moved, self.mode)


# --- the classic demo ---------------------------------------------------------------------------


def classic_demo(hosts: int = 2, mode: FdbMode = FdbMode.MULTICAST, ipv6: bool = False) -> Topology:
    """The classic VXLAN demo: ``hosts`` hosts on one underlay, each with ``vxlan10`` (VNI 10,
    group 239.1.1.1 or ff05::100) in bridge ``br10``, and one guest each on 203.0.113.0/24.

    >>> topo = classic_demo(3, ipv6=True)
    >>> [h.address for h in topo.hosts], topo.hosts[0].devices[0].group
    (['2001:db8::1', '2001:db8::2', '2001:db8::3'], 'ff05::100')
    >>> [(g.name, g.mac, g.ip) for g in topo.guests][:2]
    [('guest1', '02:00:00:00:00:01', '203.0.113.1/24'), ('guest2', '02:00:00:00:00:02', '203.0.113.2/24')]
    """
    if isinstance(hosts, bool) or not isinstance(hosts, int) or not 1 <= hosts <= 250:
        raise ConfigError("hosts", f"the classic demo has 1..250 hosts, got {hosts!r}")
    if ipv6:
        underlay, group = Underlay("2001:db8::/64"), "ff05::100"
        address = "2001:db8::{:x}".format
    else:
        underlay, group = Underlay("198.51.100.0/24"), "239.1.1.1"
        address = "198.51.100.{}".format
    device = VxlanDevice(10, group=group)
    host_list = tuple(Host(f"host{i}", address(i), (device,)) for i in range(1, hosts + 1))
    guests = tuple(
        GuestSpec(f"guest{i}", f"host{i}", 10, f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}", f"203.0.113.{i}/24")
        for i in range(1, hosts + 1)
    )
    return Topology(underlay, host_list, guests, mode)


# --- TOML ---------------------------------------------------------------------------------------


class TopologyFileError(ConfigError):
    """A topology or scenario file that is not valid: ``path``, the ``field`` (a key path such as
    ``hosts[1].address``) and the ``reason``."""

    def __init__(self, path: str, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.path = path
        self.args = (f"{path}: {field}: {reason}",)


_DEVICE_KEYS = (_CONFIG_KEYS - HOST_FIELDS) | {"bridge", "bridge_ageing"}
_HOST_KEYS = {"name", "address", "devices"}
_GUEST_KEYS = {"name", "host", "vni", "mac", "ip"}
# A table with ``count`` stands for that many, ``{n}`` in its strings running from ``first`` (1).
_REPEAT_KEYS = {"count", "first"}
#: The most entries one ``count`` may make: more than any lab the backends can run (a /24
#: underlay has 254 hosts), few enough that a typo cannot exhaust memory.
MAX_COUNT: Final = 4096
# ``{n}``, ``{n:02x}``, ``{n:3d}``: the number alone, in decimal or hex with an optional width.
_PLACEHOLDER = re.compile(r"\{n(?::(0?[0-9]?)([dxX]))?\}")
_UNDERLAY_KEYS = {"subnet", "mtu"}


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a table, got {type(value).__name__}")
    return value


def _array(value: object, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(key, f"must be an array of tables, got {type(value).__name__}")
    return value


def _check_keys(
    data: Mapping[str, Any], allowed: set[str] | frozenset[str], key: str, required: tuple[str, ...]
) -> None:
    for name in data:
        if name not in allowed:
            where = f"{key}.{name}" if key else name
            raise ConfigError(where, f"unknown key (expected one of {', '.join(sorted(allowed))})")
    for name in required:
        if name not in data:
            raise ConfigError(f"{key}.{name}" if key else name, "is required")


def _build(cls: Any, data: Mapping[str, Any], key: str, **extra: Any) -> Any:
    kwargs = dict(data)
    if "src_port_range" in kwargs and isinstance(kwargs["src_port_range"], list):
        kwargs["src_port_range"] = tuple(kwargs["src_port_range"])
    kwargs.update(extra)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc.field}", exc.reason) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(key, str(exc)) from None


def _fill(value: Any, n: int) -> Any:
    """``value`` with every ``{n}`` placeholder in its strings (nested too) replaced by ``n``."""
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: format(n, (m.group(1) or "") + (m.group(2) or "d")), value)
    if isinstance(value, list):
        return [_fill(v, n) for v in value]
    if isinstance(value, Mapping):
        return {k: _fill(v, n) for k, v in value.items()}
    return value


def _expand(raw: object, key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """A ``[[hosts]]`` or ``[[guests]]`` table as the tables it stands for, each with its key
    path for errors: itself, or with ``count`` one per ``n`` in ``first .. first + count - 1``."""
    table = _table(raw, key)
    if "count" not in table:
        if "first" in table:
            raise ConfigError(f"{key}.first", "needs count")
        return [(key, table)]
    count, first = table["count"], table.get("first", 1)
    for name, value, low in (("count", count, 1), ("first", first, 0)):
        if type(value) is not int or not low <= value <= MAX_COUNT * 16:
            raise ConfigError(f"{key}.{name}", f"must be an integer {low}..{MAX_COUNT * 16}, got {value!r}")
    if count > MAX_COUNT:
        raise ConfigError(f"{key}.count", f"must be an integer 1..{MAX_COUNT}, got {count!r}")
    rest = {k: v for k, v in table.items() if k not in _REPEAT_KEYS}
    return [(f"{key}(n={n})", _fill(rest, n)) for n in range(first, first + count)]


def parse_topology(data: Mapping[str, Any], *, allow: frozenset[str] = frozenset()) -> Topology:
    """A :class:`Topology` from parsed TOML (or any mapping of the same shape).

    Top-level keys: ``mode``, ``underlay``, ``hosts``, ``guests``, plus those in ``allow`` (a
    scenario's ``steps``), which are left to the caller. Raises :class:`~pyvxlan.ConfigError`
    whose ``field`` is the key path, such as ``hosts[1].devices[0].group``.

    A host or guest table with ``count = N`` (and ``first``, 1 by default) stands for N tables,
    ``{n}`` (or ``{n:02x}``, ``{n:3d}``) in its strings replaced by ``first``, ``first + 1``, ...;
    an error in one of them names it as ``hosts[0](n=7).address``.
    """
    _check_keys(data, {"mode", "underlay", "hosts", "guests"} | allow, "", ("underlay", "hosts"))
    underlay_data = _table(data["underlay"], "underlay")
    _check_keys(underlay_data, _UNDERLAY_KEYS, "underlay", ("subnet",))
    underlay = _build(Underlay, underlay_data, "underlay")
    hosts = []
    host_tables = [t for i, raw in enumerate(_array(data["hosts"], "hosts")) for t in _expand(raw, f"hosts[{i}]")]
    for key, host_data in host_tables:
        _check_keys(host_data, _HOST_KEYS, key, ("name", "address"))
        devices = []
        for j, dev_raw in enumerate(_array(host_data.get("devices", []), f"{key}.devices")):
            dkey = f"{key}.devices[{j}]"
            dev_data = _table(dev_raw, dkey)
            _check_keys(dev_data, _DEVICE_KEYS, dkey, ("vni",))
            devices.append(_build(VxlanDevice, dev_data, dkey))
        hosts.append(_build(Host, {k: v for k, v in host_data.items() if k != "devices"}, key, devices=tuple(devices)))
    guests = []
    guest_tables = [
        t for i, raw in enumerate(_array(data.get("guests", []), "guests")) for t in _expand(raw, f"guests[{i}]")
    ]
    for key, guest_data in guest_tables:
        _check_keys(guest_data, _GUEST_KEYS, key, tuple(sorted(_GUEST_KEYS)))
        guests.append(_build(GuestSpec, guest_data, key))
    mode = data.get("mode", "multicast")
    try:
        fdb_mode = FdbMode(mode)
    except ValueError:
        raise ConfigError("mode", f"must be one of multicast, unicast, controller, evpn, got {mode!r}") from None
    return Topology(underlay, tuple(hosts), tuple(guests), fdb_mode)


#: The largest topology or scenario file read: far beyond any real lab (a 250-host topology is
#: about 30 KiB), small enough that ``pyvxlan run /dev/zero`` or a wrong path fails at once.
MAX_FILE_SIZE: Final = 1 << 20


def parse_toml(data: bytes, path: str) -> dict[str, Any]:
    """The parsed TOML in ``data`` (the contents of ``path``, named in errors); text that is not
    UTF-8, not TOML, or nested too deeply is a :class:`TopologyFileError`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TopologyFileError(
            path, "(file)", f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyFileError(path, "(syntax)", str(exc)) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively.
        raise TopologyFileError(path, "(syntax)", "arrays or tables nested too deeply") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML at ``path``; a syntax error or unreadable file is a :class:`TopologyFileError`.

    Only a regular file of at most :data:`MAX_FILE_SIZE` bytes is read: a device, FIFO or
    directory is refused before a byte is read (opened non-blocking, so a FIFO cannot hang).
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TopologyFileError(name, "(file)", exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TopologyFileError(name, "(file)", "not a regular file")
        if info.st_size > MAX_FILE_SIZE:
            raise TopologyFileError(name, "(file)", f"{info.st_size} bytes is larger than {MAX_FILE_SIZE} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_SIZE + 1)  # the file may grow after fstat
    except OSError as exc:
        raise TopologyFileError(name, "(file)", exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_SIZE:
        raise TopologyFileError(name, "(file)", f"larger than {MAX_FILE_SIZE} bytes")
    return parse_toml(data, name)


def load_topology(path: str | Path, *, allow: frozenset[str] = frozenset({"steps"})) -> Topology:
    """Read a topology from a TOML file; a bad file raises :class:`TopologyFileError` (a
    :class:`~pyvxlan.ConfigError`) naming the file, the key and what is wrong.

    A scenario file (``pyvxlan run``) is a topology file with ``[[steps]]``, so those are allowed.
    The format is described in ``docs/scenarios.md``.
    """
    data = read_toml(path)
    try:
        return parse_topology(data, allow=allow)
    except TopologyFileError:
        raise
    except ConfigError as exc:
        raise TopologyFileError(str(path), exc.field, exc.reason) from None


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """A host's link to the underlay. Probabilities are per datagram copy, in 0..1.

    ``reorder``: the probability that a copy is held back ``reorder_delay`` extra seconds, so that
    later datagrams overtake it (netem's reordering, seen from the receiver).
    """

    latency: float = 0.0005
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.005

    def __post_init__(self) -> None:
        # Written so that NaN fails (it fails every comparison) and infinity too: an infinite
        # latency would park every datagram at the end of time.
        for name in ("latency", "jitter", "reorder_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise ConfigError(name, f"must be a finite number >= 0 seconds, got {value!r}")
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(name, f"must be a probability in 0..1, got {value!r}")

    @property
    def impaired(self) -> bool:
        return bool(self.jitter or self.loss or self.duplicate or self.reorder)
