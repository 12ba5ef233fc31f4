"""Fixtures of the fleet tests: one nats-server and one weed mini per test module, stopped at its end."""

import pytest
from fleet_support import NatsServer, WeedMini


@pytest.fixture(scope="module")
def natsServer(tmp_path_factory):
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def weed(tmp_path_factory):
    server = WeedMini(tmp_path_factory.mktemp("weed")).start()
    yield server
    server.stop()
