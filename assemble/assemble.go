// Package assemble turns a diff report into a patch package: the code and
// data the classification's plan says the patch carries, their fixups and
// x64 unwind entries, the trampoline sites with their original bytes, the
// report itself, and the forward and reverse file deltas.
package assemble

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
	"github.com/hpbuild/hpbuild/pkgformat"
	"github.com/hpbuild/hpbuild/signing"
)

// Options are the package's sequence numbers and the tool version it
// records.
type Options struct {
	Sequence    uint64 // this package's sequence number (1 for the first)
	MinSequence uint64 // the lowest installed sequence it may replace (cumulative patches)
	Tool        string // "hpbuild <version>"
}

// RebootRequiredError is returned when the report says the update cannot
// be hot-patched; Reasons are the blocking rules' messages.
type RebootRequiredError struct{ Reasons []string }

func (e *RebootRequiredError) Error() string {
	return fmt.Sprintf("the update is reboot-required (%d blocking rule(s)); no package was written", len(e.Reasons))
}

// ErrIdentical is returned when the images do not differ.
var ErrIdentical = errors.New("the images are identical: there is nothing to patch")

// Build makes an unsigned package bringing oldF to newF, as r (the
// report of diff.Compare(oldF, newF)) describes. Sign it before writing.
func Build(oldF, newF *pe.File, r *diff.Report, opts Options) (*pkgformat.Package, error) {
	switch r.Verdict {
	case diff.VerdictIdentical:
		return nil, ErrIdentical
	case diff.VerdictRebootRequired:
		return nil, &RebootRequiredError{Reasons: r.BlockingRules()}
	}
	plan := r.Plan()
	if plan == nil {
		return nil, ErrIdentical
	}
	// A policy may have set blocking rules to warn; what they stood for
	// still cannot be placed in a running process.
	var cannot []string
	for _, f := range plan.Functions {
		if f.Old != nil && f.Site == nil && f.SiteNote == "" {
			cannot = append(cannot, fmt.Sprintf("%s: no jump can be written at its old entry %#x (see its rules)", f.Name, f.Old.RVA))
		}
		for _, x := range f.Fixups {
			if x.Target == diff.TargetUnresolved {
				cannot = append(cannot, fmt.Sprintf("%s: the reference at +%#x to %s has no place in the running image", f.Name, x.Off, x.Name))
			}
		}
	}
	for _, d := range plan.Data {
		for _, x := range d.Fixups {
			if x.Target == diff.TargetUnresolved {
				cannot = append(cannot, fmt.Sprintf("%s: the pointer at +%#x to %s has no place in the running image", d.Name, x.Off, x.Name))
			}
		}
	}
	if len(cannot) > 0 {
		return nil, &RebootRequiredError{Reasons: cannot}
	}
	b := &builder{oldF: oldF, newF: newF}
	m := pkgformat.Manifest{
		Format:      pkgformat.Format,
		Tool:        opts.Tool,
		Sequence:    opts.Sequence,
		MinSequence: opts.MinSequence,
		Base: pkgformat.Base{
			Name: filepath.Base(oldF.Path), Machine: machineName(oldF), TimeDateStamp: oldF.TimeDateStamp,
			CheckSum: oldF.CheckSum, SizeOfImage: oldF.SizeOfImage, Size: uint64(oldF.Size), SHA256: pkgformat.HexDigest(oldF.SHA256),
		},
		Target:    pkgformat.Target{Name: filepath.Base(newF.Path), Size: uint64(newF.Size), SHA256: pkgformat.HexDigest(newF.SHA256)},
		Functions: []pkgformat.Function{},
		Data:      []pkgformat.Data{},
		Imports:   append([]string{}, plan.Imports...),
	}
	report, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding the report: %w", err)
	}
	if m.Report, err = b.blob(report, pkgformat.DeltaNone); err != nil {
		return nil, err
	}
	// The two deltas are independent: make them on both cores.
	var fwd, rev delta
	done := make(chan struct{})
	go func() {
		defer close(done)
		rev.stored, rev.size, rev.err = pkgformat.EncodeDelta(newF.Data(), oldF.Data())
	}()
	fwd.stored, fwd.size, fwd.err = pkgformat.EncodeDelta(oldF.Data(), newF.Data())
	<-done
	if err := errors.Join(fwd.err, rev.err); err != nil {
		return nil, fmt.Errorf("making the file deltas: %w", err)
	}
	m.Forward = b.add(fwd.stored, fwd.size, pkgformat.DeltaFromBase)
	m.Reverse = b.add(rev.stored, rev.size, pkgformat.DeltaFromTarget)
	for i := range plan.Functions {
		f, err := b.function(&plan.Functions[i])
		if err != nil {
			return nil, err
		}
		m.Functions = append(m.Functions, f)
	}
	for i := range plan.Data {
		d, err := b.data(&plan.Data[i])
		if err != nil {
			return nil, err
		}
		m.Data = append(m.Data, d)
	}
	m.Blobs = b.blobs
	return pkgformat.New(m, b.stored)
}

// BuildSigned builds and signs with every key given.
func BuildSigned(oldF, newF *pe.File, r *diff.Report, opts Options, keys ...*signing.PrivateKey) (*pkgformat.Package, error) {
	p, err := Build(oldF, newF, r, opts)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		p.Sign(k)
	}
	return p, nil
}

func machineName(f *pe.File) string {
	if f.Is64 {
		return "amd64"
	}
	return "i386"
}

