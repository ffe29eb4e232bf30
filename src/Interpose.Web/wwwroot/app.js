// Interpose web UI: plain ES module, no framework, no build step. Everything comes from this server's /api.
const ROW_HEIGHT = 22;          // px; must match .row height in app.css
const OVERSCAN = 12;            // rows rendered above and below the visible ones
const PREVIEW_BYTES = 256 * 1024; // body bytes loaded into the page at most; the rest is a download
const HEX_BYTES = 64 * 1024;    // bytes shown as a hex dump at most
const GAP_FILL_MS = 100;        // rows not loaded that came into view are fetched (by position) at most this often
const TAIL_ROWS = 200;          // rows loaded with the list: the newest screenful (FlowFeed.TailRows); the rest by position
const MAX_FILL_ROWS = 1000;     // rows fetched by position in one request at most

// 1. The token: read once from the address bar, kept in sessionStorage, removed from the URL (and so from history).
const params = new URLSearchParams(location.search);
if (params.has('token')) {
  sessionStorage.setItem('interpose-token', params.get('token'));
  history.replaceState(null, '', location.pathname);
}
const token = sessionStorage.getItem('interpose-token') || '';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
};

async function api(path, options = {}) {
  const headers = { 'X-Interpose-Token': token, ...(options.headers || {}) };
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (!response.ok && !options.allowError) {
    let message = response.status + ' ' + response.statusText;
    try { const j = await response.json(); message = j.error || message; if (j.position !== undefined) message = { text: j.error, position: j.position }; } catch { /* not JSON */ }
    throw typeof message === 'string' ? new Error(message) : Object.assign(new Error(message.text), { position: message.position });
  }
  return response;
}

// 2. State: the rows in arrival order (null: a row not loaded yet, the live stream skipped it or the list loaded only its
// tail; fetched from /api/flows by position when it comes into view), an index by id, the selection. The index holds
// positions counted from the list's load: a row's position in rows is its index entry minus the rows evicted since
// (base), so an eviction removes its rows' entries only instead of renumbering every row (at the store's cap the
// stream evicts with every push, and the whole list, 100,000 rows, was walked and its loaded rows re-indexed ten times a
// second: as many entries as rows once a user has scrolled through it all).
let rows = [];
let index = new Map();
let base = 0;
const positionOf = (id) => { const i = index.get(id); return i === undefined ? undefined : i - base; };
let selectedId = null;
let info = { readOnly: true, canReplay: false, canIntercept: false };
let stream = null;
let renderQueued = false;

const viewport = $('viewport');
const spacer = $('spacer');
const pool = new Map(); // row element per visible position

function setRows(list, stick = true) {
  rows = list;
  index = new Map();
  base = 0;
  rows.forEach((r, i) => { if (r) index.set(r.id, i); });
  queueRender(stick);
}

const following = () => viewport.scrollTop + viewport.clientHeight >= viewport.scrollHeight - ROW_HEIGHT;

function upsert(list) {
  const atBottom = following();
  for (const row of list) {
    const i = positionOf(row.id);
    if (i === undefined) { index.set(row.id, base + rows.length); rows.push(row); }
    else rows[i] = row;
  }
  queueRender(atBottom);
}

// Changed rows replace the ones the list has; one it does not have (skipped) stays a placeholder.
function update(list) {
  for (const row of list) {
    const i = positionOf(row.id);
    if (i !== undefined) rows[i] = row;
  }
  queueRender(false);
}

// Rows the server counted but did not send (the list follows the tail faster than a screen can show).
function skip(count) {
  const atBottom = following();
  const start = rows.length;
  rows.length += count;
  rows.fill(null, start); // nulls, not holes: filter and forEach skip holes
  queueRender(atBottom);
}

// The store evicted its oldest flows (past its caps): the first rows of this list, which is in the store's order.
function evict(count) {
  const atBottom = following();
  const n = Math.min(count, rows.length);
  for (let i = 0; i < n; i++) if (rows[i]) index.delete(rows[i].id);
  rows.splice(0, n);
  base += n;
  if (!atBottom) viewport.scrollTop = Math.max(0, viewport.scrollTop - n * ROW_HEIGHT);
  queueRender(atBottom);
}

// Removed flows (ids), of which inList were in this list: those not among the loaded rows (nor deleted from this page,
// which removes its row at once) were placeholders, which cannot be told apart, so the list is read again where it is.
const deletedHere = new Set();
function remove(ids, inList = 0) {
  if (!ids) { setRows([]); showDetails(null); return; }
  const gone = new Set(ids);
  const kept = rows.filter(r => !r || !gone.has(r.id));
  let found = rows.length - kept.length;
  for (const id of ids) if (inList && deletedHere.delete(id)) found++;
  setRows(kept);
  if (gone.has(selectedId)) showDetails(null);
  if (found < inList) reload(true);
}

