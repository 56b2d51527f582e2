"""bench/failover's summary per series and mode, against the issue's targets,
and its report."""

import math
import statistics

import failover_run
from failover_run import ERROR_KINDS, PUSHBACK_HEURISTIC_MS

# the targets, per series
T_VIP_MEDIAN_MS = 100


T_VIP_MAX_MS = 200


T_WRITE_AFTER_PROMOTION_MS = 100


REFERENCE = ("issue 10: a two-node classic keepalived + repmgr lab with pgtrackd dropped in took the 3 s "
             "push-back in 11 of 20 crashes with a fast promotion; examples/lab/demo --promote-delay 0 put the "
             "VIP on the unpromoted standby at +675 ms and on the promoted one at +3,272 ms (32 read-only errors)")


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0, "median": None, "max": None, "min": None}
    return {"n": len(xs), "median": statistics.median(xs), "max": max(xs), "min": min(xs)}


def summarize_mode(series, rs, nerr):
    s = {
        "runs": len(rs), "errors": nerr,
        "detected_ms": stats([r["detected_ms"] for r in rs]),
        "vip_moved_ms": stats([r["vip_moved_ms"] for r in rs]),
        "vip_on_promoted_ms": stats([r["vip_on_promoted_ms"] for r in rs]),
        "promoted_ms": stats([r["promoted_ms"] for r in rs]),
        "first_write_ms": stats([r["first_write_ms"] for r in rs]),
        "first_write_after_promotion_ms": stats([r["first_write_after_promotion_ms"] for r in rs]),
        "failed_attempts": stats([r["failed_attempts"] for r in rs]),
        "backend_start_ms": stats([r.get("backend_start_ms") for r in rs]),
        "client_errors": {kd: sum(r["errors"].get(kd, 0) for r in rs) for kd in ERROR_KINDS},
        "client_errors_median": {kd: stats([r["errors"].get(kd, 0) for r in rs])["median"] for kd in ERROR_KINDS},
        "client_errors_max": {kd: stats([r["errors"].get(kd, 0) for r in rs])["max"] for kd in ERROR_KINDS},
        "errors_in_flight_at_crash": sum(r["errors_in_flight_at_crash"] for r in rs),
        "errors_begun_before_vip_left": sum(r.get("errors_begun_before_vip_left", 0) for r in rs),
        "vip_left_old_ms": stats([r["vip_left_old_ms"] for r in rs]),
        "error_other_texts": sorted({t for r in rs for t in r["error_other_texts"]}),
        "pushback_runs": sum(1 for r in rs if r["pushback"]),
        "pushback_methods": sorted({r["pushback_method"] for r in rs}),
        "vip_moved_twice_runs": sum(1 for r in rs if r["vip_moved_twice"]),
        "lost_writes": sum(r["lost_writes"] for r in rs),
        "runs_losing_writes": sum(1 for r in rs if r["lost_writes"]),
        "acknowledged": sum(r["acknowledged"] for r in rs),
    }
    obs = [r for r in rs if r.get("observed")]
    s["observed_runs"] = len(obs)
    s["took_vip_back"] = sum(1 for r in obs if r["old_took_vip_back"])
    s["targets"] = targets(series, s, rs)
    s["worst_miss"] = max([t["miss"] for t in s["targets"]] or [0.0])
    if not rs:
        s["worst_miss"] = math.inf if nerr else 0.0
    return s


def targets(series, s, rs):
    """The issue's targets for one series and mode. miss: how far off (1 =
    at the limit; > 1 missed, the larger the worse; counts that must be 0
    score 1 + count)."""
    out = []

    def ms_target(name, value, limit):
        met = value is not None and value <= limit
        miss = math.inf if value is None else value / limit if limit else value
        out.append({"target": name, "value": "-" if value is None else "%d ms" % value, "met": met,
                    "miss": round(miss, 2) if met else max(round(miss, 2), 1.01)})

    def zero_target(name, n, what):
        out.append({"target": name, "value": "%d %s" % (n, what), "met": n == 0,
                    "miss": 0.0 if n == 0 else 1.0 + n})

    if not rs:
        return out
    v = s["vip_moved_ms"]
    ms_target("VIP moved <= %d ms (median)" % T_VIP_MEDIAN_MS, v["median"], T_VIP_MEDIAN_MS)
    ms_target("VIP moved <= %d ms (max)" % T_VIP_MAX_MS, v["max"], T_VIP_MAX_MS)
    zero_target("no read-only error through the VIP", s["client_errors"]["read_only"], "read_only")
    zero_target("no refusal through the VIP", s["client_errors"]["refused"], "refused")
    ms_target("first write <= promotion + %d ms (max)" % T_WRITE_AFTER_PROMOTION_MS,
              s["first_write_after_promotion_ms"]["max"], T_WRITE_AFTER_PROMOTION_MS)
    zero_target("nothing acknowledged lost", s["lost_writes"], "lost")
    if not series.repmgr and series.promote < failover_run.CLIENT_TIMEOUT_S:
        n = sum(sum(r["errors"].values()) - r["errors_in_flight_at_crash"] for r in rs)
        zero_target("no failed attempt (promotion < %d s timeout)" % failover_run.CLIENT_TIMEOUT_S, n, "failed")
    return out


