package bundle_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hpbuild/hpbuild/bundle"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
)

// tree lays out a release tree: path -> fixture file under ../testdata
// (or literal content with a "=" prefix).
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, src := range files {
		var b []byte
		if len(src) > 0 && src[0] == '=' {
			b = []byte(src[1:])
		} else {
			var err error
			if b, err = os.ReadFile(filepath.Join("..", "testdata", src)); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func key(t *testing.T, b byte) *signing.PrivateKey {
	k, err := signing.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixtureTrees: several DLLs of every kind the index knows.
func fixtureTrees(t *testing.T) (string, string) {
	old := tree(t, map[string]string{
		"bin/hot.dll":        "body_change/x64/old.dll",
		"bin/hot32.dll":      "tiny_hook_prologue/x86/old.dll",
		"bin/restart.dll":    "data_init/x64/old.dll",
		"bin/moved.dll":      "layout_only/x64/old.dll",
		"bin/arm.dll":        "arm64/arm64.dll",
		"bin/gone.dll":       "body_change/x86/old.dll",
		"share/readme.txt":   "=release notes 1.0\n",
		"lib/plugin/new.dll": "new_function/x64/old.dll",
	})
	nw := tree(t, map[string]string{
		"bin/hot.dll":        "body_change/x64/new.dll",
		"bin/hot32.dll":      "tiny_hook_prologue/x86/new.dll",
		"bin/restart.dll":    "data_init/x64/new.dll",
		"bin/moved.dll":      "layout_only/x64/new.dll",
		"bin/arm.dll":        "arm64/arm64.dll",
		"bin/fresh.dll":      "body_change/x64/new.dll",
		"share/readme.txt":   "=release notes 1.1\n",
		"lib/plugin/new.dll": "new_function/x64/new.dll",
	})
	return old, nw
}

// TestBundleFixtureTree: the index is right for every kind of path, every
// package verifies and applies to its base file, the index signature
// verifies, and two runs (one and two jobs) are byte-identical.
func TestBundleFixtureTree(t *testing.T) {
	oldDir, newDir := fixtureTrees(t)
	k := key(t, 1)
	out := filepath.Join(t.TempDir(), "out")
	ix, err := bundle.Run(oldDir, newDir, out, bundle.Options{Key: k, Jobs: 2, Tool: "hpbuild test"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bin/hot.dll":        bundle.Hotpatchable,
		"bin/hot32.dll":      bundle.Hotpatchable,
		"bin/restart.dll":    bundle.RebootRequired,
		"bin/moved.dll":      bundle.Identical,
		"bin/arm.dll":        bundle.Unsupported,
		"bin/gone.dll":       bundle.Removed,
		"bin/fresh.dll":      bundle.Added,
		"share/readme.txt":   bundle.NotPE,
		"lib/plugin/new.dll": bundle.Hotpatchable,
	}
	got := map[string]string{}
	var paths []string
	for _, e := range ix.Binaries {
		got[e.Path] = e.Verdict
		paths = append(paths, e.Path)
		switch e.Verdict {
		case bundle.Hotpatchable:
			if e.Package == "" || e.PackageSH == "" {
				t.Errorf("%s: hot-patchable without a package", e.Path)
				continue
			}
			b, err := os.ReadFile(filepath.Join(out, e.Package))
			if err != nil {
				t.Fatal(err)
			}
			p, err := pkgformat.ReadVerified(b, []*signing.PublicKey{k.Public()}, 1)
			if err == nil {
				err = p.VerifyBlobs()
			}
			if err != nil {
				t.Errorf("%s: package does not verify: %v", e.Path, err)
				continue
			}
			base, _ := os.ReadFile(filepath.Join(oldDir, e.Path))
			target, _ := os.ReadFile(filepath.Join(newDir, e.Path))
			if fwd, err := p.Forward(base); err != nil || !bytes.Equal(fwd, target) {
				t.Errorf("%s: package does not bring the old file to the new one (%v)", e.Path, err)
			}
		case bundle.RebootRequired:
			if e.Package != "" || len(e.Rules) == 0 || e.Rules[0] != "RR-DATA-INIT" {
				t.Errorf("%s: reboot-required entry %+v", e.Path, e)
			}
		case bundle.Unsupported:
			if !strings.HasPrefix(e.Reason, "old: unsupported machine ARM64 (0xaa64)") {
				t.Errorf("%s: reason %q", e.Path, e.Reason)
			}
		}
		if e.Verdict != bundle.Hotpatchable && e.Package != "" {
			t.Errorf("%s: %s with a package", e.Path, e.Verdict)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts:\n got %v\nwant %v", got, want)
	}
	if !sort.StringsAreSorted(paths) {
		t.Errorf("index not sorted by path: %v", paths)
	}
	if ix.Summary[bundle.Hotpatchable] != 3 || ix.Summary[bundle.NotPE] != 1 {
		t.Errorf("summary %v", ix.Summary)
	}
	// The index reads back with its signature, and not with another key.
	if _, err := bundle.ReadIndex(out, []*signing.PublicKey{k.Public()}); err != nil {
		t.Errorf("index signature: %v", err)
	}
	var ve *pkgformat.VerifyError
	if _, err := bundle.ReadIndex(out, []*signing.PublicKey{key(t, 3).Public()}); !errors.As(err, &ve) {
		t.Errorf("index verified with a stranger's key: %v", err)
	}
	// Deterministic: one job gives the same bytes.
	out1 := filepath.Join(t.TempDir(), "out")
	if _, err := bundle.Run(oldDir, newDir, out1, bundle.Options{Key: k, Jobs: 1, Tool: "hpbuild test"}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, out, out1)
	// A non-empty output directory is refused.
	if _, err := bundle.Run(oldDir, newDir, out1, bundle.Options{Key: k, Tool: "hpbuild test"}); err == nil {
		t.Error("bundle wrote into a non-empty directory")
	}
}

// TestBundleShardsMerge: --shard i/n runs joined by Merge give exactly
// what one run gives; a missing or repeated shard is refused.
func TestBundleShardsMerge(t *testing.T) {
	oldDir, newDir := fixtureTrees(t)
	k := key(t, 1)
	tmp := t.TempDir()
	whole := filepath.Join(tmp, "whole")
	if _, err := bundle.Run(oldDir, newDir, whole, bundle.Options{Key: k, Jobs: 2, Tool: "hpbuild test"}); err != nil {
		t.Fatal(err)
	}
	var shards []string
	for i := 1; i <= 3; i++ {
		dir := filepath.Join(tmp, "shard", string(rune('0'+i)))
		if _, err := bundle.Run(oldDir, newDir, dir, bundle.Options{Key: k, Jobs: 2, Shard: i, Shards: 3, Tool: "hpbuild test"}); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, dir)
	}
	merged := filepath.Join(tmp, "merged")
	if _, err := bundle.Merge(merged, []string{shards[2], shards[0], shards[1]}, k, []*signing.PublicKey{k.Public()}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, whole, merged)
	if _, err := bundle.Merge(filepath.Join(tmp, "m2"), shards[:2], k, nil); err == nil || !strings.Contains(err.Error(), "2 of 3 shards given") {
		t.Errorf("merge of 2 of 3 shards: %v", err)
	}
	if _, err := bundle.Merge(filepath.Join(tmp, "m3"), []string{shards[0], shards[0], shards[1]}, k, nil); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("merge with a repeated shard: %v", err)
	}
	var ve *pkgformat.VerifyError
	if _, err := bundle.Merge(filepath.Join(tmp, "m4"), shards, k, []*signing.PublicKey{key(t, 3).Public()}); !errors.As(err, &ve) {
		t.Errorf("merge of shards signed by an untrusted key: %v", err)
	}
	// Shards of a run with another sequence do not mix.
	other := filepath.Join(tmp, "other")
	if _, err := bundle.Run(oldDir, newDir, other, bundle.Options{Key: k, Jobs: 2, Shard: 3, Shards: 3, Sequence: 2, Tool: "hpbuild test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Merge(filepath.Join(tmp, "m5"), []string{shards[0], shards[1], other}, k, nil); err == nil || !strings.Contains(err.Error(), "of another run") {
		t.Errorf("merge of shards of two runs: %v", err)
	}
}

// sameTree fails unless two directories hold the same files with the same
// bytes.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		m := map[string][]byte{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(root, p)
				m[rel], _ = os.ReadFile(p)
			}
			return nil
		})
		return m
	}
	ma, mb := read(a), read(b)
	if len(ma) != len(mb) {
		t.Errorf("%s has %d files, %s %d", a, len(ma), b, len(mb))
	}
	for p, x := range ma {
		if !bytes.Equal(x, mb[p]) {
			t.Errorf("%s differs between %s and %s", p, a, b)
		}
	}
}

