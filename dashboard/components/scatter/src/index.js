// The Embedding Explorer map: a Streamlit components-v2 module drawing the points with
// regl-scatterplot (WebGL through regl). Everything interactive happens here: pan, zoom, hover,
// click, box and lasso. Python hears only about a finished box/lasso (the selected row ids,
// once, as state) and about single rows (hover text, click neighbours) through the channel
// component (see channel.js). User text (labels, hover text, metadata) is always set with
// textContent, never parsed as HTML.

import KDBush from 'kdbush';
import createScatterplot from 'regl-scatterplot';
import { parsePayload, toBytes } from './payload.js';

const REQUEST = 'embex-scatter-request';
const REPLY = 'embex-scatter-reply';
const HOVER_REST_MS = 150; // ask Python for a row's text only once the pointer rests on it
const PERFORMANCE_MODE_POINTS = 2_000_000; // squares, no alpha blending: draws tens of millions
const NUMBER = new Intl.NumberFormat('en-US');
const VIEWS = new WeakMap();
const MARGIN = 0.94; // the data fill 94% of the shorter side at the start: no point on the border
// a handle per map key, for scripted checks (tests, benchmarks): positions, counts, timings
const REGISTRY = (window.__embexScatter = window.__embexScatter || {});

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function rgbToHex([r, g, b]) {
  return `#${((1 << 24) | (r << 16) | (g << 8) | b).toString(16).slice(1)}`;
}

function ramp(stops, count) {
  const rgb = stops.map(hexToRgb);
  const out = [];
  for (let i = 0; i < count; i++) {
    const t = (i / (count - 1)) * (rgb.length - 1);
    const k = Math.min(Math.floor(t), rgb.length - 2);
    const f = t - k;
    out.push(rgbToHex(rgb[k].map((c, j) => Math.round(c + (rgb[k + 1][j] - c) * f))));
  }
  return out;
}

function formatValue(v) {
  if (!Number.isFinite(v)) return 'missing';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

function isDark(color) {
  const m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color || '');
  if (!m) return false;
  return 0.2126 * m[1] + 0.7152 * m[2] + 0.0722 * m[3] < 110;
}

class MapView {
  constructor(parent) {
    this.gen = 0;
    this.parent = parent;
    this.version = null;
    this.sp = null;
    this.header = null;
    this.reqSeq = 0;
    this.selSeq = 0;
    this.pending = { hover: -1, click: -1 };
    this.hoverIdx = -1;
    this.hoverTimer = null;
    this.lassoing = false;
    this.hasSelection = false;
    this.lassoMode = 'lasso';
    this.mouse = [0, 0];
    this.timings = { hover: [], click: [] };
    this.buildDom();
    this.onReplyEvent = (event) => {
      const d = event.detail || {};
      if (this.header && d.key === this.header.key) this.onReply(d.reply);
    };
    window.addEventListener(REPLY, this.onReplyEvent);
  }

