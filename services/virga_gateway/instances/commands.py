"""What instance requests decide, given the projection: events to append and the answer.

Pure: ids come in as arguments, so every rule here is tested without HTTP or Kafka. Problems
raised here become 4xx answers.
"""

from __future__ import annotations

from virga_events.catalog import api
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.instances.bodies import CreateInstance, InstanceAction, MigrateInstance
from virga_gateway.instances.guest import hostname_for, user_data_problem
from virga_gateway.instances.model import InstanceStatus
from virga_gateway.instances.queries import find_instance
from virga_gateway.instances.views import MigrationView, instance_view
from virga_gateway.keypairs.model import keypair_id
from virga_gateway.networks.queries import check_instance_network
from virga_gateway.outcome import Outcome, View
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_gateway.security_groups.queries import unknown_groups
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def create_instance(
    state: GatewayState, principal: Principal, body: CreateInstance, instance_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    errors: list[FieldError] = []
    flavor = state.flavors.get(body.flavor)
    if flavor is None:
        errors.append(FieldError("flavor", f"no flavor named {body.flavor}"))
    if body.server_group is not None:
        group = state.server_groups.get(body.server_group)
        if group is None or group.tenant_id != tenant_id:
            errors.append(FieldError("server_group", f"no server group {body.server_group}"))
    network = body.network_id or body.network
    if body.network_id and body.network and body.network_id != body.network:
        errors.append(FieldError("network", "names another network than network_id: give one"))
    elif network is not None:
        field = "network_id" if body.network_id else "network"
        errors.extend(check_instance_network(state, tenant_id, network, field))
    if body.security_groups and network is None:
        errors.append(FieldError("security_groups", "a port's groups need a network_id"))
    errors += unknown_groups(state, tenant_id, body.security_groups, "security_groups")
    if body.image is not None:
        # Booting clones the image: another tenant's private image must not exist for this one.
        image = state.images.get(body.image)
        if (
            image is None
            or not image.requested
            or image.deleted
            or (image.visibility != "public" and image.tenant_id != tenant_id)
        ):
            errors.append(FieldError("image", f"no image {body.image}"))
    public_keys: tuple[str, ...] = ()
    if body.key_name is not None:
        keypair = state.keypairs.get(keypair_id(tenant_id, body.key_name))
        if keypair is None:
            errors.append(FieldError("key_name", f"no keypair named {body.key_name}"))
        else:
            public_keys = (keypair.public_key,)
    if body.user_data is not None and (problem := user_data_problem(body.user_data)):
        errors.append(FieldError("user_data", problem))
    if errors:
        raise invalid_fields(errors)
    assert flavor is not None
    event = api.InstanceRequested(
        name=body.name,
        flavor=flavor,
        image=body.image,
        network=network,
        server_group=body.server_group,
        availability_zone=body.availability_zone,
        required_traits=tuple(body.required_traits),
        delete_on_termination=body.delete_on_termination,
        restart_policy=body.restart_policy,
        hostname=hostname_for(body.name, instance_id),
        key_name=body.key_name,
        public_keys=public_keys,
        user_data=body.user_data,
        config_drive=body.config_drive,
        security_groups=tuple(dict.fromkeys(body.security_groups)),
    )
    emit = Emit(event, instance_id, tenant_id)
    return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))


_ACTION_NEEDS: dict[str, InstanceStatus] = {
    "start": "STOPPED",
    "stop": "RUNNING",
    "reboot": "RUNNING",
}


def instance_action(
    state: GatewayState, principal: Principal, instance_id: str, body: InstanceAction
) -> Outcome:
    action = body.action
    # The route hands these on (`==` each: mypy narrows the literal so).
    if action == "live-migrate" or action == "evacuate" or action == "resize":
        raise ValueError(f"{action} is not a power action")
    instance = find_instance(state, principal, instance_id)
    needed = _ACTION_NEEDS[action]
    if instance.status != needed:
        raise conflict(
            f"cannot {body.action} instance {instance_id}: it is {instance.status},"
            f" and {body.action} needs {needed}",
            "status",
        )
    emit = Emit(api.InstanceActionRequested(action=action), instance_id, instance.tenant_id)
    return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))


def delete_instance(state: GatewayState, principal: Principal, instance_id: str) -> Outcome:
    instance = find_instance(state, principal, instance_id)
    if instance.status == "DELETED":
        raise not_found("instance", instance_id)
    view: View = lambda s: instance_view(s.instances[instance_id])  # noqa: E731
    if instance.status == "DELETING":
        return Outcome(202, (), view)  # already on its way: asking again changes nothing
    emit = Emit(api.InstanceDeletionRequested(), instance_id, instance.tenant_id)
    return Outcome(202, (emit,), view)


