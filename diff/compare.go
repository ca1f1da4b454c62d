package diff

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/hpbuild/hpbuild/pe"
)

// comparer holds what comparing pairs needs: both images, the pairing and
// the data correspondence agreed by unchanged code.
type comparer struct {
	old, new *image
	p        *pairing
	dataMap  map[uint32]uint32 // old data RVA -> new data RVA
	// access is, per old data RVA, the widest access code makes to it,
	// or 0 when some code takes its address (extent unknown).
	access map[uint32]uint8
	// oldSyms and newSyms count data symbols by name.
	oldSyms, newSyms map[string]int

	unchangedOld map[int]bool      // old functions reported unchanged
	roIndex      map[uint32][]int  // read-only target -> old functions using it
	roTargets    []uint32          // keys of roIndex, sorted
	inv          map[uint32]uint32 // new data RVA -> lowest old RVA mapped to it
	targets      []uint32          // old-image branch targets (branchTargets), sorted
}

// funcDiff is the outcome of comparing one pair.
type funcDiff struct {
	changed        bool
	reason         string
	oldOff, newOff uint32 // code-space offsets where the first difference is
}

// sameLayout reports whether old function o and new function n have equal
// masked bytes and references at the same places, of the same kinds.
func (c *comparer) sameLayout(o, n int) bool {
	a, b := &c.old.fps[o], &c.new.fps[n]
	at, bt := c.old.toks(o), c.new.toks(n)
	if a.size != b.size || len(at) != len(bt) || len(a.tables()) != len(b.tables()) {
		return false
	}
	for i := range at {
		x, y := &at[i], &bt[i]
		if x.off != y.off || x.kind != y.kind || x.tk != y.tk {
			return false
		}
	}
	return c.maskedDiff(o, n) < 0
}

// maskedDiff returns the first code-space offset at which the masked code
// of old function o and new function n differ, or -1 when it is equal.
func (c *comparer) maskedDiff(o, n int) int {
	ab, bb := getBuf(), getBuf()
	defer putBuf(ab)
	defer putBuf(bb)
	*ab = c.old.masked(o, (*ab)[:0])
	*bb = c.new.masked(n, (*bb)[:0])
	return firstDiff(*ab, *bb)
}

// buildDataMap lets every pair with the same code layout vote on which new
// data object each old one corresponds to; the majority wins (ties: the
// lowest RVA).
func (c *comparer) buildDataMap() {
	votes := map[uint32]map[uint32]int{}
	c.access = map[uint32]uint8{}
	addrTaken := map[uint32]bool{}
	for o := range c.old.fps {
		for _, t := range c.old.toks(o) {
			if t.tk != tokRWData && t.tk != tokROData {
				continue
			}
			if t.access == 0 {
				addrTaken[t.target] = true
			} else if t.access > c.access[t.target] {
				c.access[t.target] = t.access
			}
		}
	}
	for t := range addrTaken {
		delete(c.access, t)
	}
	for o, n := range c.p.o2n {
		if n < 0 {
			continue
		}
		if !c.sameLayout(o, n) {
			continue
		}
		at, bt := c.old.toks(o), c.new.toks(n)
		for i := range at {
			x, y := &at[i], &bt[i]
			if x.tk != tokRWData && x.tk != tokROData {
				continue
			}
			if votes[x.target] == nil {
				votes[x.target] = map[uint32]int{}
			}
			votes[x.target][y.target]++
		}
	}
	c.dataMap = make(map[uint32]uint32, len(votes))
	for o, vs := range votes {
		best, bestN := uint32(0), -1
		for n, k := range vs {
			if k > bestN || k == bestN && n < best {
				best, bestN = n, k
			}
		}
		c.dataMap[o] = best
	}
	c.inv = make(map[uint32]uint32, len(c.dataMap))
	for o, n := range c.dataMap {
		if cur, ok := c.inv[n]; !ok || o < cur {
			c.inv[n] = o
		}
	}
}

