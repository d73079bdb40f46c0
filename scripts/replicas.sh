#!/usr/bin/env bash
# replicas.sh: the replicas bar of issue 11. One `kisfeed emulator` (one
# app key, KISFEED_MARKET_TIME in market hours), two `kisfeed serve`
# replicas (NATS_URL, REDIS_URL, KIS_BASE_URL at the emulator, the same app
# key, KISFEED_REPLICA r1 and r2), `kisfeed loadtest stream` with CLIENTS
# consumers against each (SSE), plus one raw `curl -N` consumer on each to
# show the event order around the takeover. After WARM seconds it finds
# the lease holder (its /v1/status says "stream.replica.holder": true, and
# Redis's kisfeed:lease:stream:* value names it), kill -9s it, and reports:
#   - the time from the kill until the other replica holds the KIS session
#     (its /v1/status, polled every 100 ms);
#   - the emulator's WebSocket stats (sessions_max_concurrent,
#     max_sessions_per_app_key, opsp8996) and the most sessions per app key
#     any poll (every 100 ms) saw;
#   - for the survivor's consumers: gap events (by reason; one per code per
#     consumer is the expectation), consumers that saw the new epoch,
#     duplicate ids, events, disconnects; and the raw consumer's events
#     around the gap.
# Loopback only; needs redis-server (DB REDIS_DB, default 2) and a NATS
# server (NATS_URL, default nats://127.0.0.1:4222).
#
# Usage: scripts/replicas.sh
#   env: KISFEED (binary; default: built from this checkout)
#        CLIENTS (per replica, default 100), CODES (default 20: 20 codes ×
#        trade+book = 40 registrations, within one app key's 41),
#        PER_CLIENT (default 5), WARM (s before the kill, default 15),
#        AFTER (s the run goes on after the kill, default 20),
#        STREAM_LEASE_TTL (default 6s), KEEP_LOGS (a directory for the output)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
kisfeed_workdir '*.json' '*.sse'

