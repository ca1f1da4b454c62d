package zopt

import "math/bits"

// bitWriter is the forward bit stream of RFC 8878 (bits are added from the
// least significant end; the decoder reads it backwards from the end mark).
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

// add appends the low nb bits of v (nb ≤ 32).
func (w *bitWriter) add(v uint32, nb uint8) {
	w.acc |= uint64(v&(1<<nb-1)) << w.n
	w.n += uint(nb)
	for w.n >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

// close appends the end mark and the last partial byte.
func (w *bitWriter) close() []byte {
	w.add(1, 1)
	if w.n > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc, w.n = 0, 0
	}
	return w.out
}

// bytes flushes the last partial byte without an end mark (table
// descriptions).
func (w *bitWriter) bytes() []byte {
	if w.n > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc, w.n = 0, 0
	}
	return w.out
}

// fseTable is an FSE encoding table built from a normalised distribution
// (RFC 8878 §4.1), as FSE_buildCTable builds it: the same spread of
// symbols over the states as the decoder's, so that every encoder state
// names the decoder state that leads back to it.
type fseTable struct {
	log    uint8
	norm   []int16 // -1: "less than 1" probability, one state at the top
	states []uint16
	nbBits []uint32 // per symbol: delta number of bits, as in FSE
	find   []int32  // per symbol: delta to its first state
}

func newFSETable(norm []int16, log uint8) *fseTable {
	size := 1 << log
	t := &fseTable{log: log, norm: norm, states: make([]uint16, size),
		nbBits: make([]uint32, len(norm)), find: make([]int32, len(norm))}
	symbolAt := make([]uint16, size)
	cumul := make([]int, len(norm)+1)
	high := size - 1
	for s, n := range norm {
		if n == -1 {
			cumul[s+1] = cumul[s] + 1
			symbolAt[high] = uint16(s)
			high--
		} else {
			cumul[s+1] = cumul[s] + int(n)
		}
	}
	step := size>>1 + size>>3 + 3
	pos := 0
	for s, n := range norm {
		for i := 0; i < int(n); i++ {
			symbolAt[pos] = uint16(s)
			pos = (pos + step) & (size - 1)
			for pos > high {
				pos = (pos + step) & (size - 1)
			}
		}
	}
	for u := 0; u < size; u++ {
		s := symbolAt[u]
		t.states[cumul[s]] = uint16(size + u)
		cumul[s]++
	}
	total := int32(0)
	for s, n := range norm {
		switch {
		case n == 0:
			t.nbBits[s] = uint32(log+1)<<16 - uint32(size)
		case n == -1 || n == 1:
			t.nbBits[s] = uint32(log)<<16 - uint32(size)
			t.find[s] = total - 1
			total++
		default:
			out := uint32(log) - uint32(bits.Len16(uint16(n-1))-1)
			t.nbBits[s] = out<<16 - uint32(n)<<out
			t.find[s] = total - int32(n)
			total += int32(n)
		}
	}
	return t
}

// covers reports whether every symbol with a count has a state.
func (t *fseTable) covers(count []uint32) bool {
	for s, c := range count {
		if c > 0 && (s >= len(t.norm) || t.norm[s] == 0) {
			return false
		}
	}
	return true
}

// fseState is one encoder's state over a table.
type fseState struct {
	t     *fseTable
	state uint32
}

func (e *fseState) init(s uint8) {
	nb := (e.t.nbBits[s] + 1<<15) >> 16
	v := nb<<16 - e.t.nbBits[s]
	e.state = uint32(e.t.states[int32(v>>nb)+e.t.find[s]])
}

// encode writes the bits that lead the decoder from the state for s to the
// current state and moves to the state for s.
func (e *fseState) encode(w *bitWriter, s uint8) {
	nb := (e.state + e.t.nbBits[s]) >> 16
	w.add(e.state, uint8(nb))
	e.state = uint32(e.t.states[int32(e.state>>nb)+e.t.find[s]])
}

