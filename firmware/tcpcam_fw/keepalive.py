"""TCP keep-alive on an accepted socket, where the port allows it."""

import socket
import sys

# (SOL_SOCKET, SO_KEEPALIVE, IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT)
# for ports whose socket module does not name them all.
_NUMBERS = {
    "linux": (1, 9, 6, 4, 5, 6),
    "esp32": (0xFFF, 0x08, 6, 0x03, 0x04, 0x05),
}


def option_numbers(platform=None):
    """The six option numbers for this port, or None when they are unknown."""
    known = _NUMBERS.get(platform or sys.platform)
    names = ("SOL_SOCKET", "SO_KEEPALIVE", "IPPROTO_TCP", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")
    numbers = []
    for index, name in enumerate(names):
        value = getattr(socket, name, None)
        if value is None:
            if known is None:
                return None
            value = known[index]
        numbers.append(value)
    return numbers


def set_keepalive(sock, idle, interval, count):
    """Turn keep-alive on with the given timing; returns an error text or None."""
    numbers = option_numbers()
    if sock is None or numbers is None:
        return "keep-alive options unknown on %s" % sys.platform
    sol, keepalive, tcp, opt_idle, opt_interval, opt_count = numbers
    try:
        sock.setsockopt(sol, keepalive, 1)
        sock.setsockopt(tcp, opt_idle, idle)
        sock.setsockopt(tcp, opt_interval, interval)
        sock.setsockopt(tcp, opt_count, count)
    except (OSError, TypeError, ValueError) as error:
        return "keep-alive not set: %s" % (error,)
    return None
