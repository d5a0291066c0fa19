#!/usr/bin/env bash
# kiln optimize vs gdal_translate -of COG vs terracotta optimize-rasters (issue #4), one sitting,
# on the same inputs: wall time and peak RSS from /usr/bin/time -v, output size, and whether
# the output is a valid COG (kiln validate).
#
# usage: bench/optimize.sh [FILE...]
#   FILE defaults to the 58-megapixel shaded relief and ETOPO5 from ../shared/data.
# Environment: KILN (binary; default: cargo build --release into $CARGO_TARGET_DIR),
#   SKIP_BUILD=1, RUNS (3: each tool runs RUNS times per file; the table shows the median),
#   VENV_TC (Terracotta venv; default from ../shared/bench/env.sh), OUT (results dir).
# All tools write DEFLATE with 512 px blocks and average overviews; GDAL runs exactly
#   gdal_translate -of COG -co COMPRESS=DEFLATE -co BLOCKSIZE=512 -co OVERVIEW_RESAMPLING=AVERAGE
#     -co NUM_THREADS=2
# (the 2-core machines this is measured on), Kiln uses every core of its pool, Terracotta runs
# as it comes (it keeps only the first band and reprojects nothing). Runs alternate tools
# (kiln, gdal, terracotta, kiln, gdal, ...) within one sitting, so load from other processes
# hits every tool alike; compare ratios, not absolute times.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SHARED="$(cd "$REPO/../shared" && pwd)"
# shellcheck disable=SC1091
source "$SHARED/bench/env.sh"
RUNS="${RUNS:-3}"
OUT="${OUT:-$ANCHORS/results/optimize-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=("$SHARED/data/global_shadedrelief_10800x5400_rgb_jpeg_cog.tif" \
  "$SHARED/data/global_etopo5_i16_cog.tif")
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
KILN="${KILN:-$CARGO_TARGET_DIR/release/kiln}"
if [ -z "${SKIP_BUILD:-}" ]; then
  (cd "$REPO" && cargo build --release --locked -p kiln-cli)
fi
TC="$VENV_TC/bin/terracotta"
[ -x "$TC" ] || { echo "no Terracotta at $TC: run ../shared/bench/setup.sh"; exit 1; }
command -v gdal_translate >/dev/null || { echo "gdal_translate missing (apt-get install gdal-bin)"; exit 1; }

# measure TOOL FILE -> one TSV line: tool file run wall_s peak_rss_mb bytes valid
measure() {
  local tool=$1 src=$2 run=$3 name dst log
  name="$(basename "$src" .tif)"
  dst="$OUT/$tool/$name.tif"
  rm -rf "$OUT/$tool"; mkdir -p "$OUT/$tool"
  log="$OUT/$tool-$name-$run.time"
  case "$tool" in
    kiln) /usr/bin/time -v -o "$log" "$KILN" optimize -q "$src" -o "$dst" --overwrite ;;
    gdal) /usr/bin/time -v -o "$log" gdal_translate -q -of COG -co COMPRESS=DEFLATE \
            -co BLOCKSIZE=512 -co OVERVIEW_RESAMPLING=AVERAGE -co NUM_THREADS=2 \
            "$src" "$dst" ;;
    terracotta) /usr/bin/time -v -o "$log" "$TC" optimize-rasters -o "$OUT/$tool" \
            --overwrite --quiet --compression deflate --resampling-method average "$src" ;;
  esac
  local wall rss bytes valid
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$log")
  bytes=$(stat -c %s "$dst" 2>/dev/null || echo 0)
  if "$KILN" validate "$dst" >/dev/null 2>&1; then valid=yes; else valid=no; fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$name" "$run" "$wall" "$rss" "$bytes" "$valid"
}

printf 'tool\tfile\trun\twall_s\tpeak_rss_mb\tbytes\tvalid_cog\n' | tee "$OUT/runs.tsv"
for src in "${FILES[@]}"; do
  for run in $(seq 1 "$RUNS"); do
    for tool in kiln gdal terracotta; do   # alternating, so drift hits every tool alike
      measure "$tool" "$src" "$run" | tee -a "$OUT/runs.tsv"
    done
  done
done

python3 - "$OUT/runs.tsv" <<'PY' | tee "$OUT/summary.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
files = sorted({r["file"] for r in rows})
print("| file | tool | wall s (median) | peak RSS MB (max) | output MB | valid COG | kiln faster by |")
print("|---|---|---:|---:|---:|---|---:|")
for f in files:
    med = {}
    for tool in ["kiln", "gdal", "terracotta"]:
        rs = [r for r in rows if r["file"] == f and r["tool"] == tool]
        if not rs:
            continue
        med[tool] = statistics.median(float(r["wall_s"]) for r in rs)
        rss = max(float(r["peak_rss_mb"]) for r in rs)
        mb = int(rs[-1]["bytes"]) / 1e6
        valid = "/".join(sorted({r["valid_cog"] for r in rs}))
        ratio = "" if tool == "kiln" else f"{med[tool] / med['kiln']:.1f}×"
        print(f"| {f} | {tool} | {med[tool]:.2f} | {rss:.0f} | {mb:.1f} | {valid} | {ratio} |")
PY
echo "results: $OUT"