// cost returns the bits encode adds for s without writing them.
func (e *fseState) cost(s uint8) uint32 {
	nb := (e.state + e.t.nbBits[s]) >> 16
	e.state = uint32(e.t.states[int32(e.state>>nb)+e.t.find[s]])
	return nb
}

func (e *fseState) flush(w *bitWriter) {
	w.add(e.state, e.t.log)
}

// streamBits returns the bits codes cost with table t: the state
// transitions from the last code back to the first, then the final state.
func (t *fseTable) streamBits(codes []uint8) uint32 {
	if len(codes) == 0 {
		return 0
	}
	e := fseState{t: t}
	e.init(codes[len(codes)-1])
	n := uint32(t.log)
	for i := len(codes) - 2; i >= 0; i-- {
		n += e.cost(codes[i])
	}
	return n
}

// description returns the table description of RFC 8878 §4.1.1 (the
// FSE_writeNCount format).
func (t *fseTable) description() []byte {
	var w bitWriter
	size := 1 << t.log
	w.add(uint32(t.log)-5, 4)
	remaining := size + 1
	threshold := size
	nb := t.log + 1
	prev0 := false
	for s := 0; s < len(t.norm) && remaining > 1; {
		if prev0 {
			start := s
			for s < len(t.norm) && t.norm[s] == 0 {
				s++
			}
			for s >= start+24 {
				start += 24
				w.add(0xFFFF, 16)
			}
			for s >= start+3 {
				start += 3
				w.add(3, 2)
			}
			w.add(uint32(s-start), 2)
		}
		count := int(t.norm[s])
		s++
		maxv := 2*threshold - 1 - remaining
		if count < 0 {
			remaining += count
		} else {
			remaining -= count
		}
		count++
		if count >= threshold {
			count += maxv
		}
		if count < maxv {
			w.add(uint32(count), nb-1)
		} else {
			w.add(uint32(count), nb)
		}
		prev0 = count == 1
		for remaining < threshold {
			nb--
			threshold >>= 1
		}
	}
	return w.bytes()
}

// normalize returns counts scaled to 1<<log states, every counted symbol
// keeping at least one: one state each, then state by state to the symbol
// whose coded size falls most (the cost is separable and concave in the
// states, so this greedy allocation is the best one with these prices).
// It returns nil when the symbols outnumber the states.
func normalize(count []uint32, log uint8) []int16 {
	size := 1 << log
	norm := make([]int16, len(count))
	used := 0
	for s, c := range count {
		if c > 0 {
			norm[s] = 1
			used++
		}
	}
	if used > size {
		return nil
	}
	for ; used < size; used++ {
		best, gain := -1, int64(-1)
		for s, c := range count {
			if c == 0 {
				continue
			}
			g := int64(c) * int64(log2fix(uint32(norm[s])+1)-log2fix(uint32(norm[s])))
			if g > gain {
				best, gain = s, g
			}
		}
		norm[best]++
	}
	for len(norm) > 0 && norm[len(norm)-1] == 0 {
		norm = norm[:len(norm)-1]
	}
	return norm
}

// log2fix returns log2(x) in 1/256 bits (0 for 0), from the top 8 bits
// after the leading one, with integers only so that prices, and so the
// output, are the same on every platform.
func log2fix(x uint32) int32 {
	if x == 0 {
		return 0
	}
	l := bits.Len32(x) - 1
	var m uint32
	if l >= 8 {
		m = (x >> (l - 8)) & 0xFF
	} else {
		m = (x << (8 - l)) & 0xFF
	}
	return int32(l)<<8 + log2tab[m]
}

// log2tab[m] is log2(1+m/256) in 1/256 bits, by repeated squaring in
// 16.16 fixed point.
var log2tab = func() (t [256]int32) {
	for m := range t {
		y := uint64(256+m) << 8 // 1+m/256 in 16.16
		var f int32
		for i := 0; i < 8; i++ {
			y = y * y >> 16
			f <<= 1
			if y >= 2<<16 {
				y >>= 1
				f |= 1
			}
		}
		t[m] = f
	}
	return t
}()
