"""A client writing through the VIP or the router (lab_client.py in the client
namespace), and what it saw acknowledged."""

import json
import re
import subprocess
import threading

from labkit.layout import BOUNCER_PORT, LabError, VIP

# pending: no answer, no error, when the client stopped (lab_client.py's
# --drain after the last attempt began): a failed attempt all the same
ERROR_KINDS = ("refused", "read_only", "reset", "timeout", "pending", "other")


def error_kind(err):
    """The kind of a client error (lab_client.py's first line of the
    exception). Timeouts first: "could not connect ... timeout expired" is a
    timeout, not a refusal."""
    e = (err or "").lower()
    if e.startswith("client: still pending"):
        return "pending"
    if "read-only" in e or "read only" in e:
        return "read_only"
    if "timeout" in e or "timed out" in e:
        return "timeout"
    if "server closed the connection" in e or "reset" in e or "terminating" in e:
        return "reset"
    if "refused" in e or "could not connect" in e or re.search(r"database .*disabled|is disabled", e):
        return "refused"
    return "other"


def quote_literal(s):
    return "'" + s.replace("'", "''") + "'"


class Writer:
    """lab_client.py write in the client namespace; attempts are collected
    as dicts: seq, t0, t1, ok, node or err."""

    def __init__(self, lab, interval, start_seq, connect_timeout=2, host=VIP, port=BOUNCER_PORT):
        self.lab = lab
        self.target = (host, port)
        self.attempts = []
        self.end = None
        self._lock = threading.Lock()
        self.started = threading.Event()
        # at the stop, every attempt still connecting gets to its own
        # timeout, so a black-holed login is counted a timeout, not pending
        self.drain = max(5, connect_timeout + 2)
        self.proc = subprocess.Popen(lab.client_argv("write", "--host", host, "--port", port,
                                                     "--interval", interval, "--start-seq", start_seq,
                                                     "--connect-timeout", connect_timeout,
                                                     "--drain", self.drain,
                                                     # every attempt held for a whole connect_timeout
                                                     # still fits: none is skipped by the client itself
                                                     "--max-inflight",
                                                     int(connect_timeout / interval) + 20),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.thread = threading.Thread(target=self._read, daemon=True, name="lab-writer")
        self.thread.start()
        if not self.started.wait(10):
            self.stop()
            raise LabError("the client did not start: %s" % self.proc.stderr.read()[-500:])

    def _read(self):
        for line in self.proc.stdout:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("ev") == "start":
                self.started.set()
            elif r.get("ev") == "attempt":
                with self._lock:
                    self.attempts.append(r)
            elif r.get("ev") == "end":
                self.end = r

    def stop(self, timeout=None):
        if timeout is None:
            timeout = self.drain + 10
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.thread.join(5)

    def snapshot(self):
        with self._lock:
            return sorted(self.attempts, key=lambda a: a["seq"])

    def acked(self):
        return [a["seq"] for a in self.snapshot() if a["ok"]]

    def first_ok_after(self, t):
        """The first acknowledged attempt started at or after t."""
        oks = [a for a in self.snapshot() if a["ok"] and a["t0"] >= t]
        return min(oks, key=lambda a: a["t1"]) if oks else None

    def failed_between(self, t_from, t_to):
        return [a for a in self.snapshot() if not a["ok"] and t_from <= a["t0"] <= t_to]
