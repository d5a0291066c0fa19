// Kiln's web viewer: a dataset browser and layer controls over Kiln's HTTP API, drawn with
// MapLibre GL JS (embedded in the binary). Every request is relative to the page, so the
// viewer works behind a reverse proxy that mounts Kiln under a path prefix.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const CHANNELS = ['r', 'g', 'b'];
  const VARS = ['v1', 'v2', 'v3', 'v4', 'v5'];
  const BACKGROUND = '#e6e9ed';
  // Collections: the terrain's DEM source and a second one over the same tiles for the
  // hillshade and colour relief (MapLibre draws both better from a source of their own).
  const TERRAIN_SOURCE = 'collection-terrain';
  const DEM_SOURCE = 'collection-dem';
  const DEM_SOURCES = [TERRAIN_SOURCE, DEM_SOURCE];
  const TERRAIN_PITCH = 55;
  const TILE_PRODUCTS = ['terrarium', 'terrain-rgb', 'normal', 'hillshade'];
  // Heights between a DEM's samples interpolated smoothly: zoomed in past a coarse DEM's
  // resolution, nearest (the server's default) draws its pixels as terraces in the terrain
  // and the hillshade, and bilinear as facets.
  const DEM_QUERY = 'resampling=cubic';
  // Footprint colours by rank (0 = the source that wins where sources overlap).
  const RANK_COLORS = ['#d7301f', '#1f78b4', '#33a02c', '#ff7f00', '#6a3d9a', '#e7298a', '#b15928', '#008080'];
  const UNUSED_COLOR = '#9aa1aa';
  // Whether the page was opened with a map position (`#zoom/lat/lon`): MapLibre writes its own
  // position into the hash as soon as the map exists, so this is read before that.
  const sharedPosition = /^#[\d.]+\/-?[\d.]+\/-?[\d.]+/.test(location.hash);
  // A link to a collection opens a map that can turn, so the hash's bearing is kept (MapLibre
  // reads it only when rotating is on).
  const opening = new URLSearchParams(location.search);
  const startsThreeD = opening.has('collection') && !opening.has('dataset');

  const state = {
    config: { colormaps: [], basemap: null },
    keys: [],
    page: 0,
    limit: 25,
    total: 0,
    filters: {},
    selected: null, // { keys: [..], meta }
    siblings: [], // values of the last key among datasets sharing the other keys
    mode: 'singleband',
    tilejson: null,
    collections: [], // what /collections lists
    collection: null, // { name, info, tilejson } while a collection is shown
  };
  const metaCache = new Map();
  let pointSeq = 0; // read-out answers older than this are dropped

  // ---- HTTP ----------------------------------------------------------------------------
  async function api(path, options) {
    const response = await fetch(path, options);
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).message || message;
      } catch (_) {
        /* not JSON: keep the status text */
      }
      throw new Error(`${response.status}: ${message}`);
    }
    return response.json();
  }
  const keyPath = (values) => values.map(enc).join('/');
  function metadata(values) {
    const id = keyPath(values);
    if (!metaCache.has(id)) {
      const p = api(`metadata/${id}`);
      p.catch(() => metaCache.delete(id));
      metaCache.set(id, p);
    }
    return metaCache.get(id);
  }

  function showMessage(text) {
    const box = $('message');
    box.textContent = text || '';
    box.hidden = !text;
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  const fmt = (v) => {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(6));
  };

  // Percentile p (1..99) of band statistics; null when the catalog has none.
  function percentile(stats, p) {
    const list = stats && stats.percentiles;
    return list && list.length >= p ? list[p - 1] : null;
  }
  function bandStats(meta, band) {
    return (meta.bands && meta.bands[band - 1]) || meta;
  }
  function seedRange(stats) {
    let lo = percentile(stats, 2);
    let hi = percentile(stats, 98);
    if (lo === null || hi === null) [lo, hi] = stats.range || [0, 1];
    if (!(hi > lo)) hi = lo + 1;
    return [lo, hi];
  }

  // ---- Map -----------------------------------------------------------------------------
  const map = new maplibregl.Map({
    container: 'map',
    style: {
      version: 8,
      sources: {},
      layers: [{ id: 'background', type: 'background', paint: { 'background-color': BACKGROUND } }],
    },
    center: [0, 20],
    zoom: 1.2,
    hash: true,
    // Flat for datasets; a collection's terrain turns rotating and tilting on (setThreeD).
    dragRotate: startsThreeD,
    touchPitch: startsThreeD,
    attributionControl: { compact: true },
  });
  let navigation = null;
  function setNavigation(threeD) {
    if (navigation) map.removeControl(navigation);
    navigation = new maplibregl.NavigationControl({ showCompass: threeD, visualizePitch: threeD });
    map.addControl(navigation, 'top-right');
  }
  setNavigation(startsThreeD);
  map.addControl(new maplibregl.ScaleControl(), 'bottom-left');
  map.on('error', (e) => {
    const err = e && e.error;
    // A collection answers 404 for a tile inside its bounds that no source covers: a hole in
    // the terrain, not a fault.
    if (err && err.status === 404 && DEM_SOURCES.includes(e.sourceId)) return;
    const status = err && err.status ? ` (${err.status})` : '';
    showMessage(`map: ${(err && err.message) || 'error'}${status}`);
  });

  const emptyCollection = { type: 'FeatureCollection', features: [] };

  function graticuleStep(zoom) {
    const steps = [[2, 30], [3, 20], [4, 10], [5, 5], [6, 2], [7, 1], [8, 0.5], [9, 0.25], [10, 0.1]];
    for (const [z, step] of steps) if (zoom < z) return step;
    return 0.05;
  }
  function graticule() {
    const b = map.getBounds();
    const step = graticuleStep(map.getZoom());
    const west = Math.max(-180, Math.floor(b.getWest() / step) * step);
    const east = Math.min(180, Math.ceil(b.getEast() / step) * step);
    const south = Math.max(-85, Math.floor(b.getSouth() / step) * step);
    const north = Math.min(85, Math.ceil(b.getNorth() / step) * step);
    const features = [];
    const line = (coordinates, major) => features.push({
      type: 'Feature', properties: { major }, geometry: { type: 'LineString', coordinates },
    });
    for (let x = west; x <= east + 1e-9; x += step) line([[x, south], [x, north]], Math.abs(x) < 1e-9);
    for (let y = south; y <= north + 1e-9; y += step) line([[west, y], [east, y]], Math.abs(y) < 1e-9);
    return { type: 'FeatureCollection', features };
  }
  function updateGraticule() {
    const source = map.getSource('graticule');
    if (source) source.setData($('graticule').checked ? graticule() : emptyCollection);
  }

  function addOverlays() {
    map.addSource('graticule', { type: 'geojson', data: emptyCollection });
    map.addLayer({
      id: 'graticule', type: 'line', source: 'graticule',
      paint: {
        'line-color': ['case', ['get', 'major'], '#9aa1aa', '#c3c8cf'],
        'line-width': ['case', ['get', 'major'], 1.2, 0.7],
      },
    });
    for (const id of ['selected', 'hover']) map.addSource(id, { type: 'geojson', data: emptyCollection });
    map.addLayer({
      id: 'hover-fill', type: 'fill', source: 'hover',
      paint: { 'fill-color': '#b5451b', 'fill-opacity': 0.15 },
    });
    map.addLayer({
      id: 'hover-line', type: 'line', source: 'hover',
      paint: { 'line-color': '#b5451b', 'line-width': 2 },
    });
    map.addLayer({
      id: 'selected-line', type: 'line', source: 'selected',
      paint: { 'line-color': '#1f2328', 'line-width': 1, 'line-dasharray': [3, 2] },
    });
    map.on('moveend', updateGraticule);
    updateGraticule();
    // What a tilted map shows above the terrain's horizon (a flat map shows none of it).
    map.setSky({
      'sky-color': '#c4d8ea', 'horizon-color': '#eef1f4', 'fog-color': '#eef1f4',
      'sky-horizon-blend': 0.6, 'horizon-fog-blend': 0.6, 'fog-ground-blend': 0.85, 'atmosphere-blend': 0,
    });
  }

  function footprint(meta) {
    if (meta.convex_hull && meta.convex_hull.type) {
      return { type: 'Feature', properties: {}, geometry: meta.convex_hull };
    }
    const [w, s, e, n] = meta.bounds;
    return {
      type: 'Feature', properties: {},
      geometry: { type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] },
    };
  }

  function setBasemap(url) {
    if (map.getLayer('basemap')) map.removeLayer('basemap');
    if (map.getSource('basemap')) map.removeSource('basemap');
    if (!url) return;
    map.addSource('basemap', { type: 'raster', tiles: [url], tileSize: 256 });
    map.addLayer({ id: 'basemap', type: 'raster', source: 'basemap' }, 'graticule');
  }

  // ---- Dataset browser ------------------------------------------------------------------
  function filterValue(text) {
    // Plain text finds key values containing it; `*` patterns and [a,b] lists pass as typed.
    if (text.includes('*') || text.startsWith('[')) return text;
    return `*${text}*`;
  }

  let datasetsSeq = 0;
  async function loadDatasets() {
    const seq = ++datasetsSeq;
    const params = new URLSearchParams({ limit: state.limit, page: state.page });
    for (const [key, text] of Object.entries(state.filters)) {
      if (text.trim()) params.set(key, filterValue(text.trim()));
    }
    let page;
    try {
      page = await api(`datasets?${params}`);
    } catch (e) {
      if (seq === datasetsSeq) showMessage(`datasets: ${e.message}`);
      return;
    }
    if (seq !== datasetsSeq) return; // a newer filter or page is on its way
    state.total = page.total ?? page.datasets.length;
    const pages = Math.max(1, Math.ceil(state.total / state.limit));
    if (state.page >= pages && state.page > 0) {
      state.page = pages - 1;
      return loadDatasets();
    }
    $('ds-total').textContent = `${state.total}`;
    $('ds-page').textContent = `page ${state.page + 1} / ${pages}`;
    $('ds-prev').disabled = state.page === 0;
    $('ds-next').disabled = state.page + 1 >= pages;
    const body = document.querySelector('#ds-table tbody');
    body.replaceChildren();
    for (const ds of page.datasets) {
      const values = state.keys.map((k) => ds[k]);
      const tr = document.createElement('tr');
      tr.dataset.keys = keyPath(values);
      for (const v of values) {
        const td = document.createElement('td');
        td.textContent = v;
        td.title = v;
        tr.append(td);
      }
      tr.addEventListener('mouseenter', () => hover(values, tr));
      tr.addEventListener('mouseleave', () => hover(null));
      tr.addEventListener('click', () => select(values).catch((e) => showMessage(e.message)));
      // Keyboard: Tab to a row shows its footprint, Enter or Space selects it.
      tr.tabIndex = 0;
      tr.addEventListener('focus', () => hover(values, tr));
      tr.addEventListener('blur', () => hover(null));
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          select(values).catch((err) => showMessage(err.message));
        }
      });
      if (state.selected && keyPath(state.selected.keys) === tr.dataset.keys) tr.classList.add('selected');
      body.append(tr);
    }
  }

  let hovered = null;
  const showHover = debounce(async (values, row) => {
    if (!values || hovered !== keyPath(values)) return;
    try {
      const meta = await metadata(values);
      if (hovered === keyPath(values)) {
        map.getSource('hover').setData({ type: 'FeatureCollection', features: [footprint(meta)] });
      }
    } catch (e) {
      // Hovering is a glance: mark the row instead of raising an alarm; selecting it reports.
      row.classList.add('broken');
      for (const td of row.cells) td.title = e.message;
    }
  }, 120);
  function hover(values, row) {
    hovered = values ? keyPath(values) : null;
    if (!values) {
      const source = map.getSource('hover');
      if (source) source.setData(emptyCollection);
      return;
    }
    showHover(values, row);
  }

  function fitTo(bounds) {
    const [w, s, e, n] = bounds;
    map.fitBounds([[w, Math.max(s, -85)], [e, Math.min(n, 85)]], { padding: 30, duration: 0, maxZoom: 18 });
  }

  // Each selection gets a number; an older one still awaiting answers stops when it sees a
  // newer number, so two quick clicks never mix their datasets.
  let selectSeq = 0;
  const stale = (seq) => seq !== selectSeq;

  // `restore`: the page URL's parameters of a shared view (mode, source and the layer's own
  // parameters), applied to the controls before the first layer is drawn.
  async function select(values, restore = null) {
    const seq = ++selectSeq;
    let meta;
    try {
      meta = await metadata(values);
    } catch (e) {
      if (!stale(seq)) showMessage(`metadata of ${keyPath(values)}: ${e.message}`);
      return;
    }
    if (stale(seq)) return;
    showMessage('');
    leaveCollection();
    setThreeD(false);
    state.selected = { keys: values, meta };
    for (const tr of document.querySelectorAll('#ds-table tbody tr')) {
      tr.classList.toggle('selected', tr.dataset.keys === keyPath(values));
    }
    const shown = state.keys.map((k, i) => `${k}=${values[i]}`).join('  ');
    $('selected-keys').textContent = `${shown}  ·  ${meta.band_count ?? 1} band(s), ${meta.dtype ?? ''}`;
    map.getSource('selected').setData({ type: 'FeatureCollection', features: [footprint(meta)] });
    // A shared link keeps its map position (the URL hash); a click, or a link without a
    // position, fits the dataset.
    if (!(restore && sharedPosition)) fitTo(meta.bounds);
    history.replaceState(null, '', `?${new URLSearchParams({ dataset: keyPath(values) })}${location.hash}`);
    $('layer').hidden = false;
    $('url-box').hidden = false;
    dropLayer();
    const siblings = await loadSiblings(values);
    if (stale(seq)) return;
    state.siblings = siblings;
    setupSingleband(meta);
    await setupRgb(meta, seq);
    if (stale(seq)) return;
    setupCompute(meta);
    if (restore) {
      await applyView(restore, seq);
      if (stale(seq)) return;
    }
    await updateLayer();
  }

  // ---- Shareable views: the page URL holds the dataset, the mode and the layer parameters ----
  function parseRange(text) {
    const m = /^\[\s*([^,\]]+?)\s*,\s*([^,\]]+?)\s*\]$/.exec(text || '');
    if (!m) return null;
    const [lo, hi] = [Number(m[1]), Number(m[2])];
    return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : null;
  }

  function setRadio(name, value) {
    if (value === 'bands' || value === 'datasets') {
      document.querySelector(`input[name=${name}][value=${value}]`).checked = true;
    }
  }

  async function applyView(q, seq) {
    const mode = q.get('mode');
    if (!['singleband', 'rgb', 'compute'].includes(mode)) return;
    setMode(mode);
    if (mode === 'singleband') {
      if (q.has('band')) {
        $('sb-band').value = q.get('band');
        resetStretch();
      }
      if (q.has('colormap')) $('sb-colormap').value = q.get('colormap');
      const r = parseRange(q.get('stretch_range'));
      if (r) setStretch(r[0], r[1]);
    } else if (mode === 'rgb') {
      setRadio('rgb-source', q.get('source'));
      await buildChannels(seq);
      if (stale(seq)) return;
      for (const c of CHANNELS) {
        if (q.has(c)) $(`rgb-${c}`).value = q.get(c);
        const r = parseRange(q.get(`${c}_range`));
        if (r) [$(`rgb-${c}-min`).value, $(`rgb-${c}-max`).value] = r;
      }
    } else {
      setRadio('cp-source', q.get('source'));
      buildVars();
      if (q.has('expression')) $('cp-expression').value = q.get('expression');
      for (const v of VARS) $(`cp-${v}`).value = q.get(v) ?? '';
      if (q.has('colormap')) $('cp-colormap').value = q.get('colormap');
      const r = parseRange(q.get('stretch_range'));
      if (r) [$('cp-min').value, $('cp-max').value] = r;
    }
  }

  // The current view as the page URL, so it can be bookmarked or sent.
  function recordView(spec) {
    const q = new URLSearchParams({ dataset: keyPath(state.selected.keys), mode: state.mode });
    if (state.mode !== 'singleband') {
      const name = state.mode === 'rgb' ? 'rgb-source' : 'cp-source';
      q.set('source', document.querySelector(`input[name=${name}]:checked`).value);
    }
    for (const [k, v] of spec.params) q.set(k, v);
    history.replaceState(null, '', `?${q}${location.hash}`);
  }

  async function loadSiblings(values) {
    // Datasets equal in every key but the last: the choices for RGB and compute by dataset.
    // The filter is exact (as a list of one, so a value with `*` is still a pattern on the
    // server; the rows are checked again here).
    const params = new URLSearchParams({ limit: 1000 });
    const fixed = state.keys.slice(0, -1);
    fixed.forEach((k, i) => params.set(k, values[i]));
    const last = state.keys[state.keys.length - 1];
    const current = values[values.length - 1];
    let found = [];
    try {
      const page = await api(`datasets?${params}`);
      found = page.datasets
        .filter((d) => fixed.every((k, i) => d[k] === values[i]))
        .map((d) => d[last]);
    } catch (e) {
      showMessage(`datasets: ${e.message}`);
    }
    // The selected dataset is always a choice, even past the first thousand.
    if (!found.includes(current)) found.unshift(current);
    return found;
  }
  const siblingKeys = (value) => [...state.selected.keys.slice(0, -1), value];

  // ---- Layer controls -------------------------------------------------------------------
  function fillColormaps(select, chosen) {
    select.replaceChildren(new Option('none (grey)', ''));
    for (const name of state.config.colormaps) select.append(new Option(name, name));
    select.value = chosen;
  }

  function setStretchDomain(stats) {
    const [lo, hi] = stats.range || seedRange(stats);
    const span = hi > lo ? hi - lo : 1;
    for (const id of ['sb-min-range', 'sb-max-range']) {
      const el = $(id);
      el.min = lo;
      el.max = lo + span;
      el.step = span / 1000;
    }
  }
  function setStretch(lo, hi) {
    $('sb-min').value = fmt(lo) === '–' ? '' : +lo.toPrecision(7);
    $('sb-max').value = fmt(hi) === '–' ? '' : +hi.toPrecision(7);
    $('sb-min-range').value = lo;
    $('sb-max-range').value = hi;
  }
  function resetStretch() {
    const stats = bandStats(state.selected.meta, +$('sb-band').value || 1);
    setStretchDomain(stats);
    const [lo, hi] = seedRange(stats);
    setStretch(lo, hi);
  }

  function setupSingleband(meta) {
    const count = meta.band_count || 1;
    const band = $('sb-band');
    band.replaceChildren();
    for (let b = 1; b <= count; b += 1) band.append(new Option(`band ${b}`, String(b)));
    $('band-row').hidden = count < 2;
    resetStretch();
  }

  function channelOptions(select, source, meta) {
    select.replaceChildren();
    if (source === 'bands') {
      for (let b = 1; b <= (meta.band_count || 1); b += 1) select.append(new Option(`band ${b}`, String(b)));
    } else {
      for (const v of state.siblings) select.append(new Option(v, v));
    }
  }

  // Statistics of a channel choice: a band of the selected dataset or a sibling dataset.
  async function choiceStats(source, value) {
    if (source === 'bands') return bandStats(state.selected.meta, +value);
    return bandStats(await metadata(siblingKeys(value)), 1);
  }

  function defaultRgbDatasets() {
    // Landsat 8 band names: red = b4, green = b3, blue = b2 when all three exist, as a
    // whole token ("B04", "band4", "4", "…_b4_…").
    const find = (n) => state.siblings.find((v) => new RegExp(`(^|[^a-z0-9])(b|band)?0?${n}($|[^0-9])`, 'i').test(v));
    const picks = [find(4), find(3), find(2)];
    if (picks.every(Boolean) && new Set(picks).size === 3) return picks;
    const s = state.siblings;
    return [s[0], s[Math.min(1, s.length - 1)], s[Math.min(2, s.length - 1)]];
  }

  async function setupRgb(meta, seq) {
    const multi = (meta.band_count || 1) >= 3;
    const source = multi ? 'bands' : 'datasets';
    document.querySelector(`input[name=rgb-source][value=${source}]`).checked = true;
    await buildChannels(seq);
  }

  async function buildChannels(seq = selectSeq) {
    const source = document.querySelector('input[name=rgb-source]:checked').value;
    const meta = state.selected.meta;
    const box = $('rgb-channels');
    box.replaceChildren();
    const defaults = source === 'bands' ? ['1', '2', '3'] : defaultRgbDatasets();
    for (const [i, c] of CHANNELS.entries()) {
      const div = document.createElement('div');
      div.className = 'channel';
      div.dataset.channel = c;
      div.innerHTML = `<label class="row">${c.toUpperCase()} <select id="rgb-${c}"></select></label>
        <label class="row">range <input id="rgb-${c}-min" type="number" step="any"> &ndash;
        <input id="rgb-${c}-max" type="number" step="any"></label>`;
      box.append(div);
      const select = $(`rgb-${c}`);
      channelOptions(select, source, meta);
      if (defaults[i] !== undefined) select.value = defaults[i];
      select.addEventListener('change', async () => {
        await seedChannel(c, source, selectSeq);
        layerNow();
      });
      for (const end of ['min', 'max']) $(`rgb-${c}-${end}`).addEventListener('input', layerSoon);
    }
    // Seeded together; a newer selection or rebuild makes these answers moot.
    await Promise.all(CHANNELS.map((c) => seedChannel(c, source, seq)));
  }

  async function seedChannel(c, source, seq) {
    const select = $(`rgb-${c}`);
    try {
      const [lo, hi] = seedRange(await choiceStats(source, select.value));
      if (stale(seq) || !select.isConnected) return;
      $(`rgb-${c}-min`).value = +lo.toPrecision(7);
      $(`rgb-${c}-max`).value = +hi.toPrecision(7);
    } catch (e) {
      if (!stale(seq)) showMessage(`metadata: ${e.message}`);
    }
  }

  function setupCompute(meta) {
    const multi = (meta.band_count || 1) > 1;
    document.querySelector(`input[name=cp-source][value=${multi ? 'bands' : 'datasets'}]`).checked = true;
    buildVars();
    const [lo, hi] = seedRange(bandStats(meta, 1));
    $('cp-min').value = +lo.toPrecision(7);
    $('cp-max').value = +hi.toPrecision(7);
  }

  function buildVars() {
    const source = document.querySelector('input[name=cp-source]:checked').value;
    const box = $('cp-vars');
    box.replaceChildren();
    const current = state.selected.keys[state.selected.keys.length - 1];
    for (const [i, v] of VARS.entries()) {
      const label = document.createElement('label');
      label.className = 'row';
      label.textContent = `${v} `;
      const select = document.createElement('select');
      select.id = `cp-${v}`;
      channelOptions(select, source, state.selected.meta);
      select.prepend(new Option('—', ''));
      select.value = i === 0 ? (source === 'bands' ? '1' : current) : '';
      label.append(select);
      box.append(label);
    }
  }

  // ---- The layer: URL, map source, legend -----------------------------------------------
  const range = (lo, hi) => `[${lo},${hi}]`;
  const numberOf = (id) => {
    const v = Number.parseFloat($(id).value);
    return Number.isFinite(v) ? v : null;
  };

  // The current layer as { path, params, points, legend } or an error message.
  function layerSpec() {
    const sel = state.selected;
    const full = keyPath(sel.keys);
    const prefix = keyPath(sel.keys.slice(0, -1));
    const params = new URLSearchParams();
    if (state.mode === 'singleband') {
      const lo = numberOf('sb-min');
      const hi = numberOf('sb-max');
      if (lo === null || hi === null) return { error: 'stretch: give numbers for min and max' };
      if (lo > hi) return { error: `stretch: min ${lo} is above max ${hi}` };
      const band = +$('sb-band').value || 1;
      if ((sel.meta.band_count || 1) > 1) params.set('band', band);
      params.set('stretch_range', range(lo, hi));
      const cmap = $('sb-colormap').value;
      if (cmap) params.set('colormap', cmap);
      return {
        path: `singleband/${full}`, params,
        points: [{ label: 'value', keys: sel.keys, band }],
        legend: { colormap: cmap, lo, hi },
      };
    }
    if (state.mode === 'rgb') {
      const source = document.querySelector('input[name=rgb-source]:checked').value;
      const points = [];
      for (const c of CHANNELS) {
        const value = $(`rgb-${c}`).value;
        if (!value) return { error: `RGB: choose the ${c.toUpperCase()} channel` };
        params.set(c, value);
        const lo = numberOf(`rgb-${c}-min`);
        const hi = numberOf(`rgb-${c}-max`);
        if (lo !== null && hi !== null) {
          if (lo > hi) return { error: `RGB: the ${c.toUpperCase()} range min ${lo} is above its max ${hi}` };
          params.set(`${c}_range`, range(lo, hi));
        }
        points.push(source === 'bands'
          ? { label: c.toUpperCase(), keys: sel.keys, band: +value }
          : { label: c.toUpperCase(), keys: siblingKeys(value), band: 1 });
      }
      const path = source === 'bands' ? `rgb/${full}` : `rgb${prefix ? `/${prefix}` : ''}`;
      return { path, params, points, legend: null };
    }
    const expression = $('cp-expression').value.trim();
    if (!expression) return { error: 'compute: write an expression, e.g. (v2 - v1) / (v2 + v1)' };
    const source = document.querySelector('input[name=cp-source]:checked').value;
    params.set('expression', expression);
    const used = VARS.filter((v) => new RegExp(`\\b${v}\\b`).test(expression));
    const points = [];
    for (const v of used) {
      const value = $(`cp-${v}`).value;
      if (!value) return { error: `compute: the expression uses ${v}; choose what ${v} is` };
      params.set(v, value);
      points.push(source === 'bands'
        ? { label: v, keys: sel.keys, band: +value }
        : { label: v, keys: siblingKeys(value), band: 1 });
    }
    const lo = numberOf('cp-min');
    const hi = numberOf('cp-max');
    if (lo === null || hi === null) return { error: 'compute: give numbers for the range' };
    if (lo > hi) return { error: `compute: range min ${lo} is above max ${hi}` };
    params.set('stretch_range', range(lo, hi));
    const cmap = $('cp-colormap').value;
    if (cmap) params.set('colormap', cmap);
    const path = source === 'bands' ? `compute/${full}` : `compute${prefix ? `/${prefix}` : ''}`;
    return { path, params, points, legend: { colormap: cmap, lo, hi } };
  }

  let layerSeq = 0;
  let currentSpec = null;

  // No layer on the map: what a failed layer leaves, so nothing stale stays on screen.
  function dropLayer() {
    if (map.getLayer('data')) map.removeLayer('data');
    if (map.getSource('data')) map.removeSource('data');
    state.tilejson = null;
    currentSpec = null;
    pointSeq += 1;
    $('readout').textContent = '';
    $('tile-url').value = '';
    $('legend').hidden = true;
  }

  // The tile URL template, absolute, on the page's own origin and path (so a proxy prefix is
  // kept); the braces stay literal for XYZ clients.
  const tileTemplate = (spec) => `${new URL(`${spec.path}/`, location.href).href}{z}/{x}/{y}.png?${spec.params}`;

  // On high-density screens the map asks for 512 px tiles and draws them in 256 px slots, so
  // they are as sharp as the screen; the URL shown for other clients stays at 256 px.
  function mapTileTemplate(spec) {
    if (window.devicePixelRatio < 1.5) return tileTemplate(spec);
    const params = new URLSearchParams(spec.params);
    params.set('tile_size', '[512,512]');
    return tileTemplate({ ...spec, params });
  }

  async function updateLayer() {
    if (!state.selected) return;
    const seq = ++layerSeq;
    const spec = layerSpec();
    if (spec.error) {
      dropLayer();
      showMessage(spec.error);
      return;
    }
    let tj;
    try {
      tj = await api(`${spec.path}/tilejson.json?${spec.params}`);
    } catch (e) {
      if (seq === layerSeq) {
        dropLayer();
        showMessage(`layer: ${e.message}`);
      }
      return;
    }
    if (seq !== layerSeq) return;
    showMessage('');
    recordView(spec);
    currentSpec = spec;
    pointSeq += 1;
    setDataLayer({ ...tj, tiles: [mapTileTemplate(spec)] });
    $('tile-url').value = tileTemplate(spec);
    $('tilejson-link').href = `${spec.path}/tilejson.json?${spec.params}`;
    await updateLegend(spec.legend, seq);
  }
  const layerNow = () => updateLayer().catch((e) => showMessage(e.message));
  const layerSoon = debounce(layerNow, 250);

  function setDataLayer(tj) {
    const same = state.tilejson
      && JSON.stringify([state.tilejson.bounds, state.tilejson.minzoom, state.tilejson.maxzoom])
        === JSON.stringify([tj.bounds, tj.minzoom, tj.maxzoom]);
    const source = map.getSource('data');
    if (source && same) {
      source.setTiles(tj.tiles);
    } else {
      if (map.getLayer('data')) map.removeLayer('data');
      if (source) map.removeSource('data');
      map.addSource('data', {
        type: 'raster', tiles: tj.tiles, tileSize: 256,
        bounds: tj.bounds, minzoom: tj.minzoom, maxzoom: tj.maxzoom,
      });
      map.addLayer({
        id: 'data', type: 'raster', source: 'data',
        paint: {
          'raster-opacity': +$('opacity').value,
          'raster-fade-duration': 0,
          'raster-resampling': 'nearest',
        },
      }, 'hover-fill');
    }
    state.tilejson = tj;
  }

  async function updateLegend(legend, seq) {
    const box = $('legend');
    if (!legend) {
      box.hidden = true;
      return;
    }
    const params = new URLSearchParams({ stretch_range: range(legend.lo, legend.hi), num_values: 255 });
    if (legend.colormap) params.set('colormap', legend.colormap);
    let list;
    try {
      list = (await api(`colormap?${params}`)).colormap;
    } catch (e) {
      if (seq === layerSeq) {
        box.hidden = true;
        showMessage(`legend: ${e.message}`);
      }
      return;
    }
    if (seq !== layerSeq) return;
    const canvas = $('legend-canvas');
    canvas.width = list.length;
    canvas.height = 1;
    const ctx = canvas.getContext('2d');
    const image = ctx.createImageData(list.length, 1);
    list.forEach((entry, i) => image.data.set(entry.rgba, i * 4));
    ctx.putImageData(image, 0, 0);
    canvas.dataset.colormap = legend.colormap;
    canvas.dataset.range = range(legend.lo, legend.hi);
    $('legend-min').textContent = fmt(legend.lo);
    $('legend-max').textContent = fmt(legend.hi);
    box.hidden = false;
  }

  // ---- Value under the cursor -----------------------------------------------------------
  const readPoint = debounce(async (lngLat) => {
    const out = $('readout');
    const spec = currentSpec;
    if (!spec) return;
    const seq = ++pointSeq;
    const lon = +lngLat.lng.toFixed(7);
    const lat = +lngLat.lat.toFixed(7);
    if (Math.abs(lat) > 85.05 || Math.abs(lon) > 180) return;
    const groups = new Map();
    for (const p of spec.points) groups.set(keyPath(p.keys), p.keys);
    try {
      const answers = new Map();
      await Promise.all([...groups].map(async ([id]) => {
        answers.set(id, await api(`point/${id}?lon=${lon}&lat=${lat}`));
      }));
      if (seq !== pointSeq) return;
      const values = spec.points.map((p) => {
        const answer = answers.get(keyPath(p.keys));
        return answer.values[p.band - 1] ?? null;
      });
      const lines = [`${lon.toFixed(5)}, ${lat.toFixed(5)}`];
      spec.points.forEach((p, i) => lines.push(`${p.label}: ${fmt(values[i])}`));
      out.textContent = lines.join('\n');
      out.style.whiteSpace = 'pre';
      out.dataset.lon = lon;
      out.dataset.lat = lat;
      out.dataset.values = JSON.stringify(values);
    } catch (e) {
      if (seq === pointSeq) out.textContent = `point: ${e.message}`;
    }
  }, 80);

  // ---- Collections: DEM sources composited by precedence, shown as 3D terrain -------------
  const collPath = (name) => `collections/${enc(name)}`;

  async function loadCollections() {
    let list = [];
    try {
      list = (await api('collections')).collections;
    } catch (e) {
      // A server without collection routes answers 404: it simply has none to show.
      if (!e.message.startsWith('404')) showMessage(`collections: ${e.message}`);
    }
    state.collections = list;
    $('collections').hidden = list.length === 0;
    $('coll-total').textContent = `${list.length}`;
    const body = document.querySelector('#coll-table tbody');
    body.replaceChildren();
    for (const c of list) {
      const tr = document.createElement('tr');
      tr.dataset.name = c.name;
      for (const v of [c.name, c.member_count, c.description || '']) {
        const td = document.createElement('td');
        td.textContent = v;
        td.title = v;
        tr.append(td);
      }
      const choose = () => selectCollection(c.name).catch((e) => showMessage(e.message));
      tr.addEventListener('click', choose);
      tr.tabIndex = 0;
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          choose();
        }
      });
      body.append(tr);
    }
    markCollectionRow();
  }

  function markCollectionRow() {
    const name = state.collection && state.collection.name;
    for (const tr of document.querySelectorAll('#coll-table tbody tr')) {
      tr.classList.toggle('selected', tr.dataset.name === name);
    }
  }

  const rankColor = (source) => (source.rank === null || source.rank === undefined
    ? UNUSED_COLOR : RANK_COLORS[source.rank % RANK_COLORS.length]);
  // Precedence order, unused sources last.
  const byRank = (sources) => [...sources].sort((a, b) => (a.rank ?? Infinity) - (b.rank ?? Infinity));

  function resolution(m) {
    if (!Number.isFinite(m)) return '';
    return m >= 1000 ? `${+(m / 1000).toPrecision(3)} km` : `${+m.toPrecision(3)} m`;
  }

  function exaggeration() {
    const x = Number.parseFloat($('exaggeration').value);
    return Number.isFinite(x) ? x : 1;
  }
  function setExaggeration(x) {
    $('exaggeration').value = x;
    $('exaggeration-value').textContent = exaggeration().toFixed(1);
  }

  // Rotating and tilting: on for terrain, off (and the map flat, north up) for datasets.
  let threeD = startsThreeD;
  function setThreeD(on) {
    if (on === threeD) return;
    threeD = on;
    if (on) {
      map.dragRotate.enable();
      map.touchPitch.enable();
    } else {
      map.dragRotate.disable();
      map.touchPitch.disable();
      map.jumpTo({ pitch: 0, bearing: 0 });
    }
    setNavigation(on);
  }

  // A hypsometric tint under the hillshade: sea blue, lowland green, highland brown, snow.
  const RELIEF_COLORS = ['interpolate', ['linear'], ['elevation'],
    -6000, '#1d4f7a', -200, '#6d9fc7', -1, '#a8cbe3', 0, '#97bf84', 300, '#c5d897',
    800, '#e9e0a6', 1500, '#d0ae7d', 2500, '#a7774f', 3300, '#d9d4cf', 4500, '#ffffff'];

  function removeCollectionLayers() {
    if (map.getTerrain()) map.setTerrain(null);
    for (const id of ['collection-click', 'collection-footprints-line', 'collection-hillshade', 'collection-relief']) {
      if (map.getLayer(id)) map.removeLayer(id);
    }
    for (const id of ['collection-click', 'collection-footprints', ...DEM_SOURCES]) {
      if (map.getSource(id)) map.removeSource(id);
    }
  }

  const visibility = (id) => ($(id).checked ? 'visible' : 'none');

  function addCollectionLayers(tj, footprints) {
    removeCollectionLayers();
    const template = collectionTileTemplate('terrarium');
    const dem = {
      type: 'raster-dem', tiles: [template], encoding: 'terrarium', tileSize: tj.tileSize || 256,
      minzoom: tj.minzoom ?? 0, maxzoom: tj.maxzoom ?? 22,
    };
    if (Array.isArray(tj.bounds)) dem.bounds = tj.bounds;
    for (const id of DEM_SOURCES) map.addSource(id, { ...dem });
    // Under the dataset overlays (footprints, hover), above the base map and graticule.
    map.addLayer({
      id: 'collection-relief', type: 'color-relief', source: DEM_SOURCE,
      layout: { visibility: visibility('show-relief') },
      paint: { 'color-relief-color': RELIEF_COLORS, 'color-relief-opacity': 0.85 },
    }, 'hover-fill');
    map.addLayer({
      id: 'collection-hillshade', type: 'hillshade', source: DEM_SOURCE,
      layout: { visibility: visibility('show-hillshade') },
      paint: { 'hillshade-exaggeration': 0.6, 'hillshade-shadow-color': '#2b2b2b' },
    }, 'hover-fill');
    // Outlines only: a fill would tint the relief (and a global base source's, all of it).
    map.addSource('collection-footprints', { type: 'geojson', data: footprints });
    map.addLayer({
      id: 'collection-footprints-line', type: 'line', source: 'collection-footprints',
      layout: { visibility: visibility('show-footprints') },
      paint: { 'line-color': ['get', 'color'], 'line-width': 2 },
    }, 'hover-fill');
    map.addSource('collection-click', { type: 'geojson', data: emptyCollection });
    map.addLayer({
      id: 'collection-click', type: 'circle', source: 'collection-click',
      paint: {
        'circle-radius': 5, 'circle-color': '#ffffff',
        'circle-stroke-color': '#1f2328', 'circle-stroke-width': 2,
        'circle-pitch-alignment': 'map',
      },
    });
    map.setTerrain({ source: TERRAIN_SOURCE, exaggeration: exaggeration() });
  }

  // A geometry with its latitudes inside Web Mercator's (a global footprint reaches ±90°).
  function clampLatitudes(geometry) {
    const clamp = (c) => (typeof c[0] === 'number'
      ? [c[0], Math.max(-85.0511, Math.min(85.0511, c[1])), ...c.slice(2)]
      : c.map(clamp));
    return { ...geometry, coordinates: clamp(geometry.coordinates) };
  }

  // The sources' footprints, the winning source drawn last (on top).
  function footprintCollection(info) {
    const features = byRank(info.sources).reverse()
      .filter((s) => s.footprint && s.footprint.type && s.footprint.coordinates)
      .map((s) => ({
        type: 'Feature',
        properties: { name: s.name, rank: s.rank, priority: s.priority, color: rankColor(s) },
        geometry: clampLatitudes(s.footprint),
      }));
    return { type: 'FeatureCollection', features };
  }

  function showSources(info) {
    const list = $('sources-legend');
    list.replaceChildren();
    for (const s of byRank(info.sources)) {
      const li = document.createElement('li');
      li.dataset.name = s.name;
      li.dataset.rank = s.rank ?? '';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = rankColor(s);
      const name = document.createElement('button');
      name.type = 'button';
      name.className = 'link';
      name.textContent = s.name;
      name.title = `${s.name}: fit the map to it`;
      if (Array.isArray(s.bounds)) name.addEventListener('click', () => fitTerrain(s.bounds));
      const facts = document.createElement('span');
      facts.className = 'facts';
      facts.textContent = [`priority ${s.priority}`, resolution(s.resolution_m)].filter(Boolean).join(' · ');
      li.append(swatch, name, facts);
      li.title = [
        `rank ${s.rank ?? '–'}`,
        s.dtype,
        s.min_zoom !== null && s.min_zoom !== undefined ? `zoom ${s.min_zoom}–${s.max_zoom ?? ''}` : null,
        s.acquired ? `acquired ${s.acquired}` : null,
        s.enabled === false ? 'disabled' : null,
      ].filter(Boolean).join(', ');
      if (s.unused) {
        const why = document.createElement('span');
        why.className = 'why';
        why.textContent = `unused: ${s.unused}`;
        li.append(why);
      }
      li.classList.toggle('unused', s.rank === null || s.rank === undefined);
      list.append(li);
    }
  }

  // A product's tile URL template, absolute on the page's own origin and path (as
  // tileTemplate), the braces literal.
  const collectionTileTemplate = (product) => `${new URL(`${collPath(state.collection.name)}/${product}/`, location.href).href}{z}/{x}/{y}.png?${DEM_QUERY}`;

  // The collection's tile URL for the product chosen under "Tile URL".
  function showCollectionUrl() {
    const product = $('coll-product').value || 'terrarium';
    $('tile-url').value = collectionTileTemplate(product);
    $('tilejson-link').href = `${collPath(state.collection.name)}/${product}/tilejson.json?${DEM_QUERY}`;
  }

  // The current collection view as the page URL (the map position stays in the hash).
  function recordCollectionView() {
    const c = state.collection;
    const q = new URLSearchParams({ collection: c.name, mode: 'terrain', exaggeration: exaggeration() });
    for (const [id, name] of [['show-hillshade', 'hillshade'], ['show-relief', 'relief'], ['show-footprints', 'footprints']]) {
      if (!$(id).checked) q.set(name, '0');
    }
    const product = $('coll-product').value;
    if (product && product !== 'terrarium') q.set('product', product);
    history.replaceState(null, '', `?${q}${location.hash}`);
  }

  function applyCollectionView(q) {
    const x = Number.parseFloat(q.get('exaggeration'));
    if (Number.isFinite(x) && x >= 0) setExaggeration(Math.min(x, +$('exaggeration').max));
    $('show-hillshade').checked = q.get('hillshade') !== '0';
    $('show-relief').checked = q.get('relief') !== '0';
    $('show-footprints').checked = q.get('footprints') !== '0';
    return q.get('product');
  }

  // `restore`: the page URL's parameters of a shared view.
  async function selectCollection(name, restore = null) {
    const seq = ++selectSeq;
    let info;
    let tj;
    try {
      [info, tj] = await Promise.all([
        api(collPath(name)),
        api(`${collPath(name)}/terrarium/tilejson.json?${DEM_QUERY}`),
      ]);
    } catch (e) {
      if (!stale(seq)) showMessage(`collection ${name}: ${e.message}`);
      return;
    }
    if (stale(seq)) return;
    showMessage('');
    leaveDataset();
    state.collection = { name, info, tilejson: tj };
    markCollectionRow();
    const product = restore ? applyCollectionView(restore) : null;
    const select = $('coll-product');
    select.replaceChildren();
    for (const p of TILE_PRODUCTS.filter((t) => (info.products || TILE_PRODUCTS).includes(t))) {
      select.append(new Option(p, p));
    }
    select.value = product && [...select.options].some((o) => o.value === product) ? product : 'terrarium';
    $('coll-name').textContent = name;
    const used = info.sources.filter((s) => s.rank !== null && s.rank !== undefined).length;
    $('coll-summary').textContent = [info.description,
      `${used} of ${info.sources.length} source(s) in use${info.blend_px ? `, seams blended over ${info.blend_px} px` : ''}`,
    ].filter(Boolean).join(' · ');
    showSources(info);
    $('terrain').hidden = false;
    $('url-box').hidden = false;
    $('product-row').hidden = false;
    $('readout').textContent = '';
    setThreeD(true);
    addCollectionLayers(tj, footprintCollection(info));
    // A shared link keeps its map position (pitch included); a click, or a link without a
    // position, fits the collection and tilts the map so the relief shows.
    const bounds = info.bounds || tj.bounds;
    if (!(restore && sharedPosition) && Array.isArray(bounds)) fitTerrain(bounds);
    showCollectionUrl();
    recordCollectionView();
  }

  // Fits the map to bounds seen from above, then tilts it so the relief shows; a view of
  // (nearly) the whole world stays flat: it shows no relief, only the terrain mesh's edges.
  function fitTerrain(bounds) {
    map.jumpTo({ pitch: 0, bearing: 0 });
    fitTo(bounds);
    if (map.getZoom() >= 2) map.jumpTo({ pitch: TERRAIN_PITCH });
  }

  // Back to a flat map: no terrain, no collection overlays.
  function leaveCollection() {
    if (!state.collection) return;
    state.collection = null;
    pointSeq += 1;
    removeCollectionLayers();
    setThreeD(false);
    markCollectionRow();
    $('terrain').hidden = true;
    $('product-row').hidden = true;
    $('readout').textContent = '';
  }

  // No dataset layer while a collection is shown (an answer still on its way is dropped).
  function leaveDataset() {
    layerSeq += 1;
    dropLayer();
    state.selected = null;
    $('layer').hidden = true;
    const selected = map.getSource('selected');
    if (selected) selected.setData(emptyCollection);
    for (const tr of document.querySelectorAll('#ds-table tbody tr.selected')) tr.classList.remove('selected');
  }

  // The height under a click, and which source gave it.
  async function readCollectionPoint(lngLat) {
    const c = state.collection;
    if (!c) return;
    const out = $('readout');
    const seq = ++pointSeq;
    const lon = +lngLat.lng.toFixed(7);
    const lat = +lngLat.lat.toFixed(7);
    if (Math.abs(lat) > 85.05 || Math.abs(lon) > 180) return;
    map.getSource('collection-click')?.setData({
      type: 'FeatureCollection',
      features: [{ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: [lon, lat] } }],
    });
    try {
      const p = await api(`${collPath(c.name)}/point?lon=${lon}&lat=${lat}`);
      if (seq !== pointSeq || state.collection !== c) return;
      out.textContent = [
        `${lon.toFixed(5)}, ${lat.toFixed(5)}`,
        `height: ${p.value === null || p.value === undefined ? 'no data' : `${fmt(p.value)} m`}`,
        `source: ${p.source ?? '–'}`,
      ].join('\n');
      out.style.whiteSpace = 'pre';
      out.dataset.lon = lon;
      out.dataset.lat = lat;
      out.dataset.value = JSON.stringify(p.value ?? null);
      out.dataset.source = p.source ?? '';
    } catch (e) {
      if (seq === pointSeq) out.textContent = `point: ${e.message}`;
    }
  }

  // ---- Wiring ---------------------------------------------------------------------------
  function setMode(mode) {
    state.mode = mode;
    for (const t of document.querySelectorAll('.tabs button')) {
      t.setAttribute('aria-selected', String(t.dataset.mode === mode));
    }
    for (const m of ['singleband', 'rgb', 'compute']) $(`mode-${m}`).hidden = m !== mode;
  }

  function wire() {
    $('ds-prev').addEventListener('click', () => { state.page -= 1; loadDatasets(); });
    $('ds-next').addEventListener('click', () => { state.page += 1; loadDatasets(); });
    $('ds-limit').addEventListener('change', (e) => {
      state.limit = +e.target.value;
      state.page = 0;
      loadDatasets();
    });
    for (const tab of document.querySelectorAll('.tabs button')) {
      tab.addEventListener('click', () => {
        setMode(tab.dataset.mode);
        layerNow();
      });
    }
    $('sb-band').addEventListener('change', () => { resetStretch(); layerNow(); });
    $('sb-colormap').addEventListener('change', layerNow);
    $('sb-reset').addEventListener('click', () => { resetStretch(); layerNow(); });
    for (const end of ['min', 'max']) {
      $(`sb-${end}-range`).addEventListener('input', (e) => {
        $(`sb-${end}`).value = +(+e.target.value).toPrecision(7);
        layerSoon();
      });
      $(`sb-${end}`).addEventListener('input', (e) => {
        $(`sb-${end}-range`).value = e.target.value;
        layerSoon();
      });
    }
    for (const radio of document.querySelectorAll('input[name=rgb-source]')) {
      radio.addEventListener('change', () => buildChannels().then(layerNow, (e) => showMessage(e.message)));
    }
    for (const radio of document.querySelectorAll('input[name=cp-source]')) {
      radio.addEventListener('change', buildVars);
    }
    $('cp-apply').addEventListener('click', layerNow);
    $('cp-expression').addEventListener('keydown', (e) => { if (e.key === 'Enter') layerNow(); });
    $('cp-colormap').addEventListener('change', layerNow);
    $('opacity').addEventListener('input', (e) => {
      if (map.getLayer('data')) map.setPaintProperty('data', 'raster-opacity', +e.target.value);
    });
    $('copy-url').addEventListener('click', async () => {
      const input = $('tile-url');
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (_) {
        input.select();
        document.execCommand('copy');
      }
      $('copy-url').textContent = 'Copied';
      setTimeout(() => { $('copy-url').textContent = 'Copy'; }, 1200);
    });
    $('graticule').addEventListener('change', updateGraticule);
    $('basemap-url').addEventListener('change', (e) => {
      const url = e.target.value.trim();
      if (url && !/^https?:\/\/.*\{z\}.*\{x\}.*\{y\}/.test(url)) {
        showMessage('base map: give an http(s) URL with {z}, {x} and {y}');
        return;
      }
      showMessage('');
      localStorage.setItem('kiln.basemap', url);
      setBasemap(url);
    });
    map.on('mousemove', (e) => readPoint(e.lngLat.wrap()));
    map.getCanvas().addEventListener('mouseleave', () => {
      if (state.collection) return; // a collection's read-out is of a click: it stays
      pointSeq += 1; // an answer still on its way must not repaint the read-out
      $('readout').textContent = '';
    });
    map.on('click', (e) => readCollectionPoint(e.lngLat.wrap()));
    // MapLibre rebuilds the terrain on every setTerrain: at most once a frame while dragging.
    let exaggerationFrame = 0;
    $('exaggeration').addEventListener('input', () => {
      setExaggeration(exaggeration());
      if (!state.collection) return;
      recordCollectionView();
      if (exaggerationFrame) return;
      exaggerationFrame = requestAnimationFrame(() => {
        exaggerationFrame = 0;
        if (state.collection && map.getTerrain()) {
          map.setTerrain({ source: TERRAIN_SOURCE, exaggeration: exaggeration() });
        }
      });
    });
    for (const [id, layers] of [
      ['show-hillshade', ['collection-hillshade']],
      ['show-relief', ['collection-relief']],
      ['show-footprints', ['collection-footprints-line']],
    ]) {
      $(id).addEventListener('change', () => {
        if (!state.collection) return;
        for (const layer of layers) {
          if (map.getLayer(layer)) map.setLayoutProperty(layer, 'visibility', visibility(id));
        }
        recordCollectionView();
      });
    }
    $('coll-product').addEventListener('change', () => {
      if (!state.collection) return;
      showCollectionUrl();
      recordCollectionView();
    });
  }

  async function start() {
    try {
      state.config = await api('viewer/config.json');
      state.keys = (await api('keys')).keys.map((k) => k.key);
    } catch (e) {
      showMessage(`cannot reach the Kiln API: ${e.message}`);
      return;
    }
    const head = document.querySelector('#ds-table thead tr');
    const filters = $('filters');
    for (const key of state.keys) {
      const th = document.createElement('th');
      th.textContent = key;
      head.append(th);
      const input = document.createElement('input');
      input.type = 'search';
      input.placeholder = key;
      input.setAttribute('aria-label', `filter ${key}`);
      input.dataset.key = key;
      input.addEventListener('input', debounce(() => {
        state.filters[key] = input.value;
        state.page = 0;
        loadDatasets();
      }, 200));
      filters.append(input);
    }
    fillColormaps($('sb-colormap'), '');
    fillColormaps($('cp-colormap'), 'viridis');
    const basemap = localStorage.getItem('kiln.basemap') ?? state.config.basemap ?? '';
    $('basemap-url').value = basemap;
    setBasemap(basemap);
    wire();
    await Promise.all([loadDatasets(), loadCollections()]);
    const shared = new URLSearchParams(location.search);
    const wanted = shared.get('dataset');
    const wantedCollection = shared.get('collection');
    if (wanted) {
      try {
        await select(wanted.split('/').map(decodeURIComponent), shared);
      } catch (e) {
        showMessage(`?dataset=${wanted}: ${e.message}`);
      }
    } else if (wantedCollection) {
      try {
        await selectCollection(wantedCollection, shared);
      } catch (e) {
        showMessage(`?collection=${wantedCollection}: ${e.message}`);
      }
    }
    document.body.dataset.ready = 'true';
  }

  // For the browser console (and the end-to-end test): the map and the viewer's state.
  window.kiln = { map, state };

  map.on('load', () => {
    addOverlays();
    start().catch((e) => showMessage(e.message));
  });
})();
