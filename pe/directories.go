package pe

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	spe "github.com/saferwall/pe"
	slog "github.com/saferwall/pe/log"
)

// RichHeader is the decoded Rich header: the compilers and linkers that
// contributed objects to the image.
type RichHeader struct {
	Entries []RichEntry
}

// RichEntry is one @comp.id record of the Rich header.
type RichEntry struct {
	ProdID  uint16 // product (tool) id
	Build   uint16 // tool build number, e.g. 34435
	Count   uint32 // number of objects
	Product string // product name as known to saferwall ("Utc1900_C", ...)
}

// Linker returns the build number of the newest linker entry, or 0.
func (r *RichHeader) Linker() uint16 {
	var b uint16
	for _, e := range r.Entries {
		if strings.HasPrefix(e.Product, "Linker") && e.Build > b {
			b = e.Build
		}
	}
	return b
}

// DebugEntry is one IMAGE_DEBUG_DIRECTORY entry. For CodeView entries with
// an RSDS record the PDB path, GUID and age are filled in.
type DebugEntry struct {
	Type          uint32
	TypeName      string // "codeview", "pogo", "repro", ...
	TimeDateStamp uint32
	SizeOfData    uint32
	RVA           uint32 // AddressOfRawData: where the entry's data is mapped, 0 if not mapped
	PDBPath       string // CodeView PDB file name
	PDBGUID       string // {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}, upper-case hex, zero-padded
	PDBAge        uint32
}

// LoadConfig holds the IMAGE_LOAD_CONFIG_DIRECTORY fields the image model
// uses. Fields beyond the directory's declared Size are zero.
type LoadConfig struct {
	Size                uint32
	SecurityCookie      uint64   // VA of the /GS cookie
	SEHandlers          []uint32 // SafeSEH handler RVAs (x86)
	GuardFlags          uint32
	GuardCFFunctions    []uint32 // CFG valid call target RVAs
	CHPEMetadata        uint64   // non-zero on ARM64EC / CHPE hybrids
	HotPatchTableOffset uint32
}

// TLS is the TLS directory. Addresses are VAs as stored in the image; the
// callbacks are converted to RVAs.
type TLS struct {
	StartAddressOfRawData uint64
	EndAddressOfRawData   uint64
	AddressOfIndex        uint64
	AddressOfCallBacks    uint64
	SizeOfZeroFill        uint32
	Characteristics       uint32
	Callbacks             []uint32 // callback RVAs, in table order
}

// Export is one exported symbol.
type Export struct {
	Name      string // "" for ordinal-only exports
	Ordinal   uint32
	RVA       uint32 // 0 for forwarders
	Forwarder string // "OTHER.Func" for forwarded exports
}

// Import is the import (or delay import) descriptor of one DLL.
type Import struct {
	DLL   string
	Delay bool
	Funcs []ImportFunc
}

// ImportFunc is one imported function and its IAT slot.
type ImportFunc struct {
	Name    string // "" when imported by ordinal
	Ordinal uint32 // set when imported by ordinal
	Slot    uint32 // RVA of the IAT slot the loader fills
}

// ImportSlot names the import an IAT slot holds.
type ImportSlot struct {
	DLL     string
	Name    string
	Ordinal uint32
	Delay   bool
}

// String returns "dll!name" (lower-case DLL name) or "dll!#ordinal".
func (s ImportSlot) String() string {
	dll := strings.ToLower(s.DLL)
	if s.Name != "" {
		return dll + "!" + s.Name
	}
	return fmt.Sprintf("%s!#%d", dll, s.Ordinal)
}

// Reloc is one base relocation.
type Reloc struct {
	RVA  uint32
	Type uint8 // IMAGE_REL_BASED_HIGHLOW (3), IMAGE_REL_BASED_DIR64 (10), ...
}

// Base relocation types.
const (
	IMAGE_REL_BASED_ABSOLUTE = 0
	IMAGE_REL_BASED_HIGHLOW  = 3
	IMAGE_REL_BASED_DIR64    = 10
)

// Symbol is a named address: a COFF symbol, a link-map entry or a PDB data
// object or public.
type Symbol struct {
	Name   string
	RVA    uint32
	Func   bool   // a function (COFF type 0x20, or a map entry in code)
	Static bool   // file-local (COFF storage class STATIC, PDB S_LDATA32)
	Source string // "coff", "map" or "pdb"
	Size   uint32 // extent in bytes when the source says (PDB data objects); 0 when unknown
}

