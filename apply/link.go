package apply

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sort"

	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/pkgformat"
)

// PageSize is the granularity of the patch area's protections.
const PageSize = 0x1000

// maxArea bounds a patch area: it must sit within ±2 GiB of the module
// with room to spare.
const maxArea = 1 << 30

// Layout is where everything a package carries goes in its patch area,
// before the area has an address. The area is three page-aligned regions:
// a read-only header (the Record that Status and Rollback read), the text
// (new code, rebuilt jump tables, import slots, constants and x64 unwind
// data; executable and read-only) and the writable data.
type Layout struct {
	pkg     *pkgformat.Package
	is64    bool
	funcs   []funcPlace
	tables  map[[2]int]uint32 // function index, table index -> text offset (out-of-code tables)
	slots   map[string]uint32 // import -> text offset of its slot
	data    map[uint32]dataPlace
	unwind  uint32 // text offset of the RUNTIME_FUNCTION array
	nUnwind int
	infos   []uint32 // text offsets of the UNWIND_INFO blobs, in unwind order

	HeaderSize uint32 // bytes, page multiple
	TextSize   uint32 // bytes, page multiple
	DataSize   uint32 // bytes, page multiple (0 when no writable data)
}

type funcPlace struct {
	off   uint32 // text offset
	code  []byte // the code blob
	insts []instSpan
}

type dataPlace struct {
	text bool   // in the text region (read-only), else in data
	off  uint32 // region offset
	init []byte // nil: zeros
}

// instSpan is one decoded instruction of carried code: [start, end) in
// code space; call is set for direct and indirect calls.
type instSpan struct {
	start, end uint32
	call       bool
}

// Size is the whole area in bytes.
func (l *Layout) Size() uint32 { return l.HeaderSize + l.TextSize + l.DataSize }

// Unwind handler flags of UNWIND_INFO (byte 0 >> 3).
const (
	unwFlagEHandler  = 1
	unwFlagUHandler  = 2
	unwFlagChainInfo = 4
)

// Plan lays out the patch area of a package whose blobs have been
// verified. It decodes the carried code far enough to know where each
// fixed-up instruction ends (relative fields count from there).
func Plan(p *pkgformat.Package) (*Layout, error) {
	m := &p.Manifest
	l := &Layout{pkg: p, is64: m.Base.Machine == "amd64", tables: map[[2]int]uint32{}, slots: map[string]uint32{}, data: map[uint32]dataPlace{}}
	if !l.is64 && m.Base.Machine != "i386" {
		return nil, fmt.Errorf("package is for machine %q: live apply supports amd64 and i386", m.Base.Machine)
	}
	var text uint64
	align := func(n uint64) { text = (text + n - 1) &^ (n - 1) }
	for i := range m.Functions {
		fn := &m.Functions[i]
		code, err := p.Blob(fn.Code)
		if err != nil {
			return nil, fmt.Errorf("function %s: code: %w", fn.Name, err)
		}
		if err := checkTables(fn, len(code)); err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.Name, err)
		}
		insts, err := l.decode(fn, code)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.Name, err)
		}
		align(16)
		l.funcs = append(l.funcs, funcPlace{off: uint32(text), code: code, insts: insts})
		text += uint64(len(code))
		if text > maxArea {
			return nil, fmt.Errorf("the package's code exceeds %d bytes", maxArea)
		}
	}
	for i := range m.Functions {
		for k, t := range m.Functions[i].Tables {
			if t.InCode {
				continue
			}
			align(8)
			l.tables[[2]int{i, k}] = uint32(text)
			text += uint64(len(t.Targets)) * uint64(t.Entry)
		}
	}
	slot := uint64(4)
	if l.is64 {
		slot = 8
	}
	for _, imp := range m.Imports {
		align(slot)
		l.slots[imp] = uint32(text)
		text += slot
	}
	var writable uint64
	for _, d := range m.Data {
		var init []byte
		if d.Init >= 0 {
			b, err := p.Blob(d.Init)
			if err != nil {
				return nil, fmt.Errorf("data %s: %w", d.Name, err)
			}
			init = b
		}
		if d.ReadOnly {
			align(16)
			l.data[d.NewRVA] = dataPlace{text: true, off: uint32(text), init: init}
			text += uint64(d.Size)
		} else {
			writable = (writable + 15) &^ 15
			l.data[d.NewRVA] = dataPlace{off: uint32(writable), init: init}
			writable += uint64(d.Size)
		}
		if text > maxArea || writable > maxArea {
			return nil, fmt.Errorf("the package's data exceeds %d bytes", maxArea)
		}
	}
	if l.is64 {
		for _, fn := range m.Functions {
			l.nUnwind += len(fn.Unwind)
		}
		if l.nUnwind > 0 {
			align(4)
			l.unwind = uint32(text)
			text += 12 * uint64(l.nUnwind)
			for _, fn := range m.Functions {
				for _, u := range fn.Unwind {
					info, err := p.Blob(u.Info)
					if err != nil {
						return nil, fmt.Errorf("function %s: unwind info: %w", fn.Name, err)
					}
					if len(info) < 4 {
						return nil, fmt.Errorf("function %s: unwind info of %d bytes", fn.Name, len(info))
					}
					if flags := info[0] >> 3; flags&(unwFlagEHandler|unwFlagUHandler|unwFlagChainInfo) != 0 {
						// docs/format.md "Known limits": handler RVAs are not fixups yet.
						return nil, fmt.Errorf("function %s: its unwind info names an exception handler or chains to another entry (flags %#x); live apply does not relocate those yet", fn.Name, flags)
					}
					align(4)
					l.infos = append(l.infos, uint32(text))
					text += uint64(len(info))
				}
			}
		}
	}
	hdr := uint64(recordBound(m))
	if text+writable+hdr > maxArea {
		return nil, fmt.Errorf("the patch area would need %d bytes, more than %d", text+writable+hdr, maxArea)
	}
	l.TextSize = pageUp(uint32(max(text, 1)))
	l.DataSize = pageUp(uint32(writable))
	l.HeaderSize = pageUp(uint32(hdr))
	return l, nil
}

