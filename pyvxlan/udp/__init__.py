"""The third driver: the sans-I/O core on the host's UDP sockets, interoperating with Linux VTEPs.

>>> import trio
>>> from pyvxlan import VtepConfig
>>> async def main() -> tuple[int, int]:
...     a = VtepConfig(vni=10, local="127.0.9.11", remote="127.0.9.12", dst_port=47890)
...     b = VtepConfig(vni=10, local="127.0.9.12", remote="127.0.9.11", dst_port=47890)
...     async with open_vtep(a, guests=["02:00:00:00:00:01,203.0.113.1/24"], up=True) as va, \\
...             open_vtep(b, guests=["02:00:00:00:00:02,203.0.113.2/24"], up=True):
...         result = await va.guest("guest1").ping("203.0.113.2", count=2, interval=0.01)
...         return result.sent, result.received
>>> trio.run(main)
(2, 2)
"""

from __future__ import annotations

from pyvxlan.udp.driver import DEFAULT_BATCH, DriverStats, GuestSpec, UdpVtep, open_vtep
from pyvxlan.udp.syscalls import DriverError

__all__ = ["DEFAULT_BATCH", "DriverError", "DriverStats", "GuestSpec", "UdpVtep", "open_vtep"]
