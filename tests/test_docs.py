"""Every command shown in README.md and docs/*.md is run here.

Every fenced block must name its language. The ``sh`` blocks hold the
commands: one per line (a line ending in a backslash goes on), ``#``
starts a comment, ``&&`` chains commands. Each document's commands run in
order, in one fresh working folder that holds a copy of the project (the
README's ``pip install .`` installs it), with ``HOME`` in that folder and
this environment's ``tcpcam``, ``twistd`` and ``python`` first on ``PATH``.
Every child starts with SIGINT ignored, as a script's background job does,
so Ctrl-C must work however this suite was started.

Each command is matched to exactly one kind below; a command that no kind
takes fails the test, so nothing is skipped silently:

``install``
    ``python3 -m venv .venv``, ``pip install .``: run for real, with no
    download: the new venv sees this environment's packages (all but tcpcam)
    through a ``.pth`` file, and pip runs with no index. A bare ``pip install
    .`` installs into such a venv too. Twisted's own ``twistd`` script is not
    in that venv (Twisted is not installed into it), so ``.venv/bin/twistd``
    and, after ``pip install .``, ``twistd`` run as the venv's Python running
    twistd's entry point, finding the freshly installed plugins.
``ci``
    the README's test command (the whole tox matrix) is what CI runs: the
    test checks that ``.ci/run`` runs exactly it, and does not start the
    matrix from inside itself.
``pytest``
    ``python -m pytest ...``: run in the repository with ``--collect-only``;
    the tests it names are this very suite, run by tox.
``get``
    ``tcpcam get HOST PORT PIN CMD ...``: HOST and PORT are rewritten to a
    local ``tcpcam serve --pin PIN --key KEY`` on a free loopback port (one
    random device key for the whole document; a ``--key`` shown is
    rewritten to it). N > 0 runs to
    its end (exit status 0, the output written); a stream (N <= 0) runs until
    its first file, then gets SIGINT (exit status 130).
``remote``
    ``tcpcam info HOST``, ``tcpcam set HOST NAME=VALUE ...``: HOST becomes
    the document's local ``tcpcam serve`` (``--port`` set to it) and a
    ``--key`` shown is rewritten to the document's key; it must exit 0,
    ``info`` printing one JSON object with the device's facts, ``set`` every
    setting it asked for.
``server``
    ``tcpcam serve``, ``twistd -n tcpcam-server``, ``tcpcam firmware
    simulate``: the listening address is rewritten to a free loopback port
    (added when the command leaves the default); it runs until it has served
    one frame to a client, then gets SIGINT (``tcpcam``) or SIGTERM
    (``twistd``) and must stop cleanly within a bound.
``recorder``
    ``twistd -n tcpcam-record``, ``tcpcam record``: camera endpoints are
    rewritten to a local ``tcpcam serve`` with the camera's PIN, keys and key
    files to the document's key (then the recorder must say the camera
    speaks protocol 2), ``--web`` to a free loopback port; it runs until a
    picture is recorded, then is stopped as above.
``dry-run``
    ``tcpcam firmware flash`` and ``deploy`` need a board: they run with
    ``--dry-run`` (added when absent) and must print the esptool or mpremote
    command; a missing ``--image`` is made (an ESP image header and zeros).
``export``
    ``tcpcam export CAMERA [--from A --to B | --event ID] FILE``: the
    camera's store is first given real frames over the asked span (and
    motion events up to ID), written with the recorder's own store; the
    command must exit 0 and leave a whole MP4 (``ftyp`` box) and no other
    file.
``convert``
    ``tcpcam convert``: ``-r DIR`` is rewritten to ``./recordings``; it must
    exit 0 and index the old JPEG tree of ``recordings/door``.
``ffmpeg``
    ``ffmpeg ... -i http://127.0.0.1:8080/NAME/play.mjpg?from=A&to=B ...
    FILE``: the camera's store is given a frame a second over the span, a
    token is made (``tcpcam password --token``), a recorder of that camera
    serves its web interface on a free port; ffmpeg (Debian's) must exit 0
    and FILE must hold exactly those frames' JPEGs.
``password``
    ``tcpcam password``: ``--random`` runs as shown; the asking form runs on
    a pseudo-terminal that types the same password twice. Either must exit
    0 and leave a new ``recordings/web-auth.json``.
``update``
    ``tcpcam firmware update HOST ...``: HOST, ``--port`` and ``--key``
    are rewritten to a simulated board (the firmware under the unix
    MicroPython, with the document's key) on a free loopback port; the
    command must exit 0 and say ``updated``, the board must reset itself,
    and once started again it must say the new application serves.
``as-is``
    ``tcpcam firmware config``, ``bundle``: run as shown.

Files the commands expect, as a user would have them, are made first:
``sample.jpg``, a recording in ``recordings/door``, ``~/pictures`` with
JPEG files, and ``cameras.toml`` (the TOML example of docs/recorder.md,
with its endpoints, ``out`` and ``web`` rewritten as above).

``docs/fleet.md`` is the one document run elsewhere: its commands start
nats-server and SeaweedFS, which come with the ``fleet`` extra, so
``tests/fleet/test_fleet_docs.py`` runs every one of them in the ``fleet``
tox env (addresses swapped for loopback ports, as here); this suite checks
that the two read the same commands from the page, and its blocks' languages.

Python, TOML, JSON, INI and text blocks are examples, not commands. A
``bash`` block is one script (a pipeline, say): it runs whole under
``bash -c`` and must exit 0; its output is checked where the page says.
"""

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from install_support import PIP_ENV, buildable, copyProject, seeThisEnvironment

