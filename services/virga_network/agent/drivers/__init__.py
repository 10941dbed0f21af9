"""The network agent's drivers: `base` (the `NetworkDriver` protocol and its errors), `memory`
(in-process) and `netlink` (pyroute2 and nftables)."""
