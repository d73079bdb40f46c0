package ingest

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// The owner of a run is "host/pid@start": the host name, the process id
// and, where /proc tells it, the process start time in clock ticks since
// boot (field 22 of /proc/PID/stat); "host/pid" without it. The start time
// is what tells a reused pid from the process that started the run.

// owner is this process's owner text and the parts it is compared by.
type owner struct {
	text  string
	host  string
	pid   int
	start string // "" when unknown
}

var self = sync.OnceValue(func() owner {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	o := owner{host: host, pid: os.Getpid()}
	if _, start, ok := procStat(o.pid); ok {
		o.start = start
	}
	o.text = formatOwner(o.host, o.pid, o.start)
	return o
})

// ProcessOwner is the owner this process records on the runs it starts
// (kisfeed.IngestionRun.Owner): "host/pid", with "@start" (its start time
// in clock ticks since boot) where /proc tells it.
func ProcessOwner() string { return self().text }

func formatOwner(host string, pid int, start string) string {
	s := host + "/" + strconv.Itoa(pid)
	if start != "" {
		s += "@" + start
	}
	return s
}

// parseOwner splits an owner text; ok is false when it is not one.
func parseOwner(s string) (host string, pid int, start string, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "", 0, "", false
	}
	host, rest := s[:i], s[i+1:]
	if j := strings.IndexByte(rest, '@'); j >= 0 {
		rest, start = rest[:j], rest[j+1:]
	}
	pid, err := strconv.Atoi(rest)
	if err != nil || pid <= 0 {
		return "", 0, "", false
	}
	return host, pid, start, true
}

// OwnerDead reports whether the process named by owner (a run's
// kisfeed.IngestionRun.Owner) is known to be gone: it ran on this host and
// no process has its pid now, or the process with that pid now is a
// zombie or started at another time than the owner did (the pid was
// reused). A process of another host, an owner text it cannot read, or a
// process it cannot tell apart (EPERM is alive) is not known dead: those
// runs keep the lease rule.
//
// Why this is safe, and where it is not: ESRCH means no process has the
// pid, so the owner cannot be alive. A reused pid without a recorded
// start time looks alive, which only defers the run to the lease (30 s
// later), never marks a live run. The one false "gone" would be two
// machines (or containers with separate pid namespaces) sharing one host
// name and one database: name hosts uniquely, as the lease rule does not
// need but this one does. Our own pid with our own start time is this
// process: it may hold a run in another goroutine, so it is alive (the
// lease covers a run of ours that is stuck); our pid with another start
// time is an earlier process that died, and without start times (no
// /proc) our own pid is taken as alive.
func OwnerDead(owner string) bool {
	host, pid, start, ok := parseOwner(owner)
	me := self()
	if !ok || host != me.host {
		return false
	}
	if pid == me.pid {
		return start != "" && me.start != "" && start != me.start
	}
	return processGone(pid, start)
}

// procStat reads the state and start time (clock ticks since boot) of
// process pid from /proc/PID/stat; ok is false where it cannot.
func procStat(pid int) (state byte, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// or parentheses itself: the fields resume after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, "", false
	}
	return f[0][0], f[19], true
}
