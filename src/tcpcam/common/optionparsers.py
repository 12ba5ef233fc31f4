"""The core's option tables as ``argparse`` arguments and ``twistd`` Options parameters.

Both front ends collect the texts the user typed, keyed by option name;
:meth:`~tcpcam.core.options.OptionTable.parse_texts` then checks them all
with the same rules, so ``tcpcam serve`` and ``twistd tcpcam-server`` (or
``tcpcam record`` and ``twistd tcpcam-record``) refuse the same values with
the same one-line message.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from tcpcam.core.options import Option, OptionTable, show_value

_MARKUP = re.compile(r":[a-z]+:`~?([^`]*)`|``([^`]*)``")


def plainDoc(doc: str | None) -> str | None:
    """A docstring as ``--help`` shows it: ``literal`` and :role:`target` markup become plain words."""
    if doc is None:
        return None
    return _MARKUP.sub(lambda match: (match.group(2) if match.group(1) is None
                                      else match.group(1).rsplit(".", 1)[-1]), doc)


def helpText(option: Option, default: object = None) -> str:
    """The help line of an option: its meaning, its rule and its default."""
    shown = option.default if default is None else default
    return "%s: %s (default: %s)" % (option.meaning, option.rule(), show_value(shown).strip('"'))


def addArguments(parser: argparse.ArgumentParser, table: OptionTable) -> None:
    """Add every option of ``table`` to ``parser`` as a text argument defaulting to None."""
    for option in table.options:
        flags = [option.flag] + (["-" + option.short] if option.short else [])
        parser.add_argument(*flags, dest=option.name, default=None, metavar=option.name.upper(),
                            help=helpText(option).replace("%", "%%"))


def textsFromNamespace(namespace: argparse.Namespace, table: OptionTable) -> dict[str, str]:
    """The texts the user gave for ``table``'s options, keyed by option name."""
    return {option.name: getattr(namespace, option.name) for option in table.options
            if getattr(namespace, option.name, None) is not None}


def twistedParameters(table: OptionTable) -> list[list[Any]]:
    """The options as ``usage.Options.optParameters`` rows (values stay texts, defaults None)."""
    rows = []
    for option in table.options:
        text = helpText(option)
        # Not capitalised: a meaning may begin with a value, as "jpg: one file per frame" does.
        rows.append([option.flag[2:], option.short or None, None, text + "."])
    return rows


def textsFromTwisted(options: Any, table: OptionTable) -> dict[str, str]:
    """The texts given to a ``usage.Options`` built with :func:`twistedParameters`."""
    return {option.name: options[option.flag[2:]] for option in table.options
            if options[option.flag[2:]] is not None}
