"""The network agent's effects: `intents` (what `decide` returns, as data) and `converge` (the
handlers that carry them out over the driver)."""
