// Package pkgformat reads and writes hpbuild patch packages
// (docs/format.md): a magic and version, a canonical JSON manifest that
// binds the package to its base and target images and lists every blob's
// digest and size, the zstd-compressed blobs, and a block of ed25519
// signatures over the header and manifest.
//
// The reader is strict: it refuses unknown versions, a manifest that is
// not in canonical form or has unknown fields, blobs that are not
// referenced exactly once, unsorted or duplicate entries, and trailing
// bytes. It does not decompress anything while reading; Package.Blob
// checks a blob's digest first and caps its decompressed size by the
// manifest, so a package's signature can be checked before any of its
// content is expanded.
package pkgformat

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/hpbuild/hpbuild/signing"
)

// Magic starts every package: "HPBPKG", a NUL and the format version.
const Magic = "HPBPKG\x00\x01"

// Format names the manifest schema.
const Format = "hpbuild.package/v1"

// Limits readers enforce (writers never exceed them).
const (
	MaxManifest   = 16 << 20 // manifest bytes
	MaxSignatures = 16
	MaxBlobSize   = 1 << 30 // decompressed bytes of one blob
	MaxBlobs      = 1 << 20
)

// What a blob's content is relative to: the file deltas are delta
// payloads (MakeDelta) from one image to the other.
const (
	DeltaNone       = ""       // plain content
	DeltaFromBase   = "base"   // a delta payload that turns the base file into the target
	DeltaFromTarget = "target" // a delta payload that turns the target file into the base
)

// Manifest is the signed description of a package. Its JSON form, with
// fields in this order, no insignificant whitespace and no HTML escaping,
// is the canonical encoding.
type Manifest struct {
	Format      string     `json:"format"`
	Tool        string     `json:"tool"`
	Sequence    uint64     `json:"sequence"`
	MinSequence uint64     `json:"min_sequence"`
	Base        Base       `json:"base"`
	Target      Target     `json:"target"`
	Functions   []Function `json:"functions"`
	Data        []Data     `json:"data"`
	Imports     []string   `json:"imports"`
	Report      int        `json:"report"`  // blob: the diff report (hpbuild.diff/v1 JSON)
	Forward     int        `json:"forward"` // blob: delta payload from the base file to the target file
	Reverse     int        `json:"reverse"` // blob: delta payload from the target file to the base file
	Blobs       []Blob     `json:"blobs"`
}

// Base identifies the image the package applies to.
type Base struct {
	Name          string `json:"name"` // file name, for people
	Machine       string `json:"machine"`
	TimeDateStamp uint32 `json:"timestamp"`
	CheckSum      uint32 `json:"checksum"`
	SizeOfImage   uint32 `json:"size_of_image"`
	Size          uint64 `json:"size"`
	SHA256        string `json:"sha256"`
}

// Target identifies the image the package brings the base to.
type Target struct {
	Name   string `json:"name"`
	Size   uint64 `json:"size"`
	SHA256 string `json:"sha256"`
}

// Function is one function the package carries.
type Function struct {
	Name      string   `json:"name"`
	NewRVA    uint32   `json:"new_rva"`    // in the target image
	OldRVA    uint32   `json:"old_rva"`    // 0 for a new function
	OldSize   uint32   `json:"old_size"`   // bytes of the old body (main extent and parts)
	OldSHA256 string   `json:"old_sha256"` // of the old body, "" for a new function
	Site      *Site    `json:"site"`       // null when no jump is written
	Code      int      `json:"code"`       // blob: the new code (main extent, then parts)
	Parts     []Part   `json:"parts"`      // the code's extents in the target image
	Fixups    []Fixup  `json:"fixups"`     // sorted by offset
	Tables    []Table  `json:"tables"`
	Unwind    []Unwind `json:"unwind"` // x64: unwind entries of the new code
}

// Part is one extent of a function's code in the target image.
type Part struct {
	RVA  uint32 `json:"rva"`
	Size uint32 `json:"size"`
}

// Site is where the old entry takes its jump, with the bytes rollback
// restores.
type Site struct {
	RVA      uint32 `json:"rva"`
	Method   string `json:"method"`   // "hotpatch-pad" or "jmp-rel32"
	Original string `json:"original"` // hex, as the file holds them
	Cover    uint32 `json:"cover"`
	Relocs   []int  `json:"relocs"` // offsets in original of base-relocated fields (may start before it)
}

