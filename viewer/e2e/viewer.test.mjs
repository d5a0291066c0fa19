// End-to-end test of the web viewer: the real `kiln` binary serves a catalog made by the real
// `kiln ingest` from ../shared/data, and Debian's Chromium (driven by playwright-core) uses the
// viewer like a person would. Screenshots go to viewer/e2e/out/.
//
// Run: `node --test viewer/e2e/` after `cargo build -p kiln-cli` (KILN_BIN picks another
// binary, CHROMIUM another browser). Collections (3D terrain) are tested in terrain.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  data, kilnBin, outDir, checkTools, launchBrowser, serve, watch, until, getJson,
} from './harness.mjs';

// name_band.tif links, as the Rust serve tests make them: two keys, `name` and `band`.
const LINKS = {
  'lux_1.tif': 'dem_srtm30s_luxembourg_i16_lzw.tif',
  'etopo_1.tif': 'global_etopo5_i16_cog.tif',
  'l8_b2.tif': 'img_l8_224077_utm21n_b2_u16.tif',
  'l8_b3.tif': 'img_l8_224077_utm21n_b3_u16.tif',
  'l8_b4.tif': 'img_l8_224077_utm21n_b4_u16.tif',
  'l7_all.tif': 'img_l7_olinda_utm25s_6band_u8.tif',
  'bahamas_rgb.tif': 'img_bahamas_utm18n_rgb_cog.tif',
};

let work;
let server;
let base;
let browser;
let page;
const problems = []; // console errors, page errors, failed requests

