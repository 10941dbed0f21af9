"""`virga volume ...` and `virga image ...`: block volumes, their snapshots, and images."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.names import resolve, resolve_snapshot
from virga_cli.output import Cli, Column, pass_cli

CHUNK = 1 << 20
UPLOAD_TIMEOUT_SECONDS = 3600.0
"""The gateway answers once the image is imported: a big qcow2 takes a while to convert."""

VOLUME_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("size_gb", "size_gb"),
    ("image", "image"),
    ("attached to", lambda v: [a.get("instance_id") for a in v.get("attachments") or []]),
    ("boot of", "boot_of"),
]
VOLUME_FIELDS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("fault", "fault"),
    ("tenant", "tenant_id"),
    ("size", lambda v: f"{v.get('size_gb')} GiB"),
    ("image", "image"),
    ("snapshot", "snapshot"),
    ("parent", "parent"),
    ("clone depth", "clone_depth"),
    ("boot of", "boot_of"),
    (
        "attachments",
        lambda v: [
            f"{a.get('instance_id')} on {a.get('host')} as {a.get('device')}"
            for a in v.get("attachments") or []
        ],
    ),
    (
        "snapshots",
        lambda v: [
            f"{s.get('name')} ({s.get('id')}, {s.get('status')})" for s in v.get("snapshots") or []
        ],
    ),
    ("created", "created_at"),
    ("updated", "updated_at"),
]
IMAGE_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("visibility", "visibility"),
    ("size", lambda i: _size(i.get("size_bytes"))),
    ("created", "created_at"),
]
IMAGE_FIELDS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("fault", "fault"),
    ("visibility", "visibility"),
    ("owner", "tenant_id"),
    ("uploaded as", "disk_format"),
    ("size", lambda i: _size(i.get("size_bytes"))),
    ("sha256", "sha256"),
    ("created", "created_at"),
]


def _size(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


@click.group()
def volume() -> None:
    """Block volumes on Ceph RBD, and their snapshots."""


@volume.command("create")
@click.argument("name")
@click.option("--size", "size_gb", type=int, required=True, help="GiB (2^30 bytes).")
@click.option("--image", help="Clone this image (id or name; copy-on-write).")
@click.option("--snapshot", help="Clone this volume snapshot (id or name).")
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def volume_create(
    cli: Cli,
    name: str,
    size_gb: int,
    image: str | None,
    snapshot: str | None,
    tenant_id: str | None,
) -> None:
    """Create volume NAME: blank, or a clone of an image or of a snapshot."""
    if image and snapshot:
        raise click.UsageError("--image and --snapshot exclude each other")
    body: dict[str, Any] = {"name": name, "size_gb": size_gb}
    extra = {"image": image, "snapshot": snapshot, "tenant_id": tenant_id}
    body.update({k: v for k, v in extra.items() if v is not None})
    client = cli.client()
    if image is not None:
        body["image"] = resolve(client, "image", image)
    if snapshot is not None:
        body["snapshot"] = resolve_snapshot(client, snapshot)
    created = client.post("/v1/volumes", body)
    cli.emit(created, lambda v: cli.record(v, VOLUME_FIELDS))


@volume.command("list")
@pass_cli
def volume_list(cli: Cli) -> None:
    """List volumes (every page)."""
    items = cli.client().paged("/v1/volumes")
    cli.emit({"items": items}, lambda d: cli.table(d["items"], VOLUME_COLUMNS))


@volume.command("show")
@click.argument("volume_id")
@pass_cli
def volume_show(cli: Cli, volume_id: str) -> None:
    """Show a volume (by id or name): status, size, parent, attachments, snapshots."""
    client = cli.client()
    found = client.get(f"/v1/volumes/{resolve(client, 'volume', volume_id)}")
    cli.emit(found, lambda v: cli.record(v, VOLUME_FIELDS))


@volume.command("extend")
@click.argument("volume_id")
@click.option("--size", "size_gb", type=int, required=True, help="The new size in GiB (larger).")
@pass_cli
def volume_extend(cli: Cli, volume_id: str, size_gb: int) -> None:
    """Grow a volume (volumes never shrink)."""
    body = {"action": "extend", "size_gb": size_gb}
    client = cli.client()
    answer = client.post(f"/v1/volumes/{resolve(client, 'volume', volume_id)}/actions", body)
    cli.emit(answer, lambda v: cli.out.print(f"volume {v['name']}: extending to {size_gb} GiB"))


@volume.command("delete")
@click.argument("volume_id")
@pass_cli
def volume_delete(cli: Cli, volume_id: str) -> None:
    """Delete a volume (by id or name; refused while attached)."""
    client = cli.client()
    answer = client.delete(f"/v1/volumes/{resolve(client, 'volume', volume_id)}")
    cli.emit(answer, lambda v: cli.out.print(f"volume {v['name']} is {v['status']}"))


@volume.command("snapshot")
@click.argument("volume_id")
@click.option("--name", required=True)
@pass_cli
def volume_snapshot(cli: Cli, volume_id: str, name: str) -> None:
    """Take a snapshot of a volume (clone it with `volume create --snapshot`)."""
    client = cli.client()
    volume_id = resolve(client, "volume", volume_id)
    answer = client.post(f"/v1/volumes/{volume_id}/snapshots", {"name": name})
    cli.emit(answer, lambda s: cli.out.print(f"snapshot {s['name']} ({s['id']}): {s['status']}"))


@volume.command("snapshot-delete")
@click.argument("volume_id")
@click.argument("snapshot_id")
@pass_cli
def volume_snapshot_delete(cli: Cli, volume_id: str, snapshot_id: str) -> None:
    """Delete a snapshot of a volume (refused while volumes are clones of it)."""
    client = cli.client()
    volume_id = resolve(client, "volume", volume_id)
    snapshot_id = resolve_snapshot(client, snapshot_id, volume_id=volume_id)
    answer = client.delete(f"/v1/volumes/{volume_id}/snapshots/{snapshot_id}")
    cli.emit(answer, lambda s: cli.out.print(f"snapshot {s['name']} ({s['id']}): {s['status']}"))


@volume.command("attach")
@click.argument("volume_id")
@click.argument("instance_id")
@pass_cli
def volume_attach(cli: Cli, volume_id: str, instance_id: str) -> None:
    """Attach VOLUME_ID to INSTANCE_ID."""
    client = cli.client()
    body = {"volume_id": resolve(client, "volume", volume_id)}
    instance_id = resolve(client, "instance", instance_id)
    answer = client.post(f"/v1/instances/{instance_id}/volumes", body)
    cli.emit(answer, lambda _: cli.out.print(f"attaching {volume_id} to {instance_id}"))


@volume.command("detach")
@click.argument("volume_id")
@click.argument("instance_id")
@pass_cli
def volume_detach(cli: Cli, volume_id: str, instance_id: str) -> None:
    """Detach VOLUME_ID from INSTANCE_ID."""
    client = cli.client()
    volume_id = resolve(client, "volume", volume_id)
    instance_id = resolve(client, "instance", instance_id)
    answer = client.delete(f"/v1/instances/{instance_id}/volumes/{volume_id}")
    cli.emit(answer, lambda _: cli.out.print(f"detaching {volume_id} from {instance_id}"))


@click.group()
def image() -> None:
    """Images that volumes and boot disks are cloned from."""


def chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    """The file's bytes, advancing the progress bar as each chunk leaves."""
    task = None if progress is None else progress.add_task("upload", total=path.stat().st_size)
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk
            if progress is not None and task is not None:
                progress.advance(task, len(chunk))