type builder struct {
	oldF, newF *pe.File
	blobs      []pkgformat.Blob
	stored     [][]byte
	unwindEnds []uint32 // sorted UNWIND_INFO RVAs of the new image
}

// blob compresses data and adds it; it returns the blob's index.
func (b *builder) blob(data []byte, delta string) (int, error) {
	c, err := pkgformat.Compress(data)
	if err != nil {
		return 0, fmt.Errorf("compressing: %w", err)
	}
	return b.add(c, uint64(len(data)), delta), nil
}

// delta is a stored file delta.
type delta struct {
	stored []byte
	size   uint64
	err    error
}

// add adds stored bytes that expand to size bytes as a blob.
func (b *builder) add(stored []byte, size uint64, delta string) int {
	sum := sha256.Sum256(stored)
	b.blobs = append(b.blobs, pkgformat.Blob{Size: size, Stored: uint64(len(stored)), SHA256: pkgformat.HexDigest(sum), Delta: delta})
	b.stored = append(b.stored, stored)
	return len(b.blobs) - 1
}

func (b *builder) function(pf *diff.PlanFunction) (pkgformat.Function, error) {
	f := pkgformat.Function{Name: pf.Name, NewRVA: pf.New.RVA, Fixups: fixups(pf.Fixups), Tables: []pkgformat.Table{}, Unwind: []pkgformat.Unwind{}, Parts: []pkgformat.Part{}}
	if pf.Old != nil {
		old := b.oldF.MaskRelocs(pf.Old, b.oldF.AppendCode(nil, pf.Old))
		sum := sha256.Sum256(old)
		f.OldRVA, f.OldSize, f.OldSHA256 = pf.Old.RVA, uint32(len(old)), pkgformat.HexDigest(sum)
	}
	if s := pf.Site; s != nil {
		f.Site = &pkgformat.Site{RVA: s.RVA, Method: s.Method, Original: s.Original, Cover: s.Cover, Relocs: append([]int{}, s.Relocs...)}
	}
	var off uint32
	for _, p := range pf.New.Parts() {
		f.Parts = append(f.Parts, pkgformat.Part{RVA: p.RVA, Size: p.Size})
		// x64: the unwind entries of this part, as code-space offsets.
		for _, u := range b.newF.Unwind {
			if u.BeginAddress >= p.RVA && u.BeginAddress < p.RVA+p.Size {
				info, err := b.blob(b.unwindInfo(u.UnwindData), pkgformat.DeltaNone)
				if err != nil {
					return f, err
				}
				f.Unwind = append(f.Unwind, pkgformat.Unwind{Begin: off + u.BeginAddress - p.RVA, End: off + min(u.EndAddress, p.RVA+p.Size) - p.RVA, Info: info, RVA: u.UnwindData})
			}
		}
		off += p.Size
	}
	var err error
	if f.Code, err = b.blob(b.newF.AppendCode(nil, pf.New), pkgformat.DeltaNone); err != nil {
		return f, err
	}
	for _, t := range pf.Tables {
		f.Tables = append(f.Tables, pkgformat.Table{NewRVA: t.NewRVA, InCode: t.InCode, Kind: tableKind(t.Kind), Entry: t.Entry, Targets: append([]uint32{}, t.Targets...)})
	}
	return f, nil
}

// unwindInfo returns the UNWIND_INFO at rva with the handler data that
// follows it: up to the next UNWIND_INFO of the image, at most 4 KiB.
func (b *builder) unwindInfo(rva uint32) []byte {
	if b.unwindEnds == nil {
		for _, u := range b.newF.Unwind {
			b.unwindEnds = append(b.unwindEnds, u.UnwindData)
		}
		slices.Sort(b.unwindEnds)
		b.unwindEnds = slices.Compact(b.unwindEnds)
	}
	n := uint32(4096)
	i, _ := slices.BinarySearch(b.unwindEnds, rva+1)
	if i < len(b.unwindEnds) && b.unwindEnds[i]-rva < n {
		n = b.unwindEnds[i] - rva
	}
	if s := b.newF.Section(rva); s != nil && s.End()-rva < n {
		n = s.End() - rva
	}
	return append([]byte{}, b.newF.Bytes(rva, int(n))...)
}

func (b *builder) data(pd *diff.PlanData) (pkgformat.Data, error) {
	d := pkgformat.Data{Name: pd.Name, NewRVA: pd.NewRVA, Size: pd.Size, ReadOnly: pd.ReadOnly, Init: -1, Fixups: fixups(pd.Fixups)}
	if pd.Init != nil {
		var err error
		if d.Init, err = b.blob(pd.Init, pkgformat.DeltaNone); err != nil {
			return d, err
		}
	}
	return d, nil
}

func fixups(in []diff.Fixup) []pkgformat.Fixup {
	out := make([]pkgformat.Fixup, 0, len(in))
	for _, x := range in {
		fx := pkgformat.Fixup{Off: x.Off, Width: x.Width, Kind: x.Kind.String(), Target: string(x.Target), RVA: x.RVA, Ref: x.Func, Sub: x.Sub}
		if x.Target == diff.TargetImport {
			fx.Import = x.Name
		}
		out = append(out, fx)
	}
	slices.SortFunc(out, func(a, b pkgformat.Fixup) int { return int(a.Off) - int(b.Off) })
	return slices.CompactFunc(out, func(a, b pkgformat.Fixup) bool { return a.Off == b.Off })
}

func tableKind(k pe.JumpTableKind) string {
	switch k {
	case pe.JumpTableAbsolute:
		return "absolute"
	case pe.JumpTableRVA:
		return "rva"
	}
	return "relative"
}
