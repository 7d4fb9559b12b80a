"""Decode workers of the image-folder source die within seconds of a parent killed with kill -9."""

from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


ORPHAN_SCRIPT = """
import sys, time
sys.path.insert(0, {src!r})
import classwise.data.sources.image_folder as f
def slow(path, size, background):
    time.sleep(30)
f.decode_image = slow  # the workers are forked with it, so they stay busy
f.decode_files(["a.png"] * 8, 32, workers=2, progress=False, chunk_size=1)
"""


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has released its memory; only its exit status is left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the workers")
def test_decode_workers_die_within_seconds_of_a_killed_parent(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    src = str(PROJECT_ROOT / "src")
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT.format(src=src)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(parent.pid)) < 2:
            assert parent.poll() is None and time.monotonic() < deadline, "the decode workers never started"
            time.sleep(0.1)
        time.sleep(0.5)  # let each worker run its initializer
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if _running(w)]
    finally:
        if parent.poll() is None:
            parent.kill()
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert left == [], f"decode workers {left} outlived their killed parent"
