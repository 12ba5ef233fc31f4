"""No message says "1 frames": every count before a noun goes through tcpcam.core.text.plural.

The check reads the source of the whole package and the firmware: a
placeholder for a number (``%d``, ``{frames}``) followed by a plural noun
is a message that can say "1 frames". A range ("1 to %d bytes") and a rate
("%.1f frames/s") take the plural whatever the number, so they may stay.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Nouns a count may come before.
NOUNS = ("frames", "bytes", "files", "clients", "requests", "connections", "cameras", "seconds", "days",
         "viewers", "attempts", "failures", "characters", "probes", "tokens", "addresses", "lines", "folders",
         "modules", "pictures", "times", "runs", "errors")
PLACEHOLDER = r"(?:%[-+ 0#]*\d*(?:\.\d+)?[dis]|\{[a-z_]*(?::[^}]*)?\})"
COUNTED = re.compile(r"(?P<before>\bto )?%s (?:%s)\b(?!/)" % (PLACEHOLDER, "|".join(NOUNS)))


def sources():
    package = REPO / "src" / "tcpcam"
    for path in sorted(package.rglob("*.py")):
        if "firmware" not in path.relative_to(package).parts:  # the firmware is read from firmware/
            yield path
    yield from sorted((REPO / "firmware").rglob("*.py"))


def counted(text):
    """Each ``placeholder noun`` in ``text`` that is not the top of a range."""
    return [match.group(0) for match in COUNTED.finditer(text) if not match.group("before")]


def test_the_check_finds_what_it_should():
    assert counted('"after %d frames"') == ["%d frames"]
    assert counted('log.info("stopped after {frames} frames")') == ["{frames} frames"]
    assert counted('"text of %d to %d characters"') == []
    assert counted('"%.1f frames/s"') == []
    assert counted('"after %s" % plural(count, "frame")') == []


def test_no_count_before_a_plural_noun():
    found = []
    for path in sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found += ["%s:%d: %s" % (path.relative_to(REPO), number, hit) for hit in counted(line)]
    assert found == []
