package kisfeed_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/kisfeed/kisfeed"

// importRule forbids the packages matching from to depend, directly or
// not, on the packages matching deny. Patterns are module-relative: "."
// is the root package, "x/..." is x and everything below it, "..." is
// every package of the module.
type importRule struct {
	from  string
	deny  []string
	tests bool // the package's tests must obey the rule too
	why   string
}

// importRules are the directions ARCHITECTURE of the project rests on.
var importRules = []importRule{
	{from: "emulator/...", deny: []string{"kis/..."}, tests: true,
		why: "the emulator is an independent reading of the KIS spec; shared wire types would hide a misread spec on both sides"},
	{from: ".", deny: []string{"..."},
		why: "the root holds the domain types and interfaces; every adapter imports it, never the reverse"},
	{from: "kis/...", deny: []string{"internal/...", "emulator/..."},
		why: "kis is a client library for outside use: it cannot reach the server's internals, and it tests against the emulator only in its tests"},
	{from: "internal/sim", deny: []string{"kis/...", "emulator/..."}, tests: true,
		why: "sim is the market both the emulator and the synthetic Source serve; it knows neither wire nor client"},
	{from: "internal/synthetic", deny: []string{"kis/...", "emulator/..."},
		why: "the synthetic Source serves the market in-process, as the emulator serves it on the wire; it knows neither wire nor client (its tests compare it with both)"},
	{from: "internal/wiring", deny: []string{"emulator/...", "internal/embedded"},
		why: "the production wiring never starts the emulator on its own: cmd/kisfeed hands in internal/embedded only when no KIS_APP_KEY is set"},
	{from: "internal/shared", deny: []string{"kis/..."}, tests: true,
		why: "shared keeps opaque token records in Redis; kis's knowledge of a token (kis.Token.RetainUntil) comes in through the wiring, which imports both"},
	{from: "internal/ingest", deny: []string{"kis/..."},
		why: "ingest reads a kisfeed.Source and knows bad upstream values as kisfeed.MalformedError, whatever the upstream"},
	{from: "...", deny: []string{"internal/wiretest"},
		why: "wiretest holds test tables; only tests import it"},
	{from: "...", deny: []string{"internal/sourcetest"},
		why: "sourcetest holds fake Sources; only tests import it"},
}

// listedPackage is what `go list -json` says of one package, or of one
// test variant of it (ForTest set).
type listedPackage struct {
	ImportPath string
	ForTest    string
	Deps       []string
	Error      *struct{ Err string } // with -e: why the package could not be loaded
}

// rel returns p relative to the module ("." for the root), or ok false for
// a package outside it.
func rel(p string) (string, bool) {
	switch {
	case p == modulePath:
		return ".", true
	case strings.HasPrefix(p, modulePath+"/"):
		return strings.TrimPrefix(p, modulePath+"/"), true
	}
	return "", false
}

// match reports whether module-relative path r matches pattern.
func match(pattern, r string) bool {
	switch {
	case pattern == "...":
		return true
	case strings.HasSuffix(pattern, "/..."):
		dir := strings.TrimSuffix(pattern, "/...")
		return r == dir || strings.HasPrefix(r, dir+"/")
	}
	return r == pattern
}

