package zopt

import (
	"encoding/binary"
	"errors"
	"math/bits"

	"github.com/klauspost/compress/huff0"
)

// seq is one sequence: litLen literals, then a match of matchLen bytes
// at the offset offBase names (1-3 repeat offsets, else the offset + 3;
// RFC 8878 §3.1.1.5).
type seq struct {
	litLen, matchLen, offBase uint32
}

// Literal and match length codes (RFC 8878 §3.1.1.3.2.1.1).
var (
	llBase = [36]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096,
		8192, 16384, 32768, 65536}
	llBits = [36]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
		13, 14, 15, 16}
	mlBase = [53]uint32{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
		19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
		35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051,
		4099, 8195, 16387, 32771, 65539}
	mlBits = [53]uint8{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
		12, 13, 14, 15, 16}
)

// Largest literal run and match one sequence can code.
const (
	maxLitLen   = 65536 + 1<<16 - 1
	maxMatchLen = 65539 + 1<<16 - 1
	minMatch    = 3
)

// Small-value code tables; larger values follow the highest bit.
var llCodes, mlCodes = func() (ll [64]uint8, ml [128]uint8) {
	for v := range ll {
		for ll[v] < 35 && llBase[ll[v]+1] <= uint32(v) {
			ll[v]++
		}
	}
	for v := range ml {
		for ml[v] < 52 && mlBase[ml[v]+1] <= uint32(v+3) {
			ml[v]++
		}
	}
	return
}()

func llCode(n uint32) uint8 {
	if n < 64 {
		return llCodes[n]
	}
	return uint8(bits.Len32(n)-1) + 19
}

func mlCode(n uint32) uint8 {
	if n-3 < 128 {
		return mlCodes[n-3]
	}
	return uint8(bits.Len32(n-3)-1) + 36
}

func ofCode(offBase uint32) uint8 { return uint8(bits.Len32(offBase) - 1) }

// Predefined distributions (RFC 8878 §3.1.1.3.2.2).
var predefined = [3]*fseTable{
	newFSETable([]int16{4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
		2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
		-1, -1, -1, -1}, 6),
	newFSETable([]int16{1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1}, 5),
	newFSETable([]int16{1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
		-1, -1, -1, -1, -1}, 6),
}

// The code streams in the order of the modes byte and table descriptions.
const (
	kindLL = iota
	kindOF
	kindML
)

// maxLog is the largest table log a decoder accepts per kind.
var maxLog = [3]uint8{9, 8, 9}

// Symbol compression modes.
const (
	modePredefined = iota
	modeRLE
	modeCompressed
)

// codeTable is the chosen coding of one code stream.
type codeTable struct {
	mode uint8
	desc []byte    // RLE symbol or table description
	t    *fseTable // nil for RLE
}

// chooseTable picks the cheapest coding of codes: predefined, RLE or a
// table of its own at each table log, by the exact size of description
// and bits.
func chooseTable(kind int, codes []uint8) (codeTable, uint32) {
	var count [53]uint32
	distinct := 0
	for _, c := range codes {
		if count[c] == 0 {
			distinct++
		}
		count[c]++
	}
	if distinct == 1 {
		return codeTable{mode: modeRLE, desc: []byte{codes[0]}}, 8
	}
	best, bestBits := codeTable{}, ^uint32(0)
	if p := predefined[kind]; p.covers(count[:]) {
		best, bestBits = codeTable{mode: modePredefined, t: p}, p.streamBits(codes)
	}
	for log := uint8(5); log <= maxLog[kind]; log++ {
		norm := normalize(count[:], log)
		if norm == nil {
			continue
		}
		t := newFSETable(norm, log)
		d := t.description()
		if n := uint32(len(d))*8 + t.streamBits(codes); n < bestBits {
			best, bestBits = codeTable{mode: modeCompressed, desc: d, t: t}, n
		}
		if 1<<log >= 4*len(codes) {
			break // more states than codes to spend them on
		}
	}
	return best, bestBits
}