// compare decides whether the pair (o, n) changed; o and n need not be
// paired with each other (a split of a folded body is compared too).
func (c *comparer) compare(o, n int) funcDiff {
	a, b := &c.old.fps[o], &c.new.fps[n]
	at, bt := c.old.toks(o), c.new.toks(n)
	if i := c.maskedDiff(o, n); i >= 0 {
		return funcDiff{changed: true, reason: "code differs", oldOff: uint32(i), newOff: uint32(i)}
	}
	if len(at) != len(bt) {
		i := 0
		for i < len(at) && i < len(bt) && at[i].off == bt[i].off {
			i++
		}
		off := a.size
		if i < len(at) {
			off = at[i].off
		} else if i < len(bt) {
			off = bt[i].off
		}
		return funcDiff{changed: true, reason: "references differ", oldOff: off, newOff: off}
	}
	for i := range at {
		x, y := &at[i], &bt[i]
		if x.tk == tokROData && y.tk == tokROData && c.relativeTableEqual(o, n, x.target, y.target) {
			continue
		}
		if why := c.sameTarget(x, y); why != "" {
			return funcDiff{changed: true, reason: why, oldOff: x.off, newOff: y.off}
		}
	}
	if len(a.tables()) != len(b.tables()) {
		return funcDiff{changed: true, reason: "jump tables differ"}
	}
	for i := range a.tables() {
		if !equalU32(a.tables()[i], b.tables()[i]) {
			return funcDiff{changed: true, reason: fmt.Sprintf("jump table %d has other targets", i)}
		}
	}
	return funcDiff{}
}

func firstDiff(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return n
	}
	return -1
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameTarget returns "" when two references point at corresponding
// things, else a sentence saying how they differ.
func (c *comparer) sameTarget(x, y *tok) string {
	if x.off != y.off || x.kind != y.kind || x.tk != y.tk {
		return fmt.Sprintf("reference at +%#x now points at %s, was %s", y.off, c.describe(c.new, y), c.describe(c.old, x))
	}
	switch x.tk {
	case tokSelf, tokTable:
		if x.target != y.target {
			return fmt.Sprintf("reference at +%#x goes to +%#x, was +%#x", x.off, y.target, x.target)
		}
	case tokFunc:
		if c.p.o2n[x.fn] != int(y.fn) {
			return fmt.Sprintf("reference at +%#x now goes to %s, was %s", x.off, c.describe(c.new, y), c.describe(c.old, x))
		}
	case tokCode:
		if c.p.o2n[x.fn] != int(y.fn) || x.sub != y.sub {
			return fmt.Sprintf("reference at +%#x now goes to %s, was %s", x.off, c.describe(c.new, y), c.describe(c.old, x))
		}
	case tokImport:
		if xn, yn := c.old.tokName(x), c.new.tokName(y); !strings.EqualFold(xn, yn) {
			return fmt.Sprintf("import at +%#x is %s, was %s", x.off, yn, xn)
		}
	case tokROData:
		if why := c.symbolOffsets(x, y); why != "" {
			return why
		}
		if m, ok := c.dataMap[x.target]; ok && m != y.target && !c.roEqual(x, y) {
			return fmt.Sprintf("reference at +%#x now reads %s, was %s", x.off, c.describe(c.new, y), c.describe(c.old, x))
		}
		if !c.roEqual(x, y) {
			return fmt.Sprintf("read-only data %s used at +%#x changed: %s -> %s", c.describe(c.new, y), x.off,
				preview(c.old.roContent(x.target, x.access)), preview(c.new.roContent(y.target, y.access)))
		}
	case tokRWData:
		if why := c.symbolOffsets(x, y); why != "" {
			return why
		}
		if m, ok := c.dataMap[x.target]; ok && m != y.target {
			return fmt.Sprintf("reference at +%#x now uses %s, which corresponds to old %s, not %s", x.off,
				c.describe(c.new, y), c.describe(c.old, &tok{tk: tokRWData, target: c.inv[y.target]}), c.describe(c.old, x))
		}
	case tokUnknown:
		if x.raw() != y.raw() {
			return fmt.Sprintf("address at +%#x is %#x, was %#x", x.off, y.raw(), x.raw())
		}
	}
	return ""
}

