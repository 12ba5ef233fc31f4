"""The camera registry: one key per camera in the ``tcpcam-cameras`` bucket.

A value is JSON::

    {"name": "door", "endpoint": "tcp:host=192.168.1.50:port=3333",
     "pin": "1235",                  # or "pin_ref": "env:DOOR_PIN" / "file:/etc/tcpcam/door.pin"
     "options": {"mode": "motion", "frame_timeout": 10},   # keys of the recorder's camera table
     "recorder": null}               # pinned to a recorder by ``tcpcam fleet move``, or null

A PIN reference is read by the recorder that records the camera, so a PIN
need not sit in the registry. A protocol-2 device key never does: the option
``key`` is refused, ``key_file`` names a file each recorder reads (it replaces
the recorder's own ``--key``/``--key-file``, as in a ``[cameras.NAME]``
table). The options are checked with the recorder's own camera table
(:data:`tcpcam.record.config.CAMERA_OPTIONS`) both when written and when read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from tcpcam.core import limits
from tcpcam.core.text import plural
from tcpcam.record.config import CAMERA_OPTIONS, MASK_KEY, CameraConfig, ConfigError, checkMask, checkName

#: Bytes a registry value may hold.
MAX_ENTRY_BYTES = 64 * 1024
#: Bytes a PIN file may hold.
MAX_PIN_FILE_BYTES = 4096
#: Camera options that are not registry options: the endpoint and PIN have fields of their own, a key stays off NATS.
NOT_OPTIONS = ("endpoint", "pin", "key")
#: What a device key given as an option is told.
KEY_REFUSED = "a device key stays off NATS: give key_file=PATH, a file each recorder reads"


@dataclass
class CameraEntry:
    """One registered camera."""

    name: str
    endpoint: str
    pin: str | None = None
    pinRef: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    recorder: str | None = None

    def toJson(self) -> bytes:
        """The registry value."""
        data: dict[str, Any] = {"name": self.name, "endpoint": self.endpoint, "options": self.options,
                                "recorder": self.recorder}
        if self.pinRef is not None:
            data["pin_ref"] = self.pinRef
        elif self.pin is not None:
            data["pin"] = self.pin
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def fromJson(cls, value: bytes) -> CameraEntry:
        """Read and check a registry value (ConfigError with one line)."""
        if len(value) > MAX_ENTRY_BYTES:
            raise ConfigError("registry value over %s" % plural(MAX_ENTRY_BYTES, "byte"))
        try:
            data = json.loads(value)
        except ValueError:
            raise ConfigError("registry value is not JSON") from None
        if not isinstance(data, dict):
            raise ConfigError("registry value is not a JSON object")
        entry = cls(name=checkName(data.get("name")), endpoint=str(data.get("endpoint") or ""),
                    pin=data.get("pin"), pinRef=data.get("pin_ref"), options=data.get("options") or {},
                    recorder=data.get("recorder"))
        entry.check()
        return entry

    def check(self) -> None:
        """ConfigError unless every field is usable."""
        checkName(self.name)
        if not self.endpoint or len(self.endpoint) > 1000:
            raise ConfigError("camera %s: the endpoint must be 1 to 1000 characters" % self.name)
        if self.pin is not None:
            CAMERA_OPTIONS["pin"].check(self.pin)
        if self.pinRef is not None and not self.pinRef.startswith(("env:", "file:")):
            raise ConfigError("camera %s: bad PIN reference %r: expected env:VARIABLE or file:PATH"
                              % (self.name, self.pinRef))
        if not isinstance(self.options, dict):
            raise ConfigError("camera %s: options must be a table" % self.name)
        options = dict(self.options)
        mask = options.pop(MASK_KEY, None)
        if mask is not None:
            checkMask(mask, "camera %s" % self.name)
        for key, value in options.items():
            if key == "key":
                raise ConfigError("camera %s: %s" % (self.name, KEY_REFUSED))
            if key not in CAMERA_OPTIONS or key in NOT_OPTIONS:
                raise ConfigError("camera %s: unknown option %r" % (self.name, key))
            try:
                CAMERA_OPTIONS[key].check(value)
            except ValueError as error:
                raise ConfigError("camera %s: bad %s %r: expected %s" % (self.name, key, value, error)) from None
        if self.recorder is not None and not isinstance(self.recorder, str):
            raise ConfigError("camera %s: bad recorder pin" % self.name)

    def resolvePin(self, default: str = limits.DEFAULT_PIN) -> str:
        """The PIN: given, or read from the environment or a file (ConfigError with one line)."""
        if self.pinRef is None:
            return self.pin if self.pin is not None else default
        kind, _, where = self.pinRef.partition(":")
        if kind == "env":
            value = os.environ.get(where)
            if value is None:
                raise ConfigError("camera %s: the PIN variable %s is not set on this recorder" % (self.name, where))
        else:
            try:
                with open(where, "rb") as handle:
                    value = handle.read(MAX_PIN_FILE_BYTES).decode("utf-8", "replace").strip()
            except OSError as error:
                raise ConfigError("camera %s: cannot read the PIN file %s: %s"
                                  % (self.name, where, error.strerror)) from None
        CAMERA_OPTIONS["pin"].check(value)
        return value

    def cameraConfig(self, defaults: dict[str, Any]) -> CameraConfig:
        """The recorder's camera config; ``defaults`` are the recorder's checked option values."""
        from tcpcam.record.config import _camera

        values = dict(defaults)
        values.update(self.options)
        if "key_file" in self.options:
            values["key"] = ""  # the camera's own key file replaces the recorder's key
        values["pin"] = self.resolvePin(defaults.get("pin", limits.DEFAULT_PIN))
        return _camera(self.name, self.endpoint, values)


def parseOptions(pairs: list[str]) -> dict[str, Any]:
    """``["mode=motion", "frame_timeout=10"]`` -> checked option values (ConfigError with one line)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if key == "key":
            raise ConfigError("bad --option key=...: %s" % KEY_REFUSED)
        if not sep or key not in CAMERA_OPTIONS or key in NOT_OPTIONS:
            known = ", ".join(option.name for option in CAMERA_OPTIONS.options if option.name not in NOT_OPTIONS)
            raise ConfigError("bad --option %r: expected KEY=VALUE with KEY one of %s" % (pair, known))
        try:
            options[key] = CAMERA_OPTIONS[key].from_text(text)
        except ValueError as error:
            raise ConfigError("bad --option %s: expected %s" % (pair, error)) from None
    return options


