"""Instances: their requests, their state as the scheduler and compute agents report it, and
their event history."""
