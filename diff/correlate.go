package diff

import (
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
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
	how      []uint8 // by old index: index in matches
	sim      []float64
	// splits pairs new functions with an old function already paired
	// under another of its names: one folded old body (identical code
	// folding) became several new functions. n2o points at the old body.
	splits [][2]int
}

// matches are the values of pairing.how: one byte each instead of a string.
var matches = [...]Match{"", MatchName, MatchHash, MatchCallgraph, MatchSimilarity}

// match returns how old function o was paired ("" when it was not).
func (p *pairing) match(o int) Match { return matches[p.how[o]] }

func newPairing(nOld, nNew int) *pairing {
	p := &pairing{o2n: make([]int, nOld), n2o: make([]int, nNew), how: make([]uint8, nOld), sim: make([]float64, nOld)}
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
	p.o2n[o], p.n2o[n], p.how[o] = n, o, uint8(slices.Index(matches[:], how))
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
	return append([]string{fn.Name}, fn.Aliases()...)
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
	keys := slices.Sorted(maps.Keys(on))
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
		oi, ok1 := old.index(o)
		ni, ok2 := new.index(n)
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
	// The unpaired functions of each side sorted by (fingerprint, index):
	// a group of equal fingerprints is a run, its members in address order.
	type member struct {
		shape uint64
		idx   int32
	}
	groups := func(im *image, partner []int) []member {
		n := 0
		for i := range im.fps {
			if partner[i] < 0 {
				n++
			}
		}
		ms := make([]member, 0, n)
		for i := range im.fps {
			if partner[i] < 0 {
				ms = append(ms, member{im.fps[i].shape, int32(i)})
			}
		}
		slices.SortFunc(ms, func(a, b member) int {
			if a.shape != b.shape {
				return cmpU64(a.shape, b.shape)
			}
			return int(a.idx - b.idx)
		})
		return ms
	}
	run := func(ms []member, i int) int {
		j := i
		for j < len(ms) && ms[j].shape == ms[i].shape {
			j++
		}
		return j
	}
	og, ng := groups(old, p.o2n), groups(new, p.n2o)
	added := 0
	// Every function is in one group and is unpaired: the groups pair
	// independently of each other.
	for i, j := 0, 0; i < len(og); {
		ie := run(og, i)
		for j < len(ng) && ng[j].shape < og[i].shape {
			j++
		}
		je := j
		if j < len(ng) && ng[j].shape == og[i].shape {
			je = run(ng, j)
		}
		if ie-i == je-j {
			for k := 0; k < ie-i; k++ { // indexes are in address order
				if p.pair(int(og[i+k].idx), int(ng[j+k].idx), MatchHash) {
					added++
				}
			}
		}
		i, j = ie, je
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
		oc, nc := old.calls(o), new.calls(n)
		if len(oc) == len(nc) {
			for k := range oc {
				oi, ni := int(oc[k]), int(nc[k])
				if p.o2n[oi] < 0 && p.n2o[ni] < 0 && sizeClose(old, oi, new, ni) {
					if p.pair(oi, ni, MatchCallgraph) {
						added++
					}
				}
				// The same old callee at this call site is already paired
				// with another new function, and the new callee is unpaired
				// and alike: a folded body that the new build split.
				if on := p.o2n[oi]; on >= 0 && on != ni && p.n2o[ni] < 0 && repeated(oc, oc[k]) &&
					similarity(old, oi, new, ni) >= 0.5 {
					p.n2o[ni] = oi
					p.splits = append(p.splits, [2]int{oi, ni})
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
func repeated(calls []int32, x int32) bool {
	n := 0
	for _, c := range calls {
		if c == x {
			n++
		}
	}
	return n > 1
}

func sizeClose(old *image, o int, new *image, n int) bool {
	return sizesClose(old.fns[o].Size, new.fns[n].Size)
}

// sizesClose reports whether two function sizes are within a factor of
// about two of each other.
func sizesClose(a, b uint32) bool {
	if a > b {
		a, b = b, a
	}
	return b <= 2*a+16
}

const maxLCS = 256

func lcsPairs(old *image, oc []int32, new *image, nc []int32) [][2]int {
	if len(oc) > maxLCS || len(nc) > maxLCS {
		return nil
	}
	eq := func(i, j int) bool { return old.fps[oc[i]].shape == new.fps[nc[j]].shape }
	// dp[i*w+j] is the LCS length of oc[i:] and nc[j:], in one flat table.
	w := len(nc) + 1
	dp := make([]int16, (len(oc)+1)*w)
	for i := len(oc) - 1; i >= 0; i-- {
		for j := len(nc) - 1; j >= 0; j-- {
			if eq(i, j) {
				dp[i*w+j] = dp[(i+1)*w+j+1] + 1
			} else {
				dp[i*w+j] = max(dp[(i+1)*w+j], dp[i*w+j+1])
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < len(oc) && j < len(nc); {
		switch {
		case eq(i, j):
			out = append(out, [2]int{int(oc[i]), int(nc[j])})
			i, j = i+1, j+1
		case dp[(i+1)*w+j] >= dp[i*w+j+1]:
			i++
		default:
			j++
		}
	}
	return out
}

// bySimilarity pairs what is left by the similarity of the masked code.
// Each function gets a one-permutation MinHash sketch of its 4-byte
// shingles; functions whose sketches agree on any band of a locality-
// sensitive hash are candidates (near-linear, never all pairs); candidates
// of similar size are scored by sketch agreement, and the best scores
// pair first (ties by address, so the result is deterministic).
func bySimilarity(old, new *image, p *pairing) {
	const threshold = 0.5
	const maxCandidates = 128
	const maxBandMembers = 256
	const keepPerFunction = 32
	var olds, news []int
	for o := range old.fps {
		if p.o2n[o] < 0 {
			olds = append(olds, o)
		}
	}
	for n := range new.fps {
		if p.n2o[n] < 0 {
			news = append(news, n)
		}
	}
	if len(olds) == 0 || len(news) == 0 {
		return
	}
	osk := make([]sketch, len(olds))
	nsk := make([]sketch, len(news))
	parallel(len(olds), func(i int) { osk[i] = old.sketchOf(olds[i]) })
	parallel(len(news), func(i int) { nsk[i] = new.sketchOf(news[i]) })
	// Band keys of the new functions, sorted, so that the members of a
	// band are a run (a map of slices would be several times larger).
	type entry struct {
		key uint64
		idx int32
	}
	bands := make([]entry, 0, len(nsk)*sketchBands)
	for i := range nsk {
		for b := 0; b < sketchBands; b++ {
			if k, ok := nsk[i].band(b); ok {
				bands = append(bands, entry{k, int32(i)})
			}
		}
	}
	sortParallel(bands, func(a, b entry) int {
		if a.key != b.key {
			return cmpU64(a.key, b.key)
		}
		return int(a.idx) - int(b.idx)
	})
	// The distinct band keys and where each one's run starts in bands.
	var keys []uint64
	var runs []int32
	for i := range bands {
		if i == 0 || bands[i].key != bands[i-1].key {
			keys = append(keys, bands[i].key)
			runs = append(runs, int32(i))
		}
	}
	runs = append(runs, int32(len(bands)))
	// members returns the new functions sharing band key k, or nil when
	// there are more than maxBandMembers: such a band says nothing.
	members := func(k uint64) []entry {
		i, found := slices.BinarySearch(keys, k)
		if !found || runs[i+1]-runs[i] > maxBandMembers {
			return nil
		}
		return bands[runs[i]:runs[i+1]]
	}
	// The sizes of the unpaired new functions, close together.
	nsize := make([]uint32, len(news))
	for j, n := range news {
		nsize[j] = new.fns[n].Size
	}
	// cand is kept to 16 bytes: a big image has millions.
	type cand struct {
		o, n  int32
		score float32 // estimated Jaccard similarity: a fraction of at most sketchBins bins
		drift float32 // distance of relative positions in the two images
	}
	drift := func(o, n int) float32 {
		d := float64(o)/float64(len(old.fns)) - float64(n)/float64(len(new.fns))
		if d < 0 {
			d = -d
		}
		return float32(d)
	}
	order := func(a, b cand) int {
		switch {
		case a.score != b.score:
			if a.score > b.score {
				return -1
			}
			return 1
		case a.drift != b.drift:
			if a.drift < b.drift {
				return -1
			}
			return 1
		case a.o != b.o:
			return int(a.o - b.o)
		}
		return int(a.n - b.n)
	}
	// Only the best few candidates per function can win the greedy
	// pairing below: each old function keeps at most keepPerFunction of
	// them, exactly sized (most have far fewer).
	kept := make([][]cand, len(olds))
	type scratch struct {
		seen  []int32  // stamp per new function: already in nears
		nears []uint64 // size distance << 32 | index in news
		cs    []cand
	}
	scratchPool := sync.Pool{New: func() any { return &scratch{} }}
	parallel(len(olds), func(i int) {
		sc := scratchPool.Get().(*scratch)
		defer scratchPool.Put(sc)
		// The new functions sharing a band with this one, each once (a
		// stamp per worker instead of sorting and deduplicating).
		if sc.seen == nil {
			sc.seen = make([]int32, len(nsk))
		}
		stamp := int32(i + 1)
		o := olds[i]
		sz := int64(old.fns[o].Size)
		// Candidates of similar size, nearest sizes first: the key is the
		// size distance, then the index, in one integer.
		nears := sc.nears[:0]
		for b := 0; b < sketchBands; b++ {
			if k, ok := osk[i].band(b); ok {
				for _, m := range members(k) {
					if sc.seen[m.idx] == stamp {
						continue
					}
					sc.seen[m.idx] = stamp
					if ns := nsize[m.idx]; sizesClose(uint32(sz), ns) {
						d := uint64(abs64(int64(ns) - sz))
						nears = append(nears, d<<32|uint64(m.idx))
					}
				}
			}
		}
		if len(nears) > maxCandidates {
			// Only the nearest maxCandidates are scored; their order
			// does not matter (cs is ordered below).
			slices.Sort(nears)
		}
		sc.nears = nears
		cs := sc.cs[:0]
		for _, key := range nears[:min(len(nears), maxCandidates)] {
			j := int32(uint32(key))
			n := news[j]
			if s := osk[i].similarity(&nsk[j]); s >= threshold {
				cs = append(cs, cand{int32(o), int32(n), float32(s), drift(o, n)})
			}
		}
		sc.cs = cs
		if len(cs) > keepPerFunction {
			// Keep the best; their order does not matter (cands is
			// ordered below).
			slices.SortFunc(cs, order)
		}
		if len(cs) > 0 {
			kept[i] = slices.Clone(cs[:min(len(cs), keepPerFunction)])
		}
	})
	total := 0
	for _, k := range kept {
		total += len(k)
	}
	cands := make([]cand, 0, total)
	for i, k := range kept {
		cands = append(cands, k...)
		kept[i] = nil
	}
	sortParallel(cands, order)
	for _, c := range cands {
		if p.pair(int(c.o), int(c.n), MatchSimilarity) {
			p.sim[c.o] = round3(float64(c.score))
		}
	}
}

// sortParallel sorts s by cmp in place, using two cores: one partition
// step around a pivot (the median of three elements), then each side is
// sorted on its own core. Every element of the first side orders before
// every element of the second, so the result is that of one sort.
func sortParallel[T any](s []T, cmp func(a, b T) int) {
	if len(s) < 1<<14 || runtime.GOMAXPROCS(0) < 2 {
		slices.SortFunc(s, cmp)
		return
	}
	x, y, z := s[0], s[len(s)/2], s[len(s)-1]
	if cmp(y, x) < 0 {
		x, y = y, x
	}
	if cmp(z, y) < 0 {
		y = z
		if cmp(y, x) < 0 {
			y = x
		}
	}
	pivot := y
	i := 0
	for j := range s {
		if cmp(s[j], pivot) < 0 {
			s[i], s[j] = s[j], s[i]
			i++
		}
	}
	a, b := s[:i], s[i:]
	done := make(chan struct{})
	go func() {
		slices.SortFunc(a, cmp)
		close(done)
	}()
	slices.SortFunc(b, cmp)
	<-done
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const (
	sketchBins  = 32
	sketchBands = 16 // of sketchBins/sketchBands bins each
	emptyBin    = ^uint32(0)
)

// sketch is a one-permutation MinHash of a byte string's 4-byte shingles.
type sketch [sketchBins]uint32

func newSketch(b []byte) sketch {
	var s sketch
	for i := range s {
		s[i] = emptyBin
	}
	for i := 0; i+4 <= len(b); i++ {
		x := uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24
		x *= 0x9e3779b97f4a7c15
		x ^= x >> 29
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 32
		bin := x % sketchBins
		v := uint32(x >> 32)
		if v < s[bin] {
			s[bin] = v
		}
	}
	s.densify()
	return s
}

// densify fills the empty bins of a short function's sketch from the next
// non-empty bin (rotation densification), so that small functions have
// bands too and sketches of equal shingle sets stay equal.
func (s *sketch) densify() {
	first := -1
	for i := range s {
		if s[i] != emptyBin {
			first = i
			break
		}
	}
	if first < 0 {
		return
	}
	var out sketch
	for i := range s {
		if s[i] != emptyBin {
			out[i] = s[i]
			continue
		}
		for d := 1; d < sketchBins; d++ {
			if v := s[(i+d)%sketchBins]; v != emptyBin {
				out[i] = v ^ uint32(d)*0x9e3779b1
				break
			}
		}
	}
	*s = out
}

// band returns the LSH key of band b, and false when a bin is empty.
func (s *sketch) band(b int) (uint64, bool) {
	const w = sketchBins / sketchBands
	k := uint64(b) * 0x100000001b3
	for i := b * w; i < (b+1)*w; i++ {
		if s[i] == emptyBin {
			return 0, false
		}
		k = (k ^ uint64(s[i])) * 0x100000001b3
	}
	return k, true
}

// similarity estimates the Jaccard similarity of the shingle sets.
func (s *sketch) similarity(t *sketch) float64 {
	same, used := 0, 0
	for i := range s {
		if s[i] == emptyBin && t[i] == emptyBin {
			continue
		}
		used++
		if s[i] == t[i] {
			same++
		}
	}
	if used == 0 {
		return 1
	}
	return float64(same) / float64(used)
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
