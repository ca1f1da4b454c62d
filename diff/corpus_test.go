package diff

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hpbuild/hpbuild/pe"
)

// corpusDir is where ../shared/corpus/fetch.sh puts the real pairs.
func corpusDir() string {
	if dir := os.Getenv("HPBUILD_CORPUS"); dir != "" {
		return dir
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "hpbuild-corpus")
}

func corpusPair(t *testing.T, pair string) (*pe.File, *pe.File) {
	t.Helper()
	dir := corpusDir()
	old, _ := filepath.Glob(filepath.Join(dir, pair, "old.*"))
	new, _ := filepath.Glob(filepath.Join(dir, pair, "new.*"))
	if len(old) != 1 || len(new) != 1 {
		t.Skipf("corpus pair %s not fetched (make corpus)", pair)
	}
	o, err := pe.Open(old[0])
	if err != nil {
		t.Fatal(err)
	}
	n, err := pe.Open(new[0])
	if err != nil {
		t.Fatal(err)
	}
	return o, n
}

// TestCorpusControlPairIdentical: msgpackr-x64 is a rebuild with no code
// change (31 bytes differ: timestamps, PDB GUID): 0 changed functions.
func TestCorpusControlPairIdentical(t *testing.T) {
	o, n := corpusPair(t, "msgpackr-x64")
	r := Compare(o, n)
	if r.Counts[Changed]+r.Counts[Added]+r.Counts[Removed] != 0 || r.Verdict != VerdictIdentical {
		t.Fatalf("control pair: verdict %s, counts %v, want identical with every function unchanged", r.Verdict, r.Counts)
	}
	for _, ch := range r.Changes {
		if ch.Verdict != VerdictNeutral {
			t.Errorf("control pair: non-neutral change %s %s %v", ch.Kind, ch.Name, ch.Rules)
		}
	}
}

// TestCorpusPairsComplete diffs every real x86/x64 pair and logs the
// verdict, the counts and the most frequent rules.
func TestCorpusPairsComplete(t *testing.T) {
	for _, pair := range []string{"bufferutil-x64", "utf8validate-x86", "rollup-x64-gnu", "esbuild-x64", "biome-x64"} {
		t.Run(pair, func(t *testing.T) {
			if testing.Short() && pair == "biome-x64" {
				t.Skip("large pair skipped in -short mode")
			}
			o, n := corpusPair(t, pair)
			r := Compare(o, n)
			rules := map[string]int{}
			for _, f := range r.Functions {
				for _, ru := range f.Rules {
					rules[ru.ID]++
				}
			}
			for _, c := range r.Changes {
				for _, ru := range c.Rules {
					rules[ru.ID]++
				}
			}
			t.Logf("%s: verdict %s, %d changed, %d added, %d removed, %d unchanged; rules %v",
				pair, r.Verdict, r.Counts[Changed], r.Counts[Added], r.Counts[Removed], r.Counts[Unchanged], rules)
			if len(r.Functions) < len(o.Functions()) {
				t.Errorf("report lists %d functions, old image has %d", len(r.Functions), len(o.Functions()))
			}
		})
	}
}

// TestCorpusNeutralRules: the neutral rules the fixtures cannot show
// (mingw writes no timestamp, Rich header, debug directory or resources)
// on the real pairs that have them: the control rebuild differs only in
// timestamp and PDB identity; bufferutil-x64 was rebuilt with another
// MSVC toolchain and has other version resources.
func TestCorpusNeutralRules(t *testing.T) {
	for pair, want := range map[string][]string{
		"msgpackr-x64":   {"NEUTRAL-TIMESTAMP", "NEUTRAL-DEBUG"},
		"bufferutil-x64": {"NEUTRAL-RESOURCE", "NEUTRAL-TOOLCHAIN", "NEUTRAL-TIMESTAMP", "NEUTRAL-DEBUG"},
	} {
		t.Run(pair, func(t *testing.T) {
			o, n := corpusPair(t, pair)
			r := Compare(o, n)
			got := map[string]string{}
			for _, c := range r.Changes {
				for _, x := range c.Rules {
					got[x.ID] = c.Verdict
				}
			}
			for _, id := range want {
				if v, ok := got[id]; !ok || v != VerdictNeutral {
					t.Errorf("%s: %q (verdict %q), want it neutral", pair, id, v)
				}
			}
		})
	}
}
