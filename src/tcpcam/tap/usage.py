"""twistd plugin options whose errors are one line, as ``tcpcam record`` and ``tcpcam serve`` print them.

twistd answers a :class:`~twisted.python.usage.UsageError` from a plugin's
options by printing the plugin's whole usage text and then the error (see
``twisted.application.app.run``). Under twistd, :class:`OneLineOptions`
prints only the error, with a pointer to ``--help``, on stderr, and exits
with twistd's status for bad options (1). Used on its own (no parent
options), it raises the UsageError as any ``usage.Options`` does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from twisted.python import usage

#: twistd's exit status for bad options.
EXIT_USAGE = 1


class OneLineOptions(usage.Options):
    """``usage.Options`` that, as a twistd subcommand, report a bad option in one line."""

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """Parse as usual; under twistd, a UsageError becomes one line on stderr and exit status 1."""
        try:
            usage.Options.parseOptions(self, options)
        except usage.UsageError as error:
            parent = getattr(self, "parent", None)
            if parent is None:
                raise
            command = "twistd %s" % (getattr(parent, "subCommand", None) or "")
            sys.stderr.write("%s: %s (see %s --help)\n" % (command.strip(), error, command.strip()))
            raise SystemExit(EXIT_USAGE) from None
