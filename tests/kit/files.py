"""Files: atomic writes with a mode and an owner, integer files."""

import os
import pwd


def user_ids(user):
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def write_file(path, text, mode=0o644, owner=None):
    """Write path atomically (a temporary file renamed over it) with mode,
    owned by the user named owner if given."""
    path = str(path)
    data = text.encode() if isinstance(text, str) else text
    tmp = path + ".tmp-kit"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    if owner:
        os.chown(tmp, *user_ids(owner))
    os.rename(tmp, path)
    return path


def read_int(path, base=10):
    """The integer a file holds, or None (missing, empty or not a number)."""
    try:
        with open(path) as f:
            s = f.read().strip()
        return int(s, base) if s else None
    except (OSError, ValueError):
        return None


def read_text(path):
    """The whole file as text (undecodable bytes replaced), or "" if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def read_since(path, offset):
    """The text after byte offset, or ""."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
