// End-to-end test of the viewer's collections (#13): a catalog made by the real `kiln ingest
// --collection`, served by the real `kiln serve`, shown as 3D terrain in Debian's Chromium:
// the collection list, terrain, hillshade, footprints, legend, exaggeration, the read-out,
// shared links, and switching between datasets and collections. The picture of the terrain
// is checked in terrain.test.mjs (each file has its own time budget: terrain is slow to draw
// in software, see harness.mjs).
//
// Run: `node --test viewer/e2e/` (see viewer.test.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  data, checkTools, launchBrowser, serve, watch, getJson, COLLECTION, MEMBERS, collectionCatalog,
  terrainLoaded, showing, mapView,
} from './harness.mjs';

// The window: small (fewer terrain tiles to draw); second tabs, which only check where the
// map looks, smaller still.
const SMALL = { width: 800, height: 560 };
const TINY = { width: 600, height: 400 };

let work;
let server;
let plain; // a catalog without collections
let base;
let browser;
let page;
const problems = []; // console errors, page errors, failed requests
const demTiles = []; // terrarium tile answers: [status, content type, url]

before(async () => {
  checkTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-viewer-collections-'));
  const catalog = collectionCatalog(work);
  fs.symlinkSync(path.join(data, MEMBERS[2].file), path.join(work, 'plain.tif'));
  [server, plain] = await Promise.all([
    serve(['-d', catalog]),
    serve(['-r', path.join(work, '{name}.tif')]),
  ]);
  base = server.base;
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: SMALL });
  page = await context.newPage();
  watch(page, problems);
  page.on('response', (r) => {
    if (new RegExp(`/collections/${COLLECTION}/terrarium/\\d+/\\d+/\\d+\\.png`).test(r.url())) {
      demTiles.push([r.status(), r.headers()['content-type'], r.url()]);
    }
  });
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  server?.proc.kill();
  plain?.proc.kill();
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, { timeout: 30000 });

const json = (rel) => getJson(base, rel);

const inside = ([lon, lat], [w, s, e, n]) => lon >= w && lon <= e && lat >= s && lat <= n;

// A second tab in a small window, watched like the first; closed when `use` ends.
async function otherTab(label, use) {
  const other = await page.context().newPage();
  await other.setViewportSize(TINY);
  watch(other, problems, ` (${label})`);
  try {
    return await use(other);
  } finally {
    await other.close();
  }
}

