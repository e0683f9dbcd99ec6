"""``VtepConfig``: a vxlan device's settings, mirroring ``ip link add NAME type vxlan ...``."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final, Literal

from pyvxlan.errors import ConfigError
from pyvxlan.wire.addr import ip_info, normalize_mac
from pyvxlan.wire.frame import IANA_SOURCE_PORTS, VXLAN_PORT, check_port_range
from pyvxlan.wire.header import check_int, describe

__all__ = ["DEFAULT_AGEING", "VtepConfig"]

DEFAULT_AGEING = 300.0  # seconds; Linux's default, and what ``ageing 0`` means there


_U32_MAX: Final = 0xFFFFFFFF
_FLAGS: Final = (
    "learning",
    "proxy",
    "l2miss",
    "l3miss",
    "gbp",
    "ttl_inherit",
    "udp6_zero_csum_tx",
    "udp6_zero_csum_rx",
    "gbp_lost_on_change",
)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _check_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a str, got {describe(value)}")
    return value


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
    ``src_port_range``      ``srcport MIN MAX`` (MAX unused) 49152-65535 (Linux: 0 0, the
                                                            local port range 32768-60999)
    ``ttl``                 ``ttl`` (0 = auto)              0: 64, or 1 toward a group
    ``ttl_inherit``         ``ttl inherit``                 off; on: the inner TTL/hop limit
    ``tos``                 ``tos`` (``"inherit"``)         0; the outer ECN always follows the
                                                            inner (CE sent as ECT(0))
    ``udp6_zero_csum_tx``   ``[no]udp6zerocsumtx``          off (IPv6 underlay)
    ``udp6_zero_csum_rx``   ``[no]udp6zerocsumrx``          off: zero-checksum IPv6 datagrams
                                                            are dropped
    ``learning``            ``[no]learning``                on
    ``ageing``              ``ageing`` (0 means 300)        300 s
    ``max_entries``         ``maxaddress`` (0 = no limit)   0
    ``proxy``               ``[no]proxy``                   off
    ``l2miss``/``l3miss``   ``[no]l2miss``/``[no]l3miss``   off
    ``gbp``                 ``gbp``                         off
    ``mac``                 ``address``                     derived from local and VNI
    ``name``                the device name                 ``vxlan<vni>``
    ``dev``                 ``dev`` (underlay interface)    none
    ``gbp_lost_on_change``  (no equivalent: a kernel quirk) on, as Linux 6.13 and later
    ======================  =============================  ==================================

    ``gbp_lost_on_change`` models a kernel quirk: on a ``gbp`` device, any ``ip link set ... type
    vxlan`` change (``learning``, ``nolearning``, ``ageing``) makes Linux drop every datagram with
    GBP bits as a frame error, because ``vxlan_nl2conf`` rebuilds ``cfg.reserved_bits`` from the
    attributes of the change request, which carry no ``IFLA_VXLAN_GBP``. ``False`` keeps GBP
    working, as the kernel intends (see docs/kernel-quirks.md).

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
    ttl_inherit: bool = False
    tos: int | Literal["inherit"] = 0
    udp6_zero_csum_tx: bool = False
    udp6_zero_csum_rx: bool = False
    gbp_lost_on_change: bool = True

    def __post_init__(self) -> None:
        check_int(self.vni, "vni", 0, (1 << 24) - 1)
        family = None
        if self.local is not None:
            info = ip_info(_check_str(self.local, "local"), "local")
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
            info = ip_info(_check_str(value, name), name)
            if name == "group" and not info.is_multicast:
                raise ConfigError("group", f"{info.text} is not a multicast address (use remote)")
            if name == "remote" and info.is_multicast:
                raise ConfigError("remote", f"{info.text} is a multicast address (use group)")
            if family is not None and info.version != family:
                raise ConfigError(name, f"{info.text} is IPv{info.version} but local is IPv{family}")
            _set(self, name, info.text)
        check_int(self.dst_port, "dst_port", 1, 65535)
        check_port_range(self.src_port_range, "src_port_range")
        check_int(self.ttl, "ttl", 0, 255)
        if type(self.ageing) is not int and type(self.ageing) is not float:
            raise ConfigError("ageing", f"must be a number of seconds, got {describe(self.ageing)}")
        if not 0 <= self.ageing <= _U32_MAX:  # nan fails this too
            # Linux keeps the ageing time as a u32 of seconds (IFLA_VXLAN_AGEING).
            raise ConfigError("ageing", f"must be in 0..{_U32_MAX} seconds, got {self.ageing!r}")
        if self.ageing == 0:
            _set(self, "ageing", DEFAULT_AGEING)  # Linux: vxlan_config_validate
        check_int(self.max_entries, "max_entries", 0, _U32_MAX)
        for flag in _FLAGS:
            if type(getattr(self, flag)) is not bool:
                raise ConfigError(flag, f"must be true or false, got {getattr(self, flag)!r}")
        if self.tos != "inherit" and check_int(self.tos, "tos", 0, 255) == 1:
            _set(self, "tos", "inherit")  # Linux: IFLA_VXLAN_TOS 1 means inherit
        if _check_str(self.mac, "mac"):
            mac = normalize_mac(self.mac, "mac")
            if int(mac[:2], 16) & 1 or mac == "00:00:00:00:00:00":
                raise ConfigError("mac", f"{mac} is not a unicast address")
            _set(self, "mac", mac)
        else:
            seed = f"{self.local}/{self.vni}".encode()
            _set(self, "mac", "02:" + zlib.crc32(seed).to_bytes(4, "big").hex(":") + ":01")
        if not _check_str(self.name, "name"):
            _set(self, "name", f"vxlan{self.vni}")
        name = self.name
        if len(name.encode()) > 15 or not name.isprintable() or any(c in name for c in "/ :") or name in (".", ".."):
            # dev_valid_name: at most IFNAMSIZ - 1 bytes, no "/", ":" or whitespace, not "." or "..".
            raise ConfigError("name", f"{name!r} is not a valid interface name (at most 15 bytes)")
        if self.dev is not None:
            _check_str(self.dev, "dev")

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
