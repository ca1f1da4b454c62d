package diff

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"sort"
	"sync"

	"github.com/hpbuild/hpbuild/internal/par"
	"github.com/hpbuild/hpbuild/pe"
)

// tokKind says what a masked reference points at.
type tokKind uint8

const (
	tokSelf    tokKind = iota + 1 // a place inside the same function (code-space offset)
	tokFunc                       // the start of another function
	tokCode                       // inside another function (owner + offset)
	tokImport                     // an IAT slot
	tokROData                     // read-only data (compared by contents)
	tokRWData                     // writable data (compared by correspondence)
	tokHeader                     // the image headers (__ImageBase)
	tokUnknown                    // outside the image: compared by raw value
	tokTable                      // one of the function's own jump tables (compared as target lists)
)

// tok is one masked reference of a function. It is kept small (20 bytes):
// big images have millions.
type tok struct {
	off    uint32 // code-space offset of the field
	target uint32 // RVA of the target (tokFunc/tokCode/data/header/import), anchor for tokSelf, index for tokTable; low half of the raw value for tokUnknown
	sub    uint32 // anchor inside the target function for tokCode; high half of the raw value for tokUnknown
	fn     int32  // index of the target function for tokFunc/tokCode, -1 otherwise
	width  uint8
	kind   pe.RefKind
	tk     tokKind
	access uint8 // bytes accessed at target (0: address only)
}

// raw returns the field value of a tokUnknown.
func (t *tok) raw() uint64 { return uint64(t.target) | uint64(t.sub)<<32 }

// name returns the layout-independent name of the target: "dll!name" for
// imports, the function's name for functions.
func (im *image) tokName(t *tok) string {
	switch t.tk {
	case tokImport:
		if s, ok := im.f.ImportAt(t.target); ok {
			return s.String()
		}
	case tokFunc, tokCode:
		return im.fns[t.fn].Name
	}
	return ""
}

// fprint is the layout-independent form of one function.
// The masked code itself (the code space with reference fields and
// in-code jump tables zeroed) is not kept: image.masked rebuilds it from the
// image bytes when a comparison needs it, which costs a copy but keeps a big
// image's code out of the heap.
//
// A big image has about a hundred thousand, so the struct is kept to 40
// bytes: the tokens and the call and jump lists of all functions sit in
// two arrays of the image (image.toks, image.calls, image.jumps), and the
// rare jump tables behind a pointer.
type fprint struct {
	shape  uint64      // hash of masked bytes and the layout-independent part of the tokens
	tabs   *[][]uint32 // jump tables as code-space offsets of their targets; nil when none
	tok    uint32      // first token in image.tokArena
	nToks  uint32
	link   uint32 // first link in image.linkArena: the indexes of called functions in code order, then of functions tail-jumped to
	nCalls uint32
	nLinks uint32
	size   uint32 // code-space size: main extent, then chunks
}

// tables returns the jump tables as code-space offsets of their targets.
func (fp *fprint) tables() [][]uint32 {
	if fp.tabs == nil {
		return nil
	}
	return *fp.tabs
}

// toks returns function i's masked references, in code order.
func (im *image) toks(i int) []tok {
	fp := &im.fps[i]
	return im.tokArena[fp.tok : fp.tok+fp.nToks : fp.tok+fp.nToks]
}

// calls returns the indexes of the functions function i calls, in code
// order.
func (im *image) calls(i int) []int32 {
	fp := &im.fps[i]
	return im.linkArena[fp.link : fp.link+fp.nCalls : fp.link+fp.nCalls]
}

// jumps returns the indexes of the functions function i tail-jumps to.
func (im *image) jumps(i int) []int32 {
	fp := &im.fps[i]
	return im.linkArena[fp.link+fp.nCalls : fp.link+fp.nLinks : fp.link+fp.nLinks]
}

