#!/usr/bin/env bash
# faults.sh: the fault matrix of issue 13, rerunnable on one machine.
#
# It builds kisfeed from this checkout, then runs each scenario against its own
# `kisfeed emulator`, its own redis-server (loopback, ports 16390-16399) and
# its own PostgreSQL database (kf_faults_<scenario>_<pid> on 127.0.0.1:5432,
# dropped at the end), and prints ONE markdown table on stdout:
#
#   scenario | injected | attempted | succeeded | errors by kind |
#   lost/duplicated rows vs a clean reference | crash | recovery time
#
# Progress goes to stderr; every process's output is kept under the work
# directory (printed at the end with --keep, removed otherwise). Every step is
# bounded with `timeout`; an EXIT trap stops every process this script started
# (by its own pid) and drops every database it created, also on failure.
# A scenario that cannot be measured with the binary at hand says so in its
# row instead of failing the script.
#
# Usage: scripts/faults.sh [--quick] [--keep] [scenario...]
#   scenarios (name or letter): a|outage b|redis c|pgkill d|sigkill
#     e|transient f|ratelimit g|tokens h|corrupt i|flood j|secrets
#   (default: all, in that order; about 4 minutes, --quick about 3)
#   --quick  shorter loads and waits (same faults, fewer seconds around them)
#   --keep   keep the work directory with every log, JSON summary and sample
# Environment:
#   FAULTS_PG     PostgreSQL server URL without a database
#                 (default postgres://postgres@127.0.0.1:5432)
#   FAULTS_DATE   the past trading day ingested (default 2026-11-27)
#   KISFEED       use this binary instead of building one
set -uo pipefail

QUICK=0
KEEP=0
SCEN=()
for a in "$@"; do
	case "$a" in
	--quick) QUICK=1 ;;
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
		exit 0
		;;
	a | outage) SCEN+=(outage) ;;
	b | redis) SCEN+=(redis) ;;
	c | pgkill) SCEN+=(pgkill) ;;
	d | sigkill) SCEN+=(sigkill) ;;
	e | transient) SCEN+=(transient) ;;
	f | ratelimit) SCEN+=(ratelimit) ;;
	g | tokens) SCEN+=(tokens) ;;
	h | corrupt) SCEN+=(corrupt) ;;
	i | flood) SCEN+=(flood) ;;
	j | secrets) SCEN+=(secrets) ;;
	*)
		echo "faults.sh: unknown argument $a (want --quick, --keep or a scenario: a-j or outage redis pgkill sigkill transient ratelimit tokens corrupt flood secrets)" >&2
		exit 2
		;;
	esac
