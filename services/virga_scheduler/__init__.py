"""The scheduler service: decides where each instance runs, and holds the claims that say so.

Read in this order: ``core/placement/`` (the pure placement core), ``core/model`` (what the
scheduler knows), ``core/fold`` (``evolve``: how each event changes it), ``core/decide``
(``decide`` and ``tick``: what it emits), ``core/snapshot`` (state to JSON and back),
``service`` (``definition(config)``), ``config`` (``SchedulerConfig``), ``main`` (the process).
"""
