// asynx dashboard page: renders the snapshot, applies live updates from server-sent events, sends actions.
// Everything from the cluster (names, args, results, tracebacks) is user data: it only ever goes into
// textContent or attributes set through the DOM, never into innerHTML.
'use strict';

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const readOnly = document.querySelector('meta[name="read-only"]').content === 'true';
  const base = location.pathname.endsWith('/') ? location.pathname : location.pathname + '/';
  const api = (p) => base + 'api/' + p;

  const model = { workers: [], tasks: new Map(), history: { minutes: [], queues: [] }, serverSkew: 0, selected: null };
  const MAX_TASKS = 2000;
  const STATE_CLASS = { SUCCESS: 'ok', FAILURE: 'bad', REVOKED: 'warn', REJECTED: 'bad', RETRY: 'warn', STARTED: 'run', RECEIVED: 'wait', PENDING: 'wait' };

  if (readOnly) {
    document.body.classList.add('read-only');
    document.getElementById('readonly-badge').hidden = false;
  }

  // ---- DOM helpers (textContent only) ----
  function el(tag, opts, children) {
    const e = document.createElement(tag);
    if (opts) {
      if (opts.text !== undefined && opts.text !== null) e.textContent = String(opts.text);
      if (opts.cls) e.className = opts.cls;
      if (opts.title) e.title = String(opts.title);
      if (opts.data) for (const k of Object.keys(opts.data)) e.dataset[k] = String(opts.data[k]);
    }
    if (children) for (const c of children) if (c) e.appendChild(c);
    return e;
  }
  function td(text, cls, title) {
    return el('td', { text: text === null || text === undefined ? '–' : text, cls, title });
  }
  function button(label, cls, onClick, testid) {
    const b = el('button', { text: label, cls });
    b.type = 'button';
    if (testid) b.dataset.action = testid;
    b.addEventListener('click', (ev) => {
      ev.stopPropagation();
      onClick();
    });
    return b;
  }
  function fmtDuration(s) {
    if (s === null || s === undefined) return '–';
    if (s < 1) return (s * 1000).toFixed(0) + ' ms';
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + Math.floor(s % 60) + ' s';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }
  function fmtTime(ts) {
    if (!ts) return '–';
    return new Date(ts * 1000).toLocaleTimeString();
  }
  function clip(s, n) {
    if (s === null || s === undefined) return null;
    return s.length > n ? s.slice(0, n) + '…' : s;
  }
  function toast(text, bad) {
    const t = document.getElementById('toast');
    t.textContent = text;
    t.className = bad ? 'bad' : 'ok';
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.hidden = true), 5000);
  }

  // ---- actions ----
  async function post(path, body, what) {
    if (readOnly) return;
    try {
      const res = await fetch(api(path), { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify(body || {}), credentials: 'same-origin' });
      const out = await res.json().catch(() => ({}));
      if (res.ok && out.ok) toast(what + ': ' + describe(out));
      else toast(what + ' failed: ' + (out.error || describe(out) || res.status), true);
      return out;
    } catch (err) {
      toast(what + ' failed: ' + err, true);
    }
  }
  function describe(out) {
    if (typeof out.purged === 'number') return out.purged + ' message(s) purged';
    if (Array.isArray(out.replies)) {
      if (out.replies.length === 0) return 'sent';
      return out.replies.map((r) => Object.keys(r).map((n) => n + ' → ' + JSON.stringify(r[n])).join('; ')).join('; ');
    }
    return '';
  }
  function confirmed(text) {
    return window.confirm(text);
  }
  const actions = {
    revoke: (id) => confirmed('Revoke task ' + id + '?') && post('tasks/' + encodeURIComponent(id) + '/revoke', { terminate: false }, 'revoke'),
    terminate: (id) => confirmed('Terminate task ' + id + ' (SIGTERM its process)?') && post('tasks/' + encodeURIComponent(id) + '/revoke', { terminate: true, signal: 'SIGTERM' }, 'terminate'),
    grow: (node) => post('workers/' + encodeURIComponent(node) + '/pool-grow', { n: 1 }, 'grow pool of ' + node),
    shrink: (node) => post('workers/' + encodeURIComponent(node) + '/pool-shrink', { n: 1 }, 'shrink pool of ' + node),
    shutdown: (node) => confirmed('Shut down ' + node + '? Running tasks finish first.') && post('workers/' + encodeURIComponent(node) + '/shutdown', {}, 'shutdown ' + node),
    purge: (q) => confirmed('Delete every waiting message of queue ' + q + '?') && post('queues/' + encodeURIComponent(q) + '/purge', {}, 'purge ' + q),
  };

  // ---- rendering ----
  function renderWorkers() {
    const body = document.querySelector('#workers tbody');
    const rows = [];
    const now = Date.now() - model.serverSkew;
    for (const w of model.workers) {
      const uptime = w.uptime === null ? null : w.alive && w.statsAt ? w.uptime + (now - w.statsAt) / 1000 : w.uptime;
      const tr = el('tr', { cls: w.alive ? 'online' : 'offline', data: { hostname: w.hostname, alive: w.alive } }, [
        el('td', null, [el('span', { cls: 'dot ' + (w.alive ? 'on' : 'off'), text: w.alive ? 'online' : 'offline' })]),
        td(w.hostname, 'mono'),
        td(w.software ? w.software + (w.version ? ' ' + w.version : '') : null),
        td(w.pid),
        td(w.poolSize),
        td(w.active),
        td(w.processed),
        td(w.loadavg ? w.loadavg.map((x) => Number(x).toFixed(2)).join(' ') : null),
        td(fmtDuration(uptime)),
        td(w.queues.length ? w.queues.join(', ') : null),
        el('td', { cls: 'action' }, w.alive ? [button('+1', 'small', () => actions.grow(w.hostname), 'grow'), button('−1', 'small', () => actions.shrink(w.hostname), 'shrink'), button('Shut down', 'small danger', () => actions.shutdown(w.hostname), 'shutdown')] : []),
      ]);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    document.getElementById('workers-empty').hidden = rows.length > 0;
    document.getElementById('sum-online').textContent = String(model.workers.filter((w) => w.alive).length);
    document.getElementById('sum-running').textContent = String(model.workers.filter((w) => w.alive).reduce((n, w) => n + (w.active || 0), 0));
  }

  function latestLengths() {
    const q = model.history.queues;
    return q.length ? q[q.length - 1].lengths : {};
  }

  function renderQueues() {
    const lengths = latestLengths();
    const names = Object.keys(lengths).sort();
    const body = document.querySelector('#queues tbody');
    body.replaceChildren(
      ...names.map((name) => {
        const consumers = model.workers.filter((w) => w.alive && w.queues.includes(name)).map((w) => w.hostname);
        return el('tr', { data: { queue: name } }, [td(name, 'mono'), td(lengths[name] === null ? '?' : lengths[name], 'num'), td(consumers.length ? consumers.join(', ') : 'nobody', consumers.length ? '' : 'muted'), el('td', { cls: 'action' }, [button('Purge', 'small danger', () => actions.purge(name), 'purge')])]);
      }),
    );
    document.getElementById('sum-queued').textContent = String(names.reduce((n, q) => n + (lengths[q] || 0), 0));
  }

  function filteredTasks() {
    const state = document.getElementById('filter-state').value;
    const name = document.getElementById('filter-name').value.trim();
    const id = document.getElementById('search-id').value.trim();
    const out = [];
    for (const t of model.tasks.values()) {
      if (state && t.state !== state) continue;
      if (name && !(t.name || '').includes(name)) continue;
      if (id && !t.uuid.includes(id)) continue;
      out.push(t);
    }
    out.sort((a, b) => b.timestamp - a.timestamp);
    return out;
  }

  function renderTasks() {
    const list = filteredTasks();
    const shown = list.slice(0, 200);
    const body = document.querySelector('#tasks tbody');
    body.replaceChildren(
      ...shown.map((t) => {
        const outcome = t.state === 'SUCCESS' ? t.result : t.exception;
        const tr = el('tr', { data: { uuid: t.uuid, state: t.state }, cls: t.uuid === model.selected ? 'selected' : '' }, [
          el('td', null, [el('span', { cls: 'state ' + (STATE_CLASS[t.state] || ''), text: t.state })]),
          td(t.uuid.slice(0, 8) + '…', 'mono', t.uuid),
          td(t.name, 'mono'),
          td(clip(t.args, 60), 'mono args', t.args),
          td(t.worker, 'mono'),
          td(t.retries),
          td(t.runtime === null ? null : fmtDuration(t.runtime)),
          td(clip(outcome, 60), 'mono', outcome),
          td(fmtTime(t.timestamp)),
        ]);
        tr.addEventListener('click', () => select(t.uuid));
        return tr;
      }),
    );
    document.getElementById('tasks-empty').hidden = model.tasks.size > 0;
    document.getElementById('task-count').textContent = list.length > shown.length ? shown.length + ' of ' + list.length + ' shown' : list.length + ' task(s)';
    if (model.selected) renderDetail();
  }

  async function select(uuid) {
    model.selected = uuid;
    renderDetail();
    // The lists carry clipped texts; the detail shows them whole.
    try {
      const res = await fetch(api('tasks/' + encodeURIComponent(uuid)), { credentials: 'same-origin' });
      if (res.ok) {
        const full = await res.json();
        model.tasks.set(full.uuid, full);
        if (model.selected === uuid) renderDetail();
      }
    } catch (_) {
      /* the clipped copy stays */
    }
  }

  function renderDetail() {
    const box = document.getElementById('detail');
    const t = model.tasks.get(model.selected);
    if (!t) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    document.getElementById('detail-id').textContent = t.uuid;
    const fields = [
      ['State', t.state],
      ['Name', t.name],
      ['Args', t.args],
      ['Kwargs', t.kwargs],
      ['Worker', t.worker],
      ['Retries', t.retries],
      ['ETA', t.eta],
      ['Received', fmtTime(t.received)],
      ['Started', fmtTime(t.started)],
      ['Finished', fmtTime(t.finished)],
      ['Runtime', t.runtime === null ? null : fmtDuration(t.runtime)],
      ['Result', t.result],
      ['Exception', t.exception],
    ];
    document.getElementById('detail-fields').replaceChildren(...fields.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v === null || v === undefined ? '–' : v, cls: 'mono' })]));
    document.getElementById('detail-traceback').textContent = t.traceback || '–';
    const done = ['SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED'].includes(t.state);
    document.getElementById('btn-revoke').disabled = done;
    document.getElementById('btn-terminate').disabled = done;
  }

  // ---- charts ----
  let outcomesChart = null;
  let queuesChart = null;
  const PALETTE = ['#2563eb', '#9333ea', '#0891b2', '#ca8a04', '#db2777', '#4d7c0f', '#ea580c', '#475569'];

  function initCharts() {
    if (typeof Chart === 'undefined') return;
    Chart.defaults.animation = false;
    Chart.defaults.font.family = 'system-ui, sans-serif';
    outcomesChart = new Chart(document.getElementById('chart-outcomes'), {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'succeeded', data: [], backgroundColor: '#16a34a' }, { label: 'failed', data: [], backgroundColor: '#dc2626' }, { label: 'retried', data: [], backgroundColor: '#f59e0b' }] },
      options: { responsive: true, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { position: 'bottom' } } },
    });
    queuesChart = new Chart(document.getElementById('chart-queues'), {
      type: 'line',
      data: { labels: [], datasets: [] },
      options: { responsive: true, maintainAspectRatio: false, elements: { point: { radius: 0 } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxTicksLimit: 8 } } }, plugins: { legend: { position: 'bottom' } } },
    });
  }

  function renderCharts() {
    const now = Date.now() - model.serverSkew;
    const byMinute = new Map(model.history.minutes.map((m) => [m.minute, m]));
    const current = Math.floor(now / 60000) * 60000;
    const minutes = [];
    for (let m = current - 29 * 60000; m <= current; m += 60000) minutes.push(byMinute.get(m) || { minute: m, succeeded: 0, failed: 0, retried: 0 });
    const last = byMinute.get(current) || { succeeded: 0, failed: 0 };
    document.getElementById('sum-succeeded').textContent = String(last.succeeded);
    document.getElementById('sum-failed').textContent = String(last.failed);
    if (outcomesChart) {
      outcomesChart.data.labels = minutes.map((m) => new Date(m.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
      outcomesChart.data.datasets[0].data = minutes.map((m) => m.succeeded);
      outcomesChart.data.datasets[1].data = minutes.map((m) => m.failed);
      outcomesChart.data.datasets[2].data = minutes.map((m) => m.retried);
      outcomesChart.update('none');
    }
    if (queuesChart) {
      const samples = model.history.queues.slice(-180);
      const names = [...new Set(samples.flatMap((s) => Object.keys(s.lengths)))].sort();
      queuesChart.data.labels = samples.map((s) => new Date(s.at).toLocaleTimeString());
      queuesChart.data.datasets = names.map((name, i) => ({ label: name, data: samples.map((s) => s.lengths[name]), borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length], tension: 0.2, spanGaps: true }));
      queuesChart.update('none');
    }
  }

  // ---- live updates ----
  function putTasks(list) {
    for (const t of list) {
      const had = model.tasks.get(t.uuid);
      // Keep the whole texts a detail fetch brought, unless the task moved on.
      const keepWhole = had && t.truncated && had.state === t.state && had.timestamp === t.timestamp;
      if (!keepWhole) model.tasks.set(t.uuid, t);
    }
    if (model.tasks.size > MAX_TASKS) {
      const oldest = [...model.tasks.values()].sort((a, b) => a.timestamp - b.timestamp).slice(0, model.tasks.size - MAX_TASKS);
      for (const t of oldest) model.tasks.delete(t.uuid);
    }
  }

  function connect() {
    const live = document.getElementById('live');
    const source = new EventSource(api('events'));
    source.addEventListener('open', () => {
      live.textContent = 'live';
      live.className = 'live on';
    });
    source.addEventListener('error', () => {
      live.textContent = 'reconnecting…';
      live.className = 'live off';
    });
    source.addEventListener('snapshot', (ev) => {
      const s = JSON.parse(ev.data);
      model.serverSkew = Date.now() - s.now;
      model.workers = s.workers;
      model.tasks.clear();
      putTasks(s.tasks);
      model.history = s.history;
      renderWorkers();
      renderQueues();
      renderTasks();
      renderCharts();
      document.body.dataset.ready = 'true';
    });
    source.addEventListener('workers', (ev) => {
      const s = JSON.parse(ev.data);
      model.serverSkew = Date.now() - s.now;
      model.workers = s.workers;
      renderWorkers();
      renderQueues();
    });
    source.addEventListener('tasks', (ev) => {
      putTasks(JSON.parse(ev.data));
      renderTasks();
    });
    source.addEventListener('history', (ev) => {
      model.history = JSON.parse(ev.data);
      renderQueues();
      renderCharts();
    });
  }

  document.getElementById('filter-state').addEventListener('change', renderTasks);
  document.getElementById('filter-name').addEventListener('input', renderTasks);
  document.getElementById('search-id').addEventListener('input', async () => {
    const id = document.getElementById('search-id').value.trim();
    renderTasks();
    // A full id the page does not hold (older than its list): ask the server.
    if (/^[0-9a-f-]{36}$/i.test(id) && !model.tasks.has(id)) {
      const res = await fetch(api('tasks/' + encodeURIComponent(id)), { credentials: 'same-origin' }).catch(() => null);
      if (res && res.ok) {
        putTasks([await res.json()]);
        renderTasks();
      }
    }
  });
  document.getElementById('detail-close').addEventListener('click', () => {
    model.selected = null;
    renderDetail();
    renderTasks();
  });
  document.getElementById('btn-revoke').addEventListener('click', () => model.selected && actions.revoke(model.selected));
  document.getElementById('btn-terminate').addEventListener('click', () => model.selected && actions.terminate(model.selected));

  initCharts();
  connect();
  // Uptimes and "online" age between pushes.
  setInterval(() => {
    renderWorkers();
  }, 5000);
})();
