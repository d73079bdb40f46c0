package kisfeed_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dirRef is how ARCHITECTURE.md names a package directory: inline code
// holding a module-relative path that ends in a slash, `internal/cache/`,
// or `./` for the root.
var dirRef = regexp.MustCompile("`(\\./|[a-z0-9_]+(?:/[a-z0-9_]+)*/)`")

// mapMismatches compares the package directories doc names with dirs, the
// module's package directories ("." for the root), and returns one line
// per directory named but absent or present but unnamed.
func mapMismatches(doc string, dirs []string) []string {
	named := map[string]bool{}
	for _, m := range dirRef.FindAllStringSubmatch(doc, -1) {
		named[strings.TrimSuffix(m[1], "/")] = true // "./" is "."
	}
	var out []string
	for d := range named {
		if !slices.Contains(dirs, d) {
			out = append(out, "ARCHITECTURE.md names `"+d+"/`, which is not a package directory of the module")
		}
	}
	for _, d := range dirs {
		if !named[d] {
			out = append(out, "package directory "+d+" is not named in ARCHITECTURE.md (write it as `"+d+"/`)")
		}
	}
	slices.Sort(out)
	return out
}

// packageDirs returns the module's package directories under root,
// relative to it ("." for root itself): directories holding a non-test
// .go file, skipping testdata and hidden directories as the go command
// does.
func packageDirs(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !slices.Contains(dirs, rel) {
			dirs = append(dirs, rel)
		}
		return nil
	})
	return dirs, err
}

// TestArchitectureMap keeps ARCHITECTURE.md's map true: it fails when the
// page names a package directory that does not exist, or when a package
// directory of the module is missing from it.
func TestArchitectureMap(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatalf("read the architecture map: %v", err)
	}
	dirs, err := packageDirs(".")
	if err != nil {
		t.Fatalf("list package directories: %v", err)
	}
	// Guard against a walk that finds nothing: then every name would be
	// reported, but an empty doc would pass.
	for _, want := range []string{".", "kis", "emulator", "internal/cache"} {
		if !slices.Contains(dirs, want) {
			t.Fatalf("package directories %q lack %s", dirs, want)
		}
	}
	for _, m := range mapMismatches(string(doc), dirs) {
		t.Error(m)
	}
}

// TestMapMismatches: the map check catches a stale name and a missing
// package, and accepts an exact map.
func TestMapMismatches(t *testing.T) {
	t.Parallel()
	dirs := []string{".", "kis", "internal/cache"}
	tests := []struct {
		name string
		doc  string
		want int
	}{
		{"exact", "`./` root, `kis/` client, `internal/cache/` cache", 0},
		{"named twice", "`./` `kis/` `kis/` `internal/cache/`", 0},
		{"missing package", "`./` `kis/`", 1},
		{"missing root", "`kis/` `internal/cache/`", 1},
		{"stale name", "`./` `kis/` `internal/cache/` `internal/source/`", 1},
		{"plain words are not names", "`./` `kis/` `internal/cache/` internal/source `cache.Store` `go test ./...`", 0},
		{"empty doc", "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mapMismatches(tt.doc, dirs); len(got) != tt.want {
				t.Errorf("got %d mismatches %q, want %d", len(got), got, tt.want)
			}
		})
	}
}

// diagramLine is one line of ARCHITECTURE.md's import diagram: the
// packages on its left and the module packages they import (root left
// out), as module-relative directories.
type diagramLine struct {
	from, to []string
}

// parseDiagram reads the first fenced block after the "## Which way
// imports point" heading. A name is a module-relative directory, or the
// last element of one when that is unique among dirs; "root" is ".". A
// line starting with spaces continues the previous line's imports.
func parseDiagram(doc string, dirs []string) ([]diagramLine, []string) {
	_, after, ok := strings.Cut(doc, "## Which way imports point")
	if !ok {
		return nil, []string{"no \"## Which way imports point\" section"}
	}
	_, after, _ = strings.Cut(after, "```\n")
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		return nil, []string{"no diagram block in the import section"}
	}
	var problems []string
	resolve := func(name string) string {
		if name == "root" || name == "(kisfeed)" {
			return "."
		}
		if slices.Contains(dirs, name) {
			return name
		}
		var hits []string
		for _, d := range dirs {
			if d == name || strings.HasSuffix(d, "/"+name) {
				hits = append(hits, d)
			}
		}
		if len(hits) != 1 {
			problems = append(problems, fmt.Sprintf("diagram name %q matches %d package directories", name, len(hits)))
			return ""
		}
		return hits[0]
	}
	names := func(s string) []string {
		s = strings.NewReplacer(",", " ", "root only", "", "nothing of the module", "", "(kisfeed)", "").Replace(s)
		var out []string
		for _, f := range strings.Fields(s) {
			if d := resolve(f); d != "" && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
		return out
	}
	var lines []diagramLine
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		left, right, arrow := strings.Cut(l, "─►")
		switch {
		case !arrow && strings.HasPrefix(l, " ") && len(lines) > 0:
			lines[len(lines)-1].to = append(lines[len(lines)-1].to, names(l)...)
		case !arrow || strings.TrimSpace(left) == "":
			problems = append(problems, fmt.Sprintf("diagram line %q: want PACKAGES ─► IMPORTS", l))
		default:
			lines = append(lines, diagramLine{from: names(left), to: names(right)})
		}
	}
	return lines, problems
}

