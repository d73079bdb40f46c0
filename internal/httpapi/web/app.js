// app.js: the market page of kisfeed serve. Plain ES module over the JSON
// API (no build step); the chart is TradingView's lightweight-charts,
// vendored under /ui/vendor. live.js holds the stream part.
import * as live from './live.js';

performance.mark('kisfeed:start');
const $ = (s) => document.querySelector(s);
const LC = window.LightweightCharts;
const KST = 9 * 3600; // lightweight-charts shows UTC: bars are placed at KST wall time
const INTERVALS = ['minute', 'day', 'week', 'month'];
const BOOK_POLL_MS = 3000;
const STATUS_POLL_MS = 5000;
const CANDLE_POLL_MS = 30000;
const UP = '#d60000', DOWN = '#0051c7'; // Korean convention: red up, blue down
const won = new Intl.NumberFormat('ko-KR');

const st = { code: '005930', interval: 'day', stocks: [], marketOpen: false, live: false, stop: null, timers: {}, banners: {}, seq: 0 };
// The test hook: what the chart and the book show, read by the browser test.
const hook = window.__kisfeed = {
  firstChart: false, candlesURL: '', candleUpdates: 0, bookUpdates: 0, mode: 'polling', trades: 0,
  candles: () => candleSeries.data().map((b) => ({ ...b })),
  volume: () => volumeSeries.data().map((v) => ({ time: v.time, value: v.value })),
  book: () => readBook(),
};

// --- banners: stale data, upstream down, stream gap ---------------------
function banner(key, msg) {
  if (msg) st.banners[key] = msg; else delete st.banners[key];
  const el = $('#banner');
  el.replaceChildren(...Object.values(st.banners).map((m) => Object.assign(document.createElement('p'), { textContent: m })));
  el.hidden = el.childElementCount === 0;
}

// With KISFEED_API_KEYS set, /v1 needs "Authorization: Bearer KEY": the
// page asks for a key once (on the first 401) and keeps it for the tab.
let asked = false;
function askKey() {
  if (asked) return;
  asked = true;
  const k = window.prompt('This kisfeed needs an API key (KISFEED_API_KEYS). Key:');
  if (k) { sessionStorage.setItem('kisfeed.key', k.trim()); location.reload(); }
}

// fetchJSON fetches an API path; stale answers and outages raise banners.
async function fetchJSON(path, what) {
  let r;
  try {
    const key = sessionStorage.getItem('kisfeed.key');
    r = await fetch(path, key ? { headers: { Authorization: `Bearer ${key}` } } : {});
  } catch (e) {
    banner('net', `kisfeed does not answer (${e.message})`);
    throw e;
  }
  banner('net');
  const body = await r.json().catch(() => ({}));
  if (r.ok) banner('auth');
  if (!r.ok) {
    if (r.status === 401 || r.status === 403) {
      banner('auth', `${body.title || r.status}: ${body.detail || 'this server needs an API key with the read scope'}`);
      if (r.status === 401) askKey();
    }
    if (r.status === 503 || r.status === 504) banner('down', `Upstream unavailable: ${body.detail || body.title || r.status}`);
    throw new Error(`${what}: ${body.detail || body.title || r.status}`);
  }
  if (what) {
    const stale = r.headers.get('X-Cache') === 'STALE' || body.stale;
    banner('stale:' + what, stale ? `Stale ${what}: served from cache, as of ${fmtTime(body.as_of)} (the upstream did not answer)` : '');
  }
  return body;
}

const kstFmt = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Seoul', dateStyle: 'short', timeStyle: 'medium' });
const fmtTime = (s) => (s ? kstFmt.format(new Date(s)) : '?'); // "2026-11-27 10:00:00", KST

// --- URL state ----------------------------------------------------------
function readURL() {
  const q = new URLSearchParams(location.search);
  const code = (q.get('code') || '').toUpperCase();
  if (/^[0-9A-Z]{6}$/.test(code)) st.code = code;
  if (INTERVALS.includes(q.get('interval'))) st.interval = q.get('interval');
}
function writeURL() {
  const u = `?code=${st.code}&interval=${st.interval}`;
  if (location.search !== u) history.pushState(null, '', u);
}