class Registry:
    """The registry bucket's operations (for ``tcpcam fleet``; the recorders read it through a mirror)."""

    def __init__(self, kv: Any) -> None:
        self.kv = kv

    async def add(self, entry: CameraEntry, replace: bool = False) -> None:
        """Register a camera; ConfigError if the name is taken (unless ``replace``)."""
        from nats.js.errors import KeyWrongLastSequenceError

        entry.check()
        if replace:
            await self.kv.put(entry.name, entry.toJson())
            return
        try:
            await self.kv.create(entry.name, entry.toJson())
        except KeyWrongLastSequenceError:
            raise ConfigError("camera %s is registered already (tcpcam fleet remove it first)" % entry.name) from None

    async def get(self, name: str) -> tuple[CameraEntry, int]:
        """The entry of camera ``name`` and its revision; ConfigError if there is none."""
        from nats.js.errors import KeyNotFoundError

        try:
            found = await self.kv.get(checkName(name))
        except KeyNotFoundError:
            raise ConfigError("no camera %s in the fleet" % name) from None
        return CameraEntry.fromJson(found.value), found.revision

    async def remove(self, name: str) -> None:
        """Unregister a camera (its recorder stops recording it)."""
        await self.get(name)
        await self.kv.delete(name)

    async def move(self, name: str, recorder: str | None) -> None:
        """Pin a camera to ``recorder`` (None: let the balancer place it)."""
        from nats.js.errors import KeyWrongLastSequenceError

        for _ in range(10):
            entry, revision = await self.get(name)
            entry.recorder = recorder
            try:
                await self.kv.update(name, entry.toJson(), last=revision)
                return
            except KeyWrongLastSequenceError:
                continue
        raise ConfigError("camera %s changes too often to move it; try again" % name)

    async def entries(self) -> list[CameraEntry]:
        """Every registered camera, by name (entries that do not parse are skipped)."""
        from nats.js.errors import NoKeysError

        try:
            names = await self.kv.keys()
        except NoKeysError:
            return []
        found = []
        for name in sorted(names):
            try:
                found.append((await self.get(name))[0])
            except ConfigError:
                continue
        return found