// image is one side of the comparison.
type image struct {
	f   *pe.File
	fns []pe.Function
	fps []fprint
	// tokArena and linkArena hold every function's tokens and links (see
	// fprint): one allocation each instead of two per function.
	tokArena  []tok
	linkArena []int32
	// objects are the starts of the data objects the code references and
	// the symbols name, and of the directories and debug data, sorted: an
	// object ends where the next one starts.
	objects []uint32
	// symbols are the starts of named data objects, sorted.
	symbols []uint32
	// symSize holds the exact sizes of data objects whose symbol says
	// (PDB data records): their extent, instead of the distance to the
	// next symbol.
	symSize map[uint32]uint32
	// goBinary is set for images built by the Go toolchain.
	goBinary bool
}

func newImage(f *pe.File) *image {
	im := &image{f: f, fns: f.Functions(), goBinary: isGo(f)}
	seen := map[uint32]bool{}
	for i := range im.fns {
		for _, r := range im.fns[i].Refs {
			if !seen[r.Target] && !f.IsCode(r.Target) {
				seen[r.Target] = true
				im.objects = append(im.objects, r.Target)
			}
		}
	}
	for _, r := range f.Relocs {
		w := r.Width()
		if t := pointerTarget(f, r.RVA, w); t != 0 && !f.IsCode(t) && !seen[t] && f.Section(t) != nil {
			seen[t] = true
			im.objects = append(im.objects, t)
		}
	}
	for _, s := range f.Symbols {
		if s.Func || f.IsCode(s.RVA) {
			continue
		}
		if len(im.symbols) == 0 || im.symbols[len(im.symbols)-1] != s.RVA {
			im.symbols = append(im.symbols, s.RVA)
		}
		if s.Size != 0 && s.Size > im.symSize[s.RVA] {
			if im.symSize == nil {
				im.symSize = map[uint32]uint32{}
			}
			im.symSize[s.RVA] = s.Size
		}
		if !seen[s.RVA] {
			seen[s.RVA] = true
			im.objects = append(im.objects, s.RVA)
		}
	}
	// Directories and debug data (the CodeView record with the PDB's
	// GUID, which changes with every build) end the object before them:
	// an inferred extent must not run into them.
	for i, d := range f.Directories {
		if d.VirtualAddress != 0 && i != pe.IMAGE_DIRECTORY_ENTRY_SECURITY && !seen[d.VirtualAddress] && f.Section(d.VirtualAddress) != nil {
			seen[d.VirtualAddress] = true
			im.objects = append(im.objects, d.VirtualAddress)
		}
	}
	for _, d := range f.Debug {
		if d.RVA != 0 && !seen[d.RVA] && f.Section(d.RVA) != nil {
			seen[d.RVA] = true
			im.objects = append(im.objects, d.RVA)
		}
	}
	sort.Slice(im.objects, func(i, j int) bool { return im.objects[i] < im.objects[j] })
	im.fps = make([]fprint, len(im.fns))
	toks := make([][]tok, len(im.fns))
	links := make([][]int32, len(im.fns))
	parallel(len(im.fns), func(i int) { im.fps[i], toks[i], links[i] = im.fingerprint(i) })
	nt, nl := 0, 0
	for i := range toks {
		nt += len(toks[i])
		nl += len(links[i])
	}
	im.tokArena = make([]tok, 0, nt)
	im.linkArena = make([]int32, 0, nl)
	for i := range toks {
		fp := &im.fps[i]
		fp.tok, fp.nToks = uint32(len(im.tokArena)), uint32(len(toks[i]))
		fp.link, fp.nLinks = uint32(len(im.linkArena)), uint32(len(links[i]))
		im.tokArena = append(im.tokArena, toks[i]...)
		im.linkArena = append(im.linkArena, links[i]...)
		toks[i], links[i] = nil, nil
	}
	return im
}

// index returns the index of the function starting at rva.
func (im *image) index(rva uint32) (int, bool) { return im.f.FunctionIndex(rva) }

