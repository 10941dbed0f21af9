"""Compute hosts and their allocation ratios."""
