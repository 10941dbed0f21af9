"""The storage service's pure core: its model, fold, snapshot and decisions, and the rules
about image formats (no Ceph, no I/O)."""
