"""Tenants and their bearer tokens."""
