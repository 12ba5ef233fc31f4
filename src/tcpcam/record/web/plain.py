"""Small answers every part of the web interface gives: one-line text errors, redirects, no-cache."""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

#: The Cache-Control of everything that changes from one request to the next.
NO_CACHE = b"no-cache, no-store, must-revalidate"


def plainText(request: Request, code: int, message: str, retryAfter: float | None = None) -> bytes:
    """Answer ``code`` with ``message`` as one line of text (the body to return from ``render``)."""
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"cache-control", NO_CACHE)
    if retryAfter is not None:
        request.setHeader(b"retry-after", b"%d" % max(1, round(retryAfter)))
    return message.encode("utf-8") + b"\n"


def seeOther(request: Request, location: bytes) -> bytes:
    """Answer 303 See Other to ``location`` (a path on this site)."""
    request.setResponseCode(303)
    request.setHeader(b"location", location)
    request.setHeader(b"cache-control", NO_CACHE)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"see " + location + b"\n"


class PlainError(Resource):
    """A leaf that answers every request with one status code and one line of text."""

    isLeaf = True

    def __init__(self, code: int, message: str, retryAfter: float | None = None) -> None:
        Resource.__init__(self)
        self.code = code
        self.message = message
        self.retryAfter = retryAfter

    def render(self, request: Request) -> bytes:
        """Answer with the status code and the message, whatever the method."""
        return plainText(request, self.code, self.message, self.retryAfter)
