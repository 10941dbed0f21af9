"""Routers: a tenant's external address (SNAT) and the networks routed through it."""
