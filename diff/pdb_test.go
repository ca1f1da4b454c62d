package diff

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hpbuild/hpbuild/pe"
)

// openMSVC opens one build of an MSVC-ABI fixture with the PDB next to it.
func openMSVC(t *testing.T, cas, arch, ver string) *pe.File {
	t.Helper()
	dll := filepath.Join("..", "testdata", "msvc", cas, arch, ver, cas+".dll")
	f, err := pe.Open(dll, pe.WithPDBSearch(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pdbNames returns the names of the functions the PDB named.
func pdbNames(f *pe.File) map[string]bool {
	m := map[string]bool{}
	for _, fn := range f.Functions() {
		if fn.Sources&pe.SrcPDB != 0 {
			m[fn.Name] = true
		}
	}
	return m
}

// TestMSVCPairsEveryPDBName: with PDBs, every function named in both PDBs
// is paired by name (100%), and the diff reports exactly the source
// changes of each case.
func TestMSVCPairsEveryPDBName(t *testing.T) {
	cases := []struct {
		name           string
		changed, added []string
	}{
		{"body_change", []string{"compute", "normalize"}, []string{"saturate"}},
		{"cxx_names", []string{"?scale@geo@@YAHH@Z"}, nil},
	}
	for _, c := range cases {
		for _, arch := range []string{"x64", "x86"} {
			t.Run(c.name+"/"+arch, func(t *testing.T) {
				o, n := openMSVC(t, c.name, arch, "old"), openMSVC(t, c.name, arch, "new")
				if o.PDB == nil || n.PDB == nil {
					t.Fatalf("PDBs not used: %q %q", o.Warnings, n.Warnings)
				}
				r := Compare(o, n)
				on, nn := pdbNames(o), pdbNames(n)
				both := 0
				var changed, added []string
				for _, f := range r.Functions {
					name := f.Name
					if !strings.HasPrefix(name, "?") {
						name = cName(name, arch == "x86")
					}
					switch f.Status {
					case Changed:
						changed = append(changed, name)
					case Added:
						added = append(added, name)
					}
					if !on[f.Name] || !nn[f.Name] {
						continue
					}
					both++
					if f.Match != MatchName || f.OldRVA == 0 || f.NewRVA == 0 {
						t.Errorf("%s: named in both PDBs but status %s, match %q", f.Name, f.Status, f.Match)
					}
				}
				if both == 0 || both != len(o.Functions()) {
					t.Errorf("%d functions named in both PDBs, the old image has %d", both, len(o.Functions()))
				}
				slices.Sort(changed)
				slices.Sort(added)
				if !slices.Equal(changed, c.changed) || !slices.Equal(added, c.added) {
					t.Errorf("changed %q added %q; want %q %q", changed, added, c.changed, c.added)
				}
			})
		}
	}
}

// TestMSVCDisplayNames: decorated names pair C++ functions whose
// undecorated names collide; the undecorated name travels with them.
func TestMSVCDisplayNames(t *testing.T) {
	r := Compare(openMSVC(t, "cxx_names", "x64", "old"), openMSVC(t, "cxx_names", "x64", "new"))
	got := map[string]string{}
	for _, f := range r.Functions {
		got[f.Name] = f.Display
	}
	for name, display := range map[string]string{
		"?scale@geo@@YAHH@Z":        "geo::scale",
		"?scale@geo@@YA_J_J@Z":      "geo::scale",
		"?area@Box@geo@@QEBAHXZ":    "geo::Box::area",
		"??$twice@_J@geo@@YA_J_J@Z": "geo::twice<long long>",
	} {
		if got[name] != display {
			t.Errorf("%s: display %q, want %q", name, got[name], display)
		}
	}
}

// TestMSVCMismatchedPDB: new's PDB belongs to another build; it is refused
// with a warning naming both GUIDs and the diff completes without it.
func TestMSVCMismatchedPDB(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		o, n := openMSVC(t, "pdb_mismatch", arch, "old"), openMSVC(t, "pdb_mismatch", arch, "new")
		if o.PDB == nil || n.PDB != nil {
			t.Fatalf("%s: old PDB %v, new PDB %v; want only old's used", arch, o.PDB, n.PDB)
		}
		r := Compare(o, n)
		var warn string
		for _, w := range r.Warnings {
			if strings.HasPrefix(w, "new: pdb ") && strings.Contains(w, "refused") {
				warn = w
			}
		}
		if strings.Count(warn, "{") != 2 {
			t.Errorf("%s: warnings %q; want one naming both GUIDs", arch, r.Warnings)
		}
		if r.Verdict == "" || len(r.Functions) < len(o.Functions()) {
			t.Errorf("%s: diff incomplete: verdict %q, %d functions", arch, r.Verdict, len(r.Functions))
		}
		for _, f := range r.Functions {
			if f.Name == "compute" && f.Status != Changed {
				t.Errorf("%s: compute %s, want changed", arch, f.Status)
			}
		}
	}
}

// TestMSVCWithoutPDB: without PDBs the diff of the MSVC-ABI fixtures finds
// the same changes (by export name, hash and call graph instead of PDB
// names) and the same verdict: the PDB adds names and certainty, and the
// heuristics of the earlier issues still hold on these images.
func TestMSVCWithoutPDB(t *testing.T) {
	for _, c := range []string{"body_change", "cxx_names"} {
		for _, arch := range []string{"x64", "x86"} {
			open := func(ver string) *pe.File {
				f, err := pe.Open(filepath.Join("..", "testdata", "msvc", c, arch, ver, c+".dll"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.Close() })
				return f
			}
			with := Compare(openMSVC(t, c, arch, "old"), openMSVC(t, c, arch, "new"))
			without := Compare(open("old"), open("new"))
			if without.Verdict != with.Verdict || !maps.Equal(without.Counts, with.Counts) {
				t.Errorf("%s/%s: without PDBs %s %v, with them %s %v", c, arch, without.Verdict, without.Counts, with.Verdict, with.Counts)
			}
		}
	}
}

// TestMSVCDataLayoutNamed: with PDBs the layout change of a global is
// reported against the object the PDB names, with the sizes its type
// records give (24 -> 28 bytes).
func TestMSVCDataLayoutNamed(t *testing.T) {
	for _, arch := range []string{"x64", "x86"} {
		r := Compare(openMSVC(t, "data_layout", arch, "old"), openMSVC(t, "data_layout", arch, "new"))
		found := false
		for _, ch := range r.Changes {
			for _, rl := range ch.Rules {
				if rl.ID == "RR-DATA-LAYOUT" && ch.Name == "g_config" && strings.Contains(rl.Message, "from 24 to 28 bytes") {
					found = true
				}
			}
		}
		if !found || r.Verdict != VerdictRebootRequired {
			t.Errorf("%s: verdict %s, changes %+v; want RR-DATA-LAYOUT on g_config, 24 -> 28 bytes", arch, r.Verdict, r.Changes)
		}
	}
}
