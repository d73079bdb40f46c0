#!/usr/bin/env bash
# Runs a command (default: go test ./...) with the wall clock of every Go
# program it builds moved to WHEN, so the suite can be checked on any date:
#
#   scripts/moved-clock.sh "2026-12-05 10:00 +0900"            # a Saturday
#   scripts/moved-clock.sh "2027-01-01 11:00 +0900" go test -count=1 ./internal/...
#
# libfaketime cannot reach Go's clock (Go reads it through the vDSO, not
# libc), so this builds with go's -overlay flag: a copy of the toolchain's
# time/time.go whose Now adds a shift read once per process from
# KISFEED_CLOCK_AT (Unix seconds). Each process starts at WHEN and advances
# in real time; timers, sleeps and the monotonic clock are untouched. The
# overlay's content does not depend on WHEN, so the build cache is reused
# between dates; test results are not (-count=1 is added to go test).
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
when=$1; shift
at=$(date -d "$when" +%s) || { echo "moved-clock: cannot read the date '$when' (want e.g. '2027-03-02 10:00 +0900')" >&2; exit 2; }
[ $# -gt 0 ] || set -- go test ./...

goroot=$(go env GOROOT)
src="$goroot/src/time/time.go"
dir="${TMPDIR:-/tmp}/kisfeed-moved-clock-$(go env GOVERSION)"
mkdir -p "$dir"
python3 - "$src" "$dir/time.go" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()
head = "func Now() Time {\n\tsec, nsec, mono := runtimeNow()\n"
if head not in s:
    sys.exit("moved-clock: this Go's time.Now has changed; update scripts/moved-clock.sh")
s = s.replace(head, head + "\tsec += clockShift\n", 1)
if '"syscall"' not in s[: s.index(")")]:
    s = s.replace("import (\n", 'import (\n\t"syscall"\n', 1)
s += '''
// clockShift moves the wall clock (never the monotonic one) so that the
// process starts at KISFEED_CLOCK_AT (Unix seconds). Added by kisfeed's
// scripts/moved-clock.sh through go's -overlay flag; not part of Go.
var clockShift = func() int64 {
	v, ok := syscall.Getenv("KISFEED_CLOCK_AT")
	if !ok || v == "" {
		return 0
	}
	var at int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
		at = at*10 + int64(v[i]-'0')
	}
	sec, _, _ := runtimeNow()
	return at - sec
}()
'''
tmp = dst + ".tmp"
open(tmp, "w").write(s)
import os
os.replace(tmp, dst)
PY
printf '{"Replace":{"%s":"%s"}}\n' "$src" "$dir/time.go" > "$dir/overlay.json"

# go test caches results by the environment variables tests read with
# os.Getenv; KISFEED_CLOCK_AT is read inside package time, so force reruns.
if [ "$1" = go ] && [ "${2:-}" = test ]; then
  set -- "$1" "$2" -count=1 "${@:3}"
fi
echo "moved-clock: $(TZ=Asia/Seoul date -d "@$at" '+%Y-%m-%d %H:%M %a KST') — $*" >&2
export KISFEED_CLOCK_AT=$at
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-overlay=$dir/overlay.json"
exec "$@"