// checkTables refuses jump tables whose entries or targets do not fit the
// function's code (the package format leaves their bounds to the applier).
func checkTables(fn *pkgformat.Function, codeLen int) error {
	for k, t := range fn.Tables {
		known := t.Kind == "absolute" || t.Kind == "rva" || t.Kind == "relative"
		if !known || t.Entry != 4 && (t.Entry != 8 || t.Kind != "absolute") {
			return fmt.Errorf("jump table %d: %d-byte %s entries", k, t.Entry, t.Kind)
		}
		if len(t.Targets) > 1<<20 {
			return fmt.Errorf("jump table %d: %d entries", k, len(t.Targets))
		}
		for _, to := range t.Targets {
			if int64(to) >= int64(codeLen) {
				return fmt.Errorf("jump table %d: target +%#x outside the %d bytes of code", k, to, codeLen)
			}
		}
		if t.InCode {
			off, ok := codeOffset(fn, t.NewRVA)
			if !ok || int64(off)+int64(len(t.Targets))*int64(t.Entry) > int64(codeLen) {
				return fmt.Errorf("jump table %d at RVA %#x does not fit in the function's code", k, t.NewRVA)
			}
		}
	}
	return nil
}

func pageUp(n uint32) uint32 { return (n + PageSize - 1) &^ (PageSize - 1) }

