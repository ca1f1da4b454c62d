package diff

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// TestSortFunctionsIsStableSort protects the report's order: sortFunctions
// must give exactly what a stable sort by (new RVA, removed last; old RVA)
// gives, ties included.
func TestSortFunctionsIsStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		fs := make([]Function, n)
		for i := range fs {
			fs[i] = Function{Name: string(rune('a' + i%26)), NewRVA: uint32(rng.IntN(8)), OldRVA: uint32(rng.IntN(4)), old: i}
			if rng.IntN(4) == 0 {
				fs[i].Status = Removed
			}
		}
		want := slices.Clone(fs)
		sort.SliceStable(want, func(i, j int) bool {
			a, b := &want[i], &want[j]
			ka, kb := a.NewRVA, b.NewRVA
			if a.Status == Removed {
				ka = 1<<32 - 1
			}
			if b.Status == Removed {
				kb = 1<<32 - 1
			}
			if ka != kb {
				return ka < kb
			}
			return a.OldRVA < b.OldRVA
		})
		sortFunctions(fs)
		for i := range fs {
			if fs[i].old != want[i].old {
				t.Fatalf("n=%d: entry %d is %d, want %d", n, i, fs[i].old, want[i].old)
			}
		}
	}
}

// TestSortParallelIsSort checks the two-core sort against slices.SortFunc,
// with many equal keys (as similarity scores have).
func TestSortParallelIsSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type pair struct{ k, i int }
	cmp := func(a, b pair) int {
		if a.k != b.k {
			return a.k - b.k
		}
		return a.i - b.i
	}
	for _, n := range []int{0, 1, 100, 1 << 14, 100000} {
		for _, keys := range []int{1, 3, 1000} {
			s := make([]pair, n)
			for i := range s {
				s[i] = pair{rng.IntN(keys), i}
			}
			rng.Shuffle(n, func(i, j int) { s[i], s[j] = s[j], s[i] })
			want := slices.Clone(s)
			slices.SortFunc(want, cmp)
			sortParallel(s, cmp)
			if !slices.Equal(s, want) {
				t.Fatalf("n=%d keys=%d: sortParallel differs from slices.SortFunc", n, keys)
			}
		}
	}
}