from tcpcam.cli import get as get_command
from tcpcam.cli import info as info_command
from tcpcam.cli import set as set_command
from tcpcam.common.jpeg import jpegProblem
from tcpcam.core import device_config
from tcpcam.core.mac import KEY_BYTES, key_text

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md"] + sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md"))
#: Documents whose commands a test of another tox env runs (see the module docstring).
RUN_ELSEWHERE = {"docs/fleet.md": "tests/fleet/test_fleet_docs.py"}
#: Bound on one wait (a server to listen, a frame, a picture, a process to end), in seconds.
WAIT = 60.0
#: The entry point of twistd, for a Python that has no twistd script.
TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: Languages of blocks that are examples rather than commands.
EXAMPLES = ("python", "toml", "json", "ini", "text")
#: Shell words that are not arguments.
OPERATORS = ("&&", ">", ">>", "<", "|")
#: The camera endpoints in the documents: tcp:host=ADDRESS:port=PORT.
ENDPOINT = re.compile(r"tcp:host=[^:]+:port=\d+")

FENCE = re.compile(r"^( *)```(.*)$")
#: A recorder's playback stream: http://127.0.0.1:8080/NAME/play.mjpg?from=T&to=T...
PLAYBACK = re.compile(r"^http://127\.0\.0\.1:8080/(?P<camera>[^/]+)/play\.mjpg\?(?P<query>.*)$")


def fencedBlocks(path):
    """``(line, language, text)`` of every fenced block of a Markdown file."""
    found = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match:
            indent, language = len(match.group(1)), match.group(2).strip()
            start = index
            body = []
            index += 1
            while index < len(lines) and not FENCE.match(lines[index]):
                body.append(lines[index][indent:])
                index += 1
            found.append((start + 1, language, "\n".join(body)))
        index += 1
    return found


def shellCommands(text):
    """The commands of an ``sh`` block, each a list of words (comments and continuations resolved)."""
    commands = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words:
            commands.append(words)
    assert not pending, "a continued line ends the block"
    return commands


def chained(words):
    """The commands of ``a && b && c``."""
    parts, current = [], []
    for word in words:
        if word == "&&":
            parts.append(current)
            current = []
        else:
            current.append(word)
    return parts + [current]


#: Words the shell may see unquoted: globs (``test_record*.py``), ``~/`` paths, ``NAME=value``.
PLAIN = re.compile(r"^[\w@%+=:,./*~-]+$")


def shellText(words):
    """``words`` as a shell command line: operators, globs, ``~/`` paths stay unquoted."""
    return " ".join(word if word in OPERATORS or PLAIN.match(word) else shlex.quote(word) for word in words)