def migrate_instance(
    state: GatewayState,
    principal: Principal,
    instance_id: str,
    body: MigrateInstance,
    flow_id: str,
    as_action: bool = False,
) -> Outcome:
    """LiveMigrationRequested (admins only, by the route): the scheduler runs it as the flow
    `flow_id`. `as_action`: asked as the `live-migrate` action, which answers the instance's
    view (MIGRATING once the flow starts) as the other actions do."""
    instance = find_instance(state, principal, instance_id)
    if instance.status == "MIGRATING" or instance.migration_pending:
        raise conflict(f"instance {instance_id} is already migrating", "status")
    if instance.status != "RUNNING":
        raise conflict(
            f"cannot migrate instance {instance_id}: it is {instance.status},"
            " and a live migration needs RUNNING",
            "status",
        )
    if body.host is not None:
        host = state.hosts.get(body.host)
        if host is None or not host.registered:
            raise not_found("host", body.host)
        if body.host == instance.host:
            raise conflict(f"instance {instance_id} already runs on host {body.host}", "host")
        if not host.receives_migrations:
            raise conflict(f"host {body.host} cannot receive live migrations", "host")
    asked = api.LiveMigrationRequested(host=body.host, flow_id=flow_id)
    emit = Emit(asked, instance_id, instance.tenant_id)

    def view(s: GatewayState) -> MigrationView:
        return MigrationView(flow_id=flow_id, instance=instance_view(s.instances[instance_id]))

    if as_action:
        return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))
    return Outcome(202, (emit,), view)


def evacuate_instance(
    state: GatewayState,
    principal: Principal,
    instance_id: str,
    destination: str | None,
    flow_id: str,
) -> Outcome:
    """EvacuationRequested (admins only, by the route), only while the instance's host is
    down: the scheduler rebuilds it elsewhere from its disks as the flow `flow_id`."""
    instance = find_instance(state, principal, instance_id)
    if instance.status in ("MIGRATING", "EVACUATING") or instance.migration_pending:
        raise conflict(f"instance {instance_id} is already moving", "status")
    source = instance.host
    if source is None or instance.status in ("BUILDING", "DELETING", "DELETED"):
        raise conflict(
            f"cannot evacuate instance {instance_id}: it is {instance.status}"
            + ("" if source is None else f" on host {source}"),
            "status",
        )
    host = state.hosts.get(source)
    if host is None or host.state != "down":
        raise conflict(
            f"cannot evacuate instance {instance_id}: its host {source} is up;"
            " only an instance whose host is down is evacuated",
            "host",
        )
    if destination is not None:
        target = state.hosts.get(destination)
        if target is None or not target.registered:
            raise not_found("host", destination)
        if destination == source:
            raise conflict(f"host {destination} is the instance's own (down) host", "host")
        if target.state == "down":
            raise conflict(f"host {destination} is down", "host")
    asked = api.EvacuationRequested(host=destination, flow_id=flow_id)
    emit = Emit(asked, instance_id, instance.tenant_id)
    return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))


def resize_instance(
    state: GatewayState, principal: Principal, instance_id: str, flavor_name: str, flow_id: str
) -> Outcome:
    """InstanceResizeRequested: the scheduler runs it as the flow `flow_id` (a cold resize:
    stop, grow the boot volume, redefine, start). Quotas count the larger flavor meanwhile,
    so one that does not fit is refused (403) before anything moves."""
    instance = find_instance(state, principal, instance_id)
    if instance.status not in ("RUNNING", "STOPPED"):
        raise conflict(
            f"cannot resize instance {instance_id}: it is {instance.status},"
            " and a resize needs RUNNING or STOPPED",
            "status",
        )
    if instance.migration_pending:
        raise conflict(f"instance {instance_id} is about to migrate", "status")
    flavor, current = state.flavors.get(flavor_name), instance.flavor
    if flavor is None:
        raise invalid_fields([FieldError("flavor", f"no flavor named {flavor_name}")])
    if current is not None and flavor.name == current.name:
        raise invalid_fields([FieldError("flavor", f"the instance is {flavor.name} already")])
    if current is not None and flavor.disk_gb < current.disk_gb:
        raise invalid_fields(
            [
                FieldError(
                    "flavor",
                    f"{flavor.name}'s disk ({flavor.disk_gb} GB) is smaller than the"
                    f" instance's ({current.disk_gb} GB): a disk never shrinks",
                )
            ]
        )
    asked = api.InstanceResizeRequested(flavor=flavor, flow_id=flow_id)
    emit = Emit(asked, instance_id, instance.tenant_id)
    return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))