// parallel runs fn(0..n-1) on all cores; results must be written to
// distinct slots so that the outcome does not depend on scheduling.
func parallel(n int, fn func(i int)) { par.ForEach(n, 64, 256, fn) }

// codeSpace maps RVAs of a function's parts to offsets in its code space.
type codeSpace struct {
	parts []pe.Chunk
	base  []uint32 // code-space offset of each part
	size  uint32
}

func spaceOf(fn *pe.Function) codeSpace {
	cs := codeSpace{parts: fn.Parts()}
	for _, p := range cs.parts {
		cs.base = append(cs.base, cs.size)
		cs.size += p.Size
	}
	return cs
}

// anchor names rva layout-independently as part<<24 | offset in part, so
// that a change in one part does not move the names of places in the
// others.
func (cs *codeSpace) anchor(rva uint32) (uint32, bool) {
	for i, p := range cs.parts {
		if rva >= p.RVA && rva < p.RVA+p.Size {
			return uint32(i)<<24 | (rva - p.RVA), true
		}
	}
	return 0, false
}

// offset returns the code-space offset of rva and whether it lies in the
// function; part is the index of the part (0 = main extent).
func (cs *codeSpace) offset(rva uint32) (off uint32, part int, ok bool) {
	for i, p := range cs.parts {
		if rva >= p.RVA && rva < p.RVA+p.Size {
			return cs.base[i] + rva - p.RVA, i, true
		}
	}
	return 0, 0, false
}

// fingerprint returns function i's fingerprint, its tokens and its links
// (calls, then tail jumps; fp.nCalls says where they part), exactly sized.
func (im *image) fingerprint(i int) (fp fprint, ftoks []tok, links []int32) {
	fn := &im.fns[i]
	cs := spaceOf(fn)
	fp.size = cs.size
	bp := getBuf()
	defer putBuf(bp)
	masked := im.f.AppendCode((*bp)[:0], fn)
	*bp = masked
	// Tokens are collected in a reused buffer and copied out at their exact
	// size: a big image has millions, and append's spare capacity would
	// be a third of them again.
	sc := fpPool.Get().(*fpScratch)
	defer fpPool.Put(sc)
	toks, calls, jumps := sc.toks[:0], sc.calls[:0], sc.jumps[:0]
	h := fnv.New64a()
	var scratch [16]byte
	for _, r := range fn.Refs {
		at, atPart, ok := cs.offset(r.At)
		if !ok || int(at)+int(r.Width) > len(masked) {
			continue
		}
		t := tok{off: at, width: r.Width, kind: r.Kind, fn: -1, access: r.Access}
		switch r.Kind {
		case pe.RefBranch8, pe.RefBranch32, pe.RefCall:
			if _, tpart, ok := cs.offset(r.Target); ok {
				if tpart == 0 && atPart == 0 && r.Kind != pe.RefCall {
					continue // intra-extent branch: bytes are layout independent
				}
				a, _ := cs.anchor(r.Target) // inside: offset found it
				t.tk, t.target = tokSelf, a
				break
			}
			im.classify(&t, r.Target)
		default:
			if a, ok := cs.anchor(r.Target); ok {
				t.tk, t.target = tokSelf, a
				break
			}
			if k := tableIndex(fn, r.Target); k >= 0 {
				t.tk, t.target = tokTable, uint32(k)
				break
			}
			im.classify(&t, r.Target)
			if t.tk == tokUnknown {
				v := readField(masked[at:], r.Width)
				t.target, t.sub = uint32(v), uint32(v>>32)
			}
		}
		clear(masked[at : at+uint32(r.Width)])
		toks = append(toks, t)
		if t.tk == tokFunc && r.Kind == pe.RefCall {
			calls = append(calls, t.fn)
		} else if t.tk == tokFunc && (r.Kind == pe.RefBranch32 || r.Kind == pe.RefBranch8) {
			jumps = append(jumps, t.fn)
		}
	}
	sc.toks, sc.calls, sc.jumps = toks, calls, jumps
	ftoks = slices.Clone(toks)
	if len(calls)+len(jumps) > 0 {
		// Exactly sized, in one allocation.
		links = append(append(make([]int32, 0, len(calls)+len(jumps)), calls...), jumps...)
		fp.nCalls = uint32(len(calls))
	}
	var tables [][]uint32
	for _, jt := range fn.JumpTables() {
		var offs []uint32
		for _, tgt := range jt.Targets {
			o, _, _ := cs.offset(tgt)
			offs = append(offs, o)
		}
		tables = append(tables, offs)
	}
	if tables != nil {
		fp.tabs = &tables
	}
	maskTables(fn, &cs, masked)
	h.Write(masked)
	for _, t := range ftoks {
		binary.LittleEndian.PutUint32(scratch[0:], t.off)
		scratch[4] = byte(t.kind)
		scratch[5] = byte(t.tk)
		n := 6
		switch t.tk {
		case tokSelf:
			binary.LittleEndian.PutUint32(scratch[6:], t.target)
			n = 10
		case tokUnknown:
			binary.LittleEndian.PutUint64(scratch[6:], t.raw())
			n = 14
		}
		h.Write(scratch[:n])
		h.Write([]byte(im.tokName(&t)))
		if t.tk == tokROData {
			h.Write(im.roHashContent(t.target, t.access))
		}
	}
	for _, tb := range tables {
		for _, o := range tb {
			binary.LittleEndian.PutUint32(scratch[:4], o)
			h.Write(scratch[:4])
		}
		h.Write([]byte{0xff})
	}
	fp.shape = h.Sum64()
	return fp, ftoks, links
}