before(async () => {
  checkTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-viewer-e2e-'));
  for (const [link, file] of Object.entries(LINKS)) {
    fs.symlinkSync(path.join(data, file), path.join(work, link));
  }
  const catalog = path.join(work, 'catalog.sqlite');
  execFileSync(kilnBin, ['ingest', path.join(work, '{name}_{band}.tif'), '-o', catalog, '--quiet'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  ({ proc: server, base } = await serve(['-d', catalog]));
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  watch(page, problems);
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  server?.kill();
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, { timeout: 30000 });

const shown7 = (v) => +v.toPrecision(7);
const seeded = (stats) => `[${shown7(stats.percentiles[1])},${shown7(stats.percentiles[97])}]`;

const json = (rel) => getJson(base, rel);

// Waits until the map has drawn every tile it asked for.
async function settled() {
  await page.waitForFunction(() => {
    const m = window.kiln && window.kiln.map;
    return m && m.loaded() && m.areTilesLoaded() && !m.isMoving()
      && (!m.getSource('data') || m.isSourceLoaded('data'));
  }, null, { timeout: 30000 });
  // One more frame so the canvas shows what was loaded.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// Pixels of the map as the user sees it (a screenshot, decoded by the browser's own PNG
// decoder): how many there are, how many differ from the plain background and graticule, and
// how many are within `tolerance` of any colour in `palette`, and of the palette's last colour.
async function mapPixels(palette = [], tolerance = 6) {
  const png = await page.locator('#map').screenshot();
  return page.evaluate(async ({ b64, palette, tolerance }) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    const plain = [[0xe6, 0xe9, 0xed], [0x9a, 0xa1, 0xaa], [0xc3, 0xc8, 0xcf]];
    const near = (r, g, b, q) => Math.abs(r - q[0]) + Math.abs(g - q[1]) + Math.abs(b - q[2]) <= tolerance;
    let data = 0;
    let inPalette = 0;
    let atTop = 0;
    const last = palette[palette.length - 1];
    for (let i = 0; i < px.length; i += 4) {
      const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
      if (plain.some((q) => near(r, g, b, q))) continue;
      data += 1;
      if (palette.some((q) => near(r, g, b, q))) inPalette += 1;
      if (last && near(r, g, b, last)) atTop += 1;
    }
    return { total: px.length / 4, data, inPalette, atTop };
  }, { b64: png.toString('base64'), palette, tolerance });
}

// Opens the page's current URL in a second tab, as someone given the link would, and returns
// what that tab shows once its layer is drawn; the tab is closed again.
async function reopened() {
  const link = page.url();
  const other = await page.context().newPage();
  watch(other, problems, ' (shared link)');
  try {
    await other.goto(link);
    await other.waitForSelector('body[data-ready=true]');
    await other.waitForFunction(() => document.getElementById('tile-url').value !== '');
    return {
      link,
      tileUrl: await other.inputValue('#tile-url'),
      mode: await other.getAttribute('.tabs button[aria-selected=true]', 'data-mode'),
      view: await other.evaluate(() => window.kiln.map.getBounds().toArray()),
      legend: await other.evaluate(() => document.getElementById('legend').hidden
        ? null : document.getElementById('legend-canvas').dataset.range),
    };
  } finally {
    await other.close();
  }
}

async function legend() {
  return page.evaluate(() => {
    const c = document.getElementById('legend-canvas');
    const px = c.getContext('2d').getImageData(0, 0, c.width, 1).data;
    const out = [];
    for (let i = 0; i < c.width; i += 1) out.push([px[i * 4], px[i * 4 + 1], px[i * 4 + 2], px[i * 4 + 3]]);
    return { colors: out, colormap: c.dataset.colormap, range: c.dataset.range };
  });
}

async function colormap(name, lo, hi) {
  const q = new URLSearchParams({ stretch_range: `[${lo},${hi}]`, num_values: 255 });
  if (name) q.set('colormap', name);
  return (await json(`colormap?${q}`)).colormap.map((e) => e.rgba);
}

// Clicks a row (in single-band mode) and waits for that dataset's layer.
async function selectRow(name, band) {
  await page.locator(`#ds-table tbody tr[data-keys="${name}/${band}"]`).click();
  await page.waitForFunction(
    (k) => document.querySelector('#tile-url').value.includes(`/singleband/${k}/`),
    `${name}/${band}`,
  );
  // Off the table, so the hover highlight does not tint the map.
  await page.mouse.move(5, 5);
  await until(async () => (await hoverFeatures()).length === 0, 'the hover footprint to go');
  await settled();
}

// Moves the mouse near the middle of the map and returns what the read-out shows, once it
// shows the place under the cursor (computed here from the map's own projection, so a wrong
// or stale coordinate in the viewer fails).
async function pointUnderCursor(dx = 0, dy = 0) {
  const box = await page.locator('#map').boundingBox();
  const x = box.width / 2 + dx;
  const y = box.height / 2 + dy;
  const want = await page.evaluate(([px, py]) => window.kiln.map.unproject([px, py]).wrap().toArray(), [x, y]);
  await page.mouse.move(box.x + x, box.y + y);
  await page.waitForFunction(([lon, lat]) => {
    const d = document.getElementById('readout').dataset;
    return d.values !== undefined && Math.abs(+d.lon - lon) < 1e-6 && Math.abs(+d.lat - lat) < 1e-6;
  }, want);
  return page.evaluate(() => {
    const d = document.getElementById('readout').dataset;
    return { lon: +d.lon, lat: +d.lat, values: JSON.parse(d.values) };
  });
}

test('the viewer page loads and lists the catalog', async () => {
  await page.goto(base);
  await page.waitForSelector('body[data-ready=true]');
  const rows = await page.locator('#ds-table tbody tr').count();
  const listed = await json('datasets');
  assert.equal(rows, listed.total);
  assert.equal(rows, Object.keys(LINKS).length);
  assert.equal(await page.locator('#ds-total').textContent(), String(rows));
  assert.deepEqual(
    await page.locator('#ds-table thead th').allTextContents(),
    (await json('keys')).keys.map((k) => k.key),
  );
});

test('key filters and paging narrow the table', async () => {
  await page.locator('#filters input[data-key=name]').fill('L8');
  await page.waitForFunction(() => document.querySelectorAll('#ds-table tbody tr').length === 3);
  assert.deepEqual(
    await page.locator('#ds-table tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.keys)),
    ['l8/b2', 'l8/b3', 'l8/b4'],
  );
  await page.locator('#filters input[data-key=name]').fill('');
  await page.waitForFunction(() => document.querySelectorAll('#ds-table tbody tr').length === 7);

  // Pages of three (a size the page does not offer, added here to get several pages).
  await page.$eval('#ds-limit', (sel) => sel.add(new Option('3', '3')));
  await page.locator('#ds-limit').selectOption('3');
  const rowsNow = () => page.locator('#ds-table tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.keys));
  const all = (await json('datasets')).datasets.map((d) => `${d.name}/${d.band}`);
  const expectPage = async (n, label) => {
    await page.waitForFunction((l) => document.getElementById('ds-page').textContent === l, label);
    assert.deepEqual(await rowsNow(), all.slice(n * 3, n * 3 + 3));
  };
  await expectPage(0, 'page 1 / 3');
  assert.ok(await page.locator('#ds-prev').isDisabled());
  await page.click('#ds-next');
  await expectPage(1, 'page 2 / 3');
  await page.click('#ds-next');
  await expectPage(2, 'page 3 / 3');
  assert.ok(await page.locator('#ds-next').isDisabled());
  await page.click('#ds-prev');
  await expectPage(1, 'page 2 / 3');
  // A filter starts again at page 1 (and ignores case).
  await page.locator('#filters input[data-key=band]').fill('B3');
  await page.waitForFunction(() => document.getElementById('ds-page').textContent === 'page 1 / 1');
  assert.deepEqual(await rowsNow(), ['l8/b3']);
  await page.locator('#filters input[data-key=band]').fill('');
  await page.locator('#ds-limit').selectOption('10');
  await page.waitForFunction(() => document.querySelectorAll('#ds-table tbody tr').length === 7);
  assert.equal(await page.locator('#ds-page').textContent(), 'page 1 / 1');
  assert.ok(await page.locator('#ds-next').isDisabled());
});

const hoverFeatures = () => page.evaluate(async () => (await window.kiln.map.getSource('hover').getData()).features);

test('hovering a row draws its footprint', async () => {
  await page.locator('#ds-table tbody tr[data-keys="lux/1"]').hover();
  const drawn = await until(async () => (await hoverFeatures())[0], 'the footprint');
  const meta = await json('metadata/lux/1');
  assert.deepEqual(drawn.geometry, meta.convex_hull);
  await page.mouse.move(5, 5);
  await until(async () => (await hoverFeatures()).length === 0, 'the footprint to go');
  // The keyboard does the same: focus shows the footprint, Enter selects.
  await page.locator('#ds-table tbody tr[data-keys="l7/all"]').focus();
  const focused = await until(async () => (await hoverFeatures())[0], 'the footprint on focus');
  assert.deepEqual(focused.geometry, (await json('metadata/l7/all')).convex_hull);
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/singleband/l7/all/'));
  await page.locator('#ds-table tbody tr[data-keys="l7/all"]').blur();
  await until(async () => (await hoverFeatures()).length === 0, 'the footprint to go on blur');
});

test('two quick clicks end on the second dataset', async () => {
  // Neither dataset's metadata is cached yet, so the first answer may arrive last.
  await page.locator('#ds-table tbody tr[data-keys="etopo/1"]').click();
  await page.locator('#ds-table tbody tr[data-keys="bahamas/rgb"]').click();
  await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/singleband/bahamas/rgb/'));
  await page.mouse.move(5, 5);
  await settled();
  assert.match(await page.locator('#selected-keys').textContent(), /name=bahamas\s+band=rgb/);
  assert.deepEqual(
    await page.locator('#ds-table tbody tr.selected').evaluateAll((trs) => trs.map((t) => t.dataset.keys)),
    ['bahamas/rgb'],
  );
  // The band picker and the RGB channels are the bahamas file's three bands.
  assert.equal(await page.locator('#sb-band option').count(), 3);
  assert.equal(await page.locator('#rgb-r option').count(), 3);
  assert.equal(await page.locator('#rgb-channels .channel').count(), 3);
});

test('singleband: select, colormap, stretch, legend and point value', async () => {
  await selectRow('lux', '1');
  const meta = await json('metadata/lux/1');
  // Fit to bounds: the map view holds the dataset.
  const view = await page.evaluate(() => window.kiln.map.getBounds().toArray());
  const [w, s, e, n] = meta.bounds;
  assert.ok(view[0][0] <= w && view[0][1] <= s && view[1][0] >= e && view[1][1] >= n, `${view} holds ${meta.bounds}`);
  // Sliders start at the 2nd and 98th percentiles.
  // The viewer shows (and sends) seven significant digits.
  const lo = shown7(meta.percentiles[1]);
  const hi = shown7(meta.percentiles[97]);
  assert.equal(+(await page.inputValue('#sb-min')), lo);
  assert.equal(+(await page.inputValue('#sb-max')), hi);

  // Uncoloured first: grey pixels, the legend is /colormap's grey ramp.
  let shown = await legend();
  assert.deepEqual(shown.colors, await colormap('', lo, hi));
  const grey = await mapPixels(await colormap('', lo, hi));
  assert.ok(grey.data > grey.total * 0.1, `data pixels ${grey.data} of ${grey.total}`);
  assert.ok(grey.inPalette > grey.data * 0.9, `${grey.inPalette} of ${grey.data} grey`);

  await page.selectOption('#sb-colormap', 'viridis');
  await page.waitForFunction(() => document.getElementById('legend-canvas').dataset.colormap === 'viridis');
  await settled();
  shown = await legend();
  const viridis = await colormap('viridis', lo, hi);
  assert.deepEqual(shown.colors, viridis, 'legend = /colormap');
  await page.screenshot({ path: path.join(outDir, 'singleband-viridis.png') });
  const colored = await mapPixels(viridis);
  assert.ok(colored.data > colored.total * 0.1, `data pixels ${colored.data} of ${colored.total}`);
  // Nearly every data pixel is a viridis colour (the rest: footprint outline, antialiasing).
  assert.ok(colored.inPalette > colored.data * 0.9, `${colored.inPalette} of ${colored.data} in viridis`);

  // Stretch: a narrow range at the bottom saturates most pixels to the top colour.
  await page.fill('#sb-max', String(lo + 1));
  await page.waitForFunction((r) => document.getElementById('legend-canvas').dataset.range === r, `[${lo},${lo + 1}]`);
  await settled();
  assert.match(await page.inputValue('#tile-url'), new RegExp(`stretch_range=%5B${lo}%2C${lo + 1}%5D`));
  shown = await legend();
  assert.deepEqual(shown.colors, await colormap('viridis', lo, lo + 1));
  const saturated = await mapPixels(viridis);
  assert.ok(saturated.atTop > saturated.data * 0.8, `${saturated.atTop} of ${saturated.data} at the top colour`);
  assert.ok(colored.atTop < colored.data * 0.2, `before: ${colored.atTop} of ${colored.data} at the top colour`);
  // Min above max is refused on the page (no tile request with a reversed range).
  await page.fill('#sb-min', String(lo + 10));
  await page.waitForSelector('#message:not([hidden])');
  assert.match(await page.locator('#message').textContent(), /min .* above max/);
  assert.equal(await page.inputValue('#tile-url'), '');
  await page.fill('#sb-min', String(lo));
  await page.fill('#sb-max', String(hi));
  await page.waitForFunction((r) => document.getElementById('legend-canvas').dataset.range === r, `[${lo},${hi}]`);
  await settled();
  assert.equal(await page.locator('#message').isHidden(), true);

  // The read-out under the cursor equals /point at the same place.
  const p = await pointUnderCursor();
  const direct = await json(`point/lux/1?lon=${p.lon}&lat=${p.lat}`);
  assert.deepEqual(p.values, [direct.values[0]]);
  assert.equal(typeof p.values[0], 'number', 'the middle of the map is inside the data');
  const text = await page.locator('#readout').textContent();
  assert.ok(text.includes(`value: ${direct.values[0]}`), text);
  await page.screenshot({ path: path.join(outDir, 'singleband.png') });
});

test('RGB from three datasets: the b4/b3/b2 triple', async () => {
  await selectRow('l8', 'b4');
  await page.click('.tabs button[data-mode=rgb]');
  await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/rgb/'));
  await settled();
  assert.equal(await page.locator('input[name=rgb-source][value=datasets]').isChecked(), true);
  assert.deepEqual(
    [await page.inputValue('#rgb-r'), await page.inputValue('#rgb-g'), await page.inputValue('#rgb-b')],
    ['b4', 'b3', 'b2'],
  );
  const url = new URL(await page.inputValue('#tile-url'));
  assert.equal(decodeURI(url.pathname), '/rgb/l8/{z}/{x}/{y}.png');
  assert.deepEqual([url.searchParams.get('r'), url.searchParams.get('g'), url.searchParams.get('b')], ['b4', 'b3', 'b2']);
  // Per-band ranges start at each band's own 2nd-98th percentiles.
  for (const [c, band] of [['r', 'b4'], ['g', 'b3'], ['b', 'b2']]) {
    const m = await json(`metadata/l8/${band}`);
    assert.equal(url.searchParams.get(`${c}_range`), seeded(m));
  }
  assert.equal(await page.locator('#legend').isHidden(), true);
  const px = await mapPixels();
  assert.ok(px.data > px.total * 0.1, `data pixels ${px.data} of ${px.total}`);
  const p = await pointUnderCursor(10, 10);
  const want = [];
  for (const band of ['b4', 'b3', 'b2']) want.push((await json(`point/l8/${band}?lon=${p.lon}&lat=${p.lat}`)).values[0]);
  assert.deepEqual(p.values, want);
  assert.ok(want.every((v) => typeof v === 'number'), `inside the data: ${want}`);
  await page.screenshot({ path: path.join(outDir, 'rgb-datasets.png') });

  // The page URL is a link to this view: another tab opens the same layer at the same place.
  const shared = await reopened();
  assert.equal(shared.tileUrl, await page.inputValue('#tile-url'), shared.link);
  assert.equal(shared.mode, 'rgb');
  const here = await page.evaluate(() => window.kiln.map.getBounds().toArray());
  assert.ok(Math.abs(shared.view[0][0] - here[0][0]) < 1e-3 && Math.abs(shared.view[1][1] - here[1][1]) < 1e-3,
    `${shared.view} vs ${here}`);

  // A channel changed by hand: its range follows that band.
  await page.selectOption('#rgb-b', 'b3');
  await page.waitForFunction(() => new URL(document.getElementById('tile-url').value).searchParams.get('b') === 'b3');
  const b3 = await json('metadata/l8/b3');
  assert.equal(new URL(await page.inputValue('#tile-url')).searchParams.get('b_range'), seeded(b3));
  await settled();
});

test('RGB from three bands of one dataset', async () => {
  await page.click('.tabs button[data-mode=singleband]');
  await selectRow('l7', 'all');
  await page.click('.tabs button[data-mode=rgb]');
  await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/rgb/l7/all/'));
  assert.equal(await page.locator('input[name=rgb-source][value=bands]').isChecked(), true);
  await page.selectOption('#rgb-r', '3');
  await page.selectOption('#rgb-g', '2');
  await page.selectOption('#rgb-b', '1');
  await page.waitForFunction(() => new URL(document.getElementById('tile-url').value).searchParams.get('b') === '1');
  await settled();
  const url = new URL(await page.inputValue('#tile-url'));
  assert.deepEqual([url.searchParams.get('r'), url.searchParams.get('g'), url.searchParams.get('b')], ['3', '2', '1']);
  const meta = await json('metadata/l7/all');
  assert.equal(url.searchParams.get('r_range'), seeded(meta.bands[2]));
  const px = await mapPixels();
  assert.ok(px.data > px.total * 0.1, `data pixels ${px.data} of ${px.total}`);
  const p = await pointUnderCursor();
  const direct = await json(`point/l7/all?lon=${p.lon}&lat=${p.lat}`);
  assert.deepEqual(p.values, [direct.values[2], direct.values[1], direct.values[0]]);
  await page.screenshot({ path: path.join(outDir, 'rgb-bands.png') });
});

test('compute: a normalised difference of two datasets', async () => {
  await page.click('.tabs button[data-mode=singleband]');
  await selectRow('l8', 'b4');
  await page.click('.tabs button[data-mode=compute]');
  await page.check('input[name=cp-source][value=datasets]');
  await page.fill('#cp-expression', '(v1 - v2) / (v1 + v2)');
  await page.selectOption('#cp-v1', 'b4');
  await page.selectOption('#cp-v2', 'b2');
  await page.fill('#cp-min', '-0.2');
  await page.fill('#cp-max', '0.3');
  await page.selectOption('#cp-colormap', 'rdbu');
  await page.click('#cp-apply');
  await page.waitForFunction(() => document.getElementById('legend-canvas').dataset.colormap === 'rdbu'
    && document.getElementById('tile-url').value.includes('/compute/'));
  await settled();
  const url = new URL(await page.inputValue('#tile-url'));
  assert.equal(decodeURI(url.pathname), '/compute/l8/{z}/{x}/{y}.png');
  assert.equal(url.searchParams.get('expression'), '(v1 - v2) / (v1 + v2)');
  assert.deepEqual([url.searchParams.get('v1'), url.searchParams.get('v2')], ['b4', 'b2']);
  const rdbu = await colormap('rdbu', -0.2, 0.3);
  assert.deepEqual((await legend()).colors, rdbu);
  const px = await mapPixels(rdbu);
  assert.ok(px.data > px.total * 0.1, `data pixels ${px.data} of ${px.total}`);
  assert.ok(px.inPalette > px.data * 0.9, `${px.inPalette} of ${px.data} in rdbu`);
  const p = await pointUnderCursor(-10, 5);
  const v1 = (await json(`point/l8/b4?lon=${p.lon}&lat=${p.lat}`)).values[0];
  const v2 = (await json(`point/l8/b2?lon=${p.lon}&lat=${p.lat}`)).values[0];
  assert.deepEqual(p.values, [v1, v2]);
  await page.screenshot({ path: path.join(outDir, 'compute.png') });
  const shared = await reopened();
  assert.equal(shared.tileUrl, await page.inputValue('#tile-url'), shared.link);
  assert.equal(shared.mode, 'compute');
  assert.equal(shared.legend, '[-0.2,0.3]');
});

test('the tile URL is copied and serves a tile', async () => {
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base.replace(/\/$/, '') });
  await page.click('#copy-url');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, await page.inputValue('#tile-url'));
  const tile = await fetch(copied.replace('{z}/{x}/{y}', '0/0/0'));
  assert.equal(tile.status, 200);
  assert.equal(tile.headers.get('content-type'), 'image/png');
});

test('bad input is reported on the page, not thrown', async () => {
  const before = problems.length;
  await page.fill('#cp-expression', 'v1 +* 2');
  await page.click('#cp-apply');
  await page.waitForSelector('#message:not([hidden])');
  const message = await page.locator('#message').textContent();
  assert.match(message, /400/);
  assert.match(message, /expression/);
  // The 400 answer to this request (the response and the browser's console line for it) is
  // the one expected problem.
  const unexpected = problems.slice(before).filter((p) => !(p.includes('400') && p.includes('tilejson.json')));
  assert.deepEqual(unexpected, []);
  problems.splice(before);
});

test('on a high-density screen the map asks for 512 px tiles', async () => {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 }, deviceScaleFactor: 2 });
  const hidpi = await context.newPage();
  const sizes = [];
  hidpi.on('response', async (r) => {
    if (r.url().includes('/compute/') && r.url().includes('.png')) {
      const body = await r.body();
      sizes.push([new URL(r.url()).searchParams.get('tile_size'), body.readUInt32BE(16), body.readUInt32BE(20)]);
    }
  });
  try {
    await hidpi.goto(page.url());
    await hidpi.waitForSelector('body[data-ready=true]');
    await until(() => sizes.length > 0, '512 px tile responses');
    assert.ok(sizes.every(([p, w, h]) => p === '[512,512]' && w === 512 && h === 512), JSON.stringify(sizes));
    // The URL offered to other clients is the plain 256 px one.
    assert.ok(!(await hidpi.inputValue('#tile-url')).includes('tile_size'));
  } finally {
    await context.close();
  }
});