// --- chart --------------------------------------------------------------
const chart = LC.createChart($('#chart'), {
  autoSize: true,
  layout: { fontFamily: getComputedStyle(document.documentElement).fontFamily, textColor: '#1d2330', attributionLogo: true },
  grid: { vertLines: { color: '#eef0f3' }, horzLines: { color: '#eef0f3' } },
  localization: { locale: 'ko-KR', priceFormatter: (p) => won.format(Math.round(p)) },
  timeScale: { borderColor: '#dde2e8' },
});
const candleSeries = chart.addSeries(LC.CandlestickSeries, {
  upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN, borderVisible: false,
  priceFormat: { type: 'price', precision: 0, minMove: 1 },
});
candleSeries.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.28 } });
const volumeSeries = chart.addSeries(LC.HistogramSeries, {
  priceScaleId: 'vol', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false,
});
chart.priceScale('vol').applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });

const volBar = (time, value, up) => ({ time, value, color: up ? UP + '80' : DOWN + '80' });

async function loadCandles() {
  const seq = st.seq, url = `/v1/stocks/${st.code}/candles?interval=${st.interval}`;
  let c;
  try {
    c = await fetchJSON(url, 'candles');
  } catch (e) {
    if (seq === st.seq) { candleSeries.setData([]); volumeSeries.setData([]); $('#title').textContent = `${title()} — ${e.message}`; }
    return;
  }
  if (seq !== st.seq) return; // the user picked another code or interval meanwhile
  const bars = c.bars.map((b) => ({ time: Date.parse(b.time) / 1000 + KST, open: b.open, high: b.high, low: b.low, close: b.close }));
  candleSeries.setData(bars);
  volumeSeries.setData(c.bars.map((b, i) => volBar(bars[i].time, b.volume, b.close >= b.open)));
  chart.applyOptions({ timeScale: { timeVisible: st.interval === 'minute', secondsVisible: false } });
  if (st.fit) { chart.timeScale().fitContent(); st.fit = false; }
  hook.candlesURL = url;
  hook.candleUpdates++;
  $('#title').textContent = `${title()} · ${c.from}–${c.to} · ${bars.length} bars`;
  if (!hook.firstChart) {
    requestAnimationFrame(() => {
      performance.mark('kisfeed:first-chart');
      hook.firstChartMs = performance.measure('kisfeed:time-to-first-chart', { end: 'kisfeed:first-chart' }).duration;
      hook.firstChart = true;
    });
  }
}

function title() {
  const s = st.stocks.find((x) => x.code === st.code);
  return s ? `${s.name} ${s.code} ${s.market}` : st.code;
}

// onTrade moves the last candle with a live trade (live.js decides how).
function onTrade(t) {
  if (t.code !== st.code) return;
  const last = candleSeries.data().at(-1);
  const lastVol = volumeSeries.data().at(-1)?.value ?? 0;
  const u = live.applyTrade(last, lastVol, t, st.interval);
  if (u) {
    candleSeries.update(u.bar);
    volumeSeries.update(volBar(u.bar.time, u.volume, u.bar.close >= u.bar.open));
  }
  hook.trades++;
  const li = document.createElement('li');
  li.innerHTML = '<span></span><span></span><span></span>';
  const [a, b, c] = li.children;
  a.textContent = fmtTime(t.time).split(' ').at(-1);
  b.textContent = won.format(t.price);
  c.textContent = won.format(t.volume);
  $('#tape').prepend(li);
  while ($('#tape').childElementCount > 40) $('#tape').lastChild.remove();
}

// --- order book ---------------------------------------------------------
function renderBook(b) {
  if (b.code && b.code !== st.code) return;
  const max = Math.max(1, ...b.asks.map((l) => l.quantity), ...b.bids.map((l) => l.quantity));
  const row = (cls, l) => {
    const tr = document.createElement('tr');
    tr.className = cls;
    tr.innerHTML = '<td></td><td class="p"></td><td></td>';
    const [ask, price, bid] = tr.children;
    price.textContent = won.format(l.price);
    const cell = cls === 'ask' ? ask : bid;
    cell.textContent = won.format(l.quantity);
    cell.style.setProperty('--w', `${(100 * l.quantity) / max}%`);
    return tr;
  };
  // Asks above (highest first, best ask next to the spread), bids below.
  $('#book tbody').replaceChildren(...[...b.asks].reverse().map((l) => row('ask', l)), ...b.bids.map((l) => row('bid', l)));
  hook.bookUpdates++;
  st.bookAt = b.time || b.as_of;
  bookLabel();
}

