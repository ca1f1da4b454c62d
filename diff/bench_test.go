package diff

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hpbuild/hpbuild/pe"
)

// BenchmarkDiff runs the whole comparison (both images modelled, then
// compared) on real pairs of ../shared/corpus; compare with
// pe.BenchmarkDecodeFloor and scripts/bench-corpus.sh (bsdiff, RSS).
func BenchmarkDiff(b *testing.B) {
	dir := corpusDir()
	for _, pair := range []string{"msgpackr-x64", "rollup-x64-gnu", "esbuild-x64", "biome-x64"} {
		b.Run(pair, func(b *testing.B) {
			old, _ := filepath.Glob(filepath.Join(dir, pair, "old.*"))
			new, _ := filepath.Glob(filepath.Join(dir, pair, "new.*"))
			if len(old) != 1 || len(new) != 1 {
				b.Skipf("corpus pair %s not fetched (make corpus)", pair)
			}
			od, err := os.ReadFile(old[0])
			if err != nil {
				b.Fatal(err)
			}
			nd, err := os.ReadFile(new[0])
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(od) + len(nd)))
			b.ReportAllocs()
			for b.Loop() {
				o, err := pe.OpenBytes(od)
				if err != nil {
					b.Fatal(err)
				}
				n, err := pe.OpenBytes(nd)
				if err != nil {
					b.Fatal(err)
				}
				Compare(o, n)
			}
		})
	}
}

// BenchmarkDiffFixture is the small, always-available case.
func BenchmarkDiffFixture(b *testing.B) {
	o, n := openPair(b, "../testdata/cxx_vtable", "x64", "stripped")
	b.ReportAllocs()
	for b.Loop() {
		Compare(o, n)
	}
}
