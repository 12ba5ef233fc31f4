"""Updates over WiFi under the real unix MicroPython: every fault leaves the board running the old application.

A "board" is a device folder (the factory application in ``lib/``) and its
flash, a littlefs image (``firmware/simulator/board_flash.py``) that holds
the update slots and the boot state. A reset ends the micropython process
(SIGKILL, as the stand-in ``machine.reset()`` does); a power cut is a
``kill -9`` from the test; a reboot is a new process on the same folder and
image. Updates are sent by the real client: ``tcpcam firmware update`` in
a child process, or the Twisted client in this process where a test must
send something a correct client never would.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from firmware_support import BASE_CONFIG, WAIT, Console, free_port, needs_micropython, run_micropython
from twisted.internet import defer, reactor, task

from tcpcam.board import bundle as firmware_bundle
from tcpcam.board import simulate as firmware_simulate
from tcpcam.client.camera import RequestRefused, connectCamera
from tcpcam.core import limits, update
from tcpcam.core.client_role2 import ProtocolMemory
from tcpcam.core.errors import TCPCamError
from tcpcam.core.mac import key_text

pytestmark = needs_micropython

KEY = key_text(bytes(range(31, 51)))
#: Exit status of a process the stand-in machine.reset() (or a kill -9) ended.
RESET_STATUS = -signal.SIGKILL
TCPCAM = [sys.executable, "-m", "tcpcam"]
#: The application of the new bundles prints this at import, with its variant.
MARK = "new application:"


def new_bundle(folder, version, app_prefix="", app_replacement=None, base=None):
    """A bundle whose version is ``version`` and whose app.py starts with ``app_prefix`` (or is replaced).

    With ``base`` (a .mpy bundle) the rest is a copy of it: a third of the
    bytes of a .py bundle, so the transfers take less time.
    """
    folder = Path(folder)
    if base is None:
        firmware_bundle.write_bundle(folder, replace=True)
    else:
        shutil.copytree(base, folder)
    sources = firmware_bundle.firmware_files()
    for name in ("lib/tcpcam/__init__.mpy", "lib/tcpcam_fw/app.mpy"):
        (folder / name).unlink(missing_ok=True)
    (folder / "lib/tcpcam/__init__.py").write_text("__version__ = %r\n" % version)
    body = app_replacement if app_replacement is not None else (sources / "tcpcam_fw" / "app.py").read_text()
    (folder / "lib/tcpcam_fw/app.py").write_text("print(%r)\n%s\n%s" % ("%s %s" % (MARK, version), app_prefix, body))
    return folder


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """The new applications: good (as .py too), slow to start, crashing, never serving."""
    root = tmp_path_factory.mktemp("bundles")
    base = root / "base"
    firmware_bundle.write_bundle(base, mpy=True)
    return {
        "good": new_bundle(root / "good", "9.1", base=base),
        "good.py": new_bundle(root / "good.py", "9.1"),
        "other": new_bundle(root / "other", "9.2", base=base),
        "slow": new_bundle(root / "slow", "9.3", "import time\ntime.sleep_ms(5000)\n", base=base),
        "crash": new_bundle(root / "crash", "9.4", "raise RuntimeError('this application is broken')\n", base=base),
        "hang": new_bundle(root / "hang", "9.5", base=base, app_replacement=(
            "import time\ndef main():\n    while True:\n        time.sleep_ms(1000)\n")),
        "small": new_bundle(root / "small", "9.6", base=base),
    }


class Board:
    """One simulated board: its folder and flash, run and power-cycled as micropython processes."""

    def __init__(self, workdir, config=None, flash_blocks=None):
        self.workdir = Path(workdir)
        self.port = free_port()
        settings = dict(BASE_CONFIG, key=KEY, source="hello", interval_ms=50, port=self.port, **(config or {}))
        self.device = firmware_simulate.prepare(self.workdir, settings)
        self.flash_blocks = flash_blocks
        self.cause = self.workdir / "cause"
        self.process = None
        self.console = None

    def env(self):
        argv, env, cwd = firmware_simulate.command(self.device)
        env[firmware_simulate.RESET_CAUSE_VARIABLE] = str(self.cause)
        if self.flash_blocks:
            env[firmware_simulate.FLASH_BLOCKS_VARIABLE] = str(self.flash_blocks)
        return argv, env, cwd

    def start(self, wait="server: listening"):
        """Power on; wait for ``wait`` on the console (None: do not wait)."""
        argv, env, cwd = self.env()
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.console = Console(self.process, "board")
        if wait:
            self.wait_for(wait)
        return self

    def wait_for(self, needles, timeout=WAIT):
        return self.console.wait_for(needles, timeout)

    def ended(self, timeout=WAIT):
        """Wait for the process to end by itself (a reset) and for its last console line; its exit status."""
        status = self.process.wait(timeout)
        deadline = time.monotonic() + timeout
        self.console.drain()
        while not self.console.ended and time.monotonic() < deadline:
            time.sleep(0.05)  # the reader thread takes what the pipe still holds
            self.console.drain()
        return status

    def power_cut(self):
        """kill -9, as pulling the plug."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait(WAIT)

    def stop(self):
        if self.process is not None:
            self.power_cut()

    def said(self, needle):
        return [line for line in self.console.drain() if needle in line]

    def flash(self):
        """What the flash holds: the update slots' folders and the boot state (read by a separate process)."""
        argv, env, cwd = self.env()
        script = ("import os, board_flash\nboard_flash.mount('/slots')\nprint(sorted(os.listdir('/slots')))\n"
                  "try:\n print(open('/slots/state.json').read())\nexcept OSError:\n print('{}')\n")
        result = subprocess.run(argv[:-1] + ["-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                                timeout=WAIT, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        names, state = result.stdout.splitlines()[:2]
        return eval(names), json.loads(state)  # noqa: S307 - the list printed by our own script


class Reachable:
    """A board known only by its port (one that ``tcpcam firmware simulate`` runs)."""

    def __init__(self, port):
        self.port = port


def send(board, folder, *options, key=KEY):
    """``tcpcam firmware update`` of ``folder`` to ``board``: (exit status, stdout, stderr)."""
    argv = TCPCAM + ["firmware", "update", "127.0.0.1", "--port", str(board.port), "--key", key, "--timeout", "20"]
    argv += ["--bundle", str(folder)] if folder else []
    done = subprocess.run(argv + list(options), capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def info(board):
    """What ``tcpcam info`` says: device facts and health."""
    done = subprocess.run(TCPCAM + ["info", "127.0.0.1", "--port", str(board.port), "--key", KEY],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def runs(board, slot, version, rolled_back=False):
    """The board serves the application of ``slot`` at ``version`` (through a real client)."""
    said = info(board)
    health = said["health"]
    assert (health["app_slot"], health["app_version"]) == (slot, version), health
    assert said["device"]["firmware"] == "tcpcam %s" % version
    assert health["app_trial"] is False and health["update_rolled_back"] is rolled_back


@pytest.fixture
def board(tmp_path):
    made = []

    def make(config=None, flash_blocks=None):
        made.append(Board(tmp_path / ("board%d" % len(made)), config, flash_blocks))
        return made[-1]

    yield make
    for each in made:
        each.stop()


def factory_version():
    import tcpcam

    return tcpcam.__version__


def test_the_loaders_bounds_are_the_cores():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tcpcam_boot", firmware_bundle.firmware_files() / "tcpcam_boot.py")
    loader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loader)
    assert (loader.TRIAL_MS, loader.MIN_TRIAL_MS, loader.MAX_TRIAL_MS, loader.TRIAL_BOOTS) == (
        limits.UPDATE_TRIAL_MS, limits.MIN_UPDATE_TRIAL_MS, limits.MAX_UPDATE_TRIAL_MS, limits.UPDATE_TRIAL_BOOTS)
    assert loader.SLOTS == ("a", "b") and update.BUNDLE_DIRS == ("tcpcam", "tcpcam/core", "tcpcam_fw")


def test_an_update_runs_after_its_trial_and_the_next_one_takes_the_other_slot(board, bundles):
    camera = board().start()
    with Streaming(camera.port) as stream:
        status, out, err = send(camera, bundles["good.py"])
        frames_during = stream.frames
    assert status == 0, err
    files = len(firmware_bundle.update_files(bundles["good.py"]))
    assert out.startswith("updated 127.0.0.1 port %d: tcpcam 9.1, %d files," % (camera.port, files)) and err == ""
    assert out.count("\n") == 1
    assert frames_during > 3, "the old application kept serving while the bundle was written"
    assert camera.ended() == RESET_STATUS and camera.said("update: stored; resetting to start it")
    slots, state = camera.flash()
    assert slots == ["a", "state.json"] and state["try"] == "a" and state["good"] == "factory"
    camera.start()
    assert camera.said("boot: trying update tcpcam 9.1 in slot a (trial boot 1 of 1")
    assert camera.said("%s 9.1" % MARK) and camera.wait_for("slot a serves: it is the good application now")
    runs(camera, "a", "9.1")
    camera.power_cut()
    camera.start()
    assert not camera.said("trying update")
    runs(camera, "a", "9.1")
    assert send(camera, bundles["other"])[0] == 0
    camera.ended()
    camera.start()
    camera.wait_for("slot b serves")
    runs(camera, "b", "9.2")
    slots, state = camera.flash()
    assert slots == ["a", "b", "state.json"] and state["good"] == "b" and state["try"] is None


class Streaming:
    """A legacy client streaming from the board in a thread; counts the frames it gets."""

    def __init__(self, port):
        import socket
        import threading

        self.frames = 0
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self._sock.sendall(b"1235\n0\n")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        from tcpcam.core.framing import FrameDecoder

        decoder = FrameDecoder()
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    return
                self.frames += len(decoder.feed(data))
        except OSError:
            return

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._sock.close()
        self._thread.join(WAIT)


def test_a_wrong_key_is_refused_and_nothing_is_written(board, bundles):
    camera = board().start()
    status, out, err = send(camera, bundles["good"], key=key_text(bytes(20)))
    assert status == 1 and out == ""
    assert err.startswith("tcpcam firmware update: error: ") and "key" in err and err.count("\n") == 1, err
    camera.wait_for("wrong key")
    assert not camera.said("sends update")
    assert camera.process.poll() is None
    assert camera.flash() == ([], {})
    camera.power_cut()
    camera.start()
    runs(camera, "factory", factory_version())


def test_an_update_needs_a_key_and_a_bundle(tmp_path):
    done = subprocess.run(TCPCAM + ["firmware", "update", "127.0.0.1"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, TCPCAM_KEY=""), check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "device key" in done.stderr
    done = subprocess.run(TCPCAM + ["firmware", "update", "127.0.0.1", "--key", KEY, "--bundle", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not a firmware bundle" in done.stderr


def test_a_power_cut_during_the_transfer_leaves_the_old_application(board, bundles):
    camera = board().start()
    argv = TCPCAM + ["firmware", "update", "127.0.0.1", "--port", str(camera.port), "--key", KEY, "--timeout", "10",
                     "--bundle", str(bundles["good"])]
    client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        camera.wait_for("sends update")
        assert camera.power_cut() == RESET_STATUS
        out, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 1 and out == "" and err.count("\n") == 1, err
    assert "stored" not in "".join(camera.console.lines)
    assert camera.flash()[1] == {}
    camera.start()
    runs(camera, "factory", factory_version())


@pytest_twisted.inlineCallbacks
def test_half_a_bundle_left_by_a_power_cut_is_removed_at_the_next_boot(board, bundles):
    camera = board().start()
    client = yield open_camera(camera.port)
    connection = client.connection
    connection.finished.addErrback(lambda _: None)
    sender = sender_of(bundles["good"])
    yield connection.request("update-begin", **sender.begin)
    for _ in range(20):
        yield connection.request("update-chunk", **sender.next_chunk())
    pending = connection.request("update-chunk", **sender.next_chunk())
    camera.power_cut()
    with pytest.raises(TCPCamError):
        yield pending
    slots, state = camera.flash()
    assert slots == ["a"] and state == {}, "half a bundle in slot a, named nowhere"
    camera.start()
    assert camera.said("boot: removed the bundle in slot a, which is neither good nor to try")
    runs(camera, "factory", factory_version())
    assert camera.flash() == ([], {})


@defer.inlineCallbacks
def open_camera(port):
    camera = yield connectCamera(reactor, "tcp:host=127.0.0.1:port=%d" % port, key=KEY, memory=ProtocolMemory(),
                                 frameTimeout=10)
    return camera


def sender_of(folder, tamper=False):
    files = firmware_bundle.update_files(folder)
    sender = update.UpdateSender(files, "tampered" if tamper else "9.1")
    if tamper:
        begin = sender.begin
        name, data = files[-1]
        files[-1] = (name, data[:-1] + bytes([data[-1] ^ 1]))
        sender = update.UpdateSender(files, "tampered")
        sender.begin = dict(sender.begin, sha256=begin["sha256"])
    return sender


@pytest_twisted.inlineCallbacks
def test_a_bundle_whose_digest_does_not_match_is_refused_and_forgotten(board, bundles):
    camera = board().start()
    client = yield open_camera(camera.port)
    try:
        with pytest.raises(RequestRefused, match="digest"):
            yield client.update(sender_of(bundles["good"], tamper=True), answerTimeout=20)
    finally:
        yield client.close()
    camera.wait_for("update: removed the unfinished bundle from slot a")
    assert camera.flash() == ([], {}), "the abandoned slot is removed"
    assert camera.process.poll() is None
    camera.power_cut()
    camera.start()
    runs(camera, "factory", factory_version())


@pytest_twisted.inlineCallbacks
def test_a_chunk_altered_on_the_way_ends_the_connection_and_the_update(board, bundles):
    camera = board().start()
    client = yield open_camera(camera.port)
    connection = client.connection
    sender = sender_of(bundles["good"])
    yield connection.request("update-begin", **sender.begin)
    _, write = connection.role.request("update-chunk", connection.now(), **sender.next_chunk())
    altered = bytearray(write.head)
    altered[-10] ^= 0x20
    connection.transport.write(bytes(altered))
    with pytest.raises(TCPCamError, match="bad-message|MAC"):
        yield connection.finished
    camera.wait_for("update: removed the unfinished bundle from slot a")
    assert camera.flash() == ([], {})
    runs(camera, "factory", factory_version())


def test_a_bundle_bigger_than_the_free_space_is_refused_before_writing(board, bundles):
    camera = board(flash_blocks=48).start()
    status, out, err = send(camera, bundles["good.py"])
    assert status == 1 and err.count("\n") == 1 and "not enough room on the board" in err, err
    assert camera.flash() == ([], {})
    runs(camera, "factory", factory_version())


def test_a_full_filesystem_during_the_writes_abandons_the_update(board, bundles):
    camera = board(flash_blocks=68).start()
    status, out, err = send(camera, bundles["good.py"])
    assert status == 1 and err.count("\n") == 1 and "ENOSPC" in err, err
    camera.wait_for("update: removed the unfinished bundle from slot a")
    assert camera.flash() == ([], {}), "the half-written slot is removed"
    runs(camera, "factory", factory_version())
    assert send(camera, bundles["small"])[0] == 0, "the space freed again takes a smaller bundle"
    camera.ended()
    camera.start()
    camera.wait_for("slot a serves")
    runs(camera, "a", "9.6")


@pytest.mark.parametrize("delay", [0.0, 0.05])
@pytest_twisted.inlineCallbacks
def test_a_power_cut_during_the_commit_leaves_one_whole_application(board, bundles, delay):
    camera = board().start()
    client = yield open_camera(camera.port)
    connection = client.connection
    connection.finished.addErrback(lambda _: None)
    sender = sender_of(bundles["good"])
    yield connection.request("update-begin", **sender.begin)
    chunk = sender.next_chunk()
    while chunk is not None:
        yield connection.request("update-chunk", **chunk)
        chunk = sender.next_chunk()
    connection.request("update-commit").addErrback(lambda _: None)
    # Where in the commit the power goes: ``delay`` after the commit request left (this waits for nothing).
    yield task.deferLater(reactor, delay, lambda: None)
    camera.power_cut()
    slots, state = camera.flash()
    assert state.get("good", "factory") == "factory" and state.get("try") in (None, "a")
    camera.start()
    if state.get("try") is None:
        runs(camera, "factory", factory_version())
    else:
        camera.wait_for("slot a serves")
        runs(camera, "a", "9.1")


def test_a_power_cut_during_the_trial_boot_rolls_back(board, bundles):
    camera = board().start()
    assert send(camera, bundles["slow"])[0] == 0
    camera.ended()
    camera.start(wait="new application: 9.3")
    assert camera.power_cut() == RESET_STATUS
    camera.start()
    assert camera.said("boot: update tcpcam 9.3 in slot a did not reach serving on its trial boot; rolled back")
    runs(camera, "factory", factory_version(), rolled_back=True)
    slots, state = camera.flash()
    assert slots == ["state.json"] and state["try"] is None and state["rolled_back"] is True


def test_an_application_that_crashes_is_reset_and_rolled_back(board, bundles):
    camera = board().start()
    assert send(camera, bundles["crash"])[0] == 0
    camera.ended()
    camera.cause.write_text("1\n")  # the trial boot begins as after a power-on
    camera.start(wait=None)
    assert camera.ended() == RESET_STATUS
    assert camera.said("RuntimeError: this application is broken")
    assert camera.said("boot: the application of slot a stopped on RuntimeError; resetting")
    assert camera.cause.read_text().strip() == "2", "a reset (HARD_RESET), not a REPL"
    camera.start()
    assert camera.said("rolled back to slot factory")
    runs(camera, "factory", factory_version(), rolled_back=True)


def test_an_application_that_never_serves_is_reset_at_its_trial_deadline(board, bundles):
    camera = board({"update_trial_ms": 1500}).start()
    assert send(camera, bundles["hang"])[0] == 0
    camera.ended()
    camera.start(wait="it must serve within 1500 ms")
    assert camera.ended() == RESET_STATUS
    assert camera.said("did not reach serving within 1500 ms; resetting")
    camera.start()
    runs(camera, "factory", factory_version(), rolled_back=True)


def test_a_half_written_boot_state_is_ignored(board, bundles):
    camera = board().start()
    assert send(camera, bundles["good"])[0] == 0
    camera.ended()
    camera.start()
    camera.wait_for("slot a serves")
    camera.power_cut()
    # What a power cut between writing the new boot state and renaming it over the old one leaves behind.
    argv, env, cwd = camera.env()
    script = ("import board_flash\nboard_flash.mount('/slots')\n"
              "with open('/slots/state.new', 'w') as handle:\n"
              "    handle.write('{\"good\": \"b\", \"try\": \"b\", \"tr')\n")
    result = run_micropython(script, cwd, {key: env[key] for key in env if key.startswith("TCPCAM_")})
    assert result.returncode == 0, result.stderr
    camera.start()
    runs(camera, "a", "9.1")


def test_tcpcam_firmware_simulate_powers_the_board_on_again_after_an_update(tmp_path, bundles):
    port = free_port()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"key": KEY, "source": "hello"}))
    argv = TCPCAM + ["firmware", "simulate", "--config", str(config), "--port", str(port), "--source", "hello"]
    simulator = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    console = Console(simulator, "tcpcam firmware simulate")
    try:
        console.wait_for("server: listening")
        board = Reachable(port)
        assert send(board, bundles["good"])[0] == 0
        console.wait_for("the simulated board reset; powering it on again")
        console.wait_for("slot a serves: it is the good application now")
        runs(board, "a", "9.1")
    finally:
        simulator.send_signal(signal.SIGINT)
        assert simulator.wait(WAIT) == 0


def test_a_board_that_takes_no_update_does_not_load_the_update_code(board):
    camera = board()
    result = run_micropython("import sys, tcpcam_fw.app\nprint('tcpcam.core.update' in sys.modules,"
                             " 'tcpcam_fw.update' in sys.modules, 'tcpcam.core.server_role' in sys.modules)",
                             camera.device)
    assert result.returncode == 0 and result.stdout.split() == ["False", "False", "True"], result.stdout + result.stderr