// TestMergeRefusesEscapingPaths: an index is input; a path or package
// that would reach outside the output is refused before anything is
// copied.
func TestMergeRefusesEscapingPaths(t *testing.T) {
	oldDir, newDir := fixtureTrees(t)
	k := key(t, 1)
	tmp := t.TempDir()
	var shards []string
	for i := 1; i <= 2; i++ {
		dir := filepath.Join(tmp, "s", string(rune('0'+i)))
		if _, err := bundle.Run(oldDir, newDir, dir, bundle.Options{Key: k, Jobs: 2, Shard: i, Shards: 2, Tool: "hpbuild test"}); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, dir)
	}
	for _, bad := range []struct{ path, pkg string }{{"../../evil.dll", ""}, {"bin/hot.dll", "../../evil.hpkg"}, {"/abs.dll", ""}} {
		ix, err := bundle.ReadIndex(shards[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		ix.Binaries[0].Path = bad.path
		if bad.pkg != "" {
			ix.Binaries[0].Package = bad.pkg
		}
		dir := filepath.Join(tmp, "bad")
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := bundle.WriteIndex(dir, ix, k); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tmp, "out-"+strings.ReplaceAll(bad.path, "/", "_"))
		if _, err := bundle.Merge(out, []string{dir, shards[1]}, k, nil); err == nil || !strings.Contains(err.Error(), "index entry") {
			t.Errorf("merge with entry %+v: %v", bad, err)
		}
		if _, err := os.Stat(filepath.Join(tmp, "evil.hpkg")); err == nil {
			t.Fatal("a package was written outside the output")
		}
	}
}
