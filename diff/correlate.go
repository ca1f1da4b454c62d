package diff

import (
	"math/bits"
	"sort"
	"strings"
)

// Match says how an old and a new function were paired.
type Match string

// Ways of pairing, strongest first.
const (
	MatchName       Match = "name"
	MatchHash       Match = "hash"
	MatchCallgraph  Match = "callgraph"
	MatchSimilarity Match = "similarity"
)

// pairing is the old<->new function correspondence.
type pairing struct {
	o2n, n2o []int   // partner index or -1
	how      []Match // by old index
	sim      []float64
	// splits pairs new functions with an old function already paired
	// under another of its names: one folded old body (identical code
	// folding) became several new functions. n2o points at the old body.
	splits [][2]int
}

func newPairing(nOld, nNew int) *pairing {
	p := &pairing{o2n: make([]int, nOld), n2o: make([]int, nNew), how: make([]Match, nOld), sim: make([]float64, nOld)}
	for i := range p.o2n {
		p.o2n[i] = -1
	}
	for i := range p.n2o {
		p.n2o[i] = -1
	}
	return p
}

func (p *pairing) pair(o, n int, how Match) bool {
	if p.o2n[o] >= 0 || p.n2o[n] >= 0 {
		return false
	}
	p.o2n[o], p.n2o[n], p.how[o] = n, o, how
	return true
}

// correlate pairs the functions of old and new.
func correlate(old, new *image) *pairing {
	p := newPairing(len(old.fns), len(new.fns))
	byName(old, new, p)
	byRole(old, new, p)
	for {
		n := byHash(old, new, p)
		n += byCallgraph(old, new, p)
		if n == 0 {
			break
		}
	}
	bySimilarity(old, new, p)
	// Similarity pairs anchor more callees.
	for byCallgraph(old, new, p)+byHash(old, new, p) > 0 {
	}
	return p
}

// names returns the real names of a function (exports, symbols, map).
func names(im *image, i int) []string {
	fn := &im.fns[i]
	if fn.Name == "" {
		return nil
	}
	return append([]string{fn.Name}, fn.Aliases...)
}

// uniqueNames maps every name that belongs to exactly one function.
func uniqueNames(im *image) map[string]int {
	m := map[string]int{}
	for i := range im.fns {
		for _, n := range names(im, i) {
			if strings.HasPrefix(n, "#") {
				continue // ordinal-only export: not a name
			}
			if j, ok := m[n]; ok && j != i {
				m[n] = -1
			} else if !ok {
				m[n] = i
			}
		}
	}
	return m
}

func byName(old, new *image, p *pairing) {
	on, nn := uniqueNames(old), uniqueNames(new)
	keys := make([]string, 0, len(on))
	for k := range on {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o := on[k]
		if n, ok := nn[k]; ok && o >= 0 && n >= 0 {
			p.pair(o, n, MatchName)
		}
	}
	// Folded bodies that the new build split: a name of an old body that
	// is already paired under another name now names a function of its own.
	for _, k := range keys {
		o := on[k]
		n, ok := nn[k]
		if !ok || o < 0 || n < 0 || p.o2n[o] < 0 || p.o2n[o] == n || p.n2o[n] >= 0 {
			continue
		}
		p.n2o[n] = o
		p.splits = append(p.splits, [2]int{o, n})
	}
}

// byRole pairs the functions the loader calls: the entry point, and the
// TLS callbacks by position when both images have the same number.
func byRole(old, new *image, p *pairing) {
	pairAt := func(o, n uint32) {
		oi, ok1 := old.index[o]
		ni, ok2 := new.index[n]
		if ok1 && ok2 {
			p.pair(oi, ni, MatchName)
		}
	}
	if old.f.EntryPoint != 0 && new.f.EntryPoint != 0 {
		pairAt(old.f.EntryPoint, new.f.EntryPoint)
	}
	if ot, nt := old.f.TLS, new.f.TLS; ot != nil && nt != nil && len(ot.Callbacks) == len(nt.Callbacks) {
		for i := range ot.Callbacks {
			pairAt(ot.Callbacks[i], nt.Callbacks[i])
		}
	}
}

// byHash pairs unpaired functions by fingerprint: a fingerprint unique
// among the unpaired functions of both images pairs them; a group of equal
// fingerprints with as many members on both sides (wrappers, thunks,
// compiler-generated helpers) pairs in address order, which a layout
// shift preserves.
func byHash(old, new *image, p *pairing) int {
	groups := func(im *image, partner []int) map[uint64][]int {
		m := map[uint64][]int{}
		for i := range im.fps {
			if partner[i] < 0 {
				m[im.fps[i].shape] = append(m[im.fps[i].shape], i)
			}
		}
		return m
	}
	og, ng := groups(old, p.o2n), groups(new, p.n2o)
	keys := make([]uint64, 0, len(og))
	for k := range og {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return og[keys[i]][0] < og[keys[j]][0] })
	added := 0
	for _, k := range keys {
		os, ns := og[k], ng[k]
		if len(os) == 0 || len(os) != len(ns) {
			continue
		}
		for i := range os { // indexes are in address order
			if p.pair(os[i], ns[i], MatchHash) {
				added++
			}
		}
	}
	return added
}

