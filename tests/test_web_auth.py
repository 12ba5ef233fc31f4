"""The web interface's login: the password file, sessions, tokens, one-time links and the throttle.

The rules are driven on a ``task.Clock``; the whole flow runs over real HTTP.
"""

import json
import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_twisted
from record_support import LogCapture
from twisted.internet import defer, task
from web_support import get, header, recording, request, stop

from tcpcam.record.web import auth
from tcpcam.record.web.auth import (
    LOGIN_BLOCK_MS,
    LOGIN_FAILURES,
    MAX_PENDING_CHECKS,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    AuthFile,
    AuthFileError,
    Sessions,
    WebAuth,
    hashPassword,
    hashToken,
    verifyPassword,
)

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

PASSWORD = "correct horse battery"
TOKEN = "a-token-for-scripts-0123456789"
BLOCK_S = LOGIN_BLOCK_MS / 1000.0


def syncVerify(password, stored):
    return defer.succeed(verifyPassword(password, stored))


def makeAuth(tmp_path, clock=None, verify=syncVerify, **settings):
    path = str(tmp_path / "web-auth.json")
    if settings:
        AuthFile(path).save(**settings)
    return WebAuth(path, clock or task.Clock(), verify=verify)


def outcome(deferred):
    results = []
    deferred.addCallback(results.append)
    assert results, "the check did not finish"
    return results[0]


def test_hash_keeps_its_parameters_and_checks():
    stored = hashPassword(PASSWORD)
    kind, n, r, p, salt, digest = stored.split("$")
    assert (kind, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P)
    assert len(bytes.fromhex(salt)) == auth.SALT_BYTES and len(bytes.fromhex(digest)) == auth.SCRYPT_DKLEN
    assert verifyPassword(PASSWORD, stored) and not verifyPassword(PASSWORD + "!", stored)
    assert hashPassword(PASSWORD) != stored  # a new salt each time
    assert not verifyPassword("x" * (auth.MAX_PASSWORD_BYTES + 1), stored)


@pytest.mark.parametrize("stored", [
    "", "md5$abc", "scrypt$16384$8$1$00$zz", "scrypt$%d$8$1$00$00" % (2 ** 22), "scrypt$16384$8$1$00$00$extra"])
def test_a_malformed_or_costly_hash_is_one_clear_error(stored):
    with pytest.raises(AuthFileError):
        verifyPassword(PASSWORD, stored)


def test_first_start_makes_a_password_once(tmp_path):
    web = WebAuth(str(tmp_path / "out" / "web-auth.json"), task.Clock(), verify=syncVerify)
    password = web.firstStart()
    assert password and re.fullmatch(r"([a-z2-9]{4}-){3}[a-z2-9]{4}", password)
    path = tmp_path / "out" / "web-auth.json"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert verifyPassword(password, json.loads(path.read_text())["password"])
    assert web.firstStart() is None
    assert WebAuth(str(path), task.Clock()).firstStart() is None
    assert WebAuth(str(tmp_path / "other.json"), task.Clock(), enabled=False).firstStart() is None


def test_first_start_with_an_unwritable_folder_keeps_the_password_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    web = WebAuth(str(blocker / "web-auth.json"), task.Clock(), verify=syncVerify)
    with LogCapture() as logs:
        password = web.firstStart()
    assert len(logs.matching("cannot write")) == 1
    assert outcome(web.checkPassword("10.0.0.1", password)) == "ok"


def test_a_broken_password_file_lets_nobody_in_and_is_logged_once(tmp_path):
    path = tmp_path / "web-auth.json"
    path.write_text("{not json")
    web = WebAuth(str(path), task.Clock(), verify=syncVerify)
    with LogCapture() as logs:
        for _ in range(3):
            assert outcome(web.checkPassword("10.0.0.1", PASSWORD)) == "unset"
        assert web.firstStart() is None
    assert len(logs.matching("is not a JSON object")) == 1
    assert web.problem and "tcpcam password" in web.problem