// violations lists every forbidden dependency in pkgs, one line each.
func violations(pkgs []listedPackage, rules []importRule) []string {
	var out []string
	for _, p := range pkgs {
		name, isTest := p.ImportPath, p.ForTest != ""
		if isTest {
			name = p.ForTest // "x [x.test]" and "x_test [x.test]" belong to x
		}
		from, ok := rel(name)
		if !ok || strings.HasSuffix(p.ImportPath, ".test") {
			continue // outside the module, or a generated test main
		}
		for _, rule := range rules {
			if !match(rule.from, from) || isTest && !rule.tests {
				continue
			}
			for _, dep := range p.Deps {
				dep, _, _ = strings.Cut(dep, " [") // a test variant is still that package
				to, ok := rel(dep)
				if !ok || to == from {
					continue
				}
				if slices.ContainsFunc(rule.deny, func(d string) bool { return match(d, to) }) {
					out = append(out, fmt.Sprintf("%s imports %s (rule %s → %s: %s)",
						p.ImportPath, dep, rule.from, strings.Join(rule.deny, ", "), rule.why))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestImportDirections fails when a package of the module imports,
// directly or through another package, one its layer must not see.
func TestImportDirections(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found (%v): the import rules cannot be checked", err)
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-e", "-test", "-json=ImportPath,ForTest,Deps,Error", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	// Guard against a listing that silently misses the layers the rules
	// are about: then the test would pass while checking nothing.
	for _, want := range []string{modulePath, modulePath + "/kis", modulePath + "/emulator", modulePath + "/internal/sim"} {
		if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == want }) {
			t.Fatalf("go list did not report %s", want)
		}
	}
	for _, v := range violations(pkgs, importRules) {
		t.Error(v)
	}
	// A forbidden import often also closes a cycle through a test (kis's
	// tests import the emulator), which go list reports as an error; the
	// violation above names the cause, this line the symptom.
	for _, p := range pkgs {
		if p.Error != nil {
			t.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
	}
}

// TestImportRules: the rule check itself catches each forbidden direction
// and lets the allowed ones through (kis's tests may use the emulator).
func TestImportRules(t *testing.T) {
	t.Parallel()
	m := func(r string) string { return modulePath + "/" + r }
	tests := []struct {
		name string
		pkg  listedPackage
		want int // violations
	}{
		{"emulator imports kis", listedPackage{ImportPath: m("emulator"), Deps: []string{m("kis"), "net/http"}}, 1},
		{"emulator subpackage imports kis through internal", listedPackage{ImportPath: m("emulator/emulatortest"),
			Deps: []string{m("internal/x"), m("kis")}}, 1},
		{"emulator test imports kis", listedPackage{ImportPath: m("emulator") + " [" + m("emulator.test") + "]",
			ForTest: m("emulator"), Deps: []string{m("kis")}}, 1},
		{"root imports krx", listedPackage{ImportPath: modulePath, Deps: []string{m("krx")}}, 1},
		{"root imports stdlib only", listedPackage{ImportPath: modulePath, Deps: []string{"time"}}, 0},
		{"kis imports internal", listedPackage{ImportPath: m("kis"), Deps: []string{m("internal/sim")}}, 1},
		{"kis test imports emulator", listedPackage{ImportPath: m("kis") + " [" + m("kis.test") + "]",
			ForTest: m("kis"), Deps: []string{m("emulator"), m("internal/sim")}}, 0},
		{"sim imports emulator", listedPackage{ImportPath: m("internal/sim"), Deps: []string{m("emulator")}}, 1},
		{"shared imports kis", listedPackage{ImportPath: m("internal/shared"), Deps: []string{m("kis"), m("krx")}}, 1},
		{"shared test imports kis", listedPackage{ImportPath: m("internal/shared_test") + " [" + m("internal/shared.test") + "]",
			ForTest: m("internal/shared"), Deps: []string{m("internal/shared"), m("kis")}}, 1},
		{"wiring imports shared and kis", listedPackage{ImportPath: m("internal/wiring"), Deps: []string{m("internal/shared"), m("kis")}}, 0},
		{"kisfeedx is not kis", listedPackage{ImportPath: m("kisfeedx"), Deps: []string{m("internal/sim")}}, 0},
		{"wiretest outside tests", listedPackage{ImportPath: m("kis"), Deps: []string{m("internal/wiretest")}}, 2},
		{"wiretest in kis tests", listedPackage{ImportPath: m("kis") + " [" + m("kis.test") + "]",
			ForTest: m("kis"), Deps: []string{m("internal/wiretest")}}, 0},
		{"synthetic imports kis", listedPackage{ImportPath: m("internal/synthetic"), Deps: []string{m("kis"), m("internal/sim")}}, 1},
		{"synthetic tests import kis", listedPackage{ImportPath: m("internal/synthetic_test") + " [" + m("internal/synthetic.test") + "]",
			ForTest: m("internal/synthetic"), Deps: []string{m("internal/synthetic"), m("kis"), m("emulator")}}, 0},
		{"sourcetest outside tests", listedPackage{ImportPath: m("internal/cache"), Deps: []string{m("internal/sourcetest")}}, 1},
		{"sourcetest in cache tests", listedPackage{ImportPath: m("internal/cache_test") + " [" + m("internal/cache.test") + "]",
			ForTest: m("internal/cache"), Deps: []string{m("internal/sourcetest")}}, 0},
		{"test main", listedPackage{ImportPath: m("emulator.test"), Deps: []string{m("kis")}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := violations([]listedPackage{tt.pkg}, importRules); len(got) != tt.want {
				t.Errorf("got %d violations %q, want %d", len(got), got, tt.want)
			}
		})
	}
}
