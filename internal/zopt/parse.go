package zopt

import "math/bits"

// Match finding: hash chains over the dictionary and the data together,
// every position linked, one chain on 4-byte and a short one on 3-byte
// prefixes. A match of searchEnough bytes or more ends the search and is
// taken as it is (the parse does not look inside it).
const (
	maxHash4Log = 18
	maxHash3Log = 16
	// searchEnough is zstd's "sufficient length" (targetLength).
	searchEnough = 999
)

// matcher finds matches in buf (dictionary then data).
type matcher struct {
	buf          []byte
	prev4, prev3 []int32 // the previous position with the same hash, or -1
	depth4       int     // candidates tried per position on each chain
	depth3       int

	// The matches found at each position, kept for the next parse:
	// found[at[p]:at[p]+n[p]], at[p] = -1 until searched.
	found []match
	at    []int32
	n     []uint8
}

func newMatcher(buf []byte, depth4, depth3 int) *matcher {
	m := &matcher{buf: buf, prev4: make([]int32, len(buf)), prev3: make([]int32, len(buf)),
		depth4: depth4, depth3: depth3, at: make([]int32, len(buf)), n: make([]uint8, len(buf))}
	// Hash tables about the size of the input, within limits.
	hash4Log := min(maxHash4Log, max(8, bits.Len(uint(len(buf)))))
	hash3Log := min(maxHash3Log, hash4Log)
	head4 := make([]int32, 1<<hash4Log)
	head3 := make([]int32, 1<<hash3Log)
	for i := range head4 {
		head4[i] = -1
	}
	for i := range head3 {
		head3[i] = -1
	}
	for p := range buf {
		m.prev4[p], m.prev3[p], m.at[p] = -1, -1, -1
		if p+4 <= len(buf) {
			v := uint32(buf[p]) | uint32(buf[p+1])<<8 | uint32(buf[p+2])<<16 | uint32(buf[p+3])<<24
			h := v * 2654435761 >> (32 - hash4Log)
			m.prev4[p], head4[h] = head4[h], int32(p)
		}
		if p+3 <= len(buf) {
			v := uint32(buf[p]) | uint32(buf[p+1])<<8 | uint32(buf[p+2])<<16
			h := v * 2654435761 >> (32 - hash3Log)
			m.prev3[p], head3[h] = head3[h], int32(p)
		}
	}
	return m
}

// match is a candidate: a match of n bytes at offset off.
type match struct {
	n, off uint32
}

func (m *matcher) length(p, q, end int) int {
	n := 0
	for p+n < end && m.buf[p+n] == m.buf[q+n] {
		n++
	}
	return n
}

// find returns the matches at p (not beyond end, the same at every call)
// by increasing length, each the nearest one found that is that long.
func (m *matcher) find(p, end int) []match {
	if m.at[p] < 0 {
		from := len(m.found)
		m.found = m.search(m.found, p, end)
		m.at[p], m.n[p] = int32(from), uint8(len(m.found)-from)
	}
	return m.found[m.at[p] : m.at[p]+int32(m.n[p])]
}

func (m *matcher) search(ms []match, p, end int) []match {
	best, from := minMatch-1, len(ms)
	for c, d := m.prev3[p], 0; c >= 0 && d < m.depth3; c, d = m.prev3[c], d+1 {
		if n := m.length(p, int(c), end); n > best {
			best = n
			ms = append(ms, match{uint32(n), uint32(p - int(c))})
			break
		}
	}
	for c, d := m.prev4[p], 0; c >= 0 && d < m.depth4 && best < searchEnough && len(ms)-from < 255; c, d = m.prev4[c], d+1 {
		q := int(c)
		if p+best >= end || m.buf[q+best] != m.buf[p+best] {
			continue
		}
		if n := m.length(p, q, end); n > best {
			best = n
			ms = append(ms, match{uint32(n), uint32(p - q)})
		}
	}
	return ms
}

// prices holds the cost of each symbol in 1/256 bits.
type prices struct {
	lit [256]int32
	ll  [36]int32
	ml  [53]int32
	of  [32]int32
	// The price of each match length below searchEnough, code and extra
	// bits.
	matchLens [searchEnough]int32
}

// stats counts the symbols of a parse.
type stats struct {
	lit [256]uint32
	ll  [36]uint32
	ml  [53]uint32
	of  [32]uint32
}

func (st *stats) add(lits []byte, seqs []seq) {
	for _, b := range lits {
		st.lit[b]++
	}
	for _, s := range seqs {
		st.ll[llCode(s.litLen)]++
		st.ml[mlCode(s.matchLen)]++
		st.of[ofCode(s.offBase)]++
	}
}

// setPrices sets p[s] to -log2 of the probability of s, at most capBits,
// every count raised by smooth/4: unseen symbols stay possible, and on
// small inputs, whose few literals Huffman codes barely below 8 bits, a
// flatter literal price than the counts say parses better.
func setPrices(p []int32, count []uint32, capBits int32, smooth uint32) {
	total := uint32(0)
	for _, c := range count {
		total += c*4 + smooth
	}
	for s, c := range count {
		p[s] = min(log2fix(total)-log2fix(c*4+smooth), capBits<<8)
	}
}

func (st *stats) prices(smooth uint32) *prices {
	p := new(prices)
	setPrices(p.lit[:], st.lit[:], 11, smooth)
	setPrices(p.ll[:], st.ll[:], 9, smooth)
	setPrices(p.ml[:], st.ml[:], 9, smooth)
	setPrices(p.of[:], st.of[:], 8, smooth)
	for n := minMatch; n < searchEnough; n++ {
		c := mlCode(uint32(n))
		p.matchLens[n] = p.ml[c] + int32(mlBits[c])<<8
	}
	return p
}

