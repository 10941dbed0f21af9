"""The scheduler's pure core: no Kafka, no I/O; the service runs it, and nothing else decides.

Read in this order: ``placement/`` (which host an instance goes to: filters, weighers,
ranking, claims; start with its README), ``model`` (what the scheduler knows), ``fold``
(``evolve``: how each event changes it), ``decide`` (``decide`` and ``tick``: what it
emits), ``snapshot`` (the state to JSON and back).
"""
