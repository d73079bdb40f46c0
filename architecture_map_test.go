package kisfeed_test

import (
	"io/fs"
	"os"
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
