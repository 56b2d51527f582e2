"""bench/notify's results: both approaches side by side, as JSON or a table."""

import collections

from kit.bench import f, ratio, stats_of


def summarize(runs):
    out = {}
    for phase, key in (("backup", "ms"), ("master", "ms")):
        out[phase + "_ms"] = stats_of([r[phase][key] for r in runs])
    out["master_failed_attempts"] = stats_of([r["master"]["failed"] for r in runs])
    out["master_failed_attempts"]["total"] = sum(r["master"]["failed"] for r in runs)
    out["master_timeouts_total"] = sum(r["master"]["timeouts"] for r in runs)
    out["backup_served_after_event"] = stats_of([r["backup"]["served_after_event"] for r in runs])
    out["backup_cut_after_login"] = stats_of([r["backup"]["cut_after_login"] for r in runs])
    out["backup_cut_how"] = dict(collections.Counter(r["backup"]["cut_how"] for r in runs
                                                     if r["backup"]["cut_after_login"]))
    out["backup_timeouts_total"] = sum(r["backup"]["timeouts"] for r in runs)
    refusals = collections.Counter(r["backup"]["how"] for r in runs)
    out["refused_how"] = dict(refusals)
    fails = collections.Counter()
    for r in runs:
        fails.update(r["master"]["fail_kinds"])
    out["master_fail_kinds"] = dict(fails)
    if runs and "script_ms" in runs[0]["backup"]:
        out["script_backup_ms"] = stats_of([r["backup"]["script_ms"] for r in runs])
        out["script_master_ms"] = stats_of([r["master"]["script_ms"] for r in runs])
    if runs and "rewrote_file" in runs[0]["master"]:
        out["master_rewrites"] = sum(1 for r in runs if r["master"]["rewrote_file"])
    return out


def build_result(args, env, p_runs, c_runs, prober_durations, problems):
    p = summarize(p_runs)
    c = summarize(c_runs)
    ratios = {}
    for phase in ("backup_ms", "master_ms"):
        ratios[phase] = {"median": ratio(c[phase]["median"], p[phase]["median"]),
                         "max": ratio(c[phase]["max"], p[phase]["max"])}
    d = [x * 1000.0 for x in prober_durations]
    env["probe_attempt_ms"] = stats_of(d)
    return {"env": env, "pgtrack_notify": {"summary": p, "runs": p_runs},
            "classic": {"summary": c, "runs": c_runs}, "ratio_classic_over_pgtrack_notify": ratios,
            "problems": problems}


def print_table(res):
    env = res["env"]
    p = res["pgtrack_notify"]["summary"]
    c = res["classic"]["summary"]
    rt = res["ratio_classic_over_pgtrack_notify"]
    print()
    print("pgtrack-notify benchmark  (%s; %s; PostgreSQL %s; %d CPUs; load avg %.2f -> %.2f)" % (
        env["pgtrack_notify_version"], env["pgbouncer_version"], env["pg_version"], env["cpus"],
        env["loadavg_start"][0], env["loadavg_end"][0]))
    print("%d runs each, interleaved; a client polls connect + SELECT 1 through pgbouncer every %g ms"
          " (one attempt took median %s ms, max %s ms)%s" % (
              env["runs"], env["probe_interval_ms"], f(env["probe_attempt_ms"]["median"], "%.2f"),
              f(env["probe_attempt_ms"]["max"], "%.1f"),
              "; --rewrite: pgtrack-notify rewrites the file and RELOADs on every MASTER" if env["rewrite"] else ""))
    print()
    print("   %-44s %10s %10s %10s" % ("", "median", "max", "min"))
    for title, key in (("1. BACKUP -> a new client is refused", "backup_ms"),
                       ("2. MASTER -> first successful SELECT 1", "master_ms")):
        print("   " + title)
        for label, s in (("pgtrack-notify", p[key]), ("classic notify script", c[key])):
            print("      %-41s %7s ms %7s ms %7s ms" % (label, f(s["median"]), f(s["max"]), f(s["min"])))
        print("      %-41s %9sx %9sx" % ("ratio classic/pgtrack-notify", f(rt[key]["median"], "%.1f"),
                                         f(rt[key]["max"], "%.1f")))
    print()
    print("   client attempts that failed during a MASTER transition (per run: median / max; total)")
    for label, s in (("pgtrack-notify", p), ("classic notify script", c)):
        fa = s["master_failed_attempts"]
        print("      %-41s %7s / %s; %d  (timed out: %d)" % (
            label, f(fa["median"], "%.0f"), f(fa["max"], "%.0f"), fa["total"], s["master_timeouts_total"]))
    print()
    print("   how new clients were refused after BACKUP / why they failed during MASTER:")
    for label, s in (("pgtrack-notify", p), ("classic", c)):
        for how, n in sorted(s["refused_how"].items(), key=lambda kv: -kv[1]):
            print("      %-16s BACKUP %2dx  %s" % (label, n, how))
        for how, n in sorted(s["master_fail_kinds"].items(), key=lambda kv: -kv[1]):
            print("      %-16s MASTER %3dx  %s" % (label, n, how))
    for label, s in (("pgtrack-notify", p), ("classic", c)):
        for how, n in sorted(s["backup_cut_how"].items(), key=lambda kv: -kv[1]):
            print("      %-16s BACKUP %2dx  logged in, then cut without an answer to SELECT 1: %s"
                  % (label, n, how))
    print("   clients still let in after the BACKUP event (per run, median / max): served: pgtrack-notify %s / %s,"
          " classic %s / %s; logged in, then cut: pgtrack-notify %s / %s, classic %s / %s" % tuple(
              f(x, "%.0f") for k in ("backup_served_after_event", "backup_cut_after_login")
              for s in (p, c) for x in (s[k]["median"], s[k]["max"])))
    if "script_backup_ms" in c:
        print("   classic script run time (spawn to exit): BACKUP median %s ms, max %s ms;"
              " MASTER median %s ms, max %s ms" % (
                  f(c["script_backup_ms"]["median"]), f(c["script_backup_ms"]["max"]),
                  f(c["script_master_ms"]["median"]), f(c["script_master_ms"]["max"])))
    if "master_rewrites" in p:
        print("   pgtrack-notify rewrote the databases file (and sent RELOAD) on %d of %d MASTER events"
              % (p["master_rewrites"], env["runs"]))
    d = env["pg_direct_ms"]
    print("   for reference: a new PostgreSQL backend + SELECT 1 straight over its unix socket takes median %s ms,"
          " max %s ms;" % (f(d["median"], "%.1f"), f(d["max"], "%.1f")))
    print("   the first client after a MASTER pays for one in both approaches (KILL and a restart drop"
          " pgbouncer's server connections)")
    print()
    print("   existing client sessions: pgtrack-notify's fence KILLs them at once (pgbouncer stays up);"
          " the classic script's SIGINT is a safe shutdown that waits for them (not measured here)")
    if res["problems"]:
        print()
        print("problems seen:")
        for pr in res["problems"]:
            print("   - " + pr)
