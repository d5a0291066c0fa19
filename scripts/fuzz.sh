#!/usr/bin/env bash
# Fuzzes the GeoTIFF reader with cargo-fuzz (libFuzzer + AddressSanitizer).
#
#   scripts/fuzz.sh [seconds] [target...]      default: 60 s each, targets parse_header decode_block
#
# Seeds the corpora (gitignored) from ../shared/data, builds the targets of fuzz/ and runs each
# one for the given time on one worker process, continuing past crashes so that one run finds
# as many as it can. Prints executions, exec/s, coverage and crashes per target; crashing inputs
# land in fuzz/artifacts/<target>/ (reproduce with `cargo fuzz run <target> <file>`; keep small
# ones as regression inputs in crates/cog/tests/regressions/).
#
# Environment: FUZZ_SANITIZER (address | none; default address), FUZZ_ARGS (extra libFuzzer
# flags), CARGO_BUILD_JOBS (default 1: the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(parse_header decode_block)
data=../shared/data
sanitizer="${FUZZ_SANITIZER:-address}"

# Only the stable toolchain is installed; cargo-fuzz passes nightly-only flags (-Zsanitizer,
# -Cllvm-args for coverage) which stable rustc accepts with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# --- seed corpora -------------------------------------------------------------------------
# parse_header: the first 64 KiB of every shared file (whole files for the small ones)...
mkdir -p fuzz/corpus/parse_header fuzz/corpus/decode_block
for f in "$data"/*.tif; do
  head -c 65536 "$f" >"fuzz/corpus/parse_header/$(basename "$f" .tif)"
done
# ... and the generated fixtures when scripts/make_reference_tiles.sh has made them: other
# sample types and layouts, and hand-written GeoKeys (unit, datum and projection overrides,
# grads, contradictions) for the CRS reader.
ref="${KILN_REF_DIR:-tests/ref-cache}/fixtures"
for f in "$ref"/*.tif "$ref"/geokeys/*.tif; do
  [ -f "$f" ] || continue
  head -c 65536 "$f" >"fuzz/corpus/parse_header/fixture-$(basename "$f" .tif)"
done
# decode_block: [file, image, codec, index_lo, index_hi, mode] with an empty payload and mode 1
# (XOR over the real block), i.e. the real blocks of every embedded file's first images, first
# with the stored codec, then with each raw codec swapped in.
for file in 0 1 2 3 4 5 6 7 8 9; do
  for image in 0 1 2; do
    for codec in 0 1 2 3 4 5; do
      printf "\\x$(printf %02x "$file")\\x$(printf %02x "$image")\\x$(printf %02x "$codec")\\x00\\x00\\x01" \
        >"fuzz/corpus/decode_block/seed-$file-$image-$codec"
    done
  done
done

# --- build ---------------------------------------------------------------------------------
(cd fuzz && cargo fuzz build --sanitizer "$sanitizer")

# --- run -----------------------------------------------------------------------------------
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t/last-run.log"
  start=$(mktemp) # artifacts newer than this file are this run's
  echo "=== $t: ${secs}s"
  # -fork=1: one worker process (the other core stays free), restarted after a crash, so the
  # run goes on; -malloc_limit_mb flags any single allocation above the reader's own bounds
  # (a decoded block is at most 256 MiB); -timeout flags hangs.
  # shellcheck disable=SC2086
  (cd fuzz && cargo fuzz run --sanitizer "$sanitizer" "$t" -- \
    -max_total_time="$secs" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 \
    -print_final_stats=1 ${FUZZ_ARGS:-}) >"$log" 2>&1 || status=$?
  # Fork mode reports "#<execs>: cov: <edges> ft: <features> corp: <n> exec/s: <n>
  # oom/timeout/crash: a/b/c time: <s>s ..." lines; the last one is the total.
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
  if [ -z "$last" ]; then
    rm -f "$start"
    echo "no statistics (see $log):"
    tail -20 "$log"
    status=1
    continue
  fi
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  took=$(sed -E 's/.* time: ([0-9]+)s.*/\1/' <<<"$last")
  # The line's own exec/s is the last job's; the run's average is more telling.
  rate=$((execs / (took > 0 ? took : 1)))
  cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$last")
  ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$last")
  corp=$(sed -E 's/.* corp: ([0-9]+).*/\1/' <<<"$last")
  faults=$(sed -E 's/.*oom\/timeout\/crash: ([0-9]+\/[0-9]+\/[0-9]+).*/\1/' <<<"$last")
  mapfile -t new < <(find "fuzz/artifacts/$t" -type f -newer "$start" \
    \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'slow-unit-*' \) | sort)
  rm -f "$start"
  echo "$t: execs=$execs time=${took}s exec/s=$rate cov=$cov ft=$ft corpus=$corp oom/timeout/crash=$faults new-artifacts=${#new[@]}"
  # Triage: replay each new artifact once and group them by what went wrong and where.
  if [ "${#new[@]}" -gt 0 ]; then
    bin="fuzz/target/x86_64-unknown-linux-gnu/release/$t"
    for a in "${new[@]}"; do
      ASAN_OPTIONS=detect_odr_violation=0 timeout 60 "$bin" -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -timeout=10 "$a" 2>&1 |
        grep -oE 'panicked at [^ ]+|out-of-memory \(malloc\([0-9]+\)\)|timeout after [0-9]+ seconds|ERROR: AddressSanitizer: [a-z-]+' |
        head -1 || true
    done | sort | uniq -c | sed 's/^/  /'
  fi
done
exit "$status"
