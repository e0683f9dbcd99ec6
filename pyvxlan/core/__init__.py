"""The sans-I/O VTEP: no sockets, no clock, no trio, no module-level state.

- :mod:`pyvxlan.core.config`: ``VtepConfig``, one device's settings.
- :mod:`pyvxlan.core.vtep`: ``Vtep``, the state machine (frames and datagrams in, actions out).
- :mod:`pyvxlan.core.datagram`: ``parse_datagram``, one reading of a datagram for many VTEPs.
- :mod:`pyvxlan.core.fdb`: ``ForwardingDatabase``, the FDB and its learning policy; ``RemotePool``.
- :mod:`pyvxlan.core.entries`: FDB entries and neighbours as values.
- :mod:`pyvxlan.core.events`: the actions and events the core emits, and its counters.
- :mod:`pyvxlan.core.control`: ``VtepControl``, the one control API every backend implements.
"""