def test_wrong_passwords_block_the_address_and_every_refusal_counts(tmp_path):
    clock = task.Clock()
    web = makeAuth(tmp_path, clock, password=hashPassword(PASSWORD))
    for _ in range(LOGIN_FAILURES - 1):
        assert outcome(web.checkPassword("10.0.0.1", "wrong")) == "wrong"
    assert outcome(web.checkPassword("10.0.0.1", "wrong")) == "blocked"
    # Blocked: even the right password is refused (and counted), other addresses are not.
    assert outcome(web.checkPassword("10.0.0.1", PASSWORD)) == "blocked"
    assert outcome(web.checkPassword("10.0.0.2", PASSWORD)) == "ok"
    # Attempts while blocked count too: enough of them make the block last longer.
    clock.advance(BLOCK_S - 1)
    for _ in range(LOGIN_FAILURES - 1):
        assert outcome(web.checkPassword("10.0.0.1", PASSWORD)) == "blocked"
    clock.advance(2)
    assert web.blockedFor("10.0.0.1") > BLOCK_S - 5
    clock.advance(BLOCK_S)
    assert outcome(web.checkPassword("10.0.0.1", PASSWORD)) == "ok"
    assert web.refusals == 2 * LOGIN_FAILURES  # 5 wrong, 1 right while blocked, 4 more while blocked


def test_password_checks_at_once_are_bounded(tmp_path):
    waiting = []

    def slowVerify(password, stored):
        waiting.append(defer.Deferred())
        return waiting[-1]

    web = makeAuth(tmp_path, verify=slowVerify, password=hashPassword(PASSWORD))
    checks = [web.checkPassword("10.0.0.%d" % i, PASSWORD) for i in range(MAX_PENDING_CHECKS)]
    assert outcome(web.checkPassword("10.0.0.99", PASSWORD)) == "busy"
    for deferred in waiting:
        deferred.callback(True)
    assert [outcome(check) for check in checks] == ["ok"] * MAX_PENDING_CHECKS
    web.checkPassword("10.0.0.99", PASSWORD)  # room again: this one is being checked
    assert len(waiting) == MAX_PENDING_CHECKS + 1


def test_sessions_are_bounded_in_number_and_lifetime(tmp_path):
    clock = task.Clock()
    sessions = Sessions(clock, maxSessions=3, lifetime=100)
    tokens = [sessions.create("hash") for _ in range(4)]
    assert len(sessions) == 3
    assert not sessions.valid(tokens[0], "hash")  # the oldest made room
    assert all(sessions.valid(token, "hash") for token in tokens[1:])
    assert not sessions.valid(tokens[1], "another password")  # a new password ends it
    assert not sessions.valid(tokens[1], "hash")
    clock.advance(100)
    assert not sessions.valid(tokens[2], "hash")
    assert len(sessions) == 1  # tokens[3]: expired, forgotten at the next create or look-up
    sessions.create("hash")
    assert len(sessions) == 1
    assert auth.MAX_SESSIONS >= 1 and auth.SESSION_LIFETIME_S >= 3600


def test_one_time_links_work_once_and_expire(tmp_path):
    clock = task.Clock()
    web = makeAuth(tmp_path, clock, password=hashPassword(PASSWORD))
    link = web.oneTimeLink()
    assert web.useLink("10.0.0.1", link) == "ok"
    assert web.useLink("10.0.0.1", link) == "link"
    late = web.oneTimeLink()
    clock.advance(auth.LINK_LIFETIME_S)
    assert web.useLink("10.0.0.1", late) == "link"
    links = [web.oneTimeLink() for _ in range(auth.MAX_LINKS + 1)]
    assert web.useLink("10.0.0.2", links[0]) == "link" and web.useLink("10.0.0.2", links[-1]) == "ok"
    assert web.refusals == 3


