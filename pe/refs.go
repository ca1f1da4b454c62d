package pe

import (
	"fmt"
	"sort"
)

// RefKind says how an address-bearing field encodes its target.
type RefKind uint8

// Reference kinds.
const (
	RefBranch8   RefKind = iota + 1 // jmp/jcc rel8
	RefBranch32                     // jmp/jcc rel32
	RefCall                         // call rel32
	RefRIP                          // RIP-relative disp32 (incl. VEX/EVEX forms)
	RefAbs32                        // 32-bit absolute address covered by a HIGHLOW relocation
	RefAbs64                        // 64-bit absolute address covered by a DIR64 relocation
	RefImageBase                    // disp32 added to a register holding __ImageBase (MSVC x64 jump tables)
)

var refKindNames = [...]string{"", "rel8", "rel32", "call32", "rip32", "abs32", "abs64", "imagebase32"}

func (k RefKind) String() string {
	if int(k) < len(refKindNames) {
		return refKindNames[k]
	}
	return fmt.Sprintf("refkind(%d)", k)
}

// Ref is one address-bearing field in a function's code. It is 12 bytes
// (the two RVAs first, then the bytes): a big image has millions.
type Ref struct {
	At     uint32  // RVA of the field
	Target uint32  // RVA the field points at (0 with Kind Abs* when outside the image)
	Width  uint8   // 1, 4 or 8 bytes
	Kind   RefKind // encoding
	// Access is the number of bytes the instruction reads or writes at
	// Target when the field is the whole address of a memory operand (no
	// index register); 0 when the address is only computed (lea, push
	// imm) or indexed.
	Access uint8
}

// TargetKind classifies what a reference points at.
type TargetKind uint8

// Target kinds.
const (
	TargetUnknown  TargetKind = iota // outside the image, or not mapped
	TargetFunction                   // the start of a function
	TargetCode                       // inside a function (not its start), or code no function covers
	TargetImport                     // an IAT slot
	TargetData                       // a data section
	TargetHeader                     // the image headers (e.g. __ImageBase)
)

var targetKindNames = [...]string{"unknown", "function", "code", "import", "data", "header"}

func (k TargetKind) String() string {
	if int(k) < len(targetKindNames) {
		return targetKindNames[k]
	}
	return fmt.Sprintf("targetkind(%d)", k)
}

// Target is a resolved reference target.
type Target struct {
	Kind     TargetKind
	RVA      uint32
	Function *Function // TargetFunction, TargetCode (when inside one)
	Offset   uint32    // offset inside Function (TargetCode) or Section (TargetData) or Symbol
	Import   ImportSlot
	Section  string // section name for TargetData / TargetCode
	Symbol   string // data symbol covering the target, if known
}

// String renders the target symbolically: "parse_u32", "kernel32.dll!Sleep",
// "g_limit", "g_table+0x8", ".rdata+0x40", "sub_1040+0x12".
func (t Target) String() string {
	switch t.Kind {
	case TargetFunction:
		return t.Function.DisplayName()
	case TargetCode:
		if t.Function != nil {
			return fmt.Sprintf("%s+%#x", t.Function.DisplayName(), t.Offset)
		}
		return fmt.Sprintf("%s+%#x", t.Section, t.Offset)
	case TargetImport:
		return t.Import.String()
	case TargetData:
		if t.Symbol != "" {
			if t.Offset == 0 {
				return t.Symbol
			}
			return fmt.Sprintf("%s+%#x", t.Symbol, t.Offset)
		}
		return fmt.Sprintf("%s+%#x", t.Section, t.Offset)
	case TargetHeader:
		if t.RVA == 0 {
			return "__ImageBase"
		}
		return fmt.Sprintf("__ImageBase+%#x", t.RVA)
	}
	return fmt.Sprintf("?%#x", t.RVA)
}

// Resolve classifies the target of a reference at rva.
func (f *File) Resolve(rva uint32) Target {
	t := Target{RVA: rva}
	if slot, ok := f.ImportAt(rva); ok {
		t.Kind, t.Import = TargetImport, slot
		return t
	}
	if fn, ok := f.FunctionAt(rva); ok {
		t.Kind, t.Function = TargetFunction, fn
		return t
	}
	s := f.Section(rva)
	if s == nil {
		if rva < f.SizeOfHeaders {
			t.Kind = TargetHeader
			return t
		}
		// At or past the end of a section but inside its last mapped
		// page: an end marker such as __RUNTIME_PSEUDO_RELOC_LIST_END__
		// or a loop bound.
		for i := range f.Sections {
			sec := &f.Sections[i]
			if end := sec.End(); rva >= end && uint64(rva) < alignUp(uint64(end), uint64(f.SectionAlignment)) || rva == end {
				t.Kind, t.Section, t.Offset = TargetData, sec.Name, rva-sec.VirtualAddress
				return t
			}
		}
		return t
	}
	if s.Executable() {
		t.Kind, t.Section = TargetCode, s.Name
		if fn, ok := f.FunctionContaining(rva); ok {
			t.Function, t.Offset = fn, rva-fn.RVA
		} else {
			t.Offset = rva - s.VirtualAddress
		}
		return t
	}
	t.Kind, t.Section, t.Offset = TargetData, s.Name, rva-s.VirtualAddress
	if sym, ok := f.dataSymbol(rva); ok {
		t.Symbol, t.Offset = sym.Name, rva-sym.RVA
	}
	return t
}

// dataSymbol finds the nearest symbol at or below rva in the same section.
func (f *File) dataSymbol(rva uint32) (Symbol, bool) {
	ss := f.Symbols
	i := sort.Search(len(ss), func(i int) bool { return ss[i].RVA > rva }) - 1
	if i < 0 {
		return Symbol{}, false
	}
	s := ss[i]
	if f.Section(s.RVA) != f.Section(rva) || s.Func {
		return Symbol{}, false
	}
	return s, true
}

func alignUp(v, a uint64) uint64 {
	if a == 0 {
		return v
	}
	return (v + a - 1) / a * a
}
