"""A track file changed behind pgtrackd's back is restored at once: inotify
on its directory says so; file_check_interval (10 s here) is only the
backstop.  No PostgreSQL is needed: a track whose server does not exist
still writes a value.

Run as root:  /usr/bin/python3 -m pytest tests/integration/test_trackfile_watch.py
"""
import os
import shutil
import time

from kit.waiting import wait_until

BACKSTOP = {"file_check_interval": "10s"}


def no_server_track(base, path):
    return {"file": path, "host": os.path.join(base, "no-such-socket-dir"), "port": "5432",
            "interval": "200ms", "timeout": "1s", "connect_timeout": "1s",
            "rise": "1", "fall": "1"}


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def start(trackd, tmp_path):
    d = tmp_path / "tracks"
    d.mkdir(mode=0o755)
    path = str(d / "t.track")
    t = trackd.start({"t": no_server_track(str(tmp_path), path)}, BACKSTOP)
    t.wait_for_log(r'track "t": unknown -> down', 10)
    assert read(path) == "-254\n", read(path)
    return t, path, read(path)


def restored_within(t, path, value, seconds):
    """No look at the file before: pgtrackd, on real-time scheduling, may
    restore it before this process runs again. That it saw each change is
    in its log (test_changed_replaced_removed_file_restored_at_once)."""
    t0 = time.monotonic()
    wait_until(lambda: read(path) == value, seconds,
               describe=lambda: t.describe("not restored within %.1f s" % seconds))
    return time.monotonic() - t0


def test_changed_replaced_removed_file_restored_at_once(trackd, tmp_path):
    t, path, value = start(trackd, tmp_path)
    start_log = t.log_size()
    with open(path, "w") as f:                       # written in place
        f.write("5\n")
    restored_within(t, path, value, 2.0)
    tmp = path + ".other"
    with open(tmp, "w") as f:                        # replaced by a rename
        f.write("7\n")
    os.rename(tmp, path)
    restored_within(t, path, value, 2.0)
    os.unlink(path)                                  # removed
    restored_within(t, path, value, 2.0)
    lines = [l for l in t.log()[start_log:].splitlines() if "behind our back" in l or "was removed" in l]
    assert len(lines) >= 3, "\n".join(l for l in t.log()[start_log:].splitlines() if "probe failed" not in l and "connecting" not in l)


def test_directory_replaced_is_watched_anew(trackd, tmp_path):
    t, path, value = start(trackd, tmp_path)
    d = os.path.dirname(path)
    os.rename(d, d + ".old")
    os.mkdir(d, 0o755)
    restored_within(t, path, value, 2.0)                   # the new directory gets the file
    with open(path, "w") as f:                       # and is watched: a change is seen
        f.write("5\n")
    restored_within(t, path, value, 2.0)
    shutil.rmtree(d + ".old")
