"""The billing service: usage from the log's event time, rating, monthly invoices.

Read in this order: ``state`` (usage, prices, invoices), ``fold`` (``evolve``), ``rating``
(pure: usage and prices to an invoice), ``decide`` (``tick``: invoices when a month closes),
``snapshot``, ``service`` (``definition(config)``), ``config``, ``main``.
"""
