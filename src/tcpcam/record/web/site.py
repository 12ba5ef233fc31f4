"""The web site: the URL space, and what every request goes through before any page.

Every request is checked in this order:

1. its Host header (:mod:`tcpcam.record.web.hosts`; 403 for another site's name);
2. its body: at most :attr:`BoundedRequest.maxBodyBytes` (413 and the
   connection closed beyond);
3. the login (:class:`~tcpcam.record.web.auth.WebAuth`), except for
   ``/login``, ``/logout`` and ``/static/``.

Every answer carries headers that keep other sites from framing or sniffing
the pages. HTTP access lines are logged only if asked (``--web-access-log``),
and an idle connection (no request in progress) is closed after
``--web-idle-timeout`` seconds without a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from twisted.internet.interfaces import ITCPTransport
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from tcpcam.record.web.auth import WebAuth
from tcpcam.record.web.hosts import HostCheck
from tcpcam.record.web.plain import PlainError

#: Headers on every answer: no framing by other sites, no type sniffing, scripts and pictures from here only.
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self';"
     b" frame-ancestors 'none'"),
)
#: The paths anyone may reach: the login form and its files.
PUBLIC = (b"login", b"logout", b"static")


class BoundedRequest(Request):
    """A request whose body may be at most :attr:`maxBodyBytes`; a larger one gets 413 and a closed connection."""

    #: The largest request body taken, in bytes (a login form is a few dozen).
    maxBodyBytes = 16 * 1024
    _tooLarge = False
    _bodyBytes = 0

    def gotLength(self, length: int | None) -> None:
        """Refuse a declared length over the bound before reading any of it."""
        if length is not None and length > self.maxBodyBytes:
            self._refuseBody()
            length = 0
        Request.gotLength(self, length)

    def handleContentChunk(self, data: bytes) -> None:
        """Take body bytes up to the bound."""
        if self._tooLarge:
            return
        self._bodyBytes += len(data)
        if self._bodyBytes > self.maxBodyBytes:
            self._refuseBody()
            return
        Request.handleContentChunk(self, data)

    def _refuseBody(self) -> None:
        self._tooLarge = True
        transport = cast(ITCPTransport, self.channel.transport)
        transport.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Connection: close\r\nContent-Length: 23\r\n\r\nrequest body too large\n")
        transport.loseConnection()

    def process(self) -> None:
        """Handle the request, unless its body was refused."""
        if not self._tooLarge:
            Request.process(self)


class QuietChannel(HTTPChannel):
    """Twisted's HTTP channel, closing an idle connection without a log line per connection."""

    def timeoutConnection(self) -> None:
        """Idle for the whole timeout with no request in progress: close at once."""
        cast(ITCPTransport, self.transport).abortConnection()


class WebRoot(Resource):
    """The root: public paths as they are; everything else behind the login."""

    def __init__(self, auth: WebAuth, public: Mapping[bytes, IResource], protected: Resource) -> None:
        Resource.__init__(self)
        self.auth = auth
        self.public = public
        self.protected = protected

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        """Look ``path`` up, after the login for anything not public."""
        if path in self.public:
            return self.public[path]
        refusal = self.auth.guard(request)
        if refusal is not None:
            return refusal
        return self.protected.getChildWithDefault(path, request)


class WebSite(Site):
    """The site: the Host check, the security headers, the access log switch."""

    # HTTPChannel itself, not Twisted's wrapper that can switch to HTTP/2: the interface speaks HTTP/1.1.
    protocol = QuietChannel  # type: ignore[assignment]
    requestFactory = BoundedRequest
    displayTracebacks = False
    noisy = False

    def __init__(self, root: IResource, hosts: HostCheck, accessLog: bool, timeout: float, **kwargs: Any) -> None:
        Site.__init__(self, root, timeout=timeout, **kwargs)
        self.hosts = hosts
        self.accessLog = accessLog
        #: Requests refused for their Host header.
        self.refusedHosts = 0

    def getResourceFor(self, request: Request) -> IResource:
        """The resource for ``request``: 403 for a Host this recorder does not answer to."""
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        if not self.hosts.allows(request.getHeader(b"host")):
            self.refusedHosts += 1
            return PlainError(403, "this recorder does not answer to that host name;"
                              " allow it with --web-hosts NAME")
        return Site.getResourceFor(self, request)

    def log(self, request: http.Request) -> None:
        """Log the request's access line only if access logging is on."""
        if self.accessLog:
            Site.log(self, request)
