package diff

import (
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/pe"
)

// Trampoline methods (DESIGN "Trampolines").
const (
	// MethodHotpatchPad writes "E9 rel32" into the 5 bytes of padding
	// before the entry, then "EB F9" (jmp -7) over the 2-byte first
	// instruction: the write at the entry is a single atomic 2-byte store.
	MethodHotpatchPad = "hotpatch-pad"
	// MethodJmpRel32 writes "E9 rel32" over the first 5 bytes of the
	// function, which whole instructions cover.
	MethodJmpRel32 = "jmp-rel32"
)

// Site is where a changed function's entry in the OLD image takes the jump
// to its new code: what the applier writes over, and what rollback
// restores.
type Site struct {
	RVA      uint32 `json:"rva"`      // first byte written (entry-5 for hotpatch-pad, the entry for jmp-rel32)
	Method   string `json:"method"`   // MethodHotpatchPad or MethodJmpRel32
	Original string `json:"original"` // hex of the bytes written over, from RVA on
	// Cover is the length of the whole instructions at the entry that the
	// jump overwrites (2 for hotpatch-pad): a thread stopped inside them
	// must be moved out before the write (the applier checks).
	Cover uint32 `json:"cover"`
	// Relocs are the offsets in Original of base-relocated fields (x86
	// "push offset" in a prologue, say): in a process where the image was
	// rebased they hold other values, which the applier computes before
	// comparing and restoring.
	Relocs []int `json:"relocs,omitempty"`
}

// siteRelocs returns the offsets of relocated fields that overlap n bytes
// at rva.
func siteRelocs(f *pe.File, rva uint32, n int) []int {
	var out []int
	for _, r := range f.RelocsOverlapping(rva, uint32(n)) {
		out = append(out, int(int64(r.RVA)-int64(rva)))
	}
	return out
}

// OriginalBytes returns the bytes the site overwrites.
func (s *Site) OriginalBytes() []byte {
	b, _ := hex.DecodeString(s.Original)
	return b
}

// branchTargets returns, sorted and without duplicates, every old-image
// address that control may reach other than by falling through: targets of
// branches and calls, code addresses taken by instructions or stored in
// data (relocated pointers), jump-table entries, exports, TLS callbacks,
// the entry point and the starts of unwind fragments.
func (c *comparer) branchTargets() []uint32 {
	if c.targets != nil {
		return c.targets
	}
	f := c.old.f
	n := len(f.Relocs) + len(f.Exports) + len(f.Unwind) + 1
	if f.TLS != nil {
		n += len(f.TLS.Callbacks)
	}
	for i := range c.old.fns {
		fn := &c.old.fns[i]
		n += len(fn.Refs)
		for _, jt := range fn.JumpTables() {
			n += len(jt.Targets)
		}
	}
	ts := make([]uint32, 0, n)
	for i := range c.old.fns {
		fn := &c.old.fns[i]
		for _, r := range fn.Refs {
			if r.Kind == pe.RefBranch8 || r.Kind == pe.RefBranch32 || r.Kind == pe.RefCall || f.IsCode(r.Target) {
				ts = append(ts, r.Target)
			}
		}
		for _, jt := range fn.JumpTables() {
			ts = append(ts, jt.Targets...)
		}
	}
	for _, r := range f.Relocs {
		if t := pointerTarget(f, r.RVA, r.Width()); t != 0 && f.IsCode(t) {
			ts = append(ts, t)
		}
	}
	for _, e := range f.Exports {
		ts = append(ts, e.RVA)
	}
	if f.TLS != nil {
		ts = append(ts, f.TLS.Callbacks...)
	}
	ts = append(ts, f.EntryPoint)
	for _, u := range f.Unwind {
		ts = append(ts, u.BeginAddress)
	}
	slices.Sort(ts)
	// Kept for the whole classification: exactly sized.
	c.targets = slices.Clone(slices.Compact(ts))
	return c.targets
}

// targetIn returns a branch target in [lo, hi), if there is one.
func (c *comparer) targetIn(lo, hi uint32) (uint32, bool) {
	ts := c.branchTargets()
	i, _ := slices.BinarySearch(ts, lo)
	if i < len(ts) && ts[i] < hi {
		return ts[i], true
	}
	return 0, false
}

