"""Rebalancing (admin only): the plan (`GET /v1/rebalance`) and its execution (`POST`)."""
