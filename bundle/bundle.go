// Package bundle patches release trees: it pairs the files of an old and a
// new tree by relative path, diffs the PE images among them concurrently,
// builds a signed package for every hot-patchable one, and describes the
// whole tree in a signed index (schema hpbuild.bundle/v1). Files only in
// one tree, non-PE files and unsupported images are listed, not fatal.
//
// A run can be split into shards (every n-th path) whose outputs Merge
// joins into exactly what one run gives.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hpbuild/hpbuild/assemble"
	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/internal/atomicfile"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
)

// Schema names the index format.
const Schema = "hpbuild.bundle/v1"

// Verdicts of a binary in the index.
const (
	Hotpatchable   = "hotpatchable"
	RebootRequired = "reboot-required"
	Identical      = "identical"
	Added          = "added"
	Removed        = "removed"
	Unsupported    = "unsupported"
	NotPE          = "not-pe"
)

// Verdicts lists them in summary order.
var Verdicts = []string{Hotpatchable, RebootRequired, Identical, Added, Removed, Unsupported, NotPE}

// Index is OUT/index.json.
type Index struct {
	Schema   string         `json:"schema"`
	Tool     string         `json:"tool"`
	Shard    string         `json:"shard"`    // "i/n" for a shard's index, "" for a whole tree
	Sequence uint64         `json:"sequence"` // of the packages
	Summary  map[string]int `json:"summary"`
	Binaries []Entry        `json:"binaries"`
}

// Entry is one path of either tree.
type Entry struct {
	Path      string    `json:"path"` // relative to the tree roots, '/'-separated
	Verdict   string    `json:"verdict"`
	Reason    string    `json:"reason"`  // why, for everything but hotpatchable and identical
	Package   string    `json:"package"` // relative to OUT, "" for none
	Old       *FileInfo `json:"old"`     // null when only in the new tree
	New       *FileInfo `json:"new"`     // null when only in the old tree
	Rules     []string  `json:"rules"`   // the rule ids that decide the verdict
	Changed   int       `json:"changed"` // functions
	Added     int       `json:"added"`
	Removed   int       `json:"removed"`
	PackageSH string    `json:"package_sha256"` // of the package file, "" for none
}

// FileInfo identifies one file of a tree.
type FileInfo struct {
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Machine string `json:"machine"` // "amd64", "i386", or "" when not a supported PE image
}

// Options configure Run.
type Options struct {
	Key      *signing.PrivateKey
	Jobs     int
	Shard    int // 1-based shard number; 0 with Shards 0 for the whole tree
	Shards   int
	Sequence uint64
	Tool     string
	// Progress, when set, is called after each binary (from one goroutine
	// at a time).
	Progress func(done, total int, path string)
	// Report, when set, is called with every binary while its images are
	// open (for reports that show code), from several goroutines at once
	// and in no particular order; r, oldF and newF are nil for a binary
	// that was not compared.
	Report func(e Entry, r *diff.Report, oldF, newF *pe.File) error
}

// Run bundles oldDir→newDir into out, which must not exist or be empty.
func Run(oldDir, newDir, out string, o Options) (*Index, error) {
	if o.Jobs < 1 {
		o.Jobs = 1
	}
	if o.Shards < 0 || o.Shard < 0 || (o.Shards > 0) != (o.Shard > 0) || o.Shard > o.Shards {
		return nil, fmt.Errorf("shard %d/%d: want i/n with 1 <= i <= n", o.Shard, o.Shards)
	}
	oldFiles, err := listTree(oldDir)
	if err != nil {
		return nil, err
	}
	newFiles, err := listTree(newDir)
	if err != nil {
		return nil, err
	}
	paths := union(oldFiles, newFiles)
	if o.Shards > 0 {
		var mine []string
		for i, p := range paths {
			if i%o.Shards == o.Shard-1 {
				mine = append(mine, p)
			}
		}
		paths = mine
	}
	if err := prepareOut(out); err != nil {
		return nil, err
	}
	entries := make([]Entry, len(paths))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done := 0
	for range o.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				p := paths[i]
				e, err := one(oldDir, newDir, out, p, oldFiles[p], newFiles[p], o)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", p, err)
				}
				entries[i] = e
				done++
				if o.Progress != nil {
					o.Progress(done, len(paths), p)
				}
				mu.Unlock()
			}
		}()
	}
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	{
		// Largest pairs first, so that the last job to finish is short.
		size := make([]int64, len(paths))
		for i, p := range paths {
			for _, f := range []string{oldFiles[p], newFiles[p]} {
				if st, err := os.Stat(f); f != "" && err == nil {
					size[i] += st.Size()
				}
			}
		}
		sort.SliceStable(order, func(a, b int) bool { return size[order[a]] > size[order[b]] })
	}
	for _, i := range order {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		// OUT was new or empty: leave nothing of a run that failed.
		if ents, err := os.ReadDir(out); err == nil {
			for _, e := range ents {
				os.RemoveAll(filepath.Join(out, e.Name()))
			}
		}
		return nil, firstErr
	}
	ix := &Index{Schema: Schema, Tool: o.Tool, Sequence: max(o.Sequence, 1), Binaries: entries}
	if o.Shards > 0 {
		ix.Shard = fmt.Sprintf("%d/%d", o.Shard, o.Shards)
	}
	ix.Summary = summarize(entries)
	if err := WriteIndex(out, ix, o.Key); err != nil {
		return nil, err
	}
	return ix, nil
}

