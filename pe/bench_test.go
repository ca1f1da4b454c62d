package pe

import (
	"errors"
	"os"
	"testing"

	"github.com/hpbuild/hpbuild/internal/benchpdb"

	"golang.org/x/arch/x86/x86asm"
)

// benchCorpus loads a corpus file for a benchmark, or skips.
func benchCorpus(b *testing.B, pair string) []byte {
	data, err := os.ReadFile(corpusFile(b, pair, "old"))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkOpen builds the function table and reference map of real
// binaries (biome.exe: 33 MB, 90k .pdata functions).
func BenchmarkOpen(b *testing.B) {
	for _, pair := range []string{"esbuild-x64", "biome-x64"} {
		b.Run(pair, func(b *testing.B) {
			data := benchCorpus(b, pair)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := OpenBytes(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeFloor is the baseline for BenchmarkOpen: one bare linear
// x86asm decode pass over the same file's executable sections.
func BenchmarkDecodeFloor(b *testing.B) {
	for _, pair := range []string{"esbuild-x64", "biome-x64"} {
		b.Run(pair, func(b *testing.B) { decodeFloor(b, benchCorpus(b, pair)) })
	}
}

// decodeFloor decodes the executable sections of data once per iteration.
func decodeFloor(b *testing.B, data []byte) {
	f, err := OpenBytes(data, HeadersOnly())
	if err != nil {
		b.Fatal(err)
	}
	var code [][]byte
	for _, s := range f.Sections {
		if s.Executable() {
			code = append(code, f.Bytes(s.VirtualAddress, int(s.SizeOfRawData)))
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range code {
			for len(c) > 0 {
				in, err := x86asm.Decode(c, 64)
				n := in.Len
				if err != nil || n <= 0 {
					n = 1
				}
				c = c[n:]
			}
		}
	}
}

// BenchmarkDecodeFloorFile is BenchmarkDecodeFloor for the file named by
// HPBUILD_FLOOR_FILE (used by scripts/bench-corpus.sh).
func BenchmarkDecodeFloorFile(b *testing.B) {
	path := os.Getenv("HPBUILD_FLOOR_FILE")
	if path == "" {
		b.Skip("HPBUILD_FLOOR_FILE not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	decodeFloor(b, data)
}

// BenchmarkOpenWithPDB models the generated benchmark image (26,000
// exported functions, see internal/benchpdb) with its 30+ MB PDB and, as
// the baseline in the same run, without it: the difference is what
// reading the PDB and taking its extents costs the image model.
func BenchmarkOpenWithPDB(b *testing.B) {
	dll, pdbPath, err := benchpdb.Build()
	if errors.Is(err, benchpdb.ErrNoToolchain) {
		b.Skipf("no benchmark PDB: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		opts []Option
	}{{"no-pdb", nil}, {"pdb", []Option{WithPDB(pdbPath)}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var f *File
			for b.Loop() {
				if f, err = Open(dll, c.opts...); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
			b.ReportMetric(float64(len(f.Functions())), "functions")
		})
	}
}
