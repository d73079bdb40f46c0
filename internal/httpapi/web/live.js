// live.js: everything the page knows about GET /v1/stream, kept in one
// module so it can be finished when the stream lands. The stream is
// server-sent events, GET /v1/stream?codes=005930&kinds=trade,book, with
// events trade {code, time, price, volume, cum_volume, ...}, book {code,
// time, asks, bids: [{price, quantity}] x 10}, gap and error, JSON data.
// Until a server has it, connect reports a fallback and the page polls.
// EventSource cannot send an Authorization header: with KISFEED_API_KEYS
// set, the stream will need another way to take the page's key (a cookie
// or a short-lived ticket), decided with the stream.

// available asks the API document whether this server has /v1/stream: a
// test keeps the document's paths equal to the registered routes, so
// this costs no failed request (and no console noise) while it is absent.
export async function available() {
  try {
    const r = await fetch('/openapi.json');
    return r.ok && Boolean((await r.json()).paths?.['/v1/stream']);
  } catch {
    return false;
  }
}

// connect opens the stream for code and calls on.trade, on.book, on.gap,
// on.error (a server-sent error event), on.open, on.down (the connection
// dropped; EventSource retries by itself) and on.fallback (the stream
// could not be opened at all, e.g. 404: stay on polling). It returns a
// function that closes the stream.
export function connect(code, on) {
  const es = new EventSource(`/v1/stream?codes=${encodeURIComponent(code)}&kinds=trade,book`);
  let opened = false;
  const json = (f) => (e) => { try { f(JSON.parse(e.data)); } catch (err) { on.error?.({ detail: String(err) }); } };
  es.onopen = () => { opened = true; on.open?.(); };
  es.addEventListener('trade', json((d) => on.trade?.(d)));
  es.addEventListener('book', json((d) => on.book?.(d)));
  es.addEventListener('gap', json((d) => on.gap?.(d)));
  // A server event named "error" and a connection failure both arrive
  // as "error": only the former is a MessageEvent with data.
  es.addEventListener('error', (e) => {
    if (e instanceof MessageEvent && e.data) return json((d) => on.error?.(d))(e);
    if (!opened && es.readyState === EventSource.CLOSED) { es.close(); on.fallback?.(); return; }
    if (opened) on.down?.();
  });
  return () => es.close();
}

const KST = 9 * 3600; // the chart's times are KST wall times written as UTC

// bucket returns the chart time (KST seconds) of the bar a trade at
// chart time t falls in.
function bucket(t, interval) {
  const day = Math.floor(t / 86400) * 86400;
  switch (interval) {
    case 'minute': return Math.floor(t / 60) * 60;
    case 'week': return day - ((Math.floor(t / 86400) + 3) % 7) * 86400; // Monday; 1970-01-01 was a Thursday
    case 'month': { const d = new Date(t * 1000); return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000; }
    default: return day;
  }
}

// applyTrade folds a trade into the last bar: it returns {bar, volume}
// for series.update (the last bar moved, or a new one started), or null
// for a trade older than the last bar. Day bars take the day's
// cumulative volume when the trade carries it.
export function applyTrade(last, lastVolume, trade, interval) {
  const t = Math.floor(Date.parse(trade.time) / 1000) + KST;
  const start = bucket(t, interval);
  const p = trade.price;
  const lastStart = last ? bucket(last.time, interval) : -Infinity;
  if (lastStart > start) return null;
  if (lastStart === start) {
    const volume = interval === 'day' && trade.cum_volume != null ? trade.cum_volume : lastVolume + trade.volume;
    return { bar: { ...last, high: Math.max(last.high, p), low: Math.min(last.low, p), close: p }, volume };
  }
  const volume = interval === 'day' && trade.cum_volume != null ? trade.cum_volume : trade.volume;
  return { bar: { time: start, open: p, high: p, low: p, close: p }, volume };
}
