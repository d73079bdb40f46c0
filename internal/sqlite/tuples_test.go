package sqlite

import "testing"

func TestTuples(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{1, "(?, ?)"}, {3, "(?, ?),(?, ?),(?, ?)"}} {
		if got := tuples(tt.n, "(?, ?)"); got != tt.want {
			t.Errorf("tuples(%d): got %q, want %q", tt.n, got, tt.want)
		}
	}
}
