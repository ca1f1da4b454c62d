package pe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir returns the directory of ../shared/corpus/fetch.sh downloads,
// or skips the test when they are not there.
func corpusDir(t testing.TB) string {
	dir := os.Getenv("HPBUILD_CORPUS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "hpbuild-corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "msgpackr-x64")); err != nil {
		t.Skipf("real-world corpus not found in %s (run make corpus to fetch it)", dir)
	}
	return dir
}

func corpusFile(t testing.TB, pair, which string) string {
	dir := corpusDir(t)
	m, _ := filepath.Glob(filepath.Join(dir, pair, which+".*"))
	if len(m) != 1 {
		t.Skipf("corpus pair %s/%s not fetched", pair, which)
	}
	return m[0]
}

// TestCorpusOpens opens every real x64/x86 file of the corpus and checks
// that the x64 function table reconciles with .pdata.
func TestCorpusOpens(t *testing.T) {
	for _, pair := range []string{"msgpackr-x64", "bufferutil-x64", "utf8validate-x86", "rollup-x64-gnu", "esbuild-x64", "biome-x64"} {
		for _, which := range []string{"old", "new"} {
			t.Run(pair+"/"+which, func(t *testing.T) {
				if testing.Short() && strings.HasPrefix(pair, "biome") {
					t.Skip("large file skipped in -short mode")
				}
				f, err := Open(corpusFile(t, pair, which))
				if err != nil {
					t.Fatal(err)
				}
				fns := f.Functions()
				src := map[string]int{}
				partial := 0
				for _, fn := range fns {
					for _, s := range fn.Sources.Strings() {
						src[s]++
					}
					if fn.Partial {
						partial++
					}
				}
				primaries, frags := 0, 0
				for _, rf := range f.Unwind {
					if rf.Parent == 0 {
						primaries++
					} else {
						frags++
					}
				}
				t.Logf("%s: %d functions, pdata %d (%d primary, %d fragments), sources %v, partial %d, warnings %d",
					f.Machine, len(fns), len(f.Unwind), primaries, frags, src, partial, len(f.Warnings))
				for _, w := range f.Warnings {
					t.Logf("warning: %s", w)
					if strings.Contains(w, "discovery stopped") {
						t.Errorf("function discovery did not converge: %s", w)
					}
				}
				// Every primary RUNTIME_FUNCTION is a function, or a .cold
				// part attached to one as a chunk.
				primary := map[uint32]bool{}
				for _, rf := range f.Unwind {
					if rf.Parent == 0 {
						primary[rf.BeginAddress] = true
					}
				}
				coldParts := 0
				for _, fn := range fns {
					for _, c := range fn.Chunks() {
						if primary[c.RVA] {
							coldParts++
						}
					}
				}
				t.Logf("%d primary .pdata entries attached as .cold parts", coldParts)
				if f.Is64 && src["pdata"]+coldParts != primaries {
					t.Errorf("%d functions carry the pdata source and %d entries are .cold parts, want %d primary RUNTIME_FUNCTIONs in all", src["pdata"], coldParts, primaries)
				}
				checkNoOverlap(t, f)
			})
		}
	}
}

// TestCorpusARM64Refused checks the clean refusal of the ARM64 pair.
func TestCorpusARM64Refused(t *testing.T) {
	_, err := Open(corpusFile(t, "crc32-arm64", "old"))
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "unsupported machine ARM64 (0xaa64)") {
		t.Fatalf("Open(ARM64) = %v, want an UnsupportedError naming ARM64 (0xaa64)", err)
	}
}

// checkNoOverlap asserts that no function starts inside another one.
func checkNoOverlap(t *testing.T, f *File) {
	t.Helper()
	fns := f.Functions()
	bad := 0
	for i := 1; i < len(fns); i++ {
		if fns[i].RVA < fns[i-1].End() {
			if bad < 10 {
				t.Errorf("function %s at %#x starts inside %s [%#x,%#x) (sources %s / %s)", fns[i].DisplayName(), fns[i].RVA,
					fns[i-1].DisplayName(), fns[i-1].RVA, fns[i-1].End(), fns[i].Sources, fns[i-1].Sources)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d functions start inside another", bad)
	}
}