// byCallgraph pairs the callees of paired functions: the k-th call of a
// pair goes to a pair when both targets are unpaired and the two call
// lists line up (same length, or the same fingerprints in order).
func byCallgraph(old, new *image, p *pairing) int {
	added := 0
	for o := range old.fps {
		n := p.o2n[o]
		if n < 0 {
			continue
		}
		oc, nc := old.fps[o].calls, new.fps[n].calls
		if len(oc) == len(nc) {
			for k := range oc {
				if p.o2n[oc[k]] < 0 && p.n2o[nc[k]] < 0 && sizeClose(old, oc[k], new, nc[k]) {
					if p.pair(oc[k], nc[k], MatchCallgraph) {
						added++
					}
				}
				// The same old callee at this call site is already paired
				// with another new function, and the new callee is unpaired
				// and alike: a folded body that the new build split.
				if on := p.o2n[oc[k]]; on >= 0 && on != nc[k] && p.n2o[nc[k]] < 0 && repeated(oc, oc[k]) &&
					jaccard(shingles(old.fps[oc[k]].masked), shingles(new.fps[nc[k]].masked)) >= 0.5 {
					p.n2o[nc[k]] = oc[k]
					p.splits = append(p.splits, [2]int{oc[k], nc[k]})
					added++
				}
			}
			continue
		}
		// Different lengths: pair unpaired targets with equal fingerprints,
		// in order (a longest-common-subsequence walk).
		for _, pr := range lcsPairs(old, oc, new, nc) {
			if p.o2n[pr[0]] < 0 && p.n2o[pr[1]] < 0 && p.pair(pr[0], pr[1], MatchCallgraph) {
				added++
			}
		}
	}
	return added
}

// repeated reports whether x occurs more than once in calls.
func repeated(calls []int, x int) bool {
	n := 0
	for _, c := range calls {
		if c == x {
			n++
		}
	}
	return n > 1
}

func sizeClose(old *image, o int, new *image, n int) bool {
	a, b := old.fns[o].Size, new.fns[n].Size
	if a > b {
		a, b = b, a
	}
	return b <= 2*a+16
}

const maxLCS = 256

func lcsPairs(old *image, oc []int, new *image, nc []int) [][2]int {
	if len(oc) > maxLCS || len(nc) > maxLCS {
		return nil
	}
	eq := func(i, j int) bool { return old.fps[oc[i]].shape == new.fps[nc[j]].shape }
	dp := make([][]int, len(oc)+1)
	for i := range dp {
		dp[i] = make([]int, len(nc)+1)
	}
	for i := len(oc) - 1; i >= 0; i-- {
		for j := len(nc) - 1; j >= 0; j-- {
			if eq(i, j) {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < len(oc) && j < len(nc); {
		switch {
		case eq(i, j):
			out = append(out, [2]int{oc[i], nc[j]})
			i, j = i+1, j+1
		case dp[i+1][j] >= dp[i][j+1]:
			i++
		default:
			j++
		}
	}
	return out
}

// bySimilarity pairs what is left by the similarity of the masked code
// (4-byte shingles), among candidates of similar size: new functions are
// bucketed by log2 of their size and each old function is compared with
// at most maxCandidates of the nearest sizes. Best scores pair first.
func bySimilarity(old, new *image, p *pairing) {
	const maxCandidates = 32
	const threshold = 0.5
	buckets := map[int][]int{}
	for n := range new.fps {
		if p.n2o[n] < 0 {
			b := bucket(new.fns[n].Size)
			buckets[b] = append(buckets[b], n)
		}
	}
	type cand struct {
		o, n  int
		score float64
	}
	var cands []cand
	sigs := map[int]map[uint32]struct{}{}
	sig := func(im *image, i int, key int) map[uint32]struct{} {
		if s, ok := sigs[key]; ok {
			return s
		}
		s := shingles(im.fps[i].masked)
		sigs[key] = s
		return s
	}
	for o := range old.fps {
		if p.o2n[o] >= 0 {
			continue
		}
		b := bucket(old.fns[o].Size)
		var pool []int
		for d := -1; d <= 1; d++ {
			pool = append(pool, buckets[b+d]...)
		}
		sz := int64(old.fns[o].Size)
		sort.Slice(pool, func(i, j int) bool {
			di, dj := abs64(int64(new.fns[pool[i]].Size)-sz), abs64(int64(new.fns[pool[j]].Size)-sz)
			if di != dj {
				return di < dj
			}
			return pool[i] < pool[j]
		})
		if len(pool) > maxCandidates {
			pool = pool[:maxCandidates]
		}
		so := sig(old, o, -1-o)
		for _, n := range pool {
			s := jaccard(so, sig(new, n, n))
			if s >= threshold {
				cands = append(cands, cand{o, n, s})
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].score != cands[j].score {
			return cands[i].score > cands[j].score
		}
		if cands[i].o != cands[j].o {
			return cands[i].o < cands[j].o
		}
		return cands[i].n < cands[j].n
	})
	for _, c := range cands {
		if p.pair(c.o, c.n, MatchSimilarity) {
			p.sim[c.o] = c.score
		}
	}
}

func bucket(size uint32) int { return bits.Len32(size) }

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

const maxShingles = 4096

func shingles(b []byte) map[uint32]struct{} {
	m := make(map[uint32]struct{}, min(len(b), maxShingles))
	for i := 0; i+4 <= len(b) && len(m) < maxShingles; i++ {
		m[uint32(b[i])|uint32(b[i+1])<<8|uint32(b[i+2])<<16|uint32(b[i+3])<<24] = struct{}{}
	}
	return m
}

func jaccard(a, b map[uint32]struct{}) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	inter := 0
	for k := range a {
		if _, ok := b[k]; ok {
			inter++
		}
	}
	return float64(inter) / float64(len(a)+len(b)-inter)
}
