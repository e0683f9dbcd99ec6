"""The wire codecs: bytes in, values out, and back. No state, no I/O.

- :mod:`pyvxlan.wire.addr`: MAC and IP address values and their parsing.
- :mod:`pyvxlan.wire.header`: the 8-byte VXLAN, GBP and GPE headers.
- :mod:`pyvxlan.wire.frame`: whole encapsulated frames over IPv4 and IPv6.
- :mod:`pyvxlan.wire.packets`: the inner frames a VTEP builds and reads (ARP, ND, ICMP).
- :mod:`pyvxlan.wire.pcap`: pcap and pcapng reading and writing (``pyvxlan.pcap``).
- :mod:`pyvxlan.wire.dpkt_vxlan`: VXLAN for dpkt (``pyvxlan.dpkt_vxlan``).
"""
