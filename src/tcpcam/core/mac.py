"""HMAC-SHA256, the device key's text form, and protocol 2's key derivations.

MicroPython has ``hashlib.sha256`` but no ``hmac`` module, so HMAC (RFC 2104)
is written out here; the tests check it against the standard library's.
The device key is at least 128 random bits; people copy it as base32 text
in groups of four (``ABCD-EFGH-...``), which this module writes and reads
(MicroPython has no base32 either).
"""

import hashlib

from tcpcam.core.request import constant_time_equal
from tcpcam.core.text import plural

#: SHA-256's block and digest sizes.
BLOCK_BYTES = 64
DIGEST_BYTES = 32
#: Fewest bytes a device key may have: 128 bits.
MIN_KEY_BYTES = 16
#: Bytes of a key made by :func:`new_key`'s caller: 160 bits, 32 base32 letters.
KEY_BYTES = 20
#: RFC 4648 base32 letters.
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

_IPAD = bytes(0x36 for _ in range(BLOCK_BYTES))
_OPAD = bytes(0x5C for _ in range(BLOCK_BYTES))


def _xor(key: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(key, pad))


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key`` (32 bytes)."""
    if len(key) > BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    key = key + bytes(BLOCK_BYTES - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    inner.update(message)
    outer = hashlib.sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def verify(key: bytes, message: bytes, mac: bytes | memoryview) -> bool:
    """True when ``mac`` is ``message``'s HMAC under ``key`` (compared in constant time)."""
    return constant_time_equal(bytes(mac), hmac_sha256(key, message))


def key_text(key: bytes) -> str:
    """A key as base32 text in dash-separated groups of four letters."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError("a device key has at least %s, not %d" % (plural(MIN_KEY_BYTES, "byte"), len(key)))
    letters = []
    bits = 0
    value = 0
    for byte in key:
        value = (value << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            letters.append(ALPHABET[(value >> bits) & 31])
    if bits:
        letters.append(ALPHABET[(value << (5 - bits)) & 31])
    text = "".join(letters)
    return "-".join(text[index:index + 4] for index in range(0, len(text), 4))


def parse_key(text: str) -> bytes:
    """The key bytes of :func:`key_text`'s text (case, dashes and blanks do not matter); ValueError if bad."""
    letters = "".join(char for char in str(text).upper() if char not in "- \t")
    value = 0
    bits = 0
    out = bytearray()
    for char in letters:
        index = ALPHABET.find(char)
        if index < 0:
            raise ValueError("a device key is base32 text (letters A-Z and digits 2-7), not %r" % (char,))
        value = ((value << 5) | index) & 0xFFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((value >> bits) & 255)
    if len(out) < MIN_KEY_BYTES:
        raise ValueError("a device key has at least %d letters" % ((MIN_KEY_BYTES * 8 + 4) // 5))
    return bytes(out)


def client_proof(key: bytes, server_challenge: bytes, client_challenge: bytes) -> bytes:
    """What the client sends to show it holds the key."""
    return hmac_sha256(key, b"tcpcam2 client" + server_challenge + client_challenge)


def server_proof(key: bytes, server_challenge: bytes, client_challenge: bytes) -> bytes:
    """What the server sends to show it holds the key too."""
    return hmac_sha256(key, b"tcpcam2 server" + server_challenge + client_challenge)


def session_key(key: bytes, server_challenge: bytes, client_challenge: bytes) -> bytes:
    """The key that signs the control messages of one session only."""
    return hmac_sha256(key, b"tcpcam2 session" + server_challenge + client_challenge)
