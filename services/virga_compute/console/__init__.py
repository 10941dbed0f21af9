"""The agent's console server: tenants' serial consoles, relayed from the gateway
(`server.py`), let in by tickets checked against the agent's own fold (`gate.py`)."""
