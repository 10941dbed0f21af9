"""The compute agent's pure core: its state, the fold, snapshots, decisions and plans.

Nothing here does I/O or imports libvirt: every function is a function of the state, an
event, the configuration or the time.
"""
