"""The system calls the UDP driver needs that Python's ``socket`` module does not name.

Kept apart from the driver so that every Linux constant has one place, with its source: the
values are from ``include/uapi/linux/in.h``, ``in6.h``, ``udp.h`` and ``if_tun.h``. Entering a
network namespace is :mod:`pyvxlan.kernel.netns`'s (no pyroute2 there either); :func:`in_netns` is
re-exported from it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from typing import Final

from pyvxlan.errors import BackendError, ConfigError, PrivilegeError
from pyvxlan.kernel.netns import in_netns

__all__ = [
    "DriverError",
    "in_netns",
    "interface_index",
    "open_tap",
    "open_udp_socket",
]

IP_MTU_DISCOVER: Final = 10
IP_PMTUDISC_DONT: Final = 0
IP_FREEBIND: Final = 15
IP_MULTICAST_ALL: Final = 49
IPV6_MTU_DISCOVER: Final = 23
IPV6_PMTUDISC_DONT: Final = 0
IPV6_AUTOFLOWLABEL: Final = 70
IPV6_FREEBIND: Final = 78
IPV6_MULTICAST_ALL: Final = 29
UDP_NO_CHECK6_TX: Final = 101
UDP_NO_CHECK6_RX: Final = 102
TUNSETIFF: Final = 0x400454CA
IFF_TAP: Final = 0x0002
IFF_NO_PI: Final = 0x1000
IFF_UP: Final = 0x1
SIOCGIFFLAGS: Final = 0x8913
SIOCSIFFLAGS: Final = 0x8914


class DriverError(BackendError):
    """A system call of the UDP driver failed in a way the user can act on (a port in use, a
    device that cannot be made, a group that cannot be joined): the UDP driver's
    :class:`~pyvxlan.errors.BackendError`. ``operation`` names the thing (``vxlan10``, ``tap``),
    ``reason`` says what failed, ``errno`` is the system's.

    >>> e = DriverError(98, "vxlan10", "UDP 198.51.100.2:4789 is in use")
    >>> (e.errno, e.operation, str(e), e.strerror)
    (98, 'vxlan10', 'vxlan10: UDP 198.51.100.2:4789 is in use', 'vxlan10: UDP 198.51.100.2:4789 is in use')
    """

    def __init__(self, errno: int, operation: str, reason: str) -> None:
        super().__init__(errno, operation, reason)
        # The message alone, as OSError's text too: the command prints it as one line.
        self.strerror = f"{operation}: {reason}"

    def __str__(self) -> str:
        return str(self.strerror)


def interface_index(name: str) -> int:
    """The index of interface ``name`` in the calling thread's namespace; ConfigError (``dev``)
    when there is none, as ``ip link add ... dev IF`` refuses a missing device."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise ConfigError("dev", f"no interface named {name!r}") from None


def open_udp_socket(family: int, address: str | None, port: int, *, what: str, reuse: bool = False) -> socket.socket:
    """A non-blocking UDP socket bound to ``address``:``port`` (``None``: any), set up to send as
    the kernel's vxlan device does: no DF (``df unset``), no IPv6 flow label (``flowlabel 0``), and
    no multicast of groups other sockets joined.

    ``IP_FREEBIND`` lets ``local`` be an address the host does not have (yet), which Linux's vxlan
    device accepts too. A port in use is a :class:`DriverError` naming ``what`` and the address.
    """
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
            host = address if address is not None else "::"
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
            sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
            host = address if address is not None else "0.0.0.0"
        try:
            sock.bind((host, port))
        except OSError as exc:
            where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise DriverError(exc.errno, what, f"UDP {where} is in use") from None
            if exc.errno == errno.EACCES:
                raise PrivilegeError(f"{what}: binding UDP {where} needs CAP_NET_BIND_SERVICE") from None
            raise DriverError(exc.errno or 0, what, f"cannot bind UDP {where}: {exc.strerror}") from None
    except BaseException:
        sock.close()
        raise
    return sock


def open_tap(name: str) -> tuple[int, str]:
    """Create TAP device ``name`` (``IFF_TAP | IFF_NO_PI``: bare Ethernet frames), set it up, and
    return its non-blocking descriptor and name. Closing the descriptor removes the device."""
    if not name or len(name.encode()) > 15 or "/" in name or " " in name:
        raise ConfigError("tap", f"{name!r} is not a valid interface name")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DriverError(errno.ENOENT, "tap", "/dev/net/tun does not exist (no TUN/TAP support)") from None
    except PermissionError:
        raise PrivilegeError("tap: opening /dev/net/tun needs CAP_NET_ADMIN") from None
    try:
        request = struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI)
        try:
            fcntl.ioctl(fd, TUNSETIFF, request)
        except PermissionError:
            raise PrivilegeError(f"tap: creating TAP device {name!r} needs CAP_NET_ADMIN") from None
        except OSError as exc:
            # EBUSY: a TAP of that name is open elsewhere; EINVAL: the name is another kind of device.
            raise DriverError(exc.errno or 0, "tap", f"cannot create TAP device {name!r}: {exc.strerror}") from None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ctl:
            ifreq = struct.pack("16sH22x", name.encode(), 0)
            flags = struct.unpack_from("16sH", fcntl.ioctl(ctl, SIOCGIFFLAGS, ifreq))[1]
            fcntl.ioctl(ctl, SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | IFF_UP))
    except BaseException:
        os.close(fd)
        raise
    return fd, name
