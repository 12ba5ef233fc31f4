"""Updates over WiFi: the rules of a new application bundle and its transfer, both sides, with no I/O.

An update is four kinds of signed protocol 2 requests (see docs/protocol.md):

- ``update-begin`` with the manifest: ``version``, ``files`` (a list of
  ``[path, size]``), ``bytes`` (their sum) and ``sha256`` (hex SHA-256 of
  the files' contents, concatenated in the manifest's order);
- ``update-chunk`` with ``offset`` and ``data`` (base64): the concatenated
  contents in order, at most :data:`~tcpcam.core.limits.UPDATE_CHUNK_BYTES`
  a chunk, each sent only once the previous one was answered;
- ``update-commit``: every byte came and the digest matches; the board
  verifies what it stored and switches at its next boot;
- ``update-abort``: forget it.

Paths are relative to the board's ``lib/`` folder and name modules of the
bundle's own folders only (:data:`BUNDLE_DIRS`): no ``..``, no absolute
path, nothing else of the board (``boot.py``, ``main.py``, the loader,
``config.json``) can be written by an update. :class:`UpdateReceiver` holds
the board's side, :class:`UpdateSender` the client's.
"""

import binascii
import hashlib
import json

from tcpcam.core.actions import INFO, UPDATE_ABORT, UPDATE_BEGIN, UPDATE_COMMIT, UPDATE_WRITE, WARN, Log, UpdateStep
from tcpcam.core.events import Request
from tcpcam.core.limits import (
    UPDATE_CHUNK_BYTES,
    UPDATE_MAX_BYTES,
    UPDATE_MAX_FILE_BYTES,
    UPDATE_MAX_FILES,
    UPDATE_MAX_PATH_BYTES,
    UPDATE_MAX_VERSION_BYTES,
)
from tcpcam.core.messages import MAX_MESSAGE_BYTES
from tcpcam.core.text import plural

#: The folders (under ``lib/``) an update may write to.
BUNDLE_DIRS = ("tcpcam", "tcpcam/core", "tcpcam_fw")
#: What a bundle file's name may end with.
MODULE_SUFFIXES = (".py", ".mpy")
#: The module every bundle must hold: the application the loader starts.
APP_MODULES = ("tcpcam_fw/app.py", "tcpcam_fw/app.mpy")
#: Hex digits of a SHA-256.
DIGEST_HEX = 64
_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_BASE64_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#: Bytes of a signed request around its JSON: length, type, counter and MAC.
SIGNED_OVERHEAD = 4 + 1 + 8 + 32

BEGIN = UPDATE_BEGIN
WRITE = UPDATE_WRITE
COMMIT = UPDATE_COMMIT
ABORT = UPDATE_ABORT

# The receiver's states.
RECEIVING = "receiving"
COMPLETE = "complete"
ABANDONED = "abandoned"


def path_problem(path: object) -> str | None:
    """Why ``path`` may not be a bundle file, or None when it may."""
    if not isinstance(path, str) or not path:
        return "a bundle path is a non-empty text"
    shown = path[:UPDATE_MAX_PATH_BYTES]
    if len(path.encode()) > UPDATE_MAX_PATH_BYTES:
        return "the bundle path %r... is longer than %s" % (shown, plural(UPDATE_MAX_PATH_BYTES, "byte"))
    if path.startswith("/") or "\\" in path or ":" in path:
        return "the bundle path %r is not relative to lib/" % shown
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            return "the bundle path %r has an empty, . or .. part" % shown
    folder = "/".join(parts[:-1])
    if folder not in BUNDLE_DIRS:
        return "the bundle path %r is outside the bundle's folders (%s)" % (shown, ", ".join(BUNDLE_DIRS))
    name = parts[-1]
    stem = None
    for suffix in MODULE_SUFFIXES:
        if name.endswith(suffix):
            stem = name[:-len(suffix)]
    if not stem or any(character not in _NAME_CHARACTERS for character in stem):
        return "the bundle file %r is not a module (a name of letters, digits and _, then .py or .mpy)" % shown
    return None


def digest_hex(digest: bytes) -> str:
    """A SHA-256 digest as lower-case hex."""
    return binascii.hexlify(digest).decode()