def freePort():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def optionValue(words, flag, default=None):
    """The value after ``flag`` (or in ``flag=value``) in ``words``."""
    for index, word in enumerate(words):
        if word == flag and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(flag + "="):
            return word[len(flag) + 1:]
    return default


def withOption(words, flag, value):
    """``words`` with ``flag value`` replacing any value given, or added."""
    result, index = [], 0
    while index < len(words):
        if words[index] == flag:
            index += 2
            continue
        if words[index].startswith(flag + "="):
            index += 1
            continue
        result.append(words[index])
        index += 1
    return result + [flag, value]


def fetchOne(port, pin, deadline, process=None):
    """One frame from the TCPCam server on ``port`` (retried until ``deadline`` or ``process`` ends), or None."""
    while time.monotonic() < deadline and (process is None or process.poll() is None):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(pin.encode() + b"\n1\n")
                data = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if len(data) >= 4 and len(data) == 4 + int.from_bytes(data[:4], "big"):
                return data[4:]
        except OSError:
            pass
        time.sleep(0.2)
    return None


def _ignoreInterrupt():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Child:
    """A long-running command: started, waited for, stopped, all bounded."""

    def __init__(self, argv, cwd, env, stopWith):
        self.argv = argv
        self.stopWith = stopWith
        self.output = open(os.path.join(cwd, ".child-%d.log" % time.monotonic_ns()), "w+b")
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.output, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=_ignoreInterrupt)

    def text(self):
        """Everything the child wrote so far (all of it, once stopped)."""
        if self.output.closed:
            return self.final
        self.output.flush()
        self.output.seek(0)
        return self.output.read().decode(errors="replace")

    def waitFor(self, predicate, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError("%s exited (%s) before %s:\n%s" % (self.argv, self.process.returncode, what,
                                                                       self.text()))
            time.sleep(0.1)
        raise AssertionError("no %s within %g s from %s:\n%s" % (what, WAIT, self.argv, self.text()))

    def stop(self):
        """Send the stop signal; returns the exit status (fails if it takes longer than the bound)."""
        if self.process.poll() is None:
            self.process.send_signal(self.stopWith)
        try:
            return self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT)
            raise AssertionError("%s ignored signal %d:\n%s" % (self.argv, self.stopWith, self.text())) from None
        finally:
            self.final = self.text()
            self.output.close()


