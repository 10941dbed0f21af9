"""External networks: provider segments an admin makes, whose pools give public addresses."""
