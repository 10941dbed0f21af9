"""The gateway's record of an image, folded from the api and storage topics.

As for volumes, each topic's facts are kept apart and the status is derived from them by
precedence: a rebuild reads the storage topic before the gateway's own one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

REFUSED_IMPORTS = frozenset({"bad_data", "too_large"})
"""Kinds of failed import the upload's answer reports as 422 or 413 (see images/routes)."""

ImageStatus = Literal["importing", "available", "error", "deleting", "deleted"]


class Image(msgspec.Struct, kw_only=True):
    """An image; listed once its import request is folded."""

    id: str
    requested: bool = False
    name: str = ""
    tenant_id: str = ""
    """The owner; "" for a public image an admin uploaded."""
    visibility: Literal["public", "private"] = "private"
    disk_format: Literal["raw", "qcow2"] = "raw"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deletion_requested_at: datetime | None = None
    imported: bool = False
    size_bytes: int = 0
    sha256: str | None = None
    import_fault: str | None = None
    import_fault_kind: str | None = None
    deletion_failed_at: datetime | None = None
    fault: str | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""

    @property
    def refused(self) -> bool:
        """Its bytes were refused (not an image of its format, or too large): the uploader
        was told so in the upload's answer, and nothing is kept, so it is gone at once."""
        return self.import_fault_kind in REFUSED_IMPORTS and not self.imported

    @property
    def status(self) -> ImageStatus:
        if self.deleted:
            return "deleted"
        if self.deletion_requested_at is not None and (
            self.deletion_failed_at is None or self.deletion_failed_at < self.deletion_requested_at
        ):
            return "deleting"
        if self.imported:
            return "available"
        return "error" if self.import_fault is not None else "importing"
