package pe

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Machine is the IMAGE_FILE_HEADER.Machine value.
type Machine uint16

// Machine values named in the PE/COFF specification.
const (
	IMAGE_FILE_MACHINE_I386        Machine = 0x014c
	IMAGE_FILE_MACHINE_AMD64       Machine = 0x8664
	IMAGE_FILE_MACHINE_ARM64       Machine = 0xaa64
	IMAGE_FILE_MACHINE_ARM         Machine = 0x01c0
	IMAGE_FILE_MACHINE_ARMNT       Machine = 0x01c4
	IMAGE_FILE_MACHINE_ARM64EC     Machine = 0xa641
	IMAGE_FILE_MACHINE_ARM64X      Machine = 0xa64e
	IMAGE_FILE_MACHINE_CHPE_X86    Machine = 0x3a64
	IMAGE_FILE_MACHINE_IA64        Machine = 0x0200
	IMAGE_FILE_MACHINE_EBC         Machine = 0x0ebc
	IMAGE_FILE_MACHINE_RISCV64     Machine = 0x5064
	IMAGE_FILE_MACHINE_LOONGARCH64 Machine = 0x6264
)

var machineNames = map[Machine]string{
	IMAGE_FILE_MACHINE_I386:        "i386",
	IMAGE_FILE_MACHINE_AMD64:       "amd64",
	IMAGE_FILE_MACHINE_ARM64:       "ARM64",
	IMAGE_FILE_MACHINE_ARM:         "ARM",
	IMAGE_FILE_MACHINE_ARMNT:       "ARM Thumb-2",
	IMAGE_FILE_MACHINE_ARM64EC:     "ARM64EC",
	IMAGE_FILE_MACHINE_ARM64X:      "ARM64X",
	IMAGE_FILE_MACHINE_CHPE_X86:    "CHPE x86",
	IMAGE_FILE_MACHINE_IA64:        "IA64",
	IMAGE_FILE_MACHINE_EBC:         "EFI byte code",
	IMAGE_FILE_MACHINE_RISCV64:     "RISC-V 64",
	IMAGE_FILE_MACHINE_LOONGARCH64: "LoongArch64",
	0x0166:                         "MIPS R4000",
	0x01a2:                         "Hitachi SH3",
	0x01f0:                         "PowerPC",
	0x9041:                         "M32R",
}

// String returns "amd64" or "i386" for supported machines and a descriptive
// name for the others.
func (m Machine) String() string {
	if n, ok := machineNames[m]; ok {
		return n
	}
	return fmt.Sprintf("unknown machine %#04x", uint16(m))
}

// Section characteristics used by the image model.
const (
	IMAGE_SCN_CNT_CODE               = 0x00000020
	IMAGE_SCN_CNT_INITIALIZED_DATA   = 0x00000040
	IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x00000080
	IMAGE_SCN_MEM_DISCARDABLE        = 0x02000000
	IMAGE_SCN_MEM_EXECUTE            = 0x20000000
	IMAGE_SCN_MEM_READ               = 0x40000000
	IMAGE_SCN_MEM_WRITE              = 0x80000000
)

// Data directory indexes.
const (
	IMAGE_DIRECTORY_ENTRY_EXPORT         = 0
	IMAGE_DIRECTORY_ENTRY_IMPORT         = 1
	IMAGE_DIRECTORY_ENTRY_RESOURCE       = 2
	IMAGE_DIRECTORY_ENTRY_EXCEPTION      = 3
	IMAGE_DIRECTORY_ENTRY_SECURITY       = 4
	IMAGE_DIRECTORY_ENTRY_BASERELOC      = 5
	IMAGE_DIRECTORY_ENTRY_DEBUG          = 6
	IMAGE_DIRECTORY_ENTRY_TLS            = 9
	IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG    = 10
	IMAGE_DIRECTORY_ENTRY_IAT            = 12
	IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT   = 13
	IMAGE_DIRECTORY_ENTRY_COM_DESCRIPTOR = 14
)

// Limits that bound the work done on hostile input.
const (
	maxSections       = 2048
	maxFileSize       = 1 << 31 // 2 GiB: larger files are refused
	maxSizeOfImage    = 1 << 31
	minSizeOfOptHdr32 = 96
	minSizeOfOptHdr64 = 112
)