def check_manifest(body: dict) -> tuple:
    """``(manifest, None)`` for a good ``update-begin`` body, else ``(None, why)``.

    The manifest is a dict: ``version`` (text), ``files`` (a list of
    ``(path, size)``), ``bytes`` and ``sha256`` (hex).
    """
    version = body.get("version", "")
    if not isinstance(version, str) or len(version.encode()) > UPDATE_MAX_VERSION_BYTES:
        return None, "the version is a text of at most %s" % plural(UPDATE_MAX_VERSION_BYTES, "byte")
    files = body.get("files")
    if not isinstance(files, list) or not files:
        return None, "an update needs files: a list of [path, size]"
    if len(files) > UPDATE_MAX_FILES:
        return None, "a bundle of %s; at most %d are taken" % (plural(len(files), "file"), UPDATE_MAX_FILES)
    checked = []
    seen = {}
    total = 0
    for entry in files:
        if not isinstance(entry, list) or len(entry) != 2:
            return None, "each file is [path, size]"
        path, size = entry
        problem = path_problem(path)
        if problem:
            return None, problem
        if path in seen:
            return None, "the bundle path %r comes twice" % path
        seen[path] = True
        if type(size) is not int or not 0 <= size <= UPDATE_MAX_FILE_BYTES:
            return None, "the size of %s is not a whole number from 0 to %d" % (path, UPDATE_MAX_FILE_BYTES)
        total += size
        checked.append((path, size))
    if not any(path in seen for path in APP_MODULES):
        return None, "the bundle has no tcpcam_fw/app.py or .mpy: the board could not start it"
    if total > UPDATE_MAX_BYTES:
        return None, "a bundle of %s; at most %s are taken" % (plural(total, "byte"), plural(UPDATE_MAX_BYTES, "byte"))
    if body.get("bytes") != total:
        return None, "bytes (%r) is not the sum of the files' sizes (%d)" % (body.get("bytes"), total)
    digest = body.get("sha256")
    if not isinstance(digest, str) or len(digest) != DIGEST_HEX or any(c not in "0123456789abcdef" for c in digest):
        return None, "sha256 is the bundle's digest as %d lower-case hex digits" % DIGEST_HEX
    return {"version": version, "files": checked, "bytes": total, "sha256": digest}, None


class Piece:
    """Part of one file of the bundle: write ``data`` to ``path`` at ``offset`` (0: a new file)."""

    def __init__(self, path: str, offset: int, data: bytes, last: bool) -> None:
        self.path = path
        self.offset = offset
        self.data = data
        #: True when this piece ends its file.
        self.last = last

    def __repr__(self) -> str:
        return "Piece(%r, %d, %s)" % (self.path, self.offset, plural(len(self.data), "byte"))


class UpdateReceiver:
    """The board's side of one update: chunks in order, cut into file pieces, and the digest.

    ``manifest`` comes from :func:`check_manifest`. :meth:`chunk` and
    :meth:`finish` return ``(result, None)`` or ``(None, why)``; after a
    refusal the update is abandoned.
    """

    def __init__(self, manifest: dict) -> None:
        self.manifest = manifest
        self.state = RECEIVING
        #: Bytes received so far.
        self.received = 0
        self._hash = hashlib.sha256()
        self._file = 0
        self._file_offset = 0

    @property
    def total(self) -> int:
        """Bytes the bundle has."""
        return self.manifest["bytes"]

    def chunk(self, offset: object, text: object) -> tuple:
        """``(pieces, None)`` for the chunk ``text`` (base64) at ``offset``, or ``(None, why)``."""
        if self.state != RECEIVING:
            return None, "no update is being received"
        if type(offset) is not int or offset != self.received:
            return self._abandon("a chunk at offset %r; the next one is at %d" % (offset, self.received))
        if not isinstance(text, str) or len(text) > (UPDATE_CHUNK_BYTES + 2) // 3 * 4:
            return self._abandon("a chunk's data is base64 of at most %s" % plural(UPDATE_CHUNK_BYTES, "byte"))
        try:
            # CPython's decoder skips stray characters; MicroPython's does not: both refuse them here.
            if len(text) % 4 or any(character not in _BASE64_CHARACTERS for character in text):
                raise ValueError(text)
            data = binascii.a2b_base64(text)
        except ValueError:
            return self._abandon("a chunk's data is not base64")
        if not data or len(data) > UPDATE_CHUNK_BYTES or self.received + len(data) > self.total:
            return self._abandon("a chunk of %s at %d does not fit a bundle of %s"
                                 % (plural(len(data), "byte"), offset, plural(self.total, "byte")))
        self._hash.update(data)
        self.received += len(data)
        return self._pieces(data), None

    def _pieces(self, data: bytes) -> list:
        pieces = []
        files = self.manifest["files"]
        used = 0
        while self._file < len(files):
            path, size = files[self._file]
            take = min(size - self._file_offset, len(data) - used)
            if take <= 0 and size:
                break
            pieces.append(Piece(path, self._file_offset, data[used:used + take], self._file_offset + take == size))
            used += take
            self._file_offset += take
            if self._file_offset == size:
                self._file += 1
                self._file_offset = 0
        return pieces

    def finish(self) -> tuple:
        """``(manifest, None)`` once every byte came and the digest matches, else ``(None, why)``."""
        if self.state != RECEIVING:
            return None, "no update is being received"
        if self.received != self.total:
            return self._abandon("the update has %s of %s" % (plural(self.received, "byte"),
                                                               plural(self.total, "byte")))
        digest = digest_hex(self._hash.digest())
        if digest != self.manifest["sha256"]:
            return self._abandon("the bundle's digest is %s, not the %s announced" % (digest[:16],
                                                                                     self.manifest["sha256"][:16]))
        self.state = COMPLETE
        return self.manifest, None

    def abandon(self) -> None:
        """Forget the update."""
        self.state = ABANDONED

    def _abandon(self, why: str) -> tuple:
        self.state = ABANDONED
        return None, why + "; the update is abandoned"