test('a one-key catalog (the README\'s -r mode): RGB by dataset and an empty dataset', async () => {
  // Three Landsat bands and a raster with no valid pixel, keyed by file name only.
  const dir = data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = `${dir}/(?P<file>img_l8_224077_utm21n_b[234]_u16|odd_all_nodata_f32_albers)\\.tif`;
  const other = await serve(['--regex', '-r', pattern]);
  try {
    await page.goto(other.base);
    await page.waitForSelector('body[data-ready=true]');
    assert.equal(await page.locator('#ds-table tbody tr').count(), 4);
    await page.locator('#ds-table tbody tr[data-keys="img_l8_224077_utm21n_b4_u16"]').click();
    await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/singleband/img_l8'));
    await page.mouse.move(5, 5);
    await page.click('.tabs button[data-mode=rgb]');
    await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/rgb/'));
    await settled();
    const url = new URL(await page.inputValue('#tile-url'));
    assert.equal(decodeURI(url.pathname), '/rgb/{z}/{x}/{y}.png');
    assert.deepEqual(
      ['r', 'g', 'b'].map((c) => url.searchParams.get(c)),
      ['img_l8_224077_utm21n_b4_u16', 'img_l8_224077_utm21n_b3_u16', 'img_l8_224077_utm21n_b2_u16'],
    );
    const px = await mapPixels();
    assert.ok(px.data > px.total * 0.1, `data pixels ${px.data} of ${px.total}`);

    // No valid pixel: no statistics, a [0,1] stretch, transparent tiles, and no error.
    await page.click('.tabs button[data-mode=singleband]');
    await page.locator('#ds-table tbody tr[data-keys="odd_all_nodata_f32_albers"]').click();
    await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/odd_all_nodata_f32_albers/'));
    await page.mouse.move(5, 5);
    await settled();
    assert.deepEqual([await page.inputValue('#sb-min'), await page.inputValue('#sb-max')], ['0', '1']);
    assert.equal(await page.locator('#message').isHidden(), true);
    const empty = await mapPixels();
    assert.ok(empty.data < empty.total * 0.01, `${empty.data} data pixels where there is no data`);
  } finally {
    other.proc.kill();
  }
});

test('no console errors, page errors or failed requests', () => {
  assert.deepEqual(problems, []);
});
