#!/usr/bin/env bash
# Composite terrain tiles vs single-source tiles, cold, in one sitting (issue #13).
#
# usage: bench/terrain.sh                  # the default sitting (~6 min + a release build)
#        bench/terrain.sh --summarize FILE.jsonl   # re-print the tables of a results file
#
# Configurations (same tile list, same order, same wrk settings):
#   stack   /collections/stack/terrarium/{z}/{x}/{y}.png   the three-level stack: ETOPO5 (priority 0),
#           Rhine basin 30" f32 (10), Luxembourg 30" i16 (20)
#   single  /singleband/rhine/{z}/{x}/{y}.png?stretch_range=[0,3000]&colormap=terrain  the Rhine file
#           alone, colormapped 8-bit PNG (the Terracotta-style route)
#   rhine1  /collections/rhineonly/terrarium/{z}/{x}/{y}.png  terrarium over a one-member collection
#           (the Rhine file): the product's cost without the other members
#
# Every wrk run gets a FRESH server (tile cache and block cache empty) and starts at the head of
# the tile list, so every run of every configuration requests the same distinct tiles in the same
# order and no URL repeats within a run ("wrapped":1 in a result would say the list ran out).
# Runs are interleaved: for each round, for each concurrency, every configuration (order reversed
# on even rounds), so the ratios come from one sitting.
# After the wrk runs, per configuration, SAMPLE tiles (the head of the list) are fetched one by
# one with curl from a fresh server (default caches) and again from a fresh server with
# --block-cache-mb 0: HTTP status, body bytes, X-Kiln-Sources, Server-Timing read;dur, and the
# server process's /proc/PID/io rchar before and after (bytes passed through read()/pread(): file
# reads including page-cache hits, plus the ~150 B of each HTTP request read from the socket).
#
# Environment (all optional):
#   KILN         kiln binary (default: cargo build --release into $CARGO_TARGET_DIR/release/kiln)
#   SKIP_BUILD=1 use $KILN as it is; CARGO_TARGET_DIR default $HOME/.cache/kiln-target
#   DATA         the source rasters (default $REPO/../shared/data)
#   DURATION 15s   CONCS "1 64"   ROUNDS 2   CONFIGS "stack single rhine1"   SAMPLE 200
#   ZOOMS 6-14   TILES_MAX 200000  (tile list: ../shared/bench/make_tiles.py over the Rhine file:
#                every tile of ZOOMS whose centre is on valid Rhine data, shuffled, seed 42)
#   QUIET_WAIT 20  (s to wait before each run for other processes to use < 10 % of a core;
#                  then the run goes on and is marked with its foreign CPU share)
#   OUT          results (default bench/results/terrain-DATE.jsonl; the tables go to .md beside it)
#   PYTHON       a python with rasterio for make_tiles.py (default $ANCHORS/venv-tc/bin/python)
#   KEEP=1       keep the temp dir (catalog, tile list, server logs)
#   BUILT_FROM   the commit the binary was built from, for the record (default: HEAD)
# Bounded: every wrk run ends after DURATION, every curl loop is SAMPLE requests, servers bind
# 127.0.0.1 on a free port (--port 0) and are stopped by their process-group id.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SHARED="$(cd "$REPO/../shared/bench" && pwd)"
source "$SHARED/env.sh"