done
((${#SCEN[@]})) || SCEN=(outage redis pgkill sigkill transient ratelimit tokens corrupt flood secrets)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kisfeed-faults.XXXXXX")
PG=${FAULTS_PG:-postgres://postgres@127.0.0.1:5432}
DATE=${FAULTS_DATE:-2026-11-27}
REDIS_PORT_BASE=16390
DBS=()
ROWS=()

log() { printf '[faults %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now_ms() { date +%s%3N; }
# secs MS: milliseconds as seconds with one decimal.
secs() { awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }'; }

# stop_all: every background process of this script still running (bash's
# own job table, so a pid already reaped and reused is never signalled).
stop_all() {
	local p live
	live=$(jobs -rp)
	for p in $live; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $live; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.2
		done
		killhard "$p"
		wait "$p" 2>/dev/null
	done
}
# killhard PID: SIGKILL PID and the processes it started (timeout does not
# pass SIGKILL on to its command).
killhard() {
	local c
	for c in $(pgrep -P "$1"); do kill -KILL "$c" 2>/dev/null; done
	kill -KILL "$1" 2>/dev/null
}
cleanup() {
	stop_all
	for d in "${DBS[@]}"; do
		timeout 20 psql "$PG/postgres?sslmode=disable" -qAtc "drop database if exists $d with (force)" >/dev/null 2>&1 ||
			echo "faults.sh: could not drop database $d" >&2
	done
	if ((KEEP)); then
		echo "faults.sh: logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bg SECONDS CMD...: start CMD in the background bounded by timeout; the pid
# (timeout's, which forwards signals to CMD) is in BG.
bg() {
	local t=$1
	shift
	timeout -k 5 "$t" "$@" &
	BG=$!
}
# run SECONDS CMD...: CMD in the foreground, bounded, but waited for with
# `wait` so that a signal to this script stops it at once (via the trap).
run() {
	bg "$@"
	wait "$BG"
}
# child PID: the process timeout runs (for SIGKILL and /proc figures).
child() {
	local c
	for _ in $(seq 50); do
		c=$(pgrep -P "$1" | head -n1)
		[[ -n "$c" ]] && { echo "$c"; return; }
		sleep 0.1
	done
}
# stop PID: SIGTERM, wait up to 25 s; the exit status is in STOPPED_RC.
stop() {
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 125); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.2
	done
	killhard "$1"
	wait "$1" 2>/dev/null
	STOPPED_RC=$?
}
# listening FILE SECONDS: the URL a kisfeed process printed ("listening on URL").
listening() {
	local n=$(($2 * 10))
	for _ in $(seq "$n"); do
		if grep -q '^listening on ' "$1" 2>/dev/null; then
			sed -n 's/^listening on //p' "$1" | head -n1
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# The environment of every kisfeed client: nothing inherited (no .env, no
# KIS_* of the caller), its own HOME so tokens are cached per run.
APP_KEY="kf-faults-key-$$"
APP_SECRET="kf-faults-secret-$$"
# kfcmd DIR EMU_URL [VAR=VALUE...] -- ARGS...: the command line of one
# kisfeed client run in DIR, in KFCMD (run it as "${KFCMD[@]}", or under
# timeout/bg).
kfcmd() {
	local dir=$1 emu=$2
	shift 2
	local envs=()
	while (($#)) && [[ "$1" != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	mkdir -p "$dir/home"
	KFCMD=(env -i -C "$dir" PATH="$PATH" HOME="$dir/home" XDG_CACHE_HOME="$dir/home/.cache" TZ=UTC
		ENABLE_KIS_API=true KIS_BASE_URL="$emu" KIS_APP_KEY="$APP_KEY" KIS_APP_SECRET="$APP_SECRET"
		KIS_USE_REAL_SERVER=true LOG_LEVEL=warn "${envs[@]}" "$KF" "$@")
}

# emulator DIR [FLAGS...]: start a standalone emulator; its URL is in EMU,
# its timeout pid in EMU_PID. Token reissue is not throttled (--token-interval
# 0) so that a scenario never waits out KIS's one-token-a-minute rule.
emulator() {
	local dir=$1
	shift
	mkdir -p "$dir"
	bg 900 "$KF" emulator --addr 127.0.0.1:0 --token-interval 0 "$@" >"$dir/emulator.out" 2>"$dir/emulator.err"
	EMU_PID=$BG
	EMU=$(listening "$dir/emulator.out" 15) || {
		log "emulator did not start: $(tail -n3 "$dir/emulator.err")"
		return 1
	}
}
emu_stats() { timeout 10 curl -fsS "$EMU/_emulator/stats"; }

# serve DIR [VAR=VALUE...]: start kisfeed serve against $EMU; URL in SRV,
# timeout pid in SRV_PID.
serve() {
	local dir=$1
	shift
	kfcmd "$dir" "$EMU" "$@" -- serve --addr 127.0.0.1:0
	bg 900 "${KFCMD[@]}" >"$dir/serve.out" 2>"$dir/serve.err"
	SRV_PID=$BG
	SRV=$(listening "$dir/serve.out" 20) || {
		log "serve did not start: $(tail -n3 "$dir/serve.err")"
		return 1
	}
}
# serve_pid: the kisfeed serve process itself (for RSS).
serve_pid() { child "$SRV_PID"; }
rss_mb() { awk '/^VmRSS/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
metric() { # metric URL REGEX: sum of the samples whose line matches REGEX
	timeout 5 curl -fsS "$1/metrics" 2>/dev/null | awk -v re="$2" '$0 !~ /^#/ && $0 ~ re { s += $NF } END { printf "%d", s }'
}

# newdb NAME: create kf_faults_NAME_<pid>; its URL in DBURL.
newdb() {
	local d="kf_faults_${1}_$$"
	timeout 20 psql "$PG/postgres?sslmode=disable" -qAtc "drop database if exists $d with (force)" -c "create database $d" >/dev/null 2>&1 || return 1
	DBS+=("$d")
	DB=$d
	DBURL="$PG/$d?sslmode=disable"
}
q() { timeout 20 psql "$DBURL" -qAtc "$1" 2>/dev/null; }
dump_rows() { # dump_rows FILE: the stored bars, ordered, one per line
	timeout 60 psql "$DBURL" -qAt -F'|' -c "select code, trade_date, open, high, low, close, volume, value from daily_prices order by code, trade_date" >"$1" 2>/dev/null
}
# compare REF TEST [CODES_FILE]: "lost L, dup D, damaged X, extra E" against
# the reference (restricted to CODES_FILE's codes when given).
compare() {
	local codes=${3:-/dev/null}
	awk -F'|' -v usecodes="${3:+1}" '
		FILENAME == ARGV[1] { want[$1] = 1; next }
		FILENAME == ARGV[2] { if (!usecodes || ($1 in want)) ref[$1 "|" $2] = $0; next }
		{ k = $1 "|" $2; if (seen[k]++) dup++; else if (!(k in ref)) extra++; else if (ref[k] != $0) bad++ }
		END {
			for (k in ref) if (!(k in seen)) lost++
			printf "%d lost, %d dup, %d damaged, %d extra", lost, dup, bad, extra
			if (lost + dup + bad + extra == 0) printf " (= reference)"
		}' "$codes" "$1" "$2"
}
REF_ROWS=""
REF_WHY=""
# ensure_ref: one clean ingest of $DATE (no faults, no rate limit) into its
# own database; its ordered rows are the reference every DB scenario compares with.
ensure_ref() {
	[[ -n "$REF_ROWS" ]] && return 0
	local dir=$WORK/reference
	mkdir -p "$dir"
	log "reference: clean ingest of $DATE"
	REF_WHY="the emulator did not start"
	emulator "$dir" --rate 0 || return 1
	REF_WHY="cannot create a database on $PG"
	newdb ref || return 1
	REF_WHY="the clean reference ingest failed"
	kfcmd "$dir" "$EMU" KIS_RATE_LIMIT=1000 -- ingest --date "$DATE" --db "$DBURL" --workers 16 --json
	run 120 "${KFCMD[@]}" >"$dir/ingest.json" 2>"$dir/ingest.err"
	local rc=$?
	stop "$EMU_PID"
	dump_rows "$dir/rows"
	if ((rc != 0)) || [[ ! -s "$dir/rows" ]]; then
		log "reference ingest failed (exit $rc): $(tail -n2 "$dir/ingest.err")"
		return 1
	fi
	REF_ROWS=$dir/rows
	log "reference: $(wc -l <"$REF_ROWS") rows, md5 $(md5sum <"$REF_ROWS" | cut -c1-12)"
}
ingest() { # ingest DIR NAME SECONDS [VAR=VALUE...] -- ARGS...: sets IRC, I_JSON, I_MS
	local dir=$1 name=$2 t=$3
	shift 3
	local envs=()
	while (($#)) && [[ "$1" != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	local t0
	t0=$(now_ms)
	kfcmd "$dir" "$EMU" "${envs[@]}" -- ingest --date "$DATE" --json "$@"
	run "$t" "${KFCMD[@]}" >"$dir/$name.json" 2>"$dir/$name.err"
	IRC=$?
	I_MS=$(($(now_ms) - t0))
	I_JSON=$dir/$name.json
}
j() { jq -r "$1" "$I_JSON" 2>/dev/null || echo "?"; }
crash() { # crash FILES...: "no", or what panicked
	local hit
	hit=$(grep -lE '^panic:|^fatal error:|SIGSEGV|goroutine [0-9]+ \[running\]' "$@" 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
	[[ -z "$hit" ]] && echo "no" || echo "**yes**: panic in ${hit% }"
}
row() { ROWS+=("| $(printf '%s | ' "$@")"); }
cell() { printf '%s' "$*" | tr '\n|' ' /'; }
statuses() { # statuses LOADTEST_JSON: the non-200 answers, "503: n, 0: m" or "no other status"
	jq -r '(.statuses // {}) | to_entries | map(select(.key != "200")) | map("\(.key): \(.value)") | join(", ") | if . == "" then "no other status" else . end' "$1" 2>/dev/null
}

# ref_scenario DIR LABEL: makes DIR and the reference; without a reference
# it adds LABEL's "not measured" row and fails (the scenario then returns 0).
ref_scenario() {
	mkdir -p "$1"
	ensure_ref && return 0
	row "$2" "" "" "not measured: no reference ($REF_WHY)" "" "" "" ""
	return 1
}
# collect DIR: after an ingest, the emulator's stats (DIR/stats.json) and the
# stored rows (DIR/rows).
collect() {
	emu_stats >"$1/stats.json"
	dump_rows "$1/rows"
}
# ran RC MS [MORE]: the outcome cell of an ingest: exit code, status, rows
# written and time, then MORE.
ran() { cell "exit $1, status $(j .status); $(j .written) written in $(secs "$2")$3"; }
# matched DIR [CODES] [MORE]: the cell comparing DIR/rows with the reference
# (over CODES when given), then MORE.
matched() { cell "$(compare "$REF_ROWS" "$1/rows" ${2:+"$2"})$3"; }

# loadtest DIR SECONDS RATE DURATION CODES: starts the load generator
# against serve in the background (its pid in BG), JSON in DIR/loadtest.json.
loadtest() {
	bg "$2" "$KF" loadtest --target "$SRV" --rate "$3" --duration "$4" --codes "$5" --json >"$1/loadtest.json" 2>"$1/loadtest.err"
}
# sampler END_MS FN: until END_MS (epoch ms), every 200 ms, a line of the
# time and what FN prints.
sampler() {
	while (($(date +%s%3N) < $1)); do
		echo "$(date +%s%3N) $($2)"
		sleep 0.2
	done
}
readyz_code() { timeout 2 curl -s -o /dev/null -w '%{http_code}' "$SRV/readyz"; }
# breaker_ready: the breaker state serve's /metrics shows, and /readyz's code.
breaker_ready() {
	local st
	st=$(timeout 2 curl -fsS "$SRV/metrics" 2>/dev/null | awk '/^kisfeed_breaker_state[{]/ && $NF == 1 { sub(/.*state="/, ""); sub(/".*/, ""); print; exit }')
	echo "${st:-?} $(readyz_code)"
}
# quote_probe: one quote's status and X-Cache, "200/HIT" ("000/-" for none).
quote_probe() {
	timeout 3 curl -s -m 2 -o /dev/null -D - "$SRV/v1/stocks/005930/quote" | tr -d '\r' | awk '/^HTTP/ { s = $2 } tolower($1) == "x-cache:" { x = $2 } END { print (s == "" ? "000" : s) "/" (x == "" ? "-" : x) }'
}

# ---------------------------------------------------------------- scenarios

# (a) 20 s upstream outage under 50 req/s of serve load over 100 codes.
sc_outage() {
	local dir=$WORK/outage pre=15 out=20 post=20
	((QUICK)) && pre=8 post=12
	local dur=$((pre + out + post))
	mkdir -p "$dir"
	emulator "$dir" --rate 18 || return 1
	serve "$dir" CACHE_PRICE_TTL=5s BREAKER_DELAY=10s KIS_RATE_LIMIT=18 || return 1
	log "outage: ${dur}s of 50 req/s over 100 codes, outage ${out}s from +${pre}s"
	loadtest "$dir" $((dur + 60)) 50 "${dur}s" 100
	local lt=$BG t0
	t0=$(now_ms)
	# Samplers, each every 200 ms: the breaker gauge and /readyz; and one
	# quote's status and X-Cache (apart, so a slow quote cannot hide the breaker).
	sampler $((t0 + (dur + 5) * 1000)) breaker_ready >"$dir/samples" &
	local sampler=$!
	sampler $((t0 + (dur + 5) * 1000)) quote_probe >"$dir/probe" &
	local prober=$!
	sleep "$pre"
	local os oe
	os=$(now_ms)
	timeout 5 curl -fsS -X POST "$EMU/_emulator/outage?for=${out}s" >/dev/null || log "outage: admin call failed"
	oe=$((os + out * 1000))
	wait "$lt"
	local ltrc=$?
	wait "$sampler" 2>/dev/null
	wait "$prober" 2>/dev/null
	local open fresh halfready
	open=$(awk -v s="$os" -v e="$oe" '$1 >= s && $1 <= e && $2 == "open" { print $1 - s; exit }' "$dir/samples")
	fresh=$(awk -v e="$oe" '$1 >= e && ($2 == "200/HIT" || $2 == "200/MISS") { print $1 - e; exit }' "$dir/probe")
	halfready=$(awk '$2 == "half-open" && $3 == 200 { n++ } END { print n + 0 }' "$dir/samples")
	stop "$SRV_PID"
	local src=$STOPPED_RC
	local L=$dir/loadtest.json
	if [[ ! -s "$L" ]] || ! jq -e .scheduled "$L" >/dev/null 2>&1; then
		row "a. outage" "emulator outage ${out}s" "50 req/s" "not measured: loadtest gave no JSON (exit $ltrc)" "" "n/a" "$(crash "$dir"/*.err)" ""
		return
	fi
	local ok stale
	ok=$(jq -r '.statuses["200"] // 0' "$L")
	stale=$(jq -r '.x_cache.STALE // 0' "$L")
	row "a. upstream outage under load" \
		"$(cell "emulator resets every request for ${out}s (POST /_emulator/outage) at +${pre}s; serve CACHE_PRICE_TTL=5s BREAKER_DELAY=10s")" \
		"$(cell "$(jq -r .scheduled "$L") quotes, 50 req/s, 100 codes, ${dur}s")" \
		"$(cell "$ok × 200 ($((ok - stale)) fresh, $stale stale); p95 $(jq -r '.p95_ms|floor' "$L") ms, max $(jq -r '.max_ms|floor' "$L") ms")" \
		"$(cell "$(statuses "$L"); readyz 200 while half-open: $halfready samples")" \
		"n/a (no rows)" \
		"$(crash "$dir"/*.err) (serve exit $src on SIGTERM)" \
		"$(cell "breaker open $([[ -n "$open" ]] && secs "$open" || echo 'never') into the outage; fresh data $([[ -n "$fresh" ]] && secs "$fresh" || echo 'never') after its end")"
}

# (b) Redis killed mid-load and restarted.
sc_redis() {
	local dir=$WORK/redis pre=10 down=10 post=15 port=$((REDIS_PORT_BASE + 1))
	((QUICK)) && pre=6 down=8 post=8
	local dur=$((pre + down + post))
	mkdir -p "$dir/redis"
	redis_start() {
		bg 900 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/redis" >>"$dir/redis.log" 2>&1
		REDIS_PID=$BG
		for _ in $(seq 50); do
			timeout 2 redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
			sleep 0.1
		done
		return 1
	}
	redis_start || { row "b. Redis killed" "" "" "not measured: redis-server did not start on 127.0.0.1:$port" "" "" "" ""; return; }
	emulator "$dir" --rate 18 || return 1
	serve "$dir" REDIS_URL="redis://127.0.0.1:$port/0" CACHE_PRICE_TTL=5s KIS_RATE_LIMIT=18 || return 1
	log "redis: ${dur}s of 50 req/s; redis-server SIGKILLed at +${pre}s, restarted ${down}s later"
	loadtest "$dir" $((dur + 60)) 50 "${dur}s" 100
	local lt=$BG t0
	t0=$(now_ms)
	sampler $((t0 + (dur + 3) * 1000)) readyz_code >"$dir/samples" &
	local sampler=$!
	sleep "$pre"
	local kill_ms up_ms
	kill_ms=$(now_ms)
	kill -KILL "$(child "$REDIS_PID")" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	sleep "$down"
	up_ms=$(now_ms)
	redis_start || log "redis: restart failed"
	wait "$lt"
	wait "$sampler" 2>/dev/null
	local keys notready ready
	keys=$(timeout 2 redis-cli -p "$port" dbsize 2>/dev/null)
	notready=$(awk -v k="$kill_ms" '$1 >= k && $2 != 200 { print $1 - k; exit }' "$dir/samples")
	ready=$(awk -v u="$up_ms" '$1 >= u && $2 == 200 { print $1 - u; exit }' "$dir/samples")
	stop "$SRV_PID"
	local src=$STOPPED_RC L=$dir/loadtest.json
	jq -e .scheduled "$L" >/dev/null 2>&1 || { row "b. Redis killed" "" "" "not measured: loadtest gave no JSON" "" "" "$(crash "$dir"/*.err)" ""; return; }
	row "b. Redis killed mid-load" \
		"$(cell "serve with REDIS_URL on its own redis-server; SIGKILL at +${pre}s, restarted after ${down}s (empty)")" \
		"$(cell "$(jq -r .scheduled "$L") quotes, 50 req/s, 100 codes, ${dur}s")" \
		"$(cell "$(jq -r '.statuses["200"] // 0' "$L") × 200 ($(jq -r '.x_cache.STALE // 0' "$L") stale); p95 $(jq -r '.p95_ms|floor' "$L") ms, max $(jq -r '.max_ms|floor' "$L") ms")" \
		"$(cell "$(statuses "$L"); /readyz not ready $([[ -n "$notready" ]] && secs "$notready" || echo 'never') after the kill")" \
		"n/a (no rows)" \
		"$(crash "$dir"/*.err) (serve exit $src on SIGTERM)" \
		"$(cell "/readyz 200 again $([[ -n "$ready" ]] && secs "$ready" || echo 'never') after the restart; $keys keys back in Redis at the end")"
}

# (c) PostgreSQL: the ingest's connections terminated twice while it writes.
sc_pgkill() {
	local dir=$WORK/pgkill rate=200
	ref_scenario "$dir" "c. PostgreSQL killed" || return 0
	emulator "$dir" --rate 0 || return 1
	newdb pgkill || { row "c. PostgreSQL killed" "" "" "not measured: cannot create a database on $PG" "" "" "" ""; return; }
	log "pgkill: ingest at $rate req/s; terminating the db's connections twice while one writes daily_prices"
	# Polls pg_stat_activity every 5 ms (bounded: 8,000 polls, 45 s) and, at
	# a moment a connection is busy writing daily_prices (COPY into the
	# staging table or the upsert), terminates every connection of the
	# database but its own; twice, at least 1 s apart.
	PGAPPNAME=kf_faults_killer bg 45 psql "$DBURL" -qAt -v ON_ERROR_STOP=1 -c "
DO \$\$
DECLARE kills int := 0; n int; last timestamptz := clock_timestamp() - interval '1 hour'; i int := 0;
BEGIN
  WHILE kills < 2 AND i < 8000 LOOP
    i := i + 1;
    PERFORM pg_stat_clear_snapshot();
    IF clock_timestamp() - last > interval '1 second' AND EXISTS (
        SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND state <> 'idle' AND query ~* '(copy|insert into) +\"?daily_prices') THEN
      SELECT count(*) INTO n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()) t;
      kills := kills + 1;
      last := clock_timestamp();
      RAISE NOTICE 'kill % terminated % connections', kills, n;
    END IF;
    PERFORM pg_sleep(0.005);
  END LOOP;
  RAISE NOTICE 'kills=%', kills;
END \$\$;" >"$dir/killer.out" 2>"$dir/killer.err"
	local killer=$BG
	sleep 0.3
	ingest "$dir" ingest 90 KIS_RATE_LIMIT=$rate -- --db "$DBURL"
	local rc=$IRC ms=$I_MS
	# The run is over: a second kill that never came will not come now.
	sleep 1
	kill -TERM "$killer" 2>/dev/null
	wait "$killer" 2>/dev/null
	q "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'kf_faults_killer'" >/dev/null
	local kills
	kills=$(grep -c 'terminated .* connections' "$dir/killer.err")
	dump_rows "$dir/rows"
	local cmp
	cmp=$(compare "$REF_ROWS" "$dir/rows")
	local universe status written errtxt tally
	universe=$(j .universe) status=$(j .status) written=$(j .written)
	errtxt=$(j '.error // "no error"' | cut -c1-160)
	tally="failed $(j .failed), incomplete $(j .incomplete), pending $(j .pending)"
	# Recovery: one plain rerun.
	ingest "$dir" rerun 90 KIS_RATE_LIMIT=1000 -- --db "$DBURL"
	dump_rows "$dir/rows.rerun"
	row "c. PostgreSQL connection killed twice mid-ingest" \
		"$(cell "pg_terminate_backend on every connection of the db while one writes daily_prices: ${kills:-?} of 2 done")" \
		"$(cell "$universe codes, $DATE, candles path, $rate req/s")" \
		"$(cell "exit $rc, status $status; $written rows written")" \
		"$(cell "$errtxt; summary: $tally")" \
		"$(cell "run: $cmp; after a rerun (exit $IRC): $(compare "$REF_ROWS" "$dir/rows.rerun")")" \
		"$(crash "$dir"/*.err)" \
		"$(cell "run took $(secs "$ms"); rerun $(secs "$I_MS")")"
	stop "$EMU_PID"
}

# (d) SIGKILL mid-ingest, then a rerun.
sc_sigkill() {
	local dir=$WORK/sigkill rate=200
	ref_scenario "$dir" "d. SIGKILL mid-ingest" || return 0
	emulator "$dir" --rate 0 || return 1
	newdb sigkill || { row "d. SIGKILL mid-ingest" "" "" "not measured: cannot create a database" "" "" "" ""; return; }
	log "sigkill: ingest at $rate req/s, SIGKILL once ≥ 1,000 rows are stored"
	kfcmd "$dir" "$EMU" KIS_RATE_LIMIT=$rate -- ingest --date "$DATE" --json --db "$DBURL"
	bg 90 "${KFCMD[@]}" >"$dir/ingest.json" 2>"$dir/ingest.err"
	local ing=$BG n=0 ip
	for _ in $(seq 300); do
		n=$(q "select count(*) from daily_prices" || echo 0)
		((${n:-0} >= 1000)) && break
		sleep 0.1
	done
	ip=$(child "$ing") # timeout → env, which became kisfeed
	local killed="not killed (finished first?)"
	if [[ -n "$ip" ]] && kill -KILL "$ip" 2>/dev/null; then killed="SIGKILL with $n rows stored"; fi
	wait "$ing" 2>/dev/null
	local rc=$?
	local running_after_kill
	running_after_kill=$(q "select count(*) from ingestion_runs where status = 'running'")
	ingest "$dir" rerun 90 KIS_RATE_LIMIT=1000 -- --db "$DBURL"
	local rrc=$IRC rms=$I_MS
	kfcmd "$dir" "$EMU" -- verify --date "$DATE" --db "$DBURL" --sample 20 --json
	run 60 "${KFCMD[@]}" >"$dir/verify.json" 2>"$dir/verify.err"
	local vrc=$?
	dump_rows "$dir/rows"
	local running statuses_
	running=$(q "select count(*) from ingestion_runs where status = 'running'")
	statuses_=$(q "select string_agg(id || ':' || status, ', ' order by id) from ingestion_runs")
	row "d. SIGKILL mid-ingest, then rerun" \
		"$(cell "$killed")" \
		"$(cell "$(j .universe) codes, $DATE; rerun of the same day")" \
		"$(cell "killed run exit $rc; rerun exit $rrc ($(j .skipped) skipped, $(j .written) written); verify exit $vrc")" \
		"$(cell "runs left 'running': $running_after_kill after the kill, $running after rerun + verify (runs: $statuses_)")" \
		"$(matched "$dir")" \
		"$(crash "$dir"/rerun.err "$dir"/verify.err)" \
		"$(cell "rerun $(secs "$rms")")"
	stop "$EMU_PID"
}

# fault_ingest NAME SPEC: the whole-market ingest of scenarios e and h
# against an emulator injecting the faults SPEC, into a fresh database;
# leaves the emulator's stats in $WORK/NAME/stats.json, the stored rows in
# $WORK/NAME/rows, and the exit code and time in IRC and I_MS.
fault_ingest() {
	local name=$1 spec=$2 dir=$WORK/$1
	emulator "$dir" --rate 0 --fault "$spec" || return 1
	newdb "$name" || return 1
	log "$name: ingest with --fault $spec"
	ingest "$dir" ingest 120 KIS_RATE_LIMIT=300 -- --db "$DBURL"
	collect "$dir"
}

sc_transient() {
	local dir=$WORK/transient spec="error=0.05,reset=0.02,seed=7"
	ref_scenario "$dir" "e. transient 500s/resets" || return 0
	fault_ingest transient "$spec" || return 1
	local rc=$IRC ms=$I_MS
	row "e. transient 500s and resets under ingest" \
		"$(cell "emulator --fault $spec: $(jq -r '.faults_injected | to_entries | map("\(.value) \(.key)") | join(", ")' "$dir/stats.json")")" \
		"$(cell "$(j .universe) codes, $DATE, 300 req/s")" \
		"$(ran "$rc" "$ms")" \
		"$(cell "failed $(j .failed), incomplete $(j .incomplete); client retries $(j .retries), requests $(j .requests)")" \
		"$(matched "$dir")" \
		"$(crash "$dir"/*.err)" \
		"n/a (retries inside the run)"
	stop "$EMU_PID"
}

# (f) the server silently enforces 12 req/s while the client paces at 18.
sc_ratelimit() {
	local dir=$WORK/ratelimit n=300
	((QUICK)) && n=150
	ref_scenario "$dir" "f. lowered rate limit" || return 0
	cut -d'|' -f1 "$REF_ROWS" | head -n "$n" >"$dir/codes"
	emulator "$dir" --rate 12 || return 1
	newdb ratelimit || return 1
	log "ratelimit: $n codes, emulator --rate 12, client KIS_RATE_LIMIT=18"
	ingest "$dir" ingest 120 KIS_RATE_LIMIT=18 -- --db "$DBURL" --codes "$(paste -sd, "$dir/codes")"
	local rc=$IRC ms=$I_MS
	collect "$dir"
	row "f. rate limit silently lowered" \
		"$(cell "emulator --rate 12 while the client paces at KIS_RATE_LIMIT=18: $(jq -r .rate_limit_rejections "$dir/stats.json") EGW00201 sent")" \
		"$(cell "$n codes, $DATE")" \
		"$(ran "$rc" "$ms" " ($(j .requests) requests, max $(jq -r .max_requests_per_second_window "$dir/stats.json") in any 1 s)")" \
		"$(cell "failed $(j .failed); client saw $(j .rate_limited) EGW00201, retries $(j .retries)")" \
		"$(matched "$dir" "$dir/codes")" \
		"$(crash "$dir"/*.err)" \
		"n/a (absorbed by retries and the pacer)"
	stop "$EMU_PID"
}

# (g) every token expired mid-run. KIS issues one token a minute per app
# key and the client keeps to that, so the run starts with a token issued
# (the stored issued_at moved) two minutes ago, as a day-old token would be;
# it is expired once, 4 s into the run.
sc_tokens() {
	local dir=$WORK/tokens rate=200
	ref_scenario "$dir" "g. tokens expired" || return 0
	emulator "$dir" --rate 0 || return 1
	newdb tokens || return 1
	kfcmd "$dir" "$EMU" -- token
	run 60 "${KFCMD[@]}" >"$dir/token.out" 2>"$dir/token.err"
	local tf=$dir/home/.cache/kisfeed/tokens.json backdated="no"
	if [[ -s "$tf" ]] && jq --arg t "$(date -u -d '-2 min' +%Y-%m-%dT%H:%M:%SZ)" 'map_values(.issued_at = $t)' "$tf" >"$tf.new" 2>/dev/null; then
		mv "$tf.new" "$tf" && backdated="yes"
	fi
	log "tokens: ingest at $rate req/s; POST /_emulator/expire-tokens at +4 s (stored token backdated: $backdated)"
	(
		sleep 4
		timeout 5 curl -fsS -X POST "$EMU/_emulator/expire-tokens" >/dev/null && echo "expired at $(date +%s%3N)"
	) >"$dir/expire.out" 2>&1 &
	local ex=$!
	ingest "$dir" ingest 120 KIS_RATE_LIMIT=$rate -- --db "$DBURL"
	local rc=$IRC ms=$I_MS
	wait "$ex" 2>/dev/null
	collect "$dir"
	row "g. tokens expired mid-run" \
		"$(cell "POST /_emulator/expire-tokens $(grep -c expired "$dir/expire.out") time 4 s into the run (token issued 2 min before: $backdated)")" \
		"$(cell "$(j .universe) codes, $DATE, $rate req/s")" \
		"$(ran "$rc" "$ms")" \
		"$(cell "failed $(j .failed); emulator: $(jq -r .tokens_issued "$dir/stats.json") tokens issued in all, answers $(jq -r '.responses_by_msg_cd | to_entries | map(select(.key != "MCA00000" and .key != "")) | map("\(.key) \(.value)") | join(", ")' "$dir/stats.json")")" \
		"$(matched "$dir")" \
		"$(crash "$dir"/*.err)" \
		"$(cell "run $(secs "$ms") (a clean run at $rate req/s: about 13 s)")"
	stop "$EMU_PID"
}

# (h) corrupt numeric fields.
sc_corrupt() {
	local dir=$WORK/corrupt spec="corrupt=0.02,seed=3"
	ref_scenario "$dir" "h. corrupt fields" || return 0
	fault_ingest corrupt "$spec" || return 1
	local rc=$IRC ms=$I_MS
	local blocks rej
	blocks=$(jq -r '[.corrupted[].block | sub("\\[[0-9]+\\]"; "[]")] | group_by(.) | map("\(length) in \(.[0])") | join(", ")' "$dir/stats.json")
	rej=$(q "select count(*) from rejected_bars")
	row "h. corrupt fields" \
		"$(cell "emulator --fault $spec: $(jq -r .corrupted_responses "$dir/stats.json") responses corrupted (${blocks:-none})")" \
		"$(cell "$(j .universe) codes, $DATE")" \
		"$(ran "$rc" "$ms")" \
		"$(cell "rejected $(j .rejected) (malformed $(j .malformed)); rejected_bars rows: $rej; failed $(j .failed)")" \
		"$(matched "$dir" "" " — damaged must be 0")" \
		"$(crash "$dir"/*.err)" \
		"n/a"
	stop "$EMU_PID"
}

# (i) cold-cache flood: 3,000 req/s over all 2,600 codes for 10 s.
sc_flood() {
	local dir=$WORK/flood after=15
	((QUICK)) && after=5
	mkdir -p "$dir"
	emulator "$dir" --rate 18 || return 1
	serve "$dir" KIS_RATE_LIMIT=18 || return 1
	local sp rss0
	sp=$(serve_pid)
	rss0=$(rss_mb "$sp")
	log "flood: 3,000 req/s over 2,600 codes for 10 s from a cold cache"
	loadtest "$dir" 120 3000 10s 2600
	local lt=$BG
	sleep 10
	local up10 zero10
	up10=$(($(metric "$SRV" '^kisfeed_upstream_requests_total[{]') - $(metric "$SRV" '^kisfeed_upstream_requests_total[{].*tr_id="tokenP"')))
	zero10=$(metric "$SRV" '^kisfeed_upstream_requests_total[{]status="0"')
	wait "$lt"
	local rss1 rss2 zero
	rss1=$(rss_mb "$sp")
	sleep "$after"
	rss2=$(rss_mb "$sp")
	zero=$(metric "$SRV" '^kisfeed_upstream_requests_total[{]status="0"')
	timeout 5 curl -fsS "$SRV/metrics" >"$dir/metrics.txt" 2>/dev/null
	stop "$SRV_PID"
	local src=$STOPPED_RC L=$dir/loadtest.json
	jq -e .scheduled "$L" >/dev/null 2>&1 || { row "i. cold-cache flood" "" "" "not measured: loadtest gave no JSON" "" "" "$(crash "$dir"/*.err)" ""; return; }
	local sched n503
	sched=$(jq -r .scheduled "$L")
	n503=$(jq -r '.statuses["503"] // 0' "$L")
	row "i. cold-cache flood" \
		"$(cell "3,000 req/s over 2,600 never-cached codes for 10 s (emulator --rate 18, real server)")" \
		"$(cell "$sched quotes")" \
		"$(cell "$(jq -r '.statuses["200"] // 0' "$L") × 200; p95 $(jq -r '.p95_ms|floor' "$L") ms")" \
		"$(cell "$(statuses "$L"); 503 share $(awk -v a="$n503" -v b="$sched" 'BEGIN { printf "%.1f %%", b ? 100 * a / b : 0 }'); no answer $(jq -r '.statuses["0"] // 0' "$L"); upstream calls in the first 10 s: $up10; upstream status=\"0\": $zero10 at 10 s, $zero at the end")" \
		"n/a (no rows)" \
		"$(crash "$dir"/*.err) (serve exit $src on SIGTERM)" \
		"$(cell "serve RSS $rss0 before, $rss1 after the load, $rss2 ${after}s later")"
}

# (j) secrets at debug level.
sc_secrets() {
	local dir=$WORK/secrets port=$((REDIS_PORT_BASE + 2)) pw="kf-faults-redis-pw-$$-$RANDOM"
	mkdir -p "$dir/redis"
	local SECRET_SAVE=$APP_SECRET
	APP_SECRET="kf-faults-FAKE-SECRET-$$-$RANDOM$RANDOM"
	emulator "$dir" --rate 0 --fault "error=0.2,reset=0.05,seed=5" || { APP_SECRET=$SECRET_SAVE; return 1; }
	bg 300 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/redis" --requirepass "$pw" >"$dir/redis.log" 2>&1
	local rp=$BG
	for _ in $(seq 50); do timeout 2 redis-cli -p "$port" -a "$pw" --no-auth-warning ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
	log "secrets: LOG_LEVEL=debug serve/ingest/quote with a fake secret, 20 % errors and 5 % resets"
	# A consumer API key: serve is given its hash, curl sends the key.
	local apikey="kf_faults-FAKE-APIKEY-$$-$RANDOM$RANDOM" auth
	auth="Authorization: Bearer $apikey"
	serve "$dir" LOG_LEVEL=debug REDIS_URL="redis://:$pw@127.0.0.1:$port/0" \
		KISFEED_API_KEYS="faults:$(printf %s "$apikey" | sha256sum | cut -d' ' -f1):rate=0" || { APP_SECRET=$SECRET_SAVE; return 1; }
	local c
	for c in 005930 000660 035420 999999 00593X; do
		timeout 20 curl -sS -D - -H "$auth" "$SRV/v1/stocks/$c/quote" >>"$dir/http.out" 2>&1
	done
	timeout 20 curl -sS -H "$auth" "$SRV/v1/quotes?codes=005930,000660,051910" >>"$dir/http.out" 2>&1
	timeout 20 curl -sS "$SRV/readyz" >>"$dir/http.out" 2>&1
	timeout 20 curl -sS "$SRV/metrics" >>"$dir/http.out" 2>&1
	timeout 5 curl -fsS -X POST "$EMU/_emulator/outage?for=3s" >/dev/null
	timeout 20 curl -sS -D - -H "$auth" "$SRV/v1/stocks/068270/quote" >>"$dir/http.out" 2>&1
	timeout 20 curl -sS -D - -H "$auth" "$SRV/v1/stocks/005930/orderbook" >>"$dir/http.out" 2>&1
	# One wrong key: its 401 must not echo it either.
	timeout 20 curl -sS -D - -H "Authorization: Bearer ${apikey}X" "$SRV/v1/stocks/005930/quote" >>"$dir/http.out" 2>&1
	sleep 3
	stop "$SRV_PID"
	mkdir -p "$dir/sqlite"
	kfcmd "$dir" "$EMU" LOG_LEVEL=debug KIS_RATE_LIMIT=100 -- ingest --date "$DATE" --codes 005930,000660,035420,051910,068270 --db "$dir/sqlite/x.db" --json
	run 120 "${KFCMD[@]}" >"$dir/ingest.out" 2>"$dir/ingest.err"
	kfcmd "$dir" "$EMU" LOG_LEVEL=debug -- quote 005930 000660 --json
	run 60 "${KFCMD[@]}" >"$dir/quote.out" 2>"$dir/quote.err"
	kfcmd "$dir" "$EMU" LOG_LEVEL=debug -- quote 005930
	run 60 "${KFCMD[@]}" >"$dir/quote1.out" 2>"$dir/quote1.err"
	# The token the clients were given: the emulator hands the same one again.
	local tok
	tok=$(timeout 10 curl -sS -X POST "$EMU/oauth2/tokenP" -H 'content-type: application/json; charset=utf-8' \
		-d "{\"grant_type\":\"client_credentials\",\"appkey\":\"$APP_KEY\",\"appsecret\":\"$APP_SECRET\"}" | jq -r '.access_token // empty')
	local files=("$dir"/serve.out "$dir"/serve.err "$dir"/http.out "$dir"/ingest.out "$dir"/ingest.err "$dir"/quote*.out "$dir"/quote*.err)
	local lines nsec ntok npw nkey
	lines=$(cat "${files[@]}" | wc -l)
	nsec=$(cat "${files[@]}" | grep -cF -- "$APP_SECRET")
	nkey=$(cat "${files[@]}" | grep -cF -- "$apikey")
	npw=$(cat "${files[@]}" | grep -cF -- "$pw")
	if [[ -n "$tok" ]]; then ntok=$(cat "${files[@]}" | grep -cF -- "$tok"); else ntok="? (no token from tokenP)"; fi
	local dbg
	dbg=$(cat "${files[@]}" | grep -c 'level=DEBUG')
	row "j. secrets at debug level" \
		"$(cell "LOG_LEVEL=debug serve (REDIS_URL with a password, an API key), ingest, quote; fake app secret; emulator 20 % errors, 5 % resets, a 3 s outage")" \
		"$(cell "$lines output lines ($dbg at debug) from serve, 11 HTTP answers, ingest, 2 quotes")" \
		"$(cell "serve exit $STOPPED_RC")" \
		"$(cell "leaks: app secret $nsec, access token $ntok, Redis password $npw, API key $nkey")" \
		"n/a" \
		"$(crash "${files[@]}")" \
		"n/a"
	APP_SECRET=$SECRET_SAVE
	stop "$EMU_PID"
	stop "$rp"
}

# ---------------------------------------------------------------- main

for cmd in go curl jq psql redis-server redis-cli timeout pgrep awk; do
	command -v "$cmd" >/dev/null || { echo "faults.sh: $cmd not found" >&2; exit 1; }
done
if [[ -n "${KISFEED:-}" ]]; then
	KF=$KISFEED
else
	KF=$WORK/kisfeed
	log "building kisfeed"
	(cd "$ROOT" && timeout 600 go build -o "$KF" ./cmd/kisfeed) || { echo "faults.sh: build failed" >&2; exit 1; }
fi
timeout 10 psql "$PG/postgres?sslmode=disable" -qAtc 'select 1' >/dev/null 2>&1 || log "PostgreSQL does not answer at $PG: database scenarios will say so"

T0=$(now_ms)
for s in "${SCEN[@]}"; do
	log "scenario $s"
	n=${#ROWS[@]}
	"sc_$s"
	rc=$?
	if ((${#ROWS[@]} == n)); then
		row "$s" "" "" "not measured: the scenario's setup failed (exit $rc); see the log above" "" "" "" ""
	fi
	# Stop whatever this scenario left running before the next one starts.
	stop_all
done

echo "| scenario | injected | attempted | succeeded | errors by kind | lost/duplicated rows vs a clean reference | crash | recovery time |"
echo "|---|---|---|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "kisfeed $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?'); $(nproc) CPUs; ingest date $DATE; $( ((QUICK)) && echo '--quick; ')matrix took $(secs $(($(now_ms) - T0)))."