function bookLabel() {
  $('#bookmode').textContent = (st.live ? 'live' : st.marketOpen ? `polled every ${BOOK_POLL_MS / 1000} s` : 'market closed') +
    (st.bookAt ? ` · ${fmtTime(st.bookAt).split(' ').at(-1)}` : '');
}

// readBook reads the ladder back from the page, as shown.
function readBook() {
  const num = (td) => Number(td.textContent.replace(/[^0-9]/g, ''));
  const levels = (cls, qty) => [...document.querySelectorAll(`#book tr.${cls}`)].map((tr) => ({ price: num(tr.children[1]), quantity: num(tr.children[qty]) }));
  return { asks: levels('ask', 0).reverse(), bids: levels('bid', 2) };
}

async function loadBook() {
  const seq = st.seq;
  try {
    const b = await fetchJSON(`/v1/stocks/${st.code}/orderbook`, 'order book');
    if (seq === st.seq) renderBook(b);
  } catch (e) {
    if (seq === st.seq) $('#bookmode').textContent = e.message;
  }
}

// --- status strip -------------------------------------------------------
async function loadStatus() {
  let s;
  try {
    s = await fetchJSON('/v1/status');
  } catch {
    return;
  }
  st.marketOpen = s.market_open;
  const cls = { closed: 'ok', open: 'bad', 'half-open': 'warn' }[s.breaker] || 'warn';
  banner('breaker', s.breaker === 'open' ? 'Upstream KIS is down (circuit breaker open): cached data only, new codes fail' :
    s.breaker === 'half-open' ? 'Upstream KIS is recovering (circuit breaker half-open)' : '');
  const pct = (x) => (x == null ? '–' : `${(100 * x).toFixed(1)} %`);
  const rate = s.upstream.per_second == null ? '–' : s.upstream.per_second.toFixed(1);
  const keys = s.stream.keys.length ? s.stream.keys.map((k) => `key ${k.key}: ${k.sessions}/${k.registrations}`).join(', ') : 'none';
  const run = s.ingestion.runs[0];
  const runs = !s.ingestion.database ? 'no database' : s.ingestion.error ? s.ingestion.error :
    run ? s.ingestion.runs.slice(0, 3).map((r) => `#${r.id} ${r.status} ${fmtTime(r.finished_at || r.started_at)}`).join(' · ') : 'none yet';
  const items = [
    ['Market', `${s.market_open ? 'open' : 'closed'} ${fmtTime(s.market_time)}`, s.market_open ? 'ok' : ''],
    ['Breaker', s.breaker, cls],
    ['Cache hits', pct(s.cache.hit_ratio), ''],
    ['KIS', `${rate} / ${s.upstream.limit ?? '–'} req/s`, ''],
    ['Stream', s.stream.available ? `sessions/registrations ${keys}` : `not available (${keys})`, ''],
    ['Ingestion', runs, run && run.status !== 'succeeded' ? 'warn' : ''],
  ];
  $('#status').replaceChildren(...items.map(([k, v, c]) => {
    const li = document.createElement('li');
    li.innerHTML = '<b></b> <span></span>';
    li.firstChild.textContent = k;
    li.lastChild.textContent = v;
    li.lastChild.className = c;
    return li;
  }));
  schedule();
}

// schedule keeps the pollers in step with the mode: the book and candles
// are polled while the market is open and no stream feeds them.
function schedule() {
  const poll = st.marketOpen && !st.live;
  const every = (name, ms, f) => {
    if (poll && !st.timers[name]) st.timers[name] = setInterval(f, ms);
    if (!poll && st.timers[name]) { clearInterval(st.timers[name]); delete st.timers[name]; }
  };
  every('book', BOOK_POLL_MS, loadBook);
  every('candles', CANDLE_POLL_MS, loadCandles);
  bookLabel();
  $('#tapenote').textContent = st.live ? '' : 'Live trades need /v1/stream, which this server does not have yet: the book is polled instead.';
}

