"""The fleet's options: one table for ``twistd tcpcam-record``, ``tcpcam record``, ``tcpcam web`` and ``tcpcam fleet``.

This module needs nothing beyond the standard library and the core, so the
single-machine recorder parses ``--fleet`` without the fleet's extra
installed, and says in one line what to install when it is given.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from tcpcam.core.options import Option, OptionTable
from tcpcam.record.config import ConfigError

#: Seconds a lease lives on the server after its last renewal (the whole fleet shares the bucket's value).
DEFAULT_LEASE_SECONDS = 10.0
#: Bytes of finished segments the spool holds at most while the object store is unreachable.
DEFAULT_SPOOL_BYTES = 2 * 1024 ** 3
#: The region named to the S3 client (SeaweedFS and MinIO accept any).
DEFAULT_S3_REGION = "us-east-1"
#: What to install for the fleet.
EXTRA_HINT = "pip install 'tcpcam[fleet]'"

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_URL = re.compile(r"^(nats|tls)://[^\s,]+$")

#: The fleet's settings (``--fleet`` turns them on).
FLEET_OPTIONS = OptionTable((
    Option("fleet", "", "text", 0, 4096, "NATS server URL(s) of the fleet to join, comma-separated (empty: no fleet)"),
    Option("recorder_id", "", "text", 0, 64,
           "this recorder's name in the fleet (empty: the host name and a hash of --out)"),
    Option("lease_seconds", DEFAULT_LEASE_SECONDS, "number", 2, 300,
           "seconds a camera's lease outlives its holder (used when the fleet's lease bucket is made)"),
    Option("s3_endpoint", "", "text", 0, 1000, "URL of the S3-compatible object store (empty: AWS)"),
    Option("s3_bucket", "", "text", 0, 63, "bucket the fleet's segments go to (empty: keep footage local)"),
    Option("s3_prefix", "", "text", 0, 200, "key prefix inside the bucket, such as site1/"),
    Option("s3_region", DEFAULT_S3_REGION, "text", 1, 64, "region named to the object store"),
    Option("spool_bytes", DEFAULT_SPOOL_BYTES, "size", 1_000_000, None,
           "bytes of finished segments kept for the object store while it is unreachable"),
))


class FleetConfigError(ConfigError):
    """A fleet setting is wrong; the message is one line for the user."""


@dataclass
class S3Settings:
    """Where the fleet's footage goes; credentials come from the usual AWS variables or files."""

    bucket: str
    endpoint: str = ""
    prefix: str = ""
    region: str = DEFAULT_S3_REGION


@dataclass
class FleetConfig:
    """Everything a fleet member needs besides the recorder's own config."""

    urls: list[str]
    recorderId: str
    leaseSeconds: float = DEFAULT_LEASE_SECONDS
    s3: S3Settings | None = None
    spoolBytes: int = DEFAULT_SPOOL_BYTES
    spoolDir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parseUrls(text: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` -> the list; FleetConfigError for anything else."""
    urls = [part.strip() for part in text.split(",") if part.strip()]
    for url in urls:
        if not _URL.match(url):
            raise FleetConfigError("bad --fleet URL %r: expected nats://HOST:PORT (comma-separated for several)" % url)
    if not urls:
        raise FleetConfigError("--fleet needs a NATS URL such as nats://127.0.0.1:4222")
    return urls


def defaultRecorderId(out: str) -> str:
    """The host name (cut to fit) and a short hash of the recording folder: stable across restarts."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname() or "recorder")[:40].strip("-") or "recorder"
    digest = hashlib.sha256(os.path.abspath(out).encode()).hexdigest()[:8]
    return "%s-%s" % (host, digest)


def fleetFromValues(values: dict[str, Any], out: str) -> FleetConfig | None:
    """The fleet config from checked :data:`FLEET_OPTIONS` values, or None without ``--fleet``."""
    if not values.get("fleet"):
        return None
    recorderId = values.get("recorder_id") or defaultRecorderId(out)
    if not _ID.match(recorderId):
        raise FleetConfigError("bad --recorder-id %r: use 1 to 64 letters, digits, '-' or '_'" % recorderId)
    s3 = None
    if values.get("s3_bucket"):
        bucket = values["s3_bucket"]
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise FleetConfigError("bad --s3-bucket %r: 3 to 63 lower-case letters, digits, '.' or '-'" % bucket)
        prefix = values.get("s3_prefix") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        s3 = S3Settings(bucket=bucket, endpoint=values.get("s3_endpoint") or "", prefix=prefix,
                        region=values.get("s3_region") or DEFAULT_S3_REGION)
    return FleetConfig(urls=parseUrls(values["fleet"]), recorderId=recorderId,
                       leaseSeconds=float(values.get("lease_seconds", DEFAULT_LEASE_SECONDS)), s3=s3,
                       spoolBytes=int(values.get("spool_bytes", DEFAULT_SPOOL_BYTES)),
                       spoolDir=os.path.join(out, ".fleet-spool"))


def fleetFromTexts(texts: dict[str, str], out: str) -> FleetConfig | None:
    """The fleet config from command-line texts keyed by option name (one-line FleetConfigError if bad)."""
    values, problems = FLEET_OPTIONS.parse_texts(texts)
    if problems:
        raise FleetConfigError(problems[0])
    return fleetFromValues(values, out)


def requireExtra() -> None:
    """Raise FleetConfigError with the install line if the fleet's packages are missing."""
    missing = []
    for module, package in (("nats", "nats-py"), ("boto3", "boto3")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        raise FleetConfigError("the fleet needs %s, which %s not installed: %s"
                               % (" and ".join(missing), "are" if len(missing) > 1 else "is", EXTRA_HINT))
