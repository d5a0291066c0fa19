#!/usr/bin/env bash
# Makes the PNG tile corpus that crates/core/benches/png_encode.rs encodes: ~200 tiles rendered
# by Kiln itself (kiln ingest + kiln serve + HTTP) from the real files in ../shared/data, one
# directory per kind. Nothing is written inside the repository.
#
#   scripts/make_png_corpus.sh [OUT]          (default OUT: /tmp/pngcorpus)
#
# KILN: the kiln binary (default: $CARGO_TARGET_DIR/release/kiln, else target/release/kiln;
# build it with `cargo build --release -p kiln-cli`). DATA: the data directory (default
# ../shared/data next to the repository). PORT: the port kiln serve listens on (default 18471).
#
# Kinds (tile size, what the encoder gets):
#   l8_rgb        Landsat 8 scene 224077 (UTM 21N), bands 4/3/2 as r/g/b, stretched, z8-12
#                 (256 px; RGB, or RGBA where the scene's collar shows)
#   bluemarble    Blue Marble RGB (JPEG-tiled), z1-4 (256 px, RGB)
#   dem_viridis   SRTM Turkey and ETOPO5 single band with viridis (256 px, indexed)
#   terrarium     a terrain collection (Turkey over ETOPO5) as terrarium @2x (512 px, RGB)
#   normal        the same as Mapzen normals @2x (512 px, RGBA, alpha = height class)
# Tiles are drawn with a fixed seed, so a rerun makes the same corpus.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/pngcorpus}
DATA=${DATA:-$(cd "$here/../shared/data" && pwd)}
KILN=${KILN:-${CARGO_TARGET_DIR:-$here/target}/release/kiln}
PORT=${PORT:-18471}
[ -x "$KILN" ] || { echo "no kiln binary at $KILN (cargo build --release -p kiln-cli)" >&2; exit 1; }

work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat=$work/catalog.sqlite
q() { "$KILN" ingest --quiet --regex -o "$cat" "$@"; }
q "$DATA/(?P<name>img_l8_224077_utm21n_b[234]_u16)\.tif" \
  "$DATA/(?P<name>global_bluemarble_5400x2700_rgb_jpeg_tiled)\.tif"
q "$DATA/(?P<name>dem_srtm3s_turkey_i16_striped)\.tif" --collection terrain --priority 2
q "$DATA/(?P<name>global_etopo5_i16_cog)\.tif" --collection terrain --priority 1

"$KILN" serve -d "$cat" --port "$PORT" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
    sleep 0.2
done

rm -rf "$OUT"
mkdir -p "$OUT"
python3 - "$OUT" "$PORT" <<'EOF'
import json, math, os, random, sys, urllib.error, urllib.request

out, port = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
rng = random.Random(14)

def get(path):
    try:
        with urllib.request.urlopen(base + path) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        if e.code in (404, 204):
            return None
        raise

def meta(name):
    return json.loads(get(f"/metadata/{name}"))

def tiles_in(bounds, z):
    w, s, e, n = bounds
    s, n = max(s, -85.05), min(n, 85.05)
    def xy(lon, lat):
        k = 2 ** z
        x = (lon + 180) / 360 * k
        y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * k
        return int(min(max(x, 0), k - 1)), int(min(max(y, 0), k - 1))
    x0, y0 = xy(w, n)
    x1, y1 = xy(e, s)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]

def pick(bounds, zooms, per_zoom):
    chosen = []
    for z in zooms:
        t = tiles_in(bounds, z)
        rng.shuffle(t)
        chosen += sorted(t[:per_zoom])
    return chosen

def save(kind, tiles, url):
    os.makedirs(f"{out}/{kind}", exist_ok=True)
    kept = 0
    for (z, x, y) in tiles:
        body = get(url.format(z=z, x=x, y=y))
        if body is None:
            continue
        with open(f"{out}/{kind}/{z:02d}_{x}_{y}.png", "wb") as f:
            f.write(body)
        kept += 1
    print(f"{kind}: {kept} tiles")

l8 = "img_l8_224077_utm21n_b{}_u16"
m = meta(l8.format(4))
lo, hi = m["percentiles"][1], m["percentiles"][97]  # 2nd and 98th percentile
rng_q = f"[{lo},{hi}]"
save("l8_rgb", pick(m["bounds"], range(8, 13), 24),
     "/rgb/{z}/{x}/{y}.png?r=" + l8.format(4) + "&g=" + l8.format(3) + "&b=" + l8.format(2)
     + f"&r_range={rng_q}&g_range={rng_q}&b_range={rng_q}")

bm = "global_bluemarble_5400x2700_rgb_jpeg_tiled"
save("bluemarble", pick(meta(bm)["bounds"], range(1, 5), 12), f"/rgb/{bm}/{{z}}/{{x}}/{{y}}.png")

tr = "dem_srtm3s_turkey_i16_striped"
et = "global_etopo5_i16_cog"
for name, tiles in ((tr, pick(meta(tr)["bounds"], range(6, 11), 8)),
                    (et, pick(meta(et)["bounds"], range(1, 5), 8))):
    save("dem_viridis", tiles, f"/singleband/{name}/{{z}}/{{x}}/{{y}}.png?colormap=viridis")

tb = meta(tr)["bounds"]
terrain = pick(tb, range(4, 11), 8)
save("terrarium", terrain, "/collections/terrain/terrarium/{z}/{x}/{y}@2x.png")
save("normal", terrain[::3], "/collections/terrain/normal/{z}/{x}/{y}@2x.png")
EOF
du -sh "$OUT"
