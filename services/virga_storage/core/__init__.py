"""The storage service's pure core: its model, fold, snapshot and decisions (no Ceph, no I/O)."""