class _Update:
    """The update under way: whose it is, its receiver, and the step the driver is carrying out."""

    def __init__(self, link: object, receiver: UpdateReceiver, now: int) -> None:
        #: The connection sending it (None once it left during a commit).
        self.link: object = link
        self.receiver = receiver
        self.last_at = now
        #: The ticket of the step the driver is carrying out (0: none), and the request it answers.
        self.ticket = 0
        self.step = ""
        self.counter = 0


class UpdateDesk:
    """The server role's part of updates: one at a time, each step handed to the driver as an UpdateStep.

    The role gives it its own ways to answer a request (``answer(link,
    event, error, now)``), the connections that may be answered
    (``links()``), its ``counters``, and ``want(when)`` for its timer.
    """

    def __init__(self, answer: object, links: object, counters: dict, want: object, idle_ms: int) -> None:
        self._answer = answer
        self._links = links
        self._counters = counters
        self._want = want
        self.idle_ms = idle_ms
        self._update: _Update | None = None
        self._ticket = 0

    def request(self, link: object, event: Request, now: int) -> list:
        """One update request of ``link``: check it with the rules, then hand it to the driver."""
        answer = self._answer
        op = event.op
        body = event.body
        update = self._update
        if op == "update-begin":
            if update is not None:
                return answer(link, event, "another update is under way; try again later", now)  # type: ignore
            manifest, problem = check_manifest(body)
            if problem:
                return answer(link, event, problem, now)  # type: ignore[operator]
            update = self._update = _Update(link, UpdateReceiver(manifest), now)
            self._counters["updates_begun"] += 1
            line = Log(INFO, "%s sends update %s: %s, %s" % (getattr(link, "peer", "a client"),
                                                          manifest["version"] or "(no version)",
                                                          plural(len(manifest["files"]), "file"),
                                                          plural(manifest["bytes"], "byte")), "update")
            return [line] + self._step(update, event, UPDATE_BEGIN, manifest=manifest)
        if op not in ("update-chunk", "update-commit", "update-abort"):
            return answer(link, event, "unknown request %r" % op[:32], now)  # type: ignore[operator]
        if update is None or update.link is not link:
            return answer(link, event, "no update of this connection is under way", now)  # type: ignore[operator]
        if update.ticket:
            return answer(link, event, "the previous update step is not done yet: wait for its answer",  # type: ignore
                          now)
        update.last_at = now
        if op == "update-chunk":
            pieces, problem = update.receiver.chunk(body.get("offset"), body.get("data"))
            if problem:
                return self._abandon(problem) + answer(link, event, problem, now)  # type: ignore[operator]
            return self._step(update, event, UPDATE_WRITE, pieces=pieces)
        if op == "update-commit":
            manifest, problem = update.receiver.finish()
            if problem:
                return self._abandon(problem) + answer(link, event, problem, now)  # type: ignore[operator]
            return self._step(update, event, UPDATE_COMMIT, manifest=manifest)
        why = "%s called it off" % getattr(link, "peer", "the client")
        return self._abandon(why) + answer(link, event, None, now)  # type: ignore[operator]

    def _step(self, update: _Update, event: Request, step: str, manifest: dict | None = None,
              pieces: list | None = None) -> list:
        self._ticket += 1
        update.ticket = self._ticket
        update.step = step
        update.counter = event.counter
        return [UpdateStep(update.ticket, step, manifest, pieces)]

    def done(self, ticket: int, error: str | None, now: int) -> list:
        """The driver's answer to UpdateStep ``ticket`` (see ``ServerRole.update_done``)."""
        update = self._update
        if update is None or update.ticket != ticket:
            return []
        update.ticket = 0
        update.last_at = now
        link = update.link
        actions: list = []
        if error is not None:
            actions += self._abandon(error)
        elif update.step == UPDATE_COMMIT:
            self._update = None
            self._counters["updates_stored"] += 1
            actions.append(Log(INFO, "update %s stored and verified: the board runs it from its next boot"
                               % (update.receiver.manifest["version"] or "(no version)"), "update"))
        else:
            self._want(now + self.idle_ms)  # type: ignore[operator]
        if link is not None and link in self._links():  # type: ignore[operator]
            actions += self._answer(link, Request(update.counter, {}), error, now)  # type: ignore[operator]
        return actions

    def disconnected(self, link: object) -> list:
        """``link`` is gone: its update is abandoned, unless its commit is under way (that one is finished)."""
        update = self._update
        if update is None or update.link is not link:
            return []
        if update.ticket and update.step == UPDATE_COMMIT:
            update.link = None
            return []
        return self._abandon("%s left during its update" % getattr(link, "peer", "the client"))

    def next_deadline(self) -> int | None:
        """When the update under way is abandoned for want of a request, or None."""
        update = self._update
        if update is None or update.ticket:
            return None
        return update.last_at + self.idle_ms

    def tick(self, now: int) -> list:
        """Abandon an update that went ``idle_ms`` without a request."""
        due = self.next_deadline()
        if due is None or due > now:
            return []
        return self._abandon("no update request for %g s" % (self.idle_ms / 1000))

    def _abandon(self, why: str) -> list:
        update = self._update
        if update is None:
            return []
        self._update = None
        update.receiver.abandon()
        self._counters["updates_abandoned"] += 1
        return [Log(WARN, "update abandoned: %s; the running application stays" % why, "update"),
                UpdateStep(0, UPDATE_ABORT)]


