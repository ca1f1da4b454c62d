package pdb

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// Fixed stream indexes of a PDB 7.0 file.
const (
	streamPDB = 1 // PDB info: version, signature, age, GUID
	streamTPI = 2 // type records
	streamDBI = 3 // debug information: modules, contributions, stream indexes
)

// maxPDBFileSize bounds the files Open reads into memory.
const maxPDBFileSize = 2 << 30

// File is what hpbuild reads from a PDB.
type File struct {
	GUID    [16]byte // PDB info stream GUID, as stored (little-endian fields)
	Age     uint32   // PDB info stream age
	Machine uint16   // DBI machine (IMAGE_FILE_MACHINE_*), 0 when unknown

	Sections      []Section      // the image's section headers, as the linker wrote them
	Modules       []Module       // DBI modules (object files), in DBI order
	Contributions []Contribution // DBI section contributions, sorted by RVA
	Publics       []Public       // S_PUB32 records, sorted by RVA then name
	Procs         []Proc         // procedures, thunks and separated code, sorted by RVA then name
	Data          []Data         // data objects, sorted by RVA then name

	// Warnings lists records that were skipped (an address outside every
	// section, a truncated module stream, ...). Sorted, deduplicated.
	Warnings []string
}

// GUIDString formats the GUID as {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX},
// upper-case and zero-padded, the form Windows tools and the CodeView
// record of the image use.
func (f *File) GUIDString() string { return FormatGUID(f.GUID) }

// FormatGUID formats a GUID stored as in a PDB or CodeView record (three
// little-endian fields, then eight bytes) as
// {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}.
func FormatGUID(g [16]byte) string {
	return fmt.Sprintf("{%08X-%04X-%04X-%X-%X}",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]),
		g[8:10], g[10:16])
}

// Section is one image section header stored in the PDB.
type Section struct {
	Name            string
	VirtualSize     uint32
	VirtualAddress  uint32
	Characteristics uint32
}

// Module is one DBI module: an object file or import library member.
type Module struct {
	Name    string // module name (object path, or "* Linker *" and the like)
	ObjName string // object or library file name
}

// ShortName returns the base name of the module's object file, without
// directories: the name hpbuild uses to tell file-local symbols apart.
func (m *Module) ShortName() string {
	n := m.Name
	if i := strings.LastIndexAny(n, `\/`); i >= 0 {
		n = n[i+1:]
	}
	return n
}

// Contribution is one DBI section contribution: a piece of a section that
// came from one module.
type Contribution struct {
	RVA             uint32
	Size            uint32
	Module          int // index into Modules
	Characteristics uint32
}

// Public is an S_PUB32 record: a linker-visible (decorated) name.
type Public struct {
	Name     string
	RVA      uint32
	Function bool // the "function" flag (cvpsfFunction)
	Code     bool // the "code" flag (cvpsfCode)
}

// ProcKind says what kind of code record a Proc is.
type ProcKind uint8

// Proc kinds.
const (
	ProcFunction ProcKind = iota // S_GPROC32, S_LPROC32 (and the _ID and _DPC forms)
	ProcThunk                    // S_THUNK32: incremental-linking or import thunk
	ProcSepCode                  // S_SEPCODE: separated code of the procedure at ParentRVA
)

// Proc is a piece of code with an exact extent.
type Proc struct {
	Name      string // undecorated name as the compiler wrote it ("ns::Class::method")
	RVA       uint32
	Size      uint32
	Module    int  // index into Modules
	Global    bool // S_GPROC32 (external linkage), false for S_LPROC32 (static)
	Kind      ProcKind
	ParentRVA uint32 // ProcSepCode: the RVA of the procedure this code was separated from
}

// Data is a data object with its size from the type records.
type Data struct {
	Name   string
	RVA    uint32
	Size   uint32 // 0 when the type's size is unknown
	Module int    // index into Modules: the module whose record or section contribution holds it; -1 if none
	Global bool   // S_GDATA32 / S_GTHREAD32
	TLS    bool   // S_GTHREAD32 / S_LTHREAD32: RVA is in the TLS template
	Type   uint32 // type index
}

