"""Flavors: the sizes instances come in."""
