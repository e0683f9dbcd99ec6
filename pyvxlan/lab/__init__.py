"""The lab description, shared by the simulator and the kernel backend.

- :mod:`pyvxlan.lab.topology`: hosts, VTEPs, guests and links, as values (``pyvxlan.topology``).
- :mod:`pyvxlan.lab.scenario`: scenario files, steps run against either lab (``pyvxlan.scenario``).
- :mod:`pyvxlan.lab.protocol`: the ``Lab`` and ``Guest`` protocols both labs implement.
- :mod:`pyvxlan.lab.controller`: how each FDB mode fills the tables, as operations both labs carry out.
- :mod:`pyvxlan.lab.iproute2`: a device's settings as the ``ip link add`` command that makes it.
"""

from __future__ import annotations

from pyvxlan.lab.protocol import Guest, Lab, LabEvent, PingResult, SimulatedLab, lab_key_error

__all__ = ["Guest", "Lab", "LabEvent", "PingResult", "SimulatedLab", "lab_key_error"]
