"""The source loop of a server: ask for a frame when someone can take it, publish it."""

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from tcpcam.framing import encode_header
from tcpcam.sources.base import FrameUnavailable


class FramePump:
    """Drives one frame source into one :class:`~tcpcam.broadcast.Broadcast`.

    A frame is asked for only while a streaming connection can take it, no
    sooner than ``interval`` seconds after the previous request began, and
    never while an earlier request is still pending, so a source is never
    asked twice at once and frames are as fresh as the clients allow. A
    failed or late frame (``timeout`` seconds) is logged and skipped, and the
    next request waits at least ``retryDelay`` seconds.

    Connections are the broadcast's handles; each has ``session``,
    ``canTakeFrame()``, ``sendFrame(header, payload)`` and ``finishStream()``.
    Call :meth:`kick` whenever a connection may have become able to take a
    frame.
    """

    log = Logger()

    def __init__(self, source, broadcast, clock, interval=0.0, timeout=30.0, retryDelay=0.25):
        self.source = source
        self.broadcast = broadcast
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self.retryDelay = retryDelay
        #: Frames taken from the source and published.
        self.framesPublished = 0
        #: Frames the source failed to produce.
        self.sourceFailures = 0
        self._failuresInARow = 0
        self._notBefore = 0.0
        self._call = None
        self._pending = None
        self._stopped = False

    @property
    def running(self):
        """True while a request to the source is scheduled or pending."""
        return self._call is not None or self._pending is not None

    @property
    def stopped(self):
        """True once :meth:`stop` was called."""
        return self._stopped

    def kick(self, ready=False):
        """Schedule the next request if someone can take a frame and none is underway.

        ``ready`` says the caller knows a streaming connection can take one.
        """
        if self._stopped or self._call is not None or self._pending is not None:
            return
        if not (ready or self.broadcast.wants_frame(_canTake)):
            return
        delay = 0.0
        if self._notBefore:
            delay = max(0.0, self._notBefore - self.clock.seconds())
        self._call = self.clock.callLater(delay, self._request)

    def stop(self):
        """Stop asking for frames; cancels a pending request."""
        self._stopped = True
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self._pending is not None:
            self._pending.cancel()


    def _request(self):
        self._call = None
        if self._stopped or not self.broadcast.wants_frame(_canTake):
            return
        self._notBefore = self.clock.seconds() + self.interval if self.interval else 0.0
        try:
            frame = self.source.nextFrame()
        except Exception:
            frame = Failure()
        if isinstance(frame, Deferred):
            if self.timeout is not None:
                frame.addTimeout(self.timeout, self.clock)
            self._pending = frame
            frame.addCallbacks(self._publish, self._failed)
            frame.addBoth(self._done)
            return
        # A synchronous answer: no Deferred on the path of every frame. After
        # a publish every connection that could take a frame has one, so only
        # a failure needs a new kick.
        if not isinstance(frame, Failure):
            try:
                self._publish(frame)
                return
            except Exception:
                frame = Failure()
        self._failed(frame)
        self.kick()

    def _publish(self, frame):
        if self._stopped:
            return
        if isinstance(frame, (bytearray, memoryview)):
            frame = bytes(frame)
        elif not isinstance(frame, bytes):
            raise TypeError("the source gave %s, not bytes" % (type(frame).__name__,))
        header = encode_header(len(frame))
        finished = self.broadcast.publish(frame, _canTake, lambda handle, payload: handle.sendFrame(header, payload))
        self.framesPublished += 1
        if self._failuresInARow:
            self.log.info("frame source recovered after {count} failed frames", count=self._failuresInARow)
            self._failuresInARow = 0
        for handle in finished:
            handle.finishStream()

    def _failed(self, failure):
        if self._stopped:
            return
        self.sourceFailures += 1
        self._failuresInARow += 1
        self._notBefore = max(self._notBefore, self.clock.seconds() + self.retryDelay)
        if self._failuresInARow > 1:
            return
        if failure.check(FrameUnavailable, TimeoutError, defer.TimeoutError):
            self.log.warn("no frame from the source ({error}); skipping it (further failures in a row"
                          " are counted, not logged)", error=failure.getErrorMessage() or failure.type.__name__)
        else:
            self.log.failure("frame source failed; skipping the frame (further failures in a row"
                             " are counted, not logged)", failure)

    def _done(self, result):
        self._pending = None
        if self._stopped:
            return None
        if isinstance(result, Failure):
            # _publish itself failed (the source gave something other than bytes).
            self._failed(result)
        self.kick()
        return None


def _canTake(handle):
    return handle.canTakeFrame()
