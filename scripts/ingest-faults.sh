#!/usr/bin/env bash
# ingest-faults.sh: the ingest's database fault scenarios (issue 13 items 4-7,
# 14), each on its own fresh PostgreSQL database on 127.0.0.1, against the
# built-in emulator, compared with a clean reference run of the same day.
# Prints one line per scenario: exit codes, run statuses, rows and whether
# they equal the reference (md5 of code,trade_date,open,high,low,close,volume).
#
# Usage: scripts/ingest-faults.sh [scenario...]
#   scenarios: reference kill-busy sigkill sigterm sigint db-down (default: all)
#   env: PGURL (default postgres://postgres@127.0.0.1:5432), DAY (default
#        2026-11-27), KISFEED (binary; default: built from this checkout),
#        KEEP=1 keeps the databases. A full run of one day takes ~150 s.
set -uo pipefail

PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DAY=${DAY:-2026-11-27}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
PREFIX=kf_faults_$$
sql() { psql "$PGURL/$1" -Atqc "$2"; }
cleanup() {
	if [[ -z "${KEEP:-}" ]]; then
		for db in $(sql postgres "select datname from pg_database where datname like '${PREFIX}_%'"); do
			sql postgres "DROP DATABASE $db" >/dev/null
		done
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -z "${KISFEED:-}" ]]; then
	KISFEED="$WORK/kisfeed"
	(cd "$ROOT" && go build -o "$KISFEED" ./cmd/kisfeed) || exit 1
fi
newdb() { local db=${PREFIX}_$1; sql postgres "CREATE DATABASE $db" && echo "$db"; }
url() { echo "$PGURL/$1?sslmode=disable"; }
ingest() { "$KISFEED" ingest --date "$DAY" --db "$(url "$1")" --json >"$WORK/$2.json" 2>"$WORK/$2.err"; }
# ingest_bg db name: start the binary itself in the background (not a
# subshell: $! must be the process the signals are meant for).
ingest_bg() { "$KISFEED" ingest --date "$DAY" --db "$(url "$1")" --json >"$WORK/$2.json" 2>"$WORK/$2.err" & }
digest() { echo "$(sql "$1" "select count(*) from daily_prices") rows $(sql "$1" "select code,trade_date,open,high,low,close,volume from daily_prices order by 1,2" | md5sum | cut -c1-12)"; }
runs() { sql "$1" "select string_agg(status, ',' order by id) from ingestion_runs"; }
field() { grep -o "\"$2\": [0-9]*" "$WORK/$1.json" | head -1 | grep -o '[0-9]*$'; }
REF=""
report() { # name db rc-list extra
	local d; d=$(digest "$2")
	local same=no; [[ "$d" == "$REF" ]] && same=yes; [[ -z "$REF" ]] && same=-
	printf '%-10s exit %-8s runs %-30s %s  equal to reference: %s  %s\n' "$1" "$3" "$(runs "$2")" "$d" "$same" "${4:-}"
}
# kill_busy db n: terminate, n times, the ingest's backend while it is busy
# writing daily_prices (watched every millisecond from one session, each
# wait at most 150 s).
kill_busy() {
	local q="DO \$\$ DECLARE n int := 0; t0 timestamptz := clock_timestamp(); BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) INTO n FROM pg_stat_activity
      WHERE datname = '$1' AND state = 'active' AND query ILIKE '%daily_prices%' AND application_name <> 'psql'
        AND pid <> pg_backend_pid();
    EXIT WHEN n > 0 OR clock_timestamp() - t0 > interval '150 s';
    PERFORM pg_sleep(0.001);
  END LOOP;
  RAISE NOTICE 'terminated % busy backend(s)', n;
END \$\$;"
	for _ in $(seq "$2"); do psql "$PGURL/postgres" -qc "$q" 2>&1 | sed 's/^NOTICE: */  /'; sleep 1; done
}
# signal_when_writing db pid sig: send sig as soon as the ingest starts a
# write of daily_prices (watched every millisecond from one session, at
# most 150 s).
signal_when_writing() {
	psql "$PGURL/postgres" -qc "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
  LOOP
    PERFORM pg_stat_clear_snapshot();
    EXIT WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '$1' AND state = 'active'
      AND query ILIKE '%daily_prices%' AND application_name <> 'psql')
      OR clock_timestamp() - t0 > interval '150 s';
    PERFORM pg_sleep(0.001);
  END LOOP;
END \$\$;"
	kill -"$3" "$2"
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(kill-busy sigkill sigterm sigint db-down)
ref=$(newdb ref) || exit 1
ingest "$ref" ref; report reference "$ref" "$?"
REF=$(digest "$ref")
for s in "${scenarios[@]}"; do
	case $s in
	reference) ;;
	kill-busy) # a busy connection killed twice mid-ingest: exit 0, rows equal
		db=$(newdb kill)
		kill_busy "$db" 2 >"$WORK/kill.log" &
		kp=$!
		ingest "$db" kill; rc=$?
		kill "$kp" 2>/dev/null; wait "$kp" 2>/dev/null
		report kill-busy "$db" "$rc" "$(grep -c 'terminated 1' "$WORK/kill.log") busy kills, $(grep -c retrying "$WORK/kill.err") retried writes"
		;;
	sigkill) # SIGKILL mid-ingest, rerun at once: exact rows, no run left running
		db=$(newdb k9)
		ingest_bg "$db" k9a; pid=$!
		sleep 70; kill -9 "$pid"; wait "$pid"; rc1=$?
		ingest "$db" k9b; rc2=$?
		report sigkill "$db" "$rc1,$rc2"
		;;
	sigterm | sigint) # SIGTERM/SIGINT while writing: 130, interrupted, rerun exact
		sig=${s#sig}; sig=${sig^^}
		db=$(newdb "$s")
		ingest_bg "$db" "${s}a"; pid=$!
		sleep 20; signal_when_writing "$db" "$pid" "$sig"; wait "$pid"; rc1=$?
		w=$(field "${s}a" written); p=$(field "${s}a" pending)
		ingest "$db" "${s}b"; rc2=$?
		report "$s" "$db" "$rc1,$rc2" "(first run: $w written, $p pending)"
		;;
	db-down) # the database refuses connections before the first write: fetching
		# stops at once, exit 1 naming the error, codes listed; rerun completes
		db=$(newdb down)
		ingest_bg "$db" downa; pid=$!
		sleep 45
		sql postgres "ALTER DATABASE $db WITH ALLOW_CONNECTIONS false" >/dev/null
		sql postgres "select pg_terminate_backend(pid) from pg_stat_activity where datname='$db'" >/dev/null
		wait "$pid"; rc1=$?
		calls=$(field downa source_calls); u=$(field downa unwritten); p=$(field downa pending)
		sql postgres "ALTER DATABASE $db WITH ALLOW_CONNECTIONS true" >/dev/null
		sleep 31 # past the lease of the run that could not record its end
		ingest "$db" downb; rc2=$?
		report db-down "$db" "$rc1,$rc2" "(failed run: $calls source calls, $u unwritten, $p pending)"
		;;
	*) echo "unknown scenario $s" >&2 ;;
	esac
done
