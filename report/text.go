package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
)

// TextOptions says how WriteText renders a report.
type TextOptions struct {
	All   bool // list unchanged functions too
	Color bool // ANSI colours (the caller decides: a terminal, no NO_COLOR)
}

type palette struct{ on bool }

func (p palette) c(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// MaxTextSideBySide bounds the disassembly shown in text reports: the
// first differing instructions are shown for this many changed functions.
const MaxTextSideBySide = 100

// WriteText renders a diff report for people: summary first, then
// changed, added and removed functions, the first differing instructions
// of each changed function side by side, and the other changes. oldF and
// newF are the compared images (for the disassembly; either may be nil).
func WriteText(w io.Writer, r *diff.Report, oldF, newF *pe.File, opts TextOptions) error {
	p := palette{opts.Color}
	var b strings.Builder
	verdictColor := map[string]string{diff.VerdictIdentical: "32", diff.VerdictHotpatchable: "33", diff.VerdictRebootRequired: "31"}
	fmt.Fprintf(&b, "%s -> %s\n", r.Old.Path, r.New.Path)
	fmt.Fprintf(&b, "verdict: %s\n", p.c("1;"+verdictColor[r.Verdict], r.Verdict))
	// Toolchain drift undermines every other line: say it first.
	for _, rl := range driftRules(r) {
		fmt.Fprintf(&b, "%s %s\n", p.c("1;31", "toolchain drift:"), rl.Message)
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
				fmt.Fprintf(&b, "      %s: %s\n", RuleLabel(rule), rule.Message)
			}
			if st == diff.Changed {
				if listed < MaxTextSideBySide {
					textSideBySide(&b, &f, oldF, newF, p)
				} else if listed == MaxTextSideBySide {
					fmt.Fprintf(&b, "      (instructions are shown for the first %d changed functions; --format json lists every reason)\n", MaxTextSideBySide)
				}
				listed++
			}
		}
	}
	section("changed", diff.Changed, "33")
	section("added", diff.Added, "32")
	section("removed", diff.Removed, "31")
	if opts.All {
		section("unchanged", diff.Unchanged, "2")
	}
	if len(r.Changes) > 0 {
		fmt.Fprintf(&b, "\nother changes (%d)\n", len(r.Changes))
		for _, ch := range r.Changes {
			fmt.Fprintf(&b, "  %-8s %s [%s]\n", ch.Kind, ch.Name, ch.Verdict)
			for _, rule := range ch.Rules {
				fmt.Fprintf(&b, "      %s: %s\n", RuleLabel(rule), rule.Message)
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

// driftRules are the WARN-TOOLCHAIN-DRIFT rules of a report's changes.
func driftRules(r *diff.Report) []diff.Rule {
	var out []diff.Rule
	for _, ch := range r.Changes {
		for _, rl := range ch.Rules {
			if rl.ID == "WARN-TOOLCHAIN-DRIFT" {
				out = append(out, rl)
			}
		}
	}
	return out
}

func describeFunction(f diff.Function) string {
	name := DisplayName(f.Name, f.Display)
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

// DisplayName is how reports show a function: the undecorated name a PDB
// gives, with the decorated name the JSON report uses in brackets.
func DisplayName(name, display string) string {
	if display == "" || display == name {
		return name
	}
	return display + " [" + name + "]"
}

// textSideBySide prints the first differing instructions of a changed function.
func textSideBySide(b *strings.Builder, f *diff.Function, oldF, newF *pe.File, p palette) {
	rows := FirstDifference(f, oldF, newF)
	if rows == nil {
		return
	}
	fmt.Fprintf(b, "      %-46s  %s\n", "old", "new")
	for _, row := range rows {
		mark := " "
		if row.Differs {
			mark = p.c("33", "|")
		}
		fmt.Fprintf(b, "      %-46s %s %s\n", trunc(row.Old.String(), 46), mark, trunc(row.New.String(), 46))
	}
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// RuleLabel is a rule's id, with the policy that changed it.
func RuleLabel(r diff.Rule) string {
	if r.Policy != "" {
		return fmt.Sprintf("%s [policy: %s]", r.ID, r.Policy)
	}
	return r.ID
}
