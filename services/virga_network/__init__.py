"""Virga's network controller: networks and their VXLAN ids, IPAM, MACs, ports, security groups.

The per-host network agent lives in `virga_network.agent`; the controller's pure core is
`state` (the fold) and `decide` (the decisions), with `ipam` and `macs` under them.
"""