CLIENTS=${CLIENTS:-100}
NCODES=${CODES:-20}
PER_CLIENT=${PER_CLIENT:-5}
WARM=${WARM:-15}
AFTER=${AFTER:-20}
TTL=${STREAM_LEASE_TTL:-6s}
REDIS_DB=${REDIS_DB:-2}
NATS=${NATS_URL:-nats://127.0.0.1:4222}
MARKET="2026-11-27 10:00"
APP_KEY=replicas-app-key
APP_SECRET=replicas-app-secret

redis-cli -n "$REDIS_DB" ping >/dev/null || { echo "redis DB $REDIS_DB does not answer" >&2; exit 1; }
# A lease left by an earlier run would delay the first holder by a ttl.
redis-cli -n "$REDIS_DB" --scan --pattern 'kisfeed:lease:stream:*' | xargs -r redis-cli -n "$REDIS_DB" del >/dev/null

KISFEED_MARKET_TIME="$MARKET" "$KISFEED" emulator --addr 127.0.0.1:0 --app-key "$APP_KEY:$APP_SECRET" >emu.out 2>emu.err & PIDS+=($!)
EMU=$(listen_addr emu.out 20)

start_replica() { # name
	NATS_URL=$NATS REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB" KISFEED_REPLICA=$1 STREAM_LEASE_TTL=$TTL \
		KIS_BASE_URL=$EMU KIS_USE_REAL_SERVER=true KIS_APP_KEY=$APP_KEY KIS_APP_SECRET=$APP_SECRET \
		KIS_TOKEN_FILE="$WORK/$1-tokens.json" KIS_APPROVAL_FILE="$WORK/$1-approval.json" \
		LOG_FORMAT=json "$KISFEED" serve --addr 127.0.0.1:0 --access-log=false >"$1.out" 2>"$1.err" &
	PIDS+=($!)
	eval "PID_$1=$!"
}
start_replica r1
R1=$(listen_addr r1.out 20)
start_replica r2
R2=$(listen_addr r2.out 20)

holder_of() { # base URL → true/false
	curl -sf "$1/v1/status" | python3 -c 'import json,sys; print(str(json.load(sys.stdin)["stream"].get("replica",{}).get("holder",False)).lower())'
}
HOLDER=""
for _ in $(seq 200); do
	if [[ $(holder_of "$R1") == true ]]; then HOLDER=r1; break; fi
	if [[ $(holder_of "$R2") == true ]]; then HOLDER=r2; break; fi
	sleep 0.1
done
[[ -n $HOLDER ]] || { echo "no replica took the lease within 20 s" >&2; exit 1; }
echo "emulator $EMU (market from $MARKET KST); r1 $R1, r2 $R2; lease ttl $TTL; first holder: $HOLDER"
echo "consumers: $CLIENTS SSE per replica, $PER_CLIENT codes each of $NCODES (trade+book: $((NCODES * 2)) of the app key's 41 registrations)"
echo "redis: $(redis-cli -n "$REDIS_DB" --scan --pattern 'kisfeed:lease:stream:*' | while read -r k; do echo "$k = $(redis-cli -n "$REDIS_DB" get "$k")"; done)"

# The stats poller: every 100 ms, one JSON line per poll.
python3 - "$EMU" >stats.out 2>stats.err <<'PY' & POLLER=$!
import json, sys, time, urllib.request
url = sys.argv[1] + "/_emulator/stats"
while True:
    t = time.time()
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            print(json.dumps({"t": t, "ws": json.load(r).get("websocket", {})}), flush=True)
    except Exception as e:
        print(json.dumps({"t": t, "error": type(e).__name__}), flush=True)
    time.sleep(max(0, t + 0.1 - time.time()))
PY
PIDS+=("$POLLER")

# NCODES codes of the emulator's KOSPI master file for every consumer, the raw
# one included: one more code would need a 42nd registration and be refused.
curl -sf "$EMU/common/master/kospi_code.mst.zip" -o kospi.zip
unzip -p kospi.zip >kospi.mst
CODE_LIST=$(LC_ALL=C awk -v n="$NCODES" 'NR <= n { print substr($0, 1, 6) }' kospi.mst | paste -sd,) # awk reads it all: no SIGPIPE under pipefail
RAW_CODE=${CODE_LIST%%,*}

DURATION=$((WARM + AFTER))
for r in r1 r2; do
	url=$R1; [[ $r == r2 ]] && url=$R2
	timeout $((DURATION + 60)) "$KISFEED" loadtest stream --target "$url" --clients "$CLIENTS" --code-list "$CODE_LIST" \
		--per-client "$PER_CLIENT" --ramp 5s --duration "${DURATION}s" --json >"load-$r.json" 2>"load-$r.err" & PIDS+=($!)
	eval "LOAD_$r=$!"
	timeout $((DURATION + 10)) curl -sN "$url/v1/stream?codes=$RAW_CODE&kinds=trade,book" >"raw-$r.sse" 2>/dev/null & PIDS+=($!)
done

sleep "$WARM"
SURVIVOR=r2; SURV_URL=$R2; VICTIM_PID=$PID_r1
if [[ $HOLDER == r2 ]]; then SURVIVOR=r1; SURV_URL=$R1; VICTIM_PID=$PID_r2; fi
KILLED=$(date +%s.%N)
kill -9 "$VICTIM_PID"
TOOK=""
for _ in $(seq 300); do
	if [[ $(holder_of "$SURV_URL") == true ]]; then TOOK=$(date +%s.%N); break; fi
	sleep 0.1
done
echo "kill -9 $HOLDER at $(date -u -d "@$KILLED" +%T.%3N)"
if [[ -n $TOOK ]]; then
	echo "takeover: $SURVIVOR's /v1/status says holder $(python3 -c "print(f'{$TOOK - $KILLED:.2f}')") s after the kill (polled every 100 ms; bar: 10 s)"
else
	echo "takeover: $SURVIVOR did NOT take the lease within 30 s"
fi
python3 - "$SURVIVOR.err" "$KILLED" <<'PY' || true
import datetime, json, sys
for line in open(sys.argv[1]):
    if '"stream: holding the KIS sessions"' in line:
        rec = json.loads(line)
        at = datetime.datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).timestamp()
        print(f"takeover by its log: tenure began {at - float(sys.argv[2]):.2f} s after the kill (fence {rec['fence']}, epoch {rec['epoch']})")
PY
echo "redis: $(redis-cli -n "$REDIS_DB" --scan --pattern 'kisfeed:lease:stream:*' | while read -r k; do echo "$k = $(redis-cli -n "$REDIS_DB" get "$k")"; done)"

