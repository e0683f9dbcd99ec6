"""The lab description, shared by the simulator and the kernel backend.

- :mod:`pyvxlan.lab.topology`: hosts, VTEPs, guests and links, as values (``pyvxlan.topology``).
- :mod:`pyvxlan.lab.scenario`: scenario files, steps run against either lab (``pyvxlan.scenario``).
- :mod:`pyvxlan.lab.protocol`: the ``Lab`` and ``Guest`` protocols both labs implement.
"""

from __future__ import annotations

from pyvxlan.lab.protocol import Guest, Lab, PingResult

__all__ = ["Guest", "Lab", "PingResult"]