summarize() {  # results.jsonl -> markdown on stdout
python3 - "$1" <<'PY'
import json, sys
from collections import OrderedDict
wrk, samples, meta = [], {}, {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    k = d.get("kind")
    if k == "wrk":
        wrk.append(d)
    elif k == "sample":
        samples[(d["config"], d["block_cache_mb"])] = d
    elif k == "meta":
        meta = d
ROUTE = OrderedDict()
for d in wrk:
    ROUTE.setdefault(d["config"], d["route"])
configs = list(ROUTE)
concs = sorted({d["conc"] for d in wrk})
rounds = sorted({d["round"] for d in wrk})
def f(v, nd=1):
    return "" if v is None else f"{v:,.{nd}f}"
def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
if meta:
    print(f"Sitting {meta.get('started', '?')} UTC, kiln built from {meta.get('commit', '?')} ({meta.get('kiln_mtime', '?')}), DURATION {meta.get('duration')}, "
          f"{len(rounds)} round(s), tile list {meta.get('list_len')} tiles (zooms {meta.get('zooms')}: {meta.get('zoom_counts')}), "
          f"fresh server per run.\n")
print("| config | conc | req/s (mean; per round) | p50 ms | p99 ms | server CPU ms/tile | body bytes/tile | sources/tile | "
      "read bytes/tile (fresh) | read bytes/tile (no block cache) | read ms/tile | non-2xx (404) |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for cfg in configs:
    s = samples.get((cfg, 512)) or {}
    s0 = samples.get((cfg, 0)) or {}
    for c in concs:
        runs = [d for d in wrk if d["config"] == cfg and d["conc"] == c]
        if not runs:
            continue
        rps = [d["rps"] for d in runs]
        non2xx = sum(d["responses"] - d["n2xx"] + d.get("err_timeout", 0) for d in runs)
        n404 = sum(d["n404"] for d in runs)
        body = sum(d["body_bytes"] for d in runs) / max(1, sum(d["n2xx"] for d in runs))
        # server CPU (all its threads, cpu_watch.py) per response: less sensitive to other load than req/s
        cpu_ms = mean([1000 * d["server_cpu_s"] / d["responses"] for d in runs
                       if d.get("server_cpu_s") and d.get("responses")])
        flags = ""
        if any(d.get("wrapped") for d in runs):
            flags += " (wrapped)"
        other = max(d.get("foreign_pct", 0) for d in runs)
        if other > 5:
            flags += f" (!other load {other:.0f}%)"
        print(f"| {cfg}{flags} | {c} | {f(mean(rps))} ({', '.join(f(x) for x in rps)}) | "
              f"{f(mean([d['p50_ms'] for d in runs]), 2)} | {f(mean([d['p99_ms'] for d in runs]), 2)} | "
              f"{f(cpu_ms, 2)} | {f(body, 0)} | {f(s.get('mean_sources'), 2)} | {f(s.get('read_bytes_per_tile'), 0)} | "
              f"{f(s0.get('read_bytes_per_tile'), 0)} | {f(s.get('mean_read_ms'), 2)} | {non2xx} ({n404}) |")
base = "single"
if base in configs:
    print(f"\nRatios to `{base}` in the same round (req/s cfg / {base}; p99 cfg / {base}):\n")
    print("| config | conc | req/s ratio per round | mean | p99 ratio per round | mean |")
    print("|---|---:|---|---:|---|---:|")
    for cfg in configs:
        if cfg == base:
            continue
        for c in concs:
            rr, pr = [], []
            for r in rounds:
                a = [d for d in wrk if d["config"] == cfg and d["conc"] == c and d["round"] == r]
                b = [d for d in wrk if d["config"] == base and d["conc"] == c and d["round"] == r]
                if a and b:
                    rr.append(a[0]["rps"] / b[0]["rps"]); pr.append(a[0]["p99_ms"] / b[0]["p99_ms"])
            if rr:
                print(f"| {cfg} | {c} | {', '.join(f(x, 2) for x in rr)} | {f(mean(rr), 2)} | "
                      f"{', '.join(f(x, 2) for x in pr)} | {f(mean(pr), 2)} |")
if samples:
    print(f"\nCurl samples (the first tiles of the list, one at a time, fresh server each):\n")
    print("| config | block cache MB | tiles | status | tiles by number of sources | body bytes/tile | "
          "read / encode / total ms per tile | rchar: all tiles | first tile | bytes/tile (all) | bytes/tile (after first) |")
    print("|---|---:|---:|---|---|---:|---|---:|---:|---:|---:|")
    for (cfg, bc), s in samples.items():
        st = ", ".join(f"{k}: {v}" for k, v in sorted(s["status"].items()))
        hist = ", ".join(f"{k}: {v}" for k, v in sorted(s["sources_hist"].items()))
        if s.get("sources"):
            hist += " (" + "; ".join(f"{k}: {v}" for k, v in sorted(s["sources"].items(), key=lambda kv: -kv[1])) + ")"
        ms = " / ".join(f(s.get(k), 2) for k in ("mean_read_ms", "mean_encode_ms", "mean_total_ms"))
        print(f"| {cfg} | {bc} | {s['tiles']} | {st} | {hist} | {f(s['mean_body_bytes'], 0)} | {ms} | "
              f"{s['rchar_delta']:,} | {s.get('first_tile_rchar', 0):,} | {f(s['read_bytes_per_tile'], 0)} | "
              f"{f(s.get('read_bytes_per_tile_after_first'), 0)} |")
PY
}
if [ "${1:-}" = "--summarize" ]; then summarize "$2"; exit 0; fi

DATA="${DATA:-$REPO/../shared/data}"; DATA="$(cd "$DATA" && pwd)"
DURATION="${DURATION:-15s}"; CONCS="${CONCS:-1 64}"; ROUNDS="${ROUNDS:-2}"
CONFIGS="${CONFIGS:-stack single rhine1}"; SAMPLE="${SAMPLE:-200}"
ZOOMS="${ZOOMS:-6-14}"; TILES_MAX="${TILES_MAX:-200000}"; QUIET_WAIT="${QUIET_WAIT:-20}"
PYTHON="${PYTHON:-$VENV_TC/bin/python}"
DAY="$(date -u +%F)"
OUT="${OUT:-$HERE/results/terrain-$DAY.jsonl}"
[ -e "$OUT" ] && OUT="${OUT%.jsonl}-$(date -u +%H%M%S).jsonl"   # one sitting per file
MD="${OUT%.jsonl}.md"
DUR_S="${DURATION%s}"
mkdir -p "$(dirname "$OUT")"
say() { printf '\n### %s  [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
command -v wrk >/dev/null || { echo "wrk missing (../shared/bench/setup.sh installs it)" >&2; exit 1; }
[ -x "$PYTHON" ] || { echo "no python with rasterio at $PYTHON (../shared/bench/setup.sh makes venv-tc)" >&2; exit 1; }

# 1. release binary
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
KILN="${KILN:-$CARGO_TARGET_DIR/release/kiln}"
if [ -z "${SKIP_BUILD:-}" ]; then
  say "cargo build --release --locked -p kiln-cli --bin kiln"
  (cd "$REPO" && cargo build --release --locked -p kiln-cli --bin kiln)
fi
echo "kiln: $KILN ($(stat -c %y "$KILN" | cut -c1-19)), HEAD $(git -C "$REPO" log -1 --format=%h)"

# 2. temp dir: symlinks, catalog (keys: name), collections
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kiln-terrain.XXXXXX")"
SPID=""
stop_server() {
  [ -n "$SPID" ] || return 0
  kill -TERM -- "-$SPID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 -- "-$SPID" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$SPID" 2>/dev/null || true
  SPID=""
}
cleanup() { stop_server; [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
ln -s "$DATA/global_etopo5_i16_cog.tif" "$WORK/etopo5.tif"
ln -s "$DATA/dem_rhine_basin_30s_f32_nodata.tif" "$WORK/rhine.tif"
ln -s "$DATA/dem_srtm30s_luxembourg_i16_lzw.tif" "$WORK/lux.tif"
CAT="$WORK/catalog.sqlite"
say "kiln ingest -> $CAT, collection stack (etopo5 0, rhine 10, lux 20) and rhineonly (rhine 10)"
for np in "etopo5 0" "rhine 10" "lux 20"; do
  set -- $np
  "$KILN" ingest --regex "$WORK/(?P<name>$1)\\.tif" -o "$CAT" --collection stack --priority "$2" -q
done
"$KILN" collection add -d "$CAT" rhineonly --create --keys rhine --priority 10
"$KILN" collection show -d "$CAT" stack

# 3. tile list: tiles of ZOOMS whose centre is on valid Rhine data, shuffled (seed 42)
say "tile list (make_tiles.py --zooms $ZOOMS --max $TILES_MAX over the Rhine file)"
"$PYTHON" "$SHARED/make_tiles.py" "$DATA/dem_rhine_basin_30s_f32_nodata.tif" "$WORK/tiles" \
  --zooms "$ZOOMS" --max "$TILES_MAX" --hot 0 | tee "$WORK/tiles.log"
route() {
  case "$1" in
    stack)  echo '/collections/stack/terrarium/{z}/{x}/{y}.png' ;;
    single) echo '/singleband/rhine/{z}/{x}/{y}.png?stretch_range=[0,3000]&colormap=terrain' ;;
    rhine1) echo '/collections/rhineonly/terrarium/{z}/{x}/{y}.png' ;;
    *) echo "unknown config $1" >&2; return 1 ;;
  esac
}
for cfg in $CONFIGS; do
  tpl="$(route "$cfg")"
  python3 - "$WORK/tiles-cold.txt" "$tpl" > "$WORK/paths-$cfg.txt" <<'PY'
import sys
tpl = sys.argv[2]
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        z, x, y = line.split("/")
        print(tpl.replace("{z}", z).replace("{x}", x).replace("{y}", y))
PY
done
LIST_LEN=$(wc -l < "$WORK/tiles-cold.txt")

# wrk script: ../shared/bench/tiles.lua (path list, offset, status 200 + image signature checks,
# RESULT line) plus body bytes, 2xx and 404 counts
cat > "$WORK/terrain.lua" <<LUA
dofile("$SHARED/tiles.lua")
local base_setup, base_init, base_response, base_done = setup, init, response, done
local mine = {}
function setup(thread) table.insert(mine, thread); base_setup(thread) end
function init(args) base_init(args); body_bytes = 0; nresp = 0; n2xx = 0; n404 = 0 end
function response(status, headers, body)
  nresp = nresp + 1
  if status >= 200 and status < 300 then
    n2xx = n2xx + 1
    if body ~= nil then body_bytes = body_bytes + #body end
  elseif status == 404 then n404 = n404 + 1 end
  base_response(status, headers, body)
end
function done(summary, latency, requests)
  base_done(summary, latency, requests)
  local b, n, ok, nf = 0, 0, 0, 0
  for _, t in ipairs(mine) do
    b = b + t:get("body_bytes"); n = n + t:get("nresp"); ok = ok + t:get("n2xx"); nf = nf + t:get("n404")
  end
  io.write(string.format('EXTRA {"body_bytes":%d,"responses":%d,"n2xx":%d,"n404":%d}\n', b, n, ok, nf))
end
LUA

PORT=""
start_server() {  # [extra serve args...]
  local log="$WORK/serve-$(date +%s%N).log"
  setsid "$KILN" serve -d "$CAT" --host 127.0.0.1 --port 0 "$@" >"$log" 2>&1 </dev/null &
  SPID=$!
  for _ in $(seq 1 100); do
    PORT=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -n 1 | sed 's/.*://' || true)
    if [ -n "$PORT" ] && curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/health"; then return 0; fi
    kill -0 "$SPID" 2>/dev/null || { echo "kiln died:"; tail -n 20 "$log"; return 1; }
    sleep 0.2
  done
  echo "kiln did not come up"; tail -n 20 "$log"; return 1
}

