"""`make up`'s external network: the bridge's name, the host's address and the registration."""

from __future__ import annotations

import pytest

from virga_devstack.external import ExternalSegment, local
from virga_network.agent.core import names


def test_the_bridge_takes_the_agents_prefix_and_the_address_its_setting() -> None:
    assert local({}) == ExternalSegment(bridge="vgext", address="203.0.113.1/24")
    segment = local(
        {"VIRGA_NETWORK_IFACE_PREFIX": "vst", "VIRGA_DEVSTACK_EXTERNAL_ADDRESS": "198.18.9.1/24"}
    )
    assert (segment.bridge, segment.gateway_ip, segment.cidr) == (
        "vstext",
        "198.18.9.1",
        "198.18.9.0/24",
    )
    with pytest.raises(ValueError, match="not-an-address"):
        local({"VIRGA_DEVSTACK_EXTERNAL_ADDRESS": "not-an-address"})


def test_no_agent_takes_the_bridge_for_one_of_its_own_interfaces() -> None:
    # An agent removes the interfaces of its own kinds that the log no longer wants.
    for prefix in ("vg", "vst"):
        assert names.kind_of(local({"VIRGA_NETWORK_IFACE_PREFIX": prefix}).bridge, prefix) is None


def test_the_registration_leaves_the_first_addresses_to_the_host() -> None:
    body = ExternalSegment().body()
    assert body == {
        "name": "public",
        "cidr": "203.0.113.0/24",
        "gateway_ip": "203.0.113.1",
        "host_interface": "vgext",
        "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.254"}],
    }
