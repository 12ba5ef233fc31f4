"""An --out the recorder cannot write into is refused at start with one line (tcpcam record and twistd).

Refusing relies on :func:`os.access` about the folder (or the nearest one
that exists), which answers as the kernel will for this process. These
tests run as root on CI, where mode bits do not stop writes, so a
read-only folder is made the ways that stop root too: a read-only tmpfs
mounted in a private mount namespace (``unshare``), else an immutable
folder (``chattr +i``); as an ordinary user, a folder of mode 0555 does.
"""

import contextlib
import os
import shutil
import subprocess
import sys

import pytest
from twisted.python import usage

from tcpcam.tap.record import Options

#: Runs ``tcpcam record`` (as the console script does) with the arguments after it.
RECORD = [sys.executable, "-m", "tcpcam", "record", "--no-web"]
#: Bound on one start that must be refused, in seconds.
WAIT = 60


def _refused(argv, **kwargs):
    done = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, check=False, **kwargs)
    return done.returncode, done.stdout, done.stderr


def test_out_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "recordings"
    blocker.write_bytes(b"not a folder")
    status, out, err = _refused([*RECORD, "--out", str(blocker)])
    assert (status, out) == (2, "")
    assert err == "tcpcam record: cannot record into %s: %s is a file, not a folder\n" % (blocker, blocker)
    status, out, err = _refused([*RECORD, "--out", str(blocker / "inside")])
    assert status == 2 and err.count("\n") == 1 and "%s is a file, so the folder" % blocker in err
    with pytest.raises(usage.UsageError, match="is a file, not a folder"):
        Options().parseOptions(["--out", str(blocker)])
    assert blocker.read_bytes() == b"not a folder"


def _unshare():
    """The argv prefix that runs a command in a private mount namespace, or None if this machine cannot."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    for prefix in ([unshare, "-m"], [unshare, "-r", "-m"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=WAIT, check=False)
        except OSError:
            continue
        if done.returncode == 0:
            return prefix
    return None


@contextlib.contextmanager
def _readOnlyFolder(folder):
    """Yield ``(wrap, how)``: ``wrap(argv)`` runs argv where ``folder`` is read-only."""
    folder.mkdir()
    unshare = _unshare()
    if unshare is not None:
        script = 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"'
        yield (lambda argv: [*unshare, "sh", "-c", script, str(folder), *argv]), "a read-only tmpfs"
        return
    chattr = shutil.which("chattr")
    if chattr and subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False).returncode == 0:
        try:
            yield (lambda argv: argv), "an immutable folder"
        finally:
            subprocess.run([chattr, "-i", str(folder)], check=False)
        return
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield (lambda argv: argv), "a folder of mode 0555"
        finally:
            folder.chmod(0o755)
        return
    pytest.skip("running as root with neither a mount namespace (unshare) nor chattr +i: no way to"
                " make a folder root cannot write to")


def test_read_only_out_is_refused(tmp_path):
    folder = tmp_path / "ro"
    with _readOnlyFolder(folder) as (wrap, how):
        status, out, err = _refused(wrap([*RECORD, "--out", str(folder)]))
        assert (status, out) == (2, ""), (how, err)
        assert err.startswith("tcpcam record: cannot record into %s: %s is " % (folder, folder)), (how, err)
        assert err.count("\n") == 1, (how, err)
        status, out, err = _refused(wrap([*RECORD, "--out", str(folder / "new" / "deeper")]))
        assert status == 2 and "cannot record into %s/new/deeper: %s is " % (folder, folder) in err, (how, err)
    assert os.listdir(folder) == []
