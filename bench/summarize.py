#!/usr/bin/env python3
"""Markdown tables, Kiln's ratios and issue #3's aims from one sitting's results.

usage: summarize.py RESULTS.jsonl [RESULTS.extra.jsonl ...]

Reads the jsonl that ../shared/bench/bench.sh and curl_latency.sh write (same fields
as ../shared/bench/summarize.py: later lines win over earlier duplicates), plus the
"calib" lines of calib.sh, the "health" lines of health_under_load.sh and the "cache" lines
of wrk-shim/wrk (Kiln's /health cache counters before and after each wrk run).
Prints, per dataset and cold/hot: req/s, p50, p99 and errors per server and
concurrency; then, per dataset ("case": dem, rgb, utm-dem, utm-rgb), Kiln at c=64 cold
beside Terracotta and the best TiTiler (req/s, p99, server CPU ms per tile, ratios, cache
hit rates); Kiln's
block- and tile-cache hit rates per run (Δhits / (Δhits + Δmisses) of /health's
"cache" counters; "n/a" when the server reports none); Kiln's req/s ratios (and p99
ratios) against each anchor, like with like (kiln vs the anchors' defaults,
kiln-bilinear vs Terracotta's bilinear default, kiln vs Terracotta forced to nearest);
then the aims at c=64 cold.
A cold run marked "(reused)" started or ran past the end of its tile list, so some of
its tiles had been requested before; "(!other load N%)" means other processes used
more than 5 % of a core during the run (cpu_watch.py).
"""
import json
import sys
from collections import OrderedDict

ERR_KEYS = ("err_connect", "err_read", "err_write", "err_timeout", "non200", "bad_body")
# (kiln config, anchor config, what the pair compares)
PAIRS = [
    ("kiln", "tc-gunicorn", "defaults: kiln nearest, Terracotta bilinear"),
    ("kiln", "tt-nodelay-2w", "defaults: both nearest"),
    ("kiln", "tt-nodelay-4w", "defaults: both nearest"),
    ("kiln", "tc-gunicorn-nearest", "matched: both nearest"),
    ("kiln-bilinear", "tc-gunicorn", "matched: both bilinear"),
]
AIMS = {"tc-gunicorn": 20.0, "tt-nodelay-2w": 10.0}
AIM_P99_MS, AIM_HEALTH_MS = 250.0, 50.0

wrk, curl, calib, health, cache = OrderedDict(), OrderedDict(), [], [], OrderedDict()
for path in sys.argv[1:]:
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        kind = d.get("kind")
        if kind == "calib":
            calib.append(d)
        elif kind == "health":
            health.append(d)
        elif kind == "cache":
            cache[(d["server"], d["mode"], d["conc"], d["offset"])] = d
        elif kind == "curl":
            server, _, ds = d["server"].rpartition("/")
            curl[(ds, server, d["mode"])] = d
        elif "rps" in d:
            server, _, ds = d["server"].rpartition("/")
            wrk[(ds, d["mode"], server, d["conc"])] = d


def errors(d):
    return sum(d.get(k, 0) for k in ERR_KEYS)


def reused(d):
    return d["mode"] == "cold" and (d.get("wrapped") or d["offset"] + d["requests"] > d["list_len"])


def fmt(v, nd=1):
    return "" if v is None else f"{v:,.{nd}f}"


def cache_delta(d, which):
    """(hits, misses) of cache `which` ("blocks"/"tiles") during wrk run d, or None when the
    run has no cache line or the server's /health has no such counters (older kiln)."""
    c = cache.get((d["server"], d["mode"], d["conc"], d["offset"]))
    try:
        a, b = c["after"][which], c["before"][which]
        return a["hits"] - b["hits"], a["misses"] - b["misses"]
    except (TypeError, KeyError):
        return None


def hit_rate(d, which):
    hm = cache_delta(d, which)
    if hm is None:
        return "n/a"
    h, m = hm
    return f"{100 * h / (h + m):.1f} %" if h + m > 0 else "– (0 lookups)"


def best_titiler(ds, mode="cold", c=64):
    tts = [k[2] for k in wrk if k[0] == ds and k[1] == mode and k[3] == c and k[2].startswith("tt-")]
    return max(tts, key=lambda s: wrk[(ds, mode, s, c)]["rps"], default=None)


