"""The per-host network agent: bridges, VXLAN tunnels, taps and filters for the ports bound here.

The driver layer (`driver`, `netlink_driver`, `nft_rules`, `memory_driver`) is the part that
touches the host; nothing outside it sees a netlink message or an nftables rule.
"""
