// stratacache operator console. Plain browser JavaScript, no build step, no outside files:
// polls stats.json (relative to this page), draws three small canvas charts, fills the tables,
// and posts the flush form to ./flush as JSON.
'use strict';
(() => {
  const POLL_MS = 2000;
  const STATUS_COLORS = { hit: '#16a34a', stale: '#ca8a04', peer: '#0891b2', miss: '#dc2626', pass: '#6b7280' };
  const RENDER_COLORS = { request: '#dc2626', background: '#7c3aed' };
  const $ = (id) => document.getElementById(id);
  const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n));

  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  }

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function fillTable(tbody, rows) {
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement('tr');
      tr.append(...cells);
      return tr;
    }));
  }

  function legend(el, colors) {
    el.replaceChildren(...Object.entries(colors).flatMap(([name, color]) => {
      const sw = document.createElement('i');
      sw.style.background = color;
      return [sw, document.createTextNode(name)];
    }));
  }

  /** Rates per second between successive samples: [{ at, values: { series: rate } }]. */
  function rates(samples, pick) {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const dt = (b.at - a.at) / 1000;
      if (dt <= 0) continue;
      const values = {};
      for (const [name, read] of Object.entries(pick)) values[name] = Math.max(0, (read(b) - read(a)) / dt);
      out.push({ at: b.at, values });
    }
    return out;
  }

  /** A line chart of several series on one canvas, sized for the device's pixel ratio. */
  function drawChart(canvas, points, colors, opts) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const left = 40, right = 8, top = 8, bottom = 18;
    const names = Object.keys(colors);
    let max = opts.max;
    if (max === undefined) {
      max = 0;
      for (const p of points) for (const n of names) max = Math.max(max, p.values[n] || 0);
      max = max <= 0 ? 1 : max * 1.15;
    }
    const t1 = points.length ? points[points.length - 1].at : Date.now();
    const t0 = Math.min(points.length ? points[0].at : t1, t1 - 60_000);
    const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (w - left - right);
    const y = (v) => top + (1 - v / max) * (h - top - bottom);
    ctx.strokeStyle = '#e5e7eb'; ctx.fillStyle = '#6b7280'; ctx.lineWidth = 1;
    ctx.font = '10px system-ui, sans-serif';
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
      ctx.fillText(opts.label(v), 2, yy + 3);
    }
    const minutes = Math.round((t1 - t0) / 60_000);
    ctx.fillText(`last ${minutes || 1} min`, left, h - 4);
    if (points.length === 0) { ctx.fillText('waiting for samples…', left + 80, h / 2); return; }
    for (const n of names) {
      ctx.strokeStyle = colors[n]; ctx.lineWidth = 1.75; ctx.beginPath();
      points.forEach((p, i) => { const xx = x(p.at), yy = y(p.values[n] || 0); if (i === 0) ctx.moveTo(xx, yy); else ctx.lineTo(xx, yy); });
      if (points.length === 1) { const p = points[0]; ctx.arc(x(p.at), y(p.values[n] || 0), 2, 0, 2 * Math.PI); }
      ctx.stroke();
    }
  }

  function render(state) {
    const s = state.stats;
    $('name').textContent = state.name === 'stratacache' ? '' : `· ${state.name}`;
    $('node').textContent = state.self ? `node ${state.self}` : 'single node';
    for (const el of document.querySelectorAll('[data-stat]')) {
      const v = s[el.dataset.stat];
      el.textContent = v === undefined ? '–' : fmt(v);
    }
    const served = s.hits + s.stale + s.peerHits;
    const answered = served + s.misses;
    $('hit-ratio').textContent = answered === 0 ? '–' : `${((100 * served) / answered).toFixed(1)}%`;
    $('requests').textContent = fmt(served + s.misses + s.passes);
    $('renders').textContent = fmt(s.misses + s.regenerations);
    const memory = state.tiers.find((t) => t.tier === 'memory');
    $('memory-bytes').textContent = memory ? bytes(memory.bytes) : '–';

    fillTable($('tiers'), state.tiers.map((t) => [cell(t.tier), cell(fmt(t.entries), 'num'), cell(bytes(t.bytes), 'num')]));
    const nodes = [];
    if (state.self) nodes.push([cell(`${state.self} (this node)`), cell('–'), cell(''), cell(''), cell(''), cell(''), cell('')]);
    for (const p of s.peers) {
      nodes.push([
        cell(p.url), cell(p.state, `state-${p.state}`), cell(fmt(p.failures), 'num'), cell(fmt(p.hits), 'num'),
        cell(fmt(p.errors), 'num'), cell(fmt(p.timeouts), 'num'),
        cell(p.lastError ? `${new Date(p.lastError.at).toLocaleTimeString()} ${p.lastError.message}` : ''),
      ]);
    }
    if (nodes.length === 0) nodes.push([cell('no peers configured'), cell(''), cell(''), cell(''), cell(''), cell(''), cell('')]);
    fillTable($('peers'), nodes);

    fillTable($('events'), state.events.slice().reverse().map((e) => [
      cell(new Date(e.at).toLocaleTimeString()), cell(e.kind), cell(e.outcome, `outcome-${e.outcome}`), cell(e.target), cell(e.detail),
    ]));
    if (state.events.length === 0) fillTable($('events'), [[cell('none yet'), cell(''), cell(''), cell(''), cell('')]]);

    const counters = Object.entries(s).filter(([, v]) => typeof v === 'number');
    fillTable($('counters'), counters.map(([k, v]) => {
      const value = cell(fmt(v), 'num');
      value.dataset.counter = k;
      return [cell(k), value];
    }));

    const samples = state.samples;
    const ratio = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const served = b.hits + b.stale + b.peer - (a.hits + a.stale + a.peer);
      const all = served + b.misses - a.misses;
      if (all > 0) ratio.push({ at: b.at, values: { ratio: (100 * served) / all } });
    }
    drawChart($('chart-ratio'), ratio, { ratio: '#2563eb' }, { max: 100, label: (v) => `${v.toFixed(0)}%` });
    drawChart($('chart-status'), rates(samples, {
      hit: (x) => x.hits, stale: (x) => x.stale, peer: (x) => x.peer, miss: (x) => x.misses, pass: (x) => x.passes,
    }), STATUS_COLORS, { label: (v) => v.toFixed(v < 10 ? 1 : 0) });
    drawChart($('chart-renders'), rates(samples, { request: (x) => x.misses, background: (x) => x.background }), RENDER_COLORS, {
      label: (v) => v.toFixed(v < 10 ? 1 : 0),
    });
  }

  let timer;
  async function poll() {
    clearTimeout(timer);
    try {
      const res = await fetch('stats.json', { cache: 'no-store' });
      if (!res.ok) throw new Error(`stats.json answered ${res.status}`);
      const state = await res.json();
      render(state);
      $('status').textContent = `updated ${new Date(state.at).toLocaleTimeString()}`;
      $('status').className = '';
      document.body.dataset.loaded = 'true';
    } catch (error) {
      $('status').textContent = `not updated: ${error.message}`;
      $('status').className = 'error';
    }
    timer = setTimeout(poll, POLL_MS);
  }

  const lines = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '');

  $('flush-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const out = $('flush-result');
    const body = {
      paths: lines(form.elements.paths.value),
      refetch: lines(form.elements.refetch.value),
      tags: form.elements.tags.value.split(/\s+/).filter((t) => t !== ''),
      hard: form.elements.mode.value === 'hard',
    };
    out.className = '';
    out.textContent = 'flushing…';
    try {
      const res = await fetch('flush', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${res.status}: ${text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()}`);
      const result = JSON.parse(text);
      out.className = 'ok';
      out.textContent = `flush #${result.id} applied${result.refetch ? `, ${result.refetch} refetch queued` : ''}`;
      form.dataset.lastFlush = String(result.id);
      poll();
    } catch (error) {
      out.className = 'error';
      out.textContent = `flush failed: ${error.message}`;
    }
  });

  legend($('legend-status'), STATUS_COLORS);
  legend($('legend-renders'), RENDER_COLORS);
  poll();
})();