python3 - "$OUT" <<PY
import json, sys
zc = {}
for t in open("$WORK/tiles-cold.txt"):
    if t.strip():
        z = t.split("/")[0]; zc[z] = zc.get(z, 0) + 1
print(json.dumps({"kind": "meta", "started": "$(date -u '+%F %H:%M')", "commit": "${BUILT_FROM:-$(git -C "$REPO" log -1 --format=%h)}",
                  "kiln_mtime": "$(stat -c %y "$KILN" | cut -c1-19)",
                  "duration": "$DURATION", "concs": "$CONCS", "rounds": $ROUNDS, "configs": "$CONFIGS",
                  "zooms": "$ZOOMS", "list_len": $LIST_LEN, "zoom_counts": zc, "sample": $SAMPLE,
                  "nproc": $(nproc)}), file=open(sys.argv[1], "a"))
PY

# preflight: the first tile of each configuration answers 200 with an image
start_server
for cfg in $CONFIGS; do
  p="$(head -n 1 "$WORK/paths-$cfg.txt")"
  code=$(curl -s -g -o "$WORK/pre.bin" -w '%{http_code}' "http://127.0.0.1:$PORT$p")
  echo "preflight $cfg: $code $(head -c 4 "$WORK/pre.bin" | od -An -c | tr -s ' ') $p"
  [ "$code" = 200 ] || { echo "!!! $cfg does not answer 200" >&2; exit 1; }