// decode sweeps a function's code part by part and returns its
// instructions, skipping jump tables that live inside the code. Every
// fixup must fall on an address field of a decoded instruction.
func (l *Layout) decode(fn *pkgformat.Function, code []byte) ([]instSpan, error) {
	mode := 32
	if l.is64 {
		mode = 64
	}
	// Code-space ranges of in-code tables.
	type span struct{ a, b uint32 }
	var skip []span
	for _, t := range fn.Tables {
		if !t.InCode {
			continue
		}
		off, ok := codeOffset(fn, t.NewRVA)
		if !ok {
			return nil, fmt.Errorf("jump table at RVA %#x is not inside the function's parts", t.NewRVA)
		}
		skip = append(skip, span{off, off + uint32(len(t.Targets))*uint32(t.Entry)})
	}
	var out []instSpan
	var at uint32
	for _, part := range fn.Parts {
		end := at + part.Size
		if uint64(end) > uint64(len(code)) {
			return nil, fmt.Errorf("parts cover %d bytes, the code blob has %d", end, len(code))
		}
		for pc := at; pc < end; {
			skipped := false
			for _, s := range skip {
				if pc >= s.a && pc < s.b {
					pc, skipped = s.b, true
				}
			}
			if skipped {
				continue
			}
			in, err := disasm.Decode(code[pc:end], uint64(pc), mode)
			if err != nil {
				// Bytes the diff kept but could not decode (docs/rules.md
				// RR-UNDECODABLE): no fixup may fall in them.
				pc++
				continue
			}
			out = append(out, instSpan{pc, pc + uint32(in.Len), in.Flow == disasm.FlowCall || in.Flow == disasm.FlowIndirectCall})
			pc += uint32(in.Len)
		}
		at = end
	}
	return out, nil
}

// codeOffset maps a target-image RVA inside a function's parts to its
// code-space offset.
func codeOffset(fn *pkgformat.Function, rva uint32) (uint32, bool) {
	var at uint32
	for _, p := range fn.Parts {
		if rva >= p.RVA && rva-p.RVA < p.Size {
			return at + rva - p.RVA, true
		}
		at += p.Size
	}
	return 0, false
}

// ReturnOffsets returns the text-region offsets just after every call
// instruction of the carried code: the return addresses a thread's stack
// holds while a call made from patched code is in progress.
func (l *Layout) ReturnOffsets() []uint32 {
	var out []uint32
	for _, f := range l.funcs {
		for _, in := range f.insts {
			if in.call {
				out = append(out, f.off+in.end)
			}
		}
	}
	return out
}

// instEnd returns the end of the instruction holding the field at off.
func instEnd(insts []instSpan, off uint32, width uint8) (uint32, bool) {
	i := sort.Search(len(insts), func(i int) bool { return insts[i].end > off })
	if i == len(insts) || insts[i].start > off || off+uint32(width) > insts[i].end {
		return 0, false
	}
	return insts[i].end, true
}

// Resolver returns the address of an import ("dll!name") in the process.
type Resolver func(imp string) (uint64, error)

// Linked is a patch area with every byte computed for one load address of
// the module and one address of the area.
type Linked struct {
	Base   uint64 // where the module is loaded
	Area   uint64 // where the patch area starts
	Header []byte // at Area (HeaderSize bytes)
	Text   []byte // at Area+HeaderSize
	Data   []byte // after the text
	Sites  []SiteWrite
	// Unwind is the address and entry count of the RUNTIME_FUNCTION array
	// to register (x64), relative to Area+HeaderSize; Count 0 for none.
	Unwind struct {
		Table, Base uint64
		Count       int
	}
	Record Record
}

// TextAddr and DataAddr return where the regions start.
func (k *Linked) TextAddr() uint64 { return k.Area + uint64(len(k.Header)) }
func (k *Linked) DataAddr() uint64 { return k.TextAddr() + uint64(len(k.Text)) }

// SiteWrite is one trampoline site: what must be there and what apply
// writes.
type SiteWrite struct {
	Func   string
	Method string
	Addr   uint64 // first byte written
	Old    []byte // the original bytes, relocated to the load address
	New    []byte // the jump
	// Guard is the range no thread's instruction pointer may be in while
	// the site is written or restored: the written bytes and the whole
	// instructions they cut into.
	Guard [2]uint64
}

