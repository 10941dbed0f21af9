"""Security groups: allow rules on the traffic of the ports that carry them."""