// DataDirectory is one IMAGE_DATA_DIRECTORY entry.
type DataDirectory struct {
	VirtualAddress uint32
	Size           uint32
}

// Section is one section header, cooked.
type Section struct {
	Name             string
	VirtualAddress   uint32
	VirtualSize      uint32
	PointerToRawData uint32
	SizeOfRawData    uint32
	Characteristics  uint32
}

// Executable reports whether the section is mapped executable.
func (s *Section) Executable() bool {
	return s.Characteristics&(IMAGE_SCN_MEM_EXECUTE|IMAGE_SCN_CNT_CODE) != 0
}

// Writable reports whether the section is mapped writable.
func (s *Section) Writable() bool { return s.Characteristics&IMAGE_SCN_MEM_WRITE != 0 }

// End returns the RVA one past the section's mapped extent.
func (s *Section) End() uint32 { return s.VirtualAddress + s.mappedSize() }

func (s *Section) mappedSize() uint32 {
	if s.VirtualSize != 0 {
		return s.VirtualSize
	}
	return s.SizeOfRawData
}

// rawSize is the number of mapped bytes that come from the file.
func (s *Section) rawSize() uint32 {
	n := s.SizeOfRawData
	if s.VirtualSize != 0 && s.VirtualSize < n {
		n = s.VirtualSize
	}
	return n
}

// File is an opened PE image.
type File struct {
	Path   string   // path given to Open, "" for OpenBytes
	SHA256 [32]byte // digest of the whole file
	Size   int64    // file size in bytes

	Machine            Machine
	Is64               bool
	TimeDateStamp      uint32
	Characteristics    uint16
	ImageBase          uint64
	EntryPoint         uint32 // RVA, 0 if none
	SectionAlignment   uint32
	FileAlignment      uint32
	SizeOfImage        uint32
	SizeOfHeaders      uint32
	CheckSum           uint32
	Subsystem          uint16
	DllCharacteristics uint16
	Directories        [16]DataDirectory
	Sections           []Section

	Rich       *RichHeader       // nil when absent
	Debug      []DebugEntry      // debug directory entries
	LoadConfig *LoadConfig       // nil when absent
	TLS        *TLS              // nil when absent
	Exports    []Export          // sorted by ordinal
	ExportName string            // DLL name recorded in the export directory
	Imports    []Import          // regular imports first, then delay imports, in directory order
	Relocs     []Reloc           // sorted by RVA
	Symbols    []Symbol          // COFF, link-map and PDB symbols, sorted by RVA then name
	Unwind     []RuntimeFunction // .pdata entries, sorted by BeginAddress (x64 only)
	EHFrame    []FDE             // DWARF .eh_frame entries, sorted by Begin (gcc x86 exception handling)
	PDB        *PDBInfo          // the PDB the function table and symbols came from; nil when none

	// Warnings lists problems that did not stop the image from being
	// modelled but may make it less precise (a directory that failed to
	// parse, a symbol table that was truncated, ...). Sorted, deduplicated.
	Warnings []string

	functions   []Function
	chunks      []chunkRef     // all chunks, sorted by RVA
	slots       map[uint32]int // IAT slot RVA -> index in importSlots
	importSlots []ImportSlot
	data        []byte
	release     func() error // unmaps data (Open on Unix); nil otherwise
	warnSeen    map[string]bool
	pdbProcs    []pdbProc // PDB procedures, sorted by RVA (empty without a PDB)
}

