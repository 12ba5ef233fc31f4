"""The web interface's plain HTML, CSS and JavaScript files, served from package data.

The files live in ``tcpcam/record/web/static/`` as they are written (no build
step) and are read once, when the web interface starts. Each answer carries
an ETag, so a browser revalidates and gets 304 Not Modified instead of the
file again.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from tcpcam.record.web.plain import PlainError

#: Content types by file name suffix.
CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".svg": b"image/svg+xml",
}


class Asset(Resource):
    """One file: its bytes, content type and ETag."""

    isLeaf = True

    def __init__(self, name: str, data: bytes) -> None:
        Resource.__init__(self)
        self.name = name
        self.data = data
        self.contentType = CONTENT_TYPES[name[name.rindex("."):]]
        self.etag = b'"%s"' % hashlib.sha256(data).hexdigest()[:20].encode()

    def render_GET(self, request: Request) -> bytes:
        """The file, or 304 if the browser has it already."""
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"etag", self.etag)
        if request.getHeader(b"if-none-match") == self.etag:
            request.setResponseCode(304)
            return b""
        return self.data

    render_HEAD = render_GET


def loadAssets() -> dict[str, Asset]:
    """Every file of the ``static`` folder, by name."""
    folder = resources.files("tcpcam.record.web").joinpath("static")
    assets = {}
    for entry in folder.iterdir():
        name = entry.name
        if entry.is_file() and "." in name and name[name.rindex("."):] in CONTENT_TYPES:
            assets[name] = Asset(name, entry.read_bytes())
    return assets


class AssetFolder(Resource):
    """``/static/NAME``: the files of :func:`loadAssets`; anything else is 404."""

    def __init__(self, assets: dict[str, Asset]) -> None:
        Resource.__init__(self)
        for name, asset in assets.items():
            self.putChild(name.encode(), asset)

    def getChild(self, path: bytes, request: Request) -> IResource:
        """Any other name does not exist."""
        return PlainError(404, "no such file")

    def render(self, request: Request) -> bytes:
        """The folder itself is not a page."""
        return PlainError(404, "no such file").render(request)
