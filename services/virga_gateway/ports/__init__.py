"""Ports: a MAC and addresses on a network, plugged in on a host for an instance or a user."""
