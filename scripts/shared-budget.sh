#!/usr/bin/env bash
# shared-budget.sh: three kisfeed processes share one KIS app key through
# Redis. It starts `kisfeed emulator --rate 18`, runs three
# `kisfeed bench shared` processes against it with the same app key and
# REDIS_URL, then prints the emulator's /_emulator/stats and checks that
# together they stayed within 18 requests in every 1-second window and
# that exactly one token was issued.
#
# Usage: scripts/shared-budget.sh [duration] [workers]
#   env: REDIS_URL (default redis://127.0.0.1:6379/0), KISFEED (binary;
#        default: built from this checkout), PORT (default: a free port),
#        RATE (default 18)
set -euo pipefail

DURATION=${1:-20s}
WORKERS=${2:-8}
RATE=${RATE:-18}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
EMU_PID=""
cleanup() {
	[[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "${KISFEED:-}" ]]; then
	KISFEED="$WORK/kisfeed"
	(cd "$ROOT" && go build -o "$KISFEED" ./cmd/kisfeed)
fi

# A fresh app key per run: its token and rate state in Redis start empty.
APP_KEY="shared-budget-$(date +%s)-$$"
APP_SECRET="shared-budget-secret"

"$KISFEED" emulator --rate "$RATE" --addr "127.0.0.1:${PORT:-0}" >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMU_PID=$!
for _ in $(seq 100); do
	grep -q '^listening on ' "$WORK/emulator.out" 2>/dev/null && break
	sleep 0.1
done
BASE=$(sed -n 's/^listening on //p' "$WORK/emulator.out")
if [[ -z "$BASE" ]]; then
	echo "emulator did not start:" >&2
	cat "$WORK/emulator.err" >&2
	exit 1
fi
echo "emulator at $BASE (rate $RATE/s); 3 processes × $WORKERS workers for $DURATION, REDIS_URL=$REDIS_URL"

for i in 1 2 3; do
	env -i PATH="$PATH" HOME="$WORK" XDG_CACHE_HOME="$WORK/cache$i" \
		ENABLE_KIS_API=true KIS_BASE_URL="$BASE" KIS_USE_REAL_SERVER=true \
		KIS_APP_KEY="$APP_KEY" KIS_APP_SECRET="$APP_SECRET" KIS_RATE_LIMIT="$RATE" \
		REDIS_URL="$REDIS_URL" LOG_LEVEL=warn \
		"$KISFEED" bench shared --duration "$DURATION" --workers "$WORKERS" >"$WORK/bench$i.out" 2>"$WORK/bench$i.err" &
	PIDS[$i]=$!
done
FAIL=0
for i in 1 2 3; do
	if ! wait "${PIDS[$i]}"; then
		echo "bench process $i failed:" >&2
		cat "$WORK/bench$i.err" >&2
		FAIL=1
	fi
	echo "--- process $i"
	cat "$WORK/bench$i.out"
done

STATS=$(curl -fsS "$BASE/_emulator/stats")
echo "--- emulator /_emulator/stats"
echo "$STATS" | python3 -c '
import json, sys
s = json.load(sys.stdin)
keep = ["requests", "tokens_issued", "token_requests", "token_rejections",
        "rate_limit_rejections", "max_requests_per_second_window"]
print(json.dumps({k: s.get(k) for k in keep}, indent=2))
for k, v in (s.get("per_app_key") or {}).items():
    print("per_app_key", k, json.dumps(v))
'
read -r MAXW TOKENS REJ <<<"$(echo "$STATS" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["max_requests_per_second_window"], s["tokens_issued"], s["rate_limit_rejections"])')"
echo "--- verdict"
echo "max requests in any 1 s window: $MAXW (limit $RATE)"
echo "tokens issued:                  $TOKENS (want 1)"
echo "rate-limit rejections:          $REJ"
if (( MAXW > ${RATE%.*} )) || (( TOKENS != 1 )) || (( FAIL != 0 )); then
	echo "FAIL"
	exit 1
fi
echo "PASS"
