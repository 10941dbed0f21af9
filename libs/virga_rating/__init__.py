"""Billing's pure core, shared by the billing service and the gateway: usage folded from the
log in event time (``state``, ``fold``), rated into invoices (``rating``), and snapshots.

No I/O: the billing service issues invoices with it, the gateway answers ``/v1/usage`` with
it, and ``virga audit rerate`` re-rates the log with it, so all three compute the same figures.
"""