// Open reads and parses the PDB at path.
func Open(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > maxPDBFileSize {
		return nil, fmt.Errorf("%s: pdb: file too large (%d bytes, limit %d)", path, st.Size(), int64(maxPDBFileSize))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ReadIdentity reads only the GUID and age of the PDB held in data: what is
// needed to decide whether it belongs to an image before parsing the rest.
func ReadIdentity(data []byte) (guid [16]byte, age uint32, err error) {
	m, err := openMSF(data)
	if err != nil {
		return guid, 0, err
	}
	return readInfo(m)
}

func readInfo(m *msf) (guid [16]byte, age uint32, err error) {
	s, err := m.stream(streamPDB)
	if err != nil {
		return guid, 0, fmt.Errorf("pdb info stream: %w", err)
	}
	if len(s) < 28 {
		return guid, 0, streamErr(streamPDB, len(s), "pdb info stream too short for a GUID: stream ends", nil)
	}
	if v := binary.LittleEndian.Uint32(s); v < 20000404 {
		return guid, 0, streamErr(streamPDB, 0, "pdb info stream version older than VC70 (no GUID):", v)
	}
	copy(guid[:], s[12:28])
	return guid, binary.LittleEndian.Uint32(s[8:]), nil
}

// Parse parses a PDB held in memory. The slice is retained only during
// the call: no result aliases it.
func Parse(data []byte) (f *File, err error) {
	m, err := openMSF(data)
	if err != nil {
		return nil, err
	}
	f = &File{}
	if f.GUID, f.Age, err = readInfo(m); err != nil {
		return nil, err
	}
	p := &parser{m: m, f: f, warned: map[string]bool{}}
	if err := p.dbi(); err != nil {
		return nil, err
	}
	slices.SortFunc(f.Contributions, func(a, b Contribution) int {
		return cmp.Or(cmp.Compare(a.RVA, b.RVA), cmp.Compare(a.Module, b.Module))
	})
	slices.SortFunc(f.Publics, func(a, b Public) int {
		return cmp.Or(cmp.Compare(a.RVA, b.RVA), strings.Compare(a.Name, b.Name))
	})
	// lld files the entry point's public twice; one record per name and
	// address is enough.
	f.Publics = slices.CompactFunc(f.Publics, func(a, b Public) bool { return a.RVA == b.RVA && a.Name == b.Name })
	slices.SortFunc(f.Procs, func(a, b Proc) int {
		return cmp.Or(cmp.Compare(a.RVA, b.RVA), strings.Compare(a.Name, b.Name), cmp.Compare(a.Module, b.Module), cmp.Compare(a.Kind, b.Kind))
	})
	f.Procs = slices.CompactFunc(f.Procs, func(a, b Proc) bool {
		return a.RVA == b.RVA && a.Name == b.Name && a.Size == b.Size && a.Kind == b.Kind
	})
	slices.SortFunc(f.Data, func(a, b Data) int {
		return cmp.Or(cmp.Compare(a.RVA, b.RVA), strings.Compare(a.Name, b.Name), cmp.Compare(a.Module, b.Module))
	})
	f.Data = compactData(f.Data)
	f.dataModules()
	slices.Sort(f.Warnings)
	return f, nil
}

// compactData merges the records of one object seen twice (a module's
// S_LDATA32 and its copy in the global symbol stream): the module record,
// which says which object file, is kept.
func compactData(ds []Data) []Data {
	out := ds[:0]
	for _, d := range ds {
		if n := len(out); n > 0 && out[n-1].RVA == d.RVA && out[n-1].Name == d.Name && out[n-1].TLS == d.TLS {
			prev := &out[n-1]
			if prev.Module < 0 && d.Module >= 0 {
				prev.Module = d.Module
			}
			prev.Global = prev.Global || d.Global
			if prev.Size == 0 {
				prev.Size = d.Size
			}
			continue
		}
		out = append(out, d)
	}
	return out
}

// dataModules gives global data objects, known only from the global
// symbol stream, the module whose section contribution holds them.
func (f *File) dataModules() {
	cs := f.Contributions
	for i := range f.Data {
		d := &f.Data[i]
		if d.Module >= 0 || d.TLS {
			continue
		}
		// Contributions do not overlap, but empty ones share a start with
		// the next: look at every one starting where the last does.
		last := sort.Search(len(cs), func(j int) bool { return cs[j].RVA > d.RVA }) - 1
		for j := last; j >= 0 && cs[j].RVA == cs[last].RVA; j-- {
			if d.RVA < cs[j].RVA+cs[j].Size {
				d.Module = cs[j].Module
				break
			}
		}
	}
}

// parser holds parsing state.
type parser struct {
	m      *msf
	f      *File
	tpi    *typeTable
	warned map[string]bool
}

func (p *parser) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !p.warned[msg] {
		p.warned[msg] = true
		p.f.Warnings = append(p.f.Warnings, msg)
	}
}

// DBI header layout (DbiStreamHeader, 64 bytes).
const dbiHeaderSize = 64

// Section contribution substream versions.
const (
	scVer60 = 0xeffe0000 + 19970605
	scVer2  = 0xeffe0000 + 20140516
)

// Optional debug header stream slots.
const (
	dbgOMAPToSrc    = 3
	dbgOMAPFromSrc  = 4
	dbgSectionHdr   = 5
	dbgNumOptStream = 11
)

func (p *parser) dbi() error {
	s, err := p.m.stream(streamDBI)
	if err != nil {
		return fmt.Errorf("dbi stream: %w", err)
	}
	if len(s) < dbiHeaderSize {
		return streamErr(streamDBI, len(s), "dbi stream too short for its header: stream ends", nil)
	}
	if sig := int32(binary.LittleEndian.Uint32(s)); sig != -1 {
		return streamErr(streamDBI, 0, "dbi stream: unsupported version signature", uint32(sig))
	}
	symRecords := int(binary.LittleEndian.Uint16(s[20:]))
	var sizes [7]int64
	// ModInfo, SectionContribution, SectionMap, SourceInfo, TypeServerMap,
	// then (after MFCTypeServerIndex) OptionalDbgHeader, ECSubstream.
	for i, off := range []int{24, 28, 32, 36, 40, 48, 52} {
		sizes[i] = int64(int32(binary.LittleEndian.Uint32(s[off:])))
		if sizes[i] < 0 {
			return streamErr(streamDBI, off, "dbi stream: negative substream size", uint32(sizes[i]))
		}
	}
	p.f.Machine = binary.LittleEndian.Uint16(s[58:])
	total := int64(dbiHeaderSize)
	for _, n := range sizes {
		total += n
	}
	if total > int64(len(s)) {
		return streamErr(streamDBI, 24, fmt.Sprintf("dbi substreams (%d bytes) extend past the stream (%d bytes)", total, len(s)), nil)
	}
	off := int64(dbiHeaderSize)
	sub := func(i int) ([]byte, int) {
		start := off
		for j := 0; j < i; j++ {
			start += sizes[j]
		}
		return s[start : start+sizes[i]], int(start)
	}
	modInfo, modOff := sub(0)
	contribs, contribOff := sub(1)
	// The optional debug header's size comes before the EC substream's in
	// the header, but the EC substream comes first in the stream.
	dbgStart := off + sizes[0] + sizes[1] + sizes[2] + sizes[3] + sizes[4] + sizes[6]
	dbgHdr := s[dbgStart : dbgStart+sizes[5]]

	if err := p.sections(dbgHdr); err != nil {
		return err
	}
	if err := p.modules(modInfo, modOff); err != nil {
		return err
	}
	if err := p.contributions(contribs, contribOff); err != nil {
		return err
	}
	if p.m.present(streamTPI) {
		t, err := p.m.stream(streamTPI)
		if err != nil {
			return fmt.Errorf("tpi stream: %w", err)
		}
		if p.tpi, err = newTypeTable(t); err != nil {
			return err
		}
	}
	if symRecords != 0xffff && p.m.present(symRecords) {
		rec, err := p.m.stream(symRecords)
		if err != nil {
			return fmt.Errorf("symbol record stream: %w", err)
		}
		if err := p.symbols(symRecords, rec, 0, -1); err != nil {
			return err
		}
	}
	return p.moduleSymbols(modInfo)
}

// sections reads the image section headers named by the optional debug
// header.
func (p *parser) sections(dbgHdr []byte) error {
	slot := func(i int) int {
		if 2*i+2 > len(dbgHdr) {
			return -1
		}
		v := binary.LittleEndian.Uint16(dbgHdr[2*i:])
		if v == 0xffff {
			return -1
		}
		return int(v)
	}
	if i := slot(dbgOMAPFromSrc); i >= 0 && p.m.present(i) && p.m.sizes[i] > 0 {
		return streamErr(streamDBI, -1, "the image was rearranged after linking (OMAP address map present); such PDBs are not supported", nil)
	}
	i := slot(dbgSectionHdr)
	if i < 0 || !p.m.present(i) {
		return streamErr(streamDBI, -1, "no section header stream: addresses cannot be converted to RVAs", nil)
	}
	s, err := p.m.stream(i)
	if err != nil {
		return fmt.Errorf("section header stream: %w", err)
	}
	if len(s)%40 != 0 || len(s)/40 > 65535 {
		return streamErr(i, 0, fmt.Sprintf("section header stream of %d bytes is not a whole number of 40-byte headers", len(s)), nil)
	}
	p.f.Sections = make([]Section, len(s)/40)
	for k := range p.f.Sections {
		h := s[40*k:]
		name := h[:8]
		if j := bytes.IndexByte(name, 0); j >= 0 {
			name = name[:j]
		}
		p.f.Sections[k] = Section{
			Name:            string(name),
			VirtualSize:     binary.LittleEndian.Uint32(h[8:]),
			VirtualAddress:  binary.LittleEndian.Uint32(h[12:]),
			Characteristics: binary.LittleEndian.Uint32(h[36:]),
		}
	}
	return nil
}

// rva converts a segment:offset address (segment = 1-based section
// number) to an RVA.
func (p *parser) rva(seg uint16, off uint32) (uint32, bool) {
	if seg == 0 || int(seg) > len(p.f.Sections) {
		return 0, false
	}
	s := &p.f.Sections[seg-1]
	v := uint64(s.VirtualAddress) + uint64(off)
	if v > 0xffffffff {
		return 0, false
	}
	return uint32(v), true
}

// modInfo is the part of a DBI ModInfo record parsing needs later.
type modInfo struct {
	stream   int
	symBytes uint32
}

// maxModules bounds the module count (each ModInfo record takes at least
// 64 bytes, so the substream size bounds it too).
const maxModules = 1 << 20

func (p *parser) modules(b []byte, base int) error {
	for pos := 0; pos < len(b); {
		if len(b)-pos < 64 {
			return streamErr(streamDBI, base+pos, "truncated module info record: substream ends", nil)
		}
		if len(p.f.Modules) >= maxModules {
			return streamErr(streamDBI, base+pos, "too many modules", nil)
		}
		r := b[pos:]
		rest := r[64:]
		name, n1, ok := cstring(rest)
		if !ok {
			return streamErr(streamDBI, base+pos+64, "module name not terminated", nil)
		}
		obj, n2, ok := cstring(rest[n1:])
		if !ok {
			return streamErr(streamDBI, base+pos+64+n1, "object file name not terminated", nil)
		}
		p.f.Modules = append(p.f.Modules, Module{Name: name, ObjName: obj})
		next := pos + 64 + n1 + n2
		next = (next + 3) &^ 3
		pos = min(next, len(b))
	}
	return nil
}

// moduleInfos re-reads the stream numbers from the ModInfo substream.
func moduleInfos(b []byte) []modInfo {
	var out []modInfo
	for pos := 0; pos+64 <= len(b); {
		r := b[pos:]
		out = append(out, modInfo{stream: int(binary.LittleEndian.Uint16(r[34:])), symBytes: binary.LittleEndian.Uint32(r[36:])})
		_, n1, ok1 := cstring(r[64:])
		if !ok1 {
			break
		}
		_, n2, ok2 := cstring(r[64+n1:])
		if !ok2 {
			break
		}
		pos = (pos + 64 + n1 + n2 + 3) &^ 3
	}
	return out
}

func (p *parser) contributions(b []byte, base int) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) < 4 {
		return streamErr(streamDBI, base, "truncated section contribution substream", nil)
	}
	entry := 28
	switch v := binary.LittleEndian.Uint32(b); v {
	case scVer60:
	case scVer2:
		entry = 32
	default:
		return streamErr(streamDBI, base, "unknown section contribution version", v)
	}
	b = b[4:]
	if len(b)%entry != 0 {
		p.warnf("section contribution substream has %d trailing bytes", len(b)%entry)
	}
	p.f.Contributions = make([]Contribution, 0, len(b)/entry)
	for pos := 0; pos+entry <= len(b); pos += entry {
		e := b[pos:]
		seg := binary.LittleEndian.Uint16(e)
		off := binary.LittleEndian.Uint32(e[4:])
		size := int32(binary.LittleEndian.Uint32(e[8:]))
		mod := int(binary.LittleEndian.Uint16(e[16:]))
		rva, ok := p.rva(seg, off)
		if !ok || size < 0 || mod >= len(p.f.Modules) {
			continue // the linker's own placeholder entries (section 0xffff, size -1)
		}
		p.f.Contributions = append(p.f.Contributions, Contribution{RVA: rva, Size: uint32(size), Module: mod,
			Characteristics: binary.LittleEndian.Uint32(e[12:])})
	}
	return nil
}

