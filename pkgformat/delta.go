package pkgformat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"index/suffixarray"
	"io"

	"github.com/klauspost/compress/zstd"
)

// File deltas use Colin Percival's bsdiff algorithm (approximate matches
// found through a suffix array of the source, byte-wise differences of the
// matched stretches, literal extra bytes) with zstd instead of bzip2 for
// the streams: on executables, where a change shifts addresses all over
// the code, the differences are mostly zeros and compress far better than
// zstd's own long-distance matching against a dictionary.
//
// A delta is the payload
//
//	"HPBD" uvarint ctrl-len uvarint diff-len uvarint extra-len ctrl diff extra
//
// where ctrl is a sequence of uvarint triples (add, copy, zigzag seek): add
// bytes are source+diff byte sums, copy bytes come from extra, then the
// source position moves by seek. EncodeDelta stores the smallest of three
// encodings (see there); every frame of a stored delta is decoded with the
// source file as raw dictionary.

// deltaMagic starts a bsdiff payload; any other payload is the destination
// file itself (writers never choose that form for a file that starts with
// these four bytes).
const deltaMagic = "HPBD"

// EncodeDelta returns the stored form of the smallest of hpbuild's delta
// encodings from src to dst, and the size of its payload (what the stored
// bytes expand to): the bsdiff payload in one zstd frame, the bsdiff
// payload in three frames (MakeDelta's extra bytes compressed against
// src), or dst itself in one frame compressed against src (best for tiny
// changes, where the bsdiff streams' framing costs more than the change). All three expand with DecompressDelta and apply with
// ApplyDelta.
func EncodeDelta(src, dst []byte) (stored []byte, size uint64, err error) {
	payload := MakeDelta(src, dst)
	one, err := Compress(payload)
	if err != nil || len(src) == 0 {
		return one, uint64(len(payload)), err // no source to compress against
	}
	three, err := CompressDelta(payload, src)
	if err != nil {
		return nil, 0, err
	}
	stored, size = one, uint64(len(payload))
	if len(three) < len(stored) {
		stored = three
	}
	if !bytes.HasPrefix(dst, []byte(deltaMagic)) {
		whole, err := compressWith(dst, src)
		if err != nil {
			return nil, 0, err
		}
		if len(whole) < len(stored) {
			stored, size = whole, uint64(len(dst))
		}
	}
	return stored, size, nil
}

// compressWith compresses data in one frame with src as raw dictionary.
func compressWith(data, src []byte) ([]byte, error) {
	w := 1 << 10
	for w < len(src)+len(data) && w < zstd.MaxWindowSize {
		w <<= 1
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true), zstd.WithEncoderDictRaw(dictID, src), zstd.WithWindowSize(w))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil), nil
}