test('collections are listed beside the datasets', async () => {
  await page.goto(base);
  await page.waitForSelector('body[data-ready=true]');
  assert.equal(await page.locator('#ds-table tbody tr').count(), MEMBERS.length);
  assert.equal(await page.locator('#collections').isVisible(), true);
  const listed = (await json('collections')).collections;
  assert.deepEqual(listed.map((c) => [c.name, c.member_count]), [[COLLECTION, 3]]);
  assert.deepEqual(
    await page.locator('#coll-table tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.name)),
    [COLLECTION],
  );
  assert.equal(await page.locator('#coll-table tbody tr td:nth-child(2)').textContent(), '3');
  assert.equal(await page.locator('#terrain').isHidden(), true);
  // A catalog without collections shows no collection list.
  await otherTab('no collections', async (other) => {
    await other.goto(plain.base);
    await other.waitForSelector('body[data-ready=true]');
    assert.equal(await other.locator('#ds-table tbody tr').count(), 1);
    assert.equal(await other.locator('#collections').isHidden(), true);
  });
});

test('a collection link shows 3D terrain, hillshade, footprints by rank and a legend', async () => {
  const info = await json(`collections/${COLLECTION}`);
  // Precedence as ingested: Luxembourg (priority 20) wins, then the Rhine basin, then ETOPO5.
  const ranked = [...info.sources].sort((a, b) => a.rank - b.rank);
  assert.deepEqual(ranked.map((s) => [s.rank, s.priority]), [[0, 20], [1, 10], [2, 0]]);

  // A link without a map position: the map fits the collection (the whole world: ETOPO5).
  await page.goto(`${base}?collection=${COLLECTION}&mode=terrain`);
  await showing(page);
  await terrainLoaded(page);
  assert.deepEqual(await page.evaluate(() => window.kiln.map.getTerrain()),
    { source: 'collection-terrain', exaggeration: 1.5 });
  const view = await mapView(page);
  assert.ok(inside(view.center, info.bounds), `centre ${view.center} in ${info.bounds}`);
  assert.ok(view.zoom < 3, `the whole world is seen, zoom ${view.zoom}`);
  assert.equal(await page.locator('#layer').isHidden(), true);
  assert.equal(await page.locator('#terrain').isVisible(), true);
  const q = new URL(page.url()).searchParams;
  assert.deepEqual([q.get('collection'), q.get('mode'), q.get('exaggeration')], [COLLECTION, 'terrain', '1.5']);

  // The DEM sources: this collection's terrarium tiles, every one answered 200 with a PNG.
  const sources = await page.evaluate(() => ['collection-terrain', 'collection-dem'].map((id) => {
    const s = window.kiln.map.getSource(id);
    return { type: s.type, encoding: s.encoding, tiles: s.tiles };
  }));
  for (const s of sources) {
    assert.equal(s.type, 'raster-dem');
    assert.equal(s.encoding, 'terrarium');
    const url = new URL(s.tiles[0]);
    assert.equal(decodeURI(url.pathname), `/collections/${COLLECTION}/terrarium/{z}/{x}/{y}.png`);
    assert.equal(url.searchParams.get('resampling'), 'cubic');
  }
  assert.ok(demTiles.length > 0, 'terrarium tiles were loaded');
  assert.deepEqual(demTiles.filter(([status, type]) => status !== 200 || type !== 'image/png'), []);
  const hillshade = await page.evaluate(() => {
    const m = window.kiln.map;
    const l = m.getLayer('collection-hillshade');
    return { type: l.type, source: l.source, visibility: m.getLayoutProperty('collection-hillshade', 'visibility') };
  });
  assert.deepEqual(hillshade, { type: 'hillshade', source: 'collection-dem', visibility: 'visible' });

  // Footprints: one per source in use, coloured by rank, as /collections/{name} gives them
  // (inside Web Mercator's latitudes: ETOPO5's reaches the poles).
  const features = await page.evaluate(async () => (await window.kiln.map.getSource('collection-footprints').getData()).features);
  assert.equal(features.length, 3);
  assert.deepEqual(features.map((f) => f.properties.name).sort(), info.sources.map((s) => s.name).sort());
  const mercator = (c) => (typeof c[0] === 'number' ? [c[0], Math.max(-85.0511, Math.min(85.0511, c[1]))] : c.map(mercator));
  for (const f of features) {
    const given = info.sources.find((s) => s.name === f.properties.name).footprint;
    assert.deepEqual(f.geometry, { ...given, coordinates: mercator(given.coordinates) });
  }
  assert.equal(new Set(features.map((f) => f.properties.color)).size, 3, 'three colours');
  // The legend lists them in precedence order, with priority and resolution, in their colours.
  const items = await page.locator('#sources-legend li').evaluateAll((lis) => lis.map((li) => ({
    name: li.dataset.name,
    facts: li.querySelector('.facts').textContent,
    color: getComputedStyle(li.querySelector('.swatch')).backgroundColor,
  })));
  assert.deepEqual(items.map((i) => i.name), ranked.map((s) => s.name));
  ranked.forEach((s, i) => assert.match(items[i].facts, new RegExp(`^priority ${s.priority} · [0-9.]+ (m|km)$`)));
  const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;
  for (const f of features) {
    assert.equal(items.find((i) => i.name === f.properties.name).color, rgb(f.properties.color));
  }

  // The tile URL offered to other clients, by product.
  assert.match(await page.inputValue('#tile-url'), new RegExp(`/collections/${COLLECTION}/terrarium/\\{z\\}/\\{x\\}/\\{y\\}\\.png\\?resampling=cubic$`));
  await page.selectOption('#coll-product', 'hillshade');
  const hillshadeUrl = await page.inputValue('#tile-url');
  assert.match(hillshadeUrl, new RegExp(`/collections/${COLLECTION}/hillshade/`));
  assert.equal(new URL(page.url()).searchParams.get('product'), 'hillshade');
  const tile = await fetch(hillshadeUrl.replace('{z}/{x}/{y}', '5/16/11'));
  assert.equal(tile.status, 200);
  assert.equal(tile.headers.get('content-type'), 'image/png');
  await page.selectOption('#coll-product', 'terrarium');
  assert.equal(new URL(page.url()).searchParams.get('product'), null);

  // A source in the legend: the map fits it and tilts so the relief shows. (Clicked, read
  // and left in one go: the tilted view is slow to draw in software; the next tests look
  // down on Luxembourg, turned a little, so links have a bearing to keep.)
  const rhine = await page.evaluate(() => {
    document.querySelector('#sources-legend li[data-rank="1"] button').click();
    const m = window.kiln.map;
    const seen = { center: m.getCenter().toArray(), zoom: m.getZoom(), pitch: m.getPitch() };
    m.jumpTo({ center: [6.12, 49.75], zoom: 4, pitch: 0, bearing: -20 });
    return seen;
  });
  assert.ok(inside(rhine.center, ranked[1].bounds), `centre ${rhine.center} in ${ranked[1].bounds}`);
  assert.ok(rhine.zoom > 4 && rhine.pitch > 30, JSON.stringify(rhine));
});

test('the exaggeration slider changes the terrain and the link keeps it', async () => {
  // Page Up: a tenth of the slider's range (0 to 5) up, from 1.5 to 2.
  await page.locator('#exaggeration').focus();
  await page.keyboard.press('PageUp');
  await page.waitForFunction(() => window.kiln.map.getTerrain().exaggeration === 2);
  assert.equal(await page.locator('#exaggeration-value').textContent(), '2.0');
  assert.equal(new URL(page.url()).searchParams.get('exaggeration'), '2');
  // The link, opened again (a reload: one page drawing terrain at a time is enough work for
  // a software renderer), shows the same terrain, seen the same way.
  await page.waitForFunction(() => /\/-20$/.test(location.hash));
  const link = page.url();
  const here = await mapView(page);
  await page.reload();
  await showing(page);
  assert.equal(page.url(), link);
  assert.deepEqual(await page.evaluate(() => window.kiln.map.getTerrain()),
    { source: 'collection-terrain', exaggeration: 2 });
  assert.equal(await page.inputValue('#exaggeration'), '2');
  assert.equal(await page.locator('#exaggeration-value').textContent(), '2.0');
  const there = await mapView(page);
  assert.ok(Math.abs(there.zoom - here.zoom) < 0.01 && Math.abs(there.pitch - here.pitch) < 0.5
    && Math.abs(there.bearing - here.bearing) < 0.5
    && Math.abs(there.center[0] - here.center[0]) < 1e-3 && Math.abs(there.center[1] - here.center[1]) < 1e-3,
  `${JSON.stringify(there)} vs ${JSON.stringify(here)}`);
});

test('a click on the terrain reads the height and its source from /point', async () => {
  // Seen from above (as the tests before left it), a click in the middle of the map:
  // Luxembourg, where the Luxembourg DEM wins.
  assert.deepEqual((await mapView(page)).center.map((v) => +v.toFixed(2)), [6.12, 49.75]);
  await terrainLoaded(page);
  const box = await page.locator('#map').boundingBox();
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForFunction(() => document.getElementById('readout').dataset.source !== undefined);
  const shown = await page.evaluate(() => {
    const d = document.getElementById('readout').dataset;
    return { lon: +d.lon, lat: +d.lat, value: JSON.parse(d.value), source: d.source };
  });
  assert.ok(Math.abs(shown.lon - 6.12) < 0.1 && Math.abs(shown.lat - 49.75) < 0.1, JSON.stringify(shown));
  const direct = await json(`collections/${COLLECTION}/point?lon=${shown.lon}&lat=${shown.lat}`);
  assert.equal(typeof direct.value, 'number');
  assert.deepEqual([shown.value, shown.source], [direct.value, direct.source]);
  const info = await json(`collections/${COLLECTION}`);
  assert.equal(direct.source, info.sources.find((s) => s.rank === 0).name);
  const text = await page.locator('#readout').textContent();
  assert.ok(text.includes(`source: ${direct.source}`) && text.includes('height: '), text);
  // The clicked place is marked.
  const marked = await page.evaluate(async () => (await window.kiln.map.getSource('collection-click').getData()).features);
  assert.deepEqual(marked.map((f) => f.geometry.coordinates), [[shown.lon, shown.lat]]);
});

test('a dataset after a collection: flat map, no terrain; quick switches end on the last', async () => {
  await page.locator('#ds-table tbody tr[data-keys="lux/1"]').click();
  await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/singleband/lux/1/'));
  const flat = await mapView(page);
  assert.deepEqual([flat.pitch, flat.bearing], [0, 0]);
  assert.equal(await page.evaluate(() => window.kiln.map.getTerrain()), null);
  assert.equal(await page.evaluate(() => window.kiln.map.getSource('collection-terrain')), undefined);
  assert.equal(await page.locator('#terrain').isHidden(), true);
  assert.equal(await page.locator('#layer').isVisible(), true);
  assert.equal(new URL(page.url()).searchParams.get('collection'), null);
  // A collection then a dataset, clicked at once: the dataset wins, whichever answer is last.
  await page.locator('#coll-table tbody tr').first().click();
  await page.locator('#ds-table tbody tr[data-keys="rhine/1"]').click();
  await page.waitForFunction(() => document.getElementById('tile-url').value.includes('/singleband/rhine/1/'));
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.kiln.map.getTerrain()), null);
  assert.equal(await page.locator('#terrain').isHidden(), true);
  // And the other way round.
  await page.locator('#ds-table tbody tr[data-keys="etopo/1"]').click();
  await page.locator('#coll-table tbody tr').first().click();
  await page.waitForFunction(() => window.kiln.map.getTerrain() !== null);
  await page.waitForTimeout(300);
  assert.equal(await page.locator('#layer').isHidden(), true);
  assert.equal(await page.evaluate(() => window.kiln.map.getLayer('data')), undefined);
  assert.equal(new URL(page.url()).searchParams.get('collection'), COLLECTION);
  // Done with this tab: its terrain need not keep the (software) renderer busy.
  await page.goto('about:blank');
});

