"""What the compute agent's decisions ask for (`intents`) and the handlers that carry it out
over a `ComputeDriver` (`lifecycle`, `volumes`)."""
