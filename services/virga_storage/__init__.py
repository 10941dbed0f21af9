"""Virga's storage: images and volumes as Ceph RBD images.

The driver layer (`driver`, `rbd_driver`, `memory_driver`) is the part that talks to Ceph;
nothing outside it sees a rados or rbd object.
"""
