"""Counts in messages: ``1 frame``, ``2 frames``, never ``1 frames``."""


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``plural(1, "frame")`` -> ``"1 frame"``; ``plural(3, "frame")`` -> ``"3 frames"``.

    ``nouns`` is the plural when it is not ``noun`` + ``s``.
    """
    return "%d %s" % (count, noun if count == 1 else (nouns or noun + "s"))
