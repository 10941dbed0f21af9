"""`make up` keeps one public `virga-guest`: earlier seeds are deleted once nothing clones them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from virga_devstack import seed


class Images:
    """The image routes of a stub gateway: a listing and deletions (409 for `cloned`)."""

    def __init__(self, items: list[dict[str, Any]], cloned: set[str]) -> None:
        self.items, self.cloned, self.deleted = items, cloned, list[str]()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        images = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer(200, {"items": images.items})

            def do_DELETE(self) -> None:
                image_id = self.path.rsplit("/", 1)[1]
                if image_id in images.cloned:
                    self._answer(409, {"detail": f"image {image_id} has volumes cloned from it"})
                else:
                    images.deleted.append(image_id)
                    self._answer(202, {"id": image_id, "status": "deleting"})

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[tuple[str, Images]]:
    def image(image_id: str, name: str = seed.IMAGE_NAME, visibility: str = "public") -> Any:
        return {"id": image_id, "name": name, "visibility": visibility, "status": "available"}

    images = Images(
        [image("old-1"), image("old-2"), image("new"), image("mine", visibility="private"),
         image("other", name="debian")],
        cloned={"old-2"},
    )  # fmt: skip
    server = HTTPServer(("127.0.0.1", 0), images.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", images
    finally:
        server.shutdown()
        server.server_close()


def test_older_seeds_are_deleted_and_one_still_cloned_is_kept(api: tuple[str, Images]) -> None:
    url, images = api
    assert seed.retire_older(url, "token", "new") == (["old-1"], ["old-2"])
    # A tenant's image of that name and other names are not make up's to delete.
    assert images.deleted == ["old-1"]