// relativeTableEqual recognises a table of 32-bit offsets relative to its
// own start that all land inside the referencing function (a jump table
// the image model did not see): two such tables are equal when their
// entries land at the same places of the paired functions.
func (c *comparer) relativeTableEqual(o, n int, ot, nt uint32) bool {
	of, nf := &c.old.fns[o], &c.new.fns[n]
	ob, nb := c.old.f.Bytes(ot, maxObject), c.new.f.Bytes(nt, maxObject)
	ocs, ncs := spaceOf(of), spaceOf(nf)
	entries := 0
	for k := 0; k+4 <= len(ob) && k+4 <= len(nb); k += 4 {
		oa, ok1 := ocs.anchor(ot + uint32(int32(readField(ob[k:], 4))))
		na, ok2 := ncs.anchor(nt + uint32(int32(readField(nb[k:], 4))))
		if !ok1 && !ok2 {
			break // end of both tables
		}
		if !ok1 || !ok2 || oa != na {
			return false
		}
		entries++
	}
	return entries >= 2
}

// symbolOffsets compares data references by symbol when both images name
// the objects: the same symbol at another offset (a field that moved) or
// another symbol is a change the correspondence vote cannot see.
func (c *comparer) symbolOffsets(x, y *tok) string {
	ot, nt := c.old.f.Resolve(x.target), c.new.f.Resolve(y.target)
	if ot.Symbol == "" || nt.Symbol == "" || c.oldSyms[ot.Symbol] != 1 || c.newSyms[nt.Symbol] != 1 {
		return ""
	}
	if ot.Symbol != nt.Symbol {
		if c.newSyms[ot.Symbol] == 1 {
			return fmt.Sprintf("reference at +%#x now uses %s, was %s", x.off, nt, ot)
		}
		return ""
	}
	if ot.Offset != nt.Offset {
		return fmt.Sprintf("reference at +%#x now uses %s, was %s (the object's layout changed)", x.off, nt, ot)
	}
	return ""
}

func symbolCounts(f *pe.File) map[string]int {
	m := map[string]int{}
	for _, s := range f.Symbols {
		if !s.Func && !f.IsCode(s.RVA) {
			m[s.Name]++
		}
	}
	return m
}

// roEqual compares two read-only objects read by references x and y:
// strings by contents, other objects byte by byte except pointers
// (base-relocated fields), which must point at corresponding things.
func (c *comparer) roEqual(x, y *tok) bool {
	ob, nb := c.old.roContent(x.target, x.access), c.new.roContent(y.target, y.access)
	if x.access == 0 && c.old.goBinary && c.new.goBinary {
		return c.pointersEqual(x.target, y.target, ob, nb)
	}
	return c.objectsEqual(x.target, y.target, ob, nb)
}

// stringsEqual compares two objects as C strings when the old one is a
// string (printable text up to a NUL, no pointer in it).
func (c *comparer) stringsEqual(o uint32, ob, nb []byte) (equal, isString bool) {
	os, ok := cString(ob)
	if !ok || len(c.old.f.RelocsIn(o, uint32(len(os)))) != 0 {
		return false, false
	}
	ns, _ := cString(nb)
	return bytes.Equal(os, ns), true
}

// pointersEqual compares only the strings and the pointers of two
// objects. Go's read-only objects (type descriptors, itabs) hold 32-bit
// offsets into the module's type and name sections that move with any
// layout change, so in Go binaries an object whose address is taken is
// compared by what it points at; loads of constants are still compared
// byte for byte.
func (c *comparer) pointersEqual(o, n uint32, ob, nb []byte) bool {
	if eq, isString := c.stringsEqual(o, ob, nb); isString {
		return eq
	}
	k := min(len(ob), len(nb))
	orl, nrl := c.old.f.RelocsOverlapping(o, uint32(k)), c.new.f.RelocsOverlapping(n, uint32(k))
	if len(orl) != len(nrl) {
		return false
	}
	for i := range orl {
		if int64(orl[i].RVA)-int64(o) != int64(nrl[i].RVA)-int64(n) {
			return false
		}
		w := orl[i].Width()
		if !c.correspond(pointerTarget(c.old.f, orl[i].RVA, w), pointerTarget(c.new.f, nrl[i].RVA, w)) {
			return false
		}
	}
	return true
}