// Open reads and models the PE image at path. On Unix systems the file is
// mapped read-only rather than copied; call Close when the File is no
// longer needed to release the mapping (a File that is never closed keeps
// it until the process exits). The file must not be truncated while it is
// open: reading a page past the new end would stop the process.
func Open(path string, opts ...Option) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %w", path, formatErr(-1, fmt.Sprintf("file too large (%d bytes, limit %d)", st.Size(), int64(maxFileSize)), nil))
	}
	data, release, err := readImage(fh, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	opts = append(opts[:len(opts):len(opts)], func(o *options) { o.imagePath = path })
	f, err := OpenBytes(data, opts...)
	if err != nil {
		if release != nil {
			release()
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	f.release = release
	return f, nil
}

// Close releases the file mapping behind a File returned by Open. The File,
// and every slice obtained from it (Bytes, ...), must not be used
// afterwards. Close is a no-op for a File from OpenBytes.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release = nil
	f.data = nil
	return err
}

// Option configures Open.
type Option func(*options)

type options struct {
	mapFile    string
	noFuncs    bool
	pdbPath    string   // WithPDB
	pdbSearch  bool     // WithPDBSearch
	symbolPath []string // WithPDBSearch: symbol store directories
	imagePath  string   // set by Open: where to look for the PDB
}

// WithMap adds the symbols of a link map (MSVC or GNU ld format) as a
// function-table source.
func WithMap(path string) Option { return func(o *options) { o.mapFile = path } }

// HeadersOnly skips the function table (and so the decoding of code).
func HeadersOnly() Option { return func(o *options) { o.noFuncs = true } }

// OpenBytes models the PE image held in data. The slice is retained and
// must not be modified afterwards.
func OpenBytes(data []byte, opts ...Option) (f *File, err error) {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	if int64(len(data)) > maxFileSize {
		return nil, formatErr(-1, fmt.Sprintf("file too large (%d bytes, limit %d)", len(data), int64(maxFileSize)), nil)
	}
	f = &File{data: data, Size: int64(len(data)), SHA256: sha256.Sum256(data)}
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("internal error while modelling image: %v", r)
		}
	}()
	if err := f.parseHeaders(); err != nil {
		return nil, err
	}
	if err := f.parseDirectories(); err != nil {
		return nil, err
	}
	if o.mapFile != "" {
		syms, err := ReadMapFile(o.mapFile, f.ImageBase)
		if err != nil {
			return nil, err
		}
		f.addMapSymbols(syms)
	}
	if err := f.loadPDB(&o); err != nil {
		return nil, err
	}
	if !o.noFuncs {
		f.buildFunctionTable()
	}
	sort.Strings(f.Warnings)
	return f, nil
}

func (f *File) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if f.warnSeen == nil {
		f.warnSeen = map[string]bool{}
	}
	if f.warnSeen[msg] {
		return
	}
	f.warnSeen[msg] = true
	f.Warnings = append(f.Warnings, msg)
}

func (f *File) u16(off int) uint16 { return binary.LittleEndian.Uint16(f.data[off:]) }
func (f *File) u32(off int) uint32 { return binary.LittleEndian.Uint32(f.data[off:]) }
func (f *File) u64(off int) uint64 { return binary.LittleEndian.Uint64(f.data[off:]) }

