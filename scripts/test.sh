#!/usr/bin/env bash
# The whole test suite: makes the rio-tiler reference tiles, JPEG blocks and fixtures (cached,
# in a venv), runs every Rust test in the workspace, then the web viewer's end-to-end test in
# headless Chromium and schemathesis against the OpenAPI document, and prints one closing count.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
# On a bare machine: the Debian packages the tests use (a no-op when they are there).
bash scripts/install_deps.sh
bash scripts/make_reference_tiles.sh
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?

# The viewer: playwright-core from viewer/package-lock.json drives Debian's Chromium
# (apt-get install chromium) against the kiln binary cargo test just built.
echo
echo "=== viewer end-to-end test (viewer/e2e, headless Chromium)"
if ! command -v npm >/dev/null 2>&1 || ! [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "error: the viewer test needs Node.js/npm and Chromium (apt-get install nodejs npm chromium)"
  echo "test result: FAILED. 0 passed; 1 failed; 0 ignored" >>"$log"
  status=1
else
  if ! [ -f viewer/node_modules/playwright-core/package.json ] ||
    [ viewer/package-lock.json -nt viewer/node_modules/.package-lock.json ]; then
    (cd viewer && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # The same feature set as the tests above, so this is nearly free after them.
  cargo build --workspace --bins --locked --quiet
  e2e_status=0
  node --test --test-timeout=120000 --test-reporter=spec viewer/e2e/ 2>&1 | tee -a "$log" || e2e_status=$?
  # node's spec reporter ends with "ℹ pass N" / "ℹ fail N"; count them like cargo's lines.
  awk '/^ℹ pass / { p = $3 } /^ℹ fail / { f = $3 } /^ℹ skipped / { s = $3 }
       END { printf "test result: node. %d passed; %d failed; %d ignored\n", p, f, s }' "$log" >>"$log.node"
  cat "$log.node" >>"$log"
  rm -f "$log.node"
  [ "$e2e_status" -eq 0 ] || status=$e2e_status
fi

# The OpenAPI document against the server: schemathesis runs every check on /openapi.json of a
# served catalog (scripts/schemathesis.sh; pinned in the venv above, about two minutes).
echo
echo "=== API fuzzing (scripts/schemathesis.sh: schemathesis --checks all on /openapi.json)"
st_status=0
bash scripts/schemathesis.sh 2>&1 | tee "$log.st" || st_status=$?
# Its last line, "schemathesis: N passed, N failed", counts like cargo's lines.
st_line="$(grep '^schemathesis: [0-9]* passed' "$log.st" | tail -n1 || true)"
[ -n "$st_line" ] || st_line="schemathesis: 0 passed, 1 failed"
echo "$st_line" | awk '{ printf "test result: schemathesis. %d passed; %d failed; 0 ignored\n", $2, $4 }' >>"$log"
rm -f "$log.st"
[ "$st_status" -eq 0 ] || status=$st_status

# cargo prints one result line per test binary, the last one usually a doc-test run with
# nothing in it; sum them so the closing line tells how many tests ran.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "\nworkspace: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
