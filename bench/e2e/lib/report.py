#!/usr/bin/python3
"""Turn the raw files that bench/e2e/run leaves in OUT into figures.

usage: report.py OUT

Reads OUT/meta.json and OUT/run<r>-<transport>-<server>/ (server: kam2 =
Kamailio children=2, kam8 = Kamailio children=8, msilo = msilo-server,
ceil = stateless 202); writes OUT/results.json and prints the tables.
The parsing helpers are the peer harness's (shared/peer/lib/report.py).
Every figure comes from files written by sipp, /usr/bin/time, psql and
lib/procstat.py; nothing is estimated.
"""
import collections
import glob
import json
import os
import re
import statistics
import sys


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def sipp_stat(path):
    """Last line of a sipp -trace_stat CSV as a dict."""
    text = read(path)
    if not text:
        return {}
    lines = [l for l in text.splitlines() if l.strip()]
    hdr = lines[0].rstrip(";").split(";")
    last = lines[-1].rstrip(";").split(";")
    d = dict(zip(hdr, last))

    def epoch(v):
        # "YYYY-MM-DD\tHH:MM:SS.us\tEPOCH.us"
        return float(v.split("\t")[-1])

    out = {k: v for k, v in d.items()}
    for k in ("StartTime", "CurrentTime"):
        if k in d:
            out[k] = epoch(d[k])
    return out


def ival(st, key):
    try:
        return int(st.get(key, "0") or 0)
    except ValueError:
        return 0


def ms(v):
    """sipp 'HH:MM:SS:usec' (or HH:MM:SS:mmm) -> milliseconds."""
    if not v:
        return None
    p = v.split(":")
    if len(p) != 4:
        return None
    h, m, s, frac = p
    base = (int(h) * 3600 + int(m) * 60 + int(s)) * 1000.0
    if len(frac) == 6:
        return base + int(frac) / 1000.0
    return base + int(frac)


def cpu(dirpath, phase, time_file):
    a = read(os.path.join(dirpath, f"{phase}_cpu_a.json"))
    b = read(os.path.join(dirpath, f"{phase}_cpu_b.json"))
    if not a or not b:
        return {}
    a, b = json.loads(a), json.loads(b)
    hz = a["hz"]
    d = {k: (b[k] - a[k]) / hz for k in a if k not in ("t", "hz", "udp_rcvbuf_errors")}
    d["udp_drops"] = b.get("udp_rcvbuf_errors", 0) - a.get("udp_rcvbuf_errors", 0)
    d["window_s"] = b["t"] - a["t"]
    t = read(os.path.join(dirpath, time_file))
    sipp = 0.0
    if t:
        last = t.strip().splitlines()[-1].split()
        sipp = float(last[1]) + float(last[2])
    d["sipp_uac"] = sipp
    d["sipp"] = sipp + d.get("uas", 0.0)
    known = d.get("srv", 0) + d.get("pg", 0) + d["sipp"] + d.get("poll", 0)
    d["other"] = d["busy"] - d.get("steal", 0) - known
    ncpu = os.cpu_count() or 1
    d["busy_pct"] = 100.0 * d["busy"] / d["total"] if d["total"] else None
    d["ncpu"] = ncpu
    return d


def db_kv(path):
    out = {}
    for line in (read(path) or "").splitlines():
        k, _, v = line.partition("=")
        if k:
            out[k.strip()] = v.strip()
    return out


