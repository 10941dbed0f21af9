"""The scheduler service: decides where each instance runs, and holds the claims that say so.

Read in this order: ``placement/`` (the pure placement core), ``state`` (what the scheduler
knows), ``fold`` (``evolve``: how each event changes it), ``decide`` (``decide`` and ``tick``:
what it emits), ``snapshot`` (state to JSON and back), ``service`` (``definition(config)``),
``config`` (``SchedulerConfig``), ``main`` (the process).
"""