// Fixup is a field of carried code or data rewritten when the patch is
// placed.
type Fixup struct {
	Off    uint32 `json:"off"`
	Width  uint8  `json:"width"`
	Kind   string `json:"kind"`   // rel8 rel32 call32 rip32 abs32 abs64 imagebase32
	Target string `json:"target"` // old, patch-code, patch-data, import, jump-table
	RVA    uint32 `json:"rva"`    // old: old-image RVA; import: old IAT slot or 0
	Ref    uint32 `json:"ref"`    // patch-code, patch-data: target-image RVA of the carried object
	Sub    uint32 `json:"sub"`    // offset inside it; jump-table: table index
	Import string `json:"import"` // import: "dll!name"
}

// Table is a jump table of a carried function, rebuilt for the new code.
type Table struct {
	NewRVA  uint32   `json:"new_rva"`
	InCode  bool     `json:"in_code"`
	Kind    string   `json:"kind"` // absolute, rva, relative
	Entry   uint8    `json:"entry"`
	Targets []uint32 `json:"targets"` // code-space offsets
}

// Unwind is one x64 RUNTIME_FUNCTION of the new code, with its UNWIND_INFO.
type Unwind struct {
	Begin uint32 `json:"begin"` // code-space offsets
	End   uint32 `json:"end"`
	Info  int    `json:"info"` // blob: the UNWIND_INFO bytes as in the target image
	RVA   uint32 `json:"rva"`  // where the target image has the UNWIND_INFO
}

// Data is a data object the package carries.
type Data struct {
	Name     string  `json:"name"`
	NewRVA   uint32  `json:"new_rva"`
	Size     uint32  `json:"size"`
	ReadOnly bool    `json:"read_only"`
	Init     int     `json:"init"` // blob, or -1 for zero-initialised
	Fixups   []Fixup `json:"fixups"`
}

// Blob describes one stored blob.
type Blob struct {
	Size   uint64 `json:"size"`   // decompressed bytes
	Stored uint64 `json:"stored"` // bytes in the package
	SHA256 string `json:"sha256"` // of the stored bytes
	Delta  string `json:"delta"`  // "", "base" or "target": what a delta payload applies to
}

// Signature is one ed25519 signature over the package digest.
type Signature struct {
	KeyID signing.KeyID
	Sig   [64]byte
}

// Package is a parsed package.
type Package struct {
	Manifest Manifest
	Stored   [][]byte // stored bytes of each blob, by index
	Sigs     []Signature

	manifest []byte // canonical manifest bytes
}

// FormatError says why bytes are not a valid package.
type FormatError struct{ Msg string }

func (e *FormatError) Error() string { return "malformed package: " + e.Msg }

// VersionError says that the package is of a format this reader does not
// know.
type VersionError struct{ Got string }

func (e *VersionError) Error() string {
	return fmt.Sprintf("unsupported package version %s (this hpbuild reads %s)", e.Got, Format)
}

func formatErr(format string, a ...any) error { return &FormatError{Msg: fmt.Sprintf(format, a...)} }

// canonical encodes a manifest canonically.
func canonical(m *Manifest) ([]byte, error) { return CanonicalJSON(m) }

// CanonicalJSON encodes v as manifests are encoded: encoding/json with
// HTML escaping off and no trailing newline.
func CanonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// New makes a package from a manifest (whose Blobs the caller filled from
// stored) without signatures; Sign adds them.
func New(m Manifest, stored [][]byte) (*Package, error) {
	p := &Package{Manifest: m, Stored: stored}
	mb, err := canonical(&p.Manifest)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	p.manifest = mb
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("building package: %w", err)
	}
	return p, nil
}

// Digest is the SHA-256 of the signed part: magic, manifest length and
// manifest.
func (p *Package) Digest() [32]byte { return digest(p.manifest) }

func digest(manifest []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(Magic))
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(manifest)))
	h.Write(n[:])
	h.Write(manifest)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Sign adds k's signature (replacing an earlier one by the same key).
