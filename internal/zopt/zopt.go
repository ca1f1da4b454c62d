// Package zopt is a zstd encoder for small inputs that spends time for
// size: every position of the data is searched for matches through hash
// chains over a dictionary and the data, and the sequences are chosen by
// an optimal parse priced with the symbol statistics of the previous
// parse (in the manner of zstd's "btultra2" levels), repeat offsets
// included. Literals are Huffman-coded (github.com/klauspost/compress/huff0)
// or stored raw, the code streams use the predefined distributions, RLE
// or a table of their own, whichever is smallest.
//
// The output is one standard zstd frame (RFC 8878): no checksum, the
// content size in the header, the dictionary, when given, as raw content
// (dictionary id 0) in front of the data. Any conforming decoder given the
// same dictionary expands it; github.com/klauspost/compress/zstd with
// WithDecoderDictRaw(0, dict) is the one the tests use.
//
// Encode takes time and memory linear in the dictionary and the data with
// a large constant (up to 4096 chain candidates per position and twelve
// parses for inputs up to 256 KiB, 512 and four beyond): about 80 ms for
// an 8 KB file against a 10 KB dictionary, a second for 768 KB. It is
// meant for inputs up to a few MiB.
package zopt

import "fmt"

// MaxInput is the largest dictionary and data together Encode takes.
const MaxInput = 64 << 20

// maxBlockSize is the largest block content (RFC 8878 §3.1.1.2.3).
const maxBlockSize = 128 << 10

// passes is the number of parses; each after the first is priced with
// the statistics of the one before, and the smallest frame is kept.
const passes = 4

// smallInput is the most bytes of dictionary and data for which Encode
// searches chains eight times deeper and parses with three price
// smoothings instead of one.
const smallInput = 256 << 10

// Encode returns data compressed as one zstd frame that refers to dict as
// raw content before the data (nil or empty: no dictionary). The output
// depends only on data and dict.
func Encode(data, dict []byte) ([]byte, error) {
	if len(dict)+len(data) > MaxInput {
		return nil, fmt.Errorf("zopt: %d bytes of data and dictionary, over the %d-byte limit", len(dict)+len(data), MaxInput)
	}
	if len(data) == 0 {
		return append(frameHeader(0), blockHeader(true, blockRaw, 0)...), nil
	}
	buf := make([]byte, 0, len(dict)+len(data))
	buf = append(append(buf, dict...), data...)
	depth, smooths := 512, []uint32{64}
	if len(buf) <= smallInput {
		depth, smooths = 4096, []uint32{16, 32, 64}
	}
	m := newMatcher(buf, depth, depth)
	var best []byte
	for _, smooth := range smooths {
		var st []*stats
		for range passes {
			body, next := encodeBlocks(m, len(dict), st, smooth)
			frame := append(frameHeader(len(data)), body...)
			if best == nil || len(frame) < len(best) {
				best = frame
			}
			st = next
		}
	}
	return best, nil
}

// encodeBlocks parses and encodes the data in buf[from:], block by block,
// priced with st (one per block; nil before the first parse). It returns
// the blocks and the statistics of this parse.
func encodeBlocks(m *matcher, from int, st []*stats, smooth uint32) (out []byte, next []*stats) {
	reps := [3]uint32{1, 4, 8}
	for b, start := 0, from; start < len(m.buf); b, start = b+1, start+maxBlockSize {
		end := min(start+maxBlockSize, len(m.buf))
		last := end == len(m.buf)
		block := m.buf[start:end]
		var p *prices
		if b < len(st) {
			p = st[b].prices(smooth)
		} else {
			p = initialStats(block).prices(smooth)
		}
		seqs, lits := parse(m, start, end, reps, p)
		s := new(stats)
		s.add(lits, seqs)
		next = append(next, s)

		if isRLE(block) {
			out = append(append(out, blockHeader(last, blockRLE, len(block))...), block[0])
			continue
		}
		c, err := compressedBlock(lits, seqs)
		if err != nil || len(c) >= len(block) {
			out = append(append(out, blockHeader(last, blockRaw, len(block))...), block...)
			continue
		}
		out = append(append(out, blockHeader(last, blockCompressed, len(c))...), c...)
		for _, q := range seqs {
			_, reps = resolve(q.offBase, reps, q.litLen)
		}
	}
	return out, next
}

func isRLE(b []byte) bool {
	for _, c := range b[1:] {
		if c != b[0] {
			return false
		}
	}
	return len(b) > 1
}

// frameHeader returns the header of a single-segment frame of size bytes
// (the window is the content; matches beyond it reach into the
// dictionary, which decoders allow whatever the window, and which keeps
// the window within what pkgformat's reader accepts for the size).
func frameHeader(size int) []byte {
	h := []byte{0x28, 0xB5, 0x2F, 0xFD, 0}
	switch {
	case size < 256:
		h[4] = 0<<6 | 1<<5
		return append(h, byte(size))
	case size < 65536+256:
		h[4] = 1<<6 | 1<<5
		return append(h, byte(size-256), byte((size-256)>>8))
	default:
		h[4] = 2<<6 | 1<<5
		return append(h, byte(size), byte(size>>8), byte(size>>16), byte(size>>24))
	}
}
