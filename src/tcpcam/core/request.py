"""The legacy request, both ways: token rules, the command grammar, the PIN compare and the encoder."""

from tcpcam.core.errors import BadCommand
from tcpcam.core.limits import COMMAND_MAX, COMMAND_MIN, MAX_TOKEN_BYTES

#: Bytes that end a token: ``1235\n``, ``1235\r\n`` and ``1235\0`` all work.
TERMINATORS = b"\r\n\x00"
#: What the client sends after each token.
TERMINATOR = b"\n"

_DIGITS = b"0123456789"
_BLANKS = b" \t\x0b\x0c"


def find_terminator(data: bytes, start: int) -> int:
    """Index of the first terminator byte in ``data`` at or after ``start``, or -1."""
    found = -1
    for byte in TERMINATORS:
        index = data.find(bytes((byte,)), start)
        if index >= 0 and (found < 0 or index < found):
            found = index
    return found


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time that depends only on ``len(b)``.

    ``b`` is the secret (the configured PIN); MicroPython has no
    ``hmac.compare_digest``, so this is written out.
    """
    difference = len(a) ^ len(b)
    length_a = len(a)
    for index in range(len(b)):
        other = a[index] if index < length_a else 0
        difference |= other ^ b[index]
    return difference == 0


def _strip_blanks(token: bytes) -> bytes:
    start = 0
    end = len(token)
    while start < end and token[start] in _BLANKS:
        start += 1
    while end > start and token[end - 1] in _BLANKS:
        end -= 1
    return token[start:end]


def printable(data: bytes) -> str:
    """``data`` as text for a log line: printable ASCII as is, other bytes as ``\\xNN``."""
    return "".join(chr(byte) if 32 <= byte < 127 and byte != 92 else "\\x%02x" % byte for byte in bytes(data))


def parse_command(token: bytes) -> int:
    """Parse a command token: an optionally signed decimal integer.

    Blanks around it are ignored. Anything else, or a number outside the
    32-bit signed range, raises :class:`~tcpcam.core.errors.BadCommand`.
    """
    text = _strip_blanks(bytes(token))
    digits = text[1:] if text[:1] in (b"+", b"-") else text
    if not digits or any(byte not in _DIGITS for byte in digits):
        raise BadCommand(
            "bad command '%s': expected a whole number such as 5 (N frames) or 0 (a stream)"
            % printable(token[:32])
        )
    value = int(text)
    if not COMMAND_MIN <= value <= COMMAND_MAX:
        raise BadCommand(
            "bad command %d: outside the 32-bit range %d to %d"
            % (value, COMMAND_MIN, COMMAND_MAX)
        )
    return value


#: Protocol 2's opening line: no PIN may equal it or begin it, or the two would be confused.
OPENING = b"TCPCAM/2"


def check_pin(pin: str | bytes, max_token_bytes: int = MAX_TOKEN_BYTES) -> bytes:
    """Return ``pin`` as bytes, or raise ValueError if no client could send it."""
    if isinstance(pin, str):
        pin = pin.encode()
    pin = bytes(pin)
    if not pin or len(pin) > max_token_bytes or find_terminator(pin, 0) >= 0:
        raise ValueError("the PIN must be 1 to %d bytes with no CR, LF or NUL" % max_token_bytes)
    if OPENING.startswith(pin):
        raise ValueError("the PIN must not be %r or its beginning: that opens protocol 2" % OPENING.decode())
    return pin


def check_frames(frames: int) -> int:
    """Return ``frames`` if it is a command a server can parse, else raise ValueError."""
    if type(frames) is not int or not COMMAND_MIN <= frames <= COMMAND_MAX:
        raise ValueError("the number of frames must be a whole number from %d to %d, not %r"
                         % (COMMAND_MIN, COMMAND_MAX, frames))
    return frames


def encode_request(pin: str | bytes, frames: int) -> tuple:
    """The two writes of a legacy request: ``(b"PIN\\n", b"N\\n")``.

    Send the second one ``PIN_PAUSE_MS`` after the first: the original
    firmware reads each token with a single ``recv()``. The terminators let
    any server tell the tokens apart even when they arrive together.
    """
    return check_pin(pin) + TERMINATOR, b"%d" % check_frames(frames) + TERMINATOR