// diagramMismatches compares the diagram with imports (module-relative
// package → module-relative imports, root left out): every package on
// exactly one line, its imports exactly as listed, and every import on a
// lower line.
func diagramMismatches(lines []diagramLine, imports map[string][]string) []string {
	var out []string
	row := map[string]int{}
	for i, l := range lines {
		for _, p := range l.from {
			if _, dup := row[p]; dup {
				out = append(out, "diagram: "+p+" is on two lines")
			}
			row[p] = i
		}
	}
	for p, deps := range imports {
		i, ok := row[p]
		if !ok {
			out = append(out, "diagram: "+p+" is on no line")
			continue
		}
		listed := lines[i].to
		for _, d := range deps {
			if !slices.Contains(listed, d) {
				out = append(out, fmt.Sprintf("diagram: %s imports %s, not shown", p, d))
			}
			if j, ok := row[d]; ok && j <= i {
				out = append(out, fmt.Sprintf("diagram: %s imports %s, which is not on a lower line", p, d))
			}
		}
		if len(lines[i].from) == 1 {
			for _, d := range listed {
				if !slices.Contains(deps, d) {
					out = append(out, fmt.Sprintf("diagram: %s does not import %s", p, d))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestArchitectureDiagram keeps ARCHITECTURE.md's import diagram true:
// it fails when a package's module imports differ from its line, or when
// a package imports one drawn on its own line or above.
func TestArchitectureDiagram(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	doc, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatalf("read the architecture map: %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found (%v): the diagram cannot be checked", err)
	}
	cmd := exec.CommandContext(t.Context(), goBin, "list", "-json=ImportPath,Imports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	imports := map[string][]string{}
	var dirs []string
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		dirs = append(dirs, from)
		imports[from] = nil
		for _, imp := range p.Imports {
			if to, ok := rel(imp); ok && to != "." {
				imports[from] = append(imports[from], to)
			}
		}
	}
	if len(dirs) < 5 {
		t.Fatalf("go list reported only %q", dirs)
	}
	lines, problems := parseDiagram(string(doc), dirs)
	for _, p := range append(problems, diagramMismatches(lines, imports)...) {
		t.Error(p)
	}
}

// TestDiagramMismatches: the diagram check catches a missing import, an
// import that is not there, an upward import, a package drawn twice or
// not at all, and an ambiguous name; an exact diagram passes.
func TestDiagramMismatches(t *testing.T) {
	t.Parallel()
	dirs := []string{".", "kis", "krx", "internal/cache", "internal/wiring", "internal/x/cache"}
	imports := map[string][]string{
		".": nil, "krx": nil, "kis": {"krx"}, "internal/cache": nil, "internal/x/cache": nil,
		"internal/wiring": {"kis", "internal/cache"},
	}
	doc := func(lines ...string) string {
		return "## Which way imports point\n\ntext\n\n```\n" + strings.Join(lines, "\n") + "\n```\n"
	}
	exact := []string{"internal/wiring ─► internal/cache", "   kis", "kis ─► krx",
		"krx internal/cache internal/x/cache ─► root only", "root (kisfeed) ─► nothing of the module"}
	tests := []struct {
		name string
		doc  string
		want int
	}{
		{"exact", doc(exact...), 0},
		{"import not shown", doc(append([]string{"internal/wiring ─► internal/cache"}, exact[2:]...)...), 1},
		{"import that is not there", doc(append([]string{"internal/wiring ─► internal/cache kis krx"}, exact[2:]...)...), 1},
		{"upward import", doc("kis ─► krx", "krx internal/cache internal/x/cache ─► root only",
			"internal/wiring ─► internal/cache kis", "root ─► nothing of the module"), 2},
		{"package on no line", doc(exact[:4]...), 1},
		{"package on two lines", doc(append(exact, "kis ─► krx")...), 2}, // and krx is then above it
		{"ambiguous name", doc("internal/wiring ─► cache kis", "kis ─► krx",
			"krx internal/cache internal/x/cache ─► root only", "root ─► nothing of the module"), 1},
		{"line without arrow", doc(append([]string{"kis krx"}, exact...)...), 1},
		{"no section", "# nothing here", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, problems := parseDiagram(tt.doc, dirs)
			if len(problems) == 0 {
				problems = diagramMismatches(lines, imports)
			}
			if len(problems) != tt.want {
				t.Errorf("got %d problems %q, want %d", len(problems), problems, tt.want)
			}
		})
	}
}
