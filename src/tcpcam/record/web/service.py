"""The web interface as a Twisted service: build the site, listen, say where, make the first password."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure

from tcpcam.core.text import plural
from tcpcam.record.config import DEFAULT_OUT, WebSettings
from tcpcam.record.metrics import metricsResource
from tcpcam.record.web.assets import AssetFolder, loadAssets
from tcpcam.record.web.auth import LoginResource, LogoutResource, WebAuth
from tcpcam.record.web.exports import ExportManager, ExportsResource
from tcpcam.record.web.hosts import HostCheck
from tcpcam.record.web.limits import ConnectionLimits, connectionBudget, descriptorLimit
from tcpcam.record.web.live import LiveTree
from tcpcam.record.web.plain import PlainError
from tcpcam.record.web.playback import PLAYERS_PER_ADDRESS, PlayResource
from tcpcam.record.web.reads import FootageReads
from tcpcam.record.web.site import WebRoot, WebSite
from tcpcam.record.web.stream import CountedStream, ViewerLimits
from tcpcam.record.web.timeline import timelineChildren

if TYPE_CHECKING:
    from tcpcam.record.service import RecorderService

log = Logger(namespace="tcpcam.record")


class WebService(Service):
    """Serve the web interface on a server endpoint string such as ``tcp:8080``.

    The settings come from the recorder's config (``webSettings`` and
    ``authFile``). Once listening, it logs the address to open; on a first
    start with the login on and no password set, it makes a password and logs
    it with a one-time login link.
    """

    def __init__(self, description: str, recorder: RecorderService, reactor: Any) -> None:
        self.description = description
        self.recorder = recorder
        self._reactor = reactor
        self.settings: WebSettings = recorder.config.webSettings
        self.auth = WebAuth(recorder.config.authFile, reactor, self.settings.login)
        self.viewers = ViewerLimits(self.settings.viewersPerAddress)
        #: Playback streams of recorded footage, bounded per address like the live ones.
        self.players = ViewerLimits(PLAYERS_PER_ADDRESS)
        #: Every read of recorded footage, in worker threads.
        self.reads = FootageReads(recorder.config.out, reactor, opener=recorder.openFootage)
        self.exports = ExportManager(recorder.config.out, self.reads, reactor, self.lowOnSpace)
        self.site: WebSite | None = None
        self.limits: ConnectionLimits | None = None
        self.port: IListeningPort | None = None
        self.url: str | None = None

    @property
    def streams(self) -> set[CountedStream]:
        """The MJPEG viewers attached now."""
        return self.viewers.viewers

    def lowOnSpace(self) -> bool:
        """True while the recording folder's disk is below the retention's free-space floor."""
        retention = self.recorder.retention
        floor = retention.floorBytes()
        free = retention.freeBytes() if floor else None
        return free is not None and free < floor

    def footageChildren(self, camera: str, pages: dict[str, Any]) -> dict[bytes, Any]:
        """The timeline, playback and export pages of one camera (404 when the recorder writes no segments)."""
        children: dict[bytes, Any] = dict(timelineChildren(self.reads, camera))
        children[b"play.mjpg"] = PlayResource(self.reads, camera, self.players, self._reactor)
        children[b"exports"] = ExportsResource(self.exports, camera)
        if self.recorder.footageFormat != "segments":
            refusal = PlainError(404, "the timeline needs --format segments (this recorder writes %s)"
                                 % self.recorder.footageFormat)
            children = {name: refusal for name in children}
        children[b"timeline"] = pages["timeline.html"]
        return children

    def buildSite(self) -> WebSite:
        """The site: the public login pages, and the live view behind the login."""
        assets = loadAssets()
        tree = LiveTree(self.recorder, dict(assets), self.viewers, self._reactor, self.webStatus,
                        metricsResource(self.recorder), lambda name: self.footageChildren(name, assets))
        public = {
            b"login": LoginResource(self.auth, assets["login.html"]),
            b"logout": LogoutResource(self.auth),
            b"static": AssetFolder(assets),
        }
        return WebSite(WebRoot(self.auth, public, tree), HostCheck(self.settings.hosts), self.settings.accessLog,
                       timeout=self.settings.idleTimeout, reactor=self._reactor)

    def startService(self) -> None:
        """Start listening, within the connection budget the descriptor limit leaves."""
        Service.startService(self)
        self.reads.start()
        self.exports.start()
        self.site = self.buildSite()
        limit = descriptorLimit()
        budget = connectionBudget(self.settings.maxConnections, len(self.recorder.cameras), limit)
        if budget < self.settings.maxConnections:
            log.warn("web interface: at most {budget}, not {wanted}: the limit of {limit} open files"
                     " keeps the rest for the cameras and the disk (raise it with ulimit -n)",
                     budget=plural(budget, "connection"), wanted=self.settings.maxConnections, limit=limit)
        self.limits = ConnectionLimits(self.site, self._reactor, budget, self.settings.connectionsPerAddress)
        listening = serverFromString(self._reactor, self.description).listen(self.limits)
        listening.addCallbacks(self._listened, self._failed)

    def webStatus(self) -> dict[str, Any]:
        """The web interface's own state for ``/status.json``."""
        limits, site = self.limits, self.site
        return {
            "login": self.auth.enabled,
            "connections": limits.open if limits else 0,
            "max_connections": limits.maxConnections if limits else 0,
            "refused_connections": limits.refused if limits else 0,
            "evicted_connections": limits.evicted if limits else 0,
            "viewers": len(self.viewers.viewers),
            "stalled_viewers": self.viewers.stalled,
            "refused_viewers": self.viewers.refused,
            "players": len(self.players.viewers),
            "refused_players": self.players.refused,
            "pending_reads": self.reads.pending,
            "refused_reads": self.reads.refused,
            "stalled_downloads": self.reads.stalled,
            "exports_running": self.exports.running,
            "exports_kept": len(self.exports.jobs),
            "refused_exports": self.exports.refused,
            "refused_hosts": site.refusedHosts if site else 0,
            "refused_logins": self.auth.refusals,
        }

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", None)
        if host in (None, "0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = "[%s]" % host
        self.url = "http://%s:%d/" % (host, getattr(address, "port", 0))
        if not self.auth.enabled:
            log.info("web interface on {url} (no login: --web-login is off)", url=self.url)
            return
        log.info("web interface on {url} (login required)", url=self.url)
        password = self.auth.firstStart()
        if password is not None:
            log.info("first start: the web interface's password is {password} (stored hashed in {path};"
                     " change it with: {command}); or log in at once with this one-time link:"
                     " {url}login?once={token}",
                     password=password, path=self.auth.file.path, command=self.passwordCommand(),
                     url=self.url, token=self.auth.oneTimeLink())
        elif self.auth.problem:
            log.error("web interface: nobody can log in until a password is set with: {command}",
                      command=self.passwordCommand())

    def passwordCommand(self) -> str:
        """The command that sets a new password for this recorder."""
        config = self.recorder.config
        if self.settings.authFile:
            return "tcpcam password --web-auth-file %s" % shlex.quote(self.settings.authFile)
        if config.out != DEFAULT_OUT:
            return "tcpcam password --out %s" % shlex.quote(config.out)
        return "tcpcam password"

    def _failed(self, failure: Failure) -> None:
        log.error("web interface: cannot listen on {description}: {error}; recording goes on without it",
                  description=self.description, error=failure.getErrorMessage())

    def stopService(self) -> Deferred[None] | None:
        """End every stream, stop listening and close what is left."""
        Service.stopService(self)
        self.viewers.closeAll()
        self.players.closeAll()
        self.exports.stop()
        self.reads.stop()
        if self.port is None:
            return None
        port, self.port = self.port, None
        stopping = port.stopListening()
        if self.limits is not None:
            self.limits.closeAll()
        return stopping
