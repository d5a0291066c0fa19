#!/usr/bin/env bash
# /health latency while a tile server is saturated with cold tiles.
# usage: health_under_load.sh NAME BASE_URL PATHS OUT.jsonl [N=200] [CONC=64] [OFFSET=0] [LOAD_S=40]
#   PATHS   request paths (make_paths.py output), cycled by ../shared/bench/tiles.lua from OFFSET
#   1. N sequential `curl BASE/health` with the server idle (baseline);
#   2. wrk -t 2 -c CONC -d LOAD_S over PATHS in the background; after 3 s (load at steady
#      state) N sequential `curl BASE/health`, one new connection each, 10 s timeout each;
#   3. appends one JSON line (kind "health") to OUT.jsonl: idle and loaded p50/p99/max (ms),
#      failures, whether the load was still running when the last probe finished, and the
#      load's own wrk result (req/s, p99, errors).
# HEALTH_PATH (default /health) names the probed endpoint (TiTiler's is /healthz).
# Bounded: wrk ends after LOAD_S; the curl loops are fixed counts with per-request timeouts.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHARED="$(cd "$HERE/../../shared/bench" && pwd)"
NAME="$1"; BASE="${2%/}"; PATHS="$3"; OUT="$4"
N="${5:-200}"; CONC="${6:-64}"; OFF="${7:-0}"; LOAD_S="${8:-40}"
HP="${HEALTH_PATH:-/health}"
TMP="$(mktemp -d)"; WPID=""
cleanup() { [ -n "$WPID" ] && kill "$WPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
probe() { for _ in $(seq 1 "$N"); do curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "$BASE$HP" || true; done; }

curl -s -o /dev/null -m 10 "$BASE$HP" || true   # first touch
probe > "$TMP/idle.txt"
wrk -t 2 -c "$CONC" -d "${LOAD_S}s" --timeout 30s -s "$SHARED/tiles.lua" "$BASE" -- "$PATHS" "$OFF" 2 "$NAME-health-load" \
  > "$TMP/wrk.txt" 2>&1 &
WPID=$!
sleep 3
t0=$(date +%s.%N)
probe > "$TMP/load.txt"
t1=$(date +%s.%N)
alive=0; kill -0 "$WPID" 2>/dev/null && alive=1
wait "$WPID" || true; WPID=""
python3 - "$NAME" "$TMP" "$t0" "$t1" "$alive" "$CONC" "$OFF" "$HP" <<'PY' | tee -a "$OUT"
import json, sys
name, tmp, t0, t1, alive, conc, off, hp = sys.argv[1:]

def stats(path):
    rows = [l.split() for l in open(path) if l.strip()]
    ok = sorted(float(t) * 1000 for c, t in rows if c == "200")
    pct = lambda q: round(ok[min(len(ok) - 1, int(q * len(ok)))], 2) if ok else None
    return dict(n=len(rows), failed=len(rows) - len(ok), p50_ms=pct(0.5), p99_ms=pct(0.99),
                max_ms=round(ok[-1], 2) if ok else None)

d = dict(kind="health", server=name, path=hp, conc=int(conc), offset=int(off), idle=stats(f"{tmp}/idle.txt"),
         loaded=stats(f"{tmp}/load.txt"), probe_s=round(float(t1) - float(t0), 2),
         load_running_at_end=int(alive))
res = [l for l in open(f"{tmp}/wrk.txt") if l.startswith("RESULT ")]
if res:
    w = json.loads(res[0][len("RESULT "):])
    errs = sum(w[k] for k in ("err_connect", "err_read", "err_write", "err_timeout", "non200", "bad_body"))
    d["load"] = dict(rps=w["rps"], p50_ms=w["p50_ms"], p99_ms=w["p99_ms"], errors=errs,
                     requests=w["requests"], wrapped=w["wrapped"])
print(json.dumps(d))
PY