// captureLogger turns saferwall's log output into warnings.
type captureLogger struct{ f *File }

func (l captureLogger) Log(level slog.Level, keyvals ...any) error {
	if level < slog.LevelWarn {
		return nil
	}
	var parts []string
	for i := 0; i+1 < len(keyvals); i += 2 {
		parts = append(parts, fmt.Sprint(keyvals[i+1]))
	}
	l.f.warnf("pe parser: %s", strings.Join(parts, " "))
	return nil
}

func (f *File) parseDirectories() error {
	if err := f.checkCLR(); err != nil {
		return err
	}
	f.parseLoadConfig()
	if f.LoadConfig != nil && f.LoadConfig.CHPEMetadata != 0 {
		kind := "ARM64EC"
		if !f.Is64 {
			kind = "CHPE x86"
		}
		return &UnsupportedError{What: fmt.Sprintf("unsupported machine %s hybrid (%#x with CHPE metadata): hpbuild patches x86 and x64 code only", kind, uint16(f.Machine))}
	}
	f.parseTLS()
	f.parseDebug()
	f.parseWithSaferwall()
	f.parsePdata()
	f.parseEHFrame()
	return nil
}

// checkCLR refuses IL-only .NET assemblies.
func (f *File) checkCLR() error {
	dir := f.Directories[IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR]
	if dir.VirtualAddress == 0 {
		return nil
	}
	b := f.Bytes(dir.VirtualAddress, 20)
	if len(b) < 20 {
		f.warnf("CLR header at RVA %#x is not in the file", dir.VirtualAddress)
		return nil
	}
	flags := binary.LittleEndian.Uint32(b[16:])
	if flags&1 != 0 { // COMIMAGE_FLAGS_ILONLY
		return &UnsupportedError{What: ".NET IL-only assembly: no native code to patch"}
	}
	f.warnf(".NET mixed-mode assembly: only its native code is modelled")
	return nil
}

func (f *File) parseLoadConfig() {
	dir := f.Directories[IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG]
	if dir.VirtualAddress == 0 {
		return
	}
	b := f.Bytes(dir.VirtualAddress, 4)
	if len(b) < 4 {
		f.warnf("load config directory at RVA %#x is not in the file", dir.VirtualAddress)
		return
	}
	size := binary.LittleEndian.Uint32(b)
	if size > 0x1000 {
		f.warnf("load config Size %#x is implausible; reading the first 0x1000 bytes", size)
		size = 0x1000
	}
	b = f.Bytes(dir.VirtualAddress, int(size))
	if uint32(len(b)) < size {
		f.warnf("load config directory truncated: %d of %d bytes in the file", len(b), size)
		size = uint32(len(b))
		b = b[:size]
	}
	lc := &LoadConfig{Size: size}
	u32 := func(off int) uint32 {
		if off+4 > len(b) {
			return 0
		}
		return binary.LittleEndian.Uint32(b[off:])
	}
	ptr := func(off int) uint64 {
		if f.Is64 {
			if off+8 > len(b) {
				return 0
			}
			return binary.LittleEndian.Uint64(b[off:])
		}
		return uint64(u32(off))
	}
	var sehTable, sehCount, cfTable, cfCount uint64
	if f.Is64 {
		lc.SecurityCookie = ptr(88)
		cfTable, cfCount = ptr(128), ptr(136)
		lc.GuardFlags = u32(144)
		lc.CHPEMetadata = ptr(200)
		lc.HotPatchTableOffset = u32(240)
	} else {
		lc.SecurityCookie = ptr(60)
		sehTable, sehCount = ptr(64), ptr(68)
		cfTable, cfCount = ptr(80), ptr(84)
		lc.GuardFlags = u32(88)
		lc.CHPEMetadata = ptr(124)
		lc.HotPatchTableOffset = u32(148)
	}
	if sehTable != 0 && sehCount != 0 {
		rva, ok := f.vaToRVA(sehTable)
		if !ok || sehCount > uint64(f.SizeOfImage)/4 {
			f.warnf("SafeSEH table %#x (%d entries) is outside the image", sehTable, sehCount)
		} else {
			tb := f.Bytes(rva, int(sehCount*4))
			for i := 0; i+4 <= len(tb); i += 4 {
				lc.SEHandlers = append(lc.SEHandlers, binary.LittleEndian.Uint32(tb[i:]))
			}
			if uint64(len(lc.SEHandlers)) < sehCount {
				f.warnf("SafeSEH table truncated: %d of %d entries in the file", len(lc.SEHandlers), sehCount)
			}
		}
	}
	if cfTable != 0 && cfCount != 0 {
		stride := uint64(4 + (lc.GuardFlags>>28)&0xf)
		rva, ok := f.vaToRVA(cfTable)
		if !ok || cfCount > uint64(f.SizeOfImage)/stride {
			f.warnf("CFG function table %#x (%d entries) is outside the image", cfTable, cfCount)
		} else {
			tb := f.Bytes(rva, int(cfCount*stride))
			for i := uint64(0); i+4 <= uint64(len(tb)); i += stride {
				lc.GuardCFFunctions = append(lc.GuardCFFunctions, binary.LittleEndian.Uint32(tb[i:]))
			}
			if uint64(len(lc.GuardCFFunctions)) < cfCount {
				f.warnf("CFG function table truncated: %d of %d entries in the file", len(lc.GuardCFFunctions), cfCount)
			}
		}
	}
	f.LoadConfig = lc
}