// entryTarget returns the lowest branch target in [fn.RVA+lo, fn.RVA+hi)
// (lo >= 1, hi <= 8), of the function's own branches (pe keeps them as
// EntryTargets, not references) and every other one.
func (c *comparer) entryTarget(fn *pe.Function, lo, hi uint32) (uint32, bool) {
	t, ok := c.targetIn(fn.RVA+lo, fn.RVA+hi)
	for k := lo; k < hi && (!ok || fn.RVA+k < t); k++ {
		if fn.EntryTargets&(1<<k) != 0 {
			return fn.RVA + k, true
		}
	}
	return t, ok
}

// site decides how old function o's entry takes its jump. It prefers
// hotpatch-pad (one atomic 2-byte write at the entry) and falls back to
// jmp-rel32. When neither is possible it returns the rule that says why.
func (c *comparer) site(o int) (*Site, *Rule) {
	f := c.old.f
	fn := &c.old.fns[o]
	name := fn.DisplayName()
	mode := 32
	if f.Is64 {
		mode = 64
	}
	code := f.Bytes(fn.RVA, int(min(fn.Size, 32)))
	if len(code) == 0 {
		return nil, &Rule{ID: "RR-UNDECODABLE", Message: fmt.Sprintf("%s: no code bytes at its entry %#x in the old image, so no jump can be written there", name, fn.RVA)}
	}
	first, err := disasm.Decode(code, uint64(fn.RVA), mode)
	if err != nil {
		return nil, &Rule{ID: "RR-UNDECODABLE", Message: fmt.Sprintf("%s: the first instruction at %#x cannot be decoded (%v), so the bytes a jump would replace are unknown", name, fn.RVA, err)}
	}
	if first.Len == 2 {
		if s, ok := c.padSite(fn); ok {
			return s, nil
		}
	}
	// jmp-rel32: whole instructions covering at least 5 bytes.
	cover := 0
	for cover < 5 {
		if cover >= len(code) {
			break
		}
		in, err := disasm.Decode(code[cover:], uint64(fn.RVA)+uint64(cover), mode)
		if err != nil {
			return nil, &Rule{ID: "RR-UNDECODABLE", Message: fmt.Sprintf("%s: the instruction at %#x, within the first 5 bytes, cannot be decoded (%v)", name, fn.RVA+uint32(cover), err)}
		}
		cover += in.Len
	}
	if fn.Size < 5 || cover < 5 || uint32(cover) > fn.Size {
		return nil, &Rule{ID: "RR-NO-ENTRY-ROOM", Message: fmt.Sprintf("%s is %d bytes long, shorter than the 5-byte jump, and has no hot-patch padding (a 2-byte first instruction after 5 bytes of CC/90 no code reaches); build with -fpatchable-function-entry=7,5, ms_hook_prologue or MSVC /hotpatch to make it patchable", name, fn.Size)}
	}
	if t, ok := c.entryTarget(fn, 1, 5); ok {
		return nil, &Rule{ID: "RR-NO-ENTRY-ROOM", Message: fmt.Sprintf("%s: code branches to %#x, inside the first 5 bytes that the jump at its entry %#x would overwrite, and there is no hot-patch padding; a thread arriving there would execute half a jump", name, t, fn.RVA)}
	}
	return &Site{RVA: fn.RVA, Method: MethodJmpRel32, Original: hex.EncodeToString(code[:5]), Cover: uint32(cover), Relocs: siteRelocs(f, fn.RVA, 5)}, nil
}

// padSite returns a hotpatch-pad site when the 5 bytes before fn's entry
// are CC/90 padding that no function covers and nothing branches into.
func (c *comparer) padSite(fn *pe.Function) (*Site, bool) {
	f := c.old.f
	if fn.RVA < 5 || !f.IsCode(fn.RVA-5) {
		return nil, false
	}
	pad := f.Bytes(fn.RVA-5, 7)
	if len(pad) != 7 || !allPad(pad[:5]) {
		return nil, false
	}
	for a := fn.RVA - 5; a < fn.RVA; a++ {
		if t := f.Resolve(a); t.Kind == pe.TargetCode && t.Function != nil || t.Kind == pe.TargetFunction {
			return nil, false
		}
	}
	if _, ok := c.targetIn(fn.RVA-5, fn.RVA); ok {
		return nil, false
	}
	if _, ok := c.entryTarget(fn, 1, 2); ok {
		return nil, false
	}
	return &Site{RVA: fn.RVA - 5, Method: MethodHotpatchPad, Original: hex.EncodeToString(pad), Cover: 2, Relocs: siteRelocs(f, fn.RVA-5, 7)}, true
}

func allPad(b []byte) bool {
	for _, c := range b {
		if c != 0xcc && c != 0x90 {
			return false
		}
	}
	return true
}
