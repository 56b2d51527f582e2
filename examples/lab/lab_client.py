"""The lab's client, run inside the client namespace:

    ip netns exec NS /usr/bin/python3 lab_client.py write --host VIP [...]
    ip netns exec NS /usr/bin/python3 lab_client.py sql --host VIP --query Q

Prints JSON lines with wall-clock timestamps (time.time(), seconds) on
standard output.

write: every --interval starts one attempt, an asyncio task: a new
connection through pgbouncer, `INSERT INTO lab_writes (seq, node) VALUES
(SEQ, cluster_name) RETURNING node`, close. (One thread: with a thread per
attempt, a crowd of attempts that pgbouncer released at once queued for
the interpreter lock, and the first write after a hold came tens of ms
late for the client's own sake.) One line per attempt when it
ends: {"ev": "attempt", "seq", "t0", "t1", "ok", "node" | "err"}. An
attempt whose INSERT returned is an acknowledged write. Stops when standard
input is closed, on SIGTERM, or after --duration; attempts still running
then get up to --drain seconds; each one still unanswered then is reported
as a failed attempt whose error says it was pending (and its seq in the
end line's "pending" list).

sql: runs one statement, prints {"ev": "sql", "ok", "rows" | "err"}.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time

import psycopg

out_lock = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def short(e):
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def connect(a):
    return psycopg.connect(host=a.host, port=a.port, dbname=a.dbname, user=a.user,
                           connect_timeout=a.connect_timeout, autocommit=True,
                           prepare_threshold=None, application_name="lab_client")


async def attempt(a, seq, t0, state):
    rec = {"ev": "attempt", "seq": seq, "t0": t0}
    try:
        conn = await psycopg.AsyncConnection.connect(
            host=a.host, port=a.port, dbname=a.dbname, user=a.user,
            connect_timeout=a.connect_timeout, autocommit=True, prepare_threshold=None,
            application_name="lab_client")
        try:
            cur = await conn.execute("INSERT INTO lab_writes (seq, node) VALUES (%s, "
                                     "current_setting('cluster_name')) RETURNING node", (seq,))
            row = await cur.fetchone()
        finally:
            await conn.close()
        rec.update(ok=True, node=row[0])
    except Exception as e:  # every failure is data here
        rec.update(ok=False, err=short(e))
    rec["t1"] = time.time()
    emit(rec)
    state["inflight"] -= 1
    state["done"].add(seq)


async def write_loop(a):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    state = {"inflight": 0, "done": set()}
    tasks = set()
    started = {}                    # seq -> t0
    emit({"ev": "start", "t": time.time(), "pid": os.getpid(), "interval": a.interval})
    seq = a.start_seq
    t_start = time.monotonic()
    next_at = t_start
    while not stop.is_set() and time.monotonic() - t_start < a.duration:
        if state["inflight"] >= a.max_inflight:
            emit({"ev": "attempt", "seq": seq, "t0": time.time(), "t1": time.time(),
                  "ok": False, "err": "client: too many attempts in flight, skipped"})
        else:
            state["inflight"] += 1
            started[seq] = time.time()
            task = asyncio.create_task(attempt(a, seq, started[seq], state))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        seq += 1
        next_at += a.interval
        delay = next_at - time.monotonic()
        if delay < 0:               # fell behind (a busy loop): no burst
            next_at = time.monotonic()
            delay = 0
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except asyncio.TimeoutError:
            pass
    if tasks:
        await asyncio.wait(set(tasks), timeout=a.drain)
    pending = [s for s in started if s not in state["done"]]
    for task in tasks:
        task.cancel()
    now = time.time()
    for s in pending:
        emit({"ev": "attempt", "seq": s, "t0": started[s], "t1": now, "ok": False, "pending": True,
              "err": "client: still pending when the client stopped, %.1f s after it began"
                     % (now - started[s])})
    emit({"ev": "end", "t": time.time(), "next_seq": seq, "pending": pending})
    return 0


def cmd_write(a):
    return asyncio.run(write_loop(a))


def cmd_sql(a):
    try:
        with connect(a) as conn:
            cur = conn.execute(a.query)
            rows = cur.fetchall() if cur.description else []
        emit({"ev": "sql", "t": time.time(), "ok": True,
              "rows": [[v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                        for v in r] for r in rows]})
        return 0
    except Exception as e:
        emit({"ev": "sql", "t": time.time(), "ok": False, "err": short(e)})
        return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("write", "sql"):
        s = sub.add_parser(name)
        s.add_argument("--host", required=True)
        s.add_argument("--port", type=int, default=6432)
        s.add_argument("--dbname", default="appdb")
        s.add_argument("--user", default="postgres")
        s.add_argument("--connect-timeout", type=int, default=2)
        if name == "write":
            s.add_argument("--interval", type=float, default=0.1)
            s.add_argument("--duration", type=float, default=600.0)
            s.add_argument("--start-seq", type=int, default=1)
            s.add_argument("--max-inflight", type=int, default=50)
            s.add_argument("--drain", type=float, default=5.0)
        else:
            s.add_argument("--query", required=True)
    a = p.parse_args()
    return cmd_write(a) if a.cmd == "write" else cmd_sql(a)


if __name__ == "__main__":
    sys.exit(main())
