"""Debian's ffprobe on a video file, for the tests that check exports (imports no reactor)."""

import json
import shutil
import subprocess

import pytest


def ffprobe(path):
    """Debian's ffprobe on a video file: its first video stream's codec, frame count (counted) and duration."""
    program = shutil.which("ffprobe")
    if program is None:
        pytest.fail("ffprobe is not installed: apt-get install -y ffmpeg")
    result = subprocess.run(
        [program, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,nb_read_frames,duration", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["streams"][0]