@image.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True)
@click.option(
    "--format",
    "disk_format",
    type=click.Choice(["qcow2", "raw"]),
    default=None,
    help="The file's format (default: qcow2 if it starts with qcow2's magic, else raw).",
)
@click.option("--public", is_flag=True, help="Admins: every tenant sees it.")
@click.option("--tenant", "tenant_id", help="Admins: the owner of a private image.")
@pass_cli
def image_upload(
    cli: Cli, file: Path, name: str, disk_format: str | None, public: bool, tenant_id: str | None
) -> None:
    """Upload FILE as an image, streamed (never read whole into memory)."""
    if disk_format is None:
        with file.open("rb") as head:
            disk_format = "qcow2" if head.read(4) == b"QFI\xfb" else "raw"
    client = cli.client()
    if public:
        _require_admin(client, "only administrators publish public images")
    size = file.stat().st_size
    query = {
        "name": name,
        "disk_format": disk_format,
        "visibility": "public" if public else "private",
        "tenant_id": tenant_id,
    }
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    progress = Progress(
        TextColumn(f"[bold]{file.name}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=cli.err,
        transient=False,
    )
    with progress:
        answer = client.request(
            "POST",
            "/v1/images",
            query=query,
            data=chunks(file, progress),
            headers=headers,
            timeout=UPLOAD_TIMEOUT_SECONDS,
        )
    cli.emit(answer, lambda i: cli.record(i, IMAGE_FIELDS))


def _require_admin(client: Client, why: str) -> None:
    """Refuse before a long upload that the API would refuse once it is all sent (urllib
    reads the answer only after the whole body): an admin-only read tells whose token it is."""
    try:
        client.get("/v1/tenants", limit="1")
    except errors.ApiProblem as problem:
        if problem.status == 403:
            raise errors.CliFailure(f"{why}: this token is not an admin's", errors.AUTH) from None
        raise


@image.command("list")
@pass_cli
def image_list(cli: Cli) -> None:
    """List the public images and your own."""
    answer = {"items": cli.client().paged("/v1/images")}
    cli.emit(answer, lambda d: cli.table(d["items"], IMAGE_COLUMNS))


@image.command("show")
@click.argument("image_id")
@pass_cli
def image_show(cli: Cli, image_id: str) -> None:
    """Show an image (by id or name)."""
    client = cli.client()
    found = client.get(f"/v1/images/{resolve(client, 'image', image_id)}")
    cli.emit(found, lambda i: cli.record(i, IMAGE_FIELDS))


@image.command("delete")
@click.argument("image_id")
@pass_cli
def image_delete(cli: Cli, image_id: str) -> None:
    """Delete an image (by id or name; refused while volumes are clones of it)."""
    client = cli.client()
    answer = client.delete(f"/v1/images/{resolve(client, 'image', image_id)}")
    cli.emit(answer, lambda i: cli.out.print(f"image {i['name']} is {i['status']}"))
