"""Billing as the API shows it: the price catalogue, a tenant's usage and its invoices."""