done
stop_server

# 4. interleaved wrk runs, a fresh server each
one_run() {  # cfg conc round
  local cfg=$1 c=$2 r=$3 t=1 quiet=1 res extra cpu
  [ "$c" -gt 1 ] && t=2
  start_server || { echo "!!! $cfg c=$c did not start"; return 0; }
  python3 "$SHARED/cpu_watch.py" wait "$PORT" "$QUIET_WAIT" 10 || quiet=0
  python3 "$SHARED/cpu_watch.py" measure "$PORT" "$DUR_S" > "$WORK/cpu.json" &
  local wpid=$!
  wrk -t "$t" -c "$c" -d "$DURATION" --timeout 30s --latency -s "$WORK/terrain.lua" "http://127.0.0.1:$PORT" \
    -- "$WORK/paths-$cfg.txt" 0 "$t" "$cfg" > "$WORK/wrk.out"
  wait $wpid || true
  stop_server
  res=$(grep '^RESULT ' "$WORK/wrk.out" | sed 's/^RESULT //')
  extra=$(grep '^EXTRA ' "$WORK/wrk.out" | sed 's/^EXTRA //')
  cpu=$(cat "$WORK/cpu.json")
  python3 - "$res" "$extra" "$cpu" "$cfg" "$(route "$cfg")" "$c" "$t" "$r" "$quiet" >> "$OUT" <<'PY'
import json, sys
d = {"kind": "wrk"}
d.update(json.loads(sys.argv[1])); d.update(json.loads(sys.argv[2]))
try:
    d.update(json.loads(sys.argv[3]))
except ValueError:
    pass
d.update(config=sys.argv[4], route=sys.argv[5], conc=int(sys.argv[6]), threads=int(sys.argv[7]),
         round=int(sys.argv[8]), quiet_before=int(sys.argv[9]), offset=0)
print(json.dumps(d))
PY
  python3 - "$(tail -n 1 "$OUT")" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
print(f"  {d['config']:<7} c={d['conc']:<3} round {d['round']}: {d['rps']:9.1f} req/s  p50 {d['p50_ms']:7.2f}"
      f"  p99 {d['p99_ms']:7.2f} ms  n={d['requests']} 2xx={d['n2xx']} 404={d['n404']} bad={d['bad_body']}"
      f" timeouts={d['err_timeout']}  body {d['body_bytes'] / max(1, d['n2xx']):.0f} B  wrapped={d['wrapped']}"
      f"  cpu server {d.get('server_cpu_s')} wrk {d.get('wrk_cpu_s')} foreign {d.get('foreign_pct')}%")
PY
}
say "results -> $OUT; configs: $CONFIGS; CONCS=$CONCS DURATION=$DURATION ROUNDS=$ROUNDS; list $LIST_LEN tiles"
for r in $(seq 1 "$ROUNDS"); do
  order="$CONFIGS"
  [ $((r % 2)) = 0 ] && order="$(echo "$CONFIGS" | tr ' ' '\n' | tac | tr '\n' ' ')"
  for c in $CONCS; do
    for cfg in $order; do one_run "$cfg" "$c" "$r"; sleep 1; done
  done