def store(dirpath, n, pfx="store", prefill_rows=0):
    """prefill_rows: rows the table held before the phase (scaling mode);
    silo_rows etc. count the rows the phase stored, total_rows the table"""
    st = sipp_stat(os.path.join(dirpath, f"{pfx}.csv"))
    c = cpu(dirpath, pfx, f"{pfx}.time")
    db = db_kv(os.path.join(dirpath, f"{pfx}_db.txt"))
    wall = (st["CurrentTime"] - st["StartTime"]) if st else None
    rc = (read(os.path.join(dirpath, f"{pfx}.rc")) or "").strip()
    r = {
        "sipp_rc": int(rc) if rc.lstrip("-").isdigit() else None,
        "wall_s": wall,
        "rate": n / wall if wall else None,
        "ok_202": ival(st, "SuccessfulCall(C)"),
        "failed": ival(st, "FailedCall(C)"),
        "unexpected": ival(st, "FailedUnexpectedMessage(C)"),
        "timeouts": ival(st, "FailedMaxUDPRetrans(C)") + ival(st, "FailedTimeoutOnRecv(C)"),
        "retrans": ival(st, "Retransmissions(C)"),
        "resp_ms_mean": ms(st.get("ResponseTime1(C)")),
        "silo_rows": int(db.get("rows", -1)),
        "silo_users": int(db.get("users", -1)),
        "silo_min_per_user": int(db.get("min_per_user", -1) or -1),
        "silo_max_per_user": int(db.get("max_per_user", -1) or -1),
        "silo_distinct_bodies": int(db.get("bodies", -1)),
        "prefill_rows": int(db.get("prefill_rows", 0) or 0),
        "total_rows": int(db.get("total_rows", db.get("rows", -1)) or -1),
        "cpu": c,
    }
    r["rows_ok"] = (r["silo_rows"] == n and r["prefill_rows"] == prefill_rows and
                    r["total_rows"] == prefill_rows + n)
    if c and wall:
        r["sipp_cpu_pct"] = 100.0 * c["sipp_uac"] / wall
    codes = collections.Counter()
    # sipp -trace_error_codes: "<time>;<elapsed>;<code>;<code>;..." per period
    for f in glob.glob(os.path.join(dirpath, f"{pfx}_error_codes.csv")):
        for line in read(f, "").splitlines():
            for field in line.split(";")[2:]:
                if re.fullmatch(r"[1-6]\d\d", field.strip()):
                    codes[field.strip()] += 1
    r["unexpected_codes"] = dict(codes)
    return r


def dump(dirpath, n):
    reg = sipp_stat(os.path.join(dirpath, "reg.csv"))
    uas = sipp_stat(os.path.join(dirpath, "uas.csv"))
    c = cpu(dirpath, "dump", "reg.time")
    db = db_kv(os.path.join(dirpath, "dump_db.txt"))
    regs = []
    for line in (read(os.path.join(dirpath, "reg.log")) or "").splitlines():
        p = line.split("\t")
        if p[0] == "REG" and len(p) >= 4:
            regs.append(float(p[3]))
    msgs = []
    for line in (read(os.path.join(dirpath, "uas.log")) or "").splitlines():
        p = line.split("\t")
        if p[0] == "MSG" and len(p) >= 5:
            msgs.append((float(p[3]), p[4].strip(), p[5].strip() if len(p) > 5 else ""))
    msgs.sort()
    t0 = min(regs) if regs else None
    seen = set()
    t_all = None
    for t, mid, _ in msgs:
        seen.add(mid)
        if t_all is None and len(seen) >= n:
            t_all = t
    per_id = collections.defaultdict(set)
    for _, mid, cid in msgs:
        per_id[mid].add(cid)
    expected = {str(i) for i in range(1, n + 1)}
    empty = (read(os.path.join(dirpath, "dump_empty.txt")) or "").strip()
    t_empty = float(empty) if re.match(r"^\d+(\.\d+)?$", empty) else None
    r = {
        "registers": len(regs),
        "reg_ok": ival(reg, "SuccessfulCall(C)"),
        "reg_failed": ival(reg, "FailedCall(C)"),
        "reg_retrans": ival(reg, "Retransmissions(C)"),
        "uas_lines": len(msgs),
        "uas_distinct": len(seen),
        "uas_unknown_ids": len(seen - expected),
        "lost": len(expected - seen),
        # same msgid in two different dialogs = delivered twice by msilo
        "duplicates": sum(1 for s in per_id.values() if len(s) > 1),
        "dup_lines": len(msgs) - len(seen),
        "uas_retrans_rcvd": ival(uas, "Retransmissions(C)"),
        "t_all_s": (t_all - t0) if (t_all and t0) else None,
        "t_empty_s": (t_empty - t0) if (t_empty and t0) else None,
        "silo_left": int(db.get("rows_left", -1)),
        "silo_restored": int(db.get("restored", -1)),
        "failure_route_stores": int(db.get("failure_route_stores", -1)),
        "server_errors": int(db.get("server_errors", -1)),
        "cpu": c,
    }
    r["rate_delivered"] = n / r["t_all_s"] if r["t_all_s"] else None
    r["rate_empty"] = n / r["t_empty_s"] if r["t_empty_s"] else None
    if msgs and t0:
        r["first_delivery_s"] = msgs[0][0] - t0
    return r