LOAD_RC=0
wait "$(eval echo "\$LOAD_$SURVIVOR")" || LOAD_RC=$?
kill "$POLLER" 2>/dev/null || true
curl -sf "$SURV_URL/v1/status" >status-survivor.json || true

python3 - "$SURVIVOR" "$HOLDER" "$LOAD_RC" "$CLIENTS" "$PER_CLIENT" "$KILLED" "$RAW_CODE" <<'PY'
import json, sys
surv, victim, rc, clients, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
killed, raw_code = float(sys.argv[6]), sys.argv[7]
polls = [json.loads(l) for l in open("stats.out") if l.strip()]
polls = [p["ws"] for p in polls if "ws" in p]
last = polls[-1] if polls else {}
per_key_now = max((max((a.get("sessions", 0) for a in p.get("per_app_key", {}).values()), default=0) for p in polls), default=0)
print(f"emulator: sessions_opened {last.get('sessions_opened')}, sessions_max_concurrent {last.get('sessions_max_concurrent')}, "
      f"max_sessions_per_app_key {last.get('max_sessions_per_app_key')}, opsp8996 {last.get('opsp8996')}; "
      f"polls {len(polls)}, most sessions on the app key in any poll {per_key_now}")
print(f"emulator: sessions dropped by reason {last.get('sessions_dropped_by_reason')}")
try:
    r = json.load(open(f"load-{surv}.json"))
except Exception as e:
    print(f"survivor's loadtest: no JSON ({e}); exit {rc}")
    sys.exit(0)
gaps = r.get("gaps") or {}
ids = r.get("ids") or {}
print(f"survivor {surv}'s {r['clients']} consumers ({r['connected']} connected, {per} codes each): loadtest exit {rc}")
print(f"  gap events {gaps} → {sum(gaps.values()) / max(r['connected'], 1):.2f} per consumer (expected {per}: one per code)")
print(f"  ids: duplicates {ids.get('duplicates')}, out of order {ids.get('out_of_order')}, epoch changes {ids.get('epoch_changes')} "
      f"(= consumers that got events of the new holder's epoch after the gap; want {r['connected']})")
print(f"  events {r.get('events')}, {r.get('events_per_s', 0):.0f}/s; delivery p50 {r['delivery_latency']['p50_ms']:.1f} ms, "
      f"p99 {r['delivery_latency']['p99_ms']:.1f} ms")
print(f"  disconnects {r.get('disconnects')}, error events {r.get('error_events')}")
try:
    v = json.load(open(f"load-{victim}.json"))
    print(f"killed {victim}'s consumers: {v['connected']} connected, disconnects {v.get('disconnects')}")
except Exception:
    print(f"killed {victim}'s consumers: loadtest gave no JSON (see load-{victim}.err)")
# The raw consumer on the survivor: the events around the gap.
frames, cur = [], {}
for line in open(f"raw-{surv}.sse"):
    line = line.rstrip("\n")
    if not line:
        if "event" in cur: frames.append(cur)  # a ": ping" comment alone is no frame
        cur = {}
        continue
    k, _, val = line.partition(": ")
    cur[k] = val
gi = [i for i, f in enumerate(frames) if f.get("event") == "gap"]
print(f"raw SSE consumer on {surv} ({raw_code} trades and books): {len(frames)} frames, gaps at {gi}")
if gi:
    g = gi[0]
    for f in frames[max(0, g - 2): g + 3]:
        print(f"  {f.get('event')} id={f.get('id', '-')} {f.get('data', '')[:110]}")
    after = [f for f in frames[g + 1:] if f.get("event") in ("trade", "book")]
    seen = [f["id"] for f in frames if "id" in f]
    print(f"  after the gap: {len(after)} events; duplicate ids in the whole stream: {len(seen) - len(set(seen))}")
    if after:
        import datetime
        first = json.loads(after[0]["data"])["received_at"]
        t = datetime.datetime.fromisoformat(first).timestamp()
        print(f"  first event after the gap read from KIS {t - killed:.2f} s after the kill (received_at {first})")
try:
    st = json.load(open("status-survivor.json"))["stream"]["replica"]
    print(f"survivor's /v1/status stream.replica: {json.dumps(st)}")
except Exception:
    pass
PY
