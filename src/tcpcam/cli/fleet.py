"""Manage a recorder fleet's cameras in its NATS registry: add, remove, list, move.

Recorders started with ``--fleet`` share the registered cameras among
themselves: a camera added here is recorded within a few seconds by one of
them, a removed one is stopped, and ``move`` pins a camera to a recorder
(``--auto`` lets the fleet place it again). ``--fleet`` defaults to the
``TCPCAM_FLEET`` variable, else nats://127.0.0.1:4222.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from tcpcam.core.text import plural
from tcpcam.fleet import config as fleetconfig
from tcpcam.record.config import ConfigError

#: The NATS URL when neither --fleet nor TCPCAM_FLEET is given.
DEFAULT_URL = "nats://127.0.0.1:4222"
#: Seconds to reach NATS before giving up.
CONNECT_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommands and their arguments."""
    parser.add_argument("--fleet", default=None, metavar="URL",
                        help="NATS URL(s) of the fleet (default: $TCPCAM_FLEET or %s)" % DEFAULT_URL)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="register a camera")
    add.add_argument("name", help="the camera's name (a folder and URL segment)")
    add.add_argument("endpoint", help="its client endpoint, such as tcp:host=192.168.1.50:port=3333")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--pin", help="its PIN (stored in the registry)")
    secret.add_argument("--pin-ref", metavar="REF",
                        help="where each recorder reads its PIN: env:VARIABLE or file:PATH (the PIN stays off NATS)")
    add.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="a camera setting such as mode=motion or frame_timeout=10 (repeat for more)")
    add.add_argument("--replace", action="store_true", help="replace a camera of that name")
    remove = actions.add_parser("remove", help="unregister a camera (its recorder stops recording it)")
    remove.add_argument("name")
    listing = actions.add_parser("list", help="the cameras, where each is recorded, and the live recorders")
    listing.add_argument("--json", action="store_true", help="print JSON")
    move = actions.add_parser("move", help="pin a camera to a recorder, or --auto to let the fleet place it")
    move.add_argument("name")
    target = move.add_mutually_exclusive_group(required=True)
    target.add_argument("recorder", nargs="?", help="the recorder's id (see tcpcam fleet list)")
    target.add_argument("--auto", action="store_true", help="unpin: the fleet balances it again")


def run(args: argparse.Namespace) -> int:
    """Carry out one action; returns the exit status (2 for bad arguments or an unreachable fleet)."""
    try:
        fleetconfig.requireExtra()
        urls = fleetconfig.parseUrls(args.fleet or os.environ.get("TCPCAM_FLEET") or DEFAULT_URL)
        return asyncio.run(_run(args, urls))
    except ConfigError as error:
        print("tcpcam fleet: %s" % error, file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, urls: list[str]) -> int:
    from tcpcam.fleet.natslink import (
        LEASE_BUCKET,
        PRESENCE_BUCKET,
        REGISTRY_BUCKET,
        REGISTRY_VALUE_BYTES,
        FleetUnavailable,
        NatsLink,
    )
    from tcpcam.fleet.registry import CameraEntry, Registry, parseOptions

    link = NatsLink(urls, "tcpcam-fleet-cli")
    link.reconnectWait = 0.25
    try:
        await link.connect(attempts=max(1, int(CONNECT_SECONDS / link.reconnectWait)))
    except FleetUnavailable as error:
        raise ConfigError(str(error)) from None
    try:
        registry = Registry(await link.bucket(REGISTRY_BUCKET, history=1, maxValueBytes=REGISTRY_VALUE_BYTES))
        if args.action == "add":
            entry = CameraEntry(args.name, args.endpoint, pin=args.pin, pinRef=args.pin_ref,
                                options=parseOptions(args.option))
            await registry.add(entry, replace=args.replace)
            print("added camera %s (%s)" % (entry.name, entry.endpoint))
        elif args.action == "remove":
            await registry.remove(args.name)
            print("removed camera %s" % args.name)
        elif args.action == "move":
            await registry.move(args.name, None if args.auto else args.recorder)
            print("camera %s %s" % (args.name, "placed by the fleet" if args.auto else "pinned to " + args.recorder))
        else:
            await _list(registry, link, args.json, LEASE_BUCKET, PRESENCE_BUCKET)
    finally:
        await link.close()
    return 0


async def _list(registry: Any, link: Any, asJson: bool, leaseBucket: str, presenceBucket: str) -> None:
    from tcpcam.fleet.leases import parseLease

    entries = await registry.entries()
    holders = {}
    leases = await link.bucket(leaseBucket)
    for entry in entries:
        try:
            parsed = parseLease((await leases.get(entry.name)).value)
        except Exception:
            parsed = None
        holders[entry.name] = parsed[0] if parsed else None
    recorders: list[str] = []
    viewers: list[str] = []
    presence = await link.bucket(presenceBucket)
    try:
        names = sorted(await presence.keys())
    except Exception:
        names = []
    for name in names:
        try:
            recording = json.loads((await presence.get(name)).value).get("recording", True)
        except Exception:
            continue
        (recorders if recording else viewers).append(name)
    if asJson:
        print(json.dumps({"cameras": [{"name": entry.name, "endpoint": entry.endpoint, "pinned": entry.recorder,
                                       "recorder": holders[entry.name], "options": entry.options}
                                      for entry in entries], "recorders": recorders, "web_only": viewers},
                         indent=1))
        return
    for entry in entries:
        pinned = " (pinned to %s)" % entry.recorder if entry.recorder else ""
        print("%-20s %-45s %s%s" % (entry.name, entry.endpoint, holders[entry.name] or "-", pinned))
    print("%s; live recorders: %s%s" % (plural(len(entries), "camera"), ", ".join(recorders) or "none",
                                                "; web only: " + ", ".join(viewers) if viewers else ""))
