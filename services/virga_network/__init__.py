"""Virga's network controller: networks and their VXLAN ids, IPAM, MACs, ports, security groups.

The per-host network agent lives in `virga_network.agent`; the controller's pure core is
`core` (`model`, `fold`, `snapshot`, `decide`), with `core.ipam` and `core.macs` under them.
"""