class DocumentRun:
    """Runs one document's commands in order, in one working folder."""

    def __init__(self, tmp_path, document):
        self.document = document
        self.tmp_path = tmp_path
        self.work = tmp_path / "work"
        copyProject(str(self.work))
        home = tmp_path / "home"
        (home / "pictures").mkdir(parents=True)
        picture = (REPO / "firmware" / "test.jpg").read_bytes()
        for index in range(3):
            (home / "pictures" / ("%d.jpg" % index)).write_bytes(picture)
        (self.work / "sample.jpg").write_bytes(picture)
        day = self.work / "recordings" / "door" / "2024-05-06"
        day.mkdir(parents=True)
        for index in range(3):
            (day / ("07-08-%02d.000_%d.jpg" % (index, index))).write_bytes(picture)
        self.bin = os.path.dirname(sys.executable)
        self.env = dict(os.environ, HOME=str(home), PATH=self.bin + os.pathsep + os.environ.get("PATH", ""),
                        PYTHONUNBUFFERED="1")
        self.env.pop("PYTHONPATH", None)
        self.venv = None
        self.servers = {}
        self.kinds = []
        # The cameras' device key: every local server speaks protocol 2 with it (and legacy with the PIN).
        self.key = key_text(os.urandom(KEY_BYTES))
        self.keyFile = self.work / "camera.key"
        self.keyFile.write_text(self.key + "\n")
        self.keyFile.chmod(0o600)

    # The pieces every kind uses.

    def server(self, pin):
        """The port of a local ``tcpcam serve --pin PIN`` (started the first time)."""
        if pin not in self.servers:
            port = freePort()
            child = Child([os.path.join(self.bin, "tcpcam"), "serve", "--listen", "tcp:%d:interface=127.0.0.1" % port,
                           "--pin", pin, "--key", self.key, "--interval-ms", "50"], str(self.work), self.env,
                          signal.SIGINT)
            self.servers[pin] = (port, child)
            assert fetchOne(port, pin, time.monotonic() + WAIT, child.process) is not None, child.text()
        return self.servers[pin][0]

    def stopServers(self):
        for _, child in self.servers.values():
            child.stop()

    def run(self, words, cwd=None, env=None, timeout=WAIT):
        done = subprocess.run(["sh", "-c", shellText(words)], cwd=str(cwd or self.work), env=env or self.env,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              preexec_fn=_ignoreInterrupt)
        return done.returncode, done.stdout + done.stderr

    def start(self, words, stopWith):
        return Child(["sh", "-c", "exec " + shellText(words)], str(self.work), self.env, stopWith)

    def twistdWords(self, words):
        """``twistd ARGS`` as it runs here: the installed venv's twistd once ``pip install .`` ran."""
        if os.path.basename(words[0]) != "twistd":
            return words
        if self.venv is not None or words[0].startswith(".venv/"):
            assert self.venv is not None, "%s before the venv was made" % words
            return [str(self.venv / "bin" / "python"), "-c", TWISTD, *words[1:]]
        return words

    # The kinds.

    def command(self, words):
        """Run one command line of the document (a chain of commands joined by ``&&``)."""
        parts = chained(words)
        if any(os.path.basename(part[0]) == "tox" for part in parts):
            self.kinds.append("ci")
            self.run_ci(words)
            return
        for part in parts:
            kind = self.kindOf(part)
            self.kinds.append(kind)
            getattr(self, "run_" + kind.replace("-", "_"))(part)

    def kindOf(self, words):
        first = os.path.basename(words[0])
        rest = words[1:]
        if first.startswith("python") and rest[:2] == ["-m", "venv"] or first == "pip" and rest[:1] == ["install"]:
            return "install"
        if "-m" in rest and "pytest" in rest and (first.startswith("python") or "=" in words[0]):
            return "pytest"
        if "=" in words[0] and rest:   # VARIABLE=value command ...
            return self.kindOf(rest)
        if first == "twistd":
            plugin = [word for word in rest if not word.startswith("-")][:1]
            if plugin == ["tcpcam-server"]:
                return "server"
            if plugin in (["tcpcam-record"], ["tcpcam"]):
                return "recorder"
        if first == "tcpcam":
            if rest[:1] == ["get"]:
                return "get"
            if rest[:1] in (["info"], ["set"]):
                return "remote"
            if rest[:1] == ["serve"] or rest[:2] == ["firmware", "simulate"]:
                return "server"
            if rest[:1] == ["record"]:
                return "recorder"
            if rest[:2] in (["firmware", "flash"], ["firmware", "deploy"]):
                return "dry-run"
            if rest[:2] in (["firmware", "config"], ["firmware", "bundle"]):
                return "as-is"
            if rest[:2] == ["firmware", "update"]:
                return "update"
            if rest[:1] in (["export"], ["convert"], ["password"]):
                return rest[0]
        if first == "ffmpeg" and any(PLAYBACK.match(word) for word in rest):
            return "ffmpeg"
        raise AssertionError("%s: no way to run %r: add it to tests/test_docs.py" % (self.document, shellText(words)))

    def run_install(self, words):
        if words[0].startswith("python"):
            status, output = self.run(words, timeout=300)
            assert status == 0, output
            self.venv = self.work / words[-1]
            seeThisEnvironment(str(self.venv / "bin" / "python"), self.tmp_path / "shadow")
            return
        if self.venv is None:                       # a bare pip install .: into a venv of its own
            self.run_install(["python3", "-m", "venv", ".venv"])
            words = [".venv/bin/pip", *words[1:]]
        status, output = self.run(words, env=dict(self.env, PIP_NO_BUILD_ISOLATION="0", **PIP_ENV), timeout=300)
        assert status == 0, output
        status, output = self.run([str(self.venv / "bin" / "python"), "-c",
                                   "import tcpcam.tap.record as m; print(m.__file__)"])
        assert status == 0 and output.startswith(str(self.venv)), output

    def run_ci(self, words):
        script = (REPO / ".ci" / "run").read_text().splitlines()
        assert script[-1] == "python3 -m venv .venv && .venv/bin/pip install tox && .venv/bin/tox"
        assert shellText(words) in script[-1]

    def run_pytest(self, words):
        status, output = self.run(words + ["--collect-only", "-p", "no:randomly"], cwd=REPO, timeout=300)
        assert status == 0, output
        counts = [int(count) for count in re.findall(r"(\d+) tests? collected", output)]
        counts += [int(count) for count in re.findall(r"^\S+\.py: (\d+)$", output, re.MULTILINE)]
        assert counts and sum(counts) > 0, output

    def run_get(self, words):
        redirect = words.index(">") if ">" in words else len(words)
        parser = argparse.ArgumentParser()
        get_command.add_arguments(parser)
        args = parser.parse_intermixed_args(words[2:redirect])
        words = list(words)
        host = words.index(args.host, 2)
        port = words.index(str(args.port), host + 1)
        words[host], words[port] = "127.0.0.1", str(self.server(args.pin))
        if "--key" in words:
            words = withOption(words, "--key", self.key)
        outputs = [self.work / args.fname] if args.fname else []
        if redirect < len(words):
            outputs.append(self.work / words[redirect + 1])
        if args.cmd > 0:
            status, output = self.run(words)
            assert status == 0, output
            assert outputs and all(path.stat().st_size > 0 for path in outputs), (words, output)
            return
        assert args.split, "a stream needs --split here: %s" % words
        folder = self.work / (os.path.dirname(args.split) or ".")

        def pictures():
            return {folder / name for name in os.listdir(folder) if name.endswith(".jpg")} if folder.is_dir() else set()

        before = pictures()
        child = self.start(words, signal.SIGINT)
        child.waitFor(lambda: bool(pictures() - before), "a picture from the stream")
        status = child.stop()
        assert status == 130, status
        made = pictures() - before
        assert made and all(jpegProblem(path.read_bytes()) is None for path in made)

    def run_remote(self, words):
        parser = argparse.ArgumentParser()
        (info_command if words[1] == "info" else set_command).add_arguments(parser)
        args = parser.parse_intermixed_args(words[2:])
        words = list(words)
        words[words.index(args.host, 2)] = "127.0.0.1"
        words = withOption(words, "--port", str(self.server(args.pin)))
        if "--key" in words:
            words = withOption(words, "--key", self.key)
        status, output = self.run(words)
        assert status == 0, output
        if words[1] == "info":
            assert "name" in json.loads(output)["device"], output
        else:
            for assignment in args.settings:
                assert assignment.split("=", 1)[0] in output, (assignment, output)

    def run_server(self, words):
        port = freePort()
        pin = optionValue(words, "--pin", "1235")
        if words[0] == "tcpcam" and words[1] == "firmware":
            words = withOption(words, "--port", str(port))
        else:
            words = self.twistdWords(withOption(words, "--listen", "tcp:%d:interface=127.0.0.1" % port))
        twistd = "twistd" in words[0] or TWISTD in words
        child = self.start(words, signal.SIGTERM if twistd else signal.SIGINT)
        frame = fetchOne(port, pin, time.monotonic() + WAIT, child.process)
        assert frame is not None, "%s served nothing:\n%s" % (words, child.text())
        assert jpegProblem(frame) is None
        source = optionValue(words, "--source", "")
        if source.startswith("jpeg:"):
            assert frame == (self.work / source[5:]).read_bytes()
        status = child.stop()
        assert status in ((0, -signal.SIGTERM) if twistd else (0,)), (status, child.text())

    def run_recorder(self, words):
        config = optionValue(words, "--config")
        if config is not None:
            self.writeCameras(self.work / config)
        words = [self.rewriteCamera(word, optionValue(words, "--pin", "1235")) for word in words]
        keyed = config is not None or "--key" in words or "--key-file" in words
        if "--key-file" in words:
            words = withOption(words, "--key-file", str(self.keyFile))
        if "--key" in words:
            words = withOption(words, "--key", self.key)
        words = self.twistdWords(withOption(words, "--web", "tcp:%d:interface=127.0.0.1" % freePort()))
        out = self.work / optionValue(words, "--out", "recordings")
        before = self.recorded(out)
        twistd = TWISTD in words or os.path.basename(words[0]) == "twistd"
        child = self.start(words, signal.SIGTERM if twistd else signal.SIGINT)
        child.waitFor(lambda: bool(self.recorded(out) - before), "a recorded picture")
        status = child.stop()
        assert status in ((0, -signal.SIGTERM) if twistd else (0,)), (status, child.text())
        text = child.text()
        assert "recording " in text and "Endpoint object at" not in text, text
        assert not keyed or "speaks protocol 2" in text, text

    @staticmethod
    def recorded(out):
        """The (path, size) of every non-empty segment or picture under ``out``."""
        if not out.is_dir():
            return set()
        return {(path, path.stat().st_size) for pattern in ("*.mjpeg", "*.jpg") for path in out.rglob(pattern)
                if path.stat().st_size > 0}

    def rewriteCamera(self, word, pin):
        return ENDPOINT.sub(lambda match: "tcp:host=127.0.0.1:port=%d" % self.server(pin), word)

    def writeCameras(self, path):
        """cameras.toml: the TOML example of docs/recorder.md, rewritten to reach local servers."""
        example = [text for _, language, text in fencedBlocks(REPO / "docs" / "recorder.md") if language == "toml"]
        assert len(example) == 1
        lines = []
        pin = "1235"
        camera = []
        for line in example[0].splitlines() + ["[end]"]:
            if line.startswith("["):
                lines += [self.rewriteCamera(text, pin) for text in camera]
                camera = []
                pin = "1235"
            if line.startswith("out ="):
                line = 'out = "recordings"'
            elif line.startswith("web ="):
                line = 'web = "tcp:%d:interface=127.0.0.1"' % freePort()
            elif line.startswith("pin =") and camera:
                pin = shlex.split(line.split("=", 1)[1], comments=True)[0]
            elif line.startswith("key_file ="):
                line = "key_file = %s" % json.dumps(str(self.keyFile))
            elif line.startswith("key ="):
                line = "key = %s" % json.dumps(self.key)
            if camera or line.startswith("[cameras."):
                camera.append(line)
            elif line != "[end]":
                lines.append(line)
        path.write_text("\n".join(lines) + "\n")

    def run_dry_run(self, words):
        image = optionValue(words, "--image")
        if image is not None and not (self.work / image).exists():
            (self.work / image).write_bytes(b"\xe9" + bytes(1023))
        if "--dry-run" not in words:
            words = words + ["--dry-run"]
        status, output = self.run(words)
        assert status == 0, output
        assert ("esptool" if image is not None else "mpremote connect") in output, output

    def recordFrames(self, folder, start, end, step, events=0):
        """Write the sample picture every ``step`` s from ``start`` to before ``end`` into the store in ``folder``,
        and motion events until there are ``events``; returns how many frames were written."""
        from tcpcam.record.segments import SegmentStore

        store = SegmentStore(str(folder), sync=False)
        store.open()
        written = 0
        try:
            picture = (REPO / "firmware" / "test.jpg").read_bytes()
            while start + written * step < end:
                store.write(picture, start + written * step)
                written += 1
            store.commit(close=True)
            while events and store.saveEvent(
                    {"start_ms": int(start * 1000) + 10000, "end_ms": int(start * 1000) + 20000,
                     "peak_ms": int(start * 1000) + 15000, "peak_score": 0.5, "x0": 0, "y0": 0, "x1": 1, "y1": 1,
                     "pre_roll_ms": 5000, "post_roll_ms": 5000}) < events:
                pass
            store.db.commit()
        finally:
            store.close()
        return written

    def run_export(self, words):
        from tcpcam.cli import export as export_command

        args = argparse.ArgumentParser()
        export_command.add_arguments(args)
        asked = args.parse_args(words[2:])
        recordings = self.work / optionValue(words, "--recordings", optionValue(words, "-r", "recordings"))
        if asked.event is not None:
            start = time.time() - 3600.0
            end = start + 60.0
        else:
            start, end = asked.start, asked.end
        self.recordFrames(recordings / asked.camera, start, end, max((end - start) / 100.0, 0.1), asked.event or 0)
        before = set(self.work.iterdir())
        status, output = self.run(words, timeout=300)
        assert status == 0, output
        made = self.work / asked.file
        assert set(self.work.iterdir()) - before == {made}, sorted(set(self.work.iterdir()) - before)
        assert made.read_bytes()[4:8] == b"ftyp", output

    def run_convert(self, words):
        for flag in ("-r", "--recordings"):
            if flag in words:
                words = withOption(words, flag, "recordings")
        status, output = self.run(words, timeout=300)
        assert status == 0, output
        from tcpcam.record.footage import Footage

        footage = Footage(str(self.work / "recordings"))
        try:
            assert "2024-05-06" in footage.days("door"), output
        finally:
            footage.close()

    def run_password(self, words):
        import pty

        stored = self.work / "recordings" / "web-auth.json"
        before = stored.read_bytes() if stored.exists() else None
        if "--random" in words:
            status, output = self.run(words)
        else:
            main, terminal = pty.openpty()
            child = subprocess.Popen(["sh", "-c", "exec " + shellText(words)], cwd=str(self.work), env=self.env,
                                     stdin=terminal, stdout=terminal, stderr=terminal, preexec_fn=os.setsid)
            os.close(terminal)
            seen, typed = b"", 0
            deadline = time.monotonic() + WAIT
            try:
                while time.monotonic() < deadline:
                    try:
                        chunk = os.read(main, 4096)
                    except OSError:   # the child closed the terminal
                        break
                    if not chunk:
                        break
                    seen += chunk
                    if seen.count(b": ") > typed and typed < 2:
                        os.write(main, b"correct horse battery\n")
                        typed += 1
                status = child.wait(timeout=max(1.0, deadline - time.monotonic()))
            finally:
                os.close(main)
                if child.poll() is None:
                    child.kill()
                    child.wait()
            output = seen.decode("utf-8", "replace")
        assert status == 0, output
        assert stored.exists() and stored.read_bytes() != before, output

    def run_ffmpeg(self, words):
        import urllib.parse

        url = next(PLAYBACK.match(word) for word in words if PLAYBACK.match(word))
        query = dict(urllib.parse.parse_qsl(url.group("query")))
        start, end = float(query["from"]), float(query["to"])
        count = self.recordFrames(self.work / "recordings" / url.group("camera"), start, end, 1.0)
        status, token = self.run(["tcpcam", "password", "--token"])
        assert status == 0, token
        token = token.split()[0]
        web = freePort()
        recorder = self.start(["tcpcam", "record", "--camera", "%s=tcp:host=127.0.0.1:port=%d" % (
            url.group("camera"), self.server("1235")), "--web", "tcp:%d:interface=127.0.0.1" % web], signal.SIGINT)
        try:
            recorder.waitFor(lambda: "web interface on" in recorder.text(), "the web interface")
            words = [word.replace("127.0.0.1:8080", "127.0.0.1:%d" % web).replace("Bearer TOKEN", "Bearer " + token)
                     for word in words]
            output = self.work / words[-1]
            status, said = self.run(words, timeout=120)
            assert status == 0, said
        finally:
            stopped = recorder.stop()
        assert stopped == 0, recorder.text()
        picture = (REPO / "firmware" / "test.jpg").read_bytes()
        assert output.read_bytes() == picture * count, (output.stat().st_size, count, len(picture))

    def run_update(self, words):
        from tcpcam.board import simulate as firmware_simulate

        port = freePort()
        device = firmware_simulate.prepare(self.tmp_path / ("board-%d" % port),
                                           {"bind": "127.0.0.1", "port": port, "key": self.key, "source": "hello"})
        argv, env, cwd = firmware_simulate.command(device)

        def power_on():
            board = Child(argv, cwd, env, signal.SIGKILL)
            board.waitFor(lambda: "server: listening" in board.text(), "the board listening")
            return board

        board = power_on()
        try:
            words = list(words)
            words[3] = "127.0.0.1"
            words = withOption(withOption(words, "--port", str(port)), "--key", self.key)
            status, output = self.run(words, timeout=300)
            assert status == 0 and output.startswith("updated 127.0.0.1 port %d: " % port), output
            board.waitFor(lambda: board.process.poll() is not None, "the board resetting into the update")
        finally:
            board.stop()
        board = power_on()
        try:
            board.waitFor(lambda: "serves: it is the good application now" in board.text(), "the update serving")
        finally:
            board.stop()

    def run_as_is(self, words):
        status, output = self.run(words)
        assert status == 0, output