// MakeDelta returns the delta payload that turns src into dst.
func MakeDelta(src, dst []byte) []byte {
	sa := suffixArray(src)
	var ctrl, diff, extra bytes.Buffer
	var tmp [binary.MaxVarintLen64]byte
	put := func(v uint64) { ctrl.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	oldsize, newsize := len(src), len(dst)
	scan, length, pos := 0, 0, 0
	lastscan, lastpos, lastoffset := 0, 0, 0
	for scan < newsize {
		oldscore := 0
		scan += length
		scsc := scan
		for ; scan < newsize; scan++ {
			length, pos = search(sa, src, dst[scan:])
			for ; scsc < scan+length; scsc++ {
				if scsc+lastoffset < oldsize && src[scsc+lastoffset] == dst[scsc] {
					oldscore++
				}
			}
			if (length == oldscore && length != 0) || length > oldscore+8 {
				break
			}
			if scan+lastoffset < oldsize && src[scan+lastoffset] == dst[scan] {
				oldscore--
			}
		}
		if length != oldscore || scan == newsize {
			s, sf, lenf := 0, 0, 0
			for i := 0; lastscan+i < scan && lastpos+i < oldsize; {
				if src[lastpos+i] == dst[lastscan+i] {
					s++
				}
				i++
				if s*2-i > sf*2-lenf {
					sf, lenf = s, i
				}
			}
			lenb := 0
			if scan < newsize {
				s, sb := 0, 0
				for i := 1; scan >= lastscan+i && pos >= i; i++ {
					if src[pos-i] == dst[scan-i] {
						s++
					}
					if s*2-i > sb*2-lenb {
						sb, lenb = s, i
					}
				}
			}
			if lastscan+lenf > scan-lenb {
				overlap := (lastscan + lenf) - (scan - lenb)
				s, ss, lens := 0, 0, 0
				for i := 0; i < overlap; i++ {
					if dst[lastscan+lenf-overlap+i] == src[lastpos+lenf-overlap+i] {
						s++
					}
					if dst[scan-lenb+i] == src[pos-lenb+i] {
						s--
					}
					if s > ss {
						ss, lens = s, i+1
					}
				}
				lenf += lens - overlap
				lenb -= lens
			}
			for i := 0; i < lenf; i++ {
				diff.WriteByte(dst[lastscan+i] - src[lastpos+i])
			}
			ext := (scan - lenb) - (lastscan + lenf)
			extra.Write(dst[lastscan+lenf : lastscan+lenf+ext])
			seek := int64((pos - lenb) - (lastpos + lenf))
			put(uint64(lenf))
			put(uint64(ext))
			put(uint64(seek<<1) ^ uint64(seek>>63))
			lastscan, lastpos, lastoffset = scan-lenb, pos-lenb, pos-scan
		}
	}
	out := make([]byte, 0, 4+3*binary.MaxVarintLen64+ctrl.Len()+diff.Len()+extra.Len())
	out = append(out, deltaMagic...)
	out = binary.AppendUvarint(out, uint64(ctrl.Len()))
	out = binary.AppendUvarint(out, uint64(diff.Len()))
	out = binary.AppendUvarint(out, uint64(extra.Len()))
	out = append(out, ctrl.Bytes()...)
	out = append(out, diff.Bytes()...)
	return append(out, extra.Bytes()...)
}

// CompressDelta stores a delta payload made from src: three zstd frames,
// the last one with src as its raw dictionary.
func CompressDelta(payload, src []byte) ([]byte, error) {
	_, diffAt, extraAt, err := deltaParts(payload)
	if err != nil {
		return nil, err
	}
	f1, err := Compress(payload[:diffAt])
	if err != nil {
		return nil, err
	}
	f2, err := Compress(payload[diffAt:extraAt])
	if err != nil {
		return nil, err
	}
	f3, err := compressWith(payload[extraAt:], src)
	if err != nil {
		return nil, err
	}
	return append(append(f1, f2...), f3...), nil
}

// DecompressDelta expands a stored delta of size bytes made from src. Like
// Decompress, it never produces more than size bytes.
func DecompressDelta(stored []byte, size uint64, src []byte) ([]byte, error) {
	return decompress(stored, size, src)
}

// dictID is the dictionary id of the source file as raw dictionary: 0, so
// that frames do not spend header bytes naming it. Every frame of a delta
// blob is decoded with the source as history; those written without it
// never reach into it.
const dictID = 0

// deltaParts returns the header length and the offsets of the diff and
// extra streams of a payload.
func deltaParts(payload []byte) (head, diffAt, extraAt int, err error) {
	if len(payload) < 4 || string(payload[:4]) != deltaMagic {
		return 0, 0, 0, fmt.Errorf("no %q header", deltaMagic)
	}
	r := bytes.NewReader(payload[4:])
	cl, err1 := binary.ReadUvarint(r)
	dl, err2 := binary.ReadUvarint(r)
	el, err3 := binary.ReadUvarint(r)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, 0, fmt.Errorf("header: %v", err)
	}
	head = len(payload) - r.Len()
	rest := uint64(r.Len())
	if cl > rest || dl > rest-cl || el != rest-cl-dl {
		return 0, 0, 0, fmt.Errorf("stream lengths %d+%d+%d do not add up to %d bytes", cl, dl, el, rest)
	}
	return head, head + int(cl), head + int(cl+dl), nil
}

