"""Login to the web interface: a password (scrypt), a token for scripts, session cookies, a throttle.

- **The password file** (``web-auth.json`` in ``--out``, or
  ``--web-auth-file``; mode 0600) holds the password hashed with
  :func:`hashlib.scrypt` (parameters :data:`SCRYPT_N`, :data:`SCRYPT_R`,
  :data:`SCRYPT_P`, kept in the hash so they can change) and the SHA-256 of
  the token. ``tcpcam password`` writes it; the recorder re-reads it when it
  changes, and a new password ends every session.
- **First start**: with no password set, :meth:`WebAuth.firstStart` makes
  one, stores it and returns it for the log, with a one-time login link.
- **Sessions**: logging in sets an HttpOnly, SameSite=Strict cookie
  (:data:`SESSION_COOKIE` and the port, as cookies do not tell ports apart
  and two recorders on one machine must not log each other out); at most :data:`MAX_SESSIONS` sessions live at
  once (the oldest goes first), each for :data:`SESSION_LIFETIME_S`.
- **Tokens**: ``Authorization: Bearer TOKEN``, or HTTP Basic with any user
  name and the token as password (for clients that only know Basic).
- **Throttle**: the core's :class:`~tcpcam.core.throttle.PinThrottle`, per
  address. Every refused attempt counts against its address: a wrong
  password, a wrong token, a used or unknown one-time link, a form from
  another site, and any attempt while the address is blocked (which makes the
  block last). Password checks run in a thread, at most
  :data:`MAX_PENDING_CHECKS` at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from tcpcam.common.atomic import writeAtomically
from tcpcam.core.limits import PIN_BLOCK_MS, PIN_FAILURES, PIN_WINDOW_MS, THROTTLE_ADDRESSES
from tcpcam.core.throttle import PinThrottle
from tcpcam.record.web.plain import NO_CACHE, PlainError, plainText, seeOther
from tcpcam.record.web.stream import clientHost

log = Logger(namespace="tcpcam.record")

#: scrypt cost parameters of new hashes (16 MiB of memory, about 60 ms).
SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
#: Bytes of a scrypt hash and of its salt.
SCRYPT_DKLEN = 32
SALT_BYTES = 16
#: Memory scrypt may use, and the largest cost accepted from a password file.
SCRYPT_MAXMEM = 64 * 1024 * 1024
MAX_SCRYPT_N = 2 ** 16
#: Longest password accepted, in bytes of UTF-8.
MAX_PASSWORD_BYTES = 1024
#: Shortest password ``tcpcam password`` sets.
MIN_PASSWORD_CHARS = 8
#: Bytes of randomness in a token, a session and a one-time link.
TOKEN_BYTES = 32
#: The session cookie's name, followed by ``_PORT`` (see :func:`cookieName`).
SESSION_COOKIE = b"tcpcam_session"
#: Sessions alive at once; a new one beyond ends the oldest.
MAX_SESSIONS = 64
#: Seconds a session lasts after the login.
SESSION_LIFETIME_S = 7 * 24 * 3600
#: Seconds a one-time login link is valid, and how many may be waiting.
LINK_LIFETIME_S = 24 * 3600
MAX_LINKS = 4
#: Password checks (scrypt, in threads) running at once; more are refused as busy.
MAX_PENDING_CHECKS = 4
#: The throttle: failures per address within the window block it for the block time.
LOGIN_FAILURES = PIN_FAILURES
LOGIN_WINDOW_MS = PIN_WINDOW_MS
LOGIN_BLOCK_MS = PIN_BLOCK_MS
LOGIN_ADDRESSES = THROTTLE_ADDRESSES
#: Longest ``next`` path a login returns to.
MAX_NEXT_BYTES = 512
#: Characters of a generated password: no 0/o, 1/l/i to confuse.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class AuthFileError(ValueError):
    """The password file cannot be read or used; the message is one line."""


def hashPassword(password: str) -> str:
    """``scrypt$N$R$P$SALT$HASH`` (hex) of ``password``, with a new salt."""
    salt = os.urandom(SALT_BYTES)
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                             maxmem=SCRYPT_MAXMEM, dklen=SCRYPT_DKLEN)
    return "scrypt$%d$%d$%d$%s$%s" % (SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.hex(), derived.hex())


def verifyPassword(password: str, stored: str) -> bool:
    """True if ``password`` matches the hash ``stored``; AuthFileError if the hash is malformed."""
    parts = stored.split("$")
    try:
        kind, n, r, p, salt, expected = parts[0], int(parts[1]), int(parts[2]), int(parts[3]), \
            bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except (IndexError, ValueError):
        raise AuthFileError("the password hash is not scrypt$N$R$P$SALT$HASH") from None
    if kind != "scrypt" or len(parts) != 6 or not (2 <= n <= MAX_SCRYPT_N and 1 <= r <= 32 and 1 <= p <= 16):
        raise AuthFileError("the password hash has unknown or too costly parameters")
    encoded = password.encode("utf-8")
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    derived = hashlib.scrypt(encoded, salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=len(expected))
    return hmac.compare_digest(derived, expected)


def hashToken(token: str) -> str:
    """``sha256$HEX`` of a token (tokens are random, so no slow hash is needed)."""
    return "sha256$" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def newPassword() -> str:
    """A random password that is easy to type: four groups of four, about 79 bits."""
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(4)) for _ in range(4))


def newToken() -> str:
    """A random token for scripts, sessions and one-time links."""
    return secrets.token_urlsafe(TOKEN_BYTES)


class AuthFile:
    """The password file: ``{"password": "scrypt$...", "token": "sha256$..."}``, mode 0600.

    :meth:`read` re-reads it only when it changed on disk. If it cannot be
    written, what should have been written is kept in memory (and used)
    until the recorder stops.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._data: dict[str, str] = {}
        self._memory: dict[str, str] | None = None

    def read(self) -> dict[str, str]:
        """The file's settings ({} if there is no file); AuthFileError if it is unusable."""
        if self._memory is not None:
            return self._memory
        try:
            info = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):  # no file yet (its folder may be missing too)
            self._stamp, self._data = None, {}
            return self._data
        except OSError as error:
            raise AuthFileError("cannot read %s: %s" % (self.path, error.strerror)) from None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            self._data = self._load()
            self._stamp = stamp
        return self._data

    def _load(self) -> dict[str, str]:
        try:
            with open(self.path, "rb") as handle:
                data = json.loads(handle.read(64 * 1024))
        except OSError as error:
            raise AuthFileError("cannot read %s: %s" % (self.path, error.strerror)) from None
        except ValueError:
            raise AuthFileError("%s is not a JSON object; set a new password with: tcpcam password"
                                % self.path) from None
        if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
            raise AuthFileError("%s is not a JSON object of strings; set a new password with: tcpcam password"
                                % self.path)
        return data

    def _merged(self, settings: dict[str, str]) -> dict[str, str]:
        try:
            data = dict(self.read())
        except AuthFileError:
            data = {}  # unusable: the new settings replace it
        data.update(settings)
        return data

    def save(self, **settings: str) -> None:
        """Change some settings and write the file (mode 0600 from the start); OSError if it cannot be written."""
        data = self._merged(settings)
        writeAtomically(self.path, json.dumps(data, indent=1).encode() + b"\n", mode=0o600, sync=True)
        self._stamp = None

    def keep(self, **settings: str) -> None:
        """Change some settings in memory only, for as long as this process runs (the file cannot be written)."""
        self._memory = self._merged(settings)


