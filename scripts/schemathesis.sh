#!/usr/bin/env bash
# Holds the server to its OpenAPI document: schemathesis (pinned, from PyPI, in the test venv)
# runs every check (`--checks all`) against `/openapi.json` of a `kiln serve` over a small
# catalog made by `kiln ingest` from links to files in ../shared/data, and must end with
# 0 failures. Bounded: a fixed number of examples per operation and a deadline for the run.
#
#   scripts/schemathesis.sh
#
# KILN_VENV                 Python venv to create/reuse (default: $HOME/.cache/kiln-venv, the
#                           reference tiles' venv; scripts/make_reference_tiles.sh)
# KILN_DATA_DIR             the shared GeoTIFFs (default: <repo>/../shared/data)
# KILN_BIN                  the kiln binary (default: built with cargo into $CARGO_TARGET_DIR)
# KILN_SCHEMATHESIS_EXAMPLES  test cases per operation and phase (default 40)
# KILN_SCHEMATHESIS_SEED    the generator's seed (default fixed, so runs repeat; any
#                           integer explores other cases)
#
# The last line is "schemathesis: N passed, N failed" (operations), as scripts/test.sh counts it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
venv="${KILN_VENV:-$HOME/.cache/kiln-venv}"
data="${KILN_DATA_DIR:-$repo/../shared/data}"
python="${PYTHON:-python3}"
examples="${KILN_SCHEMATHESIS_EXAMPLES:-40}"
seed="${KILN_SCHEMATHESIS_SEED:-20240612}"
# The pins: schemathesis and the hypothesis it generates with, so every machine runs the same
# cases for one seed. Installed with the reference tiles' pins as constraints, so nothing they
# fixed moves.
pins=(schemathesis==4.32.5 hypothesis==6.170.27)

started=$SECONDS
fail() {
    echo "error: $*" >&2
    echo "schemathesis: 0 passed, 1 failed"
    exit 1
}

[ -d "$data" ] || fail "test data not found at $data (set KILN_DATA_DIR)"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating venv $venv"
    "$python" -m venv "$venv"
fi
pin_stamp="$venv/.kiln-schemathesis.pins"
pin_want="$(printf '%s\n' "${pins[@]}" | cat - "$here/py-requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$pin_stamp" 2>/dev/null || true)" != "$pin_want" ]; then
    echo "installing ${pins[*]} into $venv"
    "$venv/bin/python" -m pip install --quiet --only-binary=:all: \
        -c "$here/py-requirements.txt" "${pins[@]}"
    echo "$pin_want" >"$pin_stamp"
fi

