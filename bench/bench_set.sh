#!/usr/bin/env bash
# ../shared/bench/bench_server.sh with the dataset names of a data set: benchmark one running
# server on DATA_DIR's two datasets (wrk cold/hot x concurrencies + curl), labelled
# NAME/PREFIXdem and NAME/PREFIXrgb (PREFIX "" gives bench_server.sh's NAME/dem, NAME/rgb).
# usage: bench_set.sh NAME BASE_URL DATA_DIR PREFIX TEMPLATE_DEM TEMPLATE_RGB OUT.jsonl [CONCS] [DURATION]
#   TEMPLATE_*: a name from ../shared/bench/templates.txt or a literal path template; "-" skips
# Same steps as bench_server.sh: make_paths.py, bench.sh, curl_latency.sh (all shared, by path).
set -euo pipefail
SHARED="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench" && pwd)"
NAME="$1"; BASE="$2"; DATA="$(cd "$3" && pwd)"; PFX="$4"; TDEM="$5"; TRGB="$6"; OUT="$7"
CONCS="${8:-1 8 64}"; DUR="${9:-20s}"
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
for ds in dem rgb; do
  tpl=$TDEM; [ "$ds" = rgb ] && tpl=$TRGB
  [ "$tpl" = "-" ] && continue
  for m in cold hot; do
    python3 "$SHARED/make_paths.py" "$DATA/tiles-$ds-$m.txt" "$tpl" "$DATA" > "$TMP/$PFX$ds-$m.txt"
  done
  "$SHARED/bench.sh" "$NAME/$PFX$ds" "$BASE" "$TMP/$PFX$ds-cold.txt" "$TMP/$PFX$ds-hot.txt" "$OUT" "$CONCS" "$DUR"
  "$SHARED/curl_latency.sh" "$NAME/$PFX$ds" "$BASE" "$TMP/$PFX$ds-cold.txt" "$TMP/$PFX$ds-hot.txt" 50 | tee -a "$OUT"
done
