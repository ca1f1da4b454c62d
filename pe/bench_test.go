package pe

import (
	"os"
	"testing"

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