func (p *Package) Sign(k *signing.PrivateKey) {
	var s Signature
	s.KeyID = k.ID
	copy(s.Sig[:], signing.Sign(k, p.Digest()))
	p.Sigs = slices.DeleteFunc(p.Sigs, func(x Signature) bool { return x.KeyID == k.ID })
	p.Sigs = append(p.Sigs, s)
	sort.Slice(p.Sigs, func(i, j int) bool { return bytes.Compare(p.Sigs[i].KeyID[:], p.Sigs[j].KeyID[:]) < 0 })
}

// Marshal returns the package's canonical bytes.
func (p *Package) Marshal() ([]byte, error) {
	if len(p.Sigs) == 0 {
		return nil, errors.New("package has no signature")
	}
	if len(p.Sigs) > MaxSignatures {
		return nil, fmt.Errorf("package has %d signatures, at most %d allowed", len(p.Sigs), MaxSignatures)
	}
	var b bytes.Buffer
	b.WriteString(Magic)
	binary.Write(&b, binary.LittleEndian, uint32(len(p.manifest)))
	b.Write(p.manifest)
	binary.Write(&b, binary.LittleEndian, uint16(len(p.Sigs)))
	for _, s := range p.Sigs {
		b.Write(s.KeyID[:])
		b.Write(s.Sig[:])
	}
	for _, s := range p.Stored {
		b.Write(s)
	}
	return b.Bytes(), nil
}

// SignatureSize is the size of one signature entry: key id and ed25519
// signature.
const SignatureSize = signing.KeyIDSize + 64

const sigLen = SignatureSize

// frame is a package split into its parts, nothing decoded yet.
type frame struct {
	manifest []byte
	sigs     []Signature
	blobs    []byte // everything after the signature block
}

// split cuts a package into magic, manifest, signature block and blobs,
// checking only their lengths.
func split(b []byte) (*frame, error) {
	if len(b) < len(Magic) || string(b[:6]) != Magic[:6] || b[6] != 0 {
		return nil, formatErr("not an hpbuild package (no %q magic)", "HPBPKG")
	}
	if b[7] != Magic[7] {
		return nil, &VersionError{Got: fmt.Sprintf("%d", b[7])}
	}
	rest := b[len(Magic):]
	if len(rest) < 4 {
		return nil, formatErr("truncated before the manifest length")
	}
	n := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	if n == 0 || n > MaxManifest {
		return nil, formatErr("manifest length %d out of range (1..%d)", n, MaxManifest)
	}
	if uint64(len(rest)) < uint64(n) {
		return nil, formatErr("truncated manifest (%d of %d bytes)", len(rest), n)
	}
	f := &frame{manifest: rest[:n]}
	rest = rest[n:]
	if len(rest) < 2 {
		return nil, formatErr("truncated before the signature count")
	}
	ns := int(binary.LittleEndian.Uint16(rest))
	rest = rest[2:]
	if ns == 0 || ns > MaxSignatures {
		return nil, formatErr("signature count %d out of range (1..%d)", ns, MaxSignatures)
	}
	if len(rest) < ns*sigLen {
		return nil, formatErr("truncated signature block (%d of %d bytes)", len(rest), ns*sigLen)
	}
	for i := 0; i < ns; i++ {
		var s Signature
		copy(s.KeyID[:], rest[:signing.KeyIDSize])
		copy(s.Sig[:], rest[signing.KeyIDSize:sigLen])
		if i > 0 && bytes.Compare(f.sigs[i-1].KeyID[:], s.KeyID[:]) >= 0 {
			return nil, formatErr("signatures are not sorted by key id without duplicates")
		}
		f.sigs = append(f.sigs, s)
		rest = rest[sigLen:]
	}
	f.blobs = rest
	return f, nil
}

// Read parses a package strictly. It checks structure only: signatures
// are checked by Verify, blob digests by Blob and VerifyBlobs. Use
// ReadVerified for untrusted input: it checks the signatures before it
// decodes the manifest.
func Read(b []byte) (*Package, error) {
	f, err := split(b)
	if err != nil {
		return nil, err
	}
	return f.decode()
}

// ReadVerified parses a package after checking its signatures against the
// trusted keys (see Package.Verify): nothing a signature does not cover,
// not even the manifest's JSON, is decoded before that.
func ReadVerified(b []byte, keys []*signing.PublicKey, threshold int) (*Package, error) {
	f, err := split(b)
	if err != nil {
		return nil, err
	}
	if err := verifySigs(digest(f.manifest), f.sigs, keys, threshold); err != nil {
		return nil, err
	}
	return f.decode()
}

