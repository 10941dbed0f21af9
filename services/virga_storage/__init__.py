"""Virga's storage: images and volumes as Ceph RBD images.

The driver layer (`drivers/`: `base`, `rbd`, `rbd_connection`, `memory`) is the part that
talks to Ceph; nothing outside it sees a rados or rbd object.
"""
