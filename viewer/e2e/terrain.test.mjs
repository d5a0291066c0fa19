// End-to-end test of the viewer's 3D terrain as a picture: collection `alps` (harness.mjs)
// served by the real `kiln serve`, seen tilted over the Alps and the Rhine basin in Debian's
// Chromium, hillshade and colour relief drawn. A file of its own: drawing a tilted terrain in
// software takes tens of seconds on a small machine (see harness.mjs).
//
// Run: `node --test viewer/e2e/` (see viewer.test.mjs). The screenshot goes to
// viewer/e2e/out/terrain.png; docs/viewer-terrain.png is that picture, quantised with
// `pngquant --quality 65-85`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  outDir, checkTools, launchBrowser, serve, watch, COLLECTION, collectionCatalog, terrainSettled, mapView,
} from './harness.mjs';

let work;
let server;
let browser;
let page;
const problems = []; // console errors, page errors, failed requests

before(async () => {
  checkTools();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-viewer-terrain-'));
  server = await serve(['-d', collectionCatalog(work)]);
  browser = await launchBrowser();
  page = await (await browser.newContext({ viewport: { width: 1000, height: 640 } })).newPage();
  watch(page, problems);
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  server?.proc.kill();
  if (work) fs.rmSync(work, { recursive: true, force: true });
}, { timeout: 30000 });

test('terrain: tilted over the Alps and the Rhine basin, hillshade and relief drawn', async () => {
  // Looking north from the Alps over the Rhine basin towards Luxembourg: a shared link.
  await page.goto(`${server.base}?collection=${COLLECTION}&mode=terrain&exaggeration=1.5#6.1/48.2/7.5/-12/58`);
  await terrainSettled(page);
  const view = await mapView(page);
  assert.deepEqual([view.zoom, view.pitch, view.bearing].map((v) => +v.toFixed(6)), [6.1, 58, -12]);
  const layers = await page.evaluate(() => ['collection-hillshade', 'collection-relief', 'collection-footprints-line']
    .map((id) => window.kiln.map.getLayoutProperty(id, 'visibility')));
  assert.deepEqual(layers, ['visible', 'visible', 'visible']);
  // Drawn: the map's pixels vary (a blank, flat or unshaded map would not), and none of it
  // is the empty page (tiles missing).
  const seen = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    [c.width, c.height] = [img.width, img.height];
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    const levels = new Set();
    let empty = 0;
    for (let i = 0; i < px.length; i += 4) {
      levels.add((px[i] >> 3) * 1024 + (px[i + 1] >> 3) * 32 + (px[i + 2] >> 3));
      if (px[i] === 255 && px[i + 1] === 255 && px[i + 2] === 255) empty += 1;
    }
    return { levels: levels.size, empty, total: px.length / 4 };
  }, (await page.locator('#map').screenshot()).toString('base64'));
  assert.ok(seen.levels > 500, `${seen.levels} distinct colours on the map`);
  assert.ok(seen.empty < seen.total * 0.01, `${seen.empty} empty pixels of ${seen.total}`);
  await page.mouse.move(5, 5);
  await page.screenshot({ path: path.join(outDir, 'terrain.png') });
});

test('no console errors, page errors or failed requests', () => {
  assert.deepEqual(problems, []);
});