def test_every_fenced_block_names_its_language():
    for document in DOCUMENTS:
        for line, language, _ in fencedBlocks(REPO / document):
            assert language in ("sh", "bash") + EXAMPLES, "%s:%d: a fenced block must say its language" % (
                document, line)


def test_the_documents_show_commands():
    commands = [words for document in DOCUMENTS for _, language, text in fencedBlocks(REPO / document)
                if language == "sh" for words in shellCommands(text)]
    assert len(commands) > 20


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not buildable(), reason="installing tcpcam with no index needs setuptools>=70.1 or wheel")
@pytest.mark.parametrize("document", [document for document in DOCUMENTS if document not in RUN_ELSEWHERE])
def test_every_command_runs(tmp_path, document):
    run = DocumentRun(tmp_path, document)
    try:
        for line, language, text in fencedBlocks(REPO / document):
            if language == "bash":
                done = subprocess.run(["bash", "-c", text], cwd=str(run.work), env=run.env,
                                      capture_output=True, text=True, timeout=WAIT)
                assert done.returncode == 0, "%s:%d: %s" % (document, line, done.stdout + done.stderr)
                run.kinds.append("bash")
                continue
            if language != "sh":
                continue
            for words in shellCommands(text):
                try:
                    run.command(words)
                except AssertionError as error:
                    raise AssertionError("%s:%d: %s: %s" % (document, line, shellText(words), error)) from None
    finally:
        run.stopServers()
    assert run.kinds, "%s shows no command" % document


