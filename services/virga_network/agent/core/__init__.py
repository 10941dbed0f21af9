"""The network agent's pure core: its model, fold, snapshot, decisions and the host plan, with
interface names, the plumbing values and the nftables rule text under them. Imports no Kafka,
HTTP or netlink."""
