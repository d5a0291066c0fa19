// What the viewer's end-to-end tests share: where the binary, the data and the browser are,
// `kiln serve` on a free port, Chromium, and the collector of console errors, page errors and
// failed requests. (Not a test file: `node --test viewer/e2e/` runs only `*.test.mjs`.)
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
export const data = path.resolve(root, '../shared/data');
const target = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
export const kilnBin = process.env.KILN_BIN || path.join(target, 'debug', 'kiln');
const browserBin = process.env.CHROMIUM || '/usr/bin/chromium';
export const outDir = path.join(here, 'out');

export function checkTools() {
  assert.ok(fs.existsSync(kilnBin), `no kiln binary at ${kilnBin}: run cargo build -p kiln-cli`);
  assert.ok(fs.existsSync(browserBin), `no Chromium at ${browserBin}: apt-get install chromium`);
  fs.mkdirSync(outDir, { recursive: true });
}

// Headless Chromium with WebGL in software (SwiftShader).
export function launchBrowser() {
  return chromium.launch({
    executablePath: browserBin,
    args: [
      '--no-sandbox', '--disable-gpu', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-quic',
    ],
  });
}

// `kiln serve ARGS --port 0`, once it has printed its URL.
export async function serve(args) {
  const proc = spawn(kilnBin, ['serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`kiln serve printed no URL: ${seen}`)), 30000);
    proc.stdout.on('data', (chunk) => {
      seen += chunk;
      const m = /at (http:\/\/\S+\/)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`kiln serve exited with ${code}: ${seen}`)));
  });
  return { proc, base: url };
}

// Adds a page's console errors, page errors, failed requests and HTTP errors to `problems`.
export function watch(page, problems, label = '') {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console${label}: ${m.text()} @ ${m.location().url}`);
  });
  page.on('pageerror', (e) => problems.push(`page error${label}: ${e.message}`));
  page.on('requestfailed', (r) => {
    // MapLibre cancels tile requests it no longer needs (a layer replaced, the view moved):
    // those are aborted on purpose, not failures.
    const reason = r.failure()?.errorText;
    if (reason !== 'net::ERR_ABORTED') problems.push(`request failed${label}: ${r.url()} ${reason}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}${label}: ${r.url()}`);
  });
}

// Polls `probe` (in Node) until it returns something truthy.
export async function until(probe, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got) return got;
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// GET `rel` relative to `base`, asserting 200, as JSON.
export async function getJson(base, rel) {
  const r = await fetch(new URL(rel, base));
  assert.equal(r.status, 200, `${rel}: ${await r.clone().text()}`);
  return r.json();
}

// ---- Collections (#13) ------------------------------------------------------------------

// Collection `alps`: three DEMs composited by priority (higher wins), each ingested from its
// own directory with `--collection alps --priority N`: the Luxembourg SRTM (finest) over the
// Rhine basin over global ETOPO5. Keys as in viewer.test.mjs: name and band.
export const COLLECTION = 'alps';
export const MEMBERS = [
  { dir: 'p0', link: 'etopo_1.tif', file: 'global_etopo5_i16_cog.tif', priority: 0 },
  { dir: 'p10', link: 'rhine_1.tif', file: 'dem_rhine_basin_30s_f32_nodata.tif', priority: 10 },
  { dir: 'p20', link: 'lux_1.tif', file: 'dem_srtm30s_luxembourg_i16_lzw.tif', priority: 20 },
];

// Makes `dir`/catalog.sqlite with the three datasets in collection `alps`; returns its path.
export function collectionCatalog(dir) {
  const catalog = path.join(dir, 'catalog.sqlite');
  for (const m of MEMBERS) {
    fs.mkdirSync(path.join(dir, m.dir));
    fs.symlinkSync(path.join(data, m.file), path.join(dir, m.dir, m.link));
    execFileSync(kilnBin, [
      'ingest', path.join(dir, m.dir, '{name}_{band}.tif'), '-o', catalog, '--quiet',
      '--collection', COLLECTION, '--priority', String(m.priority),
    ], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return catalog;
}

// WebGL terrain in software (SwiftShader) is slow: MapLibre draws every layer into a
// 1024 px texture per terrain tile, so a tilted view takes tens of seconds on a small
// machine. The terrain tests use small windows and wait for a complete picture only where a
// picture is checked.

// Waits until the terrain, the hillshade and the overlays have every tile they asked for, and
// one more frame is drawn.
export async function terrainSettled(p) {
  await p.waitForFunction(() => {
    const m = window.kiln && window.kiln.map;
    return m && m.getTerrain() && m.loaded() && m.areTilesLoaded() && !m.isMoving()
      && m.isSourceLoaded('collection-terrain') && m.isSourceLoaded('collection-dem');
  }, null, { timeout: 90000, polling: 250 });
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// The terrain has the tiles it asked for (the hillshade may still be drawing).
export async function terrainLoaded(p) {
  await p.waitForFunction(() => {
    const m = window.kiln.map;
    return m.getTerrain() && m.isSourceLoaded('collection-terrain');
  }, null, { timeout: 60000, polling: 250 });
}

// The page is ready and shows collection `name` as terrain (tiles may still be loading).
export async function showing(p, name = COLLECTION) {
  await p.waitForSelector('body[data-ready=true]');
  await p.waitForFunction((n) => window.kiln.state.collection?.name === n && window.kiln.map.getTerrain(), name);
}

// Where the map looks.
export const mapView = (p) => p.evaluate(() => {
  const m = window.kiln.map;
  return { center: m.getCenter().toArray(), zoom: m.getZoom(), pitch: m.getPitch(), bearing: m.getBearing() };
});