func (p *parser) moduleSymbols(modInfoBytes []byte) error {
	infos := moduleInfos(modInfoBytes)
	for i, mi := range infos {
		if i >= len(p.f.Modules) {
			break
		}
		if mi.stream == 0xffff || mi.symBytes == 0 {
			continue
		}
		if !p.m.present(mi.stream) {
			p.warnf("module %s: symbol stream %d is missing", p.f.Modules[i].Name, mi.stream)
			continue
		}
		s, err := p.m.stream(mi.stream)
		if err != nil {
			return fmt.Errorf("module %d (%s): %w", i, p.f.Modules[i].Name, err)
		}
		n := int(mi.symBytes)
		if n > len(s) {
			p.warnf("module %s: %d symbol bytes declared, stream %d holds %d", p.f.Modules[i].Name, n, mi.stream, len(s))
			n = len(s)
		}
		if n < 4 {
			continue
		}
		if sig := binary.LittleEndian.Uint32(s); sig != 4 {
			p.warnf("module %s: symbol stream signature %d (want 4, C13); skipped", p.f.Modules[i].Name, sig)
			continue
		}
		if err := p.symbols(mi.stream, s[:n], 4, i); err != nil {
			return err
		}
	}
	return nil
}

// CodeView symbol record kinds read here.
const (
	S_THUNK32        = 0x1102
	S_LDATA32        = 0x110c
	S_GDATA32        = 0x110d
	S_PUB32          = 0x110e
	S_LPROC32        = 0x110f
	S_GPROC32        = 0x1110
	S_LTHREAD32      = 0x1112
	S_GTHREAD32      = 0x1113
	S_SEPCODE        = 0x1132
	S_LPROC32_ID     = 0x1146
	S_GPROC32_ID     = 0x1147
	S_LPROC32_DPC    = 0x1155
	S_LPROC32_DPC_ID = 0x1156
)

