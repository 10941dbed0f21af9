"""The compute agent's config drive and the network agent's metadata service tell one guest
the same: each builds a `GuestFacts` from its own fold and lays it out with `virga_guestdata`,
so what both know is the same bytes, and what only the network agent knows (the MTU, the
port id, the DNS servers) and how the address is taken (DHCP from the service, static from
the drive) are the only differences."""

from __future__ import annotations

import base64
import json
from typing import Any

from virga_compute.core.spec import ConfigDrive, InstanceSpec, NicSpec
from virga_compute.drivers.config_drive import drive_files
from virga_events.catalog.network import instance_port_id
from virga_guestdata import document
from virga_network.agent.core.edge import EdgeSettings, guest_facts
from virga_network.agent.core.model import (
    InstanceRecord,
    NetworkAgentState,
    NetworkRecord,
    PortRecord,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0 alice@laptop"
USER_DATA = base64.b64encode(b"#cloud-config\n").decode()
MAC = "52:54:00:aa:bb:cc"


def _agent_state(key_name: str | None) -> NetworkAgentState:
    state = NetworkAgentState("h1")
    state.networks["n-1"] = NetworkRecord("n-1", "t-1", 7, "10.0.0.0/24", "10.0.0.1")
    state.instances["i-1"] = InstanceRecord(
        "i-1", "t-1", "web 1", "web-1", key_name, (KEY,), USER_DATA, "zone-a"
    )
    port = instance_port_id("i-1")
    state.ports[port] = PortRecord(port, "t-1", "n-1", MAC, ("10.0.0.5",), host="h1")
    return state


def _spec(key_name: str | None) -> InstanceSpec:
    drive = ConfigDrive("zone-a", "web-1", key_name, (KEY,), USER_DATA, project_id="t-1")
    nic = NicSpec(mac=MAC, tap="vgt0123456789", address="10.0.0.5/24", gateway="10.0.0.1")
    return InstanceSpec("i-1", "web 1", 1, 256, nics=(nic,), config_drive=drive)


def _without_what_compute_cannot_know(network: dict[str, Any]) -> dict[str, Any]:
    links = [
        {k: v for k, v in link.items() if k not in ("mtu", "vif_id")} for link in network["links"]
    ]
    return {**network, "links": links, "networks": [], "services": []}


def test_the_drive_and_the_metadata_service_agree_on_one_guest() -> None:
    for key_name in ("laptop", None):
        facts = guest_facts(
            _agent_state(key_name), "n-1", "10.0.0.5", EdgeSettings(1500, ("192.0.2.53",))
        )
        assert facts is not None
        drive = drive_files(_spec(key_name))
        served = {
            name: document(facts, f"/openstack/latest/{name}")
            for name in (document(facts, "/openstack/latest/") or b"").decode().split("\n")
        }
        assert sorted(drive) == sorted(f"openstack/latest/{name}" for name in served)
        for name in ("meta_data.json", "user_data", "vendor_data.json", "vendor_data2.json"):
            assert drive[f"openstack/latest/{name}"] == served[name], name
        ours = json.loads(drive["openstack/latest/network_data.json"])
        theirs = json.loads(served["network_data.json"] or b"")
        assert theirs["links"][0]["mtu"] == 1450
        # The metadata service's guest takes its address by DHCP (and with it the route to
        # 169.254.169.254); the drive's, maybe on a network without, configures it statically.
        assert theirs["networks"] == [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0"}]
        assert ours["networks"][0]["ip_address"] == "10.0.0.5"
        assert {**ours, "networks": []} == _without_what_compute_cannot_know(theirs)
