package pdb

import (
	"errors"
	"os"
	"testing"

	"github.com/hpbuild/hpbuild/internal/benchpdb"
)

// bigPDB returns the generated benchmark PDB (see internal/benchpdb),
// skipping when clang and lld-link are not installed.
func bigPDB(b *testing.B) string {
	b.Helper()
	_, p, err := benchpdb.Build()
	if errors.Is(err, benchpdb.ErrNoToolchain) {
		b.Skipf("no benchmark PDB: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPDBReadFile is the floor for BenchmarkPDBOpen: reading the
// same file into memory, sequentially, in the same run.
func BenchmarkPDBReadFile(b *testing.B) {
	p := bigPDB(b)
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPDBOpen reads and parses the 30+ MB benchmark PDB: container,
// DBI, every module's symbols, publics, globals and the type sizes of
// every data object.
func BenchmarkPDBOpen(b *testing.B) {
	p := bigPDB(b)
	st, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var f *File
	for b.Loop() {
		if f, err = Open(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(f.Procs)), "procs")
	b.ReportMetric(float64(len(f.Data)), "data")
	b.ReportMetric(float64(st.Size())/(1<<20), "MB")
}

// BenchmarkPDBParse is BenchmarkPDBOpen without the read: the file is in
// memory (as when pe maps it), so what remains is the parse's own cost.
func BenchmarkPDBParse(b *testing.B) {
	data, err := os.ReadFile(bigPDB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
