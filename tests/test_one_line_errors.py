"""One bad option, one line: the twistd plugins as ``tcpcam record`` and ``tcpcam serve``, endpoint hints.

twistd itself prints a plugin's whole usage text before a UsageError; the
plugins' options print one line instead, on stderr, with twistd's exit
status 1. Each case runs the real command in a child process.
"""

import subprocess
import sys

import pytest
from twisted.python import usage

from tcpcam.common.endpoints import hint
from tcpcam.tap import record as record_tap
from tcpcam.tap import server as server_tap

#: Runs ``twistd`` with the arguments given after it.
TWISTD = [sys.executable, "-c", "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
          "-n", "--pidfile="]
TCPCAM = [sys.executable, "-m", "tcpcam"]
#: Bound on one refused start, in seconds.
WAIT = 60


def _run(argv, cwd):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, check=False, cwd=str(cwd))
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("plugin, argv, message", [
    ("tcpcam-record", ["--max-bytes", "lots"], 'bad --max-bytes "lots": expected a size in bytes'),
    ("tcpcam", ["--max-bytes", "lots"], 'bad --max-bytes "lots": expected a size in bytes'),
    ("tcpcam-record", ["--no-such-option"], "option --no-such-option not recognized"),
    ("tcpcam-record", ["--camera", "door=127.0.0.1:3420"],
     "bad endpoint for camera door: '127.0.0.1:3420': Unknown endpoint type: '127.0.0.1'"
     " (write it as tcp:host=127.0.0.1:port=3420)"),
    ("tcpcam-record", ["--out", "taken"], "cannot record into taken: taken is a file, not a folder"),
    ("tcpcam-server", ["--interval-ms", "soon"], 'bad --interval-ms "soon"'),
    ("tcpcam-server", ["--listen", "127.0.0.1:3333"],
     "bad endpoint for --listen: '127.0.0.1:3333': Unknown endpoint type: '127.0.0.1'"
     " (write it as tcp:3333:interface=127.0.0.1)"),
])
def test_twistd_plugins_say_one_line(tmp_path, plugin, argv, message):
    (tmp_path / "taken").write_text("a file")
    status, output = _run([*TWISTD, plugin, *argv], tmp_path)
    assert status == 1, output
    assert output.count("\n") == 1, output
    assert output.startswith("twistd %s: " % plugin) and output.endswith(" (see twistd %s --help)\n" % plugin)
    assert message in output, output


def test_the_same_options_used_on_their_own_raise_usage_error():
    # Without twistd around them (no parent options), they raise as usage.Options do.
    with pytest.raises(usage.UsageError, match="bad --max-bytes"):
        record_tap.Options().parseOptions(["--max-bytes", "lots"])
    with pytest.raises(usage.UsageError, match="write it as tcp:3333:interface=127.0.0.1"):
        server_tap.Options().parseOptions(["--listen", "127.0.0.1:3333"])


@pytest.mark.parametrize("argv, message", [
    (["record", "--no-web", "--camera", "door=127.0.0.1:3420"],
     "tcpcam record: bad endpoint for camera door: '127.0.0.1:3420': Unknown endpoint type: '127.0.0.1'"
     " (write it as tcp:host=127.0.0.1:port=3420)"),
    (["record", "--web", "localhost:8080"], "(write it as tcp:8080:interface=localhost)"),
    (["serve", "--listen", "127.0.0.1:3333"], "(write it as tcp:3333:interface=127.0.0.1)"),
    (["serve", "--listen", "unix"], "(a server endpoint looks like tcp:8080:interface=127.0.0.1)"),
])
def test_tcpcam_endpoint_errors_name_the_right_form(tmp_path, argv, message):
    status, output = _run([*TCPCAM, *argv], tmp_path)
    assert status == 2, output
    assert output.count("\n") == 1 and message in output, output


@pytest.mark.parametrize("text, server, shown", [
    ("cam.local:3333", False, "write it as tcp:host=cam.local:port=3333"),
    ("[::1]:3333", False, "write it as tcp:host=\\:\\:1:port=3333"),
    ("[::1]:8080", True, "write it as tcp6:8080:interface=\\:\\:1"),
    ("8080", True, "write it as tcp:8080 (every interface) or tcp:8080:interface=127.0.0.1"),
    ("cam", False, "a client endpoint looks like tcp:host=192.168.1.50:port=3333"),
])
def test_hints(text, server, shown):
    assert hint(text, server) == shown


def test_twistd_help_keeps_values_as_written(tmp_path):
    status, output = _run([*TWISTD, "tcpcam-record", "--help"], tmp_path)
    assert status == 0, output
    text = " ".join(output.split())
    assert "segments: concatenated-JPEG segments with a SQLite index; jpg: one file per frame" in text
    assert "Segments:" not in text and "Jpg:" not in text