  buildDom() {
    const root = el('div', 'exs-root');
    this.root = root;
    this.titleEl = el('div', 'exs-title');
    const bar = el('div', 'exs-toolbar');
    this.buttons = {};
    const modes = [
      ['pan', 'Pan', 'Drag to pan, scroll to zoom; click a point for its nearest neighbours'],
      ['box', 'Box', 'Drag a box to select (shift-drag draws a lasso in any mode)'],
      ['lasso', 'Lasso', 'Draw a lasso to select'],
    ];
    for (const [mode, label, help] of modes) {
      const b = el('button', 'exs-button', label);
      b.type = 'button';
      b.title = help;
      b.dataset.mode = mode;
      b.addEventListener('click', () => this.setMode(mode));
      bar.appendChild(b);
      this.buttons[mode] = b;
    }
    const reset = el('button', 'exs-button', 'Reset view');
    reset.type = 'button';
    reset.addEventListener('click', () => this.sp?.zoomToOrigin({ transition: true }));
    bar.appendChild(reset);
    const clear = el('button', 'exs-button', 'Clear selection');
    clear.type = 'button';
    clear.addEventListener('click', () => this.sp?.deselect());
    bar.appendChild(clear);
    this.statusEl = el('span', 'exs-status');
    bar.appendChild(this.statusEl);

    const body = el('div', 'exs-body');
    this.plot = el('div', 'exs-plot');
    this.canvas = el('canvas', 'exs-canvas');
    this.plot.appendChild(this.canvas);
    this.tooltip = el('div', 'exs-tooltip');
    this.tooltip.hidden = true;
    this.plot.appendChild(this.tooltip);
    this.panel = el('div', 'exs-panel');
    this.panel.hidden = true;
    this.plot.appendChild(this.panel);
    this.message = el('div', 'exs-message');
    this.message.hidden = true;
    this.plot.appendChild(this.message);
    this.legend = el('div', 'exs-legend');
    body.appendChild(this.plot);
    body.appendChild(this.legend);

    root.appendChild(this.titleEl);
    root.appendChild(bar);
    root.appendChild(body);
    this.parent.appendChild(root);

    this.canvas.addEventListener('mousemove', (e) => {
      const r = this.plot.getBoundingClientRect();
      this.mouse = [e.clientX - r.left, e.clientY - r.top];
      if (!this.tooltip.hidden) this.placeTooltip();
    });
    this.canvas.addEventListener('mouseleave', () => this.onOut());
    // A drag (lasso, box, pan) that ends where it began is still no click on a point: without
    // this, closing a lasso at its start would select the point under the pointer instead.
    this.plot.addEventListener('mousedown', (e) => (this.downAt = [e.clientX, e.clientY]), true);
    this.plot.addEventListener(
      'click',
      (e) => {
        const [x, y] = this.downAt || [e.clientX, e.clientY];
        const dragged = Math.hypot(e.clientX - x, e.clientY - y) > 3 || performance.now() - (this.lassoEndedAt || 0) < 300;
        if (e.shiftKey || dragged || this.mode !== 'pan') e.stopPropagation();
      },
      true,
    );
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.plot);
  }

  setStatus() {
    const h = this.header;
    if (!h) return;
    let s = `${NUMBER.format(h.n)} points`;
    if (this.selectedCount) s += ` · ${NUMBER.format(this.selectedCount)} selected`;
    this.statusEl.textContent = s;
  }

  setMode(mode) {
    this.mode = mode;
    for (const [m, b] of Object.entries(this.buttons)) b.classList.toggle('exs-active', m === mode);
    if (!this.sp) return;
    if (mode === 'pan') {
      this.sp.set({ mouseMode: 'panZoom', lassoType: 'freeform' });
      this.lassoMode = 'lasso';
    } else {
      this.sp.set({ mouseMode: 'lasso', lassoType: mode === 'box' ? 'rectangle' : 'freeform' });
      this.lassoMode = mode;
    }
  }

  size() {
    const r = this.plot.getBoundingClientRect();
    return [Math.max(1, Math.floor(r.width)), Math.max(1, Math.floor(r.height))];
  }

  resize() {
    if (!this.sp) return;
    const [width, height] = this.size();
    if (width === this.width && height === this.height) return;
    this.width = width;
    this.height = height;
    this.sp.set({ width, height });
  }

  ensureScatterplot(n) {
    const performanceMode = n >= PERFORMANCE_MODE_POINTS;
    if (this.sp && this.performanceMode === performanceMode) return;
    if (this.sp) {
      this.sp.destroy();
      const fresh = el('canvas', 'exs-canvas');
      this.canvas.replaceWith(fresh);
      this.canvas = fresh;
    }
    const style = getComputedStyle(this.root);
    const dark = isDark(style.backgroundColor) || isDark(style.getPropertyValue('--st-background-color'));
    this.dark = dark;
    [this.width, this.height] = this.size();
    this.performanceMode = performanceMode;
    const sp = createScatterplot({
      canvas: this.canvas,
      width: this.width,
      height: this.height,
      performanceMode,
      syncEvents: true,
      backgroundColor: dark ? '#0e1117' : '#ffffff',
      pointColorActive: dark ? '#ffffff' : '#000000',
      pointColorHover: dark ? '#ffffff' : '#000000',
      pointOutlineWidth: 1,
      lassoColor: dark ? '#ffffff' : '#1a1a1a',
      lassoMinDelay: 8,
      lassoMinDist: 3,
      lassoClearEvent: 'lassoEnd',
      deselectOnEscape: true,
      deselectOnDblClick: true,
      actionKeyMap: { lasso: 'shift', merge: 'meta', remove: 'alt' },
      opacityInactiveMax: 1,
    });
    sp.subscribe('pointover', (i) => this.onOver(i));
    sp.subscribe('pointout', () => this.onOut());
    sp.subscribe('select', ({ points }) => this.onSelect(points));
    sp.subscribe('deselect', () => this.onDeselect());
    sp.subscribe('lassoStart', () => {
      this.lassoing = true;
      this.onOut();
    });
    sp.subscribe('lassoEnd', () => {
      this.lassoing = false;
      this.lassoEndedAt = performance.now();
    });
    this.sp = sp;
    this.setMode(this.mode || 'pan');
  }

  update(bytes) {
    const tParse = performance.now();
    const { header, buffers } = parsePayload(bytes);
    this.root.style.height = `${header.height}px`;
    if (header.version === this.version) {
      // same data as drawn (a rerun sends a stub once the points are here): nothing to do
      if (header.stub) this.root.dataset.stubs = String(Number(this.root.dataset.stubs || 0) + 1);
      return;
    }
    if (header.stub) {
      // Python sent this session the points already, but this view does not have them (a
      // remount): ask once for them again
      if (this.needAsked !== header.version) {
        this.needAsked = header.version;
        this.setStateValue?.('need', { version: header.version, at: Date.now() });
      }
      return;
    }
    this.version = header.version;
    this.header = header;
    this.root.dataset.key = header.key;
    this.root.dataset.version = header.version;
    delete this.root.dataset.drawn;
    this.titleEl.textContent = header.title || '';
    this.titleEl.hidden = !header.title;
    this.hidePanel();
    this.onOut();
    this.selectedCount = 0;
    this.hasSelection = false;
    const t0 = performance.now();
    this.phases = { start: Math.round(tParse), parse: Math.round(t0 - tParse) };
    this.prepare(header, buffers);
    this.phases.prepare = Math.round(performance.now() - t0);
    this.buildLegend(header);
    this.setStatus();
    this.ensureScatterplot(header.n);
    this.draw(t0).catch((err) => this.showError(err));
    REGISTRY[header.key] = this.handle();
  }

  // Points in drawing order: "other" first, then categories from the largest to the rarest
  // (rare classes end up on top), search hits last of all. perm[drawn index] = row id.
  prepare(header, buffers) {
    const n = header.n;
    const xy = buffers.xy;
    const codes = buffers.codes;
    const values = buffers.values;
    const hits = buffers.highlight;
    this.xy = xy;
    this.codes = codes || null;
    this.values = values || null;
    const isHit = new Uint8Array(n);
    if (hits) for (let i = 0; i < hits.length; i++) isHit[hits[i]] = 1;
    this.isHit = hits && hits.length ? isHit : null; // no hits: nothing to dim

    const tLayout = performance.now();
    // colour index per row, and the colours
    const color = new Uint16Array(n);
    let colors;
    if (header.mode === 'value') {
      const { min, max } = header.value;
      const span = max > min ? max - min : 1;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        color[i] = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round(((v - min) / span) * 255))) : 256;
      }
      this.rampColors = ramp(header.value.ramp, 256);
      colors = [...this.rampColors, header.other_color];
    } else if (header.mode === 'category') {
      color.set(codes);
      colors = [...header.palette.slice(0, 20), header.other_color];
    } else {
      colors = [header.palette[0]];
    }
    this.colors = colors;

    // drawing layer per row, then a counting sort
    const layers = header.mode === 'category' ? 22 : 3;
    const layer = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let l;
      if (header.mode === 'category') l = codes[i] === 20 ? 0 : codes[i] + 1;
      else if (header.mode === 'value') l = color[i] === 256 ? 0 : 1;
      else l = 1;
      layer[i] = isHit[i] ? layers - 1 : l;
    }
    const start = new Uint32Array(layers + 1);
    for (let i = 0; i < n; i++) start[layer[i] + 1]++;
    for (let l = 0; l < layers; l++) start[l + 1] += start[l];
    const perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) perm[start[layer[i]]++] = i;
    const inv = new Uint32Array(n);
    const x = new Float32Array(n);
    const y = new Float32Array(n);
    const z = new Float32Array(n);
    const w = new Float32Array(n);
    for (let d = 0; d < n; d++) {
      const r = perm[d];
      inv[r] = d;
      x[d] = xy[2 * r] * MARGIN;
      y[d] = xy[2 * r + 1] * MARGIN;
      z[d] = color[r];
      w[d] = isHit[r];
    }
    this.perm = perm;
    this.inv = inv;
    this.points = { x, y, z, w };
    this.phases.layout = Math.round(performance.now() - tLayout);
    const index = new KDBush(n, 64, Float32Array); // 64 per leaf: a shallower sort, same answers
    for (let d = 0; d < n; d++) index.add(x[d], y[d]);
    index.finish();
    this.spatialIndex = index.data;
  }

  async draw(t0) {
    const h = this.header;
    const sp = this.sp;
    const size = h.point_size;
    const hits = Boolean(this.isHit);
    sp.set({
      pointColor: this.colors,
      colorBy: 'valueA',
      opacityBy: hits ? 'valueB' : null,
      opacity: hits ? [0.12, 1] : h.n > 200000 ? 0.85 : 1,
      sizeBy: hits ? 'valueB' : null,
      pointSize: hits ? [size, size + 3] : size,
    });
    await sp.draw(this.points, {
      zDataType: 'categorical',
      wDataType: 'categorical',
      spatialIndex: this.spatialIndex,
    });
    // draw() resolves on regl-scatterplot's 'draw' event: the frame with the points has been
    // rendered and copied to the visible canvas
    this.phases.draw = Math.round(performance.now() - t0);
    this.points = null; // regl keeps its own copy
    this.spatialIndex = null;
    this.root.dataset.drawMs = String(this.phases.draw);
    this.root.dataset.phases = JSON.stringify(this.phases);
    this.root.dataset.drawn = String(h.n);
    this.message.hidden = true;
  }

  showError(err) {
    this.message.hidden = false;
    this.message.textContent = `The map could not be drawn: ${err?.message || err}`;
    this.root.dataset.error = String(err?.message || err);
  }

  buildLegend(h) {
    const legend = this.legend;
    legend.replaceChildren();
    const item = (color, label, count, extra) => {
      const row = el('div', `exs-legend-item${extra ? ` ${extra}` : ''}`);
      const sw = el('span', 'exs-swatch');
      sw.style.background = color;
      row.appendChild(sw);
      row.appendChild(el('span', 'exs-label', label));
      if (count !== null) row.appendChild(el('span', 'exs-count', NUMBER.format(count)));
      legend.appendChild(row);
      return row;
    };
    if (h.mode === 'category') {
      for (const entry of h.legend) item(entry.color, entry.label === '' ? '(empty)' : entry.label, entry.count);
      if (h.other) item(h.other.color, 'other', h.other.count, 'exs-other');
    } else if (h.mode === 'value') {
      legend.appendChild(el('div', 'exs-legend-name', h.value.name));
      const bar = el('div', 'exs-colorbar');
      bar.style.background = `linear-gradient(to top, ${h.value.ramp.join(', ')})`;
      const scale = el('div', 'exs-colorbar-scale');
      scale.appendChild(el('span', 'exs-max', formatValue(h.value.max)));
      scale.appendChild(el('span', 'exs-min', formatValue(h.value.min)));
      const wrap = el('div', 'exs-colorbar-wrap');
      wrap.appendChild(bar);
      wrap.appendChild(scale);
      legend.appendChild(wrap);
      if (h.value.missing) item(h.other_color, 'missing', h.value.missing, 'exs-other');
    }
    if (h.highlight) {
      const row = item('transparent', h.highlight.name || 'search hits', h.highlight.count, 'exs-hits');
      row.firstChild.classList.add('exs-swatch-ring');
    }
    legend.hidden = legend.childElementCount === 0;
  }

  // the category label and colour of a row, from the data we already have
  describe(row) {
    const h = this.header;
    if (h.mode === 'value') {
      const c = this.values[row];
      const code = this.codes ? this.codes[row] : -1; // categories sent too: name the label
      const prefix = code >= 0 ? `${code === 20 ? 'other' : h.legend[code].label} · ` : '';
      return {
        color: Number.isFinite(c) ? this.rampColors[this.colorIndexOfValue(c)] : h.other_color,
        label: `${prefix}${h.value.name}: ${formatValue(c)}`,
      };
    }
    if (h.mode === 'category') {
      const c = this.codes[row];
      if (c === 20) return { color: h.other_color, label: 'other' };
      const label = h.legend[c].label;
      return { color: h.legend[c].color, label: label === '' ? '(empty)' : label };
    }
    return { color: h.palette[0], label: '' };
  }

  colorIndexOfValue(v) {
    const { min, max } = this.header.value;
    const span = max > min ? max - min : 1;
    return Math.max(0, Math.min(255, Math.round(((v - min) / span) * 255)));
  }

  onOver(d) {
    if (this.lassoing || !this.header) return;
    const row = this.perm[d];
    this.hoverIdx = d;
    const info = this.describe(row);
    const t = this.tooltip;
    t.replaceChildren();
    const head = el('div', 'exs-tip-head');
    const sw = el('span', 'exs-swatch');
    sw.style.background = info.color;
    head.appendChild(sw);
    head.appendChild(el('span', 'exs-tip-label', info.label));
    head.appendChild(el('span', 'exs-tip-row', `row ${row}`));
    t.appendChild(head);
    t.dataset.row = String(row);
    if (this.header.hover) {
      this.tipText = el('div', 'exs-tip-text exs-loading', '…');
      t.appendChild(this.tipText);
    }
    t.hidden = false;
    this.placeTooltip();
    clearTimeout(this.hoverTimer);
    if (this.header.hover) {
      this.hoverTimer = setTimeout(() => {
        if (this.hoverIdx === d) this.request('hover', row);
      }, HOVER_REST_MS);
    }
  }

  onOut() {
    clearTimeout(this.hoverTimer);
    this.hoverIdx = -1;
    this.pending.hover = -1;
    this.tooltip.hidden = true;
  }

  placeTooltip() {
    const t = this.tooltip;
    const [mx, my] = this.mouse;
    const w = t.offsetWidth;
    const h = t.offsetHeight;
    const left = mx + 14 + w > this.width ? Math.max(0, mx - 14 - w) : mx + 14;
    const top = my + 14 + h > this.height ? Math.max(0, my - 14 - h) : my + 14;
    t.style.left = `${left}px`;
    t.style.top = `${top}px`;
  }

  request(kind, row) {
    const seq = ++this.reqSeq;
    this.pending[kind] = seq;
    this.sentAt = this.sentAt || {};
    this.sentAt[seq] = performance.now();
    window.dispatchEvent(
      new CustomEvent(REQUEST, { detail: { key: this.header.key, kind, row, seq } }),
    );
  }

  onReply(reply) {
    // stale (the pointer moved on) or already shown (the channel resends the latest answers)
    if (!reply || this.pending[reply.kind] !== reply.seq) return;
    this.pending[reply.kind] = -1;
    const ms = performance.now() - (this.sentAt?.[reply.seq] ?? performance.now());
    this.timings[reply.kind].push(ms);
    this.root.dataset[`${reply.kind}Ms`] = String(Math.round(ms));
    if (reply.kind === 'hover') this.showHoverText(reply);
    else this.showNeighbours(reply);
  }

  showHoverText(reply) {
    const t = this.tooltip;
    if (t.hidden || t.dataset.row !== String(reply.row)) return;
    if (this.tipText) this.tipText.remove();
    if (reply.text) t.appendChild(el('div', 'exs-tip-text', reply.text));
    if (reply.fields?.length) {
      const table = el('div', 'exs-tip-fields');
      for (const [k, v] of reply.fields) {
        table.appendChild(el('span', 'exs-tip-key', k));
        table.appendChild(el('span', 'exs-tip-value', v));
      }
      t.appendChild(table);
    }
    t.dataset.loaded = String(reply.row);
    this.placeTooltip();
  }

  onSelect(points) {
    if (this.lassoing) {
      const rows = new Uint32Array(points.length);
      for (let i = 0; i < points.length; i++) rows[i] = this.perm[points[i]];
      rows.sort();
      this.selectedCount = rows.length;
      this.hasSelection = rows.length > 0;
      this.hidePanel();
      this.setStatus();
      this.root.dataset.selected = String(rows.length);
      this.setStateValue?.('selection', {
        rows: Array.from(rows),
        mode: this.lassoMode,
        seq: ++this.selSeq,
      });
    } else if (points.length === 1) {
      this.onClick(points[0]);
    }
  }

  onDeselect() {
    this.hidePanel();
    this.selectedCount = 0;
    this.setStatus();
    this.root.dataset.selected = '0';
    if (this.hasSelection) {
      this.hasSelection = false;
      this.setStateValue?.('selection', { rows: [], mode: null, seq: ++this.selSeq });
    }
  }

  onClick(d) {
    const row = this.perm[d];
    this.clicked = row;
    this.root.dataset.clicked = String(row);
    this.request('click', row);
    const info = this.describe(row);
    this.panel.replaceChildren();
    const head = el('div', 'exs-panel-head');
    head.appendChild(el('span', 'exs-panel-title', `Row ${row} · ${info.label}`));
    const close = el('button', 'exs-close', '×');
    close.type = 'button';
    close.title = 'Close';
    close.addEventListener('click', () => {
      this.hidePanel();
      this.sp?.deselect({ preventEvent: true });
    });
    head.appendChild(close);
    this.panel.appendChild(head);
    if (this.header.neighbors) this.panel.appendChild(el('div', 'exs-loading', 'Finding its nearest neighbours…'));
    this.panel.hidden = false;
  }

  showNeighbours(reply) {
    if (reply.row !== this.clicked) return;
    const panel = this.panel;
    panel.querySelector('.exs-loading')?.remove();
    panel.querySelector('.exs-panel-text')?.remove();
    panel.querySelector('.exs-neighbours')?.remove();
    if (reply.text) panel.appendChild(el('div', 'exs-panel-text', reply.text));
    const list = el('ol', 'exs-neighbours');
    const drawn = [this.inv[reply.row]];
    for (const nb of reply.neighbors || []) {
      if (!(nb.row >= 0 && nb.row < this.header.n)) continue;
      drawn.push(this.inv[nb.row]);
      const li = el('li', 'exs-neighbour');
      li.dataset.row = String(nb.row);
      const info = this.describe(nb.row);
      const sw = el('span', 'exs-swatch');
      sw.style.background = info.color;
      li.appendChild(sw);
      li.appendChild(el('span', 'exs-nb-text', nb.text || `row ${nb.row}`));
      if (typeof nb.score === 'number') li.appendChild(el('span', 'exs-count', nb.score.toFixed(3)));
      list.appendChild(li);
    }
    if (reply.neighbors) {
      panel.appendChild(el('div', 'exs-panel-sub', `${reply.neighbors.length} nearest neighbours`));
      panel.appendChild(list);
      this.sp.select(drawn, { preventEvent: true });
    }
    panel.dataset.row = String(reply.row);
  }

  hidePanel() {
    this.panel.hidden = true;
    this.clicked = undefined;
  }

  // client (viewport) coordinates of a data point, through the current camera
  dataToClient(x, y) {
    const h = this.header;
    return this.ndcToClient((x - h.center[0]) / h.scale, (y - h.center[1]) / h.scale);
  }

  ndcToClient(px, py) {
    const v = this.sp.get('cameraView');
    const aspect = this.sp.get('aspectRatio') || 1;
    const mx = px * MARGIN * aspect;
    const my = py * MARGIN;
    const vx = v[0] * mx + v[4] * my + v[12];
    const vy = v[1] * mx + v[5] * my + v[13];
    const cx = vx / (this.width / this.height);
    const rect = this.canvas.getBoundingClientRect();
    return [rect.left + (this.width * (cx + 1)) / 2, rect.top + this.height * (0.5 - vy / 2)];
  }

  handle() {
    return {
      view: this,
      n: () => this.header?.n ?? 0,
      drawn: () => Number(this.root.dataset.drawn || 0),
      rowToClient: (row) => this.ndcToClient(this.xy[2 * row], this.xy[2 * row + 1]),
      dataToClient: (x, y) => this.dataToClient(x, y),
      timings: () => this.timings,
    };
  }

  destroy() {
    window.removeEventListener(REPLY, this.onReplyEvent);
    clearTimeout(this.hoverTimer);
    this.resizer.disconnect();
    if (this.header && REGISTRY[this.header.key]?.view === this) delete REGISTRY[this.header.key];
    this.sp?.destroy();
    this.sp = null;
    this.root.remove();
  }
}

export default function mountScatter(component) {
  const { data, parentElement, setStateValue } = component;
  let view = VIEWS.get(parentElement);
  if (!view) {
    view = new MapView(parentElement);
    VIEWS.set(parentElement, view);
  }
  view.setStateValue = setStateValue;
  const gen = ++view.gen;
  const bytes = toBytes(data);
  if (bytes) {
    try {
      view.update(bytes);
    } catch (err) {
      view.showError(err);
    }
  }
  return () => {
    if (view.gen !== gen) return;
    view.destroy();
    VIEWS.delete(parentElement);
  };
}
