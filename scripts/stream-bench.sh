#!/usr/bin/env bash
# stream-bench.sh: the single-machine fan-out bars (issue 11). It starts
# `kisfeed emulator` with three app keys at KISFEED_MARKET_TIME in market
# hours (normal pace, --speed 1), then `kisfeed serve` in KIS mode against
# it (KIS_BASE_URL + KIS_APP_KEYS: 40 codes × trade+book = 80 registrations
# need two keys at 41 each, and embedded mode has one demo key), and runs
#   1. `kisfeed loadtest stream` with CLIENTS SSE consumers, each on 5 of
#      40 codes, for DURATION: delivered events/s, delivery latency
#      percentiles, drops and disconnects, serve's RSS;
#   2. a baseline of SLOW_DURATION and the same with --slow 1 (one consumer
#      that reads nothing): it must end as slow_consumer within the run,
#      and the others' p99 should not move beyond noise. A non-reader on
#      5 codes at the emulator's pace fills serve's 32 KiB send buffer and
#      its own receive window in about 45 s, then the 10 s write deadline
#      ends it: give SLOW_DURATION 90s or more.
# End-to-end latency (receipt − the event's execution time) means nothing
# here: serve in KIS mode keeps the wall clock while the emulator's market
# runs from KISFEED_MARKET_TIME; delivery latency (receipt − when serve
# read the frame) is the figure.
# Loopback only; every process is bounded by `timeout`.
#
# Usage: scripts/stream-bench.sh
#   env: KISFEED (binary; default: built from this checkout)
#        CLIENTS (default 1000), DURATION (default 5m),
#        SLOW_DURATION (default 2m; "0" skips part 2), CODES (default 40),
#        PER_CLIENT (default 5), KEEP_LOGS (a directory for the outputs)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
kisfeed_workdir '*.json'

CLIENTS=${CLIENTS:-1000}
DURATION=${DURATION:-5m}
SLOW_DURATION=${SLOW_DURATION:-2m}
NCODES=${CODES:-40}
PER_CLIENT=${PER_CLIENT:-5}
MARKET="2026-11-27 10:00"
# One descriptor per consumer in the load generator and in serve.
ulimit -n "$(( CLIENTS * 2 + 1024 > 20000 ? CLIENTS * 2 + 1024 : 20000 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"

secs() { # a Go duration of whole units (90s, 5m, 1h) in seconds
	local d=$1
	case $d in *h) echo $(( ${d%h} * 3600 ));; *m) echo $(( ${d%m} * 60 ));; *s) echo "${d%s}";; *) echo "$d";; esac
}
BUDGET=$(( $(secs "$DURATION") + 2 * $(secs "${SLOW_DURATION/#0/0s}") + 300 ))

KISFEED_MARKET_TIME="$MARKET" timeout "$BUDGET" "$KISFEED" emulator --addr 127.0.0.1:0 \
	--app-key k1:s1 --app-key k2:s2 --app-key k3:s3 >emu.out 2>emu.err & PIDS+=($!)
EMU=$(listen_addr emu.out)

KIS_BASE_URL="$EMU" KIS_APP_KEYS=k1:s1,k2:s2,k3:s3 KIS_TOKEN_FILE="$WORK/tokens.json" \
	KIS_APPROVAL_FILE="$WORK/approval.json" LOG_LEVEL=error \
	timeout "$BUDGET" "$KISFEED" serve --addr 127.0.0.1:0 --access-log=false >serve.out 2>serve.err & PIDS+=($!)
TARGET=$(listen_addr serve.out)
SERVE_PID=$(pgrep -P "$!" || echo "$!") # serve itself, not timeout
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); emulator $EMU (market from $MARKET KST), serve $TARGET"

slow_poller() { # prints when serve first counts a slow_consumer disconnect, in s from now
	local start=$SECONDS
	while sleep 0.5; do
		if curl -sf "$TARGET/metrics" | grep -q 'reason="slow_consumer",transport="sse"} [1-9]'; then
			echo "   serve ended the non-reader as slow_consumer $(( SECONDS - start )) s after the run started"; return
		fi
	done
}

run() { # name, extra loadtest flags...
	local name=$1; shift
	timeout "$BUDGET" "$KISFEED" loadtest stream --target "$TARGET" --clients "$CLIENTS" --codes "$NCODES" \
		--per-client "$PER_CLIENT" "$@" --json >"$name.json" 2>"$name.err" || true
	python3 - "$name" "$SERVE_PID" <<'PY'
import json, sys
name, pid = sys.argv[1], sys.argv[2]
d = json.load(open(name + ".json"))
lat = d["delivery_latency"]
rss = int(open(f"/proc/{pid}/status").read().split("VmRSS:")[1].split()[0]) * 1024
print(f"== {name}: {d['connected']}/{d['clients']} consumers ({d['slow']} slow), {d['codes']} codes x {d['per_client']}, {d['duration_s']:.0f}s")
print(f"   delivered {d['events_per_s']:.0f} events/s; delivery p50 {lat['p50_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms, "
      f"p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.0f} ms ({lat['count']} events)")
print(f"   gaps {d['gaps'] or 0}, error events {d['error_events'] or 0}, disconnects of readers {d['disconnects'] or 0}, ids {d['ids']}")
if d["slow"]:
    print(f"   slow consumer: {d['slow_disconnects']}, {sum(d['slow_events'].values())} events before it")
print(f"   server: {d.get('server_counters')}")
ma = d.get("mem_after") or {}
print(f"   serve RSS {ma.get('rss_bytes', 0) / 1e6:.1f} MB at the run's end (/metrics), {rss / 1e6:.1f} MB now (/proc)")
PY
}

run bench --duration "$DURATION"
if [[ "$SLOW_DURATION" != "0" ]]; then
	run baseline --duration "$SLOW_DURATION"
	slow_poller >slow.when & POLLER=$!
	run slow --duration "$SLOW_DURATION" --slow 1
	kill "$POLLER" 2>/dev/null || true
	if [[ -s slow.when ]]; then cat slow.when; else echo "   serve did not end the non-reader within the run"; fi
fi
