package report

import (
	"fmt"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/pe"
	"golang.org/x/arch/x86/x86asm"
)

// Listing is a linear disassembly of a function's main extent.
type Listing struct {
	Offs  []uint32 // offset of each instruction from the function's entry
	Texts []string // each instruction in Intel syntax, references by name
}

// Disassemble decodes fn's main extent linearly. Addresses that resolve to
// something in f are shown by name (a function, an import, a data symbol
// or section+offset); undecodable bytes become "(bad) XX" lines of one byte.
func Disassemble(f *pe.File, fn *pe.Function) Listing {
	mode := 32
	if f.Is64 {
		mode = 64
	}
	sym := func(addr uint64) (string, uint64) {
		rva := addr
		if addr >= f.ImageBase {
			rva = addr - f.ImageBase
		}
		if rva >= uint64(f.SizeOfImage) {
			return "", 0
		}
		t := f.Resolve(uint32(rva))
		if t.Kind == pe.TargetUnknown {
			return "", 0
		}
		return t.String(), addr
	}
	var l Listing
	code := f.Bytes(fn.RVA, int(fn.Size))
	for off := 0; off < len(code); {
		in, err := disasm.Decode(code[off:], uint64(fn.RVA)+uint64(off), mode)
		if err != nil {
			l.Offs = append(l.Offs, uint32(off))
			l.Texts = append(l.Texts, fmt.Sprintf("(bad) %02x", code[off]))
			off++
			continue
		}
		text := in.Mnemonic()
		if in.Raw.Op != 0 {
			text = x86asm.IntelSyntax(in.Raw, uint64(fn.RVA)+uint64(off), func(a uint64) (string, uint64) { return sym(a) })
		}
		l.Offs = append(l.Offs, uint32(off))
		l.Texts = append(l.Texts, text)
		off += in.Len
	}
	return l
}

// IndexOf returns the index of the instruction that covers offset off.
func (l Listing) IndexOf(off uint32) int {
	for i := range l.Offs {
		if i+1 == len(l.Offs) || l.Offs[i+1] > off {
			return i
		}
	}
	return 0
}

// Len is the number of instructions.
func (l Listing) Len() int { return len(l.Texts) }

func (l Listing) line(i int) Line {
	if i < 0 || i >= len(l.Texts) {
		return Line{}
	}
	return Line{Off: l.Offs[i], Text: l.Texts[i], OK: true}
}

// Line is one side of a side-by-side row: an instruction, or nothing.
type Line struct {
	Off  uint32 // offset from the function's entry
	Text string // the instruction
	OK   bool   // false when this side has no instruction in the row
}

// String is "+OFFS text", or "" for no instruction.
func (l Line) String() string {
	if !l.OK {
		return ""
	}
	return fmt.Sprintf("+%04x %s", l.Off, l.Text)
}

// Row is one row of a side-by-side listing.
type Row struct {
	Old, New Line
	// Differs is set when the two sides do not show the same instruction
	// (offsets aside), including when one side has none.
	Differs bool
}

func newRow(o, n Line) Row {
	return Row{Old: o, New: n, Differs: o.OK != n.OK || o.Text != n.Text}
}

// Disassembly of both sides of a changed function.
type pair struct {
	old, new Listing
	of, nf   *pe.Function
}

func disassemblePair(f *diff.Function, oldF, newF *pe.File) (pair, bool) {
	if oldF == nil || newF == nil || f.Status != diff.Changed {
		return pair{}, false
	}
	of, nf := f.OldFunction(oldF), f.NewFunction(newF)
	if of == nil || nf == nil || f.OldOff >= of.Size || f.NewOff >= nf.Size {
		return pair{}, false
	}
	return pair{old: Disassemble(oldF, of), new: Disassemble(newF, nf), of: of, nf: nf}, true
}

// FirstDifference returns the rows around the first difference of a
// changed function, the window the text report shows: up to 2 instructions
// before it and 4 from it, old and new paired by position. It returns nil
// when f is not a changed function or an image is missing.
func FirstDifference(f *diff.Function, oldF, newF *pe.File) []Row {
	p, ok := disassemblePair(f, oldF, newF)
	if !ok {
		return nil
	}
	oi, ni := p.old.IndexOf(f.OldOff), p.new.IndexOf(f.NewOff)
	const before, after = 2, 4
	start := min(oi, ni, before)
	oi, ni = oi-start, ni-start
	var rows []Row
	for k := 0; k < start+after; k++ {
		o, n := p.old.line(oi+k), p.new.line(ni+k)
		if !o.OK && !n.OK {
			break
		}
		rows = append(rows, newRow(o, n))
	}
	return rows
}

// maxAlignCells bounds the work (and memory) of the longest-common-
// subsequence table in Align; past it the middle is paired by position.
const maxAlignCells = 1 << 20

// Align pairs the whole of two listings for a side-by-side view: equal
// instructions (offsets aside) on one row, and between them the differing
// ones paired in order, the surplus of either side on rows of its own.
// The common prefix and suffix are matched directly; the rest by a longest
// common subsequence when it is small enough, else by position.
func Align(old, new Listing) []Row {
	no, nn := old.Len(), new.Len()
	pre := 0
	for pre < no && pre < nn && old.Texts[pre] == new.Texts[pre] {
		pre++
	}
	suf := 0
	for suf < no-pre && suf < nn-pre && old.Texts[no-1-suf] == new.Texts[nn-1-suf] {
		suf++
	}
	rows := make([]Row, 0, max(no, nn))
	for i := 0; i < pre; i++ {
		rows = append(rows, newRow(old.line(i), new.line(i)))
	}
	ob, oe, nb, ne := pre, no-suf, pre, nn-suf
	// gap pairs old[o0:o1] with new[n0:n1], none of them matched.
	gap := func(o0, o1, n0, n1 int) {
		for k := 0; k < max(o1-o0, n1-n0); k++ {
			o, n := Line{}, Line{}
			if o0+k < o1 {
				o = old.line(o0 + k)
			}
			if n0+k < n1 {
				n = new.line(n0 + k)
			}
			rows = append(rows, newRow(o, n))
		}
	}
	h, w := oe-ob, ne-nb
	if h > 0 && w > 0 && (h+1)*(w+1) <= maxAlignCells {
		// lcs[i][j]: longest common subsequence of old[ob+i:oe], new[nb+j:ne].
		lcs := make([]int32, (h+1)*(w+1))
		at := func(i, j int) *int32 { return &lcs[i*(w+1)+j] }
		for i := h - 1; i >= 0; i-- {
			for j := w - 1; j >= 0; j-- {
				if old.Texts[ob+i] == new.Texts[nb+j] {
					*at(i, j) = *at(i+1, j+1) + 1
				} else {
					*at(i, j) = max(*at(i+1, j), *at(i, j+1))
				}
			}
		}
		i, j, gi, gj := 0, 0, 0, 0
		for i < h && j < w {
			switch {
			case old.Texts[ob+i] == new.Texts[nb+j] && *at(i, j) == *at(i+1, j+1)+1:
				gap(ob+gi, ob+i, nb+gj, nb+j)
				rows = append(rows, newRow(old.line(ob+i), new.line(nb+j)))
				i, j = i+1, j+1
				gi, gj = i, j
			case *at(i+1, j) >= *at(i, j+1):
				i++
			default:
				j++
			}
		}
		gap(ob+gi, oe, nb+gj, ne)
	} else {
		gap(ob, oe, nb, ne)
	}
	for k := 0; k < suf; k++ {
		rows = append(rows, newRow(old.line(oe+k), new.line(ne+k)))
	}
	return rows
}
