"""The network controller's pure core: its model, fold and decisions, with the address search
(`ipam`) and MACs (`macs`) under them. Imports no Kafka, HTTP or netlink."""