// decode parses the manifest and the blobs of a split package.
func (f *frame) decode() (*Package, error) {
	mb := f.manifest
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(mb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		// The format field may name another version: say so if it does.
		var probe struct {
			Format string `json:"format"`
		}
		if json.Unmarshal(mb, &probe) == nil && probe.Format != "" && probe.Format != Format {
			return nil, &VersionError{Got: probe.Format}
		}
		return nil, formatErr("manifest: %v", err)
	}
	if dec.More() {
		return nil, formatErr("manifest: data after the JSON object")
	}
	if m.Format != Format {
		return nil, &VersionError{Got: m.Format}
	}
	p := &Package{Manifest: m, manifest: slices.Clone(mb), Sigs: f.sigs}
	if cb, err := canonical(&p.Manifest); err != nil || !bytes.Equal(cb, mb) {
		return nil, formatErr("manifest is not in canonical form")
	}
	if len(m.Blobs) > MaxBlobs {
		return nil, formatErr("%d blobs, at most %d allowed", len(m.Blobs), MaxBlobs)
	}
	rest := f.blobs
	for i, bl := range m.Blobs {
		if bl.Stored > uint64(len(rest)) {
			return nil, formatErr("blob %d: truncated (%d of %d bytes)", i, len(rest), bl.Stored)
		}
		p.Stored = append(p.Stored, slices.Clone(rest[:bl.Stored]))
		rest = rest[bl.Stored:]
	}
	if len(rest) != 0 {
		return nil, formatErr("%d trailing bytes after the blobs", len(rest))
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// check validates the manifest's internal consistency.
func (p *Package) check() error {
	m := &p.Manifest
	if len(p.Stored) != len(m.Blobs) {
		return formatErr("%d blobs stored, %d described", len(p.Stored), len(m.Blobs))
	}
	used := make([]int, len(m.Blobs))
	ref := func(what string, i int, optional bool) error {
		if optional && i == -1 {
			return nil
		}
		if i < 0 || i >= len(m.Blobs) {
			return formatErr("%s: blob %d does not exist", what, i)
		}
		used[i]++
		return nil
	}
	for i, bl := range m.Blobs {
		if bl.Stored != uint64(len(p.Stored[i])) {
			return formatErr("blob %d: %d bytes stored, manifest says %d", i, len(p.Stored[i]), bl.Stored)
		}
		if bl.Size > MaxBlobSize {
			return formatErr("blob %d: size %d over the limit %d", i, bl.Size, MaxBlobSize)
		}
		if !isHex(bl.SHA256, 32) {
			return formatErr("blob %d: sha256 is not 64 lowercase hex digits", i)
		}
		if bl.Delta != DeltaNone && bl.Delta != DeltaFromBase && bl.Delta != DeltaFromTarget {
			return formatErr("blob %d: unknown delta source %q", i, bl.Delta)
		}
	}
	if !isHex(m.Base.SHA256, 32) || !isHex(m.Target.SHA256, 32) {
		return formatErr("base and target sha256 must be 64 lowercase hex digits")
	}
	if m.MinSequence > m.Sequence {
		return formatErr("min_sequence %d is above sequence %d", m.MinSequence, m.Sequence)
	}
	for _, x := range []struct {
		what  string
		i     int
		delta string
	}{{"report", m.Report, DeltaNone}, {"forward delta", m.Forward, DeltaFromBase}, {"reverse delta", m.Reverse, DeltaFromTarget}} {
		if err := ref(x.what, x.i, false); err != nil {
			return err
		}
		if m.Blobs[x.i].Delta != x.delta {
			return formatErr("%s: blob %d is marked delta %q, want %q", x.what, x.i, m.Blobs[x.i].Delta, x.delta)
		}
	}
	for k, f := range m.Functions {
		if k > 0 && m.Functions[k-1].NewRVA >= f.NewRVA {
			return formatErr("functions are not sorted by new_rva without duplicates (at %s)", f.Name)
		}
		if err := ref("function "+f.Name+" code", f.Code, false); err != nil {
			return err
		}
		for _, u := range f.Unwind {
			if err := ref("function "+f.Name+" unwind", u.Info, false); err != nil {
				return err
			}
		}
		if f.Site != nil {
			want, ok := siteLen[f.Site.Method]
			if !ok {
				return formatErr("function %s: unknown site method %q", f.Name, f.Site.Method)
			}
			if !isHex(f.Site.Original, want) {
				return formatErr("function %s: site bytes are not %d bytes of hex", f.Name, want)
			}
			if f.Site.Relocs == nil || !slices.IsSorted(f.Site.Relocs) {
				return formatErr("function %s: site relocs missing or unsorted", f.Name)
			}
			for _, r := range f.Site.Relocs {
				if r <= -8 || r >= want {
					return formatErr("function %s: site reloc at %d does not overlap the site", f.Name, r)
				}
			}
		}
		if !sortedFixups(f.Fixups) {
			return formatErr("function %s: fixups are not sorted by offset without duplicates", f.Name)
		}
		size := m.Blobs[f.Code].Size
		var parts uint64
		for _, pt := range f.Parts {
			parts += uint64(pt.Size)
		}
		if parts != size || m.Blobs[f.Code].Delta != DeltaNone {
			return formatErr("function %s: its parts hold %d bytes, its code blob %d", f.Name, parts, size)
		}
		if err := checkFixups("function "+f.Name, f.Fixups, size); err != nil {
			return err
		}
		for _, u := range f.Unwind {
			if u.Begin >= u.End || uint64(u.End) > size || m.Blobs[u.Info].Delta != DeltaNone {
				return formatErr("function %s: unwind entry %d..%d outside its %d bytes of code", f.Name, u.Begin, u.End, size)
			}
		}
	}
	for k, d := range m.Data {
		if k > 0 && m.Data[k-1].NewRVA >= d.NewRVA {
			return formatErr("data objects are not sorted by new_rva without duplicates (at %s)", d.Name)
		}
		if err := ref("data "+d.Name, d.Init, true); err != nil {
			return err
		}
		if d.Init >= 0 && (m.Blobs[d.Init].Size != uint64(d.Size) || m.Blobs[d.Init].Delta != DeltaNone) {
			return formatErr("data %s: %d bytes, its initial value %d", d.Name, d.Size, m.Blobs[d.Init].Size)
		}
		if !sortedFixups(d.Fixups) {
			return formatErr("data %s: fixups are not sorted by offset without duplicates", d.Name)
		}
		if err := checkFixups("data "+d.Name, d.Fixups, uint64(d.Size)); err != nil {
			return err
		}
	}
	if !slices.IsSorted(m.Imports) || len(slices.Compact(slices.Clone(m.Imports))) != len(m.Imports) {
		return formatErr("imports are not sorted without duplicates")
	}
	for i, u := range used {
		if u != 1 {
			return formatErr("blob %d is referenced %d times, must be exactly once", i, u)
		}
	}
	return nil
}

// siteLen is the number of original bytes each method overwrites.
var siteLen = map[string]int{"hotpatch-pad": 7, "jmp-rel32": 5}

var (
	fixupKinds   = map[string]uint8{"rel8": 1, "rel32": 4, "call32": 4, "rip32": 4, "abs32": 4, "abs64": 8, "imagebase32": 4}
	fixupTargets = map[string]bool{"old": true, "patch-code": true, "patch-data": true, "import": true, "jump-table": true}
)

// checkFixups checks kinds, targets and that every field lies inside the
// size bytes it patches.
func checkFixups(what string, fs []Fixup, size uint64) error {
	for _, x := range fs {
		w, ok := fixupKinds[x.Kind]
		if !ok || w != x.Width || !fixupTargets[x.Target] {
			return formatErr("%s: fixup at %d has kind %q width %d target %q", what, x.Off, x.Kind, x.Width, x.Target)
		}
		if uint64(x.Off)+uint64(x.Width) > size {
			return formatErr("%s: fixup at %d runs past its %d bytes", what, x.Off, size)
		}
		if (x.Target == "import") != (x.Import != "") {
			return formatErr("%s: fixup at %d: an import name goes with target import only", what, x.Off)
		}
	}
	return nil
}

func sortedFixups(fs []Fixup) bool {
	for i := 1; i < len(fs); i++ {
		if fs[i-1].Off >= fs[i].Off {
			return false
		}
	}
	return true
}

func isHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// HexDigest renders a SHA-256 the way manifests do.
func HexDigest(d [32]byte) string { return hex.EncodeToString(d[:]) }
