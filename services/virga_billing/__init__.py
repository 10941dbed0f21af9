"""The billing service: issues monthly invoices from the log's event time.

Its pure core (usage state, ``evolve``, rating, snapshots) is the library ``virga_rating``,
shared with the gateway and the audit. Read ``virga_rating`` first, then ``decide`` (``tick``:
invoices when a month closes), ``service`` (``definition(config)``), ``config``, ``main``.
"""
