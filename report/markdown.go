package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/hpbuild/hpbuild/diff"
)

// Limits of a Markdown document. GitHub takes pull-request comments of up
// to 65,536 characters and job summaries of up to 1 MiB.
const (
	// MarkdownBudget bounds a Markdown document in bytes: binaries whose
	// section would pass it are counted in a "… N more binaries" line.
	MarkdownBudget = 60000
	// MaxMarkdownFunctions bounds the function rows of one binary.
	MaxMarkdownFunctions = 25
	// MaxMarkdownRules bounds the deciding rules listed for one binary.
	MaxMarkdownRules = 10
)

type markdownWriter struct {
	w     io.Writer
	title string
	c     collector
}

// NewMarkdown returns a Writer of a GitHub-flavoured Markdown document,
// for a CI job summary or a pull-request comment: a summary of the
// verdicts, then per binary its verdict, the rules that decide it and its
// changed, added and removed functions in a table.
func NewMarkdown(w io.Writer, title string) Writer {
	return &markdownWriter{w: w, title: title}
}

func (m *markdownWriter) Add(b Binary) error {
	v, err := check(&b)
	if err != nil {
		return err
	}
	return m.c.add(entry{path: b.Path, verdict: v, note: b.Note, pkg: b.Package, text: markdownBinary(&b, v)})
}

func (m *markdownWriter) Close() error {
	es, err := m.c.close()
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", mdText(m.title))
	counts := countVerdicts(es)
	var parts []string
	for _, vc := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", vc.N, vc.Verdict))
	}
	fmt.Fprintf(&b, "**%d %s:** %s\n\n", len(es), plural(len(es), "binary", "binaries"), strings.Join(parts, ", "))
	if len(counts) > 0 {
		b.WriteString("| verdict | binaries |\n| --- | ---: |\n")
		for _, vc := range counts {
			fmt.Fprintf(&b, "| %s | %d |\n", vc.Verdict, vc.N)
		}
	}
	left := map[string]int{}
	nleft := 0
	for _, e := range es {
		if nleft > 0 || b.Len()+len(e.text) > MarkdownBudget {
			left[e.verdict]++
			nleft++
			continue
		}
		b.WriteString("\n")
		b.WriteString(e.text)
	}
	if nleft > 0 {
		var parts []string
		for _, v := range verdictOrder {
			if left[v] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", left[v], v))
			}
		}
		fmt.Fprintf(&b, "\n… %d more %s not shown (%s): the HTML report and the JSON index list them all\n",
			nleft, plural(nleft, "binary", "binaries"), strings.Join(parts, ", "))
	}
	if _, err := io.WriteString(m.w, b.String()); err != nil {
		return fmt.Errorf("report: writing the Markdown document: %w", err)
	}
	return nil
}

// markdownBinary renders one binary's section.
func markdownBinary(bin *Binary, verdict string) string {
	text := markdownSection(bin, verdict)
	return strings.TrimRight(text, "\n") + "\n"
}

func markdownSection(bin *Binary, verdict string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s: %s\n\n", mdCode(bin.Path, false), verdict)
	if bin.Note != "" {
		fmt.Fprintf(&b, "%s\n\n", mdText(bin.Note))
	}
	if bin.Package != "" {
		fmt.Fprintf(&b, "Package: %s\n\n", mdCode(bin.Package, false))
	}
	r := bin.Report
	if r == nil {
		return b.String()
	}
	fmt.Fprintf(&b, "Functions: %s\n\n", functionCounts(r))
	for _, rl := range driftRules(r) {
		fmt.Fprintf(&b, "> **Toolchain drift:** %s\n\n", mdText(rl.Message))
	}
	if ds := decisions(r); len(ds) > 0 {
		b.WriteString("Decided by:\n\n")
		for i, d := range ds {
			if i == MaxMarkdownRules {
				fmt.Fprintf(&b, "- … %d more\n", len(ds)-i)
				break
			}
			fmt.Fprintf(&b, "- **%s** %s %s: %s\n", mdText(RuleLabel(d.Rule)), d.Kind, mdCode(d.Name, false), mdText(d.Rule.Message))
		}
		b.WriteString("\n")
	}
	fns := listed(r)
	if len(fns) == 0 {
		return b.String()
	}
	b.WriteString("| status | function | old → new RVA | bytes | verdict | rules |\n| --- | --- | --- | --- | --- | --- |\n")
	for i := range fns {
		if i == MaxMarkdownFunctions {
			break
		}
		f := &fns[i]
		rvas, sizes := oldNew(f)
		var ids []string
		for _, rl := range f.Rules {
			ids = append(ids, mdText(RuleLabel(rl)))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", f.Status, mdCode(DisplayName(f.Name, f.Display), true), rvas, sizes, f.Verdict, strings.Join(ids, ", "))
	}
	if n := len(fns) - MaxMarkdownFunctions; n > 0 {
		more := map[diff.Status]int{}
		for _, f := range fns[MaxMarkdownFunctions:] {
			more[f.Status]++
		}
		var parts []string
		for _, st := range []diff.Status{diff.Changed, diff.Added, diff.Removed} {
			if more[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", more[st], st))
			}
		}
		fmt.Fprintf(&b, "\n… %d more %s (%s)\n", n, plural(n, "function", "functions"), strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// oneLine turns line breaks and other control characters into spaces: a
// Markdown table row or list item is one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// mdText escapes s for Markdown text (a paragraph, a list item or a table
// cell): every character that could start emphasis, a link, code, math,
// raw HTML, an entity or a table cell is backslash-escaped.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range oneLine(s) {
		if strings.ContainsRune("\\`*_[]<>|&~#$!{}", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode returns s as a Markdown code span, whose content is shown as it
// is: the fence is longer than any run of backticks in s. In a table cell
// (inTable) a '|' must still be escaped, even in code.
func mdCode(s string, inTable bool) string {
	s = oneLine(s)
	if s == "" {
		return "–"
	}
	run, longest := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if inTable {
		s = strings.ReplaceAll(s, "|", "\\|")
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 || strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}