class Sessions:
    """Logged-in browsers: a bounded map of hashed cookie values to their expiry and password."""

    def __init__(self, clock: IReactorTime, maxSessions: int = MAX_SESSIONS,
                 lifetime: float = SESSION_LIFETIME_S) -> None:
        self.clock = clock
        self.maxSessions = maxSessions
        self.lifetime = lifetime
        self._sessions: dict[str, tuple[float, str]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

    def create(self, password: str) -> str:
        """A new session for the current password hash ``password``; returns the cookie value."""
        now = self.clock.seconds()
        for key in [key for key, (expiry, _) in self._sessions.items() if expiry <= now]:
            del self._sessions[key]
        while len(self._sessions) >= self.maxSessions:
            del self._sessions[next(iter(self._sessions))]
        token = newToken()
        self._sessions[self._key(token)] = (now + self.lifetime, password)
        return token

    def valid(self, token: str, password: str) -> bool:
        """True if ``token`` is a live session made under the current password hash ``password``."""
        key = self._key(token)
        session = self._sessions.get(key)
        if session is None:
            return False
        expiry, madeUnder = session
        if expiry <= self.clock.seconds() or not hmac.compare_digest(madeUnder, password):
            del self._sessions[key]
            return False
        return True

    def end(self, token: str) -> None:
        """Log this session out."""
        self._sessions.pop(self._key(token), None)


def cookieName(request: Request) -> bytes:
    """The session cookie's name for the port the request came to: ``tcpcam_session_8080``."""
    port = getattr(request.getHost(), "port", None)
    return SESSION_COOKIE + (b"_%d" % port if isinstance(port, int) else b"")


def _safeNext(raw: bytes | None) -> bytes:
    """A path on this site to go to after the login; ``/`` for anything else."""
    if not raw or len(raw) > MAX_NEXT_BYTES or not raw.startswith(b"/") or raw.startswith((b"//", b"/\\")):
        return b"/"
    if any(byte < 0x21 or byte > 0x7e for byte in raw):
        return b"/"
    return raw


def _argument(request: Request, name: bytes) -> bytes | None:
    args: dict[bytes, list[bytes]] = request.args or {}
    values = args.get(name)
    return values[0] if values else None


def isNavigation(request: Request) -> bool:
    """True for a browser asking for a page (a redirect to the login form helps); False for scripts and images."""
    if request.method not in (b"GET", b"HEAD"):
        return False
    mode = request.getHeader(b"sec-fetch-mode")
    if mode is not None:
        return mode == b"navigate"
    return b"text/html" in (request.getHeader(b"accept") or b"")


class WebAuth:
    """Who may use the web interface (see the module): the password file, sessions, links, the throttle."""

    def __init__(self, path: str, reactor: Any, enabled: bool = True,
                 verify: Callable[[str, str], Deferred[bool]] | None = None) -> None:
        self.enabled = enabled
        self.file = AuthFile(path)
        self.reactor = reactor
        self.sessions = Sessions(reactor)
        self.throttle = PinThrottle(LOGIN_FAILURES, LOGIN_WINDOW_MS, LOGIN_BLOCK_MS, LOGIN_ADDRESSES)
        self._verify = verify or self._verifyInThread
        self._links: dict[str, float] = {}
        self._pending = 0
        self._problem: str | None = None
        #: Refused attempts (all reasons) and successful logins since start.
        self.refusals = 0
        self.logins = 0

    def _now(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def _verifyInThread(self, password: str, stored: str) -> Deferred[bool]:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), verifyPassword, password, stored)

    def settings(self) -> dict[str, str]:
        """The password file's settings; {} (nothing accepted) if it is unusable, which is logged once."""
        try:
            data = self.file.read()
        except AuthFileError as error:
            if str(error) != self._problem:
                self._problem = str(error)
                log.error("web interface: {problem}; nobody can log in", problem=error)
            return {}
        self._problem = None
        return data

    @property
    def problem(self) -> str | None:
        """What is wrong with the password file, if anything."""
        return self._problem

    def firstStart(self) -> str | None:
        """With the login on and no password set, make one and store it; returns it (else None)."""
        if not self.enabled or self.settings().get("password") or self._problem:
            return None
        password = newPassword()
        hashed = hashPassword(password)
        try:
            self.file.save(password=hashed)
        except OSError as error:
            log.error("web interface: cannot write {path}: {error}; the password lasts until the recorder stops",
                      path=self.file.path, error=error.strerror or error)
            self.file.keep(password=hashed)
        return password

    def oneTimeLink(self) -> str:
        """A token that logs in once, within :data:`LINK_LIFETIME_S`, at ``/login?once=TOKEN``."""
        now = self.reactor.seconds()
        for key in [key for key, expiry in self._links.items() if expiry <= now]:
            del self._links[key]
        while len(self._links) >= MAX_LINKS:
            del self._links[next(iter(self._links))]
        token = newToken()
        self._links[hashToken(token)] = now + LINK_LIFETIME_S
        return token

    def refuse(self, address: str) -> None:
        """Count a refused attempt against ``address``."""
        self.refusals += 1
        self.throttle.failed(address, self._now())

    def blockedFor(self, address: str) -> float:
        """Seconds ``address`` is still refused for (0 when it may try)."""
        return self.throttle.blocked_for(address, self._now()) / 1000.0

    def hasSession(self, request: Request) -> bool:
        """True if the request carries a live session cookie."""
        token = request.getCookie(cookieName(request))
        password = self.settings().get("password")
        if not token or not password:
            return False
        return self.sessions.valid(token.decode("ascii", "replace"), password)

    def guard(self, request: Request) -> IResource | None:
        """None if the request may go on; else the resource that answers it (a login form, 401 or 429)."""
        if not self.enabled or self.hasSession(request):
            return None
        header = request.getHeader(b"authorization")
        if header is None:
            return LoginRequired()
        address = clientHost(request)
        blocked = self.blockedFor(address)
        if blocked:
            self.refuse(address)
            return _blocked(self.blockedFor(address))
        token = _tokenOf(header)
        stored = self.settings().get("token")
        if token is not None and stored and hmac.compare_digest(hashToken(token), stored):
            self.throttle.succeeded(address, self._now())
            return None
        self.refuse(address)
        blocked = self.blockedFor(address)
        return _blocked(blocked) if blocked else PlainError(401, "wrong token")

    def checkPassword(self, address: str, password: str) -> Deferred[str]:
        """``"ok"``, or why not: ``"wrong"``, ``"blocked"``, ``"busy"``, ``"unset"``; refusals are counted."""
        if self.blockedFor(address):
            self.refuse(address)
            return succeed("blocked")
        stored = self.settings().get("password")
        if not stored:
            self.refuse(address)
            return succeed("unset")
        if self._pending >= MAX_PENDING_CHECKS:
            self.refuse(address)
            return succeed("busy")
        self._pending += 1

        def done(matched: object) -> str:
            self._pending -= 1
            if matched is True:
                self.throttle.succeeded(address, self._now())
                self.logins += 1
                return "ok"
            self.refuse(address)
            return "blocked" if self.blockedFor(address) else "wrong"

        return self._verify(password, stored).addBoth(done)

    def useLink(self, address: str, token: str) -> str:
        """Like :meth:`checkPassword`, for a one-time link (which is then used up)."""
        if self.blockedFor(address):
            self.refuse(address)
            return "blocked"
        expiry = self._links.pop(hashToken(token), None)
        if expiry is None or expiry <= self.reactor.seconds() or not self.settings().get("password"):
            self.refuse(address)
            return "blocked" if self.blockedFor(address) else "link"
        self.throttle.succeeded(address, self._now())
        self.logins += 1
        return "ok"

    def startSession(self, request: Request) -> None:
        """Log this browser in: a new session and its cookie."""
        token = self.sessions.create(self.settings().get("password", ""))
        request.addCookie(cookieName(request), token.encode("ascii"), path=b"/", max_age=str(int(SESSION_LIFETIME_S)),
                          httpOnly=True, sameSite="strict", secure=request.isSecure())

    def endSession(self, request: Request) -> None:
        """Log this browser out: forget its session and expire its cookie."""
        token = request.getCookie(cookieName(request))
        if token:
            self.sessions.end(token.decode("ascii", "replace"))
        request.addCookie(cookieName(request), b"", path=b"/", max_age="0", httpOnly=True, sameSite="strict",
                          secure=request.isSecure())


