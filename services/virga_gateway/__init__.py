"""Virga's HTTP API: authenticates callers, validates intent into request events on `<ns>.api`,
and answers reads from its own projection of the api, scheduler and compute topics.

Layers: a pure core (`model`, `state`, `validation`, `views`, `commands`, `auth`, `cursor`,
`problems`, `tokens`, `idempotency`) that imports no aiohttp or Kafka; HTTP handlers
(`routes/`, `middleware`, `writes`, `openapi`, `app`); and one composition root (`main`).
"""
