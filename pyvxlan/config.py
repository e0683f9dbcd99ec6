"""``VtepConfig``: a vxlan device's settings, mirroring ``ip link add NAME type vxlan ...``."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from pyvxlan.addr import ip_info, normalize_mac
from pyvxlan.errors import ConfigError
from pyvxlan.frame import IANA_SOURCE_PORTS, VXLAN_PORT

__all__ = ["DEFAULT_AGEING", "VtepConfig"]

DEFAULT_AGEING = 300.0  # seconds; Linux's default, and what ``ageing 0`` means there


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True)
class VtepConfig:
    """The settings of one VTEP, with Linux's defaults except ``dst_port`` (IANA's 4789).

    ======================  =============================  ==================================
    field                   ``ip link add ... type vxlan``  default
    ======================  =============================  ==================================
    ``vni``                 ``id``                          required, 0..16777215
    ``local``               ``local``                       none (any)
    ``group``               ``group`` (multicast)           none
    ``remote``              ``remote`` (unicast)            none; becomes the all-zeros entry
    ``dst_port``            ``dstport``                     4789 (Linux: 8472)
    ``src_port_range``      ``srcport MIN MAX``             49152-65535 (Linux: 32768-60999)
    ``ttl``                 ``ttl`` (0 = auto)              0: 64, or 1 toward a group
    ``learning``            ``[no]learning``                on
    ``ageing``              ``ageing`` (0 means 300)        300 s
    ``max_entries``         ``maxaddress`` (0 = no limit)   0
    ``proxy``               ``[no]proxy``                   off
    ``l2miss``/``l3miss``   ``[no]l2miss``/``[no]l3miss``   off
    ``gbp``                 ``gbp``                         off
    ``mac``                 ``address``                     derived from local and VNI
    ``name``                the device name                 ``vxlan<vni>``
    ``dev``                 ``dev`` (underlay interface)    none
    ======================  =============================  ==================================

    >>> VtepConfig(vni=10, local="198.51.100.1", group="239.1.1.1").ttl_for("239.1.1.1")
    1
    >>> VtepConfig(vni=1 << 24)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: vni: must be in 0..16777215, got 16777216
    """

    vni: int
    local: str | None = None
    group: str | None = None
    remote: str | None = None
    dst_port: int = VXLAN_PORT
    src_port_range: tuple[int, int] = IANA_SOURCE_PORTS
    ttl: int = 0
    learning: bool = True
    ageing: float = DEFAULT_AGEING
    max_entries: int = 0
    proxy: bool = False
    l2miss: bool = False
    l3miss: bool = False
    gbp: bool = False
    mac: str = field(default="")
    name: str = ""
    dev: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 0 <= self.vni < 1 << 24:
            raise ConfigError("vni", f"must be in 0..16777215, got {self.vni!r}")
        family = None
        if self.local is not None:
            info = ip_info(str(self.local), "local")
            if info.is_multicast:
                raise ConfigError("local", f"{info.text} is a multicast address")
            _set(self, "local", info.text)
            family = info.version
        if self.group is not None and self.remote is not None:
            raise ConfigError("remote", "give group or remote, not both")
        for name in ("group", "remote"):
            value = getattr(self, name)
            if value is None:
                continue
            info = ip_info(str(value), name)
            if name == "group" and not info.is_multicast:
                raise ConfigError("group", f"{info.text} is not a multicast address (use remote)")
            if name == "remote" and info.is_multicast:
                raise ConfigError("remote", f"{info.text} is a multicast address (use group)")
            if family is not None and info.version != family:
                raise ConfigError(name, f"{info.text} is IPv{info.version} but local is IPv{family}")
            _set(self, name, info.text)
        if not isinstance(self.dst_port, int) or not 0 < self.dst_port <= 65535:
            raise ConfigError("dst_port", f"must be in 1..65535, got {self.dst_port!r}")
        lo, hi = self.src_port_range
        if not 0 < lo <= hi <= 65535:
            raise ConfigError("src_port_range", f"must be 1 <= low <= high <= 65535, got {self.src_port_range!r}")
        _set(self, "src_port_range", (int(lo), int(hi)))
        if not 0 <= self.ttl <= 255:
            raise ConfigError("ttl", f"must be in 0..255 (0 = auto), got {self.ttl!r}")
        if self.ageing < 0:
            raise ConfigError("ageing", f"must be >= 0 seconds, got {self.ageing!r}")
        if self.ageing == 0:
            _set(self, "ageing", DEFAULT_AGEING)  # Linux: vxlan_config_validate
        if not isinstance(self.max_entries, int) or self.max_entries < 0:
            raise ConfigError("max_entries", f"must be >= 0 (0 = unlimited), got {self.max_entries!r}")
        if self.mac:
            mac = normalize_mac(self.mac, "mac")
            if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
                raise ConfigError("mac", f"{mac} is not a unicast address")
            _set(self, "mac", mac)
        else:
            seed = f"{self.local}/{self.vni}".encode()
            _set(self, "mac", "02:" + zlib.crc32(seed).to_bytes(4, "big").hex(":") + ":01")
        if not self.name:
            _set(self, "name", f"vxlan{self.vni}")
        if len(self.name.encode()) > 15 or "/" in self.name or " " in self.name:
            raise ConfigError("name", f"{self.name!r} is not a valid interface name (at most 15 bytes)")

    @property
    def default_remote(self) -> str | None:
        """The all-zeros entry's destination at creation: the group, or the unicast remote."""
        return self.group if self.group is not None else self.remote

    @property
    def ip_version(self) -> int | None:
        """The underlay family, when an address fixes it."""
        for value in (self.local, self.group, self.remote):
            if value is not None:
                return ip_info(value).version
        return None

    def ttl_for(self, dst: str) -> int:
        """The outer TTL toward ``dst``: ``ttl``, or auto (64; 1 to a multicast group) as Linux."""
        if self.ttl:
            return self.ttl
        return 1 if ip_info(dst).is_multicast else 64
