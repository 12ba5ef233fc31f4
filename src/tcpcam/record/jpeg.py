"""A cheap check that a frame is a whole JPEG picture."""

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
#: How far before the end the EOI marker may sit: some camera drivers pad
#: the buffer after it with a few zero bytes.
EOI_SLACK = 32


def jpegProblem(frame):
    """Return why ``frame`` (bytes-like) is not a whole JPEG, or ``None`` if it is.

    A whole JPEG starts with the SOI marker and ends with the EOI marker
    (followed by at most :data:`EOI_SLACK` zero bytes of padding).
    """
    if len(frame) < 4:
        return "too short for a JPEG (%d bytes)" % len(frame)
    if bytes(frame[:2]) != SOI:
        return "no JPEG start marker (starts with %s)" % bytes(frame[:4]).hex()
    tail = bytes(frame[-EOI_SLACK:]) if len(frame) > EOI_SLACK else bytes(frame[2:])
    end = len(tail.rstrip(b"\x00"))
    if end < 2 or tail[end - 2:end] != EOI:
        return "no JPEG end marker: the picture is cut short"
    return None
