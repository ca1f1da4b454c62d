package pe

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/internal/par"
	"golang.org/x/arch/x86/x86asm"
)

// Source is a bit set of the ways a function was found.
type Source uint16

// Function sources.
const (
	SrcPdata   Source = 1 << iota // x64 .pdata RUNTIME_FUNCTION
	SrcExport                     // export directory
	SrcSymbol                     // COFF symbol table
	SrcMap                        // link map
	SrcEntry                      // AddressOfEntryPoint
	SrcTLS                        // TLS callback
	SrcSafeSEH                    // SafeSEH handler table
	SrcCFG                        // Control Flow Guard function table
	SrcCall                       // direct call target
	SrcPointer                    // code address taken (relocated pointer, lea)
	SrcSweep                      // code no other source reached
	SrcPDB                        // PDB procedure (name and exact extent)
)

var sourceNames = []string{"pdata", "export", "symbol", "map", "entry", "tls", "safeseh", "cfg", "call", "pointer", "sweep", "pdb"}

// Strings returns the names of the sources in s, in a fixed order.
func (s Source) Strings() []string {
	var out []string
	for i, n := range sourceNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (s Source) String() string { return strings.Join(s.Strings(), ",") }

// Chunk is a part of a function's code outside its main extent: a chained
// unwind fragment (MSVC) or a .cold part (gcc).
type Chunk struct {
	RVA  uint32
	Size uint32
}

// JumpTable is a table of branch targets used by an indirect jump.
type JumpTable struct {
	RVA     uint32 // location of the table
	Entry   uint8  // entry size in bytes (4)
	Kind    JumpTableKind
	Base    uint32   // for JumpTableRelative: the RVA entries are relative to
	Targets []uint32 // target RVAs, in table order
}

// JumpTableKind says how table entries encode their targets.
type JumpTableKind uint8

// Jump table kinds.
const (
	JumpTableAbsolute JumpTableKind = iota // VA, covered by base relocations (x86)
	JumpTableRVA                           // 32-bit RVA, used with __ImageBase (MSVC x64)
	JumpTableRelative                      // 32-bit signed offset from Base (gcc x64)
)

// Size returns the table size in bytes.
func (t *JumpTable) Size() uint32 { return uint32(len(t.Targets)) * uint32(t.Entry) }

// Function is one entry of the function table.
type Function struct {
	Name string // best known name ("" when unnamed: see DisplayName)
	RVA  uint32 // entry point
	Size uint32 // size of the main extent [RVA, RVA+Size)
	// Insts counts the instructions decoded; Blocks the basic-block
	// leaders (entry, branch targets, fall-throughs after branches).
	Insts, Blocks uint32
	Sources       Source
	// Partial is set when some reachable bytes could not be decoded
	// (PartialAt says where).
	Partial bool
	// Returns is false when no path through the function returns (it
	// ends in calls to functions that do not return, traps or loops).
	Returns bool
	// ImportThunk is set when the whole function is "jmp [IAT slot]".
	ImportThunk bool
	// EntryTargets has bit k set when a branch inside the main extent
	// targets RVA+k (k = 1..7): where a jump written over the entry
	// would be entered halfway.
	EntryTargets uint8

	// Refs are the address-bearing fields, sorted by At, except the
	// branches from the main extent to a place in it: their bytes do not
	// depend on where the function is (a big image has millions, most of
	// its fields); EntryTargets keeps what sites need of them. Branches to
	// the first 8 bytes of another function that starts inside the extent
	// are kept.
	Refs []Ref

	// What few functions have (a PDB's undecorated name, aliases, chunks,
	// jump tables, an undecodable instruction) sits behind one pointer: a
	// big image has a hundred thousand functions, and the fields each
	// would be half the table.
	more *functionMore
}

type functionMore struct {
	display   string
	partialAt uint32
	aliases   []string
	chunks    []Chunk
	tables    []JumpTable
}

// Display returns the undecorated name the PDB gives ("geo::Box::area")
// when it differs from Name (then a decorated name such as
// "?area@Box@geo@@QEBAHXZ"); "" otherwise.
func (fn *Function) Display() string {
	if fn.more == nil {
		return ""
	}
	return fn.more.display
}

// PartialAt returns the RVA of the first instruction that could not be
// decoded, when Partial is set.
func (fn *Function) PartialAt() uint32 {
	if fn.more == nil {
		return 0
	}
	return fn.more.partialAt
}

// Aliases returns the other names for the same start, sorted.
func (fn *Function) Aliases() []string {
	if fn.more == nil {
		return nil
	}
	return fn.more.aliases
}

// Chunks returns the further parts of the function, sorted by RVA.
func (fn *Function) Chunks() []Chunk {
	if fn.more == nil {
		return nil
	}
	return fn.more.chunks
}

// JumpTables returns the jump tables the function uses.
func (fn *Function) JumpTables() []JumpTable {
	if fn.more == nil {
		return nil
	}
	return fn.more.tables
}

// extra returns fn's rare lists, allocating them on first use.
func (fn *Function) extra() *functionMore {
	if fn.more == nil {
		fn.more = &functionMore{}
	}
	return fn.more
}

// DisplayName returns Name, or "sub_<rva>" for unnamed functions.
// Display, when set, is the readable form to show next to it.
func (fn *Function) DisplayName() string {
	if fn.Name != "" {
		return fn.Name
	}
	return fmt.Sprintf("sub_%x", fn.RVA)
}

// Parts returns the function's extents: the main one, then its chunks.
func (fn *Function) Parts() []Chunk {
	return append([]Chunk{{RVA: fn.RVA, Size: fn.Size}}, fn.Chunks()...)
}

// AppendCode appends the bytes of fn's parts, in Parts order, to buf. The
// uninitialised tail of a part (beyond the file data) is never invented
// and reads as zero, as the loader maps it.
func (f *File) AppendCode(buf []byte, fn *Function) []byte {
	for _, p := range fn.Parts() {
		b := f.Bytes(p.RVA, int(p.Size))
		buf = append(buf, b...)
		buf = append(buf, make([]byte, int(p.Size)-len(b))...)
	}
	return buf
}

// End returns the RVA one past the main extent.
func (fn *Function) End() uint32 { return fn.RVA + fn.Size }

// Contains reports whether rva is inside the main extent or a chunk.
func (fn *Function) Contains(rva uint32) bool {
	if rva >= fn.RVA && rva < fn.End() {
		return true
	}
	for _, c := range fn.Chunks() {
		if rva >= c.RVA && rva < c.RVA+c.Size {
			return true
		}
	}
	return false
}

// Functions returns the function table sorted by RVA.
func (f *File) Functions() []Function { return f.functions }

// FunctionAt returns the function starting at rva.
func (f *File) FunctionAt(rva uint32) (*Function, bool) {
	i, ok := f.FunctionIndex(rva)
	if !ok {
		return nil, false
	}
	return &f.functions[i], true
}

// FunctionIndex returns the index in Functions of the function starting
// at rva.
func (f *File) FunctionIndex(rva uint32) (int, bool) {
	// A binary search of the sorted table: a map of a big image's hundred
	// thousand starts would take megabytes.
	fs := f.functions
	lo, hi := 0, len(fs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if fs[m].RVA < rva {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(fs) && fs[lo].RVA == rva {
		return lo, true
	}
	return 0, false
}

// FunctionContaining returns the function whose main extent or chunks
// contain rva.
func (f *File) FunctionContaining(rva uint32) (*Function, bool) {
	fs := f.functions
	i := sort.Search(len(fs), func(i int) bool { return fs[i].RVA > rva }) - 1
	if i >= 0 && rva < fs[i].End() {
		return &fs[i], true
	}
	if c, ok := f.chunkOwner(rva); ok {
		return &f.functions[c], true
	}
	return nil, false
}

func (f *File) chunkOwner(rva uint32) (int, bool) {
	cs := f.chunks
	i := sort.Search(len(cs), func(i int) bool { return cs[i].RVA > rva }) - 1
	if i >= 0 && rva < cs[i].RVA+cs[i].Size {
		return cs[i].owner, true
	}
	return 0, false
}

// chunkRef locates a chunk in the function table.
type chunkRef struct {
	Chunk
	owner int
}

func (f *File) mode() int {
	if f.Is64 {
		return 64
	}
	return 32
}

// ---- function discovery ----

// startInfo is what discovery knows about one candidate start.
type startInfo struct {
	src      Source
	names    []string
	exactEnd uint32 // exact end from the PDB or .pdata, 0 if unknown
	display  string // undecorated name from the PDB, "" if none
}

// analysis is the result of decoding one function's reachable code. A big
// image has about a hundred thousand of them alive until the function table
// is built, so the struct is kept small and its lists are exactly sized
// (analyze fills them in pooled scratch space, then copies them out).
type analysis struct {
	start, end uint32
	limit      uint32 // the bound this analysis was computed with
	partialAt  uint32
	insts      int32
	blocks     int32
	partial    bool
	odd        bool // decoded an instruction compiled code does not contain
	returns    bool
	thunk      bool
	calls      []uint32
	pointers   []uint32
	outside    []uint32 // jump targets outside [start, limit) that are not calls
	callsNoRet []uint32 // call sites whose fall-through was cut (callee does not return)
	refs       []Ref
	tables     []JumpTable
}

// analyzeScratch is the working space of one analyze call, reused through
// scratchPool: the growing lists and the per-byte bit sets.
type analyzeScratch struct {
	calls, pointers, outside, callsNoRet []uint32
	refs                                 []Ref
	bits                                 []uint64
	work                                 []uint32
	lens                                 []uint8 // instruction lengths by offset
	rips                                 []Ref   // prescanStops' sorted RIP-relative references
}

var scratchPool = sync.Pool{New: func() any { return new(analyzeScratch) }}

// begin points a's lists at the scratch space.
func (sc *analyzeScratch) begin(a *analysis) {
	a.calls, a.pointers, a.outside, a.callsNoRet = sc.calls[:0], sc.pointers[:0], sc.outside[:0], sc.callsNoRet[:0]
	a.refs = sc.refs[:0]
}

// end takes back the (possibly grown) scratch lists and gives a exact-size
// copies: the four address lists share one allocation.
func (sc *analyzeScratch) end(a *analysis) {
	sc.calls, sc.pointers, sc.outside, sc.callsNoRet = a.calls[:0], a.pointers[:0], a.outside[:0], a.callsNoRet[:0]
	sc.refs = a.refs[:0]
	if n := len(a.calls) + len(a.pointers) + len(a.outside) + len(a.callsNoRet); n > 0 {
		all := make([]uint32, 0, n)
		cut := func(l []uint32) []uint32 {
			if len(l) == 0 {
				return nil
			}
			i := len(all)
			all = append(all, l...)
			return all[i:len(all):len(all)]
		}
		a.calls, a.pointers, a.outside, a.callsNoRet = cut(a.calls), cut(a.pointers), cut(a.outside), cut(a.callsNoRet)
	} else {
		a.calls, a.pointers, a.outside, a.callsNoRet = nil, nil, nil, nil
	}
	if len(a.refs) > 0 {
		a.refs = append(make([]Ref, 0, len(a.refs)), a.refs...)
	} else {
		a.refs = nil
	}
}

// lengths returns a byte per offset of n bytes from the scratch, not
// cleared: only the entries written in this analysis are read.
func (sc *analyzeScratch) lengths(n uint32) []uint8 {
	if uint32(cap(sc.lens)) < n {
		sc.lens = make([]uint8, n)
	}
	return sc.lens[:n]
}

// bitsets returns three cleared bit sets of n bits each from the scratch.
func (sc *analyzeScratch) bitsets(n uint32) (x, y, z []uint64) {
	w := int(n+63) / 64
	if cap(sc.bits) < 3*w {
		sc.bits = make([]uint64, 3*w)
	}
	bits := sc.bits[:3*w]
	clear(bits)
	return bits[:w:w], bits[w : 2*w : 2*w], bits[2*w:]
}

// functionBuilder holds discovery state.
type functionBuilder struct {
	f        *File
	starts   map[uint32]*startInfo
	fragOf   map[uint32]uint32 // .pdata fragment begin -> parent begin
	fragEnd  map[uint32]uint32
	coldOf   map[uint32]uint32 // .cold symbol start -> parent start
	noReturn map[uint32]bool   // functions / IAT slots known not to return
	an       map[uint32]*analysis
	codeSecs []*Section
	tableAt  map[uint32]uint32 // jump table start -> end (data inside code)

	sortedStartsCache []uint32
}

// Names of imports that never return.
var noReturnImports = map[string]bool{
	"ExitProcess": true, "ExitThread": true, "FatalExit": true, "FatalAppExitA": true, "FatalAppExitW": true,
	"exit": true, "_exit": true, "_Exit": true, "abort": true, "quick_exit": true, "_assert": true, "_wassert": true,
	"__stack_chk_fail": true, "_amsg_exit": true, "__report_gsfailure": true, "longjmp": true, "_longjmp": true,
	"_invalid_parameter_noinfo_noreturn": true, "_CxxThrowException": true, "__std_terminate": true,
	"terminate": true, "_Unwind_Resume": true, "__cxa_throw": true, "__cxa_rethrow": true, "RtlExitUserThread": true,
	"RtlExitUserProcess": true, "NtTerminateProcess": false, "__fastfail": true, "FreeLibraryAndExitThread": true,
	"RaiseFailFastException": true, "_cexit": false, "__chk_fail": true,
}

func (f *File) buildFunctionTable() {
	b := &functionBuilder{
		f:        f,
		starts:   map[uint32]*startInfo{},
		fragOf:   map[uint32]uint32{},
		fragEnd:  map[uint32]uint32{},
		coldOf:   map[uint32]uint32{},
		noReturn: map[uint32]bool{},
		an:       map[uint32]*analysis{},
		tableAt:  map[uint32]uint32{},
	}
	for i := range f.Sections {
		if f.Sections[i].Executable() {
			b.codeSecs = append(b.codeSecs, &f.Sections[i])
		}
	}
	for slot, i := range f.slots {
		if s := f.importSlots[i]; noReturnImports[s.Name] {
			b.noReturn[slot] = true
		}
	}
	b.seed()
	b.discover()
	b.attachColdParts()
	b.finish()
}

func (b *functionBuilder) add(rva uint32, src Source, name string) *startInfo {
	if !b.f.IsCode(rva) {
		return nil
	}
	if _, frag := b.fragOf[rva]; frag && src&(SrcPdata|SrcCall|SrcPointer|SrcSweep) != 0 {
		return nil // a fragment of another function, not a function
	}
	if _, cold := b.coldOf[rva]; cold && src&(SrcPdata|SrcCall|SrcPointer|SrcSweep) != 0 {
		return nil
	}
	si := b.starts[rva]
	if si == nil {
		si = &startInfo{}
		b.starts[rva] = si
	}
	si.src |= src
	if name != "" {
		for _, n := range si.names {
			if n == name {
				return si
			}
		}
		si.names = append(si.names, name)
	}
	return si
}

func (b *functionBuilder) seed() {
	f := b.f
	// PDB separated code is a part of its procedure, whatever else says.
	for _, p := range f.pdbProcs {
		if p.Parent != 0 && p.Size != 0 {
			b.fragOf[p.RVA], b.fragEnd[p.RVA] = p.Parent, p.RVA+p.Size
		}
	}
	for _, rf := range f.Unwind {
		if rf.Parent != 0 {
			b.fragOf[rf.BeginAddress] = rf.Parent
			b.fragEnd[rf.BeginAddress] = rf.EndAddress
		}
	}
	for _, rf := range f.Unwind {
		if rf.Parent == 0 {
			if si := b.add(rf.BeginAddress, SrcPdata, ""); si != nil {
				si.exactEnd = rf.EndAddress
			}
		}
	}
	for _, e := range f.Exports {
		if e.Forwarder == "" && e.RVA != 0 {
			name := e.Name
			if name == "" {
				name = fmt.Sprintf("#%d", e.Ordinal)
			}
			b.add(e.RVA, SrcExport, name)
		}
	}
	b.seedPDB()
	// Symbols: .cold parts attach to their parent by name.
	byName := map[string]uint32{}
	for _, s := range f.Symbols {
		if s.Func || f.IsCode(s.RVA) {
			if _, ok := byName[s.Name]; !ok {
				byName[s.Name] = s.RVA
			}
		}
	}
	for _, s := range f.Symbols {
		if !f.IsCode(s.RVA) {
			continue
		}
		if i := strings.Index(s.Name, ".cold"); i > 0 {
			if p, ok := byName[s.Name[:i]]; ok && p != s.RVA {
				if si := b.starts[s.RVA]; si != nil && si.exactEnd != 0 {
					b.fragOf[s.RVA], b.fragEnd[s.RVA] = p, si.exactEnd
				} else {
					b.coldOf[s.RVA] = p
				}
				delete(b.starts, s.RVA)
				continue
			}
		}
		if (!s.Func && s.Source == "coff") || s.Source == "pdb" {
			continue // PDB procedures were seeded above; PDB symbols name data
		}
		src := SrcSymbol
		if s.Source == "map" {
			src = SrcMap
		}
		b.add(s.RVA, src, s.Name)
	}
	if f.EntryPoint != 0 {
		b.add(f.EntryPoint, SrcEntry, "")
	}
	if f.TLS != nil {
		for _, cb := range f.TLS.Callbacks {
			b.add(cb, SrcTLS, "")
		}
	}
	if lc := f.LoadConfig; lc != nil {
		for _, h := range lc.SEHandlers {
			b.add(h, SrcSafeSEH, "")
		}
		for _, c := range lc.GuardCFFunctions {
			b.add(c, SrcCFG, "")
		}
	}
}

// seedPDB adds the PDB's procedures with their exact extents: the
// strongest source, so the extent replaces one from .pdata. Export names
// are seeded first and stay the functions' names (as without a PDB); the
// decorated public names and then the procedure name follow.
func (b *functionBuilder) seedPDB() {
	for _, p := range b.f.pdbProcs {
		if p.Parent != 0 {
			continue
		}
		delete(b.fragOf, p.RVA)
		delete(b.fragEnd, p.RVA)
		si := b.add(p.RVA, SrcPDB, "")
		if si == nil {
			continue
		}
		for _, n := range p.Names {
			b.add(p.RVA, SrcPDB, n)
		}
		if p.Size != 0 {
			si.exactEnd = p.RVA + p.Size
		}
		if si.display == "" {
			si.display = p.Display
		}
	}
}

// sortedStarts returns the known starts in order.
func (b *functionBuilder) sortedStarts() []uint32 {
	out := make([]uint32, 0, len(b.starts))
	for r := range b.starts {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// limitFor returns the exclusive bound for decoding the function at start:
// its .pdata end, else the next known start, fragment, cold part or
// jump table, else the end of its section.
func (b *functionBuilder) limitFor(start uint32, next uint32) uint32 {
	if si := b.starts[start]; si != nil && si.exactEnd != 0 {
		return si.exactEnd
	}
	s := b.f.Section(start)
	lim := s.VirtualAddress + min(s.mappedSize(), s.rawSize())
	if next != 0 && next < lim {
		lim = next
	}
	return lim
}

// boundaries returns all positions a non-.pdata function may not run into.
func (b *functionBuilder) boundaries() []uint32 {
	out := b.sortedStarts()
	for r := range b.fragOf {
		out = append(out, r)
	}
	for r := range b.coldOf {
		out = append(out, r)
	}
	for r := range b.tableAt {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func nextAfter(sorted []uint32, rva uint32) uint32 {
	i := sort.Search(len(sorted), func(i int) bool { return sorted[i] > rva })
	if i < len(sorted) {
		return sorted[i]
	}
	return 0
}

const maxDiscoveryRounds = 64

// discover runs recursive descent from every known start until no new
// start appears, then sweeps the code no function covers.
func (b *functionBuilder) discover() {
	pointersDone := false
	for round := 0; round < maxDiscoveryRounds; round++ {
		bounds := b.boundaries()
		starts := b.sortedStarts()
		var todo []uint32
		for _, s := range starts {
			lim := b.limitFor(s, nextAfter(bounds, s))
			if a := b.an[s]; a != nil && a.limit == lim && !b.staleNoReturn(a) {
				continue
			}
			todo = append(todo, s)
		}
		if len(todo) == 0 {
			if !pointersDone {
				pointersDone = true
				if b.addPointers() {
					continue
				}
			}
			before := len(b.starts)
			if b.sweep() || len(b.starts) != before {
				continue
			}
			return
		}
		results := b.analyzeAll(todo, bounds)
		for i, s := range todo {
			b.an[s] = results[i]
		}
		for _, s := range todo {
			b.absorb(s, b.an[s])
		}
	}
	b.f.warnf("function discovery stopped after %d rounds", maxDiscoveryRounds)
}

// absorb records what the analysis of the function at s found: its call
// targets become starts, its jump tables in code become boundaries, and it
// is marked as not returning when no path returns.
func (b *functionBuilder) absorb(s uint32, a *analysis) {
	for _, c := range a.calls {
		if b.acceptCall(s, c) {
			b.add(c, SrcCall, "")
		}
	}
	if !a.returns {
		b.noReturn[s] = true
	}
	for _, t := range a.tables {
		if b.f.IsCode(t.RVA) {
			if _, ok := b.tableAt[t.RVA]; !ok {
				b.tableAt[t.RVA] = t.RVA + t.Size()
			}
		}
	}
}

// staleNoReturn reports whether a callee of a became known not to return
// after a was analysed (its fall-through must be cut).
func (b *functionBuilder) staleNoReturn(a *analysis) bool {
	if a.returns && len(a.calls) == 0 {
		return false
	}
	cut := map[uint32]bool{}
	for _, c := range a.callsNoRet {
		cut[c] = true
	}
	for _, c := range a.calls {
		if b.noReturn[c] && !cut[c] {
			if si := b.starts[a.start]; si != nil && si.exactEnd != 0 {
				return false // extent is exact anyway
			}
			return true
		}
	}
	return false
}

// acceptCall decides whether a call target is a function start.
func (b *functionBuilder) acceptCall(from, target uint32) bool {
	if !b.f.IsCode(target) {
		return false
	}
	if _, frag := b.fragOf[target]; frag {
		return false
	}
	if _, cold := b.coldOf[target]; cold {
		return false
	}
	// A call into the middle of a function with an exact (.pdata) extent
	// is not a new function (e.g. "call $+5" to get the PC).
	if owner, ok := b.pdataOwner(target); ok && owner != target {
		return false
	}
	if owner, ok := b.f.pdbOwner(target); ok && owner != target {
		return false
	}
	if a := b.an[from]; a != nil && target > from && target < a.end && target != from {
		// call to the next instruction inside the caller: a PC thunk
		return false
	}
	return true
}

func (b *functionBuilder) pdataOwner(rva uint32) (uint32, bool) {
	rfs := b.f.Unwind
	i := sort.Search(len(rfs), func(i int) bool { return rfs[i].BeginAddress > rva }) - 1
	if i >= 0 && rva < rfs[i].EndAddress {
		if rfs[i].Parent != 0 {
			return rfs[i].Parent, true
		}
		return rfs[i].BeginAddress, true
	}
	return 0, false
}

// analyzeAll decodes the given starts in parallel.
func (b *functionBuilder) analyzeAll(todo []uint32, bounds []uint32) []*analysis {
	out := make([]*analysis, len(todo))
	limits := make([]uint32, len(todo))
	for i, s := range todo {
		limits[i] = b.limitFor(s, nextAfter(bounds, s))
	}
	par.ForEach(len(todo), 16, 64, func(j int) { out[j] = b.analyze(todo[j], limits[j]) })
	return out
}

// addPointers marks the functions whose address is taken: code addresses
// in relocated pointers outside code (function-pointer tables, vtables,
// constructor lists) and code addresses the code computes (lea, push imm).
// An address that is a known start gets the pointer source; one in a gap
// between functions becomes a start; one inside a function (a jump-table
// entry, a label) is left alone. It reports whether a start was added.
func (b *functionBuilder) addPointers() bool {
	f := b.f
	var cands []uint32
	// The fields of decoded instructions, sorted (a map of a big image's
	// million fields would be several times larger).
	n := 0
	for _, a := range b.an {
		n += len(a.refs)
	}
	refAt := make([]uint32, 0, n)
	for _, a := range b.an {
		for _, r := range a.refs {
			refAt = append(refAt, r.At)
		}
	}
	slices.Sort(refAt)
	for _, r := range f.Relocs {
		if _, found := slices.BinarySearch(refAt, r.RVA); found {
			continue // a field of a decoded instruction
		}
		var v uint64
		var ok bool
		switch r.Type {
		case IMAGE_REL_BASED_HIGHLOW:
			var v32 uint32
			v32, ok = f.readU32(r.RVA)
			v = uint64(v32)
		case IMAGE_REL_BASED_DIR64:
			v, ok = f.readU64(r.RVA)
		}
		if !ok {
			continue
		}
		if t, ok := f.vaToRVA(v); ok && f.IsCode(t) {
			cands = append(cands, t)
		}
	}
	for _, a := range b.an {
		cands = append(cands, a.pointers...)
	}
	slices.Sort(cands)
	type span struct{ s, e uint32 }
	var spans []span
	for s, a := range b.an {
		spans = append(spans, span{s, a.end})
	}
	for fr, e := range b.fragEnd {
		spans = append(spans, span{fr, e})
	}
	for t, e := range b.tableAt {
		spans = append(spans, span{t, e})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].s < spans[j].s })
	inside := func(t uint32) bool {
		i := sort.Search(len(spans), func(i int) bool { return spans[i].s > t }) - 1
		for k := i; k >= 0 && k > i-8; k-- {
			if t >= spans[k].s && t < spans[k].e {
				return true
			}
		}
		return false
	}
	added := false
	for i, t := range cands {
		if i > 0 && cands[i-1] == t {
			continue
		}
		if si := b.starts[t]; si != nil {
			si.src |= SrcPointer
			continue
		}
		if _, frag := b.fragOf[t]; frag {
			continue
		}
		if inside(t) || !b.plausibleStart(t, t+16) {
			continue
		}
		b.add(t, SrcPointer, "")
		added = true
	}
	return added
}

// sweep finds code in the gaps between functions that no source reached
// and adds a start at the first non-padding byte of each such gap. It
// reports whether it added anything.
func (b *functionBuilder) sweep() bool {
	added := false
	type span struct{ s, e uint32 }
	var covered []span
	for s, a := range b.an {
		covered = append(covered, span{s, a.end})
	}
	for frag, parent := range b.fragOf {
		_ = parent
		covered = append(covered, span{frag, b.fragEnd[frag]})
	}
	if len(b.coldOf) > 0 {
		bounds := b.boundaries()
		for c := range b.coldOf {
			a := b.an[c]
			if a == nil {
				a = b.analyze(c, b.limitFor(c, nextAfter(bounds, c)))
				b.an[c] = a
				b.absorb(c, a)
			}
			covered = append(covered, span{c, a.end})
		}
	}
	for t, e := range b.tableAt {
		covered = append(covered, span{t, e})
	}
	sort.Slice(covered, func(i, j int) bool { return covered[i].s < covered[j].s })
	for _, sec := range b.codeSecs {
		pos := sec.VirtualAddress
		end := sec.VirtualAddress + min(sec.mappedSize(), sec.rawSize())
		ci := 0
		for pos < end {
			for ci < len(covered) && covered[ci].e <= pos {
				ci++
			}
			if ci < len(covered) && covered[ci].s <= pos {
				pos = covered[ci].e
				continue
			}
			gapEnd := end
			if ci < len(covered) && covered[ci].s < gapEnd {
				gapEnd = covered[ci].s
			}
			p := b.skipPadding(pos, gapEnd)
			if p >= gapEnd {
				pos = gapEnd
				continue
			}
			if !b.plausibleStart(p, gapEnd) {
				// Not code: skip to the next aligned position and retry.
				pos = (p + 16) &^ 15
				continue
			}
			a := b.analyze(p, gapEnd)
			if a.odd || a.partial {
				// Data in the code section (exception tables, constant
				// pools): not a function.
				pos = (p + 16) &^ 15
				continue
			}
			b.add(p, SrcSweep, "")
			added = true
			b.an[p] = a
			b.absorb(p, a)
			if a.end <= p {
				pos = p + 1
			} else {
				pos = a.end
			}
		}
	}
	return added
}

// plausibleStart checks that code at p decodes for a few instructions
// without hitting an invalid one, so that stray data is not taken for code.
func (b *functionBuilder) plausibleStart(p, end uint32) bool {
	// An instruction never starts with an address field: a relocation at
	// p means a pointer table in code (such as mingw's __CTOR_LIST__).
	if _, ok := b.f.RelocAt(p); ok {
		return false
	}
	code := b.f.Bytes(p, int(end-p))
	if len(code) == 0 {
		return false
	}
	zero := 0
	for _, c := range code {
		if c != 0 {
			break
		}
		zero++
	}
	if zero >= 2 {
		return false
	}
	// Data decodes as "add [r], r" (00/01 with zeros around it) and as
	// instructions compilers never emit in user code.
	if code[0] <= 0x01 {
		zeros := 0
		for _, c := range code[:min(8, len(code))] {
			if c == 0 {
				zeros++
			}
		}
		if zeros >= 3 {
			return false
		}
	}
	pc := uint64(p)
	for n := 0; n < 4 && len(code) > 0; n++ {
		in, err := disasm.Decode(code, pc, b.f.mode())
		if err != nil || unlikelyInCode(&in) {
			return false
		}
		if in.Flow == disasm.FlowRet || in.Flow == disasm.FlowJump || in.Flow == disasm.FlowIndirectJump {
			return true
		}
		code = code[in.Len:]
		pc += uint64(in.Len)
	}
	return true
}

// unlikelyInCode reports instructions that compiled user code does not
// contain: seen at the start of a candidate, they mean data.
func unlikelyInCode(in *disasm.Inst) bool {
	switch in.Raw.Op {
	case x86asm.LCALL, x86asm.LJMP, x86asm.IN, x86asm.OUT, x86asm.INSB, x86asm.INSW, x86asm.INSD,
		x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD, x86asm.HLT, x86asm.ARPL, x86asm.BOUND, x86asm.AAA,
		x86asm.AAS, x86asm.DAA, x86asm.DAS, x86asm.INTO, x86asm.LDS, x86asm.LES, x86asm.FWAIT:
		return true
	}
	return false
}

// skipPadding returns the first byte in [p, end) that is not padding
// (int3, nop forms, zero fill).
func (b *functionBuilder) skipPadding(p, end uint32) uint32 {
	for p < end {
		code := b.f.Bytes(p, int(min(end-p, 16)))
		if len(code) == 0 {
			return end
		}
		switch code[0] {
		case 0xcc, 0x90, 0x00:
			p++
			continue
		}
		in, err := disasm.Decode(code, uint64(p), b.f.mode())
		if err != nil || !isNop(&in, code) {
			return p
		}
		p += uint32(in.Len)
	}
	return end
}

// isNop recognises the multi-byte no-op forms compilers pad with: nop
// r/m, xchg ax,ax, and "lea esi,[esi+0]" / "mov edi,edi" style moves of a
// register to itself.
func isNop(in *disasm.Inst, code []byte) bool {
	switch in.Raw.Op {
	case x86asm.NOP:
		return true
	case x86asm.XCHG:
		return in.Raw.Args[0] == in.Raw.Args[1]
	case x86asm.MOV:
		return in.Raw.Args[0] != nil && in.Raw.Args[0] == in.Raw.Args[1]
	case x86asm.LEA:
		r, ok := in.Raw.Args[0].(x86asm.Reg)
		m, ok2 := in.Raw.Args[1].(x86asm.Mem)
		return ok && ok2 && m.Base == r && m.Disp == 0 && m.Index == 0
	}
	return false
}

// attachColdParts finds gcc .cold parts in images without symbols. gcc
// gives a .cold part its own .pdata entry (not a chained one) whose unwind
// codes describe the frame of the function it was split from, all at
// offset 0 with an empty prologue: it runs inside a frame another piece of
// code set up. Such an entry, found by nothing but .pdata (and jumps), that
// is jumped to from exactly one function and never called, is a part of
// that function.
func (b *functionBuilder) attachColdParts() {
	jumpers := map[uint32]map[uint32]bool{}
	for s, a := range b.an {
		for _, t := range a.outside {
			if jumpers[t] == nil {
				jumpers[t] = map[uint32]bool{}
			}
			jumpers[t][s] = true
		}
	}
	b.sortedStartsCache = b.sortedStarts()
	called := map[uint32]bool{}
	for _, a := range b.an {
		for _, c := range a.calls {
			called[c] = true
		}
	}
	var cold []uint32
	parentOf := map[uint32]uint32{}
	// Unreferenced code that directly follows a function, found only by
	// the sweep, is that function's unreached tail (a landing pad the
	// unwinder enters).
	for i, start := range b.sortedStartsCache {
		si := b.starts[start]
		if i == 0 || si.src != SrcSweep || len(si.names) > 0 || len(jumpers[start]) > 0 || called[start] {
			continue
		}
		prev := b.sortedStartsCache[i-1]
		if pa := b.an[prev]; pa != nil && pa.end == start && b.starts[prev].src != SrcSweep {
			cold = append(cold, start)
			parentOf[start] = prev
		}
	}
	for _, c := range cold {
		for t, js := range jumpers {
			if js[c] {
				delete(js, c)
				js[parentOf[c]] = true
				jumpers[t] = js
			}
		}
	}
	for start, si := range b.starts {
		if _, done := parentOf[start]; done {
			continue
		}
		if len(si.names) > 0 || len(jumpers[start]) > 1 || called[start] {
			continue
		}
		// A part that jumps back into the interior of exactly one
		// function, and is entered from nothing else (a landing pad,
		// entered by the unwinder) or only from that function.
		if si.src == SrcSweep || si.src == SrcPdata {
			if owner, ok := b.jumpsBackTo(start); ok && (len(jumpers[start]) == 0 || jumpers[start][owner]) {
				cold = append(cold, start)
				parentOf[start] = owner
				continue
			}
		}
		if len(jumpers[start]) != 1 || !b.f.Is64 || si.src != SrcPdata {
			continue
		}
		rf, ok := b.pdataEntry(start)
		if !ok {
			continue
		}
		u, err := b.f.ParseUnwindInfo(rf.UnwindData)
		if err != nil || len(u.Codes) == 0 || u.SizeOfProlog != 0 || u.Flags&UNW_FLAG_CHAININFO != 0 {
			continue
		}
		framed := true
		for _, c := range u.Codes {
			if c.CodeOffset != 0 {
				framed = false
			}
		}
		if framed {
			cold = append(cold, start)
			for p := range jumpers[start] {
				parentOf[start] = p
			}
		}
	}
	slices.Sort(cold)
	for _, c := range cold {
		parent := parentOf[c]
		if _, ok := b.starts[parent]; !ok || parent == c {
			continue
		}
		if end := b.starts[c].exactEnd; end != 0 {
			b.fragOf[c], b.fragEnd[c] = parent, end
		} else {
			b.coldOf[c] = parent
		}
		delete(b.starts, c)
		delete(b.an, c)
	}
}

// jumpsBackTo returns the function whose interior the code at part
// jumps into, when there is exactly one such function.
func (b *functionBuilder) jumpsBackTo(part uint32) (uint32, bool) {
	a := b.an[part]
	if a == nil {
		return 0, false
	}
	owner, found := uint32(0), false
	for _, t := range a.outside {
		o, ok := b.interiorOwner(t)
		if !ok {
			continue
		}
		if found && o != owner {
			return 0, false
		}
		owner, found = o, true
	}
	return owner, found
}

// interiorOwner returns the analysed function whose extent contains t
// (not at its start).
func (b *functionBuilder) interiorOwner(t uint32) (uint32, bool) {
	starts := b.sortedStartsCache
	i := sort.Search(len(starts), func(i int) bool { return starts[i] >= t }) - 1
	if i < 0 {
		return 0, false
	}
	s := starts[i]
	if a := b.an[s]; a != nil && t > s && t < a.end {
		return s, true
	}
	return 0, false
}

func (b *functionBuilder) pdataEntry(begin uint32) (RuntimeFunction, bool) {
	rfs := b.f.Unwind
	i := sort.Search(len(rfs), func(i int) bool { return rfs[i].BeginAddress >= begin })
	if i < len(rfs) && rfs[i].BeginAddress == begin {
		return rfs[i], true
	}
	return RuntimeFunction{}, false
}

// maxUndecoded bounds the bytes after an undecodable instruction that a
// function's extent keeps.
const maxUndecoded = 256

// finish turns the analyses into the function table.
func (b *functionBuilder) finish() {
	f := b.f
	starts := b.sortedStarts()
	fns := make([]Function, 0, len(starts))
	extent := func(s uint32, a *analysis) localExtent {
		// Other starts inside the extent (rare: an export or symbol at an
		// inner label): branches to their first bytes stay references.
		i, _ := slices.BinarySearch(starts, s+1)
		j, _ := slices.BinarySearch(starts, a.end)
		return localExtent{start: s, end: a.end, inner: starts[i:j]}
	}
	// Every function's references go into one exactly sized array rather
	// than a small allocation each: a big image has a hundred thousand
	// lists, made among the garbage of decoding, and as many small
	// objects left behind would keep much of that garbage's memory from
	// being reused.
	nrefs := 0
	for _, s := range starts {
		if a := b.an[s]; a != nil {
			nrefs += extent(s, a).kept(a.refs)
		}
	}
	arena := make([]Ref, 0, nrefs)
	for _, s := range starts {
		a := b.an[s]
		si := b.starts[s]
		if a == nil {
			continue
		}
		fn := Function{
			RVA:         s,
			Size:        a.end - s,
			Sources:     si.src,
			Partial:     a.partial,
			Returns:     a.returns,
			Insts:       uint32(a.insts),
			Blocks:      uint32(a.blocks),
			ImportThunk: a.thunk,
		}
		at := len(arena)
		arena, fn.EntryTargets = extent(s, a).appendKept(arena, a.refs)
		fn.Refs = arena[at:len(arena):len(arena)]
		if len(a.tables) > 0 {
			fn.extra().tables = a.tables
		}
		if a.partial {
			fn.extra().partialAt = a.partialAt
		}
		var aliases []string
		fn.Name, aliases = pickName(si.names)
		if len(aliases) > 0 {
			fn.extra().aliases = aliases
		}
		if si.display != "" && si.display != fn.Name {
			fn.extra().display = si.display
		}
		if fn.Name == "" && fn.ImportThunk {
			// "jmp [IAT slot]": name it after the import, as the
			// import library's thunk symbol is.
			for _, r := range fn.Refs {
				if slot, ok := f.ImportAt(r.Target); ok {
					if slot.Name != "" {
						fn.Name = slot.Name
					} else {
						fn.Name = slot.String()
					}
					break
				}
			}
		}
		fns = append(fns, fn)
	}
	f.functions = fns
	// Attach .pdata fragments and .cold parts.
	attach := func(part, parent uint32, end uint32) {
		i, ok := f.FunctionIndex(parent)
		if !ok {
			f.warnf("code fragment at %#x belongs to %#x, which is not a known function", part, parent)
			return
		}
		fn := &f.functions[i]
		m := fn.extra()
		m.chunks = append(m.chunks, Chunk{RVA: part, Size: end - part})
		a := b.analyze(part, end)
		fn.Refs = append(fn.Refs, a.refs...)
		m.tables = append(m.tables, a.tables...)
		fn.Insts += uint32(a.insts)
		fn.Blocks += uint32(a.blocks)
		if a.partial && !fn.Partial {
			fn.Partial, m.partialAt = true, a.partialAt
		}
	}
	frags := make([]uint32, 0, len(b.fragOf))
	for fr := range b.fragOf {
		frags = append(frags, fr)
	}
	slices.Sort(frags)
	for _, fr := range frags {
		attach(fr, b.fragOf[fr], b.fragEnd[fr])
	}
	colds := make([]uint32, 0, len(b.coldOf))
	for c := range b.coldOf {
		colds = append(colds, c)
	}
	slices.Sort(colds)
	bounds := b.boundaries()
	for _, c := range colds {
		lim := b.limitFor(c, nextAfter(bounds, c))
		a := b.analyze(c, lim)
		attach(c, b.coldOf[c], a.end)
	}
	for i := range f.functions {
		for _, c := range f.functions[i].Chunks() {
			f.chunks = append(f.chunks, chunkRef{c, i})
		}
	}
	sort.Slice(f.chunks, func(i, j int) bool { return f.chunks[i].RVA < f.chunks[j].RVA })
	for i := range f.functions {
		fn := &f.functions[i]
		if cs := fn.Chunks(); len(cs) > 1 {
			sort.Slice(cs, func(a, c int) bool { return cs[a].RVA < cs[c].RVA })
		}
		slices.SortFunc(fn.Refs, func(a, c Ref) int { return cmp.Compare(a.At, c.At) })
		n := len(fn.Refs)
		fn.Refs = dedupRefs(fn.Refs)
		switch {
		case len(fn.Chunks()) > 0:
			// Grown by the chunks' references: exact size again.
			fn.Refs = slices.Clone(fn.Refs)
		case len(fn.Refs) < n:
			fn.Refs = fn.Refs[:len(fn.Refs):len(fn.Refs)] // a part of the shared array
		}
		if fn.Refs == nil {
			fn.Refs = []Ref{}
		}
	}
}

// pickName chooses the display name: the first name found, which is an
// export name when there is one (exports are seeded before symbols and map
// entries); the rest become aliases, sorted.
func pickName(names []string) (string, []string) {
	if len(names) == 0 {
		return "", nil
	}
	best := names[0]
	rest := append([]string(nil), names[1:]...)
	sort.Strings(rest)
	return best, rest
}

// localExtent is a function's main extent, for telling its local branches
// (to a place in the extent) from its references.
type localExtent struct {
	start, end uint32
	inner      []uint32 // other function starts in (start, end), sorted
}

// local reports whether r is a branch to a place in the extent that is not
// within 8 bytes of another function's start: such branches are not kept
// as references.
func (e *localExtent) local(r *Ref) bool {
	if r.Kind != RefBranch8 && r.Kind != RefBranch32 || r.Target < e.start || r.Target >= e.end {
		return false
	}
	// The last inner start at or before the target (a binary search: a
	// hostile image may put many starts inside one extent).
	i, found := slices.BinarySearch(e.inner, r.Target)
	if !found {
		i--
	}
	return i < 0 || r.Target-e.inner[i] >= 8
}

// kept counts the references of refs that are not local branches.
func (e localExtent) kept(refs []Ref) int {
	n := 0
	for i := range refs {
		if !e.local(&refs[i]) {
			n++
		}
	}
	return n
}

// appendKept appends to out the references of refs that are not local
// branches, and returns the entry targets among those (bit k for
// start+k, k = 1..7).
func (e localExtent) appendKept(out, refs []Ref) ([]Ref, uint8) {
	var entry uint8
	for i := range refs {
		r := &refs[i]
		if !e.local(r) {
			out = append(out, *r)
			continue
		}
		if k := r.Target - e.start; k >= 1 && k <= 7 {
			entry |= 1 << k
		}
	}
	return out, entry
}

func dedupRefs(refs []Ref) []Ref {
	out := refs[:0]
	for i, r := range refs {
		if i > 0 && r.At == refs[i-1].At {
			continue
		}
		out = append(out, r)
	}
	return out
}

// ---- decoding one function ----

const maxFunctionSize = 1 << 22 // 4 MiB of code for one function at most

// analyze decodes the code reachable from start without passing limit.
func (b *functionBuilder) analyze(start, limit uint32) *analysis {
	a := &analysis{start: start, end: start, limit: limit}
	if limit <= start {
		a.returns = true
		return a
	}
	if limit-start > maxFunctionSize {
		limit = start + maxFunctionSize
	}
	code := b.f.Bytes(start, int(limit-start))
	if len(code) == 0 {
		a.partial = true
		return a
	}
	sc := scratchPool.Get().(*analyzeScratch)
	sc.begin(a)
	b.decodeFunction(a, code, sc)
	sc.end(a)
	scratchPool.Put(sc)
	return a
}

// decodeFunction is analyze's decoding of code, the bytes from a.start on.
func (b *functionBuilder) decodeFunction(a *analysis, code []byte, sc *analyzeScratch) {
	f := b.f
	start := a.start
	n := uint32(len(code))
	// seen: instruction starts; covered: bytes inside an instruction,
	// after its first; leader: basic-block leaders.
	seen, covered, leader := sc.bitsets(n)
	isSet := func(bs []uint64, i uint32) bool { return bs[i/64]&(1<<(i%64)) != 0 }
	set := func(bs []uint64, i uint32) { bs[i/64] |= 1 << (i % 64) }
	work := sc.work[:0]
	defer func() { sc.work = work[:0] }()
	push := func(rva uint32) {
		if rva >= start && rva < start+n {
			set(leader, rva-start)
			work = append(work, rva)
		}
	}
	push(start)
	mode := f.mode()
	var tr tracker
	var pending []tableCandidate
	var extra []uint32
	prescanned := false
	// ilen is the length of each instruction the descent decoded, by
	// offset (valid where seen is set), for prescanStops; overlap is set
	// when two of them overlap (then prescanStops decodes everything
	// itself).
	ilen := sc.lengths(n)
	overlap := false
	end := start
	for {
		for len(work) > 0 {
			pc := work[len(work)-1]
			work = work[:len(work)-1]
			tr.resetRun()
			for {
				off := pc - start
				if off >= n || isSet(seen, off) {
					break
				}
				if isSet(covered, off) {
					// A branch into the middle of a decoded instruction.
					if !a.partial || pc < a.partialAt {
						a.partialAt = pc
					}
					a.partial = true
					break
				}
				in, err := disasm.Decode(code[off:], uint64(pc), mode)
				if err != nil || off+uint32(in.Len) > n {
					if !a.partial || pc < a.partialAt {
						a.partialAt = pc
					}
					a.partial = true
					break
				}
				set(seen, off)
				ilen[off] = uint8(in.Len)
				for k := off + 1; k < off+uint32(in.Len); k++ {
					if isSet(seen, k) {
						overlap = true
					}
					set(covered, k)
				}
				if unlikelyInCode(&in) {
					a.odd = true
				}
				a.insts++
				next := pc + uint32(in.Len)
				if next > end {
					end = next
				}
				if pc == start && in.Flow == disasm.FlowIndirectJump {
					a.thunk = true
				}
				cont := b.instRefs(a, &in, pc, &tr)
				tr.observe(&in)
				switch in.Flow {
				case disasm.FlowRet:
					a.returns = true
					cont = false
				case disasm.FlowTrap:
					cont = false
				case disasm.FlowJump:
					t := uint32(in.Refs[0].Target)
					if t >= start && t < start+n {
						push(t)
					} else {
						a.outside = append(a.outside, t)
						a.returns = true // tail call: returns if the callee does
					}
					cont = false
				case disasm.FlowCondJump:
					t := uint32(in.Refs[0].Target)
					if t >= start && t < start+n {
						push(t)
					} else {
						a.outside = append(a.outside, t)
						a.returns = true
					}
					push(next)
				case disasm.FlowIndirectJump:
					if c, ok := b.tableCandidate(&in, &tr); ok {
						pending = append(pending, c)
					} else {
						a.returns = true // unknown target: assume it may return
					}
					cont = false
				case disasm.FlowCall:
					t := uint32(in.Refs[0].Target)
					a.calls = append(a.calls, t)
					if b.noReturn[t] {
						a.callsNoRet = append(a.callsNoRet, t)
						cont = false
					}
				case disasm.FlowIndirectCall:
					if slot, ok := importSlotOf(&in, pc, f); ok && b.noReturn[slot] {
						cont = false
					}
				}
				if !cont {
					break
				}
				pc = next
			}
		}
		if len(pending) == 0 {
			break
		}
		// Resolve the jump tables found so far, now that every address the
		// code references is known: a table ends where another referenced
		// object begins.
		stops := b.tableStops(a, pending)
		if !prescanned {
			prescanned = true
			if overlap {
				extra = b.prescanStops(start, code, nil, nil, nil, sc)
			} else {
				extra = b.prescanStops(start, code, seen, ilen, a.refs, sc)
			}
		}
		stops = mergeSorted(stops, extra)
		for _, c := range pending {
			valid := func(t uint32) bool {
				return t >= start && t < start+n && !isSet(covered, t-start)
			}
			tbl, ok := b.readTable(c, start, start+n, stops, valid)
			if !ok && c.bound > 0 {
				c.bound = 0 // the bound check was for another value
				tbl, ok = b.readTable(c, start, start+n, stops, valid)
			}
			if !ok {
				a.returns = true
				continue
			}
			a.tables = append(a.tables, tbl)
			for _, t := range tbl.Targets {
				push(t)
			}
		}
		pending = pending[:0]
	}
	// Code inside an exact (.pdata) extent that control flow does not
	// reach, such as C++ landing pads entered by the unwinder, is decoded
	// linearly so that its references are known too.
	fixedEnd := uint32(0)
	if si := b.starts[start]; si != nil && si.exactEnd != 0 {
		fixedEnd = si.exactEnd
	} else if fe, ok := b.fragEnd[start]; ok {
		fixedEnd = fe
	}
	if fixedEnd == 0 {
		fixedEnd = end // holes between the blocks control flow reached
	}
	if fixedEnd > start && fixedEnd-start <= n {
		inTable := func(rva uint32) bool {
			for _, t := range a.tables {
				if rva >= t.RVA && rva < t.RVA+t.Size() {
					return true
				}
			}
			return false
		}
		var tr2 tracker
		for off := uint32(0); off < fixedEnd-start; {
			if isSet(seen, off) || isSet(covered, off) || inTable(start+off) {
				off++
				continue
			}
			in, err := disasm.Decode(code[off:fixedEnd-start], uint64(start+off), mode)
			if err != nil {
				off++
				continue
			}
			set(seen, off)
			for k := off + 1; k < off+uint32(in.Len) && k < n; k++ {
				set(covered, k)
			}
			a.insts++
			b.instRefs(a, &in, start+off, &tr2)
			if in.Flow == disasm.FlowCall {
				t := uint32(in.Refs[0].Target)
				a.calls = append(a.calls, t)
				if b.noReturn[t] {
					a.callsNoRet = append(a.callsNoRet, t)
				}
			}
			off += uint32(in.Len)
		}
	}
	// Jump tables placed right after the code (x86 MSVC) belong to the extent.
	for _, t := range a.tables {
		if t.RVA >= start && t.RVA <= end+16 && t.RVA+t.Size() <= start+n && f.IsCode(t.RVA) {
			if t.RVA+t.Size() > end {
				end = t.RVA + t.Size()
			}
		}
	}
	for i := uint32(0); i < n; i++ {
		if isSet(leader, i) && isSet(seen, i) {
			a.blocks++
		}
	}
	// Bytes that could not be decoded stay in the extent, up to the next
	// function (at most maxUndecoded), so that they are compared byte for
	// byte: a change there must not go unseen.
	if a.partial && a.partialAt >= start {
		if e := min(start+n, a.partialAt+maxUndecoded); e > end {
			end = e
		}
	}
	if si := b.starts[start]; si != nil && si.exactEnd != 0 {
		end = si.exactEnd
	}
	if _, frag := b.fragEnd[start]; frag {
		end = b.fragEnd[start]
	}
	a.end = end
	// Relocated fields the decoder did not report (data inside the code).
	a.refs = b.relocRefs(a.refs, start, end)
}

// importSlotOf returns the IAT slot an indirect call or jump goes through.
func importSlotOf(in *disasm.Inst, pc uint32, f *File) (uint32, bool) {
	for _, r := range in.RefList() {
		var slot uint32
		switch r.Kind {
		case disasm.RefRIP:
			slot = uint32(r.Target)
		case disasm.RefDisp32:
			s, ok := f.vaToRVA(r.Target)
			if !ok {
				continue
			}
			slot = s
		default:
			continue
		}
		if _, ok := f.slots[slot]; ok {
			return slot, true
		}
	}
	return 0, false
}

// instRefs records the references of one instruction and reports whether
// execution falls through (false only for a jump through an IAT slot).
func (b *functionBuilder) instRefs(a *analysis, in *disasm.Inst, pc uint32, tr *tracker) bool {
	f := b.f
	cont := true
	for _, r := range in.RefList() {
		at := pc + uint32(r.Off)
		switch r.Kind {
		case disasm.RefRel8, disasm.RefRel32:
			k := RefBranch32
			if r.Kind == disasm.RefRel8 {
				k = RefBranch8
			}
			a.refs = append(a.refs, Ref{At: at, Width: r.Width, Kind: k, Target: uint32(r.Target)})
		case disasm.RefCall32:
			a.refs = append(a.refs, Ref{At: at, Width: 4, Kind: RefCall, Target: uint32(r.Target)})
		case disasm.RefRIP:
			t := uint32(r.Target)
			a.refs = append(a.refs, Ref{At: at, Width: 4, Kind: RefRIP, Target: t, Access: accessSize(in)})
			if in.Op == x86asm.LEA {
				if reg, ok := in.Raw.Args[0].(x86asm.Reg); ok {
					tr.setLea(reg, t)
				}
				if t != 0 && f.IsCode(t) {
					a.pointers = append(a.pointers, t)
				}
			}
			if in.Flow == disasm.FlowIndirectJump {
				if _, ok := f.slots[t]; ok && b.noReturn[t] {
					cont = false
				}
			}
		case disasm.RefDisp32, disasm.RefImm32:
			if t, ok := b.absTarget(at, 4, r.Target); ok {
				ref := Ref{At: at, Width: 4, Kind: RefAbs32, Target: t}
				if r.Kind == disasm.RefDisp32 && !r.Based {
					ref.Access = accessSize(in)
				}
				a.refs = append(a.refs, ref)
				if r.Kind == disasm.RefImm32 && f.IsCode(t) {
					a.pointers = append(a.pointers, t)
				}
			}
		case disasm.RefImm64:
			if t, ok := b.absTarget(at, 8, r.Target); ok {
				a.refs = append(a.refs, Ref{At: at, Width: 8, Kind: RefAbs64, Target: t})
				if f.IsCode(t) {
					a.pointers = append(a.pointers, t)
				}
			}
		}
	}
	// __ImageBase-relative displacements (MSVC x64: [rdx+rax*4+tableRVA]).
	if f.Is64 && tr.anyImageBase {
		for _, arg := range in.Raw.Args {
			m, ok := arg.(x86asm.Mem)
			if !ok || m.Disp == 0 || m.Base == x86asm.RIP || !(tr.isImageBase(m.Base) || tr.isImageBase(m.Index)) {
				continue
			}
			if m.Disp < 0 || uint64(m.Disp) >= uint64(f.SizeOfImage) {
				continue
			}
			if off, ok := dispOffset(in, int32(m.Disp)); ok {
				a.refs = append(a.refs, Ref{At: pc + uint32(off), Width: 4, Kind: RefImageBase, Target: uint32(m.Disp)})
			}
		}
	}
	return cont
}

// accessSize returns how many bytes an instruction accesses through its
// memory operand when that operand has no index register, else 0.
func accessSize(in *disasm.Inst) uint8 {
	if in.Raw.Op == x86asm.LEA || in.Raw.Op == 0 {
		return 0
	}
	for _, arg := range in.Raw.Args {
		if m, ok := arg.(x86asm.Mem); ok {
			if m.Index != 0 || in.Raw.MemBytes <= 0 || in.Raw.MemBytes > 64 {
				return 0
			}
			return uint8(in.Raw.MemBytes)
		}
	}
	return 0
}

// dispOffset finds the offset of a 32-bit displacement inside the
// instruction bytes.
func dispOffset(in *disasm.Inst, disp int32) (int, bool) {
	for _, r := range in.RefList() {
		if r.Kind == disasm.RefDisp32 && r.Width == 4 && int32(uint32(r.Target)) == disp {
			return int(r.Off), true
		}
	}
	return 0, false
}

// absTarget converts an absolute address field to an RVA when a base
// relocation covers the field (or, in images without relocations, when the
// value lies inside the image).
func (b *functionBuilder) absTarget(at uint32, width int, val uint64) (uint32, bool) {
	f := b.f
	if t, ok := f.RelocAt(at); ok {
		if (width == 4 && t == IMAGE_REL_BASED_HIGHLOW) || (width == 8 && t == IMAGE_REL_BASED_DIR64) {
			return f.vaToRVA(val)
		}
		return 0, false
	}
	if len(f.Relocs) == 0 && f.Characteristics&0x0001 != 0 { // IMAGE_FILE_RELOCS_STRIPPED
		if rva, ok := f.vaToRVA(val); ok && f.Section(rva) != nil {
			return rva, true
		}
	}
	return 0, false
}

// relocRefs adds references for relocated fields in [start, end) that no
// decoded instruction reported.
func (b *functionBuilder) relocRefs(refs []Ref, start, end uint32) []Ref {
	f := b.f
	rs := f.Relocs
	i := sort.Search(len(rs), func(i int) bool { return rs[i].RVA >= start })
	if i >= len(rs) || rs[i].RVA >= end {
		return refs
	}
	have := make(map[uint32]bool, len(refs))
	for _, r := range refs {
		have[r.At] = true
	}
	for ; i < len(rs) && rs[i].RVA < end; i++ {
		r := rs[i]
		if have[r.RVA] {
			continue
		}
		switch r.Type {
		case IMAGE_REL_BASED_HIGHLOW:
			if v, ok := f.readU32(r.RVA); ok {
				t, _ := f.vaToRVA(uint64(v))
				refs = append(refs, Ref{At: r.RVA, Width: 4, Kind: RefAbs32, Target: t})
			}
		case IMAGE_REL_BASED_DIR64:
			if v, ok := f.readU64(r.RVA); ok {
				t, _ := f.vaToRVA(v)
				refs = append(refs, Ref{At: r.RVA, Width: 8, Kind: RefAbs64, Target: t})
			}
		}
	}
	return refs
}

const maxJumpTableEntries = 4096

// tracker follows the few facts jump-table recognition needs: which
// registers hold a RIP-relative address or __ImageBase (for the whole
// function), and, within one straight-line run, the pending table load and
// the bound check in front of it.
type tracker struct {
	lea          [16]uint32 // lea reg,[rip+X] targets by register number (x64); 0 = none
	imageBase    [16]bool
	anyImageBase bool
	// per run
	bounds   [16]int // entry counts from "cmp reg,imm; ja/jae", by register
	cmpReg   int
	pendKind JumpTableKind
	pendAt   uint32
	pendOK   bool
	cmpImm   int64
	cmpOK    bool
	bound    int // number of table entries from "cmp r,imm; ja", 0 = unknown
}

func regIndex(r x86asm.Reg) int {
	switch {
	case r >= x86asm.RAX && r <= x86asm.R15:
		return int(r - x86asm.RAX)
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return int(r - x86asm.EAX)
	}
	return -1
}

func (t *tracker) resetRun() { t.pendOK, t.cmpOK, t.bound = false, false, 0 }

func (t *tracker) setLea(r x86asm.Reg, target uint32) {
	if i := regIndex(r); i >= 0 {
		t.lea[i] = target
		t.imageBase[i] = target == 0
		if target == 0 {
			t.anyImageBase = true
		}
	}
}

func (t *tracker) isImageBase(r x86asm.Reg) bool {
	i := regIndex(r)
	return i >= 0 && t.imageBase[i]
}

// observe updates the run state after one instruction.
func (t *tracker) observe(in *disasm.Inst) {
	raw := &in.Raw
	switch raw.Op {
	case x86asm.CMP:
		if imm, ok := raw.Args[1].(x86asm.Imm); ok {
			if r, isReg := raw.Args[0].(x86asm.Reg); isReg && regIndex(r) >= 0 {
				t.cmpImm, t.cmpOK, t.cmpReg = int64(imm), true, regIndex(r)
				return
			}
		}
	case x86asm.JA:
		if t.cmpOK && t.cmpImm >= 0 && t.cmpImm < maxJumpTableEntries {
			t.bounds[t.cmpReg] = int(t.cmpImm) + 1
		}
	case x86asm.JAE:
		if t.cmpOK && t.cmpImm > 0 && t.cmpImm <= maxJumpTableEntries {
			t.bounds[t.cmpReg] = int(t.cmpImm)
		}
	case x86asm.MOVSXD, x86asm.MOV:
		if m, ok := raw.Args[1].(x86asm.Mem); ok && m.Scale == 4 && m.Index != 0 {
			t.bound = 0
			if j := regIndex(m.Index); j >= 0 {
				t.bound = t.bounds[j]
			}
			if i := regIndex(m.Base); i >= 0 {
				switch {
				case t.imageBase[i] && m.Disp > 0:
					t.pendKind, t.pendAt, t.pendOK = JumpTableRVA, uint32(m.Disp), true
				case t.lea[i] != 0 && m.Disp == 0:
					t.pendKind, t.pendAt, t.pendOK = JumpTableRelative, t.lea[i], true
				}
			}
		}
	}
	if raw.Op != x86asm.CMP && raw.Op != x86asm.JA && raw.Op != x86asm.JAE {
		t.cmpOK = false
	}
}

// tableCandidate is an indirect jump whose table location is known but
// whose entries are not read yet.
type tableCandidate struct {
	kind  JumpTableKind
	rva   uint32
	bound int // entries from the bound check, 0 = unknown
}

// tableCandidate recognises the table behind an indirect jump: x86
// "jmp [T+r*4]" with relocated VA entries; x64 "jmp reg" after an entry load
// from an RVA table addressed through __ImageBase (MSVC) or from a table of
// offsets relative to a lea'd base (gcc, LLVM).
func (b *functionBuilder) tableCandidate(in *disasm.Inst, tr *tracker) (tableCandidate, bool) {
	f := b.f
	if !f.Is64 {
		m, ok := in.Raw.Args[0].(x86asm.Mem)
		if !ok || m.Base != 0 || m.Scale != 4 || m.Disp == 0 {
			return tableCandidate{}, false
		}
		trva, ok := f.vaToRVA(uint64(uint32(m.Disp)))
		if !ok {
			return tableCandidate{}, false
		}
		bound := 0
		if j := regIndex(m.Index); j >= 0 {
			bound = tr.bounds[j]
		}
		return tableCandidate{kind: JumpTableAbsolute, rva: trva, bound: bound}, true
	}
	if _, ok := in.Raw.Args[0].(x86asm.Reg); !ok || !tr.pendOK {
		return tableCandidate{}, false
	}
	return tableCandidate{kind: tr.pendKind, rva: tr.pendAt, bound: tr.bound}, true
}

// tableStops lists the addresses a table may not run into: every other
// address the function references and every other table.
func (b *functionBuilder) tableStops(a *analysis, pending []tableCandidate) []uint32 {
	var stops []uint32
	for _, r := range a.refs {
		if r.Kind == RefRIP || r.Kind == RefAbs32 || r.Kind == RefAbs64 || r.Kind == RefImageBase {
			stops = append(stops, r.Target)
		}
	}
	for _, c := range pending {
		stops = append(stops, c.rva)
	}
	for _, t := range a.tables {
		stops = append(stops, t.RVA)
	}
	slices.Sort(stops)
	return stops
}

// prescanStops decodes code (the bytes from start on) linearly and returns
// every RIP-relative target in it, sorted: the addresses of the tables and
// other objects the function uses, including those in code the descent has
// not reached yet.
//
// The descent has decoded much of the code already: where the linear walk
// reaches an instruction it decoded (seen, by offset, with its length in
// ilen; nil for none, and the instructions must not overlap), the walk
// takes the length from ilen and the targets from the descent's
// RIP-relative references (refs) instead of decoding it again. The result
// is the same.
func (b *functionBuilder) prescanStops(start uint32, code []byte, seen []uint64, ilen []uint8, refs []Ref, sc *analyzeScratch) []uint32 {
	if !b.f.Is64 {
		return nil
	}
	rips := sc.rips[:0]
	if seen != nil {
		for _, r := range refs {
			if r.Kind == RefRIP {
				rips = append(rips, r)
			}
		}
		slices.SortFunc(rips, func(x, y Ref) int { return cmp.Compare(x.At, y.At) })
	}
	sc.rips = rips[:0]
	var out []uint32
	k := 0
	for off := 0; off < len(code); {
		pc := start + uint32(off)
		if seen != nil && seen[off/64]&(1<<(off%64)) != 0 {
			end := pc + uint32(ilen[off])
			for k < len(rips) && rips[k].At < pc {
				k++
			}
			for ; k < len(rips) && rips[k].At < end; k++ {
				out = append(out, rips[k].Target)
			}
			off += int(ilen[off])
			continue
		}
		in, err := disasm.Decode(code[off:], uint64(pc), 64)
		if err != nil {
			off++
			continue
		}
		for _, r := range in.RefList() {
			if r.Kind == disasm.RefRIP {
				out = append(out, uint32(r.Target))
			}
		}
		off += in.Len
	}
	slices.Sort(out)
	return out
}

func mergeSorted(a, b []uint32) []uint32 {
	out := make([]uint32, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	slices.Sort(out)
	return out
}

// readTable reads the entries of a candidate table. The count comes from
// the bound check in front of the jump when there is one; otherwise entries
// are read while they are valid targets, up to the next referenced address.
func (b *functionBuilder) readTable(c tableCandidate, start, limit uint32, stops []uint32, valid func(uint32) bool) (JumpTable, bool) {
	f := b.f
	max := maxJumpTableEntries
	if c.bound > 0 {
		max = c.bound
	}
	stop := nextAfter(stops, c.rva)
	t := JumpTable{RVA: c.rva, Entry: 4, Kind: c.kind}
	if c.kind == JumpTableRelative {
		t.Base = c.rva
	}
	for k := 0; k < max; k++ {
		at := c.rva + uint32(4*k)
		if stop != 0 && at >= stop && c.bound == 0 {
			break
		}
		v, ok := f.readU32(at)
		if !ok {
			break
		}
		var target uint32
		switch c.kind {
		case JumpTableAbsolute:
			if ty, ok := f.RelocAt(at); (!ok || ty != IMAGE_REL_BASED_HIGHLOW) && len(f.Relocs) > 0 {
				v = 0
			}
			if target, ok = f.vaToRVA(uint64(v)); !ok {
				target = limit
			}
		case JumpTableRVA:
			target = v
		case JumpTableRelative:
			target = t.Base + uint32(int32(v))
		}
		if !valid(target) {
			if c.bound > 0 {
				return JumpTable{}, false // the bound says every entry is valid
			}
			break
		}
		t.Targets = append(t.Targets, target)
	}
	return t, len(t.Targets) > 0
}