def summarize(runs, series_list, modes):
    out = []
    for se in series_list:
        entry = {"series": se.key, "label": se.label, "nodes": se.nodes, "promote": se.promote, "modes": {}}
        for m in se.modes(modes):
            rs = [r for r in runs if r["series"] == se.key and r["mode"] == m and r.get("ok")]
            nerr = sum(1 for r in runs if r["series"] == se.key and r["mode"] == m and not r.get("ok"))
            entry["modes"][m] = summarize_mode(se, rs, nerr)
        # sorted by the worst miss of mode pgtrackd (the targets are ours)
        sort_mode = "pgtrackd" if "pgtrackd" in entry["modes"] else next(iter(entry["modes"]), None)
        entry["sort_mode"] = sort_mode
        entry["worst_miss"] = entry["modes"][sort_mode]["worst_miss"] if sort_mode else 0.0
        out.append(entry)
    out.sort(key=lambda e: -e["worst_miss"])
    return out


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return "%.1f%s" % (v, unit)
    return "%d%s" % (v, unit)


def json_safe(o):
    if isinstance(o, float) and math.isinf(o):
        return "inf"
    if isinstance(o, dict):
        return {k: json_safe(v) for k, v in o.items()}
    if isinstance(o, list):
        return [json_safe(v) for v in o]
    return o


def errs_short(e):
    return "/".join(str(e.get(kd, 0)) for kd in ERROR_KINDS)


def report_series(e):
    """The summary table of one series: both modes side by side, figures and targets."""
    p = print
    p()
    ms_ = e["modes"]
    modes = list(ms_)
    p("== %s%s" % (e["label"], "   [worst miss %s]" % (
        "%.1fx" % e["worst_miss"] if not math.isinf(e["worst_miss"]) else "no data")
        if e["worst_miss"] > 1 else "   [all targets met]" if e["sort_mode"] and ms_[e["sort_mode"]]["runs"] else ""))
    p("  %-46s" % "" + "".join("%22s" % m for m in modes))
    p("  %-46s" % "" + "".join("%11s%11s" % ("median", "max") for _ in modes))
    for key, label in (("vip_left_old_ms", "crash -> VIP gone from the crashed node (ms)"),
                       ("vip_moved_ms", "crash -> VIP moved (ms)"),
                       ("vip_on_promoted_ms", "crash -> VIP on the promoted node (ms)"),
                       ("promoted_ms", "crash -> promotion done (ms)"),
                       ("first_write_ms", "crash -> first acknowledged write (ms)"),
                       ("first_write_after_promotion_ms", "first write - promotion (ms)"),
                       ("failed_attempts", "failed attempts before it"),
                       ("backend_start_ms", "PostgreSQL backend start, idle, after (ms)")):
        # .get: documents written before a figure existed lack it
        p("  %-46s" % label + "".join("%11s%11s" % (fmt(ms_[m].get(key, {}).get("median")),
                                                    fmt(ms_[m].get(key, {}).get("max")))
                                      for m in modes))
    for kd in ERROR_KINDS:
        p("  %-46s" % ("client errors: %s (total %s)" % (kd, "/".join(str(ms_[m]["client_errors"][kd]) for m in modes)))
          + "".join("%11s%11s" % (fmt(ms_[m]["client_errors_median"][kd]), fmt(ms_[m]["client_errors_max"][kd]))
                    for m in modes))
    for key, label in (("errors_in_flight_at_crash", "errors begun before the crash (total)"),
                       ("errors_begun_before_vip_left", "errors begun after, VIP still there (total)")):
        p("  %-46s" % label + "".join("%22s" % ms_[m][key] for m in modes))
    p("  %-46s" % "runs" + "".join("%22s" % ("%d%s" % (ms_[m]["runs"], " (+%d failed)" % ms_[m]["errors"]
                                                       if ms_[m]["errors"] else "")) for m in modes))
    for key, label in (("pushback_runs", "took keepalived's 3 s push-back"),
                       ("vip_moved_twice_runs", "VIP went to another node first"),
                       ("runs_losing_writes", "lost acknowledged writes")):
        p("  %-46s" % ("runs that " + label) + "".join("%22s" % ("%d of %d" % (ms_[m][key], ms_[m]["runs"]))
                                                         for m in modes))
    p("  %-46s" % "acknowledged writes lost (total)" +
      "".join("%22s" % ("%d of %d" % (ms_[m]["lost_writes"], ms_[m]["acknowledged"])) for m in modes))
    if any(ms_[m]["observed_runs"] for m in modes):
        p("  %-46s" % "old primary took the VIP back" +
          "".join("%22s" % ("%d of %d" % (ms_[m]["took_vip_back"], ms_[m]["observed_runs"])) for m in modes))
    p("  push-back detected from: %s" % "; ".join("%s %s" % (m, ",".join(ms_[m]["pushback_methods"]) or "-")
                                                 for m in modes))
    for m in modes:
        if ms_[m]["error_other_texts"]:
            p("  %s, errors of kind other: %s" % (m, " | ".join(ms_[m]["error_other_texts"])))
    p("  %-46s" % "targets" + "".join("%22s" % m for m in modes))
    names = []
    for m in modes:
        for t in ms_[m]["targets"]:
            if t["target"] not in names:
                names.append(t["target"])
    for n in names:
        cells = []
        for m in modes:
            t = next((t for t in ms_[m]["targets"] if t["target"] == n), None)
            cells.append("%22s" % ("-" if t is None else "%s %s" % (t["value"], "met" if t["met"] else "MISSED")))
        p("    %-44s" % n[:44] + "".join(cells))


