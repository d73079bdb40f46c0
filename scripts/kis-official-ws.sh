#!/usr/bin/env bash
# kis-official-ws.sh: points KIS's own WebSocket client — the official
# samples' kis_auth.KISWebSocket with domestic_stock_functions_ws.ccnl_krx
# and asking_price_krx (github.com/koreainvestment/open-trading-api,
# examples_user/) — at `kisfeed emulator`, REST and WebSocket base both at
# the emulator, and checks that it registers H0STCNT0 and H0STASP0, answers
# PINGPONG, and decodes 46-field trades and 59-field books (issue 9, bar 1).
#
# Nothing of that repository is part of kisfeed: the script copies the two
# sample files from a checkout you name into a temporary directory and runs
# them unmodified. scripts/kis_official_ws_harness.py only adapts Debian's
# module names (pycryptodome installs as Cryptodome; websockets 10.4 calls
# the client connection WebSocketClientProtocol).
#
# Usage: scripts/kis-official-ws.sh /path/to/open-trading-api
#   needs: Debian's python3 with python3-pandas python3-websockets
#          python3-pycryptodome python3-requests python3-yaml
#   env:   KISFEED (binary; default: built from this checkout)
#          PYTHON (default /usr/bin/python3)
set -euo pipefail

SAMPLES=${1:?usage: scripts/kis-official-ws.sh /path/to/open-trading-api}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
WORK=$(mktemp -d)
EMU_PID=
cleanup() {
	[[ -n "$EMU_PID" ]] && kill "$EMU_PID" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

for f in examples_user/kis_auth.py examples_user/domestic_stock/domestic_stock_functions_ws.py; do
	if [[ -f "$SAMPLES/$f" ]]; then
		cp "$SAMPLES/$f" "$WORK/"
	elif git -C "$SAMPLES" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$SAMPLES" show "HEAD:$f" >"$WORK/$(basename "$f")"
	else
		echo "no $f under $SAMPLES" >&2
		exit 2
	fi
done
cp "$ROOT/scripts/kis_official_ws_harness.py" "$WORK/"

if [[ -z "${KISFEED:-}" ]]; then
	KISFEED="$WORK/kisfeed"
	(cd "$ROOT" && go build -o "$KISFEED" ./cmd/kisfeed)
fi

# A weekday during KRX hours, so trades flow; --speed 10 makes them frequent.
KISFEED_MARKET_TIME="2026-11-27 10:00" "$KISFEED" emulator --addr 127.0.0.1:0 \
	--speed 10 --ping-interval 2s >"$WORK/emu.out" 2>"$WORK/emu.err" &
EMU_PID=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$WORK/emu.out" 2>/dev/null && break; sleep 0.1; done
BASE=$(sed -n 's/^listening on //p' "$WORK/emu.out")
[[ -n "$BASE" ]] || { echo "emulator did not start" >&2; cat "$WORK/emu.err" >&2; exit 1; }
WS=${BASE/http:/ws:}

mkdir -p "$WORK/home/KIS/config"
cat >"$WORK/home/KIS/config/kis_devlp.yaml" <<YAML
my_app: "PSOFFICIALSAMPLEAPPKEY00000000000A1"
my_sec: "OFFICIALSAMPLESECRET"
paper_app: "PSOFFICIALSAMPLEAPPKEY00000000000B2"
paper_sec: "OFFICIALSAMPLESECRET"
my_htsid: "tester"
my_acct_stock: "12345678"
my_acct_future: "12345678"
my_paper_stock: "12345678"
my_paper_future: "12345678"
my_prod: "01"
prod: "$BASE"
ops: "$WS"
vps: "$BASE"
vops: "$WS"
my_token: ""
my_agent: "kisfeed kis-official-ws.sh"
YAML

echo "== official sample client against $BASE (REST) and $WS/tryitout (WebSocket)"
(cd "$WORK" && HOME="$WORK/home" FRAMES=30 timeout 60 "$PYTHON" kis_official_ws_harness.py) \
	>"$WORK/client.out" 2>"$WORK/client.err" || {
	echo "the sample client failed" >&2
	tail -20 "$WORK/client.err" >&2
	exit 1
}
tail -1 "$WORK/client.out"
echo "== emulator's WebSocket stats"
curl -s "$BASE/_emulator/stats" | "$PYTHON" -c '
import json, sys
ws = json.load(sys.stdin)["websocket"]
keep = ("sessions_opened", "max_sessions_per_app_key", "replies_by_msg_cd", "records_by_tr",
        "pings_sent", "pongs_received", "ping_echoes_received", "opsp8996")
print(json.dumps({k: ws[k] for k in keep}))
ok = ws["replies_by_msg_cd"].get("OPSP0000", 0) >= 3 and ws["max_sessions_per_app_key"] == 1 \
     and ws["pongs_received"] + ws["ping_echoes_received"] >= 1 and ws["opsp8996"] == 0
sys.exit(0 if ok else 1)'
"$PYTHON" - "$WORK/client.out" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
cols = {x["tr_id"]: x["columns"] for x in r["last"]}
assert r["records_by_tr"].get("H0STCNT0") and r["records_by_tr"].get("H0STASP0"), r
assert all(cols.get(t, n) == n for t, n in (("H0STCNT0", 46), ("H0STASP0", 59))), cols
print("PASS: registered H0STCNT0 + H0STASP0, answered PINGPONG, decoded", cols)
PY