// parseHeaders parses the DOS header, NT headers and section table
// strictly: every field read is inside the file.
func (f *File) parseHeaders() error {
	d := f.data
	if len(d) == 0 {
		return fmt.Errorf("empty file: %w", ErrNotPE)
	}
	if len(d) < 2 || d[0] != 'M' || d[1] != 'Z' {
		return fmt.Errorf("no MZ signature: %w", ErrNotPE)
	}
	if len(d) < 0x40 {
		return formatErr(int64(len(d)), "truncated DOS header: file ends", nil)
	}
	lfanew := int64(f.u32(0x3c))
	if lfanew < 4 || lfanew > int64(len(d))-4 {
		if lfanew > int64(len(d))-4 {
			return formatErr(0x3c, fmt.Sprintf("e_lfanew points past end of file (size %#x):", len(d)), uint32(lfanew))
		}
		return formatErr(0x3c, "invalid e_lfanew", uint32(lfanew))
	}
	nt := int(lfanew)
	if string(d[nt:nt+4]) != "PE\x00\x00" {
		return fmt.Errorf("no PE signature at offset %#x: %w", nt, ErrNotPE)
	}
	fh := nt + 4
	if len(d) < fh+20 {
		return formatErr(int64(len(d)), "truncated file header: file ends", nil)
	}
	f.Machine = Machine(f.u16(fh))
	nsec := int(f.u16(fh + 2))
	f.TimeDateStamp = f.u32(fh + 4)
	optSize := int(f.u16(fh + 16))
	f.Characteristics = f.u16(fh + 18)

	switch f.Machine {
	case IMAGE_FILE_MACHINE_I386, IMAGE_FILE_MACHINE_AMD64:
	default:
		return &UnsupportedError{What: fmt.Sprintf("unsupported machine %s (%#x): hpbuild patches x86 and x64 code only", machineDisplay(f.Machine), uint16(f.Machine))}
	}
	opt := fh + 20
	if len(d) < opt+2 {
		return formatErr(int64(len(d)), "truncated optional header: file ends", nil)
	}
	magic := f.u16(opt)
	switch magic {
	case 0x10b:
		f.Is64 = false
	case 0x20b:
		f.Is64 = true
	default:
		return formatErr(int64(opt), "invalid optional header magic", magic)
	}
	if f.Is64 != (f.Machine == IMAGE_FILE_MACHINE_AMD64) {
		return formatErr(int64(opt), fmt.Sprintf("optional header magic %#x does not match machine %s", magic, f.Machine), nil)
	}
	minOpt := minSizeOfOptHdr32
	if f.Is64 {
		minOpt = minSizeOfOptHdr64
	}
	if optSize < minOpt {
		return formatErr(int64(fh+16), "SizeOfOptionalHeader too small", uint16(optSize))
	}
	if len(d) < opt+optSize {
		return formatErr(int64(len(d)), fmt.Sprintf("truncated optional header (%d bytes declared): file ends", optSize), nil)
	}
	f.EntryPoint = f.u32(opt + 16)
	f.SectionAlignment = f.u32(opt + 32)
	f.FileAlignment = f.u32(opt + 36)
	f.SizeOfImage = f.u32(opt + 56)
	f.SizeOfHeaders = f.u32(opt + 60)
	f.CheckSum = f.u32(opt + 64)
	f.Subsystem = f.u16(opt + 68)
	f.DllCharacteristics = f.u16(opt + 70)
	var ndirOff, dirOff int
	if f.Is64 {
		f.ImageBase = f.u64(opt + 24)
		ndirOff, dirOff = opt+108, opt+112
	} else {
		f.ImageBase = uint64(f.u32(opt + 28))
		ndirOff, dirOff = opt+92, opt+96
	}
	if f.SizeOfImage == 0 || f.SizeOfImage > maxSizeOfImage {
		return formatErr(int64(opt+56), "invalid SizeOfImage", f.SizeOfImage)
	}
	ndir := int(f.u32(ndirOff))
	if ndir > 16 {
		f.warnf("NumberOfRvaAndSizes is %d; only the 16 defined directories are read", ndir)
		ndir = 16
	}
	if dirOff+8*ndir > opt+optSize {
		return formatErr(int64(ndirOff), "data directories extend past the optional header: NumberOfRvaAndSizes", uint32(ndir))
	}
	for i := 0; i < ndir; i++ {
		f.Directories[i] = DataDirectory{f.u32(dirOff + 8*i), f.u32(dirOff + 8*i + 4)}
	}

	secOff := opt + optSize
	if nsec == 0 {
		return formatErr(int64(fh+2), "image has no sections", nil)
	}
	if nsec > maxSections {
		return formatErr(int64(fh+2), "absurd NumberOfSections", uint16(nsec))
	}
	if len(d) < secOff+40*nsec {
		return formatErr(int64(len(d)), fmt.Sprintf("truncated section table (%d sections at offset %#x): file ends", nsec, secOff), nil)
	}
	f.Sections = make([]Section, nsec)
	for i := range f.Sections {
		o := secOff + 40*i
		name := string(d[o : o+8])
		if j := strings.IndexByte(name, 0); j >= 0 {
			name = name[:j]
		}
		s := Section{
			Name:             name,
			VirtualSize:      f.u32(o + 8),
			VirtualAddress:   f.u32(o + 12),
			SizeOfRawData:    f.u32(o + 16),
			PointerToRawData: f.u32(o + 20),
			Characteristics:  f.u32(o + 36),
		}
		if uint64(s.VirtualAddress)+uint64(s.mappedSize()) > uint64(f.SizeOfImage) {
			return formatErr(int64(o+12), fmt.Sprintf("section %q extends past SizeOfImage %#x: VirtualAddress", name, f.SizeOfImage), s.VirtualAddress)
		}
		if s.SizeOfRawData > 0 && uint64(s.PointerToRawData)+uint64(s.rawSize()) > uint64(len(d)) {
			return formatErr(int64(o+20), fmt.Sprintf("section %q raw data [%#x,%#x) extends past end of file (size %#x): PointerToRawData",
				name, s.PointerToRawData, uint64(s.PointerToRawData)+uint64(s.rawSize()), len(d)), s.PointerToRawData)
		}
		f.Sections[i] = s
	}
	sorted := append([]Section(nil), f.Sections...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].VirtualAddress < sorted[j].VirtualAddress })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].VirtualAddress < sorted[i-1].End() {
			return formatErr(-1, fmt.Sprintf("sections %q and %q overlap", sorted[i-1].Name, sorted[i].Name), nil)
		}
	}
	if f.EntryPoint != 0 && f.EntryPoint >= f.SizeOfImage {
		return formatErr(int64(opt+16), "AddressOfEntryPoint outside the image", f.EntryPoint)
	}
	return nil
}