const maxTLSCallbacks = 4096

func (f *File) parseTLS() {
	dir := f.Directories[IMAGE_DIRECTORY_ENTRY_TLS]
	if dir.VirtualAddress == 0 {
		return
	}
	n := 24
	if f.Is64 {
		n = 40
	}
	b := f.Bytes(dir.VirtualAddress, n)
	if len(b) < n {
		f.warnf("TLS directory at RVA %#x is not in the file", dir.VirtualAddress)
		return
	}
	t := &TLS{}
	if f.Is64 {
		t.StartAddressOfRawData = binary.LittleEndian.Uint64(b[0:])
		t.EndAddressOfRawData = binary.LittleEndian.Uint64(b[8:])
		t.AddressOfIndex = binary.LittleEndian.Uint64(b[16:])
		t.AddressOfCallBacks = binary.LittleEndian.Uint64(b[24:])
		t.SizeOfZeroFill = binary.LittleEndian.Uint32(b[32:])
		t.Characteristics = binary.LittleEndian.Uint32(b[36:])
	} else {
		t.StartAddressOfRawData = uint64(binary.LittleEndian.Uint32(b[0:]))
		t.EndAddressOfRawData = uint64(binary.LittleEndian.Uint32(b[4:]))
		t.AddressOfIndex = uint64(binary.LittleEndian.Uint32(b[8:]))
		t.AddressOfCallBacks = uint64(binary.LittleEndian.Uint32(b[12:]))
		t.SizeOfZeroFill = binary.LittleEndian.Uint32(b[16:])
		t.Characteristics = binary.LittleEndian.Uint32(b[20:])
	}
	if t.AddressOfCallBacks != 0 {
		rva, ok := f.vaToRVA(t.AddressOfCallBacks)
		if !ok {
			f.warnf("TLS callback table %#x is outside the image", t.AddressOfCallBacks)
		}
		for i := 0; ok && i < maxTLSCallbacks; i++ {
			va, ok2 := f.readPtr(rva + uint32(i*f.PtrSize()))
			if !ok2 || va == 0 {
				break
			}
			cb, ok3 := f.vaToRVA(va)
			if !ok3 {
				f.warnf("TLS callback %#x is outside the image", va)
				continue
			}
			t.Callbacks = append(t.Callbacks, cb)
		}
	}
	f.TLS = t
}

var debugTypeNames = map[uint32]string{
	1: "coff", 2: "codeview", 3: "fpo", 4: "misc", 5: "exception", 6: "fixup",
	7: "omap-to-src", 8: "omap-from-src", 9: "borland", 10: "reserved10", 11: "clsid",
	12: "vc-feature", 13: "pogo", 14: "iltcg", 15: "mpx", 16: "repro", 17: "embedded-pdb",
	19: "pdbchecksum", 20: "ex-dllcharacteristics",
}

const maxDebugEntries = 256

