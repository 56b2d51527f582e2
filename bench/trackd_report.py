"""bench/run's results: the figures against the targets, as JSON or a table."""

from kit.bench import f, ratio, stats_of
from kit.procs import CLK_TCK
from trackd_rig import ACCEPT_FULL_INTERVAL_S


TARGET_CRASH_MEDIAN_MS = 10.0


TARGET_HANG_MAX_MS = 2000.0


TARGET_CPU_RATIO = 100.0


TARGET_RSS_KB = 8 * 1024


def per_1000(cpu_s, cycles):
    return cpu_s / cycles * 1000.0 if cycles else None


def cpu_series(cpu_t, cpu_s, idle):
    t_client = per_1000(cpu_t["client_cpu_s"], cpu_t["cycles"])
    t_server = per_1000(cpu_t["server_cpu_s"], cpu_t["cycles"])
    s_client = per_1000(cpu_s["client_cpu_s"], cpu_s["cycles"])
    s_server = per_1000(cpu_s["server_cpu_s"], cpu_s["cycles"])
    cpu = {
        "pgtrackd": {"client_s_per_1000": t_client, "server_s_per_1000": t_server,
                     "total_s_per_1000": t_client + t_server, "window": cpu_t},
        "shell": {"client_s_per_1000": s_client, "server_s_per_1000": s_server,
                  "total_s_per_1000": s_client + s_server, "window": cpu_s},
        "idle_server": idle,
        "ratio_client": ratio(s_client, t_client),
        "ratio_server": ratio(s_server, t_server),
        "ratio_total": ratio(s_client + s_server, t_client + t_server),
    }
    return cpu


def ratio_target(cpu):
    return {"target": ">= %gx" % TARGET_CPU_RATIO, "value": cpu["ratio_total"],
            "met": cpu["ratio_total"] is not None and cpu["ratio_total"] >= TARGET_CPU_RATIO}


def build_result(args, env, runs, hangs, default_unix, default_tcp, at_interval, idle, mem,
                 trackd_notes):
    """default_unix, default_tcp, at_interval: (pgtrackd's CPU window, the
    shell's) at the default timings over each transport, and at
    --cpu-interval-ms over the unix socket."""
    crash = {k: stats_of([r.get(k) for r in runs])
             for k in ("pgtrackd", "shell", "sh_isready", "sh_role", "postmaster_exit",
                       "backend_exit", "witness_first_byte")}
    back = {k: stats_of([r["back_up_ms"][k] for r in runs]) for k in ("pgtrackd", "sh_isready", "sh_role")}
    hang = {k: stats_of([r.get(k) for r in hangs])
            for k in ("pgtrackd", "shell", "sh_isready", "sh_role")}
    cpu = cpu_series(at_interval[0], at_interval[1], idle)
    cpu_default = cpu_series(default_unix[0], default_unix[1], idle)
    cpu_default_tcp = cpu_series(default_tcp[0], default_tcp[1], idle)
    # not like with like, printed so that nobody has to work it out
    cpu_default_tcp_vs_unix_shell = cpu_series(default_tcp[0], default_unix[1], idle)
    med = crash["pgtrackd"]["median"]
    targets = {
        "crash_median_ms": {"target": "<= %g ms" % TARGET_CRASH_MEDIAN_MS, "value": med,
                            "met": med is not None and med <= TARGET_CRASH_MEDIAN_MS
                            and crash["pgtrackd"]["n"] == len(runs)},
        "hang_max_ms": {"target": "<= %g ms" % TARGET_HANG_MAX_MS, "value": hang["pgtrackd"]["max"],
                        "met": hang["pgtrackd"]["max"] is not None
                        and hang["pgtrackd"]["max"] <= TARGET_HANG_MAX_MS
                        and hang["pgtrackd"]["n"] == len(hangs)},
        "cpu_ratio_total_default_tcp": ratio_target(cpu_default_tcp),
        "cpu_ratio_total_default": ratio_target(cpu_default),
        "cpu_ratio_total": ratio_target(cpu),
        "cpu_ratio_client": {"target": ">= %gx" % TARGET_CPU_RATIO, "value": cpu["ratio_client"],
                             "met": cpu["ratio_client"] is not None
                             and cpu["ratio_client"] >= TARGET_CPU_RATIO},
        "rss_kb": {"target": "<= %d kB" % TARGET_RSS_KB,
                   "value": max(mem.get("VmRSS", 0), mem.get("VmHWM", 0)),
                   "met": max(mem.get("VmRSS", 0), mem.get("VmHWM", 0)) <= TARGET_RSS_KB},
    }
    return {"env": env, "crash": {"runs": runs, "ms": crash, "ratio_median":
                                  ratio(crash["shell"]["median"], med),
                                  "ratio_max": ratio(crash["shell"]["max"], crash["pgtrackd"]["max"]),
                                  "back_up_after_restart_ms": back},
            "hang": {"runs": hangs, "ms": hang},
            "cpu_default": cpu_default, "cpu_default_tcp": cpu_default_tcp, "cpu": cpu,
            "cpu_default_tcp_vs_unix_shell": cpu_default_tcp_vs_unix_shell,
            "memory_kb": mem, "pgtrackd": trackd_notes, "targets": targets}