def pgbench(path):
    text = read(path)
    if not text:
        return None
    out = {}
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    out["tps"] = float(m.group(1)) if m else None
    m = re.search(r"latency average = ([\d.]+) ms", text)
    out["lat_ms"] = float(m.group(1)) if m else None
    m = re.search(r"number of transactions actually processed: (\d+)", text)
    out["xacts"] = int(m.group(1)) if m else None
    m = re.search(r"number of failed transactions: (\d+)", text)
    out["failed"] = int(m.group(1)) if m else 0
    return out


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt(v, nd=0):
    if v is None:
        return "n/a"
    return f"{v:.{nd}f}"


def spread(vals, nd=0):
    m, lo, hi = med(vals)
    if m is None:
        return "n/a"
    pct = ""
    if m:
        pct = f" (±{100.0 * (hi - lo) / 2 / m:.0f}%)"
    return f"{fmt(m, nd)} [{fmt(lo, nd)}–{fmt(hi, nd)}]{pct}"


N_MSGS = 20000


def per_msg(phase, key, n=None):
    v = (phase.get("cpu") or {}).get(key)
    return None if v is None else 1e6 * v / (n or N_MSGS)




def lat(dirpath):
    """MESSAGE -> 202 response times (ms) from the LAT lines of lat.log
    (sipp [timestamp] is "date<tab>time<tab>epoch.us")."""
    sent, vals = {}, []
    for line in (read(os.path.join(dirpath, "lat.log")) or "").splitlines():
        p = line.split("\t")
        if p[0] != "LAT" or len(p) < 6:
            continue
        t, cn = float(p[4]), p[5].strip()
        if p[1] == "S":
            sent.setdefault(cn, t)
        elif p[1] == "R" and cn in sent:
            vals.append(1000.0 * (t - sent[cn]))
    vals.sort()
    if not vals:
        return {"n": 0}

    def q(f):
        return vals[min(len(vals) - 1, int(f * len(vals)))]
    return {"n": len(vals), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": vals[-1],
            "mean": sum(vals) / len(vals)}


KAMS = ("kam2", "kam8", "kam16")  # Kamailio + msilo at its children counts
NAMES = {"kam2": "Kamailio c=2", "kam8": "Kamailio c=8", "kam16": "Kamailio c=16",
         "msilo": "libmsilo",
         "lib2": "Kam+msilo_lib c=2", "lib8": "Kam+msilo_lib c=8",
         "msiloq": "libmsilo quota", "ceil": "stateless 202", "tmceil": "stateful 202"}


SCALE_HDR = ("| server | prefill/user | rows in table | STORE msg/s | server µs/msg | postgres µs/msg"
             " | mean resp ms | start-up s | seq scans (rows read) | owner-index entries read/msg"
             " | integrity |\n|---|---|---|---|---|---|---|---|---|---|---|")


def scale_rows(res):
    """One markdown row per (transport, server, run) of a PREFILL invocation."""
    meta = res["meta"]
    users = int(meta.get("USERS", 2000))
    out = []
    for tr, kinds in sorted(res["runs"].items()):
        for k in KAMS + ("lib2", "lib8", "msilo", "msiloq"):
            for e in sorted(kinds.get(k, []), key=lambda x: x["run"]):
                s = e["store"]
                ts = e.get("table_stats") or {}
                ok = (s["rows_ok"] and s["failed"] == 0 and s["ok_202"] == s["silo_rows"] and
                      s["silo_distinct_bodies"] == s["silo_rows"] and s["sipp_rc"] == 0)
                name = NAMES[k] + (f" ({tr}, run {e['run']})" if len(res["runs"]) > 1 or
                                   meta.get("RUNS", 1) > 1 else "")
                out.append(
                    f"| {name} | {meta.get('PREFILL')} | {s['total_rows']:,} | {fmt(s['rate'])}"
                    f" | {fmt(per_msg(s, 'srv'))} | {fmt(per_msg(s, 'pg'))}"
                    f" | {fmt(s['resp_ms_mean'], 1)} | {e.get('startup_s', 'n/a')}"
                    f" | {ts.get('seq_scan', 'n/a')} ({ts.get('seq_tup_read', 0):,})"
                    f" | {fmt(ts['owner_idx_tup_read'] / s['silo_rows'], 1) if 'owner_idx_tup_read' in ts and s['silo_rows'] > 0 else 'n/a'}"
                    f" | {'ok' if ok else 'FAILED'}: 202={s['ok_202']} err={s['failed']}"
                    f" retrans={s['retrans']} new rows={s['silo_rows']}"
                    f" ({s['silo_min_per_user']}–{s['silo_max_per_user']}/user)"
                    f" old={s['prefill_rows']:,} |")
    return out