datasets = sorted({k[0] for k in wrk})
for ds in datasets:
    for mode in ("cold", "hot"):
        servers = list(OrderedDict.fromkeys(k[2] for k in wrk if k[0] == ds and k[1] == mode))
        concs = sorted({k[3] for k in wrk if k[0] == ds and k[1] == mode})
        if not servers:
            continue
        print(f"\n#### {ds} / {mode}\n")
        print("| server | " + " | ".join(f"c={c} req/s | p50 ms | p99 ms | err" for c in concs) + " |")
        print("|---|" + "---:|---:|---:|---:|" * len(concs))
        for s in servers:
            cells = []
            for c in concs:
                d = wrk.get((ds, mode, s, c))
                if d is None:
                    cells += ["", "", "", ""]
                    continue
                flag = " (reused)" if reused(d) else ""
                if d.get("foreign_pct", 0) > 5:
                    flag += f" (!other load {d['foreign_pct']:.0f}%)"
                cells += [fmt(d["rps"]) + flag, fmt(d["p50_ms"]), fmt(d["p99_ms"]), str(errors(d))]
            print(f"| {s} | " + " | ".join(cells) + " |")

def cpu_ms(d):
    """Server CPU ms per response (cpu_watch.py): the figure other load disturbs least."""
    return 1000 * d["server_cpu_s"] / d["requests"] if d.get("server_cpu_s") and d["requests"] else None


