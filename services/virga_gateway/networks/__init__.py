"""Networks: a tenant's L2 segments with one IPv4 or IPv6 subnet each."""
