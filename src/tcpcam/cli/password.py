"""Set the recorder's web interface password, or make a token for scripts.

The password is kept hashed (scrypt) in web-auth.json in the recorder's
--out folder, or in --web-auth-file; give the same --out, --web-auth-file or
--config as the recorder. A running recorder takes the new password at once,
and every browser logged in must log in again. A new token replaces the old
one. The secret made by --random or --token is printed alone on stdout.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from tcpcam.core.text import plural
from tcpcam.record import config as recordconfig

#: The settings of the recorder's option table this command reads.
_SETTINGS = ("out", "web_auth_file")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options: where the password file is, and what to set."""
    parser.add_argument("--config", "-c", metavar="FILE", help="the recorder's TOML config file")
    for name in _SETTINGS:
        option = recordconfig.OPTIONS[name]
        parser.add_argument(option.flag, dest=name, default=None, metavar=name.upper(), help=option.meaning)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--stdin", action="store_true", help="read the new password from the first line of stdin")
    what.add_argument("--random", action="store_true", help="make a random password and print it")
    what.add_argument("--token", action="store_true",
                      help="make a new token for scripts and /metrics scrapers (the password stays) and print it")


def _readPassword(args: argparse.Namespace) -> str:
    from tcpcam.record.web.auth import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise ValueError("no terminal to ask for the password: use --stdin or --random")
    else:
        password = getpass.getpass("New password for the web interface: ")
        if getpass.getpass("The same again: ") != password:
            raise ValueError("the two passwords differ")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError("the password needs at least %s" % plural(MIN_PASSWORD_CHARS, "character"))
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValueError("the password may have at most %s" % plural(MAX_PASSWORD_BYTES, "byte"))
    return password


def run(args: argparse.Namespace) -> int:
    """Write the password file; returns the exit status."""
    from tcpcam.record.web.auth import AuthFile, hashPassword, hashToken, newPassword, newToken

    texts = {name: getattr(args, name) for name in _SETTINGS if getattr(args, name) is not None}
    try:
        path = recordconfig.configFromOptions(texts, configFile=args.config).authFile
        secret = None
        if args.token:
            secret = newToken()
            settings = {"token": hashToken(secret)}
        else:
            password = newPassword() if args.random else _readPassword(args)
            secret = password if args.random else None
            settings = {"password": hashPassword(password)}
    except (recordconfig.ConfigError, ValueError) as error:
        print("tcpcam password: %s" % error, file=sys.stderr)
        return 2
    authFile = AuthFile(path)
    try:
        authFile.read()
    except ValueError as error:
        print("tcpcam password: %s; writing a new file" % error, file=sys.stderr)
    try:
        authFile.save(**settings)
    except OSError as error:
        print("tcpcam password: cannot write %s: %s" % (path, error.strerror or error), file=sys.stderr)
        return 1
    if args.token:
        print("tcpcam password: a new token is in %s; send it as 'Authorization: Bearer TOKEN'"
              " (or as the password of HTTP Basic, with any user name)" % path, file=sys.stderr)
    else:
        print("tcpcam password: the web interface's password is set in %s;"
              " browsers logged in must log in again" % path, file=sys.stderr)
    if secret is not None:
        print(secret)
    return 0
