package pkgformat_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hpbuild/hpbuild/pkgformat"
)

// TestDeltaRoundTrip: for every fixture pair (both directions) and a few
// edge cases, applying the delta gives the destination back exactly.
func TestDeltaRoundTrip(t *testing.T) {
	type pair struct {
		name string
		a, b []byte
	}
	pairs := []pair{{"empty to empty", nil, nil}, {"empty to some", nil, []byte("hello")}, {"some to empty", []byte("hello"), nil},
		{"repeats", bytes.Repeat([]byte("ab"), 1000), bytes.Repeat([]byte("abc"), 700)}}
	dirs, _ := filepath.Glob("../testdata/*/x86")
	for _, d := range dirs {
		a, err1 := os.ReadFile(filepath.Join(d, "old.dll"))
		b, err2 := os.ReadFile(filepath.Join(d, "new.dll"))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		pairs = append(pairs, pair{d, a, b})
	}
	for k, p := range pairs {
		for _, dir := range [][2][]byte{{p.a, p.b}, {p.b, p.a}} {
			d := pkgformat.MakeDelta(dir[0], dir[1])
			got, err := pkgformat.ApplyDelta(dir[0], d, uint64(len(dir[1])))
			if err != nil || !bytes.Equal(got, dir[1]) {
				t.Errorf("%s: delta does not round-trip (%v)", p.name, err)
			}
			// The stored form, whichever encoding won (for the edge cases
			// and a few fixtures: it tries three encodings).
			if k >= 4 && k%8 != 0 {
				continue
			}
			stored, size, err := pkgformat.EncodeDelta(dir[0], dir[1])
			if err != nil {
				t.Fatal(err)
			}
			forms := map[string][]byte{"smallest": stored}
			for _, perStream := range []bool{false, true} {
				if forms[fmt.Sprint("split ", perStream)], err = pkgformat.CompressDelta(d, dir[0], perStream); err != nil {
					t.Fatal(err)
				}
			}
			for form, stored := range forms {
				n := size
				if form != "smallest" {
					n = uint64(len(d))
				}
				payload, err := pkgformat.DecompressDelta(stored, n, dir[0])
				if err == nil {
					got, err = pkgformat.ApplyDelta(dir[0], payload, uint64(len(dir[1])))
				}
				if err != nil || !bytes.Equal(got, dir[1]) {
					t.Errorf("%s: stored delta (%s) does not round-trip (%v)", p.name, form, err)
				}
			}
		}
	}
}

// FuzzApplyDelta: a hostile delta never panics, and never yields more
// than the size it is asked for.
func FuzzApplyDelta(f *testing.F) {
	src := []byte("the quick brown fox jumps over the lazy dog")
	f.Add(pkgformat.MakeDelta(src, []byte("the quick red fox jumps over the lazy cat")), uint16(41))
	f.Add([]byte("HPBD"), uint16(3))
	f.Add([]byte("HPBD\x01\x01\x01\x01\x00\x00\x05\x00\x00\x05"), uint16(5))
	f.Fuzz(func(t *testing.T, delta []byte, size uint16) {
		out, err := pkgformat.ApplyDelta(src, delta, uint64(size))
		if err == nil && len(out) != int(size) {
			t.Fatalf("delta gave %d bytes, %d asked", len(out), size)
		}
	})
}
