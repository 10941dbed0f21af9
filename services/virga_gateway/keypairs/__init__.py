"""Keypairs: a tenant's SSH public keys, named, for its instances' guests."""