// Link computes the patch area for a module loaded at base and an area at
// area. preferred is the image base in the file (relocated fields of the
// original site bytes move by base-preferred).
func (l *Layout) Link(base, preferred, area uint64, resolve Resolver) (*Linked, error) {
	m := &l.pkg.Manifest
	k := &Linked{Base: base, Area: area, Header: make([]byte, l.HeaderSize), Text: make([]byte, l.TextSize), Data: make([]byte, l.DataSize)}
	text, data := k.TextAddr(), k.DataAddr()
	funcAddr := map[uint32]uint64{} // new RVA -> address of its code
	for i, fn := range m.Functions {
		funcAddr[fn.NewRVA] = text + uint64(l.funcs[i].off)
		copy(k.Text[l.funcs[i].off:], l.funcs[i].code)
	}
	dataAddr := func(rva uint32) (uint64, bool) {
		d, ok := l.data[rva]
		if !ok {
			return 0, false
		}
		if d.text {
			return text + uint64(d.off), true
		}
		return data + uint64(d.off), true
	}
	for _, d := range m.Data {
		p := l.data[d.NewRVA]
		if p.init != nil {
			dst := k.Data
			if p.text {
				dst = k.Text
			}
			copy(dst[p.off:], p.init)
		}
	}
	imports := map[string]uint64{}
	for _, imp := range m.Imports {
		a, err := resolve(imp)
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", imp, err)
		}
		imports[imp] = a
		l.putAddr(k.Text[l.slots[imp]:], a)
	}
	// target returns the address a fixup points at.
	target := func(fi int, x *pkgformat.Fixup) (uint64, error) {
		switch x.Target {
		case "old":
			return base + uint64(x.RVA), nil
		case "patch-code":
			a, ok := funcAddr[x.Ref]
			if !ok {
				return 0, fmt.Errorf("carried function at RVA %#x is not in the package", x.Ref)
			}
			return a + uint64(x.Sub), nil
		case "patch-data":
			a, ok := dataAddr(x.Ref)
			if !ok {
				return 0, fmt.Errorf("carried data at RVA %#x is not in the package", x.Ref)
			}
			return a + uint64(x.Sub), nil
		case "import":
			if x.RVA != 0 {
				return base + uint64(x.RVA), nil // the module's own IAT slot
			}
			off, ok := l.slots[x.Import]
			if !ok {
				return 0, fmt.Errorf("import %s is not in the package's import list", x.Import)
			}
			return text + uint64(off), nil
		case "jump-table":
			if fi < 0 || int(x.Sub) >= len(m.Functions[fi].Tables) {
				return 0, fmt.Errorf("jump table %d does not exist", x.Sub)
			}
			t := m.Functions[fi].Tables[x.Sub]
			if t.InCode {
				off, _ := codeOffset(&m.Functions[fi], t.NewRVA)
				return funcAddr[m.Functions[fi].NewRVA] + uint64(off), nil
			}
			return text + uint64(l.tables[[2]int{fi, int(x.Sub)}]), nil
		}
		return 0, fmt.Errorf("unknown fixup target %q", x.Target)
	}
	for i := range m.Functions {
		fn := &m.Functions[i]
		at := funcAddr[fn.NewRVA]
		for j := range fn.Fixups {
			x := &fn.Fixups[j]
			t, err := target(i, x)
			if err != nil {
				return nil, fmt.Errorf("function %s: fixup at +%#x: %w", fn.Name, x.Off, err)
			}
			end := x.Off + uint32(x.Width)
			if isRelative(x.Kind) {
				e, ok := instEnd(l.funcs[i].insts, x.Off, x.Width)
				if !ok {
					return nil, fmt.Errorf("function %s: fixup at +%#x is not inside a decoded instruction", fn.Name, x.Off)
				}
				end = e
			}
			field := k.Text[l.funcs[i].off+x.Off:]
			if err := put(field, x, t, at+uint64(end), base); err != nil {
				return nil, fmt.Errorf("function %s: fixup at +%#x (%s to %s): %w", fn.Name, x.Off, x.Kind, x.Target, err)
			}
		}
		for ti, t := range fn.Tables {
			var tab []byte
			var tabAddr uint64
			if t.InCode {
				off, _ := codeOffset(fn, t.NewRVA)
				tab, tabAddr = k.Text[l.funcs[i].off+off:], at+uint64(off)
			} else {
				off := l.tables[[2]int{i, ti}]
				tab, tabAddr = k.Text[off:], text+uint64(off)
			}
			for e, to := range t.Targets {
				dst := at + uint64(to)
				var v uint64
				switch t.Kind {
				case "absolute":
					v = dst
					if t.Entry == 4 && dst > math.MaxUint32 {
						return nil, fmt.Errorf("function %s: jump table %d: 4-byte entries cannot hold %#x", fn.Name, ti, dst)
					}
				case "rva":
					v = dst - base
					if dst < base || dst-base > math.MaxUint32 {
						return nil, fmt.Errorf("function %s: jump table %d: the patch area is not within 4 GiB above the module", fn.Name, ti)
					}
				default: // relative to the table
					d := int64(dst - tabAddr)
					if d != int64(int32(d)) {
						return nil, fmt.Errorf("function %s: jump table %d: entry out of range", fn.Name, ti)
					}
					v = uint64(d)
				}
				putN(tab[e*int(t.Entry):], int(t.Entry), v)
			}
		}
	}
	for _, d := range m.Data {
		a, _ := dataAddr(d.NewRVA)
		p := l.data[d.NewRVA]
		dst := k.Data
		if p.text {
			dst = k.Text
		}
		for j := range d.Fixups {
			x := &d.Fixups[j]
			t, err := target(-1, x)
			if err != nil {
				return nil, fmt.Errorf("data %s: fixup at +%#x: %w", d.Name, x.Off, err)
			}
			if err := put(dst[p.off+x.Off:], x, t, a+uint64(x.Off)+uint64(x.Width), base); err != nil {
				return nil, fmt.Errorf("data %s: fixup at +%#x: %w", d.Name, x.Off, err)
			}
		}
	}
	if l.nUnwind > 0 {
		n := 0
		for i, fn := range m.Functions {
			for _, u := range fn.Unwind {
				info, _ := l.pkg.Blob(u.Info)
				copy(k.Text[l.infos[n]:], info)
				rf := k.Text[l.unwind+uint32(12*n):]
				// RVAs relative to the text region (the registered base).
				binary.LittleEndian.PutUint32(rf, l.funcs[i].off+u.Begin)
				binary.LittleEndian.PutUint32(rf[4:], l.funcs[i].off+u.End)
				binary.LittleEndian.PutUint32(rf[8:], l.infos[n])
				n++
			}
		}
		k.Unwind.Table, k.Unwind.Base, k.Unwind.Count = text+uint64(l.unwind), text, n
	}
	for _, fn := range m.Functions {
		if fn.Site == nil {
			continue
		}
		s, err := siteWrite(fn, funcAddr[fn.NewRVA], base, preferred, l.is64)
		if err != nil {
			return nil, err
		}
		k.Sites = append(k.Sites, s)
	}
	k.Record = newRecord(l.pkg, k)
	hdr, err := k.Record.Marshal()
	if err != nil {
		return nil, err
	}
	if len(hdr) > len(k.Header) {
		return nil, fmt.Errorf("internal error: record of %d bytes over its %d-byte header", len(hdr), len(k.Header))
	}
	copy(k.Header, hdr)
	return k, nil
}

