"""Helpers for the web interface tests: HTTP requests from any loopback address, MJPEG parts, a recording."""

import socket

from record_support import listenScripted, makeConfig, startRecorder, waitFor
from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from tcpcam.record.config import WebSettings
from tcpcam.record.web import BOUNDARY


class PartReader(Protocol):
    """Read a multipart/x-mixed-replace body until ``wanted`` parts arrived (None: until it ends).

    ``headers`` holds each part's headers (a dict), ``parts`` its payload.
    """

    def __init__(self, wanted):
        self.wanted = wanted
        self.parts = []
        self.headers = []
        self.done = defer.Deferred()
        self._buffer = b""

    def dataReceived(self, data):
        self._buffer += data
        while self.wanted is None or len(self.parts) < self.wanted:
            start = self._buffer.find(b"--" + BOUNDARY + b"\r\n")
            end = self._buffer.find(b"\r\n\r\n", start)
            if start < 0 or end < 0:
                return
            headers = dict(
                line.split(b": ", 1) for line in self._buffer[start:end].split(b"\r\n")[1:])
            length = int(headers[b"Content-Length"])
            if len(self._buffer) < end + 4 + length + 2:
                return
            assert headers[b"Content-Type"] == b"image/jpeg"
            self.parts.append(self._buffer[end + 4:end + 4 + length])
            self.headers.append(headers)
            self._buffer = self._buffer[end + 4 + length + 2:]
        if self.wanted is None:
            return
        if not self.done.called:
            self.transport.stopProducing()
            self.done.callback(self.parts)

    def connectionLost(self, reason):
        from twisted.web.client import ResponseDone

        if self.done.called:
            return
        if self.wanted is None and reason.check(ResponseDone):
            self.done.callback(self.parts)
        else:
            self.done.errback(reason)


def agent(source=None):
    """An HTTP client whose connections come from loopback address ``source`` (such as 127.0.0.2)."""
    return Agent(reactor, bindAddress=(source, 0) if source else None)


@defer.inlineCallbacks
def request(url, method=b"GET", headers=None, body=None, source=None):
    """``(response, body)`` of one request; ``headers`` maps names to one value each."""
    import io

    from twisted.web.client import FileBodyProducer

    raw = Headers({name: [value] for name, value in (headers or {}).items()})
    producer = FileBodyProducer(io.BytesIO(body)) if body is not None else None
    response = yield agent(source).request(method, url.encode(), raw, producer)
    data = yield readBody(response)
    return response, data


def get(url, headers=None, source=None):
    """``(response, body)`` of a GET."""
    return request(url, headers=headers, source=source)


def header(response, name):
    """The first value of a response header, or None."""
    values = response.headers.getRawHeaders(name)
    return values[0] if values else None


@defer.inlineCallbacks
def streamParts(url, wanted, source=None, headers=None):
    """The first ``wanted`` frames of an MJPEG stream."""
    raw = Headers({name: [value] for name, value in (headers or {}).items()})
    response = yield agent(source).request(b"GET", url.encode(), raw)
    assert response.code == 200
    contentType = response.headers.getRawHeaders(b"content-type")[0]
    assert contentType == b"multipart/x-mixed-replace; boundary=" + BOUNDARY
    reader = PartReader(wanted)
    response.deliverBody(reader)
    parts = yield reader.done.addTimeout(10, reactor)
    return parts


@defer.inlineCallbacks
def wholeStream(url, source=None, timeout=30):
    """Every part of an MJPEG stream that ends by itself: ``(parts, headers of each part)``."""
    response = yield agent(source).request(b"GET", url.encode())
    assert response.code == 200, response.code
    reader = PartReader(None)
    response.deliverBody(reader)
    parts = yield reader.done.addTimeout(timeout, reactor)
    return parts, reader.headers


@defer.inlineCallbacks
def recording(tmp_path, scripts=None, frameSize=3000, cameras=("cam",), **webSettings):
    """A recorder of scripted cameras with its web interface on a free port; login off unless asked."""
    webSettings.setdefault("login", False)
    servers = []
    for _ in cameras:
        servers.append((yield listenScripted(scripts or [[("stream", 0.01)]], frameSize)))
    recorder = startRecorder(makeConfig(
        tmp_path, [(name, server[2]) for name, server in zip(cameras, servers, strict=True)],
        web="tcp:0:interface=127.0.0.1", webSettings=WebSettings(**webSettings)))
    yield waitFor(lambda: recorder.web.url is not None, what="the web interface to listen")
    return recorder, servers


@defer.inlineCallbacks
def stop(recorder, servers):
    """Stop the recorder, then the scripted cameras."""
    yield recorder.stopService()
    for _, port, _ in servers:
        yield port.stopListening()


def rawRequest(port, path, source="127.0.0.1", rcvbuf=None, extra=b""):
    """A plain socket from ``source`` that sent ``GET path`` and reads nothing unless told."""
    client = socket.socket()
    if rcvbuf:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    client.bind((source, 0))
    client.settimeout(5)
    client.connect(("127.0.0.1", port))
    client.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path.encode(), extra))
    return client
