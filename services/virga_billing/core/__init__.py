"""Billing's own pure core: the invoices it issues and its snapshots. No Kafka, no I/O.

Its model and fold are shared with the gateway and the audit, so they live in the rating
library: ``virga_rating.state`` (``BillingState``) and ``virga_rating.fold`` (``evolve``).
Here: ``decide`` (``tick``: invoices when a month closes) and ``snapshot`` (the state to
JSON and back, for billing's snapshot topic).
"""