function queueRender(stick) {
  if (stick) queueRender.stick = true;
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    spacer.style.height = (rows.length * ROW_HEIGHT) + 'px';
    if (queueRender.stick) { viewport.scrollTop = viewport.scrollHeight; queueRender.stick = false; }
    render();
    $('count').textContent = rows.length + (rows.length === 1 ? ' flow' : ' flows');
  });
}

// 3. The virtualized list: only the rows in view (plus a margin) exist in the DOM.
function render() {
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW_HEIGHT) + OVERSCAN);
  for (const [pos, node] of pool) {
    if (pos < first || pos >= last) { node.remove(); pool.delete(pos); }
  }
  let gap = false;
  for (let pos = first; pos < last; pos++) {
    const row = rows[pos];
    let node = pool.get(pos);
    if (!node) {
      node = el('div', { role: 'row' });
      node.style.transform = `translateY(${pos * ROW_HEIGHT}px)`;
      spacer.append(node);
      pool.set(pos, node);
    }
    if (!row) {
      gap = true;
      if (node.dataset.id !== '') { node.dataset.id = ''; node.dataset.v = ''; node.className = 'row gap'; node.replaceChildren(el('span', { class: 'c-url muted', text: '…' })); }
      continue;
    }
    if (node.dataset.id !== row.id || node.dataset.v !== version(row)) fillRow(node, row, pos);
    node.classList.toggle('selected', row.id === selectedId);
    node.setAttribute('aria-selected', row.id === selectedId ? 'true' : 'false');
  }
  if (gap) fillGaps();
}

