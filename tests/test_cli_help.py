"""``tcpcam --version`` and every ``--help``: plain text, a description for every command."""

import re
import subprocess
import sys

import pytest

from tcpcam import __version__
from tcpcam.cli import main as cli

#: Every command path, as typed after ``tcpcam``.
COMMANDS = [[], ["get"], ["serve"], ["record"], ["firmware"]] + [
    ["firmware", action] for action in ("config", "bundle", "flash", "deploy", "simulate")]
#: Docstring markup that has no place in a terminal.
MARKUP = re.compile(r"``|:[a-z]+:`")


def helpOf(capsys, words):
    with pytest.raises(SystemExit) as exited:
        cli.main([*words, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_version():
    done = subprocess.run([sys.executable, "-m", "tcpcam", "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "tcpcam %s\n" % __version__)


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words) or "tcpcam")
def test_help_is_plain_text_with_a_description(capsys, words):
    text = helpOf(capsys, words)
    assert not MARKUP.search(text), text
    # usage: ..., a blank line, then the description paragraph before the arguments.
    paragraphs = text.split("\n\n")
    assert paragraphs[0].startswith("usage: tcpcam")
    description = paragraphs[1]
    assert not description.startswith(("positional arguments", "options")), text
    assert len(description.split()) >= 5, description


def test_firmware_config_help_says_the_allowed_values(capsys):
    text = " ".join(helpOf(capsys, ["firmware", "config"]).split())
    for shown in ("one of 240X240, QVGA, CIF", "a whole number from 1 to 100", "true or false",
                  "empty, or 8 to 63 characters", "an IPv4 address"):
        assert shown in text
