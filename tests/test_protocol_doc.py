"""docs/protocol.md's worked handshake is what the implementation computes, and OpenSSL agrees with it."""

import re
import subprocess
from pathlib import Path

from tcpcam.core import mac, messages

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()


def value(label):
    match = re.search(r"^%s:?\s+([0-9a-fA-F-]+|[A-Z2-7-]+)$" % re.escape(label), DOC, re.MULTILINE)
    assert match, "no %r in docs/protocol.md" % label
    return match.group(1)


def test_every_value_of_the_worked_handshake_is_recomputed():
    key = bytes.fromhex(value("key"))
    server, client = bytes.fromhex(value("server challenge")), bytes.fromhex(value("client challenge"))
    assert mac.key_text(key) == value("key text") and mac.parse_key(value("key text")) == key
    assert mac.client_proof(key, server, client).hex() == value("client proof")
    assert mac.server_proof(key, server, client).hex() == value("server proof")
    session = mac.session_key(key, server, client)
    assert session.hex() == value("session key")
    proof = mac.client_proof(key, server, client)
    assert messages.encode(messages.AUTH, client + proof).hex() == value("auth message")
    request = messages.sign(messages.CONTROL, session, messages.FROM_CLIENT, 1, {"op": "snapshot"}).hex()
    assert request in DOC


def test_the_openssl_commands_of_the_page_give_its_values():
    commands = re.findall(r"```bash\n(.*?)```", DOC.split("## A worked handshake")[1], re.DOTALL)
    assert len(commands) == 2
    outputs = [subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
               for command in commands]
    assert value("client proof") in outputs[0]
    request = re.search(r"counter 1:\s+([0-9a-f]+)", DOC).group(1)
    assert request[26:90] in outputs[1]