// Rows not loaded that are in view are fetched by position (offset and limit), at most once per GAP_FILL_MS. A list
// that follows the tail normally has its last screenful loaded by the stream (FlowFeed.TailRows), so a busy proxy does
// not make it fetch; but a burst can leave the tail itself unloaded (all of it counted, none of its rows pushed), and
// then the rows in view are fetched as anywhere else, or they would stay empty until the user scrolled. Positions are the server's order of the matching flows, the order of this list: a fetched
// row that the list has elsewhere, or a position holding another row, means they drifted apart (flows evicted or
// deleted that the list never had): the list is reloaded instead.
let gapTimer = 0;
let generation = 0; // bumped by each reload: a fetch answered for an older list is dropped
function fillGaps() {
  if (gapTimer) return;
  gapTimer = setTimeout(async () => {
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((viewport.scrollTop + viewport.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    let from = first;
    while (from < last && rows[from]) from++;
    let to = last;
    while (to > from && rows[to - 1]) to--;
    if (from >= to) { gapTimer = 0; return; }
    const q = listQuery();
    q.set('offset', from);
    q.set('limit', Math.min(MAX_FILL_ROWS, to - from));
    const mine = generation;
    try {
      const body = await (await api('/api/flows?' + q)).json();
      if (mine !== generation) return;
      let drifted = false;
      body.flows.forEach((row, i) => {
        const pos = body.offset + i;
        const at = positionOf(row.id);
        if ((at !== undefined && at !== pos) || (rows[pos] && rows[pos].id !== row.id) || pos >= rows.length) { drifted = true; return; }
        rows[pos] = row;
        index.set(row.id, base + pos);
      });
      if (drifted) { gapTimer = 0; reload(true); return; }
      queueRender(false);
    } catch (e) {
      console.log('rows by position: ' + e.message);
    } finally {
      gapTimer = 0;
    }
  }, GAP_FILL_MS);
}
const version = (r) => `${r.status}|${r.marker}|${r.comment}|${r.highlight}|${r.size}|${r.replay}`;
// mitmproxy's replay markers: the request was sent again (client replay), or the answer came from a recording (server replay).
const REPLAY_TITLES = { request: 'replayed request (~replayq)', response: 'replayed response (~replays)' };

// A row node's cells are made once and then only written: at the tail every push refills every row in view, and
// making new cells for each was the page's largest share of its work under load (docs/performance.md, "Web UI").
const CELLS = 9;
function cell(span, cls, text, title, label) {
  if (span.className !== cls) span.className = cls;
  if (span.textContent !== text) span.textContent = text;
  if (title == null) span.removeAttribute('title'); else if (span.getAttribute('title') !== title) span.setAttribute('title', title);
  if (label == null) span.removeAttribute('aria-label'); else span.setAttribute('aria-label', label);
}

function fillRow(node, r, pos) {
  node.dataset.id = r.id;
  node.dataset.v = version(r);
  node.className = 'row' + (pos % 2 ? ' odd' : '') + (r.highlight ? ' hl' : '') + (r.error ? ' failed' : '') + (r.kind === 'tunnel' ? ' tunnel' : '') + (r.replay ? ' replay' : '');
  const status = r.status ?? (r.error ? 'err' : '…');
  const proto = r.kind === 'tunnel' ? 'tunnel' : `h${r.clientProtocol === '2' ? '2' : '1'}→${r.serverProtocol ? 'h' + (r.serverProtocol === '2' ? '2' : '1') : '–'}`;
  if (node.children.length !== CELLS) node.replaceChildren(...Array.from({ length: CELLS }, () => document.createElement('span')));
  const c = node.children;
  cell(c[0], 'c-mark', r.marker ? '●' : r.replay ? '↻' : r.comment ? '✎' : '', r.replay ? REPLAY_TITLES[r.replay] : r.comment || '', r.replay ? REPLAY_TITLES[r.replay] : null);
  cell(c[1], 'c-method', r.method);
  cell(c[2], 'c-url', r.url, r.url);
  cell(c[3], 'c-status s' + String(r.status ?? '')[0], String(status), r.error || '');
  cell(c[4], 'c-type', r.type || '');
  cell(c[5], 'c-size', size(r.size));
  cell(c[6], 'c-time', r.durationMs == null ? '' : ms(r.durationMs));
  cell(c[7], 'c-proto', proto);
  // The padlock is drawn by the stylesheet: an emoji needs a colour-emoji font, which many Linux machines lack.
  if (r.passthrough || r.kind === 'tunnel' || !r.tls) cell(c[8], 'c-tls', r.passthrough ? 'pass' : r.kind === 'tunnel' ? 'raw' : '', r.kind === 'tunnel' ? 'tunnel: ' + r.tunnelKind : '');
  else cell(c[8], 'c-tls tls-on', '', 'intercepted TLS', 'TLS');
}

// Sizes and times keep to about three significant digits, so they fit their columns (100 MiB, 1023 KiB); loopback
// exchanges take well under a millisecond, shown in microseconds rather than as "0 ms".
const digits = (v) => v < 100 ? v.toFixed(1) : v.toFixed(0);
const size = (n) => n < 1024 ? n + ' B' : n < 1048576 ? digits(n / 1024) + ' KiB' : n < 1073741824 ? digits(n / 1048576) + ' MiB' : digits(n / 1073741824) + ' GiB';
const ms = (n) => n < 1 ? Math.round(n * 1000) + ' µs' : n < 1000 ? digits(n) + ' ms' : (n / 1000).toFixed(2) + ' s';

viewport.addEventListener('scroll', () => render(), { passive: true });
window.addEventListener('resize', () => render());
viewport.addEventListener('click', (e) => {
  const node = e.target.closest('.row');
  if (node) select(node.dataset.id);
});

function select(id, scroll) {
  if (id === undefined) return; // a row not loaded yet: fetched when in view
  selectedId = id;
  render();
  if (scroll && index.has(id)) {
    const top = positionOf(id) * ROW_HEIGHT;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (top + ROW_HEIGHT > viewport.scrollTop + viewport.clientHeight) viewport.scrollTop = top + ROW_HEIGHT - viewport.clientHeight;
  }
  showDetails(id);
}

// 4. Filters: evaluated by the server with the same engine as the CLI; a syntax error is shown under the box, with a caret.
function filterValue(id) { return $(id).value.trim(); }

function showFieldError(id, error) {
  const box = $(id + '-error');
  const input = $(id);
  if (!error) { box.hidden = true; box.textContent = ''; input.removeAttribute('aria-invalid'); return; }
  input.setAttribute('aria-invalid', 'true');
  box.hidden = false;
  box.textContent = error.position !== undefined ? `${input.value}\n${' '.repeat(error.position)}^ ${firstLine(error.message)}` : error.message;
}
const firstLine = (text) => text.split('\n')[0];

function listQuery() {
  const q = new URLSearchParams();
  if (filterValue('filter')) q.set('filter', filterValue('filter'));
  if (filterValue('highlight')) q.set('highlight', filterValue('highlight'));
  return q;
}

// The list: its count and newest rows (tail); the rows before them are placeholders, fetched by position when they are
// scrolled to (fillGaps). keepScroll: the list stays where the user scrolled it. A live list comes as the first event of
// its stream: the server reads it once the stream is subscribed and then pushes only what it does not have (by the
// store's sequence), so no flow is in neither, none in both, and no eviction is counted twice.
async function reload(keepScroll = false) {
  const q = listQuery();
  if (stream) stream.abort();
  const mine = ++generation;
  try {
    if (info.live) {
      await openStream(q, keepScroll);
    } else {
      const list = new URLSearchParams(q);
      list.set('tail', TAIL_ROWS);
      const body = await (await api('/api/flows?' + list)).json();
      if (mine !== generation) return; // a newer reload (another filter) owns the list now
      showList(body, keepScroll);
    }
    if (mine !== generation) return;
    showFieldError('filter', null);
    showFieldError('highlight', null);
  } catch (e) {
    if (mine !== generation) return;
    if (stream) stream.abort();
    const which = /^highlight:/.test(e.message) ? 'highlight' : 'filter';
    showFieldError(which, { message: e.message.replace(/^(filter|highlight): /, ''), position: e.position });
  }
}

function showList(body, keepScroll) {
  setRows(new Array(body.offset).fill(null).concat(body.flows), !keepScroll);
}

let debounce = 0;
for (const id of ['filter', 'highlight']) {
  $(id).addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(reload, 250); });
  $(id).addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(debounce); reload(); } if (e.key === 'Escape') viewport.focus(); });
}

