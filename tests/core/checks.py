"""Assertion helpers that work the same under pytest and MicroPython."""


class raises:  # noqa: N801 - named like pytest.raises, which it stands in for
    """Context manager: the block must raise ``expected`` (or a subclass).

    The caught exception is kept in ``value``; ``match`` is a substring that
    its message must contain.
    """

    def __init__(self, expected, match=None):
        self.expected = expected
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            raise AssertionError("%s was not raised" % self.expected.__name__)
        if not issubclass(kind, self.expected):
            return False
        if self.match is not None and self.match not in str(value):
            raise AssertionError("%r does not contain %r" % (str(value), self.match))
        self.value = value
        return True


def split_every(data, size):
    """Cut ``data`` into pieces of ``size`` bytes (the last may be shorter)."""
    return [data[index:index + size] for index in range(0, len(data), size)]
