"""Floating IPs: a tenant's public address, pointed at one of its ports (1:1 NAT)."""