if [ -z "${KILN_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiln-target}"
    (cd "$repo" && cargo build -p kiln-cli --bin kiln --locked --quiet)
    KILN_BIN="$CARGO_TARGET_DIR/debug/kiln"
fi
[ -x "$KILN_BIN" ] || fail "no kiln binary at $KILN_BIN"

work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-schemathesis.XXXXXX")"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The catalog: two keys (name, band), as the serve tests and the viewer test have them: a small
# int16 DEM, three single-band Landsat 8 files that differ in the last key (RGB and band math
# by key), and a 6-band Landsat 7 file (RGB and band math by band number).
declare -A links=(
    [lux_1.tif]=dem_srtm30s_luxembourg_i16_lzw.tif
    [l8_b2.tif]=img_l8_224077_utm21n_b2_u16.tif
    [l8_b3.tif]=img_l8_224077_utm21n_b3_u16.tif
    [l8_b4.tif]=img_l8_224077_utm21n_b4_u16.tif
    [ms_all.tif]=img_l7_olinda_utm25s_6band_u8.tif
)
for link in "${!links[@]}"; do
    file="$(cd "$data" && pwd)/${links[$link]}"
    [ -f "$file" ] || fail "missing $file"
    ln -s "$file" "$work/$link"
done
"$KILN_BIN" ingest "$work/{name}_{band}.tif" -o "$work/catalog.sqlite" --quiet \
    --key-description name=Scene --key-description band=Band ||
    fail "kiln ingest failed"
# A collection (the DEM alone), so the /collections routes reach real tiles.
"$KILN_BIN" collection add dem -d "$work/catalog.sqlite" --create --keys lux,1 >/dev/null ||
    fail "kiln collection add failed"

# A free loopback port (--port 0); the URL is read from the first line serve prints.
# (The KILN_* variables of this script and the reference tiles' are not serve's: left out, so
# serve does not warn about them.)
env -u KILN_VENV -u KILN_DATA_DIR -u KILN_BIN -u KILN_REF_DIR -u KILN_SCHEMATHESIS_EXAMPLES \
    -u KILN_SCHEMATHESIS_SEED "$KILN_BIN" serve -d "$work/catalog.sqlite" --host 127.0.0.1 --port 0 \
    >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
base=""
for _ in $(seq 1 300); do
    base="$(grep -o 'at http://[^ ]*/' "$work/serve.out" 2>/dev/null | head -n1 | cut -c4- || true)"
    [ -n "$base" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$base" ]; then
    cat "$work/serve.out" "$work/serve.log" >&2 || true
    fail "kiln serve did not start"
fi
echo "kiln serve at $base (pid $server_pid), schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}')"

# What OpenAPI 3.0 cannot say, said to the generator: the document's descriptions state three
# rules that tie one parameter to another or to the dataset, and a schema cannot hold them. So
# that schema-valid requests the server rightly refuses do not count as failures, these hooks
# bend *positive* (schema-valid) cases only to follow them; negative cases are left as drawn, so
# the server is still checked to refuse requests that break them.
#  1. A tile's x and y are below 2^z (the tile matrix): x and y are taken modulo 2^z.
#  2. A range's lower end is not above its upper end: [5,1] becomes [1,5], [p98,p2] [p2,p98].
#  3. A band number is at most the dataset's band count (the counts come from /metadata):
#     band, r/g/b and v1/v2 of routes naming one dataset are taken modulo it, defaults included.
cat >"$work/kiln_schemathesis_hooks.py" <<'PY'
import json
import os
import re
import urllib.parse
import urllib.request

import schemathesis
from schemathesis import GenerationMode

BASE = os.environ["KILN_SCHEMATHESIS_BASE"]


def fetch(path):
    with urllib.request.urlopen(BASE + path, timeout=30) as answer:
        return json.load(answer)


KEYS = [k["key"] for k in fetch("keys")["keys"]]
BANDS = {}
for dataset in fetch("datasets?limit=10000")["datasets"]:
    values = tuple(dataset[k] for k in KEYS)
    path = "/".join(urllib.parse.quote(v, safe="") for v in values)
    BANDS[values] = max(1, fetch("metadata/" + path)["band_count"])

NUMBERS = re.compile(r"^\s*\[\s*(-?[0-9.]+)\s*,\s*(-?[0-9.]+)\s*\]\s*$")
PERCENTILES = re.compile(r'^\s*\[\s*"?p([0-9]+)"?\s*,\s*"?p([0-9]+)"?\s*\]\s*$')
TEMPLATE_PARAM = re.compile(r"\{([^}]+)\}")
NOT_KEYS = {"z", "x", "y", "format"}
# Band parameters of band routes and the band each defaults to.
BAND_DEFAULTS = {
    "singleband": {"band": None},
    "rgb": {"r": 1, "g": 2, "b": 3},
    "compute": {"v1": 1, "v2": 2},
}


def ordered(text):
    if not isinstance(text, str):
        return text
    m = NUMBERS.match(text)
    if m and float(m.group(1)) > float(m.group(2)):
        return f"[{m.group(2)},{m.group(1)}]"
    m = PERCENTILES.match(text)
    if m and int(m.group(1)) > int(m.group(2)):
        return f"[p{m.group(2)},p{m.group(1)}]"
    return text


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return case
    path = case.path_parameters if case.path_parameters is not None else {}
    query = case.query if case.query is not None else {}
    # 1. the tile matrix
    if all(k in path for k in ("z", "x", "y")):
        try:
            size = 1 << int(path["z"])
            path["x"] = int(path["x"]) % size
            path["y"] = int(path["y"]) % size
        except (TypeError, ValueError):
            pass
    # 2. range order
    for name in ("stretch_range", "r_range", "g_range", "b_range"):
        if name in query:
            query[name] = ordered(query[name])
    # 3. band counts, on routes that name a whole dataset
    template = case.operation.path
    route = template.strip("/").split("/")[0]
    names = [n for n in TEMPLATE_PARAM.findall(template) if n not in NOT_KEYS]
    # (singleband's TileJSON does not check the band against the dataset; rgb's and compute's do)
    tilejson = template.endswith("tilejson.json")
    if route in BAND_DEFAULTS and len(names) == len(KEYS) and not (tilejson and route == "singleband"):
        dataset = tuple(urllib.parse.unquote(str(path.get(n, ""))) for n in names)
        count = BANDS.get(dataset)
        if count is not None:
            for name, default in BAND_DEFAULTS[route].items():
                value = query.get(name)
                if value is None or str(value).strip() == "":
                    value = default  # an empty value is not given
                try:
                    band = int(value)
                except (TypeError, ValueError):
                    continue
                query[name] = (band - 1) % count + 1
    if case.path_parameters is not None:
        case.path_parameters = path
    if case.query is not None or query:
        case.query = query
    return case
PY

# Every check, every operation of the document. Bounded three ways: examples per operation
# (-n), seconds per request (--request-timeout) and the whole run (timeout). One worker:
# with two, hypothesis's lambda-source parsing ran `ast` in two threads at once and CPython
# 3.11 raised "AST constructor recursion depth mismatch" inside schemathesis now and then
# (a crash of the tool, reported as a runtime error, not a finding about the server).
status=0
(
    cd "$work"
    export PYTHONPATH="$work" SCHEMATHESIS_HOOKS=kiln_schemathesis_hooks KILN_SCHEMATHESIS_BASE="$base"
    timeout --signal=INT --kill-after=10 400 \
        "$venv/bin/schemathesis" run "${base}openapi.json" \
        --checks all \
        --max-examples "$examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 30 \
        --generation-database none \
        --no-color --continue-on-failure
) 2>&1 | tee "$work/run.log" || status=$?

elapsed=$((SECONDS - started))
if [ "$status" -eq 0 ]; then
    echo "schemathesis: PASS (0 failures, ${elapsed}s)"
    echo "schemathesis: 1 passed, 0 failed"
else
    echo "schemathesis: FAIL (exit status $status, ${elapsed}s; the server's log: $work/serve.log is removed at exit)"
    tail -n 30 "$work/serve.log" >&2 || true
    echo "schemathesis: 0 passed, 1 failed"
fi
exit "$status"