// 5. The live list: server-sent events read through fetch (EventSource cannot send the token header). Its first event
// is the list; resolves once that is shown, fails with the server's error (a bad filter, a refused token).
function openStream(q, keepScroll) {
  const controller = new AbortController();
  stream = controller;
  let listed, failed;
  const shown = new Promise((resolve, reject) => { listed = resolve; failed = reject; });
  (async () => {
    try {
      const live = new URLSearchParams(q);
      live.set('tail', '1'); // new rows: the newest screenful of each push and a count of the rest
      live.set('list', TAIL_ROWS); // first, the list's newest rows
      const response = await api('/api/events?' + live, { signal: controller.signal });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0 && stream === controller) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) name = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (name === 'list') { showList(JSON.parse(data), keepScroll); listed(); }
          else onEvent(name, data);
        }
      }
    } catch (e) {
      failed(e);
      // An HTTP error (a bad filter, a refused token) is shown by reload; only a dropped connection retries.
      if (controller.signal.aborted || !(e instanceof TypeError)) return;
    }
    failed(new Error('the live list\'s stream ended'));
    if (!controller.signal.aborted) setTimeout(() => { if (stream === controller) reload(); }, 2000);
  })();
  return shown;
}

function onEvent(name, data) {
  if (name === 'flows') upsert(JSON.parse(data));
  else if (name === 'changed') update(JSON.parse(data));
  else if (name === 'skipped') skip(Number(data));
  else if (name === 'evicted') evict(Number(data));
  else if (name === 'removed') { const r = JSON.parse(data); remove(r.ids, r.inList); }
  else if (name === 'cleared') remove(null);
  else if (name === 'reload') reload();
  else if (name === 'intercept') loadPaused();
  if (name === 'changed' && selectedId && JSON.parse(data).some(r => r.id === selectedId)) showDetails(selectedId, true);
}

// 6. Details: heads in wire order and case, bodies by type, timings, TLS, errors, actions.
let detailsToken = 0;
async function showDetails(id, keepScroll) {
  const pane = $('details');
  const mine = ++detailsToken;
  if (!id) { selectedId = null; pane.replaceChildren(el('p', { class: 'muted', text: 'Select a flow (j/k or arrows, Enter; / for the filter).' })); return; }
  let d;
  try { d = await (await api('/api/flows/' + id)).json(); } catch (e) { pane.replaceChildren(el('p', { class: 'error-text', text: e.message })); return; }
  if (mine !== detailsToken) return;
  const top = pane.scrollTop;
  const s = d.summary;
  const parts = [el('h2', { text: `${s.method} ${s.url}` }), actions(d)];
  if (d.error) parts.push(el('h3', { text: 'Error' }), el('div', { class: 'error-box', text: `${d.error.phase}: ${d.error.message}` }));
  if (s.comment) parts.push(el('h3', { text: 'Comment' }), el('pre', { text: s.comment }));
  if (s.replay) parts.push(el('p', { class: 'replay-note', text: '↻ ' + REPLAY_TITLES[s.replay] }));
  if (d.tunnel) {
    const t = d.tunnel;
    parts.push(el('h3', { text: 'Tunnel' }), kv([['kind', t.kind], ['to', `${t.host}:${t.port}`], ['SNI', t.sni],
      ['from the client', t.bytesFromClient + ' bytes'], ['from the server', t.bytesFromServer + ' bytes'], ['open', t.durationMs == null ? null : ms(t.durationMs)]]));
  }
  if (d.request) parts.push(el('h3', { text: 'Request' }), head(d.requestLine, d.request.headers), body(id, 'request', d.request));
  if (d.response) parts.push(el('h3', { text: 'Response' }), head(d.statusLine, d.response.headers), body(id, 'response', d.response));
  if (d.response?.trailers) parts.push(el('h3', { text: 'Trailers' }), head(null, d.response.trailers));
  if (d.webSocket) parts.push(el('h3', { text: 'WebSocket messages' }), webSocketMessages(d.webSocket));
  if (d.timings) parts.push(el('h3', { text: 'Timing' }), waterfall(d.timings));
  parts.push(el('h3', { text: 'Connection' }), kv([['client', d.client], ['server', d.server], ['protocols', s.kind === 'tunnel' ? null : `${s.clientProtocol ? 'HTTP/' + s.clientProtocol : ''} → ${s.serverProtocol ? 'HTTP/' + s.serverProtocol : '–'}`]]));
  if (d.tags) parts.push(el('h3', { text: 'Tags' }), kv(Object.entries(d.tags).map(([k, v]) => [k, v || '(set)'])));
  for (const [label, tls] of [['Client TLS', d.clientTls], ['Server TLS', d.serverTls]]) {
    if (!tls) continue;
    parts.push(el('h3', { text: label }), kv([['version', tlsVersion(tls.version)], ['cipher', tls.cipherSuite], ['ALPN', tls.alpn], ['SNI', tls.sni]]));
    for (const c of tls.chain || []) parts.push(kv([['subject', c.subject], ['issuer', c.issuer], ['valid', `${c.notBefore} – ${c.notAfter}`], ['names', (c.names || []).join(', ')], ['SHA-256', c.sha256]]));
  }
  pane.replaceChildren(...parts);
  if (keepScroll) pane.scrollTop = top;
}