def print_cpu(cpu, num, what):
    wt, ws = cpu["pgtrackd"]["window"], cpu["shell"]["window"]
    print("%s. %s: interval %d ms, accept_interval = interval  (pgtrackd %.0f cycles in %.1f s,"
          " shell %.0f cycles in %.1f s)" % (num, what, wt["interval_ms"], wt["cycles"],
                                            wt["elapsed_s"], ws["cycles"], ws["elapsed_s"]))
    print("   %-28s %14s %14s %14s" % ("CPU seconds / 1000 cycles", "client", "server", "total"))
    for k in ("pgtrackd", "shell"):
        x = cpu[k]
        print("   %-28s %14s %14s %14s" % (k, f(x["client_s_per_1000"], "%.4f"),
                                           f(x["server_s_per_1000"], "%.4f"),
                                           f(x["total_s_per_1000"], "%.4f")))
    print("   %-28s %13sx %13sx %13sx" % ("ratio shell/pgtrackd", f(cpu["ratio_client"], "%.0f"),
                                          f(cpu["ratio_server"], "%.0f"), f(cpu["ratio_total"], "%.0f")))
    print("   server side, pgtrackd: persistent backend %.4f s + postmaster %.4f s + exited children"
          " (accept probes, tick resolution 1/%d s) %.3f s" % (
              wt["server_backend_cpu_s"], wt["server_postmaster_cpu_s"], CLK_TCK,
              wt["server_exited_children_cpu_s"]))
    n_acc = wt["accept_probes_expected"]
    print("   pgtrackd server side per persistent probe %.3f ms; per accept probe (%.0f expected, "
          "a full connection every %.0f s, the others light) ~%s ms" % (
              wt["server_backend_cpu_s"] / wt["cycles"] * 1000.0, n_acc, ACCEPT_FULL_INTERVAL_S,
              f((wt["server_exited_children_cpu_s"] + wt["server_postmaster_cpu_s"]) / n_acc * 1000.0
                if n_acc >= 1 else None, "%.1f")))
    print("   server side, shell: postmaster %.4f s + exited backends %.3f s; idle baseline %.4f s over %.1f s"
          % (ws["server_postmaster_cpu_s"], ws["server_exited_children_cpu_s"],
             cpu["idle_server"]["server_cpu_s"], cpu["idle_server"]["elapsed_s"]))
    r = ws["runs"]
    print("   shell runs: pg_isready %d ok / %d failed / %d skipped, psql %d ok / %d failed / %d skipped"
          % (r["isready"]["ok"], r["isready"]["failed"], r["isready"]["skipped"],
             r["role"]["ok"], r["role"]["failed"], r["role"]["skipped"]))


def print_header(env):
    print()
    print("pgtrackd benchmark  (%s; PostgreSQL %s; %d CPUs; track dir on %s; load avg %.2f -> %.2f)" % (
        env["pgtrackd_version"], env["pg_version"], env["cpus"], env["track_dir_fs"],
        env["loadavg_start"][0], env["loadavg_end"][0]))
    if env.get("pg_settings"):
        print("server settings: %s" % ", ".join(env["pg_settings"]))
    print()