if any(k[2] == "kiln" and k[1] == "cold" and k[3] == 64 for k in wrk):
    print("\n#### Kiln at 64 connections, cold tiles, per case\n")
    print("kiln ×: kiln's req/s / the anchor's; p99 ×: the anchor's p99 / kiln's; CPU ×: the anchor's "
          "server CPU ms per tile / kiln's (higher is better for kiln in all three). Best TiTiler: the "
          "TiTiler configuration with the most req/s in the sitting.\n")
    print("| case | server | req/s | p99 ms | server CPU ms/tile | kiln × | p99 × | CPU × | "
          "block-cache hits | tile-cache hits |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ds in datasets:
        dk = wrk.get((ds, "cold", "kiln", 64))
        if not dk:
            continue
        flag = " (reused)" if reused(dk) else ""
        if dk.get("foreign_pct", 0) > 5:
            flag += f" (!other load {dk['foreign_pct']:.0f}%)"
        print(f"| {ds} | kiln | {fmt(dk['rps'])}{flag} | {fmt(dk['p99_ms'])} | {fmt(cpu_ms(dk), 2)} | | | | "
              f"{hit_rate(dk, 'blocks')} | {hit_rate(dk, 'tiles')} |")
        for a in ("tc-gunicorn", best_titiler(ds)):
            da = wrk.get((ds, "cold", a, 64)) if a else None
            if not da or da["rps"] <= 0:
                continue
            flag = f" (!other load {da['foreign_pct']:.0f}%)" if da.get("foreign_pct", 0) > 5 else ""
            ck, ca = cpu_ms(dk), cpu_ms(da)
            print(f"| {ds} | {a} | {fmt(da['rps'])}{flag} | {fmt(da['p99_ms'])} | {fmt(ca, 2)} | "
                  f"{dk['rps'] / da['rps']:.1f} | {fmt(da['p99_ms'] / dk['p99_ms'] if dk['p99_ms'] > 0 else None)} | "
                  f"{fmt(ca / ck if ck and ca else None)} | | |")

kiln_runs = [d for k, d in wrk.items() if k[2].startswith("kiln")
             and (d["server"], d["mode"], d["conc"], d["offset"]) in cache]
if kiln_runs and not any(cache_delta(d, w) for d in kiln_runs for w in ("blocks", "tiles")):
    print("\n#### Kiln's cache hit rates: n/a (/health reports no cache counters: an older binary)")
elif kiln_runs:
    print("\n#### Kiln's cache hit rates per run (Δ of /health's cumulative counters around the "
          "wrk run; n/a: /health reports no cache counters)\n")
    print("| case | config | mode | c | block hits | block misses | block-cache hit rate | "
          "tile hits | tile misses | tile-cache hit rate | blocks cached after | MB cached after |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in sorted(kiln_runs, key=lambda d: (d["server"].rpartition("/")[2], d["server"], d["mode"], d["conc"])):
        server, _, ds = d["server"].rpartition("/")
        b, t = cache_delta(d, "blocks"), cache_delta(d, "tiles")
        c = cache.get((d["server"], d["mode"], d["conc"], d["offset"])) or {}
        after = ((c.get("after") or {}).get("blocks")) or {}
        mb = after.get("bytes")
        print(f"| {ds} | {server} | {d['mode']} | {d['conc']} | "
              f"{b[0] if b else 'n/a'} | {b[1] if b else 'n/a'} | {hit_rate(d, 'blocks')} | "
              f"{t[0] if t else 'n/a'} | {t[1] if t else 'n/a'} | {hit_rate(d, 'tiles')} | "
              f"{after.get('entries', 'n/a')} | {fmt(mb / 1e6) if mb is not None else 'n/a'} |")

ratio_rows = []
for k, a, what in PAIRS:
    for ds in datasets:
        for mode in ("cold", "hot"):
            for c in sorted({key[3] for key in wrk}):
                dk, da = wrk.get((ds, mode, k, c)), wrk.get((ds, mode, a, c))
                if dk and da and da["rps"] > 0:
                    p99 = da["p99_ms"] / dk["p99_ms"] if dk["p99_ms"] > 0 else None
                    ratio_rows.append((k, a, what, ds, mode, c, dk["rps"] / da["rps"], p99))
if ratio_rows:
    print("\n#### Kiln's ratios (req/s kiln / anchor; p99 anchor / kiln, higher is better for kiln)\n")
    print("| kiln | vs | compares | dataset | mode | c | req/s × | p99 × |")
    print("|---|---|---|---|---|---:|---:|---:|")
    for k, a, what, ds, mode, c, r, p in ratio_rows:
        print(f"| {k} | {a} | {what} | {ds} | {mode} | {c} | {r:.1f} | {fmt(p)} |")

if any(k[2] == "kiln" and k[1] == "cold" and k[3] == 64 for k in wrk) or any(h["server"] == "kiln" for h in health):
    print("\n#### Aims at 64 connections, cold tiles (issue #3)\n")
    print("| check | dataset | value | aim | met |")
    print("|---|---|---:|---:|---|")
    for ds in datasets:
        dk = wrk.get((ds, "cold", "kiln", 64))
        if not dk:
            continue
        # TiTiler's aim is against its best worker count measured in the sitting
        best_tt = best_titiler(ds) or "tt-nodelay-2w"
        for a, aim in (("tc-gunicorn", AIMS["tc-gunicorn"]), (best_tt, AIMS["tt-nodelay-2w"])):
            da = wrk.get((ds, "cold", a, 64))
            if da and da["rps"] > 0:
                r = dk["rps"] / da["rps"]
                print(f"| req/s vs {a} | {ds} | {r:.1f}× | ≥ {aim:.0f}× | {'yes' if r >= aim else 'NO'} |")
        print(f"| kiln p99 | {ds} | {dk['p99_ms']:.1f} ms | < {AIM_P99_MS:.0f} ms | "
              f"{'yes' if dk['p99_ms'] < AIM_P99_MS else 'NO'} |")
        print(f"| kiln errors | {ds} | {errors(dk)} | 0 | {'yes' if errors(dk) == 0 else 'NO'} |")
    for h in (h for h in health if h["server"] == "kiln"):
        p99 = h["loaded"]["p99_ms"]
        ok = p99 is not None and p99 < AIM_HEALTH_MS and h["loaded"]["failed"] == 0
        print(f"| /health p99 under load | dem | {fmt(p99)} ms | < {AIM_HEALTH_MS:.0f} ms | {'yes' if ok else 'NO'} |")

if health:
    print("\n#### /health while saturated (curl, sequential, new connection each; ms)\n")
    print("| server | idle p50 | idle p99 | loaded p50 | loaded p99 | loaded max | failed | "
          "load req/s | load p99 | load errors | load ran throughout |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for h in health:
        i, l, w = h["idle"], h["loaded"], h.get("load", {})
        print(f"| {h['server']} {h.get('path', '/health')} (n={l['n']}, c={h['conc']}) | {fmt(i['p50_ms'], 2)} | {fmt(i['p99_ms'], 2)} | "
              f"{fmt(l['p50_ms'], 2)} | {fmt(l['p99_ms'], 2)} | {fmt(l['max_ms'], 2)} | {l['failed']} | "
              f"{fmt(w.get('rps'))} | {fmt(w.get('p99_ms'))} | {w.get('errors', '')} | "
              f"{'yes' if h['load_running_at_end'] else 'NO'} |")

if curl:
    print("\n#### single request (curl, new connection each, sequential; ms)\n")
    print("| server | dataset | hot median | hot p90 | cold median | cold p90 | non-200 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for s, ds in OrderedDict.fromkeys((k[1], k[0]) for k in curl):
        h, c = curl.get((ds, s, "hot"), {}), curl.get((ds, s, "cold"), {})
        print(f"| {s} | {ds} | {h.get('median_ms')} | {h.get('p90_ms')} | {c.get('median_ms')} | "
              f"{c.get('p90_ms')} | {h.get('non200', 0) + c.get('non200', 0)} |")

if calib:
    print("\n#### calib.sh (fixed CPU job, median ms; drift = the host changed speed)\n")
    print("| at | before | median ms | min | max |")
    print("|---|---|---:|---:|---:|")
    for d in calib:
        print(f"| {d['at']} | {d['label']} | {d['median_ms']} | {d['min_ms']} | {d['max_ms']} |")