// Flows keep .NET's protocol names (Tls12, Tls13); people read "TLS 1.2".
function tlsVersion(v) {
  const m = /^Tls(\d)(\d)$/.exec(v ?? '');
  return m ? `TLS ${m[1]}.${m[2]}` : v;
}

function webSocketMessages(w) {
  const closed = w.closeCode == null ? null : `by the ${w.closedByClient ? 'client' : 'server'}: ${w.closeCode}${w.closeReason ? ' ' + w.closeReason : ''}`;
  const list = el('table', { class: 'ws-messages', 'aria-label': 'WebSocket messages' });
  for (const m of w.messages) {
    const size = m.length + ' bytes' + (m.truncated ? ', shown in part' : '') + (m.compressed ? ', compressed' : '');
    list.append(el('tr', { class: m.fromClient ? 'ws-sent' : 'ws-received' },
      el('td', { text: ms(m.offsetMs) }), el('td', { text: m.fromClient ? '→' : '←', title: m.fromClient ? 'sent by the client' : 'sent by the server' }),
      el('td', { text: m.opcode }), el('td', { text: size }), el('td', {}, el('pre', { text: m.text ?? m.hex ?? '' }))));
  }
  return el('div', {}, kv([['closed', closed], ['not shown', w.notShown ? w.notShown + ' more messages' : null], ['stopped reading', w.parseError]]), list);
}

function head(first, headers) {
  const pre = el('pre', { class: 'head' });
  if (first) pre.append(first + '\n');
  for (const [name, value] of headers) pre.append(el('span', { class: 'head-name', text: name }), ': ' + value + '\n');
  return pre;
}

function kv(pairs) {
  return el('table', { class: 'kv' }, ...pairs.filter(([, v]) => v).map(([k, v]) => el('tr', {}, el('td', { text: k }), el('td', { text: v }))));
}

function waterfall(t) {
  const steps = [['DNS', 0, t.dnsDone], ['connect', t.dnsDone, t.connected], ['TLS', t.connected, t.tlsDone], ['request', t.tlsDone ?? t.connected, t.requestSent], ['waiting', t.requestSent, t.firstByte], ['response', t.firstByte, t.done]];
  const total = t.done || Math.max(...Object.values(t).filter(v => v != null), 1);
  const grid = el('div', { class: 'waterfall', role: 'img', 'aria-label': 'Timing waterfall' });
  for (const [name, from, to] of steps) {
    if (to == null) continue;
    const start = from ?? 0;
    const fill = el('div', { class: 'bar-fill' });
    fill.style.left = (100 * start / total) + '%';
    fill.style.width = (100 * Math.max(0, to - start) / total) + '%';
    grid.append(el('span', { text: name }), el('div', { class: 'bar-track' }, fill), el('span', { text: ms(Math.max(0, to - start)) }));
  }
  return grid;
}

