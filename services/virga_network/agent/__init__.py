"""The per-host network agent: bridges, VXLAN tunnels, taps and filters for the ports bound here.

The driver layer (`drivers`: `base`, `netlink`, `memory`) is the part that touches the host;
nothing outside it sees a netlink message or an nftables rule being applied (`core.nft_rules`
only writes their text).
"""