test('shared links without a map position fit the data', async () => {
  const meta = await json('metadata/lux/1');
  const info = await json(`collections/${COLLECTION}`);
  await otherTab('link without position', async (other) => {
    await other.goto(`${base}?dataset=lux/1&mode=singleband`);
    await other.waitForSelector('body[data-ready=true]');
    await other.waitForFunction(() => document.getElementById('tile-url').value !== '');
    const view = await mapView(other);
    assert.ok(inside(view.center, meta.bounds), `centre ${view.center} in ${meta.bounds}`);
    assert.ok(view.zoom > 3, `zoom ${view.zoom}`);
    const shown = await other.evaluate(() => window.kiln.map.getBounds().toArray());
    const [w, s, e, n] = meta.bounds;
    assert.ok(shown[0][0] <= w && shown[0][1] <= s && shown[1][0] >= e && shown[1][1] >= n, `${shown} holds ${meta.bounds}`);
  });
  await otherTab('link without position', async (other) => {
    await other.goto(`${base}?collection=${COLLECTION}&mode=terrain`);
    await showing(other);
    const view = await mapView(other);
    assert.ok(inside(view.center, info.bounds), `centre ${view.center} in ${info.bounds}`);
    assert.ok(view.zoom < 3, `the whole collection is seen, zoom ${view.zoom}`);
  });
  // With a position, the link keeps it.
  await otherTab('link with position', async (other) => {
    await other.goto(`${base}?dataset=lux/1&mode=singleband#4/10/20`);
    await other.waitForSelector('body[data-ready=true]');
    await other.waitForFunction(() => document.getElementById('tile-url').value !== '');
    const view = await mapView(other);
    assert.deepEqual([view.zoom, ...view.center.map((v) => +v.toFixed(4))], [4, 20, 10]);
  });
});

test('no console errors, page errors or failed requests', () => {
  assert.deepEqual(problems, []);
});