// initialStats are the first parse's guesses: the block's bytes as
// literals and the predefined distributions for the codes.
func initialStats(block []byte) *stats {
	st := new(stats)
	for _, b := range block {
		st.lit[b]++
	}
	for k, c := range [][]uint32{st.ll[:], st.of[:], st.ml[:]} {
		for s, n := range predefined[k].norm {
			c[s] = uint32(max(n, 1))
		}
	}
	return st
}

func (p *prices) litLen(n uint32) int32 {
	// The parse prices literal runs up to the end of the block, one more
	// than a sequence can carry (its match would run past the block):
	// those get the longest code's price.
	c := llCode(min(n, maxLitLen))
	return p.ll[c] + int32(llBits[c])<<8
}

func (p *prices) matchLen(n uint32) int32 {
	if n < searchEnough {
		return p.matchLens[n]
	}
	c := mlCode(n)
	return p.ml[c] + int32(mlBits[c])<<8
}

func (p *prices) offset(offBase uint32) int32 {
	c := ofCode(offBase)
	return p.of[c] + int32(c)<<8
}

// node is the cheapest way found to reach a position of the block.
type node struct {
	cost     int32
	litLen   uint32 // literals since the last match
	matchLen uint32 // 0: reached by a literal
	offBase  uint32
	reps     [3]uint32
}

// resolve returns the offset offBase names given the repeat offsets and
// the literal length of its sequence, and the repeat offsets after it.
func resolve(offBase uint32, reps [3]uint32, litLen uint32) (uint32, [3]uint32) {
	if offBase > 3 {
		return offBase - 3, [3]uint32{offBase - 3, reps[0], reps[1]}
	}
	i := offBase - 1
	if litLen == 0 {
		i++
	}
	switch i {
	case 0:
		return reps[0], reps
	case 1:
		return reps[1], [3]uint32{reps[1], reps[0], reps[2]}
	case 2:
		return reps[2], [3]uint32{reps[2], reps[0], reps[1]}
	default:
		return reps[0] - 1, [3]uint32{reps[0] - 1, reps[0], reps[1]}
	}
}

// parse returns the cheapest sequences for buf[start:end] under p, with
// the repeat offsets at start, and the literals they leave.
func parse(m *matcher, start, end int, reps [3]uint32, p *prices) ([]seq, []byte) {
	n := end - start
	opt := make([]node, n+1)
	const inf = int32(1 << 30)
	for i := range opt {
		opt[i].cost = inf
	}
	opt[0] = node{reps: reps}
	skipTo := 0
	for i := 0; i < n; i++ {
		cur := &opt[i]
		pos := start + i
		lit := cur.cost + p.lit[m.buf[pos]] + p.litLen(cur.litLen+1) - p.litLen(cur.litLen)
		if next := &opt[i+1]; lit < next.cost {
			*next = node{cost: lit, litLen: cur.litLen + 1, reps: cur.reps}
		}
		if i < skipTo || n-i < minMatch {
			continue
		}
		base := cur.cost + p.litLen(cur.litLen)
		limit := min(end, pos+maxMatchLen)
		relax := func(offBase uint32, from, to int) {
			oc := base + p.offset(offBase)
			_, r := resolve(offBase, cur.reps, cur.litLen)
			for l := from; l <= to; l++ {
				c := oc + p.matchLen(uint32(l))
				if o := &opt[i+l]; c < o.cost {
					*o = node{cost: c, matchLen: uint32(l), offBase: offBase, reps: r}
				}
			}
		}
		// Repeat offsets first: the cheapest offsets of all.
		for ob := uint32(1); ob <= 3; ob++ {
			if ob == 3 && cur.litLen == 0 && cur.reps[0] == 1 {
				continue // would name offset 0
			}
			off, _ := resolve(ob, cur.reps, cur.litLen)
			if int(off) > pos {
				continue
			}
			l := m.length(pos, pos-int(off), limit)
			if l < minMatch {
				continue
			}
			if l >= searchEnough {
				relax(ob, l, l)
				skipTo = i + l
				break
			}
			relax(ob, minMatch, l)
		}
		if skipTo > i {
			continue
		}
		ms := m.find(pos, limit)
		prev := minMatch - 1
		for _, mt := range ms {
			ob := mt.off + 3
			for k := uint32(1); k <= 3; k++ {
				if off, _ := resolve(k, cur.reps, cur.litLen); off == mt.off && !(k == 3 && cur.litLen == 0 && cur.reps[0] == 1) {
					ob = k
					break
				}
			}
			if int(mt.n) >= searchEnough {
				relax(ob, int(mt.n), int(mt.n))
				skipTo = i + int(mt.n)
				break
			}
			relax(ob, prev+1, int(mt.n))
			prev = int(mt.n)
		}
	}
	// Walk back from the end, then forward again to count the literals.
	var ends []int
	for i := n; i > 0; {
		if l := opt[i].matchLen; l == 0 {
			i--
		} else {
			ends = append(ends, i)
			i -= int(l)
		}
	}
	seqs := make([]seq, 0, len(ends))
	var lits []byte
	at := 0
	for k := len(ends) - 1; k >= 0; k-- {
		o := opt[ends[k]]
		i := ends[k] - int(o.matchLen)
		lits = append(lits, m.buf[start+at:start+i]...)
		seqs = append(seqs, seq{litLen: uint32(i - at), matchLen: o.matchLen, offBase: o.offBase})
		at = ends[k]
	}
	lits = append(lits, m.buf[start+at:end]...)
	return seqs, lits
}