func isRelative(kind string) bool {
	return kind == "rel8" || kind == "rel32" || kind == "call32" || kind == "rip32"
}

// put writes the value of one fixup: t is its target's address, next the
// address of the end of its instruction.
func put(field []byte, x *pkgformat.Fixup, t, next, base uint64) error {
	if len(field) < int(x.Width) {
		return fmt.Errorf("field runs past its blob")
	}
	var v int64
	switch x.Kind {
	case "rel8", "rel32", "call32", "rip32":
		v = int64(t - next)
	case "abs32", "abs64":
		v = int64(t)
		if x.Width == 4 && t > math.MaxUint32 {
			return fmt.Errorf("target %#x does not fit a 32-bit address", t)
		}
		putN(field, int(x.Width), t)
		return nil
	case "imagebase32":
		if t < base || t-base > math.MaxInt32 {
			return fmt.Errorf("target %#x is not within 2 GiB above the module", t)
		}
		v = int64(t - base)
	default:
		return fmt.Errorf("unknown fixup kind %q", x.Kind)
	}
	switch x.Width {
	case 1:
		if v != int64(int8(v)) {
			return fmt.Errorf("target %#x is out of rel8 range", t)
		}
	case 4:
		if v != int64(int32(v)) {
			return fmt.Errorf("target %#x is beyond ±2 GiB", t)
		}
	}
	putN(field, int(x.Width), uint64(v))
	return nil
}