@pytest.mark.parametrize("document", sorted(RUN_ELSEWHERE))
def test_the_documents_run_elsewhere_are_run_command_by_command(document, monkeypatch):
    import importlib.util

    script = REPO / RUN_ELSEWHERE[document]
    monkeypatch.syspath_prepend(str(script.parent))  # for its helpers
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shown = [shellText(words) for _, language, text in fencedBlocks(REPO / document) if language == "sh"
             for words in shellCommands(text)]
    assert len(shown) >= 5 and [shellText(shlex.split(line)) for line in module.docCommands()] == shown


def test_the_benchmark_commands_of_the_readme_table_are_accepted():
    # The figures are measured by hand (bench/ is not part of the suite): here
    # each command's script must exist and take the arguments shown.
    import importlib.util

    table = (REPO / "README.md").read_text().split("## Benchmarks", 1)[1]
    commands = re.findall(r"`python (bench/\S+\.py)([^`]*)`", table)
    assert len(commands) >= 5
    for script, arguments in commands:
        spec = importlib.util.spec_from_file_location("bench_" + Path(script).stem, REPO / script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.build_parser().parse_args(shlex.split(arguments))


def test_the_firmware_page_lists_every_config_key_with_its_default():
    page = (REPO / "docs" / "firmware.md").read_text().split("## config.json keys", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in page.splitlines() if line.startswith("| ") and "---" not in line][1:]
    listed = {}
    for keys, defaults in rows:
        names = [name.strip() for name in keys.split(",")]
        values = [value.strip() for value in defaults.split(",")]
        for index, name in enumerate(names):
            listed[name] = values[min(index, len(values) - 1)]
    for option in device_config.SCHEMA.options:
        assert option.name in listed, "docs/firmware.md does not list %s" % option.name
        shown = listed[option.name].strip('"')
        default = option.default
        expected = str(default).lower() if isinstance(default, bool) else str(default)
        assert shown == expected, "%s: the page says %s, the default is %r" % (option.name, shown, default)