func (f *File) parseDebug() {
	dir := f.Directories[IMAGE_DIRECTORY_ENTRY_DEBUG]
	if dir.VirtualAddress == 0 || dir.Size == 0 {
		return
	}
	n := int(dir.Size / 28)
	if n > maxDebugEntries {
		f.warnf("debug directory has %d entries; reading %d", n, maxDebugEntries)
		n = maxDebugEntries
	}
	b := f.Bytes(dir.VirtualAddress, n*28)
	if len(b) < n*28 {
		f.warnf("debug directory truncated: %d of %d bytes in the file", len(b), n*28)
		n = len(b) / 28
	}
	for i := 0; i < n; i++ {
		e := b[i*28:]
		de := DebugEntry{
			TimeDateStamp: binary.LittleEndian.Uint32(e[4:]),
			Type:          binary.LittleEndian.Uint32(e[12:]),
			SizeOfData:    binary.LittleEndian.Uint32(e[16:]),
			RVA:           binary.LittleEndian.Uint32(e[20:]),
		}
		de.TypeName = debugTypeNames[de.Type]
		if de.TypeName == "" {
			de.TypeName = fmt.Sprintf("type-%d", de.Type)
		}
		ptr := binary.LittleEndian.Uint32(e[24:])
		if de.Type == 2 && de.SizeOfData >= 24 && de.SizeOfData < 4096 && uint64(ptr)+uint64(de.SizeOfData) <= uint64(len(f.data)) {
			cv := f.data[ptr : ptr+de.SizeOfData]
			if string(cv[:4]) == "RSDS" {
				de.PDBGUID = formatGUID(cv[4:20])
				de.PDBAge = binary.LittleEndian.Uint32(cv[20:])
				name := cv[24:]
				if j := indexByte(name, 0); j >= 0 {
					name = name[:j]
				}
				de.PDBPath = string(name)
			}
		}
		f.Debug = append(f.Debug, de)
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// formatGUID formats a 16-byte little-endian GUID as
// {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}, every field zero-padded.
func formatGUID(g []byte) string {
	return fmt.Sprintf("{%08X-%04X-%04X-%X-%X}",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]),
		g[8:10], g[10:16])
}

// parseWithSaferwall runs saferwall/pe over the image for the exports,
// imports, delay imports, base relocations, Rich header and COFF symbols.
func (f *File) parseWithSaferwall() {
	nsym := uint32(0)
	fh := int(f.u32(0x3c)) + 4
	symPtr, symCount := f.u32(fh+8), f.u32(fh+12)
	if symPtr != 0 && symCount != 0 {
		if uint64(symPtr)+uint64(symCount)*18 > uint64(len(f.data)) {
			f.warnf("COFF symbol table (%d symbols at offset %#x) extends past end of file; symbols ignored", symCount, symPtr)
		} else {
			nsym = symCount
		}
	}
	opts := &spe.Options{
		Logger:                     captureLogger{f},
		DisableCertValidation:      true,
		DisableSignatureValidation: true,
		OmitExceptionDirectory:     true,
		OmitResourceDirectory:      true,
		OmitSecurityDirectory:      true,
		OmitDebugDirectory:         true,
		OmitArchitectureDirectory:  true,
		OmitGlobalPtrDirectory:     true,
		OmitTLSDirectory:           true,
		OmitLoadConfigDirectory:    true,
		OmitBoundImportDirectory:   true,
		OmitIATDirectory:           true,
		OmitCLRHeaderDirectory:     true,
		OmitCLRMetadata:            true,
		MaxCOFFSymbolsCount:        max(nsym, 1),
		MaxRelocEntriesCount:       0x1000,
	}
	if nsym == 0 {
		opts.MaxCOFFSymbolsCount = 1 // symbol table skipped (see above)
	}
	var sp *spe.File
	func() {
		defer func() {
			if r := recover(); r != nil {
				f.warnf("pe parser: recovered from a crash: %v", r)
				sp = nil
			}
		}()
		var err error
		sp, err = spe.NewBytes(f.data, opts)
		if err != nil {
			f.warnf("pe parser: %v", err)
			sp = nil
			return
		}
		if err := sp.Parse(); err != nil {
			f.warnf("pe parser: %v", err)
		}
	}()
	if sp == nil {
		return
	}
	for _, a := range sp.Anomalies {
		f.warnf("anomaly: %s", a)
	}
	f.convertExports(sp)
	f.convertImports(sp)
	f.convertRelocs(sp)
	f.convertRich(sp)
	if nsym > 0 {
		f.convertSymbols(sp, nsym)
	}
}

