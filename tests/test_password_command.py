"""``tcpcam password``: set the web interface's password, or make a token, as docs/recorder.md shows."""

import io
import json
import os
import stat

import pytest

from tcpcam.cli.main import main
from tcpcam.record.web.auth import hashToken, verifyPassword


def stored(path):
    return json.loads(open(path).read())


def run(argv, capsys, monkeypatch, stdin=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_random_password_and_token_in_the_out_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # docs/recorder.md: tcpcam password --random
    code, out, err = run(["password", "--random"], capsys, monkeypatch)
    path = tmp_path / "recordings" / "web-auth.json"
    assert code == 0 and "recordings/web-auth.json" in err
    password = out.strip()
    assert verifyPassword(password, stored(path)["password"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # docs/recorder.md: tcpcam password --token
    code, out, err = run(["password", "--token"], capsys, monkeypatch)
    token = out.strip()
    assert code == 0 and "Authorization: Bearer" in err
    assert stored(path)["token"] == hashToken(token)
    assert verifyPassword(password, stored(path)["password"])  # a new token leaves the password alone
    # A new password leaves the token alone.
    code, _, _ = run(["password", "--stdin"], capsys, monkeypatch, stdin="my own password\n")
    assert code == 0 and verifyPassword("my own password", stored(path)["password"])
    assert stored(path)["token"] == hashToken(token)


def test_out_config_and_auth_file_options_say_where(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # docs/recorder.md: tcpcam password --out /srv/recordings (here a folder in tmp_path)
    code, _, _ = run(["password", "--out", "srv", "--random"], capsys, monkeypatch)
    assert code == 0 and (tmp_path / "srv" / "web-auth.json").exists()
    config = tmp_path / "recorder.toml"
    config.write_text('out = "from-config"\n')
    code, _, _ = run(["password", "--config", str(config), "--random"], capsys, monkeypatch)
    assert code == 0 and (tmp_path / "from-config" / "web-auth.json").exists()
    code, _, _ = run(["password", "--web-auth-file", "state/auth.json", "--random"], capsys, monkeypatch)
    assert code == 0 and (tmp_path / "state" / "auth.json").exists()


@pytest.mark.parametrize("argv, stdin, message", [
    (["--stdin"], "short\n", "at least 8 characters"),
    (["--stdin"], "x" * 2000 + "\n", "at most 1024 bytes"),
    ([], "", "no terminal"),
    (["--config", "/nonexistent/recorder.toml", "--random"], None, "cannot read config file"),
])
def test_mistakes_are_one_line(tmp_path, capsys, monkeypatch, argv, stdin, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["password"] + argv, capsys, monkeypatch, stdin=stdin if stdin is not None else "")
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "recordings").exists()


def test_an_unwritable_place_is_one_line(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, out, err = run(["password", "--out", str(blocker), "--random"], capsys, monkeypatch)
    assert code == 1 and out == "" and "cannot write" in err and len(err.strip().splitlines()) == 1


def test_a_broken_file_is_replaced(tmp_path, capsys, monkeypatch):
    path = tmp_path / "recordings" / "web-auth.json"
    path.parent.mkdir()
    path.write_text("{broken")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["password", "--random"], capsys, monkeypatch)
    assert code == 0 and "writing a new file" in err
    assert verifyPassword(out.strip(), stored(path)["password"])


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_asks_twice_on_a_terminal(tmp_path, capsys, monkeypatch):
    # docs/recorder.md: tcpcam password
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", Terminal())
    answers = iter(["typed password", "typed password", "first try", "second try"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["password"]) == 0
    assert verifyPassword("typed password", stored(tmp_path / "recordings" / "web-auth.json")["password"])
    assert capsys.readouterr().out == ""  # a typed password is never printed
    assert main(["password"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
