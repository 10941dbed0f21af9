"""The billing service: issues monthly invoices from the log's event time.

Its usage state, ``evolve`` and rating are the rating library ``virga_rating``, shared with
the gateway and the audit. Read ``virga_rating`` first, then ``core/decide`` (``tick``:
invoices when a month closes), ``core/snapshot``, ``service`` (``definition(config)``),
``config``, ``main``.
"""
