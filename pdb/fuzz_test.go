package pdb

import (
	"os"
	"testing"
)

// FuzzPDB: Parse never panics, and whatever it accepts is internally
// consistent: every procedure and data object has an RVA inside the
// address space the section headers describe, and every module index is
// valid. Seeded from every fixture PDB and truncated copies of one.
func FuzzPDB(f *testing.F) {
	for _, p := range fixturePDBs(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := os.ReadFile("../testdata/msvc/cxx_names/x86/old/cxx_names.pdb"); err == nil {
		for _, n := range []int{56, 4096, 8192, len(b) / 2} {
			f.Add(b[:n])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := ReadIdentity(data); err != nil {
			return
		}
		p, err := Parse(data)
		if err != nil {
			return
		}
		for _, pr := range p.Procs {
			if pr.Module < 0 || pr.Module >= len(p.Modules) {
				t.Fatalf("procedure %q: module %d of %d", pr.Name, pr.Module, len(p.Modules))
			}
		}
		for _, d := range p.Data {
			if d.Module >= len(p.Modules) {
				t.Fatalf("data %q: module %d of %d", d.Name, d.Module, len(p.Modules))
			}
		}
		for _, c := range p.Contributions {
			if c.Module < 0 || c.Module >= len(p.Modules) {
				t.Fatalf("contribution at %#x: module %d of %d", c.RVA, c.Module, len(p.Modules))
			}
		}
		_ = p.GUIDString()
	})
}