func summarize(entries []Entry) map[string]int {
	s := map[string]int{}
	for _, v := range Verdicts {
		s[v] = 0
	}
	for _, e := range entries {
		s[e.Verdict]++
	}
	return s
}

// listTree returns the regular files under root by '/'-separated relative
// path.
func listTree(root string) (map[string]string, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	files := map[string]string{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", root, err)
	}
	return files, nil
}

func union(a, b map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{a, b} {
		for p := range m {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// prepareOut makes out (and out/packages); an existing out must be empty.
func prepareOut(out string) error {
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return fmt.Errorf("output directory %s is not empty", out)
	}
	return os.MkdirAll(filepath.Join(out, "packages"), 0o755)
}

// fileInfo hashes a file as a stream (pe.Open maps it afterwards).
func fileInfo(path string) (*FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &FileInfo{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// classify opens a file as a PE image: the file, or the verdict and reason
// why it is not compared.
func classify(path string) (*pe.File, string, string) {
	f, err := pe.Open(path)
	if err == nil {
		return f, "", ""
	}
	var u *pe.UnsupportedError
	switch {
	case errors.Is(err, pe.ErrNotPE):
		return nil, NotPE, "not a PE image"
	case errors.As(err, &u):
		return nil, Unsupported, u.What
	}
	return nil, Unsupported, "malformed PE image: " + err.Error()
}

func machine(f *pe.File) string {
	switch f.Machine {
	case pe.IMAGE_FILE_MACHINE_AMD64:
		return "amd64"
	case pe.IMAGE_FILE_MACHINE_I386:
		return "i386"
	}
	return ""
}

// one compares one path of the trees.
func one(oldDir, newDir, out, rel, oldPath, newPath string, o Options) (Entry, error) {
	report := func(e Entry, r *diff.Report, oldF, newF *pe.File) error {
		if o.Report == nil {
			return nil
		}
		return o.Report(e, r, oldF, newF)
	}
	e := Entry{Path: rel, Rules: []string{}}
	var err error
	if oldPath != "" {
		if e.Old, err = fileInfo(oldPath); err != nil {
			return e, err
		}
	}
	if newPath != "" {
		if e.New, err = fileInfo(newPath); err != nil {
			return e, err
		}
	}
	finish := func() (Entry, error) { return e, report(e, nil, nil, nil) }
	if oldPath == "" || newPath == "" {
		e.Verdict, e.Reason = Added, "only in the new tree"
		if newPath == "" {
			e.Verdict, e.Reason = Removed, "only in the old tree"
		}
		return finish()
	}
	oldF, v1, why1 := classify(oldPath)
	if oldF != nil {
		defer oldF.Close()
		e.Old.Machine = machine(oldF)
	}
	newF, v2, why2 := classify(newPath)
	if newF != nil {
		defer newF.Close()
		e.New.Machine = machine(newF)
	}
	switch {
	case v1 == NotPE && v2 == NotPE:
		e.Verdict, e.Reason = NotPE, "not a PE image"
		return finish()
	case v1 != "" || v2 != "":
		e.Verdict = Unsupported
		if v1 != "" {
			e.Reason = "old: " + why1
		} else {
			e.Reason = "new: " + why2
		}
		if v1 != "" && v2 != "" && why1 != why2 {
			e.Reason += "; new: " + why2
		}
		return finish()
	case oldF.Machine != newF.Machine:
		e.Verdict, e.Reason = Unsupported, fmt.Sprintf("the machine changed from %s to %s", oldF.Machine, newF.Machine)
		return finish()
	}
	r := diff.Compare(oldF, newF)
	e.Changed, e.Added, e.Removed = r.Counts[diff.Changed], r.Counts[diff.Added], r.Counts[diff.Removed]
	e.Verdict = r.Verdict
	switch r.Verdict {
	case diff.VerdictIdentical:
	case diff.VerdictRebootRequired:
		for _, b := range r.BlockingRules() {
			id, _, _ := strings.Cut(b, ":")
			e.Rules = append(e.Rules, id)
		}
		e.Rules = uniqueSorted(e.Rules)
		e.Reason = fmt.Sprintf("%d rule(s) need a restart", len(e.Rules))
	default:
		p, err := assemble.BuildSigned(oldF, newF, r, assemble.Options{Sequence: max(o.Sequence, 1), Tool: o.Tool}, o.Key)
		var rr *assemble.RebootRequiredError
		if errors.As(err, &rr) {
			e.Verdict, e.Reason = RebootRequired, strings.Join(rr.Reasons, "; ")
			break
		}
		if err != nil {
			return e, fmt.Errorf("building its package: %w", err)
		}
		b, err := p.Marshal()
		if err != nil {
			return e, err
		}
		e.Package = path.Join("packages", rel+".hpkg")
		d := sha256.Sum256(b)
		e.PackageSH = hex.EncodeToString(d[:])
		dst := filepath.Join(out, filepath.FromSlash(e.Package))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return e, err
		}
		if err := writeAtomic(dst, b); err != nil {
			return e, err
		}
		for _, fn := range r.Functions {
			for _, ru := range fn.Rules {
				e.Rules = append(e.Rules, ru.ID)
			}
		}
		e.Rules = uniqueSorted(e.Rules)
	}
	return e, report(e, r, oldF, newF)
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func writeAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }

// SignatureSchema names the index signature file's format.
const SignatureSchema = "hpbuild.bundle-signature/v1"

// Signature is OUT/index.json.sig.
type Signature struct {
	Schema    string `json:"schema"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // hex ed25519 signature
}

// indexDigest is what the index signature signs: a digest of the index
// bytes, separated from package digests by its own domain string.
func indexDigest(index []byte) [32]byte {
	d := sha256.Sum256(index)
	return sha256.Sum256(append([]byte(Schema+" index\x00"), d[:]...))
}

// MarshalIndex returns the index bytes: indented JSON and a newline.
func MarshalIndex(ix *Index) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ix); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteIndex writes OUT/index.json and, with a key, OUT/index.json.sig.
func WriteIndex(out string, ix *Index, key *signing.PrivateKey) error {
	b, err := MarshalIndex(ix)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(out, "index.json"), b); err != nil {
		return err
	}
	if key == nil {
		return nil
	}
	sig := signing.Sign(key, indexDigest(b))
	s, err := json.MarshalIndent(Signature{Schema: SignatureSchema, KeyID: key.Public().ID.String(), Signature: hex.EncodeToString(sig)}, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(out, "index.json.sig"), append(s, '\n'))
}

// ReadIndex reads OUT/index.json and checks its signature against keys
// (no check with no keys).
func ReadIndex(out string, keys []*signing.PublicKey) (*Index, error) {
	b, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		sb, err := os.ReadFile(filepath.Join(out, "index.json.sig"))
		if err != nil {
			return nil, err
		}
		var s Signature
		if err := json.Unmarshal(sb, &s); err != nil || s.Schema != SignatureSchema {
			return nil, &pkgformat.VerifyError{Class: pkgformat.FailSignature, Msg: fmt.Sprintf("%s: not an index signature", filepath.Join(out, "index.json.sig"))}
		}
		sig, err := hex.DecodeString(s.Signature)
		ok := false
		for _, k := range keys {
			if err == nil && k.ID.String() == s.KeyID && signing.Verify(k, indexDigest(b), sig) {
				ok = true
			}
		}
		if !ok {
			return nil, &pkgformat.VerifyError{Class: pkgformat.FailSignature, Msg: fmt.Sprintf("%s: the index signature (key %s) does not verify with a trusted key", out, s.KeyID)}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var ix Index
	if err := dec.Decode(&ix); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(out, "index.json"), err)
	}
	if ix.Schema != Schema {
		return nil, fmt.Errorf("%s: schema %q, this hpbuild reads %s", out, ix.Schema, Schema)
	}
	return &ix, nil
}

// Merge joins the outputs of all n shards of one bundle run into out,
// which then holds what one run gives: the packages, the index with every
// binary and no shard, and its signature.
func Merge(out string, shards []string, key *signing.PrivateKey, keys []*signing.PublicKey) (*Index, error) {
	var all []Entry
	var read []*Index
	tool, n, seq := "", 0, uint64(0)
	seen := map[string]string{}
	for _, dir := range shards {
		ix, err := ReadIndex(dir, keys)
		if err != nil {
			return nil, err
		}
		var i, k int
		if _, err := fmt.Sscanf(ix.Shard, "%d/%d", &i, &k); err != nil || i < 1 || i > k {
			return nil, fmt.Errorf("%s is not a shard's output (shard %q)", dir, ix.Shard)
		}
		if n == 0 {
			n, tool, seq = k, ix.Tool, ix.Sequence
		}
		if k != n || ix.Tool != tool || ix.Sequence != seq {
			return nil, fmt.Errorf("%s is shard %s of another run (%d shards, tool %q, sequence %d; expected %d, %q, %d)", dir, ix.Shard, k, ix.Tool, ix.Sequence, n, tool, seq)
		}
		if prev, dup := seen[ix.Shard]; dup {
			return nil, fmt.Errorf("shard %s given twice: %s and %s", ix.Shard, prev, dir)
		}
		seen[ix.Shard] = dir
		read = append(read, ix)
		for _, e := range ix.Binaries {
			if err := checkEntryPaths(e); err != nil {
				return nil, fmt.Errorf("%s: %w", dir, err)
			}
		}
		all = append(all, ix.Binaries...)
	}
	if len(seen) != n {
		return nil, fmt.Errorf("%d of %d shards given", len(seen), n)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Path < all[j].Path })
	for i := 1; i < len(all); i++ {
		if all[i].Path == all[i-1].Path {
			return nil, fmt.Errorf("path %s is in two shards", all[i].Path)
		}
	}
	if err := prepareOut(out); err != nil {
		return nil, err
	}
	for k, dir := range shards {
		for _, e := range read[k].Binaries {
			if e.Package == "" {
				continue
			}
			if err := copyChecked(filepath.Join(dir, filepath.FromSlash(e.Package)), filepath.Join(out, filepath.FromSlash(e.Package)), e.PackageSH); err != nil {
				return nil, err
			}
		}
	}
	ix := &Index{Schema: Schema, Tool: tool, Sequence: seq, Binaries: all, Summary: summarize(all)}
	if err := WriteIndex(out, ix, key); err != nil {
		return nil, err
	}
	return ix, nil
}

// checkEntryPaths refuses an index entry whose paths could reach outside
// the trees or the output directory (an index is input to Merge).
func checkEntryPaths(e Entry) error {
	if e.Path == "" || path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || e.Path == ".." || strings.HasPrefix(e.Path, "../") || strings.Contains(e.Path, "\\") {
		return fmt.Errorf("index entry with path %q", e.Path)
	}
	if e.Package != "" && e.Package != path.Join("packages", e.Path+".hpkg") {
		return fmt.Errorf("index entry %s names package %q, not packages/%s.hpkg", e.Path, e.Package, e.Path)
	}
	return nil
}

// copyChecked copies a package whose SHA-256 the index gives.
func copyChecked(from, to, sha string) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, pkgformat.MaxBlobSize))
	if err != nil {
		return err
	}
	if d := sha256.Sum256(b); hex.EncodeToString(d[:]) != sha {
		return &pkgformat.VerifyError{Class: pkgformat.FailTampered, Msg: fmt.Sprintf("%s does not match the SHA-256 its index gives", from)}
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return writeAtomic(to, b)
}
