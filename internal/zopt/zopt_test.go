package zopt

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// decode expands a frame of size bytes with the klauspost decoder, dict
// as raw dictionary with id 0, with the limits pkgformat reads file
// deltas with (memory bounded by the size, window by the size and the
// dictionary).
func decode(t testing.TB, frame []byte, size int, dict []byte) ([]byte, error) {
	t.Helper()
	n := uint64(size)
	opts := []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(max(n, 1<<16) + 1),
		zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(max(n, 8<<20) + uint64(len(dict)))}
	if dict != nil {
		opts = append(opts, zstd.WithDecoderDictRaw(0, dict))
	}
	dec, err := zstd.NewReader(nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	return dec.DecodeAll(frame, make([]byte, 0, size))
}

// roundTrip encodes data against dict, checks that the frame decodes to
// data and, if again, that a second encoding gives the same bytes.
func roundTrip(t *testing.T, name string, data, dict []byte, again bool) []byte {
	t.Helper()
	frame, err := Encode(data, dict)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	got, err := decode(t, frame, len(data), dict)
	if err != nil {
		t.Fatalf("%s: %d bytes to %d: decode: %v", name, len(data), len(frame), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: decodes to %d bytes that differ from the %d encoded", name, len(got), len(data))
	}
	if !again {
		return frame
	}
	if f, _ := Encode(data, dict); !bytes.Equal(f, frame) {
		t.Fatalf("%s: a second encoding differs", name)
	}
	return frame
}

// fixturePairs returns the old/new DLL pairs under testdata.
func fixturePairs(t testing.TB) [][2]string {
	old, err := filepath.Glob("../../testdata/*/x*/old*.dll")
	if err != nil || len(old) == 0 {
		t.Fatalf("no fixture pairs: %v", err)
	}
	var pairs [][2]string
	for _, o := range old {
		n := filepath.Join(filepath.Dir(o), "new"+filepath.Base(o)[3:])
		if _, err := os.Stat(n); err == nil {
			pairs = append(pairs, [2]string{o, n})
		}
	}
	return pairs
}

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripFixtures(t *testing.T) {
	for i, p := range fixturePairs(t) {
		old, nw := read(t, p[0]), read(t, p[1])
		roundTrip(t, p[1]+" against "+p[0], nw, old, i%8 == 0)
		if i%4 == 0 {
			roundTrip(t, p[0]+" against "+p[1], old, nw, false)
			roundTrip(t, p[1], nw, nil, false)
		}
	}
}

func TestRoundTripSmall(t *testing.T) {
	dll := read(t, "../../testdata/toolchain_drift/x64/old.dll")
	for _, c := range []struct {
		name       string
		data, dict []byte
	}{
		{"empty", nil, nil},
		{"empty with dictionary", nil, dll},
		{"one byte", []byte{7}, nil},
		{"one byte in the dictionary", dll[100:101], dll},
		{"three bytes", []byte("abc"), []byte("abc")},
		{"run", bytes.Repeat([]byte{0}, 5000), nil},
		{"run and more", append(bytes.Repeat([]byte{0}, 300), "x"...), nil},
		{"dictionary copy", dll, dll},
		{"dictionary prefix", dll[:300], dll},
		{"text", []byte("abcabcabcabcabd the quick brown fox jumps over the lazy dog abcabd"), nil},
	} {
		roundTrip(t, c.name, c.data, c.dict, true)
	}
}

// TestRoundTripBlocks encodes more than one block's worth, with and
// without a dictionary, so that repeat offsets carry from block to block.
func TestRoundTripBlocks(t *testing.T) {
	var big []byte
	for _, p := range fixturePairs(t)[:40] {
		big = append(big, read(t, p[1])...)
	}
	if len(big) <= 2*maxBlockSize {
		t.Fatalf("only %d bytes", len(big))
	}
	roundTrip(t, "fixtures", big, nil, false)
	roundTrip(t, "fixtures against a dictionary", big[1000:], big[:300000], false)
}

// TestLongMatchToBlockEnd: literals from a block's start up to one match
// that runs to its end (the literal run the parse prices reaches the
// block's size, one more than a sequence can carry). This panicked once.
func TestLongMatchToBlockEnd(t *testing.T) {
	head := read(t, "../../testdata/toolchain_drift/x64/new.dll")[:5000]
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"one literal, then zeros to the block's end", append([]byte{1}, make([]byte, maxBlockSize-1)...)},
		{"5000 bytes of code, then zeros over two blocks", append(append([]byte(nil), head...), make([]byte, 300000-len(head))...)},
	} {
		roundTrip(t, c.name, c.data, nil, false)
		roundTrip(t, c.name+" (dictionary)", c.data, head[:100], false)
	}
}

// TestZstdCLI checks frames with the reference decoder too, when the zstd
// command is installed.
func TestZstdCLI(t *testing.T) {
	zstdCmd, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd not installed")
	}
	dir := t.TempDir()
	for _, p := range fixturePairs(t)[:10] {
		old, nw := read(t, p[0]), read(t, p[1])
		frame, err := Encode(nw, old)
		if err != nil {
			t.Fatal(err)
		}
		dict, in := filepath.Join(dir, "dict"), filepath.Join(dir, "in.zst")
		if err := os.WriteFile(dict, old, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(in, frame, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zstdCmd, "-q", "-d", "-c", "--long=31", "--patch-from="+dict, in).Output()
		if err != nil {
			t.Fatalf("%s: zstd -d: %v", p[1], err)
		}
		if !bytes.Equal(out, nw) {
			t.Fatalf("%s: zstd -d gives %d other bytes", p[1], len(out))
		}
	}
}

func FuzzZopt(f *testing.F) {
	f.Add([]byte("abcabcabcabd"), []byte("abc"), uint32(0))
	f.Add([]byte{}, []byte{}, uint32(0))
	f.Add([]byte{1}, []byte{}, uint32(maxBlockSize-1))
	for _, p := range fixturePairs(f)[:4] {
		old, nw := read(f, p[0]), read(f, p[1])
		f.Add(nw[1000:1600], old[1000:2000], uint32(0))
	}
	f.Fuzz(func(t *testing.T, data, dict []byte, run uint32) {
		// A few KiB of data and dictionary; larger inputs make each run
		// slow enough for the fuzzer to give up on minimizing
		// (golang/go#52569). What only long inputs reach (block ends,
		// several blocks, matches as long as a block) comes from a run of
		// zeros after the data, up to a little over two blocks.
		data, dict = data[:min(len(data), 3000)], dict[:min(len(dict), 3000)]
		data = append(data, make([]byte, run%(2*maxBlockSize+1000))...)
		frame, err := Encode(data, dict)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(t, frame, len(data), dict)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("round trip differs")
		}
	})
}
