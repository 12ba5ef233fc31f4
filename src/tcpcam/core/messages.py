"""Protocol 2 on the wire: the opening, typed messages, signed control messages and frame headers.

After the client's opening line ``TCPCAM/2\\n``, every message in both
directions is ``length (4 bytes, big-endian) | type (1 byte) | body``, where
``length`` counts the type byte and the body: the legacy frame format with a
type byte in front, so the same zero-copy decoder reads both. Types are
ASCII letters, upper case from the server, lower case from the client:

====  =========  ============================================================
type  name       body
====  =========  ============================================================
H     hello      JSON: protocol, capabilities, device facts, ``challenge``
a     auth       client challenge (16) | client proof (32)
A     auth ok    server proof (32)
c     control    signed JSON: one request (``op`` and its arguments)
K     result     signed JSON: ``id`` (the request's counter), ``ok``, ``error``
S     settings   signed JSON: every camera setting
E     health     signed JSON: the device's figures
R     reason     JSON (signed once authenticated): why the server closes
F     frame      seq (4) | capture ms (8) | wall ms (8) | flags (1) | missed (4) | JPEG
====  =========  ============================================================

A signed body is ``counter (8) | MAC (32) | JSON``. The MAC is HMAC-SHA256
under the session key over ``direction (C or S) | type | counter | JSON``;
each side's counters start at 1 and must rise, so nothing can be injected
or replayed. Frames carry no MAC: see docs/protocol.md for why.
"""

import json

from tcpcam.core.errors import BadMessage
from tcpcam.core.mac import DIGEST_BYTES, hmac_sha256, verify
from tcpcam.core.request import OPENING, TERMINATOR

#: The protocol version a hello announces.
VERSION = 2
#: Bytes of each side's random challenge.
CHALLENGE_BYTES = 16
#: Largest message other than a frame, in bytes (type and body).
MAX_MESSAGE_BYTES = 4096

HELLO = ord("H")
AUTH = ord("a")
AUTH_OK = ord("A")
CONTROL = ord("c")
RESULT = ord("K")
SETTINGS = ord("S")
HEALTH = ord("E")
REASON = ord("R")
FRAME = ord("F")

#: Direction bytes in the MAC input.
FROM_CLIENT = b"C"
FROM_SERVER = b"S"

#: Frame flags.
STREAM = 1
SNAPSHOT = 2

#: Bytes of a frame message before the payload: the shared head, then each client's tail.
FRAME_HEAD_BYTES = 4 + 1 + 4 + 8 + 8
FRAME_TAIL_BYTES = 1 + 4
#: Bytes of a frame message's body before the payload.
FRAME_BODY_HEAD_BYTES = 4 + 8 + 8 + FRAME_TAIL_BYTES
_COUNTER_BYTES = 8
_SIGNED_HEAD = _COUNTER_BYTES + DIGEST_BYTES


def opening_line() -> bytes:
    """What a protocol 2 client sends first: ``TCPCAM/2\n``."""
    return OPENING + TERMINATOR


def _int_bytes(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def encode(kind: int, body: bytes) -> bytes:
    """One message: length, type and body."""
    return _int_bytes(len(body) + 1, 4) + bytes((kind,)) + body


def encode_json(kind: int, value: object) -> bytes:
    """A message whose body is ``value`` as JSON (hello, and reasons before authentication)."""
    return encode(kind, json.dumps(value).encode())


def sign(kind: int, session_key: bytes, direction: bytes, counter: int, value: object) -> bytes:
    """A signed message: ``value`` as JSON under ``counter``, with its MAC."""
    text = json.dumps(value).encode()
    counter_bytes = _int_bytes(counter, _COUNTER_BYTES)
    mac = hmac_sha256(session_key, direction + bytes((kind,)) + counter_bytes + text)
    return encode(kind, counter_bytes + mac + text)


def open_signed(kind: int, body: memoryview, session_key: bytes, direction: bytes, last_counter: int) -> tuple:
    """``(counter, value)`` of a signed body, or :class:`~tcpcam.core.errors.BadMessage`.

    The MAC must match and the counter must be above ``last_counter``.
    """
    if len(body) < _SIGNED_HEAD:
        raise BadMessage("a signed message too short to hold its counter and MAC")
    counter_bytes = bytes(body[:_COUNTER_BYTES])
    mac = body[_COUNTER_BYTES:_SIGNED_HEAD]
    text = bytes(body[_SIGNED_HEAD:])
    if not verify(session_key, direction + bytes((kind,)) + counter_bytes + text, mac):
        raise BadMessage("a message whose MAC does not match: not from the peer of this session")
    counter = int.from_bytes(counter_bytes, "big")
    if counter <= last_counter:
        raise BadMessage("a message counter %d not above %d: a replay" % (counter, last_counter))
    return counter, parse_json(text)


def parse_json(text: bytes) -> object:
    """JSON of a message body, or BadMessage."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeError):
        raise BadMessage("a message body that is not JSON") from None


def frame_head(seq: int, capture_ms: int, wall_ms: int, payload_bytes: int) -> bytes:
    """The part of a frame message every client gets the same: length, type, seq and times."""
    return (_int_bytes(FRAME_BODY_HEAD_BYTES + 1 + payload_bytes, 4) + bytes((FRAME,))
            + _int_bytes(seq & 0xFFFFFFFF, 4) + _int_bytes(capture_ms, 8) + _int_bytes(wall_ms, 8))


def fill_tail(tail: bytearray, flags: int, missed: int) -> bytearray:
    """Write one client's flags and missed count into its own 5-byte ``tail``, allocating nothing."""
    if missed > 0xFFFFFFFF:
        missed = 0xFFFFFFFF
    tail[0] = flags
    tail[1] = (missed >> 24) & 255
    tail[2] = (missed >> 16) & 255
    tail[3] = (missed >> 8) & 255
    tail[4] = missed & 255
    return tail


def read_frame(body: memoryview) -> tuple:
    """``(seq, capture_ms, wall_ms, flags, missed, payload)`` of a frame body; payload is a view."""
    if len(body) < FRAME_BODY_HEAD_BYTES:
        raise BadMessage("a frame message too short for its header")
    seq = int.from_bytes(body[0:4], "big")
    capture_ms = int.from_bytes(body[4:12], "big")
    wall_ms = int.from_bytes(body[12:20], "big")
    flags = body[20]
    missed = int.from_bytes(body[21:25], "big")
    return seq, capture_ms, wall_ms, flags, missed, body[25:]