// symbols walks the CodeView records in b starting at pos. module is the
// module the stream belongs to, -1 for the global symbol record stream.
func (p *parser) symbols(stream int, b []byte, pos int, module int) error {
	for pos < len(b) {
		if len(b)-pos < 4 {
			if module >= 0 {
				p.warnf("stream %d: %d stray bytes after the last symbol record", stream, len(b)-pos)
			}
			return nil
		}
		reclen := int(binary.LittleEndian.Uint16(b[pos:]))
		if reclen < 2 {
			return streamErr(stream, pos, "symbol record shorter than its kind: length", uint16(reclen))
		}
		end := pos + 2 + reclen
		if end > len(b) {
			return streamErr(stream, pos, fmt.Sprintf("symbol record of %d bytes extends past the stream (%d bytes): length", reclen, len(b)), uint16(reclen))
		}
		kind := binary.LittleEndian.Uint16(b[pos+2:])
		p.record(stream, pos, kind, b[pos+4:end], module)
		pos = end
	}
	return nil
}

// record interprets one symbol record; r is the record after its kind.
func (p *parser) record(stream, pos int, kind uint16, r []byte, module int) {
	short := func() {
		p.warnf("stream %d: symbol record %#x at offset %#x is too short (%d bytes); skipped", stream, kind, pos, len(r))
	}
	switch kind {
	case S_PUB32:
		if len(r) < 10 {
			short()
			return
		}
		flags := binary.LittleEndian.Uint32(r)
		name, _, _ := cstring(r[10:])
		rva, ok := p.rva(binary.LittleEndian.Uint16(r[8:]), binary.LittleEndian.Uint32(r[4:]))
		if !ok {
			return // absolute symbols (__ImageBase and the like) have no section
		}
		p.f.Publics = append(p.f.Publics, Public{Name: name, RVA: rva, Code: flags&1 != 0, Function: flags&2 != 0})
	case S_GDATA32, S_LDATA32, S_GTHREAD32, S_LTHREAD32:
		if len(r) < 10 {
			short()
			return
		}
		typ := binary.LittleEndian.Uint32(r)
		name, _, _ := cstring(r[10:])
		rva, ok := p.rva(binary.LittleEndian.Uint16(r[8:]), binary.LittleEndian.Uint32(r[4:]))
		if !ok {
			return
		}
		d := Data{Name: name, RVA: rva, Module: module, Type: typ,
			Global: kind == S_GDATA32 || kind == S_GTHREAD32, TLS: kind == S_GTHREAD32 || kind == S_LTHREAD32}
		if p.tpi != nil {
			d.Size = p.tpi.sizeOf(typ)
		} else if typ < 0x1000 {
			d.Size = simpleTypeSize(typ)
		}
		p.f.Data = append(p.f.Data, d)
	case S_GPROC32, S_LPROC32, S_GPROC32_ID, S_LPROC32_ID, S_LPROC32_DPC, S_LPROC32_DPC_ID:
		if module < 0 {
			return
		}
		if len(r) < 35 {
			short()
			return
		}
		size := binary.LittleEndian.Uint32(r[12:])
		name, _, _ := cstring(r[35:])
		rva, ok := p.rva(binary.LittleEndian.Uint16(r[32:]), binary.LittleEndian.Uint32(r[28:]))
		if !ok {
			p.warnf("procedure %s: address %04x:%08x is in no section; skipped", name, binary.LittleEndian.Uint16(r[32:]), binary.LittleEndian.Uint32(r[28:]))
			return
		}
		p.f.Procs = append(p.f.Procs, Proc{Name: name, RVA: rva, Size: size, Module: module,
			Global: kind == S_GPROC32 || kind == S_GPROC32_ID, Kind: ProcFunction})
	case S_THUNK32:
		if module < 0 {
			return
		}
		if len(r) < 21 {
			short()
			return
		}
		name, _, _ := cstring(r[21:])
		rva, ok := p.rva(binary.LittleEndian.Uint16(r[16:]), binary.LittleEndian.Uint32(r[12:]))
		if !ok {
			return
		}
		p.f.Procs = append(p.f.Procs, Proc{Name: name, RVA: rva, Size: uint32(binary.LittleEndian.Uint16(r[18:])),
			Module: module, Global: true, Kind: ProcThunk})
	case S_SEPCODE:
		if module < 0 {
			return
		}
		if len(r) < 28 {
			short()
			return
		}
		rva, ok1 := p.rva(binary.LittleEndian.Uint16(r[24:]), binary.LittleEndian.Uint32(r[16:]))
		parent, ok2 := p.rva(binary.LittleEndian.Uint16(r[26:]), binary.LittleEndian.Uint32(r[20:]))
		if !ok1 || !ok2 {
			return
		}
		p.f.Procs = append(p.f.Procs, Proc{RVA: rva, Size: binary.LittleEndian.Uint32(r[8:]), Module: module,
			Kind: ProcSepCode, ParentRVA: parent})
	}
}

// cstring returns the NUL-terminated string at the start of b and the
// bytes it takes with its terminator; ok is false (and the whole of b is
// the string) when there is no terminator.
func cstring(b []byte) (s string, n int, ok bool) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i]), i + 1, true
	}
	return string(b), len(b), false
}