func (f *File) convertExports(sp *spe.File) {
	dir := f.Directories[IMAGE_DIRECTORY_ENTRY_EXPORT]
	if dir.VirtualAddress == 0 {
		return
	}
	f.ExportName = sp.Export.Name
	for _, e := range sp.Export.Functions {
		ex := Export{Name: e.Name, Ordinal: e.Ordinal, Forwarder: e.Forwarder}
		if ex.Forwarder == "" {
			ex.RVA = e.FunctionRVA
		}
		if ex.Forwarder == "" && ex.RVA == 0 {
			continue // unused slot in the address table
		}
		f.Exports = append(f.Exports, ex)
	}
	sort.SliceStable(f.Exports, func(i, j int) bool { return f.Exports[i].Ordinal < f.Exports[j].Ordinal })
	if want := sp.Export.Struct.NumberOfNames; int(want) > 0 {
		named := 0
		for _, e := range f.Exports {
			if e.Name != "" {
				named++
			}
		}
		if named < int(want) {
			f.warnf("export directory declares %d names, %d could be read", want, named)
		}
	}
}

func (f *File) convertImports(sp *spe.File) {
	add := func(dll string, delay bool, funcs []spe.ImportFunction) {
		imp := Import{DLL: dll, Delay: delay}
		for _, fn := range funcs {
			ifn := ImportFunc{Name: fn.Name, Slot: fn.ThunkRVA}
			if fn.ByOrdinal {
				ifn.Name = ""
				ifn.Ordinal = fn.Ordinal
			}
			imp.Funcs = append(imp.Funcs, ifn)
		}
		f.Imports = append(f.Imports, imp)
	}
	for _, imp := range sp.Imports {
		add(imp.Name, false, imp.Functions)
	}
	for _, imp := range sp.DelayImports {
		add(imp.Name, true, imp.Functions)
	}
	if f.Directories[IMAGE_DIRECTORY_ENTRY_IMPORT].VirtualAddress != 0 && len(sp.Imports) == 0 {
		f.warnf("import directory present but no import could be read")
	}
	f.slots = map[uint32]int{}
	for _, imp := range f.Imports {
		for _, fn := range imp.Funcs {
			if fn.Slot == 0 {
				continue
			}
			if _, dup := f.slots[fn.Slot]; dup {
				continue
			}
			f.slots[fn.Slot] = len(f.importSlots)
			f.importSlots = append(f.importSlots, ImportSlot{DLL: imp.DLL, Name: fn.Name, Ordinal: fn.Ordinal, Delay: imp.Delay})
		}
	}
}

// ImportAt returns the import held by the IAT slot at rva.
func (f *File) ImportAt(rva uint32) (ImportSlot, bool) {
	i, ok := f.slots[rva]
	if !ok {
		return ImportSlot{}, false
	}
	return f.importSlots[i], true
}

func (f *File) convertRelocs(sp *spe.File) {
	n := 0
	for _, blk := range sp.Relocations {
		n += len(blk.Entries)
	}
	f.Relocs = make([]Reloc, 0, n) // at most: ABSOLUTE entries are padding
	for _, blk := range sp.Relocations {
		page := blk.Data.VirtualAddress
		for _, e := range blk.Entries {
			t := uint8(e.Type)
			if t == IMAGE_REL_BASED_ABSOLUTE {
				continue
			}
			f.Relocs = append(f.Relocs, Reloc{RVA: page + uint32(e.Offset), Type: t})
		}
	}
	sort.Slice(f.Relocs, func(i, j int) bool { return f.Relocs[i].RVA < f.Relocs[j].RVA })
	if f.Directories[IMAGE_DIRECTORY_ENTRY_BASERELOC].Size > 8 && len(f.Relocs) == 0 {
		f.warnf("base relocation directory present but no relocation could be read")
	}
}

// RelocAt reports the type of the base relocation that covers the field at
// rva, if any.
func (f *File) RelocAt(rva uint32) (uint8, bool) {
	rs := f.Relocs
	i := sort.Search(len(rs), func(i int) bool { return rs[i].RVA >= rva })
	if i < len(rs) && rs[i].RVA == rva {
		return rs[i].Type, true
	}
	return 0, false
}

