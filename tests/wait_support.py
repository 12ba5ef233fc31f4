"""A blocking wait for tests whose work runs in other processes (browser, fleet): no reactor is imported here.

The fleet's tests install Twisted's asyncio reactor, so their helpers must not
import ``twisted.internet.reactor`` before pytest-twisted does.
"""

import time

import pytest


def waitUntil(predicate, timeout=15.0, what="the condition", step=0.1):
    """Poll ``predicate`` (blocking: for tests whose work is in other processes) until it returns something true.

    Fails after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(step)