def bundle_digest(contents: list) -> str:
    """The hex SHA-256 of ``contents`` (bytes of each file, in manifest order)."""
    digest = hashlib.sha256()
    for data in contents:
        digest.update(data)
    return digest_hex(digest.digest())


class UpdateSender:
    """The client's side: the manifest of ``files`` (``[(path, bytes)]``, in order) and its chunks.

    Bad paths, sizes or counts raise ValueError with the rule, before
    anything is sent.
    """

    def __init__(self, files: list, version: str, chunk_bytes: int = UPDATE_CHUNK_BYTES) -> None:
        if not 0 < chunk_bytes <= UPDATE_CHUNK_BYTES:
            raise ValueError("chunk_bytes must be from 1 to %d, not %r" % (UPDATE_CHUNK_BYTES, chunk_bytes))
        self._data = b"".join(bytes(data) for _, data in files)
        self.begin = {"version": version, "files": [[path, len(data)] for path, data in files],
                      "bytes": len(self._data), "sha256": bundle_digest([data for _, data in files])}
        manifest, problem = check_manifest(self.begin)
        if problem:
            raise ValueError(problem)
        size = len(json.dumps(dict(self.begin, op="update-begin"))) + SIGNED_OVERHEAD
        if size > MAX_MESSAGE_BYTES:
            raise ValueError("the manifest of %s takes %s, over a message's %d: fewer or shorter paths"
                             % (plural(len(files), "file"), plural(size, "byte"), MAX_MESSAGE_BYTES))
        self.manifest = manifest
        self.chunk_bytes = chunk_bytes
        #: Bytes handed out in chunks so far.
        self.sent = 0

    @property
    def total(self) -> int:
        """Bytes of the bundle."""
        return len(self._data)

    def next_chunk(self) -> dict | None:
        """The arguments of the next ``update-chunk`` request, or None when every byte was handed out."""
        if self.sent >= len(self._data):
            return None
        data = self._data[self.sent:self.sent + self.chunk_bytes]
        arguments = {"offset": self.sent, "data": binascii.b2a_base64(data).decode().strip()}
        self.sent += len(data)
        return arguments
