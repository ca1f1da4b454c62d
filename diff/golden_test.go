package diff

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

var update = flag.Bool("update", false, "rewrite diff/testdata/golden from the current output")

// goldenCases are the pairs whose JSON report is kept as a golden file.
var goldenCases = []string{"body_change/x64", "body_change/x86", "data_init/x64", "export_renamed/x86", "layout_only/x64", "new_function/x64"}

func reportJSON(t testing.TB, c, variant string) []byte {
	t.Helper()
	dir, arch := filepath.Split(c)
	o, n := openPair(t, filepath.Join("../testdata", dir), arch, variant)
	// Paths relative to the repository root, as a user would type them.
	o.Path = filepath.ToSlash(filepath.Join("testdata", c, "old.dll"))
	n.Path = filepath.ToSlash(filepath.Join("testdata", c, "new.dll"))
	r := Compare(o, n)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestGoldenJSON compares JSON reports with diff/testdata/golden
// (go test ./diff -run Golden -update rewrites them).
func TestGoldenJSON(t *testing.T) {
	for _, c := range goldenCases {
		got := reportJSON(t, c, "symbols")
		path := filepath.Join("testdata", "golden", filepath.Dir(c)+"-"+filepath.Base(c)+".json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./diff -run Golden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: JSON report differs from %s (run go test ./diff -run Golden -update and review the diff)", c, path)
		}
	}
}

// TestJSONContract checks every report against the hpbuild.diff/v1
// contract in DESIGN.md: field names and types, every function of both
// images exactly once, rva/size presence by status, verdict values.
func TestJSONContract(t *testing.T) {
	for _, c := range goldenCases {
		for _, variant := range []string{"symbols", "stripped"} {
			var m map[string]any
			if err := json.Unmarshal(reportJSON(t, c, variant), &m); err != nil {
				t.Fatal(err)
			}
			checkContract(t, c+"/"+variant, m)
		}
	}
}

func checkContract(t *testing.T, name string, m map[string]any) {
	t.Helper()
	for _, k := range []string{"schema", "old", "new", "verdict", "functions", "changes", "warnings"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: top-level field %q missing", name, k)
		}
	}
	if m["schema"] != Schema {
		t.Errorf("%s: schema %v", name, m["schema"])
	}
	oneOf := func(v any, allowed ...string) bool {
		s, ok := v.(string)
		if !ok {
			return false
		}
		for _, a := range allowed {
			if s == a {
				return true
			}
		}
		return false
	}
	if !oneOf(m["verdict"], "identical", "hotpatchable", "reboot-required") {
		t.Errorf("%s: verdict %v", name, m["verdict"])
	}
	for _, side := range []string{"old", "new"} {
		s, _ := m[side].(map[string]any)
		for _, k := range []string{"path", "sha256", "machine", "image_base", "timestamp", "checksum", "functions"} {
			if _, ok := s[k]; !ok {
				t.Errorf("%s: %s.%s missing", name, side, k)
			}
		}
		if !oneOf(s["machine"], "amd64", "i386") {
			t.Errorf("%s: %s.machine %v", name, side, s["machine"])
		}
	}
	fns, _ := m["functions"].([]any)
	for _, x := range fns {
		f := x.(map[string]any)
		st := f["status"]
		if !oneOf(st, "unchanged", "changed", "added", "removed") {
			t.Errorf("%s: status %v", name, st)
		}
		if !oneOf(f["match"], "name", "hash", "callgraph", "similarity", "") {
			t.Errorf("%s: match %v", name, f["match"])
		}
		if !oneOf(f["verdict"], "hotpatchable", "reboot-required", "") {
			t.Errorf("%s: function verdict %v", name, f["verdict"])
		}
		if _, ok := f["rules"].([]any); !ok {
			t.Errorf("%s: rules is not a list: %v", name, f["rules"])
		}
		if _, ok := f["similarity"].(float64); !ok {
			t.Errorf("%s: similarity is not a number", name)
		}
		_, hasOld := f["old_rva"]
		_, hasNew := f["new_rva"]
		if st == "added" && hasOld || st == "removed" && hasNew || st != "added" && !hasOld || st != "removed" && !hasNew {
			t.Errorf("%s: %v function %v has old_rva %v new_rva %v", name, st, f["name"], hasOld, hasNew)
		}
		for _, k := range []string{"old_rva", "new_rva", "old_size", "new_size"} {
			if v, ok := f[k]; ok {
				if fv, isNum := v.(float64); !isNum || fv != float64(int64(fv)) {
					t.Errorf("%s: %s is not an integer: %v", name, k, v)
				}
			}
		}
	}
	chs, _ := m["changes"].([]any)
	for _, x := range chs {
		ch := x.(map[string]any)
		if !oneOf(ch["kind"], "data", "export", "import", "tls", "entry", "resource", "section", "header") {
			t.Errorf("%s: change kind %v", name, ch["kind"])
		}
		if !oneOf(ch["verdict"], "hotpatchable", "reboot-required", "neutral") {
			t.Errorf("%s: change verdict %v", name, ch["verdict"])
		}
	}
}

// TestDeterministic: the same inputs give byte-identical reports whatever
// GOMAXPROCS is.
func TestDeterministic(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	one := reportJSON(t, "cxx_vtable/x64", "stripped")
	runtime.GOMAXPROCS(2)
	two := reportJSON(t, "cxx_vtable/x64", "stripped")
	again := reportJSON(t, "cxx_vtable/x64", "stripped")
	if !bytes.Equal(one, two) || !bytes.Equal(two, again) {
		t.Fatal("reports differ between GOMAXPROCS=1 and 2 or between runs")
	}
}