// sequencesSection returns the sequences section of a block (RFC 8878
// §3.1.1.3.2).
func sequencesSection(seqs []seq) []byte {
	n := len(seqs)
	var out []byte
	switch {
	case n < 128:
		out = append(out, byte(n))
	case n < 0x7F00:
		out = append(out, byte(n>>8+0x80), byte(n))
	default:
		out = append(out, 0xFF, byte(n-0x7F00), byte((n-0x7F00)>>8))
	}
	if n == 0 {
		return out
	}
	var codes [3][]uint8
	for k := range codes {
		codes[k] = make([]uint8, n)
	}
	for i, s := range seqs {
		codes[kindLL][i] = llCode(s.litLen)
		codes[kindOF][i] = ofCode(s.offBase)
		codes[kindML][i] = mlCode(s.matchLen)
	}
	var tabs [3]codeTable
	for k := range tabs {
		tabs[k], _ = chooseTable(k, codes[k])
	}
	out = append(out, tabs[kindLL].mode<<6|tabs[kindOF].mode<<4|tabs[kindML].mode<<2)
	for _, t := range tabs {
		out = append(out, t.desc...)
	}
	var st [3]fseState
	for k := range st {
		st[k].t = tabs[k].t
	}
	w := bitWriter{out: out}
	put := func(k int, c uint8, first bool) {
		if st[k].t == nil {
			return // RLE: no state
		}
		if first {
			st[k].init(c)
		} else {
			st[k].encode(&w, c)
		}
	}
	for i := n - 1; i >= 0; i-- {
		s := seqs[i]
		ll, of, ml := codes[kindLL][i], codes[kindOF][i], codes[kindML][i]
		first := i == n-1
		put(kindOF, of, first)
		put(kindML, ml, first)
		put(kindLL, ll, first)
		w.add(s.litLen-llBase[ll], llBits[ll])
		w.add(s.matchLen-mlBase[ml], mlBits[ml])
		w.add(s.offBase-1<<of, of)
	}
	for _, k := range []int{kindML, kindOF, kindLL} {
		if st[k].t != nil {
			st[k].flush(&w)
		}
	}
	return w.close()
}

// Literals block types.
const (
	litRaw = iota
	litRLE
	litCompressed
)

// literalsSection returns the smallest literals section of lits: raw, RLE
// or Huffman-coded in one or four streams (RFC 8878 §3.1.1.3.1).
func literalsSection(lits []byte) []byte {
	n := len(lits)
	best := rawLiterals(litRaw, n)
	best = append(best, lits...)
	if n == 0 {
		return best
	}
	if rle := true; n > 1 {
		for _, b := range lits[1:] {
			if b != lits[0] {
				rle = false
				break
			}
		}
		if rle {
			return append(rawLiterals(litRLE, n), lits[0])
		}
	}
	try := func(single bool, log uint8) {
		s := &huff0.Scratch{Reuse: huff0.ReusePolicyNone, TableLog: log}
		var out []byte
		var err error
		if single {
			out, _, err = huff0.Compress1X(lits, s)
		} else {
			out, _, err = huff0.Compress4X(lits, s)
		}
		if err != nil || (single && len(out) > 1023) {
			return // incompressible or RLE: the other forms cover it
		}
		h := compressedLiteralsHeader(n, len(out), single)
		if len(h)+len(out) < len(best) {
			best = append(h, out...)
		}
	}
	// huff0 picks a table log; a smaller one can cost less in table than
	// it loses in codes.
	for log := uint8(0); log <= 11; log++ {
		if log == 1 {
			log = 5
		}
		if n <= 1023 {
			try(true, log)
		}
		if n >= 64 {
			try(false, log)
		}
	}
	return best
}

// rawLiterals returns the header of a raw or RLE literals section.
func rawLiterals(typ byte, n int) []byte {
	switch {
	case n < 32:
		return []byte{typ | byte(n)<<3}
	case n < 4096:
		v := uint16(typ) | 1<<2 | uint16(n)<<4
		return []byte{byte(v), byte(v >> 8)}
	default:
		v := uint32(typ) | 3<<2 | uint32(n)<<4
		return []byte{byte(v), byte(v >> 8), byte(v >> 16)}
	}
}

func compressedLiteralsHeader(regen, comp int, single bool) []byte {
	var sf uint64
	var nb, hb uint
	switch {
	case single:
		sf, nb, hb = 0, 10, 3
	case regen < 1024 && comp < 1024:
		sf, nb, hb = 1, 10, 3
	case regen < 16384 && comp < 16384:
		sf, nb, hb = 2, 14, 4
	default:
		sf, nb, hb = 3, 18, 5
	}
	v := uint64(litCompressed) | sf<<2 | uint64(regen)<<4 | uint64(comp)<<(4+nb)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return b[:hb]
}

// Block types.
const (
	blockRaw = iota
	blockRLE
	blockCompressed
)

// errBlockTooBig is returned when a compressed block does not fit the
// block size limit (the caller stores the block raw).
var errBlockTooBig = errors.New("compressed block over the block size limit")

// compressedBlock returns the content of a compressed block.
func compressedBlock(lits []byte, seqs []seq) ([]byte, error) {
	b := literalsSection(lits)
	b = append(b, sequencesSection(seqs)...)
	if len(b) >= maxBlockSize {
		return nil, errBlockTooBig
	}
	return b, nil
}

func blockHeader(last bool, typ byte, size int) []byte {
	v := uint32(typ)<<1 | uint32(size)<<3
	if last {
		v |= 1
	}
	return []byte{byte(v), byte(v >> 8), byte(v >> 16)}
}
