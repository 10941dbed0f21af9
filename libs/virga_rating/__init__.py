"""The rating library: shared by billing, the gateway and the audit. Usage folded from the log
in event time (``state``, ``fold``) and rated into invoices (``rating``, ``currencies``).

No I/O: the billing service issues invoices with it, the gateway answers ``/v1/usage`` with
it, and ``virga audit rerate`` re-rates the log with it, so all three compute the same figures.
What only billing uses (its ``tick`` and its snapshots) is in ``virga_billing.core``.
"""
