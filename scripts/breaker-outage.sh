#!/usr/bin/env bash
# breaker-outage.sh: how fast the circuit breaker opens in an upstream
# outage under load (issue 13, item 3). It starts `kisfeed emulator`
# (real-server behaviour, 18 req/s) and `kisfeed serve` over it with
# CACHE_PRICE_TTL=5s BREAKER_DELAY=10s, runs `kisfeed loadtest` at 50 req/s
# over 100 codes for 40 s, and 10 s in resets every upstream connection for
# 20 s (POST /_emulator/outage?for=20s). It prints each breaker transition
# as seconds since the outage began, then loadtest's figures.
# Loopback only; every process is bounded by `timeout`.
#
# Usage: scripts/breaker-outage.sh
#   env: KISFEED (binary; default: built from this checkout)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "${KISFEED:-}" ]]; then
	KISFEED="$WORK/kisfeed"
	(cd "$ROOT" && go build -o "$KISFEED" ./cmd/kisfeed)
fi
cd "$WORK"

wait_line() { # file: wait up to 10 s for its "listening on" line
	for _ in $(seq 100); do grep -q 'listening on' "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "no 'listening on' line in $1" >&2; exit 1
}

timeout 90 "$KISFEED" emulator --addr 127.0.0.1:0 >emu.out 2>emu.err & PIDS+=($!)
wait_line emu.out
EMU=$(sed -n 's/listening on //p' emu.out)
KIS_BASE_URL=$EMU KIS_APP_KEY=demo-key KIS_APP_SECRET=demo-secret KIS_USE_REAL_SERVER=true \
	KIS_TOKEN_FILE=$WORK/tokens.json CACHE_PRICE_TTL=5s BREAKER_DELAY=10s LOG_FORMAT=json \
	timeout 90 "$KISFEED" serve --addr 127.0.0.1:0 >srv.out 2>srv.err & PIDS+=($!)
wait_line srv.out
SRV=$(sed -n 's/listening on //p' srv.out)

timeout 60 "$KISFEED" loadtest --target "$SRV" --rate 50 --codes 100 --duration 40s >load.out 2>&1 & LOAD=$!
sleep 10
T0=$(date +%s.%N)
curl -s -X POST "$EMU/_emulator/outage?for=20s" >/dev/null
wait "$LOAD" || true

python3 - "$T0" srv.err <<'PY'
import datetime, json, sys
t0 = float(sys.argv[1])
for line in open(sys.argv[2]):
    try:
        j = json.loads(line)
    except ValueError:
        continue
    if "circuit breaker" in j.get("msg", ""):
        t = datetime.datetime.fromisoformat(j["time"]).timestamp()
        print(f"{t - t0:+8.3f}s  {j['msg']}")
PY
cat load.out
