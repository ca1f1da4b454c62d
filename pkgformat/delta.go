package pkgformat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"index/suffixarray"
	"io"
	"sync"

	"github.com/hpbuild/hpbuild/internal/zopt"
	"github.com/klauspost/compress/zstd"
)

// File deltas use Colin Percival's bsdiff algorithm (approximate matches
// found through a suffix array of the source, byte-wise differences of the
// matched stretches, literal extra bytes) with zstd instead of bzip2 for
// the streams: on executables, where a change shifts addresses all over
// the code, the differences are mostly zeros and compress far better than
// zstd's own long-distance matching against a dictionary.
//
// The payload keeps bsdiff's streams apart by kind, because each column
// compresses better on its own than interleaved:
//
//	"HPBD" uvarint×6 (lengths) adds copies seeks runs lits extra
//
// adds, copies and seeks are the control triples as three columns of
// uvarints (seeks zigzag-encoded); the difference bytes are sparse: runs
// holds the lengths of the zero runs (uvarints, one more than there are
// lits) and lits the non-zero bytes between them. Applying a triple
// appends add bytes that are source+difference byte sums, then copy bytes
// from extra, then moves the source position by seek. EncodeDelta stores
// the smallest of several encodings (see there); every frame of a stored
// delta is decoded with the source file as raw dictionary.

// deltaMagic starts a bsdiff payload; any other payload is the destination
// file itself (writers never choose that form for a file that starts with
// these four bytes).
const deltaMagic = "HPBD"

// The streams of a payload, in order.
const (
	streamAdds = iota
	streamCopies
	streamSeeks
	streamRuns
	streamLits
	streamExtra
	numStreams
)

// EncodeDelta returns the stored form of the smallest of hpbuild's delta
// encodings from src to dst, and the size of its payload (what the stored
// bytes expand to). The candidates: the bsdiff payload in one zstd frame,
// with and without src as raw dictionary; the payload with each stream in
// a frame of its own, or with the control and difference streams in one
// frame (CompressDelta; the extra bytes always against src); and dst
// itself in one frame against src (best for tiny changes, where the
// streams cost more than the change). Each is made by klauspost's zstd
// encoder; when src and the payload, or src and dst, come to at most
// optimalMax bytes, the one-frame forms are also made by zopt's
// optimal-parse encoder, and such a frame is kept only after it has
// expanded back to the bytes it stands for. All expand with
// DecompressDelta and apply with ApplyDelta.
func EncodeDelta(src, dst []byte) (stored []byte, size uint64, err error) {
	payload := MakeDelta(src, dst)
	stored, err = Compress(payload)
	size = uint64(len(payload))
	if err != nil {
		return nil, 0, err
	}
	optimal := optimalCandidates(src, dst, payload)
	keep := func(c []byte, n uint64, err error) error {
		if err == nil && len(c) < len(stored) {
			stored, size = c, n
		}
		return err
	}
	if len(src) > 0 { // else no source to compress against
		c, err := compressWith(payload, src)
		if err := keep(c, uint64(len(payload)), err); err != nil {
			return nil, 0, err
		}
		for _, perStream := range []bool{true, false} {
			c, err := CompressDelta(payload, src, perStream)
			if err := keep(c, uint64(len(payload)), err); err != nil {
				return nil, 0, err
			}
		}
		if !bytes.HasPrefix(dst, []byte(deltaMagic)) {
			c, err := compressWith(dst, src)
			if err := keep(c, uint64(len(dst)), err); err != nil {
				return nil, 0, err
			}
		}
	}
	for _, c := range optimal() {
		if c.stored != nil && len(c.stored) < len(stored) {
			stored, size = c.stored, c.size
		}
	}
	return stored, size, nil
}

// optimalMax is the most bytes of source and payload (or destination)
// together that EncodeDelta gives zopt, whose optimal parse pays on small
// files where everything was recompiled and takes about a second a MiB:
// larger pairs, where bsdiff's payload wins anyway, do not pay for it.
const optimalMax = 1 << 20

// candidate is one stored form of a delta and the size it expands to.
type candidate struct {
	stored []byte
	size   uint64
}

// optimalCandidates starts zopt's encodings of the payload (alone and
// against src) and of dst against src, each on its own goroutine, and
// returns the function that waits for them and returns the ones that
// expand back to what they encode, in a fixed order (nil where one does
// not). The payload split into frames as CompressDelta splits it never
// came out smallest on the fixtures with zopt, so it is not tried.
func optimalCandidates(src, dst, payload []byte) func() []candidate {
	type job struct {
		want, dict []byte
	}
	var jobs []job
	if len(src)+len(payload) <= optimalMax {
		jobs = append(jobs, job{payload, nil})
		if len(src) > 0 {
			jobs = append(jobs, job{payload, src})
		}
	}
	if len(src) > 0 && len(src)+len(dst) <= optimalMax && !bytes.HasPrefix(dst, []byte(deltaMagic)) {
		jobs = append(jobs, job{dst, src})
	}
	out := make([]candidate, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			// A fault in the encoder loses this candidate, not the
			// build: the others do not depend on it.
			defer func() { _ = recover() }()
			c, err := zopt.Encode(j.want, j.dict)
			if err != nil {
				return
			}
			if back, err := decompress(c, uint64(len(j.want)), src); err != nil || !bytes.Equal(back, j.want) {
				return // never seen: TestOptimalCandidates checks the fixtures
			}
			out[i] = candidate{c, uint64(len(j.want))}
		})
	}
	return func() []candidate {
		wg.Wait()
		return out
	}
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

// deltaWriter collects the streams of a payload.
type deltaWriter struct {
	s    [numStreams][]byte
	zero uint64 // zeros since the last literal difference
}

