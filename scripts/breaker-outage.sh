#!/usr/bin/env bash
# breaker-outage.sh: how fast the circuit breaker opens in an upstream
# outage under load (issue 13, item 3). It starts `kisfeed emulator`
# (real-server behaviour, 18 req/s) and `kisfeed serve` over it with
# CACHE_PRICE_TTL=5s BREAKER_DELAY=10s, runs `kisfeed loadtest` at 50 req/s
# over 100 codes for 40 s, and 10 s in resets every upstream connection for
# 20 s (POST /_emulator/outage?for=20s). It prints each breaker transition
# as seconds since the outage began, then the time to fresh data after the
# outage's end, then loadtest's figures.
#
# Time to fresh data: from 1 s before the outage to 10 s after its end, a
# sampler asks serve for one code's quote (SAMPLE_CODE, default 005930, the
# loadtest's most requested) every 100 ms, on top of the load, and reports
# the first answer after the end that is not stale (X-Cache HIT or MISS: a
# copy from before the outage is older than the 5 s TTL by then, so a
# HIT or MISS was fetched after the end).
# Loopback only; every process is bounded by `timeout`.
#
# Usage: scripts/breaker-outage.sh
#   env: KISFEED (binary; default: built from this checkout)
#        SAMPLE_CODE (default 005930)
#        SERVE_ENV (extra VAR=value settings for serve, space separated,
#        e.g. "BREAKER_PROBE_INTERVAL=0" to compare without the probe)
#        KEEP_LOGS (a directory to copy the processes' output to)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
kisfeed_workdir


timeout 90 "$KISFEED" emulator --addr 127.0.0.1:0 >emu.out 2>emu.err & PIDS+=($!)
EMU=$(listen_addr emu.out)
# shellcheck disable=SC2086 # SERVE_ENV is a list of words on purpose
env ${SERVE_ENV:-} KIS_BASE_URL=$EMU KIS_APP_KEY=demo-key KIS_APP_SECRET=demo-secret KIS_USE_REAL_SERVER=true \
	KIS_TOKEN_FILE=$WORK/tokens.json CACHE_PRICE_TTL=5s BREAKER_DELAY=10s LOG_FORMAT=json \
	timeout 90 "$KISFEED" serve --addr 127.0.0.1:0 >srv.out 2>srv.err & PIDS+=($!)
SRV=$(listen_addr srv.out)

timeout 60 "$KISFEED" loadtest --target "$SRV" --rate 50 --codes 100 --duration 40s >load.out 2>&1 & LOAD=$!
sleep 9
# The sampler: one quote every 100 ms for 31 s (from 1 s before the outage
# to 10 s after its end), each line "unix-time status x-cache".
timeout 40 python3 - "$SRV" "${SAMPLE_CODE:-005930}" >sample.out <<'PY' & SAMPLER=$!
import http.client, sys, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
path = f"/v1/stocks/{sys.argv[2]}/quote"
conn = None
start = time.time()
for i in range(310):
    wake = start + i * 0.1
    time.sleep(max(0, wake - time.time()))
    t = time.time()
    try:
        if conn is None:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        print(f"{t:.3f} {r.status} {r.getheader('X-Cache') or '-'}", flush=True)
    except Exception as e:
        conn = None
        print(f"{t:.3f} 0 {type(e).__name__}", flush=True)
PY
sleep 1
T0=$(date +%s.%N)
curl -s -X POST "$EMU/_emulator/outage?for=20s" >/dev/null
T1=$(date +%s.%N)
wait "$LOAD" || true
wait "$SAMPLER" || true

python3 - "$T0" "$T1" srv.err sample.out <<'PY'
import collections, datetime, json, sys
t0, t1 = float(sys.argv[1]), float(sys.argv[2])
end = t0 + 20  # the emulator started the outage between t0 and t1
print(f"outage: +0.000s to +20.000s (POST took {1000 * (t1 - t0):.1f} ms; times are from before it)")
for line in open(sys.argv[3]):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if "circuit breaker" in j.get("msg", ""):
        t = datetime.datetime.fromisoformat(j["time"]).timestamp()
        print(f"{t - t0:+8.3f}s  {j['msg']}")
during, fresh, last_stale = collections.Counter(), None, None
for line in open(sys.argv[4]):
    ts, status, xc = line.split()
    t = float(ts)
    if t0 <= t < end:
        during[f"{status} {xc}"] += 1
    elif t >= end:
        if status == "200" and xc in ("HIT", "MISS"):
            if fresh is None:
                fresh = t
        elif fresh is None:
            last_stale = t
print("sampler during the outage:", ", ".join(f"{k}: {v}" for k, v in sorted(during.items())) or "no samples")
if fresh is None:
    print("fresh data after the end: NONE within the sampling window")
else:
    note = f" (last stale sample at +{last_stale - end:.3f}s)" if last_stale else ""
    print(f"fresh data after the end: +{fresh - end:.3f}s (first non-stale 200 at +{fresh - t0:.3f}s){note}")
PY
cat load.out
