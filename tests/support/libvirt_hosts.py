"""Libvirt hosts of a test's own (`virga_devstack.libvirt_host`): two or more libvirtd
daemons on this machine, each in its namespaces, joined by a network and reaching the test
Ceph cluster; for live migration. Never the system libvirtd, which other tests share.

Use the fixture `two_libvirt_hosts` (module-scoped: a host takes ~10 s to start) by
importing it into the test module; the hosts, their guests and namespaces are always
removed at the end, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

from virga_devstack import libvirt_host
from virga_devstack.ceph import CephCluster
from virga_devstack.libvirt_host import LibvirtHost


@contextlib.contextmanager
def libvirt_hosts(count: int, ceph: CephCluster | None) -> Iterator[list[LibvirtHost]]:
    """`count` new hosts (forwarding `ceph`'s ports, if given), stopped on exit."""
    ports = libvirt_host.ceph_ports(ceph.conf_file, ceph.port) if ceph is not None else []
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:4]}"
    names = [f"t{tag}-{index}" for index in range(count)]
    try:
        yield [libvirt_host.start(name, ceph_ports=ports) for name in names]
    finally:
        for name in names:
            libvirt_host.stop(name)


@pytest.fixture(scope="module")
def two_libvirt_hosts(ceph_cluster: CephCluster) -> Iterator[tuple[LibvirtHost, LibvirtHost]]:
    with libvirt_hosts(2, ceph_cluster) as (a, b):
        yield a, b
