package pkgformat_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/hpbuild/hpbuild/assemble"
	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/vectors")

// Fixed keys of the test vectors: seeds of 32 equal bytes.
var keySeeds = map[string]byte{"build": 1, "release": 2, "stranger": 3}

func key(t testing.TB, name string) *signing.PrivateKey {
	t.Helper()
	k, err := signing.FromSeed(bytes.Repeat([]byte{keySeeds[name]}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// buildPackage builds the package of a fixture pair, signed by the named keys.
func buildPackage(t testing.TB, fixture string, keys ...string) *pkgformat.Package {
	t.Helper()
	o, err := pe.Open(filepath.Join("../testdata", fixture, "old.dll"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := pe.Open(filepath.Join("../testdata", fixture, "new.dll"))
	if err != nil {
		t.Fatal(err)
	}
	var ks []*signing.PrivateKey
	for _, k := range keys {
		ks = append(ks, key(t, k))
	}
	p, err := assemble.BuildSigned(o, n, diff.Compare(o, n), assemble.Options{Sequence: 1, Tool: "hpbuild test"}, ks...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func marshal(t testing.TB, p *pkgformat.Package) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// check runs what 'hpbuild verify' runs, returning the failure class ("" for
// success): structure, signatures by the trusted keys, blob digests, every
// plain blob's expansion, and with a base the identity and both deltas.
func check(b []byte, trusted []*signing.PublicKey, threshold int, base []byte) (string, error) {
	fail := func(err error) (string, error) {
		var v *pkgformat.VerifyError
		var ve *pkgformat.VersionError
		switch {
		case errors.As(err, &v):
			return v.Class, err
		case errors.As(err, &ve):
			return "unsupported-version", err
		}
		return "malformed", err
	}
	p, err := pkgformat.ReadVerified(b, trusted, threshold)
	if err != nil {
		return fail(err)
	}
	if err := p.VerifyBlobs(); err != nil {
		return fail(err)
	}
	for i, bl := range p.Manifest.Blobs {
		if bl.Delta != pkgformat.DeltaNone {
			continue
		}
		if _, err := p.Blob(i); err != nil {
			return fail(err)
		}
	}
	if base != nil {
		if err := p.CheckBase(base); err != nil {
			return fail(err)
		}
		fwd, err := p.Forward(base)
		if err != nil {
			return fail(err)
		}
		if _, err := p.Reverse(fwd); err != nil {
			return fail(err)
		}
	}
	return "", nil
}

// TestRoundTrip: a package reads back to the same bytes and content.
func TestRoundTrip(t *testing.T) {
	p := buildPackage(t, "new_function/x64", "build", "release")
	b := marshal(t, p)
	q, err := pkgformat.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, q), b) {
		t.Error("package does not re-marshal to the same bytes")
	}
	if len(q.Sigs) != 2 || q.Manifest.Functions[0].Name != p.Manifest.Functions[0].Name {
		t.Errorf("read back %d signatures, functions %v", len(q.Sigs), q.Manifest.Functions)
	}
	if class, err := check(b, []*signing.PublicKey{key(t, "build").Public(), key(t, "release").Public()}, 2, nil); class != "" {
		t.Errorf("threshold 2 with both keys: %s %v", class, err)
	}
}

// verifyOnly is what must catch every tampering before anything is
// expanded: the strict read, the signatures, the blob digests.
func verifyOnly(b []byte, trusted []*signing.PublicKey) string {
	p, err := pkgformat.ReadVerified(b, trusted, 1)
	var ve *pkgformat.VersionError
	var v *pkgformat.VerifyError
	switch {
	case errors.As(err, &ve):
		return "unsupported-version"
	case errors.As(err, &v):
		return v.Class
	case err != nil:
		return "malformed"
	}
	if err := p.VerifyBlobs(); err != nil {
		return err.(*pkgformat.VerifyError).Class
	}
	return ""
}

// flipAll flips one bit of each offset in offs and asserts that every
// flip makes verification fail before any blob is expanded.
func flipAll(t *testing.T, b []byte, offs []int) {
	t.Helper()
	trusted := []*signing.PublicKey{key(t, "build").Public()}
	if class, err := check(b, trusted, 1, nil); class != "" {
		t.Fatalf("untouched package fails: %s %v", class, err)
	}
	// Flips are checked on all cores, each worker on its own copy.
	workers := runtime.GOMAXPROCS(0)
	results := make([]string, len(offs))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bytes.Clone(b)
			for i := w; i < len(offs); i += workers {
				c[offs[i]] ^= 0x01
				results[i] = verifyOnly(c, trusted)
				c[offs[i]] ^= 0x01
			}
		}()
	}
	wg.Wait()
	classes := map[string]int{}
	for i, class := range results {
		if class == "" {
			t.Errorf("flipping a bit at offset %d (of %d) still verifies", offs[i], len(b))
		}
		classes[class]++
	}
	t.Logf("%d flips of %d bytes: %v", len(offs), len(b), classes)
}

// TestTamperEveryByteSmall: flipping any single byte of a small package
// makes verification fail.
func TestTamperEveryByteSmall(t *testing.T) {
	b := marshal(t, buildPackage(t, "body_change/x64", "build"))
	offs := make([]int, len(b))
	for i := range offs {
		offs[i] = i
	}
	flipAll(t, b, offs)
}

// TestTamperSampledLarge: flipping a byte at each of 2000+ sampled offsets
// (fixed seed, every region) of a large package makes verification fail.
func TestTamperSampledLarge(t *testing.T) {
	b := marshal(t, buildPackage(t, "cxx_exceptions/x64", "build"))
	rng := rand.New(rand.NewPCG(1, 2))
	offs := []int{0, 7, 8, 11, 12, len(b) - 1}
	for len(offs) < 2048 {
		offs = append(offs, rng.IntN(len(b)))
	}
	flipAll(t, b, offs)
}

// vector is one entry of testdata/vectors/vectors.json.
type vector struct {
	File      string   `json:"file"`
	Trusted   []string `json:"trusted"`   // key names
	Threshold int      `json:"threshold"` // signatures required
	Base      string   `json:"base"`      // fixture file the package is checked against, "" for none
	Expect    string   `json:"expect"`    // "" (success) or the failure class
	About     string   `json:"about"`
}

// makeVectors builds the test vectors: a good package and one per failure
// class, all from fixed keys and fixtures.
func makeVectors(t *testing.T) (map[string][]byte, []vector) {
	good := buildPackage(t, "body_change/x64", "build")
	gb := marshal(t, good)
	files := map[string][]byte{"good.hpkg": gb}
	var vs []vector
	add := func(name string, b []byte, v vector) {
		v.File = name
		files[name] = b
		vs = append(vs, v)
	}
	vs = append(vs, vector{File: "good.hpkg", Trusted: []string{"build"}, Threshold: 1, Base: "body_change/x64/old.dll", About: "a package for body_change/x64, signed by the build key"})
	two := buildPackage(t, "body_change/x64", "build", "release")
	add("two-signatures.hpkg", marshal(t, two), vector{Trusted: []string{"build", "release"}, Threshold: 2, About: "signed by the build and release keys; threshold 2"})
	add("threshold.hpkg", gb, vector{Trusted: []string{"build", "release"}, Threshold: 2, Expect: pkgformat.FailThreshold, About: "one valid signature where two are required"})
	add("unknown-key.hpkg", gb, vector{Trusted: []string{"stranger"}, Threshold: 1, Expect: pkgformat.FailUnknown, About: "signed by a key the verifier does not trust"})
	bad := bytes.Clone(gb)
	bad[len(pkgformat.Magic)+4+int(binary.LittleEndian.Uint32(gb[8:]))+2+71] ^= 0x80 // last byte of the only signature
	add("bad-signature.hpkg", bad, vector{Trusted: []string{"build"}, Threshold: 1, Expect: pkgformat.FailSignature, About: "the signature's last byte flipped"})
	tampered := bytes.Clone(gb)
	hdr := len(pkgformat.Magic) + 4 + int(binary.LittleEndian.Uint32(gb[8:])) + 2 + 72
	tampered[hdr+3] ^= 0x01 // inside the first blob, after the one signature
	add("tampered-blob.hpkg", tampered, vector{Trusted: []string{"build"}, Threshold: 1, Expect: pkgformat.FailTampered, About: "a byte of the first blob (the report) flipped"})
	add("wrong-base.hpkg", gb, vector{Trusted: []string{"build"}, Threshold: 1, Base: "body_change/x64/new.dll", Expect: pkgformat.FailWrongBase, About: "checked against the target instead of the base"})
	v2 := bytes.Clone(gb)
	v2[7] = 2
	add("version-2.hpkg", v2, vector{Trusted: []string{"build"}, Threshold: 1, Expect: "unsupported-version", About: "the magic's version byte is 2"})
	add("trailing.hpkg", append(bytes.Clone(gb), 0), vector{Trusted: []string{"build"}, Threshold: 1, Expect: "malformed", About: "one byte after the signature block"})
	add("truncated.hpkg", gb[:len(gb)-1], vector{Trusted: []string{"build"}, Threshold: 1, Expect: "malformed", About: "the last byte cut off"})
	add("bomb.hpkg", bomb(t), vector{Trusted: []string{"build"}, Threshold: 1, Expect: pkgformat.FailTampered, About: "a correctly signed blob that declares 4096 bytes but expands to 64 MiB"})
	return files, vs
}

// bomb is a signed package whose report blob is a zstd frame of 64 MiB of
// zeros that the manifest declares as 4096 bytes.
func bomb(t *testing.T) []byte {
	p := buildPackage(t, "body_change/x64", "build")
	m := p.Manifest
	frame, err := pkgformat.Compress(make([]byte, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	blobs := append([][]byte{frame}, p.Stored[1:]...)
	m.Blobs = append([]pkgformat.Blob{{Size: 4096, Stored: uint64(len(frame)), SHA256: pkgformat.HexDigest(sha256.Sum256(frame))}}, m.Blobs[1:]...)
	if m.Report != 0 {
		t.Fatalf("report is blob %d, the bomb expects 0", m.Report)
	}
	q, err := pkgformat.New(m, blobs)
	if err != nil {
		t.Fatal(err)
	}
	q.Sign(key(t, "build"))
	return marshal(t, q)
}

// TestVectors: each vector in testdata/vectors fails with its class (or
// verifies); -update regenerates them, deterministically.
func TestVectors(t *testing.T) {
	dir := "testdata/vectors"
	if *update {
		files, vs := makeVectors(t)
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		js, _ := json.MarshalIndent(vs, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "vectors.json"), append(js, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(js, &vs); err != nil {
		t.Fatal(err)
	}
	classes := map[string]bool{}
	for _, v := range vs {
		b, err := os.ReadFile(filepath.Join(dir, v.File))
		if err != nil {
			t.Fatal(err)
		}
		var trusted []*signing.PublicKey
		for _, k := range v.Trusted {
			trusted = append(trusted, key(t, k).Public())
		}
		var base []byte
		if v.Base != "" {
			if base, err = os.ReadFile(filepath.Join("../testdata", v.Base)); err != nil {
				t.Fatal(err)
			}
		}
		class, err := check(b, trusted, v.Threshold, base)
		if class != v.Expect {
			t.Errorf("%s (%s): got %q (%v), want %q", v.File, v.About, class, err, v.Expect)
		}
		classes[v.Expect] = true
	}
	for _, c := range []string{"", pkgformat.FailSignature, pkgformat.FailUnknown, pkgformat.FailThreshold, pkgformat.FailTampered, pkgformat.FailWrongBase, "unsupported-version", "malformed"} {
		if !classes[c] {
			t.Errorf("no vector for class %q", c)
		}
	}
	// The vectors are what the current code makes from the fixtures.
	files, _ := makeVectors(t)
	for name, b := range files {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, b) {
			t.Errorf("%s is not what the build makes now (go test ./pkgformat -run Vectors -update)", name)
		}
	}
}

// TestBombBoundedMemory: expanding the bomb's blob is refused without
// allocating anywhere near its 64 MiB.
func TestBombBoundedMemory(t *testing.T) {
	b, err := os.ReadFile("testdata/vectors/bomb.hpkg")
	if err != nil {
		t.Fatal(err)
	}
	p, err := pkgformat.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = p.Blob(p.Manifest.Report)
	runtime.ReadMemStats(&after)
	var v *pkgformat.VerifyError
	if !errors.As(err, &v) || v.Class != pkgformat.FailTampered {
		t.Fatalf("bomb blob: %v, want a tampered-blob failure", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("refusing the bomb allocated %d MiB", alloc>>20)
	}
}

// FuzzRead: Read never panics, and whatever it accepts re-marshals to the
// same bytes.
func FuzzRead(f *testing.F) {
	files, _ := filepath.Glob("testdata/vectors/*.hpkg")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 1<<16 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := pkgformat.Read(b)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("read but cannot marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("read %d bytes, re-marshalled %d different bytes", len(b), len(out))
		}
	})
}

// TestTamperSampledCorpus: a large package — the real rollup-x64-gnu pair,
// 258 changed functions, built with a policy that accepts its
// reboot-required rules (the pair is a real update, not a hot patch) —
// fails verification for each of 2048 sampled single-bit flips. Skips
// without the corpus (make corpus).
func TestTamperSampledCorpus(t *testing.T) {
	dir := os.Getenv("HPBUILD_CORPUS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "hpbuild-corpus")
	}
	o, err1 := pe.Open(filepath.Join(dir, "rollup-x64-gnu", "old.node"))
	n, err2 := pe.Open(filepath.Join(dir, "rollup-x64-gnu", "new.node"))
	if err1 != nil || err2 != nil {
		t.Skipf("corpus pair rollup-x64-gnu not fetched (make corpus): %v %v", err1, err2)
	}
	r := diff.Compare(o, n)
	pol, err := diff.ParsePolicy(bytes.NewReader([]byte("RR-* warn\n")))
	if err != nil {
		t.Fatal(err)
	}
	r.ApplyPolicy(pol)
	p, err := assemble.BuildSigned(o, n, r, assemble.Options{Sequence: 1, Tool: "hpbuild test"}, key(t, "build"))
	if err != nil {
		t.Fatal(err)
	}
	b := marshal(t, p)
	if len(b) < 100<<10 {
		t.Fatalf("package is only %d bytes", len(b))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	offs := []int{0, 8, 12, len(b) - 1}
	for len(offs) < 2048 {
		offs = append(offs, rng.IntN(len(b)))
	}
	flipAll(t, b, offs)
}