def medv(vals):
    return med(vals)[0]


def ratio(a, b):
    return None if (a is None or not b) else a / b


def main(out):
    meta = json.loads(read(os.path.join(out, "meta.json"), "{}"))
    n = int(meta.get("N", 20000))
    lat_n = int(meta.get("LAT_N", 5000))
    global N_MSGS
    N_MSGS = n
    prefill = meta.get("PREFILL")
    res = {"meta": meta, "runs": {}}
    for d in sorted(glob.glob(os.path.join(out, "run*-*-*"))):
        m = re.match(r"run(\d+)-(\w+)-(\w+)$", os.path.basename(d))
        if not m:
            continue
        r, tr, kind = int(m.group(1)), m.group(2), m.group(3)
        e = {"run": r, "store": store(d, n, prefill_rows=(prefill or 0) * int(meta.get("USERS", 2000)))}
        if prefill is not None:
            e["startup_s"] = int((read(os.path.join(d, "startup_busy_s.txt")) or "-1").strip())
            a = db_kv(os.path.join(d, "store_tstat_a.txt"))
            b = db_kv(os.path.join(d, "store_tstat_b.txt"))
            e["table_stats"] = {k: int(b[k] or 0) - int(a.get(k) or 0) for k in b}
        elif kind not in ("ceil", "tmceil"):
            e["dump"] = dump(d, n)
            e["lat"] = lat(d)
            e["lat_store"] = store(d, lat_n, "lat")
        res["runs"].setdefault(tr, {}).setdefault(kind, []).append(e)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)

    p = print
    p("")
    p("=" * 100)
    p(f"bench/e2e: {meta.get('server', '?')} ({meta.get('git', '?')}) vs Kamailio"
      f" {meta.get('kamailio', '?')} msilo, PostgreSQL {meta.get('postgres', '?')},"
      f" sipp {meta.get('sipp', '?')} -- {meta.get('date', '?')}")
    p(f"host {meta.get('host', '?')}: {meta.get('ncpu', '?')} x {meta.get('cpu_model', '?')},"
      f" {meta.get('mem_mib', '?')} MiB, Linux {meta.get('kernel', '?')}")
    p(f"msilo-server environment: {meta.get('msilo_env') or '(none)'};"
      f" transparent huge pages: {meta.get('thp', '?')};"
      f" extra config: {meta.get('msilo_conf') or '(none: defaults + add_date = 1)'}")
    p(f"N={n} MESSAGEs to {meta.get('USERS')} users; STORE -l {meta.get('STORE_LIMIT')}"
      f" -r {meta.get('RATE')}; REGISTER -l {meta.get('REG_LIMIT')}; Kamailio check_time="
      f"{meta.get('CHECK_TIME')} s; latency: {lat_n} MESSAGEs at -r {meta.get('LAT_RATE')};"
      f" runs={meta.get('RUNS')}")
    p("PostgreSQL: " + (read(os.path.join(out, "pg_settings.txt"), "?").strip()))
    p("Commit latency: " + (read(os.path.join(out, "commit_latency.txt"), "?").strip()))
    p("Figures: median [min–max] over the runs; ratios are of medians from this invocation")
    p("=" * 100)
    if prefill is not None:
        p(f"\nScaling mode: PREFILL={prefill} old messages per user before STORE; STORE only;"
          f" libmsilo quota = max_messages {meta.get('MAX_MESSAGES')}; CPU µs per stored message\n")
        p(SCALE_HDR)
        for line in scale_rows(res):
            p(line)
        p("")
        return

    targets = []
    for tr, kinds in res["runs"].items():
        p(f"\n##### {tr.upper()} #####")
        cols = [k for k in KAMS + ("lib2", "lib8", "msilo") if k in kinds]
        ceil = kinds.get("ceil", [])
        ceil_rate = medv([c["store"]["rate"] for c in ceil])

        def row(label, fn, nd=0, lower=False):
            """lower: smaller is better (latency, CPU): "best" is the minimum"""
            cells = []
            meds = {}
            for k in cols:
                vals = [fn(e) for e in kinds[k]]
                meds[k] = medv(vals)
                cells.append(f"{spread(vals, nd):<28} ")
            extra = ""
            if "msilo" in meds and any(k in meds for k in KAMS):
                r2 = ratio(meds.get("msilo"), meds.get("kam2"))
                kv = [v for k, v in meds.items() if k in KAMS and v is not None]
                best = (min if lower else max)(kv, default=None)
                rb = ratio(meds.get("msilo"), best)
                extra = f" x{fmt(r2, 2)} / x{fmt(rb, 2)}"
            for n in ("2", "8"):  # Kamailio + msilo_lib against Kamailio + msilo, same children
                if "lib" + n in meds and "kam" + n in meds:
                    extra += f"  lib{n}/kam{n} x{fmt(ratio(meds['lib' + n], meds['kam' + n]), 2)}"
            p(f"  {label:<26}" + "".join(cells) + extra)
            return meds

        p(f"  {'':<26}" + "".join(f"{NAMES[k]:<29}" for k in cols) + " libmsilo/c=2 / Kamailio's best")
        st = row("STORE msg/s", lambda e: e["store"]["rate"])
        dd = row("DUMP msg/s all delivered", lambda e: e["dump"]["rate_delivered"])
        de = row("DUMP msg/s table empty", lambda e: e["dump"]["rate_empty"])
        p50 = row(f"latency p50 ms @{meta.get('LAT_RATE')}/s", lambda e: e["lat"].get("p50"), 2, lower=True)
        p99 = row(f"latency p99 ms @{meta.get('LAT_RATE')}/s", lambda e: e["lat"].get("p99"), 2, lower=True)
        row("latency achieved msg/s", lambda e: e["lat_store"]["rate"])
        row("STORE mean response ms", lambda e: e["store"]["resp_ms_mean"], 1, lower=True)
        def cpu_rows(phase, title, sipp_label):
            """The CPU figures of one phase ("store" or "dump") of each kind."""
            p(f"  CPU µs per message ({title}):")
            row("  server", lambda e: per_msg(e[phase], "srv"), lower=True)
            row("  postgres", lambda e: per_msg(e[phase], "pg"), lower=True)
            row(f"  {sipp_label}", lambda e: per_msg(e[phase], "sipp"), lower=True)
            both = row("  server+postgres", lambda e: (per_msg(e[phase], "srv") or 0) + (per_msg(e[phase], "pg") or 0), lower=True)
            p(f"  CPU seconds ({title}): server / postgres / sipp / stolen; machine busy %")
            for k in cols:
                c = [e[phase]["cpu"] for e in kinds[k]]
                p(f"    {NAMES[k]:<16} {spread([x.get('srv') for x in c], 2)} / {spread([x.get('pg') for x in c], 2)}"
                  f" / {spread([x.get('sipp') for x in c], 2)} / {spread([x.get('steal') for x in c], 2)};"
                  f" busy {spread([x.get('busy_pct') for x in c])}%")
            return both

        cpu_st = cpu_rows("store", "STORE", "sipp")
        cpu_rows("dump", "DUMP", "sipp (UAS+REG)")
        if ceil:
            p(f"  ceiling (stateless 202, Kamailio -A SIPP_CEILING): {spread([c['store']['rate'] for c in ceil])} msg/s;"
              + "; ".join(f" run {c['run']}: 202={c['store']['ok_202']} failed={c['store']['failed']}"
                          f" retrans={c['store']['retrans']}" for c in ceil))
            for k in cols:
                p(f"  STORE {NAMES[k]:<14} = {fmt(100 * st[k] / ceil_rate if st.get(k) and ceil_rate else None)}%"
                  " of the ceiling")
        tm = kinds.get("tmceil", [])
        if tm:
            tm_rate = medv([c["store"]["rate"] for c in tm])
            p(f"  stateful ceiling (202 through tm, Kamailio -A SIPP_TM_CEILING, children=8):"
              f" {spread([c['store']['rate'] for c in tm])} msg/s"
              f" ({fmt(100 * tm_rate / ceil_rate if tm_rate and ceil_rate else None)}% of the ceiling);"
              f" CPU µs/msg Kamailio {spread([per_msg(c['store'], 'srv') for c in tm])},"
              f" sipp {spread([per_msg(c['store'], 'sipp') for c in tm])};"
              + "; ".join(f" run {c['run']}: 202={c['store']['ok_202']} failed={c['store']['failed']}"
                          f" retrans={c['store']['retrans']}" for c in tm))
        p("  integrity per run:")
        for k in cols:
            for e in sorted(kinds[k], key=lambda x: x["run"]):
                s, d, ls = e["store"], e["dump"], e["lat_store"]
                p(f"    {NAMES[k]:<14} run {e['run']}: STORE 202={s['ok_202']} errors={s['failed']}"
                  f" retrans={s['retrans']} codes={s['unexpected_codes'] or '-'} rows={s['silo_rows']}"
                  f" ({'=N' if s['rows_ok'] else 'MISMATCH'}) distinct bodies={s['silo_distinct_bodies']}"
                  f" UDP drops={s['cpu'].get('udp_drops')}; LAT 202={ls['ok_202']} errors={ls['failed']}"
                  f" rtt samples={e['lat'].get('n')}")
                p(f"    {'':<14}        DUMP REGISTER ok={d['reg_ok']} failed={d['reg_failed']}"
                  f" retrans={d['reg_retrans']}; UAS {d['uas_lines']} MESSAGEs, {d['uas_distinct']}"
                  f" distinct, lost={d['lost']} duplicated={d['duplicates']}"
                  f" retrans={d['uas_retrans_rcvd']}; left in table={d['silo_left']}"
                  f" server log errors={d['server_errors']} UDP drops={d['cpu'].get('udp_drops')}")
        if "msilo" in cols:
            # issue 18's targets, against Kamailio + msilo at its best children count
            kb = [v for k, v in st.items() if k in KAMS and v]
            best_st = max(kb) if kb else None
            kd = [v for k, v in de.items() if k in KAMS and v]
            best_de = max(kd) if kd else None
            kl99 = [v for k, v in p99.items() if k in KAMS and v is not None]
            kc = [v for k, v in cpu_st.items() if k in KAMS and v]
            best_cpu = min(kc) if kc else None
            ms = kinds["msilo"]
            integ = all(e["dump"]["lost"] == 0 and e["dump"]["duplicates"] == 0 and
                        e["store"]["failed"] == 0 and e["store"]["rows_ok"] for e in ms)
            want_st = min(x for x in (3 * best_st if best_st else None,
                                      0.9 * ceil_rate if ceil_rate else None) if x is not None) \
                if (best_st or ceil_rate) else None
            rs = ratio(st.get("msilo"), best_st)
            rd = ratio(de.get("msilo"), best_de)
            rc = ratio(st.get("msilo"), ceil_rate)
            rcpu = ratio(cpu_st.get("msilo"), best_cpu)
            targets += [
                (tr, f"STORE >= min(3x Kamailio, 90% ceil) = {fmt(want_st)}/s",
                 f"{fmt(st.get('msilo'))}/s (x{fmt(rs, 2)}, {fmt(100 * rc if rc else None)}% of ceiling)",
                 st.get("msilo") is not None and want_st is not None and st["msilo"] >= want_st),
                (tr, "DUMP (table empty) >= 5x Kamailio best", rd, rd is not None and rd >= 5),
                (tr, "latency p99 lower", (p99.get("msilo"), min(kl99) if kl99 else None),
                 p99.get("msilo") is not None and kl99 and p99["msilo"] < min(kl99)),
                (tr, "CPU/msg STORE server+pg <= 1/4 Kamailio's", rcpu,
                 rcpu is not None and rcpu <= 0.25),
                (tr, "0 lost, 0 duplicated, 0 errors", None, integ),
            ]
    if targets:
        p("\n##### targets (issue 18: libmsilo vs Kamailio + msilo's best children count, medians) #####")
        for tr, what, v, ok in targets:
            if isinstance(v, str):
                vs = v
            elif isinstance(v, tuple):
                vs = f"{fmt(v[0], 2)} ms vs {fmt(v[1], 2)} ms"
            elif v is None:
                vs = ""
            elif "ceiling" in what:
                vs = f"{100 * v:.0f}%"
            else:
                vs = f"x{v:.2f}"
            p(f"  {tr.upper():<4} {what:<48} {vs:<36} {'MET' if ok else 'NOT MET'}")
    p("")


if __name__ == "__main__":
    main(sys.argv[1])