def print_table(res):
    env = res["env"]
    c = res["crash"]["ms"]
    cpu = res["cpu"]
    print_header(env)
    print("1. crash-to-file latency: kill -9 postmaster -> track file = -254  (%d runs, interval %d ms, "
          "watch on %s)" % (env["runs"], env["crash_interval_ms"],
                            "SCHED_RR %d" % env["observer_rt"] if env.get("observer_rt")
                            else "normal scheduling"))
    print("   %-34s %10s %10s %10s %10s" % ("", "median", "max", "min", "missed"))
    for k, label in (("pgtrackd", "pgtrackd"), ("shell", "shell (first of the two scripts)"),
                     ("sh_isready", "  pg_isready script"), ("sh_role", "  psql script")):
        s = c[k]
        print("   %-34s %7s ms %7s ms %7s ms %10d" % (label, f(s["median"]), f(s["max"]),
                                                      f(s["min"]), env["runs"] - s["n"]))
    for k, label in (("postmaster_exit", "(postmaster process gone)"),
                     ("backend_exit", "(pgtrackd's backend process gone)"),
                     ("witness_first_byte", "(--diag: FATAL reaches a client)")):
        s = c[k]
        if not s["n"]:
            continue
        print("   %-34s %7s ms %7s ms %7s ms" % (label, f(s["median"]), f(s["max"]), f(s["min"])))
    print("   ratio shell/pgtrackd: median %sx, max %sx" % (
        f(res["crash"]["ratio_median"], "%.0f"), f(res["crash"]["ratio_max"], "%.0f")))
    b = res["crash"]["back_up_after_restart_ms"]
    print("   (after pg_ctl start: pgtrackd back to 100 in median %s ms [rise = 2];"
          " pg_isready script %s ms, psql script %s ms)" % (
              f(b["pgtrackd"]["median"], "%.0f"), f(b["sh_isready"]["median"], "%.0f"),
              f(b["sh_role"]["median"], "%.0f")))
    print()
    h = res["hang"]["ms"]
    print("1b. hang-to-file latency: SIGSTOP postmaster -> track file = -254  (%d runs, interval %d ms,"
          " accept_interval unset)" % (len(res["hang"]["runs"]), env["crash_interval_ms"]))
    print("   %-34s %10s %10s %10s %10s" % ("", "median", "max", "min", "missed"))
    for k, label in (("pgtrackd", "pgtrackd"), ("shell", "shell (first of the two scripts)"),
                     ("sh_isready", "  pg_isready script"), ("sh_role", "  psql script")):
        x = h[k]
        print("   %-34s %7s ms %7s ms %7s ms %10d" % (label, f(x["median"]), f(x["max"]),
                                                      f(x["min"]), len(res["hang"]["runs"]) - x["n"]))
    print()
    print("2. CPU per 1000 probe cycles, each alone; the default timings first")
    print_cpu(res["cpu_default_tcp"], "2a", "default timings, both over TCP to 127.0.0.1 (pgtrackd's /proc state checks through the session's backend)")
    print_cpu(res["cpu_default"], "2b", "default timings, unix socket (/proc state checks)")
    print_cpu(cpu, "2c", "--cpu-interval-ms, unix socket")
    print()
    m = res["memory_kb"]
    print("3. pgtrackd memory at the end: VmRSS %s kB (RssAnon %s, RssFile %s), VmHWM %s kB" % (
        m.get("VmRSS"), m.get("RssAnon"), m.get("RssFile"), m.get("VmHWM")))
    print()
    print("targets:")
    t = res["targets"]
    lines = (
        ("crash-to-file median <= %g ms" % TARGET_CRASH_MEDIAN_MS,
         f(t["crash_median_ms"]["value"], "%.2f ms"), t["crash_median_ms"]["met"]),
        ("hang-to-file max <= %g ms" % TARGET_HANG_MAX_MS,
         f(t["hang_max_ms"]["value"], "%.0f ms"), t["hang_max_ms"]["met"]),
        ("CPU per cycle, defaults over TCP, total, >= %gx" % TARGET_CPU_RATIO,
         f(t["cpu_ratio_total_default_tcp"]["value"], "%.0fx"),
         t["cpu_ratio_total_default_tcp"]["met"]),
        ("  (pgtrackd TCP / shell unix, not like for like)",
         f(res["cpu_default_tcp_vs_unix_shell"]["ratio_total"], "%.0fx"), None),
        ("CPU per cycle, defaults, unix, total, >= %gx" % TARGET_CPU_RATIO,
         f(t["cpu_ratio_total_default"]["value"], "%.0fx"), t["cpu_ratio_total_default"]["met"]),
        ("CPU per cycle at --cpu-interval-ms, total, >= %gx" % TARGET_CPU_RATIO,
         f(t["cpu_ratio_total"]["value"], "%.0fx"), t["cpu_ratio_total"]["met"]),
        ("CPU per cycle at --cpu-interval-ms, client, >= %gx" % TARGET_CPU_RATIO,
         f(t["cpu_ratio_client"]["value"], "%.0fx"), t["cpu_ratio_client"]["met"]),
        ("RSS (max of VmRSS, VmHWM) <= %d kB" % TARGET_RSS_KB,
         "%d kB" % t["rss_kb"]["value"], t["rss_kb"]["met"]),
    )
    for label, val, met in lines:
        print("   %-50s %12s   %s" % (label, val, "" if met is None else "MET" if met else "NOT MET"))
    notes = res["pgtrackd"]
    if notes["problems"]:
        print()
        print("pgtrackd problems seen:")
        for p in notes["problems"]:
            print("   - " + p)