func (w *deltaWriter) put(stream int, v uint64) {
	w.s[stream] = binary.AppendUvarint(w.s[stream], v)
}

// diff appends one difference byte.
func (w *deltaWriter) diff(b byte) {
	if b == 0 {
		w.zero++
		return
	}
	w.put(streamRuns, w.zero)
	w.s[streamLits] = append(w.s[streamLits], b)
	w.zero = 0
}

func (w *deltaWriter) bytes() []byte {
	w.put(streamRuns, w.zero)
	n := len(deltaMagic) + numStreams*binary.MaxVarintLen64
	for _, s := range w.s {
		n += len(s)
	}
	out := make([]byte, 0, n)
	out = append(out, deltaMagic...)
	for _, s := range w.s {
		out = binary.AppendUvarint(out, uint64(len(s)))
	}
	for _, s := range w.s {
		out = append(out, s...)
	}
	return out
}

// MakeDelta returns the delta payload that turns src into dst.
func MakeDelta(src, dst []byte) []byte {
	sa := suffixArray(src)
	var w deltaWriter
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
				w.diff(dst[lastscan+i] - src[lastpos+i])
			}
			ext := (scan - lenb) - (lastscan + lenf)
			w.s[streamExtra] = append(w.s[streamExtra], dst[lastscan+lenf:lastscan+lenf+ext]...)
			seek := int64((pos - lenb) - (lastpos + lenf))
			w.put(streamAdds, uint64(lenf))
			w.put(streamCopies, uint64(ext))
			w.put(streamSeeks, uint64(seek<<1)^uint64(seek>>63))
			lastscan, lastpos, lastoffset = scan-lenb, pos-lenb, pos-scan
		}
	}
	return w.bytes()
}

// CompressDelta stores a delta payload made from src as several zstd
// frames: the extra bytes in one frame with src as raw dictionary, before
// it either one frame per stream (perStream; the header travels with the
// first) or the header, control and difference streams in one frame.
func CompressDelta(payload, src []byte, perStream bool) ([]byte, error) {
	_, at, err := deltaStreams(payload)
	if err != nil {
		return nil, err
	}
	var out []byte
	from := 0
	for i := range numStreams {
		part := payload[from:at[i+1]]
		if len(part) == 0 && i < streamExtra || !perStream && i < streamLits {
			continue // joins the next frame
		}
		var f []byte
		if i == streamExtra {
			f, err = compressWith(part, src)
		} else {
			f, err = Compress(part)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
		from = at[i+1]
	}
	return out, nil
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

// deltaStreams returns the header length and the offsets of the streams of
// a payload: stream i is payload[at[i]:at[i+1]].
func deltaStreams(payload []byte) (head int, at [numStreams + 1]int, err error) {
	if len(payload) < 4 || string(payload[:4]) != deltaMagic {
		return 0, at, fmt.Errorf("no %q header", deltaMagic)
	}
	r := bytes.NewReader(payload[4:])
	var lens [numStreams]uint64
	for i := range lens {
		if lens[i], err = binary.ReadUvarint(r); err != nil {
			return 0, at, fmt.Errorf("header: stream %d length: %v", i, err)
		}
	}
	head = len(payload) - r.Len()
	rest := uint64(r.Len())
	at[0] = head
	for i, n := range lens {
		if n > rest {
			return 0, at, fmt.Errorf("stream lengths %v run past the %d bytes after the header", lens, r.Len())
		}
		rest -= n
		at[i+1] = at[i] + int(n)
	}
	if rest != 0 {
		return 0, at, fmt.Errorf("stream lengths %v leave %d of %d bytes unused", lens, rest, r.Len())
	}
	return head, at, nil
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
	_, at, err := deltaStreams(delta)
	if err != nil {
		return nil, bad("%v", err)
	}
	var r [numStreams]*bytes.Reader
	for i := range r {
		r[i] = bytes.NewReader(delta[at[i]:at[i+1]])
	}
	lits := delta[at[streamLits]:at[streamLits+1]]
	extra := delta[at[streamExtra]:]
	zeros, err := binary.ReadUvarint(r[streamRuns]) // zero differences before the next literal
	if err != nil {
		return nil, bad("difference runs: %v", err)
	}
	out := make([]byte, 0, dstSize)
	var oldpos int64
	for uint64(len(out)) < dstSize {
		add, err1 := binary.ReadUvarint(r[streamAdds])
		ext, err2 := binary.ReadUvarint(r[streamCopies])
		z, err3 := binary.ReadUvarint(r[streamSeeks])
		if err := errors.Join(err1, err2, err3); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, bad("control streams end after %d of %d bytes", len(out), dstSize)
			}
			return nil, bad("control streams: %v", err)
		}
		seek := int64(z>>1) ^ -int64(z&1)
		if add > dstSize-uint64(len(out)) || oldpos < 0 || uint64(oldpos)+add > uint64(len(src)) {
			return nil, bad("an add of %d bytes at source %d runs out of bounds", add, oldpos)
		}
		for add > 0 {
			if zeros > 0 { // unchanged bytes: a plain copy of the source
				n := min(zeros, add)
				out = append(out, src[oldpos:oldpos+int64(n)]...)
				oldpos += int64(n)
				add -= n
				zeros -= n
				continue
			}
			if len(lits) == 0 {
				return nil, bad("difference literals run out")
			}
			out = append(out, src[oldpos]+lits[0])
			lits = lits[1:]
			oldpos++
			add--
			if zeros, err = binary.ReadUvarint(r[streamRuns]); err != nil {
				return nil, bad("difference runs: %v", err)
			}
		}
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
	left := len(lits) + len(extra)
	for _, s := range []int{streamAdds, streamCopies, streamSeeks, streamRuns} {
		left += r[s].Len()
	}
	if left != 0 || zeros != 0 {
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