function body(id, side, message) {
  const b = message.body;
  const box = el('div', { class: 'body' });
  if (b.length === 0) { box.append(el('p', { class: 'muted', text: 'No body.' })); return box; }
  const view = el('div');
  const pretty = el('button', { type: 'button', 'aria-pressed': 'true', text: 'Pretty' });
  const raw = el('button', { type: 'button', 'aria-pressed': 'false', text: 'Raw' });
  const note = el('span', { class: 'muted' });
  const download = el('button', { type: 'button', text: 'Download whole body', onclick: () => downloadBody(id, side, raw.getAttribute('aria-pressed') === 'true') });
  pretty.addEventListener('click', () => { pretty.setAttribute('aria-pressed', 'true'); raw.setAttribute('aria-pressed', 'false'); load(true); });
  raw.addEventListener('click', () => { raw.setAttribute('aria-pressed', 'true'); pretty.setAttribute('aria-pressed', 'false'); load(false); });
  box.append(el('div', { class: 'body-tools' }, pretty, raw, note, download), view);
  const load = async (decode) => {
    const response = await api(`/api/flows/${id}/body/${side}?decode=${decode ? 1 : 0}&max=${PREVIEW_BYTES}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const total = Number(response.headers.get('X-Interpose-Length'));
    const type = (b.contentType || '').toLowerCase(); // the details' JSON: the field escapes what is not ASCII
    const notes = [size(b.length) + ' on the wire'];
    if (response.headers.get('X-Interpose-Decoded') === '1') notes.push(`decoded from ${b.contentEncoding} to ${size(total)}`);
    if (response.headers.get('X-Interpose-Recording-Truncated') === '1') notes.push(`recorded: first ${size(b.recorded)}`);
    if (total > bytes.length) notes.push(`showing the first ${size(bytes.length)} of ${size(total)}`);
    note.textContent = notes.join(' · ');
    view.replaceChildren(render(bytes, decode ? sniffed(type, bytes) : '', total > bytes.length));
  };
  load(b.decodable);
  if (!b.decodable) { pretty.disabled = true; raw.setAttribute('aria-pressed', 'true'); pretty.setAttribute('aria-pressed', 'false'); }
  return box;

  function render(bytes, type, partial) {
    if (type.startsWith('image/') && !partial) {
      const img = el('img', { class: 'preview-img', alt: 'image body' });
      img.src = URL.createObjectURL(new Blob([bytes], { type: type.split(';')[0] }));
      return img;
    }
    const text = utf8(bytes);
    if (text !== null) {
      if (/json/.test(type) && !partial) {
        try { return el('pre', { class: 'body-text', text: JSON.stringify(JSON.parse(text), null, 2) }); } catch { /* show as text */ }
      }
      return el('pre', { class: 'body-text', text });
    }
    return el('pre', { class: 'body-hex', text: hex(bytes.subarray(0, HEX_BYTES)) });
  }
}

// A body sent with no type or a catch-all one (a static server's default, a misconfigured API) is shown by what its
// first bytes say it is: PNG, JPEG, GIF or WebP images, and JSON text. SVG is never sniffed (it is markup).
const GENERIC_TYPES = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'application/unknown', 'text/plain']);
const MAGIC = [['image/png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]], ['image/jpeg', [0xff, 0xd8, 0xff]], ['image/gif', [0x47, 0x49, 0x46, 0x38]]];
function sniffed(type, bytes) {
  if (!GENERIC_TYPES.has(type.split(';')[0].trim())) return type;
  for (const [image, magic] of MAGIC) if (magic.every((v, i) => bytes[i] === v)) return image;
  const riff = String.fromCharCode(...bytes.subarray(0, 4)), webp = String.fromCharCode(...bytes.subarray(8, 12));
  if (riff === 'RIFF' && webp === 'WEBP') return 'image/webp';
  const first = bytes.find(v => v > 0x20);
  return first === 0x7b || first === 0x5b ? 'application/json' : type; // { or [: the JSON view falls back to text
}

function base64(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function utf8(bytes) {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return /[\u0000-\u0008\u000e-\u001f]/.test(text) ? null : text;
  } catch { return null; }
}

function hex(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = bytes.subarray(i, i + 16);
    const h = Array.from(chunk, b => b.toString(16).padStart(2, '0')).join(' ');
    const a = Array.from(chunk, b => b >= 32 && b < 127 ? String.fromCharCode(b) : '.').join('');
    lines.push(i.toString(16).padStart(8, '0') + '  ' + h.padEnd(48) + ' |' + a + '|');
  }
  return lines.join('\n');
}

async function downloadBody(id, side, raw) {
  // A one-time link: the whole body goes from the server to a file, never through the page.
  const { url } = await (await api(`/api/flows/${id}/body/${side}/download?decode=${raw ? 0 : 1}`, { method: 'POST' })).json();
  const a = el('a', { href: url, download: '' });
  document.body.append(a);
  a.click();
  a.remove();
}

function actions(d) {
  const s = d.summary;
  const bar = el('div', { class: 'actions' });
  const add = (text, handler, enabled = true) => bar.append(el('button', { type: 'button', text, disabled: !enabled, onclick: () => handler().catch(e => alert(e.message)) }));
  add('Replay', async () => { await api(`/api/flows/${s.id}/replay`, { method: 'POST' }); }, info.canReplay && s.kind === 'http');
  add('Edit & replay', async () => editAndReplay(d), info.canReplay && s.kind === 'http');
  add('Duplicate', async () => { await api(`/api/flows/${s.id}/duplicate`, { method: 'POST' }); }, !info.readOnly);
  add(s.marker ? 'Unmark' : 'Mark', async () => { await api(`/api/flows/${s.id}`, { method: 'PATCH', json: { marker: s.marker ? '' : 'marked' } }); showDetails(s.id, true); }, !info.readOnly);
  add('Comment', async () => { const c = prompt('Comment', s.comment || ''); if (c !== null) { await api(`/api/flows/${s.id}`, { method: 'PATCH', json: { comment: c } }); showDetails(s.id, true); } }, !info.readOnly);
  add('Copy as curl', async () => { const text = await (await api(`/api/flows/${s.id}/curl`)).text(); await navigator.clipboard.writeText(text); }, s.kind === 'http');
  add('Export HAR', async () => saveHar(await api('/api/har', { method: 'POST', json: { ids: [s.id] } })), s.kind === 'http');
  add('Delete', async () => {
    // Noted before the request: the stream may tell of the removal before the request's answer arrives.
    if (info.live) deletedHere.add(s.id);
    try { await api(`/api/flows/${s.id}`, { method: 'DELETE' }); } catch (e) { deletedHere.delete(s.id); throw e; }
    remove([s.id]);
  }, !info.readOnly);
  return bar;
}

// The body is offered for editing only when the page has it whole and as text: a body cut by the preview or the
// recording, or binary, is sent as recorded (the request's edit then has no body, and the server keeps the recorded one).
function editAndReplay(d) {
  const pane = $('details');
  const form = messageEditor({ method: d.summary.method, url: d.summary.url, headers: d.request.headers, body: null });
  const send = el('button', { type: 'button', text: 'Send', onclick: async () => {
    await api(`/api/flows/${d.summary.id}/replay`, { method: 'POST', json: form.value() });
    showDetails(d.summary.id);
  } });
  pane.prepend(el('div', { class: 'paused-item' }, el('strong', { text: 'Edit and replay' }), form.node, el('div', { class: 'line' }, send)));
  if (d.request.body.length === 0) { form.setBody(''); return; }
  api(`/api/flows/${d.summary.id}/body/request?decode=0&max=${PREVIEW_BYTES}`).then(async r => {
    const bytes = new Uint8Array(await r.arrayBuffer());
    const whole = r.headers.get('X-Interpose-Recording-Truncated') !== '1' && Number(r.headers.get('X-Interpose-Length')) === bytes.length;
    const text = whole ? utf8(bytes) : null;
    if (text !== null) form.setBody(text);
  });
}

async function saveHar(response) {
  const blob = await response.blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: 'flows.har' });
  document.body.append(a);
  a.click();
  a.remove();
}

// 7. Intercept: the filter box, and the paused exchanges with an editor each.
// Only what the user changed is sent: a body left as shown is not sent (the server keeps the exchange's own), so a
// textarea's line breaks (CRLF read back as LF) never reach the origin, and a GET gains no empty body. m.body null: not
// editable here (the page does not have it whole, as text). Headers left as shown are not sent either: the server keeps
// the message's own fields byte for byte (the page's lines lose a value's outer spaces). A URL whose authority changed
// takes the Host line with it when that line was left as it was, as mitmproxy does (RFC 9110 §7.2: Host names the
// target's authority): the server moves it when the headers were not sent, the page when they were edited.
function messageEditor(m) {
  const method = el('input', { 'aria-label': 'Method', value: m.method, size: 8 });
  const url = el('input', { class: 'url', 'aria-label': 'URL', value: m.url ?? '' });
  const status = el('input', { 'aria-label': 'Status', value: m.status ?? '', size: 4 });
  const headers = el('textarea', { 'aria-label': 'Headers', spellcheck: 'false' });
  headers.value = m.headers.map(([n, v]) => `${n}: ${v}`).join('\n');
  const shownHeaders = headers.value;
  // A body that is not UTF-8 text is edited as base64, or replaced whole by a file (read here, sent as base64).
  const bodyArea = el('textarea', { 'aria-label': m.binary ? 'Body (base64)' : 'Body', spellcheck: 'false' });
  let original = null; // the body as shown, and whether its line breaks were CRLF
  const setBody = (text) => {
    bodyArea.disabled = text === null;
    bodyArea.placeholder = text === null ? 'The body is sent as recorded (binary, or more than the page loads).' : '';
    bodyArea.value = text ?? '';
    original = text === null ? null : { shown: bodyArea.value, crlf: /\r\n/.test(text) && !/(^|[^\r])\n/.test(text) };
  };
  setBody(m.body ?? null);
  const upload = m.binary ? el('input', { type: 'file', 'aria-label': 'Replace body with a file', onchange: async (e) => {
    const file = e.target.files[0];
    if (file) bodyArea.value = base64(new Uint8Array(await file.arrayBuffer()));
  } }) : null;
  const line = m.status != null ? el('div', { class: 'line' }, status) : el('div', { class: 'line' }, method, url);
  const authority = (text) => { try { return new URL(text).host; } catch { return null; } };
  return {
    node: el('div', {}, line, headers, bodyArea, upload),
    setBody,
    value: () => {
      const v = {};
      if (headers.value !== shownHeaders) {
        v.headers = headers.value.split('\n').filter(l => l.trim()).map(l => { const i = l.indexOf(':'); return [l.slice(0, i).trim(), l.slice(i + 1).trim()]; });
      }
      if (original !== null && bodyArea.value !== original.shown) {
        // A textarea keeps LF only: a body that had CRLF line breaks (a multipart form, an HTTP-like text) gets them back.
        if (m.binary) v.bodyBase64 = bodyArea.value.replace(/\s+/g, ''); else v.body = original.crlf ? bodyArea.value.replace(/\n/g, '\r\n') : bodyArea.value;
      }
      if (m.status != null) { v.status = Number(status.value); return v; }
      v.method = method.value.trim();
      v.url = url.value.trim();
      const [from, to] = [authority(m.url), authority(v.url)];
      const recordedHost = m.headers.find(([n]) => n.toLowerCase() === 'host');
      if (from && to && from !== to && recordedHost && v.headers) {
        for (const h of v.headers) if (h[0].toLowerCase() === 'host' && h[1] === recordedHost[1].trim()) h[1] = to;
      }
      return v;
    },
  };
}

async function loadPaused() {
  if (!info.canIntercept) return;
  const state = await (await api('/api/intercept')).json();
  const box = $('paused');
  box.hidden = state.paused.length === 0;
  const editing = new Set(Array.from(box.querySelectorAll('[data-key]'), n => n.dataset.key));
  const keep = new Map(Array.from(box.querySelectorAll('[data-key]'), n => [n.dataset.key, n]));
  const items = state.paused.map(p => {
    if (editing.has(p.key)) return keep.get(p.key); // keep what the user is typing
    const form = messageEditor({ method: p.method, url: p.url, status: p.phase === 'response' ? p.status : null, headers: p.headers, body: p.body, binary: !p.bodyIsText });
    const item = el('div', { class: 'paused-item', 'data-key': p.key, role: 'group', 'aria-label': `Paused ${p.phase}: ${p.method} ${p.url}` },
      el('strong', { text: `Paused ${p.phase}: ${p.method} ${p.url}` }), form.node,
      el('div', { class: 'line' },
        el('button', { type: 'button', text: 'Resume', onclick: async () => {
          const v = form.value();
          await api(`/api/intercept/${p.key}/resume`, { method: 'POST', json: v }).catch(e => alert(e.message));
          loadPaused();
        } }),
        el('button', { type: 'button', text: 'Kill', onclick: async () => { await api(`/api/intercept/${p.key}/kill`, { method: 'POST' }).catch(() => {}); loadPaused(); } })));
    return item;
  });
  box.replaceChildren(el('strong', { text: `${state.paused.length} paused` }), ...items);
}

async function setIntercept() {
  try {
    await api('/api/intercept', { method: 'PUT', json: { filter: filterValue('intercept') } });
    showFieldError('intercept', null);
  } catch (e) {
    showFieldError('intercept', { message: e.message.replace(/^filter: /, ''), position: e.position });
  }
}
$('intercept').addEventListener('keydown', (e) => { if (e.key === 'Enter') setIntercept(); if (e.key === 'Escape') viewport.focus(); });
$('intercept').addEventListener('change', setIntercept);

// 8. Toolbar, keyboard, theme.
$('export-har').addEventListener('click', async () => {
  const q = new URLSearchParams();
  if (filterValue('filter')) q.set('filter', filterValue('filter'));
  saveHar(await api('/api/har?' + q));
});
$('clear').addEventListener('click', async () => { if (confirm('Delete every flow?')) { await api('/api/clear', { method: 'POST' }); remove(null); } });

document.addEventListener('keydown', (e) => {
  if (e.target.matches('input, textarea')) return;
  const i = selectedId ? positionOf(selectedId) ?? -1 : -1;
  if (e.key === '/') { e.preventDefault(); $('filter').focus(); $('filter').select(); }
  else if (e.key === 'j' || e.key === 'ArrowDown') { e.preventDefault(); if (rows.length) select(rows[Math.min(rows.length - 1, i + 1)]?.id, true); }
  else if (e.key === 'k' || e.key === 'ArrowUp') { e.preventDefault(); if (rows.length) select(rows[Math.max(0, i - 1)]?.id, true); }
  else if (e.key === 'Enter' && selectedId) { e.preventDefault(); $('details').focus(); }
  else if (e.key === 'Escape') viewport.focus();
});

const savedTheme = localStorage.getItem('interpose-theme');
if (savedTheme) document.documentElement.dataset.theme = savedTheme;
$('theme').addEventListener('click', () => {
  const dark = document.documentElement.dataset.theme ? document.documentElement.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'light' : 'dark';
  localStorage.setItem('interpose-theme', document.documentElement.dataset.theme);
});

// 9. Start.
(async () => {
  try {
    info = await (await api('/api/info')).json();
  } catch (e) {
    $('details').replaceChildren(el('p', { class: 'error-text', text: 'Not authorized: open the URL with its token that `interpose run --web` printed. (' + e.message + ')' }));
    return;
  }
  info.live = !info.readOnly;
  document.title = 'Interpose' + (info.source ? ' — ' + info.source : '');
  for (const b of [$('clear')]) b.disabled = info.readOnly;
  $('intercept').disabled = !info.canIntercept;
  if (info.interceptFilter) $('intercept').value = info.interceptFilter;
  await reload();
  loadPaused();
})();