done

# 5. reads per tile: SAMPLE tiles one by one on a fresh server (default caches, then no block cache)
sample() {  # cfg block_cache_mb
  local cfg=$1 bc=$2 r0 r1 r2
  if [ "$bc" = 0 ]; then start_server --block-cache-mb 0; else start_server; fi
  head -n "$SAMPLE" "$WORK/paths-$cfg.txt" | while read -r p; do
    printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$PORT" "$p"
  done > "$WORK/curl.cfg"
  # the first tile alone (it also opens the files and loads the catalog rows), then the rest
  local fmt='%{http_code}\t%{size_download}\t%header{x-kiln-sources}\t%header{server-timing}\n'
  r0=$(awk '/^rchar/ {print $2}' "/proc/$SPID/io")
  curl -s -g -K <(head -n 2 "$WORK/curl.cfg") -w "$fmt" > "$WORK/sample.tsv"
  r1=$(awk '/^rchar/ {print $2}' "/proc/$SPID/io")
  curl -s -g -K <(tail -n +3 "$WORK/curl.cfg") -w "$fmt" >> "$WORK/sample.tsv"
  r2=$(awk '/^rchar/ {print $2}' "/proc/$SPID/io")
  stop_server
  python3 - "$WORK/sample.tsv" "$cfg" "$bc" "$r0" "$r1" "$r2" >> "$OUT" <<'PY'
import json, re, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
status, hist, combos, body, nsrc = {}, {}, {}, [], []
dur = {"read": [], "encode": [], "total": []}
for code, size, src, timing in rows:
    status[code] = status.get(code, 0) + 1
    names = [s for s in re.split(r"[,\s]+", src) if s]
    hist[str(len(names))] = hist.get(str(len(names)), 0) + 1
    combo = ", ".join(names) or "-"
    combos[combo] = combos.get(combo, 0) + 1
    nsrc.append(len(names))
    if code.startswith("2"):
        body.append(int(size))
    for k in dur:
        m = re.search(k + r";dur=([0-9.]+)", timing)
        if m:
            dur[k].append(float(m.group(1)))
r0, r1, r2 = map(int, sys.argv[4:7])
n = len(rows)
mean = lambda xs: sum(xs) / len(xs) if xs else None
print(json.dumps({"kind": "sample", "config": sys.argv[2], "block_cache_mb": int(sys.argv[3]), "tiles": n,
                  "status": status, "sources_hist": hist, "sources": combos, "mean_sources": sum(nsrc) / max(1, n),
                  "mean_body_bytes": mean(body), "mean_read_ms": mean(dur["read"]),
                  "mean_encode_ms": mean(dur["encode"]), "mean_total_ms": mean(dur["total"]),
                  "rchar_delta": r2 - r0, "read_bytes_per_tile": (r2 - r0) / max(1, n),
                  "first_tile_rchar": r1 - r0, "read_bytes_per_tile_after_first": (r2 - r1) / max(1, n - 1)}))
PY
  tail -n 1 "$OUT"
}
say "curl samples: $SAMPLE tiles per configuration, fresh server (default caches, then --block-cache-mb 0)"
for cfg in $CONFIGS; do sample "$cfg" 512; sample "$cfg" 0; done

say "summary"
summarize "$OUT" | tee "$MD"
echo "results: $OUT  $MD"
