"""The recorder's web interface: twisted.web pages for watching the cameras and their recordings, behind a login.

One module per job:

- :mod:`~tcpcam.record.web.service`: the Twisted service (build, listen, log the address);
- :mod:`~tcpcam.record.web.site`: the URL space and what every request goes through;
- :mod:`~tcpcam.record.web.hosts`: the Host header check (DNS rebinding);
- :mod:`~tcpcam.record.web.auth`: the password, tokens, sessions and the login throttle;
- :mod:`~tcpcam.record.web.live`: the live pages, the newest frame, snapshots, ``status.json``;
- :mod:`~tcpcam.record.web.stream`: the MJPEG stream and its viewers' limits;
- :mod:`~tcpcam.record.web.timeline`: the timeline's JSON endpoints, thumbnails and single frames;
- :mod:`~tcpcam.record.web.playback`: recorded footage as an MJPEG stream paced by the recorded times;
- :mod:`~tcpcam.record.web.exports`: export jobs started from the page, their progress, files and cancel;
- :mod:`~tcpcam.record.web.reads`: the worker threads every footage read goes through, and their bounds;
- :mod:`~tcpcam.record.web.query`: the footage endpoints' query parameters, checked;
- :mod:`~tcpcam.record.web.limits`: the connection limits that keep descriptors for recording;
- :mod:`~tcpcam.record.web.assets`: the plain HTML/CSS/JS files of ``static/``, served as they are;
- :mod:`~tcpcam.record.web.plain`: one-line answers shared by the others.

A new page is a file in ``static/`` and a child of
:class:`~tcpcam.record.web.live.LiveTree` (behind the login) or of the
public paths in :meth:`~tcpcam.record.web.service.WebService.buildSite`.
"""

from tcpcam.record.web.service import WebService
from tcpcam.record.web.stream import BOUNDARY, MjpegViewer, StreamResource

__all__ = ["BOUNDARY", "MjpegViewer", "StreamResource", "WebService"]
