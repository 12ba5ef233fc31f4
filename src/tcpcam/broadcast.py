"""Who gets which frame: one source, many sessions, newest connection first."""

from tcpcam.errors import LocalProtocolError
from tcpcam.events import Finished

#: Default number of connections a server keeps at once.
DEFAULT_MAX_CLIENTS = 16


class Broadcast:
    """Sans-IO fan-out of frames from one source to every streaming session.

    The I/O layer :meth:`add` s each connection when it is made (a *handle*
    of its own choosing plus the connection's
    :class:`~tcpcam.session.Session`) and :meth:`remove` s it when it is
    lost. For each frame it calls :meth:`publish` with two functions of its
    own: ``can_take(handle)``, whether that connection can take a frame now,
    and ``send(handle, frame)``. The source should run only while
    :attr:`active` is true.
    """

    def __init__(self, max_clients=DEFAULT_MAX_CLIENTS):
        if max_clients < 1:
            raise LocalProtocolError("max_clients must be at least 1, not %r" % (max_clients,))
        self.max_clients = max_clients
        self._members = []

    def __len__(self):
        return len(self._members)

    @property
    def full(self):
        """True when one more connection would exceed ``max_clients``."""
        return len(self._members) >= self.max_clients

    @property
    def active(self):
        """True while at least one session is streaming: run the source."""
        for _, session in self._members:
            if session.streaming:
                return True
        return False

    def wants_frame(self, can_take):
        """True when some streaming session's connection can take a frame now.

        ``can_take`` is the same function :meth:`publish` takes. Ask the source
        for a frame only then, so nothing is captured for nobody.
        """
        for handle, session in self._members:
            if session.streaming and can_take(handle):
                return True
        return False

    def add(self, handle, session):
        """Register a new connection; return False (and add nothing) when full."""
        for member, _ in self._members:
            if member is handle:
                raise LocalProtocolError("handle %r was added twice" % (handle,))
        if self.full:
            return False
        self._members.append((handle, session))
        return True

    def remove(self, handle):
        """Forget a connection; unknown handles are ignored."""
        for index, (member, _) in enumerate(self._members):
            if member is handle:
                del self._members[index]
                return

    def handles(self):
        """The registered handles, newest connection first."""
        return [handle for handle, _ in reversed(self._members)]

    def publish(self, frame, can_take, send):
        """Offer ``frame`` to every streaming session, newest connection first.

        A session whose connection cannot take it skips it (the skip does not
        count towards its N). Returns the handles whose sessions have now
        received all their frames; they are removed, and the I/O layer closes
        them once the data is flushed.
        """
        finished = []
        for handle, session in reversed(self._members[:]):
            if not session.streaming:
                continue
            if not can_take(handle):
                session.frame_skipped()
                continue
            send(handle, frame)
            for event in session.frame_sent():
                if isinstance(event, Finished):
                    finished.append(handle)
        for handle in finished:
            self.remove(handle)
        return finished