// --- live stream --------------------------------------------------------
let streamOK = null; // whether this server has /v1/stream, asked once
async function startLive() {
  st.stop?.();
  st.stop = null;
  st.live = false;
  if (streamOK === null) streamOK = await live.available();
  if (!streamOK) { schedule(); return; }
  const code = st.code;
  st.stop = live.connect(code, {
    open: () => { st.live = true; hook.mode = 'live'; banner('stream'); schedule(); },
    trade: onTrade,
    book: renderBook,
    gap: (g) => { banner('gap', `Gap in the live stream${g.time ? ' at ' + fmtTime(g.time) : ''}: reloaded from the API`); loadCandles(); loadBook(); },
    error: (e) => banner('stream', `Stream: ${e.detail || e.title || e.message || 'error'}`),
    down: () => { st.live = false; hook.mode = 'polling'; banner('stream', 'Live stream lost: reconnecting, polling meanwhile'); schedule(); },
    fallback: () => { streamOK = false; st.live = false; hook.mode = 'polling'; schedule(); },
  });
}

// --- picker (combobox) ----------------------------------------------------
const pick = $('#pick'), list = $('#picks');
let matches = [], active = -1;

function showMatches() {
  const q = pick.value.trim().toLowerCase();
  matches = q ? st.stocks.filter((s) => s.code.toLowerCase().startsWith(q) || s.name.toLowerCase().includes(q)).slice(0, 12) : [];
  active = matches.length ? 0 : -1;
  list.replaceChildren(...matches.map((s, i) => {
    const li = document.createElement('li');
    li.id = `pick-${i}`;
    li.setAttribute('role', 'option');
    li.innerHTML = '<span></span><span class="code"></span>';
    li.firstChild.textContent = s.name;
    li.lastChild.textContent = `${s.code} ${s.market}`;
    li.addEventListener('mousedown', (e) => { e.preventDefault(); choose(s.code); });
    return li;
  }));
  list.hidden = !matches.length;
  pick.setAttribute('aria-expanded', String(!list.hidden));
  highlight();
}
function highlight() {
  [...list.children].forEach((li, i) => li.setAttribute('aria-selected', String(i === active)));
  if (active >= 0) { pick.setAttribute('aria-activedescendant', `pick-${active}`); list.children[active].scrollIntoView({ block: 'nearest' }); }
  else pick.removeAttribute('aria-activedescendant');
}
function closeList() { list.hidden = true; pick.setAttribute('aria-expanded', 'false'); pick.removeAttribute('aria-activedescendant'); }

pick.addEventListener('input', showMatches);
pick.addEventListener('blur', closeList);
pick.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    if (list.hidden) showMatches();
    if (matches.length) active = (active + (e.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
    highlight();
    e.preventDefault();
  } else if (e.key === 'Enter') {
    const typed = pick.value.trim().toUpperCase();
    if (active >= 0 && !list.hidden) choose(matches[active].code);
    else if (/^[0-9A-Z]{6}$/.test(typed)) choose(typed);
    e.preventDefault();
  } else if (e.key === 'Escape') {
    closeList();
  }
});

function choose(code) {
  closeList();
  st.code = code;
  writeURL();
  load();
}

// --- interval buttons -----------------------------------------------------
for (const b of document.querySelectorAll('#intervals button')) {
  b.addEventListener('click', () => { st.interval = b.dataset.interval; writeURL(); load(); });
}

function load() {
  st.seq++;
  st.fit = true;
  for (const b of document.querySelectorAll('#intervals button')) b.setAttribute('aria-pressed', String(b.dataset.interval === st.interval));
  pick.value = title();
  $('#title').textContent = title();
  $('#tape').replaceChildren();
  document.title = `${title()} · kisfeed`;
  // The stream starts once the snapshot is drawn, so a late snapshot
  // cannot overwrite the live book or a candle a trade already moved.
  const seq = st.seq;
  Promise.all([loadCandles(), loadBook()]).then(() => { if (seq === st.seq) startLive(); });
}

window.addEventListener('popstate', () => { readURL(); load(); });

readURL();
load();
loadStatus();
setInterval(loadStatus, STATUS_POLL_MS);
fetchJSON('/v1/stocks').then((u) => {
  st.stocks = u.stocks;
  if (document.activeElement !== pick) pick.value = title();
  $('#title').textContent = $('#title').textContent.replace(st.code, title());
  document.title = `${title()} · kisfeed`;
}).catch(() => {});