// maskTables zeroes the jump-table entries that lie inside the code space:
// they are data, compared as lists of targets.
func maskTables(fn *pe.Function, cs *codeSpace, masked []byte) {
	for _, jt := range fn.JumpTables() {
		if o, _, ok := cs.offset(jt.RVA); ok {
			end := min(o+jt.Size(), uint32(len(masked)))
			if o < end {
				clear(masked[o:end])
			}
		}
	}
}

// masked appends function i's masked code space to buf: its bytes with
// every reference field and in-code jump table zeroed.
func (im *image) masked(i int, buf []byte) []byte {
	fn := &im.fns[i]
	cs := spaceOf(fn)
	start := len(buf)
	buf = im.f.AppendCode(buf, fn)
	m := buf[start:]
	for _, t := range im.toks(i) {
		clear(m[t.off : t.off+uint32(t.width)])
	}
	maskTables(fn, &cs, m)
	return buf
}

// bufPool holds scratch buffers for masked code, so that comparing
// thousands of functions does not allocate a copy of each.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// fpScratch is fingerprint's working space: tokens and call lists are
// collected here and copied out at their exact size.
type fpScratch struct {
	toks         []tok
	calls, jumps []int32
}

var fpPool = sync.Pool{New: func() any { return new(fpScratch) }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { *b = (*b)[:0]; bufPool.Put(b) }

// sketchOf returns the MinHash sketch of function i's masked code.
func (im *image) sketchOf(i int) sketch {
	bp := getBuf()
	defer putBuf(bp)
	*bp = im.masked(i, (*bp)[:0])
	return newSketch(*bp)
}

func readField(b []byte, w uint8) uint64 {
	switch w {
	case 1:
		return uint64(b[0])
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	case 8:
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// classify fills in what a reference target is in im.
func (im *image) classify(t *tok, rva uint32) {
	f := im.f
	if _, ok := f.ImportAt(rva); ok {
		t.tk, t.target = tokImport, rva
		return
	}
	if j, ok := im.index(rva); ok {
		t.tk, t.fn, t.target = tokFunc, int32(j), rva
		return
	}
	tg := f.Resolve(rva)
	t.target = rva
	switch tg.Kind {
	case pe.TargetCode:
		if tg.Function != nil {
			j, _ := im.index(tg.Function.RVA)
			cs := spaceOf(&im.fns[j])
			a, _ := cs.anchor(rva)
			t.tk, t.fn, t.sub = tokCode, int32(j), a
			return
		}
		// Code no function covers (landing pads, constructor lists):
		// anchored to the nearest function before it.
		if j := im.before(rva); j >= 0 {
			t.tk, t.fn, t.sub = tokCode, int32(j), rva-im.fns[j].RVA
			return
		}
		t.tk = tokRWData
	case pe.TargetData:
		if s := f.Section(rva); s != nil && (s.Writable() || isLayoutMetadata(s.Name)) {
			// Writable data, and tables that describe the code's layout
			// (unwind and EH data), are compared by correspondence.
			t.tk = tokRWData
		} else {
			t.tk = tokROData
		}
	case pe.TargetHeader:
		t.tk = tokHeader
	default:
		if s := sectionTail(f, rva); s != nil {
			t.tk = tokRWData // end markers: compared by correspondence
			return
		}
		t.tk = tokUnknown
	}
}

func sectionTail(f *pe.File, rva uint32) *pe.Section {
	for i := range f.Sections {
		if f.Sections[i].End() == rva {
			return &f.Sections[i]
		}
	}
	return nil
}

const maxObject = 256

// roContent returns the contents of the read-only object at rva used for
// comparison: a NUL-terminated string when it looks like one, else the
// bytes up to the next object the code references (at most maxObject).
func (im *image) roContent(rva uint32, access uint8) []byte {
	if access > 0 {
		b := make([]byte, access)
		copy(b, im.f.Bytes(rva, int(access)))
		return b
	}
	n := im.objectSize(rva)
	b := im.f.Bytes(rva, n)
	if s, ok := cString(b); ok && len(im.f.RelocsIn(rva, uint32(len(s)))) == 0 {
		return s
	}
	// A run of pointers (vtable, function-pointer table) ends where the
	// pointers end.
	if run := pointerRun(im.f, rva); run > 0 && run < n {
		n = run
	}
	// A data symbol that covers rva bounds the object.
	if end, ok := im.symbolEnd(rva); ok && int(end-rva) < n {
		n = int(end - rva)
	}
	if n < len(b) {
		b = b[:n]
	}
	return b
}

// pointerRun returns the size of the run of contiguous base-relocated
// pointers starting at rva, or 0.
func pointerRun(f *pe.File, rva uint32) int {
	n := 0
	for k := 0; k < maxObject/4; k++ {
		t, ok := f.RelocAt(rva + uint32(n))
		if !ok {
			break
		}
		if t == pe.IMAGE_REL_BASED_DIR64 {
			n += 8
		} else {
			n += 4
		}
	}
	return n
}

// symbolEnd returns where the data object named by the symbol covering
// rva ends (the next data symbol), if a symbol covers it.
func (im *image) symbolEnd(rva uint32) (uint32, bool) {
	i := sort.Search(len(im.symbols), func(i int) bool { return im.symbols[i] > rva })
	if i > 0 {
		if sz, ok := im.symSize[im.symbols[i-1]]; ok && rva < im.symbols[i-1]+sz {
			return im.symbols[i-1] + sz, true // exact, from the PDB
		}
	}
	if i == 0 || i >= len(im.symbols) {
		return 0, false
	}
	if im.f.Section(im.symbols[i-1]) != im.f.Section(rva) || im.f.Section(im.symbols[i]) != im.f.Section(rva) {
		return 0, false
	}
	return im.symbols[i], true
}

// cString returns b up to and including its first NUL when everything
// before it is printable text (at least 2 characters).
func cString(b []byte) ([]byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 2 {
		return nil, false
	}
	for _, c := range b[:i] {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return nil, false
		}
	}
	return b[:i+1], true
}

// objectSize returns the size of the data object at rva: up to the next
// known object or the end of its section's file data, at most maxObject.
func (im *image) objectSize(rva uint32) int {
	n := maxObject
	i := sort.Search(len(im.objects), func(i int) bool { return im.objects[i] > rva })
	if i < len(im.objects) && int(im.objects[i]-rva) < n {
		n = int(im.objects[i] - rva)
	}
	if sz, ok := im.symSize[rva]; ok && int(sz) < maxObject {
		n = int(sz) // exact, from the PDB
	}
	if s := im.f.Section(rva); s != nil && int(s.End()-rva) < n {
		n = int(s.End() - rva)
	}
	return n
}

// object returns the bytes of the data object at rva (zeros past the
// file data, as the loader maps them).
func (im *image) object(rva uint32) []byte {
	n := im.objectSize(rva)
	b := make([]byte, n)
	copy(b, im.f.Bytes(rva, n))
	return b
}

// roHashContent is roContent with pointer fields zeroed, for hashing.
func (im *image) roHashContent(rva uint32, access uint8) []byte {
	if access == 0 {
		// Address-taken objects: only strings are hashed; other bytes
		// may hold layout-dependent offsets (the comparison decides).
		if s, ok := cString(im.f.Bytes(rva, im.objectSize(rva))); ok {
			return s
		}
		return nil
	}
	b := append([]byte(nil), im.roContent(rva, access)...)
	for _, r := range im.f.RelocsOverlapping(rva, uint32(len(b))) {
		maskReloc(b, rva, r)
	}
	return b
}

// maskReloc zeroes the bytes of b (which starts at rva) that the
// relocation's field covers.
func maskReloc(b []byte, rva uint32, r pe.Reloc) {
	for k := int64(r.RVA) - int64(rva); k < int64(r.RVA)-int64(rva)+int64(r.Width()); k++ {
		if k >= 0 && k < int64(len(b)) {
			b[k] = 0
		}
	}
}

// isLayoutMetadata names the sections whose contents describe where code
// is (unwind, exception-handling and relocation tables): their bytes change
// with the layout, so they are never compared as constants.
func isLayoutMetadata(section string) bool {
	switch section {
	case ".pdata", ".xdata", ".eh_frame", ".eh_fram", ".gcc_except_table", ".gcc_exc", ".reloc":
		return true
	}
	return false
}

const maxSymbolObject = 4096

// symbolObject returns the bytes of the data object a symbol names: up to
// the next data symbol or the end of the section, at most maxSymbolObject.
func (im *image) symbolObject(rva uint32) []byte {
	n := uint32(maxSymbolObject)
	i := sort.Search(len(im.symbols), func(i int) bool { return im.symbols[i] > rva })
	if i < len(im.symbols) && im.symbols[i]-rva < n {
		n = im.symbols[i] - rva
	}
	if sz, ok := im.symSize[rva]; ok && sz < maxSymbolObject {
		n = sz // exact, from the PDB
	}
	if s := im.f.Section(rva); s != nil && s.End()-rva < n {
		n = s.End() - rva
	}
	b := make([]byte, n)
	copy(b, im.f.Bytes(rva, int(n)))
	return b
}

// before returns the index of the last function starting at or before
// rva in the same section, or -1.
func (im *image) before(rva uint32) int {
	i := sort.Search(len(im.fns), func(i int) bool { return im.fns[i].RVA > rva }) - 1
	if i < 0 || im.f.Section(im.fns[i].RVA) != im.f.Section(rva) {
		return -1
	}
	return i
}

// isGo reports whether the Go toolchain built f: its code starts with the
// Go build ID.
func isGo(f *pe.File) bool {
	for _, s := range f.Sections {
		if s.Executable() {
			return bytes.Contains(f.Bytes(s.VirtualAddress, 256), []byte("Go build ID:"))
		}
	}
	return false
}

// tableIndex returns the index of fn's jump table at rva, or -1.
func tableIndex(fn *pe.Function, rva uint32) int {
	for k, jt := range fn.JumpTables() {
		if jt.RVA == rva {
			return k
		}
	}
	return -1
}