// ApplyDelta turns src into the file of dstSize bytes a delta payload
// describes. Every length in the delta is checked against the source, the
// payload and dstSize, so a hostile delta cannot read or write out of
// bounds or make more than dstSize bytes.
func ApplyDelta(src, delta []byte, dstSize uint64) ([]byte, error) {
	bad := func(format string, a ...any) error {
		return &VerifyError{FailTampered, "file delta: " + fmt.Sprintf(format, a...)}
	}
	if dstSize > MaxBlobSize {
		return nil, bad("target size %d over the limit", dstSize)
	}
	if !bytes.HasPrefix(delta, []byte(deltaMagic)) {
		if uint64(len(delta)) != dstSize {
			return nil, bad("holds %d bytes of the destination, which has %d", len(delta), dstSize)
		}
		return bytes.Clone(delta), nil
	}
	head, diffAt, extraAt, err := deltaParts(delta)
	if err != nil {
		return nil, bad("%v", err)
	}
	ctrl := bytes.NewReader(delta[head:diffAt])
	diff, extra := delta[diffAt:extraAt], delta[extraAt:]
	out := make([]byte, 0, dstSize)
	var oldpos int64
	for uint64(len(out)) < dstSize {
		add, err1 := binary.ReadUvarint(ctrl)
		ext, err2 := binary.ReadUvarint(ctrl)
		z, err3 := binary.ReadUvarint(ctrl)
		if err := errors.Join(err1, err2, err3); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, bad("control stream ends after %d of %d bytes", len(out), dstSize)
			}
			return nil, bad("control stream: %v", err)
		}
		seek := int64(z>>1) ^ -int64(z&1)
		if add > dstSize-uint64(len(out)) || add > uint64(len(diff)) || oldpos < 0 || uint64(oldpos)+add > uint64(len(src)) {
			return nil, bad("an add of %d bytes at source %d runs out of bounds", add, oldpos)
		}
		for i := uint64(0); i < add; i++ {
			out = append(out, src[uint64(oldpos)+i]+diff[i])
		}
		diff = diff[add:]
		oldpos += int64(add)
		if ext > dstSize-uint64(len(out)) || ext > uint64(len(extra)) {
			return nil, bad("a copy of %d extra bytes runs out of bounds", ext)
		}
		out = append(out, extra[:ext]...)
		extra = extra[ext:]
		if seek > int64(len(src)) || seek < -int64(len(src)) {
			return nil, bad("a seek of %d leaves the source", seek)
		}
		oldpos += seek
	}
	if ctrl.Len() != 0 || len(diff) != 0 || len(extra) != 0 {
		return nil, bad("data left over after the %d target bytes", dstSize)
	}
	return out, nil
}

// suffixArray returns the suffix array of data (standard library SA-IS,
// read back from the index's serialised form).
func suffixArray(data []byte) []int32 {
	var buf bytes.Buffer
	if err := suffixarray.New(data).Write(&buf); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	b := buf.Bytes()
	// length (varint in MaxVarintLen64 bytes), the data, then chunks:
	// a varint chunk size p (in MaxVarintLen64 bytes) and uvarints up to p.
	n, _ := binary.Varint(b)
	b = b[binary.MaxVarintLen64+int(n):]
	sa := make([]int32, 0, n)
	for len(b) > 0 {
		p, _ := binary.Varint(b)
		chunk := b[binary.MaxVarintLen64:p]
		for len(chunk) > 0 {
			v, k := binary.Uvarint(chunk)
			sa = append(sa, int32(v))
			chunk = chunk[k:]
		}
		b = b[p:]
	}
	return sa
}

// search finds the longest match of target's prefix in src through its
// suffix array: the length and the source position.
func search(sa []int32, src, target []byte) (int, int) {
	if len(sa) == 0 {
		return 0, 0
	}
	st, en := 0, len(sa)-1
	for en-st >= 2 {
		x := st + (en-st)/2
		if bytes.Compare(src[sa[x]:], target) < 0 {
			st = x
		} else {
			en = x
		}
	}
	x, y := matchLen(src[sa[st]:], target), matchLen(src[sa[en]:], target)
	if x > y {
		return x, int(sa[st])
	}
	return y, int(sa[en])
}

func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
