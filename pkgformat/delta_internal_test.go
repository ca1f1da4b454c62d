package pkgformat

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestOptimalCandidates: on every fixture pair (x64 and x86, forward; and
// toolchain_drift's pairs both ways, stripped too) each of zopt's
// candidates expands back to what it encodes (EncodeDelta drops one that
// does not, which would hide a bug) and is no larger than klauspost's
// frame of the same bytes. On toolchain_drift, where every function was
// recompiled, the chosen delta is smaller than the best klauspost-only
// candidate: that is what zopt is for.
func TestOptimalCandidates(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/*/x*")
	type pair struct{ old, new string }
	var pairs []pair
	for _, d := range dirs {
		pairs = append(pairs, pair{filepath.Join(d, "old.dll"), filepath.Join(d, "new.dll")})
		if filepath.Base(filepath.Dir(d)) == "toolchain_drift" {
			s := pair{filepath.Join(d, "old.stripped.dll"), filepath.Join(d, "new.stripped.dll")}
			pairs = append(pairs, s, pair{s.new, s.old}, pair{filepath.Join(d, "new.dll"), filepath.Join(d, "old.dll")})
		}
	}
	if len(pairs) < 70 {
		t.Fatalf("only %d fixture pairs", len(pairs))
	}
	for _, p := range pairs {
		src, err1 := os.ReadFile(p.old)
		dst, err2 := os.ReadFile(p.new)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		payload := MakeDelta(src, dst)
		plain, err1 := Compress(payload)
		withSrc, err2 := compressWith(payload, src)
		dstWithSrc, err3 := compressWith(dst, src)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatal(err1, err2, err3)
		}
		klauspost := []struct {
			what   string
			stored []byte
		}{{"payload", plain}, {"payload against the source", withSrc}, {"destination against the source", dstWithSrc}}
		got := optimalCandidates(src, dst, payload)()
		if len(got) != len(klauspost) {
			t.Fatalf("%s: %d zopt candidates, want %d", p.new, len(got), len(klauspost))
		}
		best := len(plain)
		for i, k := range klauspost {
			if got[i].stored == nil {
				t.Errorf("%s from %s: zopt's %s does not round-trip", p.new, p.old, k.what)
				continue
			}
			if len(got[i].stored) > len(k.stored) {
				t.Errorf("%s from %s: zopt's %s is %d bytes, klauspost's %d", p.new, p.old, k.what, len(got[i].stored), len(k.stored))
			}
			best = min(best, len(k.stored))
		}
		if filepath.Base(filepath.Dir(filepath.Dir(p.old))) != "toolchain_drift" {
			continue
		}
		for _, perStream := range []bool{false, true} {
			c, err := CompressDelta(payload, src, perStream)
			if err != nil {
				t.Fatal(err)
			}
			best = min(best, len(c))
		}
		stored, _, err := EncodeDelta(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) >= best {
			t.Errorf("%s from %s: the delta is %d bytes, klauspost's best %d", p.new, p.old, len(stored), best)
		}
	}
}

// TestEncodeDeltaGOMAXPROCS: the stored delta does not depend on how many
// threads made it (zopt's candidates run on goroutines of their own).
func TestEncodeDeltaGOMAXPROCS(t *testing.T) {
	src, err1 := os.ReadFile("../testdata/toolchain_drift/x86/old.dll")
	dst, err2 := os.ReadFile("../testdata/toolchain_drift/x86/new.dll")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	many, _, err := EncodeDelta(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one, _, err := EncodeDelta(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one, many) {
		t.Errorf("the delta made on one thread (%d bytes) differs from the one made on several (%d bytes)", len(one), len(many))
	}
}