// objectsEqual compares the bytes of an old and a new object.
func (c *comparer) objectsEqual(o, n uint32, ob, nb []byte) bool {
	if eq, isString := c.stringsEqual(o, ob, nb); isString {
		return eq
	}
	// Without symbols an object's extent is only known up to the next
	// referenced object, which unrelated objects can move: compare the
	// common prefix.
	if k := min(len(ob), len(nb)); len(ob) != len(nb) {
		ob, nb = ob[:k], nb[:k]
	}
	orl, nrl := c.old.f.RelocsOverlapping(o, uint32(len(ob))), c.new.f.RelocsOverlapping(n, uint32(len(nb)))
	if len(orl) != len(nrl) {
		return false
	}
	oc, nc := append([]byte(nil), ob...), append([]byte(nil), nb...)
	for i := range orl {
		if int64(orl[i].RVA)-int64(o) != int64(nrl[i].RVA)-int64(n) || orl[i].Type != nrl[i].Type {
			return false
		}
		w := orl[i].Width()
		if !c.correspond(pointerTarget(c.old.f, orl[i].RVA, w), pointerTarget(c.new.f, nrl[i].RVA, w)) {
			return false
		}
		maskReloc(oc, o, orl[i])
		maskReloc(nc, n, nrl[i])
	}
	return bytes.Equal(oc, nc) || c.rvaTolerantEqual(oc, nc)
}

// rvaTolerantEqual compares two objects whose only differences are
// 32-bit image-relative addresses (RVAs, as in SEH and unwind tables) that
// point at corresponding code: such fields move with the layout.
func (c *comparer) rvaTolerantEqual(ob, nb []byte) bool {
	if len(ob) != len(nb) {
		return false
	}
	for i := 0; i < len(ob); {
		if ob[i] == nb[i] {
			i++
			continue
		}
		k := i &^ 3
		if k+4 > len(ob) {
			return false
		}
		ov, nv := readField(ob[k:], 4), readField(nb[k:], 4)
		if !c.sameCodeRVA(uint32(ov), uint32(nv)) {
			return false
		}
		i = k + 4
	}
	return true
}

// sameCodeRVA reports whether two RVAs point at the same place of paired
// functions.
func (c *comparer) sameCodeRVA(o, n uint32) bool {
	of, ok1 := c.old.f.FunctionContaining(o)
	nf, ok2 := c.new.f.FunctionContaining(n)
	if !ok1 || !ok2 {
		return false
	}
	oi, _ := c.old.index(of.RVA)
	ni, _ := c.new.index(nf.RVA)
	if c.p.o2n[oi] != ni {
		return false
	}
	os, ns := spaceOf(of), spaceOf(nf)
	oo, _, _ := os.offset(o)
	no, _, _ := ns.offset(n)
	return oo == no
}

func pointerTarget(f *pe.File, at uint32, w int) uint32 {
	b := f.Bytes(at, w)
	if len(b) < w {
		return 0
	}
	v := readField(b, uint8(w))
	if v < f.ImageBase {
		return 0
	}
	return uint32(v - f.ImageBase)
}

// correspond reports whether an old and a new RVA name corresponding
// things: paired functions, the same import, or data the code agrees on.
func (c *comparer) correspond(o, n uint32) bool {
	if oi, ok := c.old.index(o); ok {
		ni, ok := c.new.index(n)
		return ok && c.p.o2n[oi] == ni
	}
	if os, ok := c.old.f.ImportAt(o); ok {
		ns, ok := c.new.f.ImportAt(n)
		return ok && strings.EqualFold(os.String(), ns.String())
	}
	if m, ok := c.dataMap[o]; ok {
		return m == n
	}
	return true // no evidence either way
}

// describe names a reference target symbolically.
func (c *comparer) describe(im *image, t *tok) string {
	switch t.tk {
	case tokSelf:
		return fmt.Sprintf("+%#x", t.target)
	case tokFunc:
		return im.fns[t.fn].DisplayName()
	case tokCode:
		return fmt.Sprintf("%s+%#x", im.fns[t.fn].DisplayName(), t.sub)
	case tokImport:
		return im.tokName(t)
	case tokUnknown:
		return fmt.Sprintf("%#x", t.raw())
	}
	return im.f.Resolve(t.target).String()
}

// preview renders object contents for a message: a quoted string, or hex.
func preview(b []byte) string {
	if s, ok := cString(b); ok {
		return fmt.Sprintf("%q", s[:len(s)-1])
	}
	if len(b) > 16 {
		return fmt.Sprintf("%x…", b[:16])
	}
	return fmt.Sprintf("%x", b)
}
