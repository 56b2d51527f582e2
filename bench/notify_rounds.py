"""bench/notify's rounds: BACKUP then MASTER, through pgtrack-notify or the
classic script, timed by the prober."""

import time

from kit.bench import BenchError, fmt_ms, log, wait_until
from kit.procs import pid_alive
from kit.subreaper import reap, reap_strays
from notify_rig import APPDB, FENCE_LINE, REWROTE_LINE, SERVE_LINE


def run_pgtrack(args, notify, prober, rewrite, measure=True):
    """BACKUP then MASTER through pgtrack-notify; returns the two results."""
    b = notify.bouncer
    res = {}
    before = notify.count(FENCE_LINE)
    t0 = notify.write("BACKUP", 100)
    res["backup"] = prober.until_refused(t0, args.timeout, 1.0)
    notify.wait_outcome(FENCE_LINE, before)
    res["backup"]["settled_ms"] = (time.monotonic() - t0) * 1000.0
    if res["backup"]["ms"] is None:
        raise BenchError("pgtrack-notify: no client refused within %.0fs of BACKUP" % args.timeout)
    time.sleep(args.settle)
    if rewrite:
        # make the include file differ from the template: MASTER must rewrite it and RELOAD
        with open(b.databases_file, "a") as f:
            f.write("; touched by bench/notify --rewrite\n")
    before = notify.count(SERVE_LINE)
    rewrites = notify.count(REWROTE_LINE)
    t0 = notify.write("MASTER", 150)
    res["master"] = prober.until_served(t0, args.timeout, 2.0)
    notify.wait_outcome(SERVE_LINE, before)
    res["master"]["settled_ms"] = (time.monotonic() - t0) * 1000.0
    res["master"]["rewrote_file"] = notify.count(REWROTE_LINE) > rewrites
    if res["master"]["ms"] is None:
        raise BenchError("pgtrack-notify: no SELECT 1 within %.0fs of MASTER" % args.timeout)
    time.sleep(args.settle)
    return res


def run_classic(args, classic, prober):
    b = classic.bouncer
    res = {}
    old = b.read_pid()
    if old is None:
        raise BenchError("classic: pgbouncer B is not running before BACKUP")
    t0 = classic.spawn("BACKUP", 100)
    res["backup"] = prober.until_refused(t0, args.timeout, 1.0, on_tick=classic.poll)
    code, t_end = classic.wait()
    res["backup"]["script_exit"] = code
    res["backup"]["script_ms"] = (t_end - t0) * 1000.0
    if res["backup"]["ms"] is None:
        raise BenchError("classic: no client refused within %.0fs of BACKUP" % args.timeout)
    if code != 0:
        raise BenchError("classic: the notify script failed on BACKUP (%s):\n%s" % (code, b.log_tail()))
    wait_until(lambda: (reap(old) or True) and not pid_alive(old), 10.0,
               what="pgbouncer B (pid %d) to exit" % old)
    res["backup"]["settled_ms"] = (time.monotonic() - t0) * 1000.0
    reap_strays()
    time.sleep(args.settle)
    t0 = classic.spawn("MASTER", 150)
    res["master"] = prober.until_served(t0, args.timeout, 2.0, on_tick=classic.poll)
    code, t_end = classic.wait()
    res["master"]["script_exit"] = code
    res["master"]["script_ms"] = (t_end - t0) * 1000.0
    if code != 0:
        raise BenchError("classic: the notify script failed on MASTER (%s):\n%s" % (code, b.log_tail()))
    if res["master"]["ms"] is None:
        raise BenchError("classic: no SELECT 1 within %.0fs of MASTER" % args.timeout)
    new = wait_until(b.read_pid, 10.0, what="pgbouncer B's pidfile after MASTER")
    res["master"]["settled_ms"] = (time.monotonic() - t0) * 1000.0
    res["master"]["new_pid"] = new
    reap_strays()
    time.sleep(args.settle)
    return res


PAUSE_CLOSE = "closing because: pause mode"


def login_retry_stalls(p_runs, bouncer):
    """pgbouncer (1.18) closes a server connection it is still logging in
    with "closing because: pause mode" when the database is paused, and
    counts that as a failed server login: it then launches no new server
    connection for server_login_retry (15 s by default).  pgtrack-notify's
    serve sends ENABLE before RESUME, so a client that logs in between the
    two triggers exactly that.  Returns problem lines."""
    try:
        with open(bouncer.logpath, errors="replace") as fh:
            closes = [l.strip() for l in fh if PAUSE_CLOSE in l]
    except OSError:
        closes = []
    slow = [(i + 1, r["master"]["ms"]) for i, r in enumerate(p_runs)
            if r["master"]["ms"] is None or r["master"]["ms"] > 1000.0]
    out = []
    if slow:
        out.append("pgtrack-notify MASTER runs slower than 1 s: %s" % ", ".join(
            "run %d: %s" % (i, fmt_ms(ms)) for i, ms in slow))
    if closes:
        out.append("pgbouncer A closed %d server connection(s) %r (a client logged in while %s was enabled"
                   " but still paused, between pgtrack-notify's ENABLE and RESUME); pgbouncer counts that as a"
                   " failed server login and opens no new server connection for server_login_retry (15 s by"
                   " default), so every client of the pool waits; e.g. %s"
                   % (len(closes), PAUSE_CLOSE, APPDB, closes[-1]))
    return out


def log_round(label, i, n, r):
    bk, ms = r["backup"], r["master"]
    extra = ""
    if "script_ms" in ms:
        extra = "; script ran %s (BACKUP) / %s (MASTER)" % (fmt_ms(bk["script_ms"]), fmt_ms(ms["script_ms"]))
    if ms["ms"] is None or ms["ms"] > 1000.0:
        extra += "  <-- SLOW (see 'problems seen' at the end)"
    log("%-14s %2d/%d: BACKUP -> refused %s (%d served, %d cut after login meanwhile); MASTER -> "
        "SELECT 1 %s (%d failed attempts)%s" % (label, i, n, fmt_ms(bk["ms"]), bk["served_after_event"],
                                                bk["cut_after_login"], fmt_ms(ms["ms"]), ms["failed"], extra))