@pytest.mark.parametrize("raw, expected", [
    (b"/front/", b"/front/"), (None, b"/"), (b"//evil.example/", b"/"), (b"http://evil.example/", b"/"),
    (b"/\\evil.example", b"/"), (b"/a b", b"/"), (b"/" + b"a" * 600, b"/")])
def test_the_page_after_the_login_is_on_this_site(raw, expected):
    assert auth._safeNext(raw) == expected


# Over HTTP.

@defer.inlineCallbacks
def loggedIn(tmp_path, **settings):
    """A recorder with the login on and a known password and token; returns (recorder, servers, url)."""
    AuthFile(str(tmp_path / "web-auth.json")).save(password=hashPassword(PASSWORD), token=hashToken(TOKEN))
    recorder, servers = yield recording(tmp_path, login=True, **settings)
    return recorder, servers, recorder.web.url


@defer.inlineCallbacks
def logIn(url, password, source=None, origin=None, next=b"/"):
    headers = {b"content-type": b"application/x-www-form-urlencoded"}
    if origin:
        headers[b"origin"] = origin
    response, body = yield request(url + "login", b"POST", headers,
                                   b"password=" + password.encode() + b"&next=" + next, source=source)
    return response, body


def cookieOf(response):
    raw = header(response, b"set-cookie")
    return raw.split(b";")[0] if raw else None


