"""Virga's HTTP API: authenticates callers, validates intent into request events on `<ns>.api`,
and answers reads from its own projection of the api, scheduler and compute topics.

One package per resource (`instances/`, `volumes/`, `images/`, `networks/`, `ports/`,
`security_groups/`, `server_groups/`, `flavors/`, `hosts/`, `tenants/`, `billing/`, `meta/`),
each with, as it applies, `bodies` (requests), `model` (its records), `fold`, `commands`
(writes), `queries` (reads), `views` (responses) and `routes`. Everything but `routes` is pure,
as are the cross-cutting `state` (the projection and its one fold), `preview`, `outcome`,
`validation`, `auth`, `cursor`, `problems`, `tokens` and `idempotency`: they import no aiohttp or
Kafka. HTTP: `routes` (the table), `routing`, `middleware`, `writes`, `openapi`, `app`; one
composition root (`main`).
"""
