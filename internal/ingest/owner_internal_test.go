package ingest

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

const ownerChildEnv = "KISFEED_TEST_OWNER_CHILD"

// TestOwnerChild is the child process of TestOwnerDead: it lives until
// its stdin is closed.
func TestOwnerChild(t *testing.T) {
	if os.Getenv(ownerChildEnv) == "" {
		t.Skip("the child process of TestOwnerDead")
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startChild starts a process that lives until stop is called, and
// returns its pid.
func startChild(t *testing.T) (pid int, stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), ownerChildEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			in.Close()
			_ = cmd.Wait() // reaped: the pid is free
		}
	}
	t.Cleanup(stop)
	return cmd.Process.Pid, stop
}

// TestOwnerDead: a run's owner is gone when it was a process of this host
// that no longer exists or whose pid now belongs to a process started at
// another time; anything else (another host, an unreadable owner, this
// very process, a live process) keeps the lease rule.
func TestOwnerDead(t *testing.T) {
	me := self()
	if me.text != ProcessOwner() || me.text == "" {
		t.Fatalf("ProcessOwner() = %q, self = %+v", ProcessOwner(), me)
	}
	live, _ := startChild(t)
	_, liveStart, haveProc := procStat(live)
	gonePID, stop := startChild(t)
	stop()
	h := me.host + "/"
	tests := []struct {
		name  string
		owner string
		want  bool
		proc  bool // needs /proc (start times)
	}{
		{"empty", "", false, false},
		{"no host", "/" + strconv.Itoa(gonePID), false, false},
		{"no pid", me.host, false, false},
		{"pid not a number", h + "x12", false, false},
		{"pid 0 (would signal our group)", h + "0", false, false},
		{"negative pid", h + "-1", false, false},
		{"another host's gone pid", "elsewhere.example/" + strconv.Itoa(gonePID), false, false},
		{"this process", me.text, false, false},
		{"our pid, no start time", h + strconv.Itoa(me.pid), false, false},
		{"our pid, another start (an earlier process)", h + strconv.Itoa(me.pid) + "@1", true, true},
		{"a live process", h + strconv.Itoa(live), false, false},
		{"a live process, its start", formatOwner(me.host, live, liveStart), false, true},
		{"a live process, another start (pid reused)", h + strconv.Itoa(live) + "@1", true, true},
		{"an exited, reaped process", h + strconv.Itoa(gonePID), true, false},
		{"an exited process, with a start", h + strconv.Itoa(gonePID) + "@1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.proc && (!haveProc || me.start == "") {
				t.Skip("no /proc here: start times unknown")
			}
			if got := OwnerDead(tt.owner); got != tt.want {
				t.Errorf("OwnerDead(%q) = %v, want %v", tt.owner, got, tt.want)
			}
		})
	}
}

// TestParseOwner: what formatOwner writes parses back.
func TestParseOwner(t *testing.T) {
	tests := []struct {
		host  string
		pid   int
		start string
	}{
		{"db-1.example", 4242, "123456"},
		{"h", 1, ""},
	}
	for _, tt := range tests {
		s := formatOwner(tt.host, tt.pid, tt.start)
		host, pid, start, ok := parseOwner(s)
		if !ok || host != tt.host || pid != tt.pid || start != tt.start {
			t.Errorf("parseOwner(%q) = %q, %d, %q, %v; want %q, %d, %q", s, host, pid, start, ok, tt.host, tt.pid, tt.start)
		}
	}
}