def _tokenOf(header: bytes) -> str | None:
    """The token of ``Bearer TOKEN``, or the password of ``Basic base64(user:password)``."""
    scheme, _, value = header.strip().partition(b" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == b"bearer" and value:
        return value.decode("ascii", "replace")
    if scheme == b"basic":
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        _, colon, password = decoded.partition(b":")
        return password.decode("utf-8", "replace") if colon else None
    return None


def _blocked(seconds: float) -> IResource:
    return PlainError(429, "too many failed logins from your address; try again in %d s" % max(1, round(seconds)),
                      retryAfter=seconds)


class LoginRequired(Resource):
    """The answer to a request without a login: the login form for a page, else 401 with the ways in."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        """Redirect a browser's page request to ``/login``; tell anything else how to authenticate."""
        if isNavigation(request):
            return seeOther(request, b"/login?next=" + quote(request.uri, safe="/").encode("ascii"))
        challenges = [b'Bearer realm="tcpcam"']
        if request.getHeader(b"sec-fetch-mode") is None:
            # Not a browser: offer Basic too (any user name, the token as password).
            # A browser would show its own password dialog for it.
            challenges.append(b'Basic realm="tcpcam", charset="UTF-8"')
        request.responseHeaders.setRawHeaders(b"www-authenticate", challenges)
        return plainText(request, 401, "log in first: at /login in a browser, or with a token"
                         " (Authorization: Bearer TOKEN; make one with: tcpcam password --token)")


def sameOrigin(request: Request) -> bool:
    """False for a form sent from another site (its Origin header names another host)."""
    origin = request.getHeader(b"origin")
    if origin is None:
        return True
    host = request.getHeader(b"host")
    try:
        netloc = urlsplit(origin.decode("ascii")).netloc.lower()
    except (UnicodeDecodeError, ValueError):
        return False
    return host is not None and netloc == host.decode("ascii", "replace").lower()


class LoginResource(Resource):
    """``/login``: the form (GET), a password sent by it (POST), a one-time link (GET ``?once=TOKEN``)."""

    isLeaf = True

    def __init__(self, auth: WebAuth, page: IResource) -> None:
        Resource.__init__(self)
        self.auth = auth
        self.page = page

    def render_GET(self, request: Request) -> bytes:
        """The login form; or, with ``once``, use the one-time link."""
        target = _safeNext(_argument(request, b"next"))
        if not self.auth.enabled or self.auth.hasSession(request):
            return seeOther(request, target)
        once = _argument(request, b"once")
        if once is not None:
            outcome = self.auth.useLink(clientHost(request), once.decode("ascii", "replace"))
            return self._answer(request, outcome, target)
        return self.page.render(request)

    def render_POST(self, request: Request) -> bytes | int:
        """Check the password sent by the form; the answer is a redirect either way."""
        target = _safeNext(_argument(request, b"next"))
        address = clientHost(request)
        if not self.auth.enabled:
            return seeOther(request, target)
        if not sameOrigin(request):
            self.auth.refuse(address)
            return plainText(request, 403, "this form was sent from another site")
        raw = _argument(request, b"password") or b""
        password = raw.decode("utf-8", "replace")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        checking = self.auth.checkPassword(address, password)

        def answer(outcome: str) -> None:
            if not gone:
                request.write(self._answer(request, outcome, target))
                request.finish()

        checking.addCallback(answer)
        checking.addErrback(lambda failure: log.failure("web interface: checking a password failed", failure))
        return NOT_DONE_YET

    def _answer(self, request: Request, outcome: str, target: bytes) -> bytes:
        if outcome == "ok":
            self.auth.startSession(request)
            return seeOther(request, target)
        location = b"/login?failed=" + outcome.encode("ascii")
        if outcome == "blocked":
            location += b"&retry=%d" % max(1, round(self.auth.blockedFor(clientHost(request))))
        if target != b"/":
            location += b"&next=" + quote(target, safe="/").encode("ascii")
        return seeOther(request, location)


class LogoutResource(Resource):
    """``/logout`` (POST): end this browser's session, back to the login form."""

    isLeaf = True

    def __init__(self, auth: WebAuth) -> None:
        Resource.__init__(self)
        self.auth = auth

    def render_POST(self, request: Request) -> bytes:
        """Log out and go to the login form."""
        if not sameOrigin(request):
            return plainText(request, 403, "this form was sent from another site")
        self.auth.endSession(request)
        request.setHeader(b"cache-control", NO_CACHE)
        return seeOther(request, b"/login" if self.auth.enabled else b"/")