// Width returns the size in bytes of the field a relocation covers.
func (r Reloc) Width() int {
	if r.Type == IMAGE_REL_BASED_DIR64 {
		return 8
	}
	return 4
}

// RelocsIn returns the relocations whose field starts in [rva, rva+size),
// sorted by RVA (a subslice of Relocs).
func (f *File) RelocsIn(rva, size uint32) []Reloc {
	rs := f.Relocs
	i := sort.Search(len(rs), func(i int) bool { return rs[i].RVA >= rva })
	j := i
	for j < len(rs) && rs[j].RVA < rva+size {
		j++
	}
	return rs[i:j]
}

// RelocsOverlapping returns the relocations whose field overlaps [rva,
// rva+size), including one that starts before rva.
func (f *File) RelocsOverlapping(rva, size uint32) []Reloc {
	start := rva - min(rva, 7)
	var out []Reloc
	for _, r := range f.RelocsIn(start, rva+size-start) {
		if r.RVA+uint32(r.Width()) > rva {
			out = append(out, r)
		}
	}
	return out
}

func (f *File) convertRich(sp *spe.File) {
	if len(sp.RichHeader.CompIDs) == 0 {
		return
	}
	r := &RichHeader{}
	for _, c := range sp.RichHeader.CompIDs {
		r.Entries = append(r.Entries, RichEntry{ProdID: c.ProdID, Build: c.MinorCV, Count: c.Count, Product: spe.ProdIDtoStr(c.ProdID)})
	}
	f.Rich = r
}

// COFF storage classes.
const (
	IMAGE_SYM_CLASS_EXTERNAL = 2
	IMAGE_SYM_CLASS_STATIC   = 3
	IMAGE_SYM_CLASS_LABEL    = 6
	IMAGE_SYM_CLASS_FUNCTION = 101
	IMAGE_SYM_DTYPE_FUNCTION = 0x20
)

func (f *File) convertSymbols(sp *spe.File, nsym uint32) {
	tab := sp.COFF.SymbolTable
	if uint32(len(tab)) < nsym {
		f.warnf("COFF symbol table: %d of %d records could be read", len(tab), nsym)
	}
	for i := 0; i < len(tab); i++ {
		s := tab[i]
		aux := int(s.NumberOfAuxSymbols)
		sec := int(s.SectionNumber)
		if sec <= 0 || sec > len(f.Sections) {
			i += aux
			continue
		}
		if s.StorageClass != IMAGE_SYM_CLASS_EXTERNAL && s.StorageClass != IMAGE_SYM_CLASS_STATIC {
			i += aux
			continue
		}
		name, err := s.String(sp)
		if err != nil || name == "" {
			i += aux
			continue
		}
		secHdr := &f.Sections[sec-1]
		// Section symbols (".text" with an aux record describing the
		// section) name no object.
		if s.StorageClass == IMAGE_SYM_CLASS_STATIC && s.Value == 0 && aux > 0 && name == secHdr.Name {
			i += aux
			continue
		}
		i += aux
		rva := secHdr.VirtualAddress + s.Value
		fn := s.Type&0xf0 == IMAGE_SYM_DTYPE_FUNCTION || (s.Type>>4)&0x3 == 2
		f.Symbols = append(f.Symbols, Symbol{Name: name, RVA: rva, Func: fn, Static: s.StorageClass == IMAGE_SYM_CLASS_STATIC, Source: "coff"})
	}
	sortSymbols(f.Symbols)
}

func sortSymbols(s []Symbol) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].RVA != s[j].RVA {
			return s[i].RVA < s[j].RVA
		}
		return s[i].Name < s[j].Name
	})
}

// MaskRelocs zeroes the base-relocated fields in b, which holds fn's code
// as AppendCode returns it (from the file or read from a process): they
// differ where the image was rebased, so a body's digest is taken without
// them.
func (f *File) MaskRelocs(fn *Function, b []byte) []byte {
	var off uint32
	for _, p := range fn.Parts() {
		for _, r := range f.RelocsOverlapping(p.RVA, p.Size) {
			for k := uint32(0); k < uint32(r.Width()); k++ {
				if a := r.RVA + k; a >= p.RVA && a < p.RVA+p.Size && off+a-p.RVA < uint32(len(b)) {
					b[off+a-p.RVA] = 0
				}
			}
		}
		off += p.Size
	}
	return b
}
