"""Serial consoles: one-time tickets (`commands.py`) and the WebSocket relay to the compute
agent of the instance's host (`relay.py`)."""