@pytest_twisted.inlineCallbacks
def test_pages_ask_for_the_login_and_the_password_gets_in(tmp_path):
    recorder, servers, url = yield loggedIn(tmp_path)
    try:
        # A browser asking for a page goes to the form; anything else gets 401 and the ways in.
        response, _ = yield get(url + "cam/", headers={b"sec-fetch-mode": b"navigate"})
        assert response.code == 303 and header(response, b"location") == b"/login?next=/cam/"
        response, _ = yield get(url + "status.json")
        assert response.code == 401
        assert response.headers.getRawHeaders(b"www-authenticate") == [
            b'Bearer realm="tcpcam"', b'Basic realm="tcpcam", charset="UTF-8"']
        response, _ = yield get(url + "cam/latest.jpg", headers={b"sec-fetch-mode": b"no-cors"})
        assert response.code == 401  # a browser's picture: no Basic challenge, so no password dialog
        assert response.headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="tcpcam"']
        for path in ("", "metrics", "cam/stream.mjpg", "cam/snapshot.jpg", "nosuchcamera/"):
            response, _ = yield get(url + path)
            assert response.code == 401, path
        # The form and its files need no login.
        for path in ("login", "static/style.css", "static/login.js"):
            response, _ = yield get(url + path)
            assert response.code == 200, path
        # The right password: a session cookie, HttpOnly and SameSite=Strict, and back to the page asked for.
        response, _ = yield logIn(url, PASSWORD, next=b"/cam/")
        assert response.code == 303 and header(response, b"location") == b"/cam/"
        setCookie = header(response, b"set-cookie").decode()
        assert setCookie.startswith("tcpcam_session_%d=" % recorder.web.port.getHost().port)
        assert "HttpOnly" in setCookie and "SameSite=strict" in setCookie and "Path=/" in setCookie
        assert "Max-Age=%d" % auth.SESSION_LIFETIME_S in setCookie
        cookie = cookieOf(response)
        for path in ("", "status.json", "metrics", "cam/"):
            response, _ = yield get(url + path, headers={b"cookie": cookie})
            assert response.code == 200, path
        response, _ = yield get(url + "login", headers={b"cookie": cookie})
        assert response.code == 303  # logged in already
        # Logging out ends the session.
        response, _ = yield request(url + "logout", b"POST", {b"cookie": cookie})
        assert response.code == 303 and "Max-Age=0" in header(response, b"set-cookie").decode()
        response, _ = yield get(url + "status.json", headers={b"cookie": cookie})
        assert response.code == 401
        # A forged cookie is no session.
        response, _ = yield get(url + "status.json", headers={b"cookie": cookie.split(b"=")[0] + b"=forged"})
        assert response.code == 401
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_wrong_passwords_over_http_are_throttled_per_address(tmp_path):
    recorder, servers, url = yield loggedIn(tmp_path)
    try:
        for attempt in range(LOGIN_FAILURES):
            response, _ = yield logIn(url, "wrong", source="127.0.0.2", next=b"/cam/")
            location = urlsplit(header(response, b"location").decode())
            query = parse_qs(location.query)
            assert response.code == 303 and location.path == "/login" and query["next"] == ["/cam/"]
            assert query["failed"] == ["blocked" if attempt == LOGIN_FAILURES - 1 else "wrong"]
        assert int(query["retry"][0]) > 0
        # The right password from the blocked address is refused; from another address it gets in.
        response, _ = yield logIn(url, PASSWORD, source="127.0.0.2")
        assert "failed=blocked" in header(response, b"location").decode() and cookieOf(response) is None
        response, _ = yield logIn(url, PASSWORD, source="127.0.0.3")
        assert header(response, b"location") == b"/" and cookieOf(response) is not None
        # A form sent from another site is refused, and counted.
        response, _ = yield logIn(url, PASSWORD, source="127.0.0.4", origin=b"http://evil.example")
        assert response.code == 403
        assert recorder.web.auth.refusals == LOGIN_FAILURES + 2
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_a_token_for_scripts_and_scrapers(tmp_path):
    recorder, servers, url = yield loggedIn(tmp_path)
    try:
        response, body = yield get(url + "metrics", headers={b"authorization": b"Bearer " + TOKEN.encode()})
        assert response.code == 200 and b"tcpcam_frames_total" in body
        basic = b"Basic " + __import__("base64").b64encode(b"anyone:" + TOKEN.encode())
        response, _ = yield get(url + "status.json", headers={b"authorization": basic})
        assert response.code == 200
        # Wrong tokens are refused, counted, and block the address like wrong passwords.
        for attempt in range(LOGIN_FAILURES):
            response, body = yield get(url + "metrics", headers={b"authorization": b"Bearer wrong"},
                                       source="127.0.0.5")
            assert response.code == (429 if attempt == LOGIN_FAILURES - 1 else 401), body
        response, body = yield get(url + "metrics", headers={b"authorization": b"Bearer " + TOKEN.encode()},
                                   source="127.0.0.5")
        assert response.code == 429 and b"too many failed logins" in body and header(response, b"retry-after")
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_one_time_link_over_http_and_a_new_password_ends_sessions(tmp_path):
    recorder, servers, url = yield loggedIn(tmp_path)
    try:
        link = url + "login?once=" + recorder.web.auth.oneTimeLink()
        response, _ = yield get(link)
        assert response.code == 303 and header(response, b"location") == b"/"
        cookie = cookieOf(response)
        response, _ = yield get(link)
        assert header(response, b"location") == b"/login?failed=link"
        response, _ = yield get(url + "status.json", headers={b"cookie": cookie})
        assert response.code == 200
        # A new password (tcpcam password, while the recorder runs) ends every session.
        AuthFile(str(tmp_path / "web-auth.json")).save(password=hashPassword("a new password"))
        response, _ = yield get(url + "status.json", headers={b"cookie": cookie})
        assert response.code == 401
        response, _ = yield logIn(url, "a new password")
        assert cookieOf(response) is not None
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_with_the_login_off_everything_is_open(tmp_path):
    recorder, servers = yield recording(tmp_path, login=False)
    url = recorder.web.url
    try:
        for path in ("", "status.json", "metrics", "cam/"):
            response, _ = yield get(url + path)
            assert response.code == 200, path
        response, _ = yield get(url + "login")
        assert response.code == 303
        assert not os.path.exists(tmp_path / "web-auth.json")
    finally:
        yield stop(recorder, servers)