def report(doc):
    env = doc["env"]
    p = print
    p()
    p("pgtrackd failover benchmark: kill -9 of the primary's postmaster, client INSERT through VIP:6432 every "
      "%d ms (connect_timeout %d s)" % (env["write_interval_ms"], env["client_timeout_s"]))
    p("  series: %s; modes %s (repmgr: pgtrackd only, the lab's classic mode has no repmgr); "
      "%d runs per series and mode, interleaved"
      % (", ".join(s["short"] for s in env["series"]), "+".join(env["modes"]), env["runs"]))
    p("  old primary restarted and watched: %s" % ("%.0f s" % env["observe_s"] if env["observe_s"] else "skipped (--observe 0)"))
    p("  %d CPUs; load average %s at start, %s at end; other labs running meanwhile: %s"
      % (env["cpus"], "/".join("%.2f" % x for x in env["loadavg_start"]),
         "/".join("%.2f" % x for x in env["loadavg_end"]),
         ", ".join(env["other_labs_seen"]) or "none seen"))
    p("  wall time %.0f s (estimated %.0f s); seed %d (random kill phase in [0, %d s), the same for both modes)"
      % (env["wall_s"], env["estimate_s"], env["seed"], env["classic"]["script_interval_s"]))
    p()
    hdr = ("  %-3s %-9s %-8s %4s %5s %-7s %6s %6s %6s %6s %6s %4s %-16s %3s %4s %4s %5s %6s"
           % ("run", "series", "mode", "load", "phase", "VIP", "VIP", "onprom", "prom", "1st wr", "wr-prm",
              "fail", "rf/ro/rs/to/pd/o", "pb", "2x", "lost", "back", "wall"))
    p(hdr)
    for r in doc["runs"]:
        sh = r["series"]
        if not r.get("ok"):
            p("  %-3d %-9s %-8s ERROR: %s (%.0f s)" % (r["run"], sh, r["mode"], r.get("error"),
                                                      r.get("duration_s", 0)))
            continue
        p("  %-3d %-9s %-8s %4.1f %5.2f %-7s %6s %6s %6s %6s %6s %4d %-16s %3s %4s %4d %5s %5.0fs" % (
            r["run"], sh, r["mode"], r["loadavg"][0], r["phase_s"],
            "%s>%s" % (r["old_primary"][1:], ">".join(x[1:] for x in r["vip_path"]) or "?"),
            fmt(r["vip_moved_ms"]), fmt(r["vip_on_promoted_ms"]), fmt(r["promoted_ms"]),
            fmt(r["first_write_ms"]), fmt(r["first_write_after_promotion_ms"]), r["failed_attempts"],
            errs_short(r["errors"]), ("yes" if r["pushback"] else "no") + ("*" if r["pushback_method"] == "heuristic" else ""),
            "yes" if r["vip_moved_twice"] else "no", r["lost_writes"],
            ("YES" if r["old_took_vip_back"] else "no") if r.get("observed") else "-", r["duration_s"]))
    p("  (ms after the crash. VIP: old node > nodes the VIP was added on; onprom: VIP on the promoted node; prom:")
    p("   promotion done (PostgreSQL's \"archive recovery complete\"); wr-prm: first write - promotion; fail: failed")
    p("   attempts before the first write; errors after the crash refused/read_only/reset/timeout/pending/other;")
    p("   pending: still unanswered connect_timeout + 2 s after the client's last attempt began; pb: took")
    p("   keepalived's 3 s push-back (* = heuristic VIP > %d ms); 2x: VIP went to another node first; back: old"
      % PUSHBACK_HEURISTIC_MS)
    p("   primary took the VIP back; wall: the run's wall time, lab set-up and teardown included)")

    for e in doc["summary"]:
        report_series(e)
    p()
    p("  " + REFERENCE)
    errs = [r for r in doc["runs"] if not r.get("ok")]
    if errs:
        p()
        p("errors: %d run(s) failed; see above" % len(errs))
