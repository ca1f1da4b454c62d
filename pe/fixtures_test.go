package pe

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fixtureDLLs lists the committed fixture DLLs matching pattern (relative
// to testdata/, e.g. "*/x64/old.dll").
func fixtureDLLs(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("..", "testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatalf("no fixture matches testdata/%s (run make testdata)", pattern)
	}
	sort.Strings(m)
	return m
}

// symbolStarts returns the function starts named by the COFF symbols of an
// unstripped fixture, by RVA, skipping .cold parts (they are chunks).
func symbolStarts(f *File) map[uint32]string {
	out := map[uint32]string{}
	for _, s := range f.Symbols {
		if !s.Func || s.Source != "coff" || !f.IsCode(s.RVA) || strings.Contains(s.Name, ".cold") {
			continue
		}
		out[s.RVA] = s.Name
	}
	return out
}

// TestFixtureFunctionsMatchSymbols: on every unstripped fixture, every
// function the COFF symbols define is in the function table at its RVA,
// and no function starts inside another.
func TestFixtureFunctionsMatchSymbols(t *testing.T) {
	for _, path := range append(fixtureDLLs(t, "*/x64/*.dll"), fixtureDLLs(t, "*/x86/*.dll")...) {
		if strings.Contains(path, ".stripped.") {
			continue
		}
		t.Run(strings.TrimPrefix(path, "../testdata/"), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			syms := symbolStarts(f)
			if len(syms) == 0 {
				t.Fatal("fixture has no COFF function symbols")
			}
			for rva, name := range syms {
				fn, ok := f.FunctionAt(rva)
				if !ok {
					t.Errorf("symbol %s at %#x is not a function start", name, rva)
					continue
				}
				if fn.Sources&SrcSymbol == 0 {
					t.Errorf("function at %#x lacks the symbol source", rva)
				}
			}
			checkNoOverlap(t, f)
		})
	}
}

// TestStrippedFixturesFindStarts: on the stripped copies, at least 98% of
// the function starts the unstripped symbols name are found, and no
// function starts inside another.
func TestStrippedFixturesFindStarts(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		total, found := 0, 0
		for _, path := range fixtureDLLs(t, "*/"+arch+"/*.stripped.dll") {
			full, err := Open(strings.Replace(path, ".stripped.dll", ".dll", 1))
			if err != nil {
				t.Fatal(err)
			}
			stripped, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(stripped.Symbols) != 0 {
				t.Fatalf("%s: stripped fixture has %d symbols", path, len(stripped.Symbols))
			}
			checkNoOverlap(t, stripped)
			var missed []string
			for rva, name := range symbolStarts(full) {
				total++
				if _, ok := stripped.FunctionAt(rva); ok {
					found++
				} else {
					missed = append(missed, name)
				}
			}
			if len(missed) > 0 {
				sort.Strings(missed)
				t.Logf("%s: missed %v", path, missed)
			}
		}
		ratio := float64(found) / float64(total)
		t.Logf("%s: %d of %d symbol-defined function starts found in stripped fixtures (%.2f%%)", arch, found, total, 100*ratio)
		if ratio < 0.98 {
			t.Errorf("%s: found %.2f%% of function starts, want at least 98%%", arch, 100*ratio)
		}
	}
}
