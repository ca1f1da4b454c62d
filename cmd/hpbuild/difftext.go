package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/disasm"
	"github.com/hpbuild/hpbuild/pe"
	"golang.org/x/arch/x86/x86asm"
)

// useColor reports whether w is a terminal and NO_COLOR is not set.
func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type palette struct{ on bool }

func (p palette) c(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// maxSideBySide bounds the disassembly shown in text reports.
const maxSideBySide = 100

// writeDiffText renders a diff report for people: summary first, then
// changed, added and removed functions, the first differing instructions
// of each changed function side by side, and the other changes.
func writeDiffText(w io.Writer, r *diff.Report, oldF, newF *pe.File, all bool, color bool) error {
	p := palette{color}
	var b strings.Builder
	verdictColor := map[string]string{diff.VerdictIdentical: "32", diff.VerdictHotpatchable: "33", diff.VerdictRebootRequired: "31"}
	fmt.Fprintf(&b, "%s -> %s\n", r.Old.Path, r.New.Path)
	fmt.Fprintf(&b, "verdict: %s\n", p.c("1;"+verdictColor[r.Verdict], r.Verdict))
	// Toolchain drift undermines every other line: say it first.
	for _, ch := range r.Changes {
		for _, rl := range ch.Rules {
			if rl.ID == "WARN-TOOLCHAIN-DRIFT" {
				fmt.Fprintf(&b, "%s %s\n", p.c("1;31", "toolchain drift:"), rl.Message)
			}
		}
	}
	fmt.Fprintf(&b, "functions: %d changed, %d added, %d removed, %d unchanged (old %d, new %d)\n",
		r.Counts[diff.Changed], r.Counts[diff.Added], r.Counts[diff.Removed], r.Counts[diff.Unchanged], r.Old.Functions, r.New.Functions)
	listed := 0
	section := func(title string, st diff.Status, code string) {
		var rows []diff.Function
		for _, f := range r.Functions {
			if f.Status == st {
				rows = append(rows, f)
			}
		}
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s (%d)\n", title, len(rows))
		for _, f := range rows {
			fmt.Fprintf(&b, "  %s  %s\n", p.c(code, fmt.Sprintf("%-9s", f.Status)), describeFunction(f))
			for _, rule := range f.Rules {
				fmt.Fprintf(&b, "      %s: %s\n", ruleLabel(rule), rule.Message)
			}
			if st == diff.Changed {
				if listed < maxSideBySide {
					sideBySide(&b, &f, oldF, newF, p)
				} else if listed == maxSideBySide {
					fmt.Fprintf(&b, "      (instructions are shown for the first %d changed functions; --format json lists every reason)\n", maxSideBySide)
				}
				listed++
			}
		}
	}
	section("changed", diff.Changed, "33")
	section("added", diff.Added, "32")
	section("removed", diff.Removed, "31")
	if all {
		section("unchanged", diff.Unchanged, "2")
	}
	if len(r.Changes) > 0 {
		fmt.Fprintf(&b, "\nother changes (%d)\n", len(r.Changes))
		for _, ch := range r.Changes {
			fmt.Fprintf(&b, "  %-8s %s [%s]\n", ch.Kind, ch.Name, ch.Verdict)
			for _, rule := range ch.Rules {
				fmt.Fprintf(&b, "      %s: %s\n", ruleLabel(rule), rule.Message)
			}
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "\nwarnings (%d)\n", len(r.Warnings))
		for _, wn := range r.Warnings {
			fmt.Fprintf(&b, "  %s\n", wn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeFunction(f diff.Function) string {
	name := textName(f.Name, f.Display)
	switch f.Status {
	case diff.Added:
		return fmt.Sprintf("%s  new %#x (%d bytes)", name, f.NewRVA, f.NewSize)
	case diff.Removed:
		return fmt.Sprintf("%s  old %#x (%d bytes)", name, f.OldRVA, f.OldSize)
	}
	s := fmt.Sprintf("%s  %#x -> %#x  (%d -> %d bytes, matched by %s", name, f.OldRVA, f.NewRVA, f.OldSize, f.NewSize, f.Match)
	if f.Status == diff.Changed {
		s += fmt.Sprintf(", similarity %.2f", f.Similarity)
	}
	return s + ")"
}

// textName is how text output shows a function: the undecorated name a
// PDB gives, with the decorated name the JSON report uses in brackets.
func textName(name, display string) string {
	if display == "" || display == name {
		return name
	}
	return display + " [" + name + "]"
}

// listing is a linear disassembly of a function's main extent.
type listing struct {
	offs  []uint32
	texts []string
}

func disassemble(f *pe.File, fn *pe.Function) listing {
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
	var l listing
	code := f.Bytes(fn.RVA, int(fn.Size))
	for off := 0; off < len(code); {
		in, err := disasm.Decode(code[off:], uint64(fn.RVA)+uint64(off), mode)
		if err != nil {
			l.offs = append(l.offs, uint32(off))
			l.texts = append(l.texts, fmt.Sprintf("(bad) %02x", code[off]))
			off++
			continue
		}
		text := in.Mnemonic()
		if in.Raw.Op != 0 {
			text = x86asm.IntelSyntax(in.Raw, uint64(fn.RVA)+uint64(off), func(a uint64) (string, uint64) { return sym(a) })
		}
		l.offs = append(l.offs, uint32(off))
		l.texts = append(l.texts, text)
		off += in.Len
	}
	return l
}

func (l listing) indexOf(off uint32) int {
	for i := range l.offs {
		if i+1 == len(l.offs) || l.offs[i+1] > off {
			return i
		}
	}
	return 0
}

// sideBySide prints the first differing instructions of a changed function.
func sideBySide(b *strings.Builder, f *diff.Function, oldF, newF *pe.File, p palette) {
	of, nf := f.OldFunction(oldF), f.NewFunction(newF)
	if of == nil || nf == nil || f.OldOff >= of.Size || f.NewOff >= nf.Size {
		return
	}
	ol, nl := disassemble(oldF, of), disassemble(newF, nf)
	oi, ni := ol.indexOf(f.OldOff), nl.indexOf(f.NewOff)
	const before, after = 2, 4
	start := min(oi, ni, before)
	oi, ni = oi-start, ni-start
	fmt.Fprintf(b, "      %-46s  %s\n", "old", "new")
	for k := 0; k < start+after; k++ {
		ot, nt := "", ""
		if oi+k < len(ol.texts) {
			ot = fmt.Sprintf("+%04x %s", ol.offs[oi+k], ol.texts[oi+k])
		}
		if ni+k < len(nl.texts) {
			nt = fmt.Sprintf("+%04x %s", nl.offs[ni+k], nl.texts[ni+k])
		}
		if ot == "" && nt == "" {
			break
		}
		mark := " "
		if stripOff(ot) != stripOff(nt) {
			mark = p.c("33", "|")
		}
		fmt.Fprintf(b, "      %-46s %s %s\n", trunc(ot, 46), mark, trunc(nt, 46))
	}
}

func stripOff(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[i+1:]
	}
	return s
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// ruleLabel is a rule's id, with the policy that changed it.
func ruleLabel(r diff.Rule) string {
	if r.Policy != "" {
		return fmt.Sprintf("%s [policy: %s]", r.ID, r.Policy)
	}
	return r.ID
}
