"""Server groups: affinity and anti-affinity between a tenant's instances."""
