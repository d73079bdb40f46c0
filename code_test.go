package kisfeed

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestParseCode pins the rule and the exact message (HTTP problems and CLI
// errors quote it byte for byte), and checks the loop against the regular
// expression it replaced.
func TestParseCode(t *testing.T) {
	oldRule := regexp.MustCompile(`^[0-9][0-9A-Z]{5}$`)
	tests := []struct {
		in      string
		wantErr string // "" for a valid code
	}{
		{"005930", ""},
		{"0088M0", ""},
		{"9ZZZZZ", ""},
		{"00593", `invalid argument: stock code "00593": want 6 characters like 005930 (digits or A-Z)`},
		{"0059301", `invalid argument: stock code "0059301": want 6 characters like 005930 (digits or A-Z)`},
		{"", `invalid argument: stock code "": want 6 characters like 005930 (digits or A-Z)`},
		{"A05930", `invalid argument: stock code "A05930": want 6 characters like 005930 (digits or A-Z)`},
		{"00593a", `invalid argument: stock code "00593a": want 6 characters like 005930 (digits or A-Z)`},
		{"00593\n", `invalid argument: stock code "00593\n": want 6 characters like 005930 (digits or A-Z)`},
		{"00593é", `invalid argument: stock code "00593é": want 6 characters like 005930 (digits or A-Z)`},
		{strings.Repeat("9", 30), `invalid argument: stock code "99999999999999999999…": want 6 characters like 005930 (digits or A-Z)`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.10q", tt.in), func(t *testing.T) {
			c, err := ParseCode(tt.in)
			if got := oldRule.MatchString(tt.in); got != (tt.wantErr == "") {
				t.Fatalf("table row disagrees with the old rule: regexp says %v", got)
			}
			if tt.wantErr == "" {
				if err != nil || c.String() != tt.in || c.IsZero() {
					t.Fatalf("ParseCode(%q) = %q, %v; want the code back", tt.in, c, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("ParseCode(%q) error = %v\nwant %s", tt.in, err, tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) || !c.IsZero() {
				t.Errorf("error %v: want it to wrap ErrInvalid and a zero Code, got %q", err, c)
			}
			if v := ValidateCode(tt.in); v == nil || v.Error() != err.Error() {
				t.Errorf("ValidateCode(%q) = %v, want ParseCode's error", tt.in, v)
			}
		})
	}
	if (Code{}).String() != "" || !(Code{}).IsZero() {
		t.Error("zero Code: want empty and IsZero")
	}
}