func putN(b []byte, n int, v uint64) {
	for i := 0; i < n; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func (l *Layout) putAddr(b []byte, a uint64) {
	if l.is64 {
		binary.LittleEndian.PutUint64(b, a)
	} else {
		binary.LittleEndian.PutUint32(b, uint32(a))
	}
}

// siteWrite computes the jump written at fn's site to its new code at to.
func siteWrite(fn pkgformat.Function, to, base, preferred uint64, is64 bool) (SiteWrite, error) {
	s := fn.Site
	orig, err := hex.DecodeString(s.Original)
	if err != nil {
		return SiteWrite{}, fmt.Errorf("function %s: site bytes: %w", fn.Name, err)
	}
	if orig, err = relocate(orig, s.Relocs, base-preferred, is64); err != nil {
		return SiteWrite{}, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	addr := base + uint64(s.RVA)
	w := SiteWrite{Func: fn.Name, Method: s.Method, Addr: addr, Old: orig}
	jmp := func(at uint64) ([]byte, bool) {
		d := int64(to - (at + 5))
		if d != int64(int32(d)) {
			return nil, false
		}
		b := []byte{0xE9, 0, 0, 0, 0}
		binary.LittleEndian.PutUint32(b[1:], uint32(int32(d)))
		return b, true
	}
	switch s.Method {
	case "hotpatch-pad":
		if len(orig) != 7 {
			return w, fmt.Errorf("function %s: hotpatch-pad site holds %d bytes, want 7", fn.Name, len(orig))
		}
		j, ok := jmp(addr)
		if !ok {
			return w, fmt.Errorf("function %s: the patch area is beyond ±2 GiB of the hot-patch padding", fn.Name)
		}
		w.New = append(j, 0xEB, 0xF9) // the padding jump, then jmp $-5 at the entry
		w.Guard = [2]uint64{addr, addr + 5 + uint64(s.Cover)}
	case "jmp-rel32":
		if len(orig) != 5 {
			return w, fmt.Errorf("function %s: jmp-rel32 site holds %d bytes, want 5", fn.Name, len(orig))
		}
		j, ok := jmp(addr)
		if !ok {
			// An absolute jump would need 14 bytes of whole instructions
			// with no branch target inside, which the site was not chosen
			// for; and the carried code's rel32 references to the module
			// need the area within ±2 GiB anyway.
			return w, fmt.Errorf("function %s: the patch area is beyond ±2 GiB of the entry", fn.Name)
		}
		w.New = j
		w.Guard = [2]uint64{addr, addr + uint64(max(s.Cover, 5))}
	default:
		return w, fmt.Errorf("function %s: unknown trampoline method %q", fn.Name, s.Method)
	}
	return w, nil
}

// relocate returns a copy of the file bytes b with delta added to the
// base-relocated fields at offs, as the loader does when it rebases. A
// field that starts before b is refused when delta is not 0: its low
// bytes, which carry into b, are not in b.
func relocate(b []byte, offs []int, delta uint64, is64 bool) ([]byte, error) {
	out := append([]byte(nil), b...)
	if delta == 0 {
		return out, nil
	}
	w := 4
	if is64 {
		w = 8
	}
	for _, off := range offs {
		if off < 0 {
			return nil, fmt.Errorf("a relocated field starts %d bytes before the site and the module is rebased", -off)
		}
		// Low bytes of a sum depend only on the low bytes of its operands,
		// so a field that runs past b is relocated in the part b holds.
		var field [8]byte
		copy(field[:w], out[off:])
		v := binary.LittleEndian.Uint64(field[:]) + delta
		for i := 0; i < w && off+i < len(out); i++ {
			out[off+i] = byte(v >> (8 * i))
		}
	}
	return out, nil
}
