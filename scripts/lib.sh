# lib.sh: what the measuring scripts (breaker-outage.sh, stream-drops.sh,
# stream-bench.sh, replicas.sh) share; source it, do not run it.

# kisfeed_workdir [GLOB...] sets ROOT (the checkout), WORK (a temporary
# directory, removed on exit), PIDS (processes killed on exit: append with
# PIDS+=($!)) and KISFEED (the binary; built from the checkout when
# unset), then changes to WORK. With KEEP_LOGS set, the processes' *.out
# and *.err and the files matching each GLOB are copied there on exit.
kisfeed_workdir() {
	ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	WORK=$(mktemp -d)
	PIDS=()
	KEEP_GLOBS=("$@")
	trap kisfeed_cleanup EXIT
	if [[ -z "${KISFEED:-}" ]]; then
		KISFEED="$WORK/kisfeed"
		(cd "$ROOT" && go build -o "$KISFEED" ./cmd/kisfeed)
	fi
	cd "$WORK"
}

kisfeed_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -n "${KEEP_LOGS:-}" ]]; then
		mkdir -p "$KEEP_LOGS"
		local g
		for g in '*.out' '*.err' "${KEEP_GLOBS[@]}"; do
			# shellcheck disable=SC2086 # the glob is meant to expand
			cp "$WORK"/$g "$KEEP_LOGS"/ 2>/dev/null || true
		done
	fi
	rm -rf "$WORK"
}

# listen_addr FILE [SECONDS] waits (10 s by default) for the one
# "listening on URL" line a kisfeed server prints to FILE and prints URL;
# without it, it shows the server's FILE.err and fails.
listen_addr() {
	local tries=$((${2:-10} * 10))
	for _ in $(seq "$tries"); do
		if grep -q 'listening on' "$1" 2>/dev/null; then
			sed -n 's/listening on //p' "$1"
			return 0
		fi
		sleep 0.1
	done
	echo "no 'listening on' line in $1" >&2
	cat "${1%.out}.err" >&2 2>/dev/null || true
	return 1
}
