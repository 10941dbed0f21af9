"""The storage driver layer: the `StorageDriver` protocol (`base`), the in-process driver
(`memory`) and the Ceph RBD one (`rbd`, `rbd_connection`); nothing else talks to Ceph."""
