package assemble_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hpbuild/hpbuild/assemble"
	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
)

func testKey(t testing.TB, b byte) *signing.PrivateKey {
	t.Helper()
	k, err := signing.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func open(t testing.TB, path string) *pe.File {
	t.Helper()
	f, err := pe.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func build(t testing.TB, dir, arch string) ([]byte, *pe.File, *pe.File, *diff.Report, error) {
	t.Helper()
	o := open(t, filepath.Join(dir, arch, "old.dll"))
	n := open(t, filepath.Join(dir, arch, "new.dll"))
	r := diff.Compare(o, n)
	p, err := assemble.BuildSigned(o, n, r, assemble.Options{Sequence: 1, Tool: "hpbuild test"}, testKey(t, 1))
	if err != nil {
		return nil, o, n, r, err
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b, o, n, r, nil
}

// TestBuildInspectVerifyFixtures: every hot-patchable fixture (x64 and x86)
// gives a package that reads back, verifies with the build key, whose
// blobs all match their digests and sizes, whose file deltas bring the
// base to the target and back, and which carries a function record (with
// the site the report named) for every changed function that has one.
func TestBuildInspectVerifyFixtures(t *testing.T) {
	dirs, _ := filepath.Glob("../testdata/*/expect.json")
	built := 0
	for _, p := range dirs {
		dir := filepath.Dir(p)
		for _, arch := range []string{"x64", "x86"} {
			b, o, n, r, err := build(t, dir, arch)
			if r.Verdict != diff.VerdictHotpatchable {
				if err == nil {
					t.Errorf("%s/%s: %s, but a package was built", dir, arch, r.Verdict)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s/%s: %v", dir, arch, err)
				continue
			}
			built++
			pkg, err := pkgformat.Read(b)
			if err != nil {
				t.Fatalf("%s/%s: reading back: %v", dir, arch, err)
			}
			if err := pkg.Verify([]*signing.PublicKey{testKey(t, 1).Public()}, 1); err != nil {
				t.Errorf("%s/%s: verify: %v", dir, arch, err)
			}
			if err := pkg.CheckBase(o.Data()); err != nil {
				t.Errorf("%s/%s: base: %v", dir, arch, err)
			}
			m := &pkg.Manifest
			for i, bl := range m.Blobs {
				if bl.Delta != pkgformat.DeltaNone {
					continue
				}
				if _, err := pkg.Blob(i); err != nil {
					t.Errorf("%s/%s: blob %d: %v", dir, arch, i, err)
				}
			}
			fwd, err := pkg.Forward(o.Data())
			if err != nil || sha256.Sum256(fwd) != n.SHA256 {
				t.Errorf("%s/%s: forward delta does not give the target (%v)", dir, arch, err)
			}
			rev, err := pkg.Reverse(n.Data())
			if err != nil || !bytes.Equal(rev, o.Data()) {
				t.Errorf("%s/%s: reverse delta does not give the base (%v)", dir, arch, err)
			}
			sites := map[uint32]string{}
			for _, f := range m.Functions {
				if f.Site != nil {
					sites[f.Site.RVA] = f.Site.Method
					if got := hex.EncodeToString(o.Bytes(f.Site.RVA, len(f.Site.Original)/2)); got != f.Site.Original {
						t.Errorf("%s/%s %s: rollback bytes %s, the base has %s at %#x", dir, arch, f.Name, f.Site.Original, got, f.Site.RVA)
					}
				}
				if f.OldRVA != 0 {
					of, ok := o.FunctionAt(f.OldRVA)
					if !ok {
						t.Errorf("%s/%s %s: no old function at %#x", dir, arch, f.Name, f.OldRVA)
					} else if of.RVA != f.OldRVA {
						t.Errorf("%s/%s %s: old rva %#x is inside %s", dir, arch, f.Name, f.OldRVA, of.DisplayName())
					}
				}
			}
			for _, f := range r.Functions {
				if f.Site != nil && sites[f.Site.RVA] != f.Site.Method {
					t.Errorf("%s/%s: %s's site %#x (%s) is not in the package", dir, arch, f.Name, f.Site.RVA, f.Site.Method)
				}
			}
		}
	}
	if built < 20 {
		t.Errorf("only %d packages built", built)
	}
}

// TestBuildDeterministic: the same inputs and key give byte-identical
// packages, with one core or two.
func TestBuildDeterministic(t *testing.T) {
	for _, c := range []string{"new_function", "switch_table", "cxx_exceptions"} {
		var first []byte
		for _, procs := range []int{1, 2, 1} {
			old := runtime.GOMAXPROCS(procs)
			b, _, _, _, err := build(t, "../testdata/"+c, "x64")
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				t.Errorf("%s: package differs between builds (GOMAXPROCS %d)", c, procs)
			}
		}
	}
}

// TestBuildRefusesRebootRequired: a reboot-required update gives the
// blocking rules, no package.
func TestBuildRefusesRebootRequired(t *testing.T) {
	_, _, _, _, err := build(t, "../testdata/data_init", "x64")
	var rr *assemble.RebootRequiredError
	if !errors.As(err, &rr) || len(rr.Reasons) == 0 {
		t.Fatalf("data_init: %v, want a RebootRequiredError with reasons", err)
	}
	_, _, _, _, err = build(t, "../testdata/layout_only", "x64")
	if !errors.Is(err, assemble.ErrIdentical) {
		t.Errorf("layout_only: %v, want ErrIdentical", err)
	}
}

// TestBuildRefusesWhatAPolicyHid: a policy that sets blocking rules to
// warn makes the report hot-patchable, but what those rules stood for
// still cannot be placed: no site at a 3-byte entry, a writable object
// with no counterpart. Build refuses with the reasons.
func TestBuildRefusesWhatAPolicyHid(t *testing.T) {
	for _, c := range []struct{ dir, file, policy, want string }{
		{"../testdata/tiny_function/x64", "", "RR-NO-ENTRY-ROOM warn", "no jump can be written"},
		{"../testdata/data_unmatched/x64", ".stripped", "RR-DATA-UNMATCHED warn", "has no place in the running image"},
	} {
		o := open(t, filepath.Join(c.dir, "old"+c.file+".dll"))
		n := open(t, filepath.Join(c.dir, "new"+c.file+".dll"))
		r := diff.Compare(o, n)
		pol, err := diff.ParsePolicy(strings.NewReader(c.policy))
		if err != nil {
			t.Fatal(err)
		}
		r.ApplyPolicy(pol)
		if r.Verdict != diff.VerdictHotpatchable {
			t.Errorf("%s with %q: verdict %s, want hotpatchable (never identical)", c.dir, c.policy, r.Verdict)
		}
		_, err = assemble.Build(o, n, r, assemble.Options{Sequence: 1})
		var rr *assemble.RebootRequiredError
		if !errors.As(err, &rr) || !strings.Contains(strings.Join(rr.Reasons, "\n"), c.want) {
			t.Errorf("%s with %q: %v, want a refusal saying %q", c.dir, c.policy, err, c.want)
		}
	}
}