func machineDisplay(m Machine) string {
	if n, ok := machineNames[m]; ok {
		return n
	}
	return "unknown"
}

// Section returns the section containing rva, or nil.
func (f *File) Section(rva uint32) *Section {
	for i := range f.Sections {
		s := &f.Sections[i]
		if rva >= s.VirtualAddress && rva < s.End() {
			return s
		}
	}
	return nil
}

// SectionByName returns the first section with the given name, or nil.
func (f *File) SectionByName(name string) *Section {
	for i := range f.Sections {
		if f.Sections[i].Name == name {
			return &f.Sections[i]
		}
	}
	return nil
}

// IsCode reports whether rva lies in an executable section.
func (f *File) IsCode(rva uint32) bool {
	s := f.Section(rva)
	return s != nil && s.Executable()
}

// Bytes returns up to n file-backed bytes of the image starting at rva. The
// result is shorter than n when the range runs past the section's raw data
// (uninitialised data is never invented) and nil when rva is not mapped
// from the file. The slice aliases the file data: do not modify it.
func (f *File) Bytes(rva uint32, n int) []byte {
	if rva < f.SizeOfHeaders && f.Section(rva) == nil {
		end := uint64(rva) + uint64(n)
		if end > uint64(f.SizeOfHeaders) {
			end = uint64(f.SizeOfHeaders)
		}
		if end > uint64(len(f.data)) {
			end = uint64(len(f.data))
		}
		if uint64(rva) >= end {
			return nil
		}
		return f.data[rva:end]
	}
	s := f.Section(rva)
	if s == nil {
		return nil
	}
	off := rva - s.VirtualAddress
	raw := s.rawSize()
	if off >= raw {
		return nil
	}
	avail := raw - off
	if n < 0 {
		n = 0
	}
	if uint64(n) < uint64(avail) {
		avail = uint32(n)
	}
	start := uint64(s.PointerToRawData) + uint64(off)
	return f.data[start : start+uint64(avail)]
}

// Data returns the raw file bytes. Do not modify them.
func (f *File) Data() []byte { return f.data }

// FileOffset converts an RVA to a file offset; ok is false when the RVA is
// not backed by file data.
func (f *File) FileOffset(rva uint32) (int64, bool) {
	s := f.Section(rva)
	if s == nil {
		if rva < f.SizeOfHeaders && int64(rva) < int64(len(f.data)) {
			return int64(rva), true
		}
		return 0, false
	}
	off := rva - s.VirtualAddress
	if off >= s.rawSize() {
		return 0, false
	}
	return int64(s.PointerToRawData) + int64(off), true
}

func (f *File) readU32(rva uint32) (uint32, bool) {
	b := f.Bytes(rva, 4)
	if len(b) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b), true
}

func (f *File) readU64(rva uint32) (uint64, bool) {
	b := f.Bytes(rva, 8)
	if len(b) < 8 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b), true
}

// readPtr reads a pointer-sized value (4 bytes on x86, 8 on x64).
func (f *File) readPtr(rva uint32) (uint64, bool) {
	if f.Is64 {
		return f.readU64(rva)
	}
	v, ok := f.readU32(rva)
	return uint64(v), ok
}

// vaToRVA converts a virtual address to an RVA; ok is false when it is
// outside the image.
func (f *File) vaToRVA(va uint64) (uint32, bool) {
	if va < f.ImageBase || va-f.ImageBase >= uint64(f.SizeOfImage) {
		return 0, false
	}
	return uint32(va - f.ImageBase), true
}

// PtrSize is the size of a pointer in the image: 4 or 8.
func (f *File) PtrSize() int {
	if f.Is64 {
		return 8
	}
	return 4
}
