package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/hpbuild/hpbuild/diff"
)

// Limits of an HTML document.
const (
	// MaxDisassembled bounds the changed functions of one binary shown
	// side by side.
	MaxDisassembled = 100
	// MaxRows bounds the rows of one side-by-side listing.
	MaxRows = 600
	// contextRows is how many equal instructions are shown around each
	// difference; longer runs of equal ones fold into one row.
	contextRows = 3
)

type htmlWriter struct {
	w     io.Writer
	title string
	c     collector
}

// NewHTML returns a Writer of one self-contained HTML file: inline CSS and
// a few lines of inline script, no other resource (a Content Security
// Policy forbids any). It holds a summary of the verdicts and a table of
// every binary, then per binary its verdict, the rules that decide it, its
// changed, added and removed functions and other changes, and for each
// changed function a side-by-side disassembly of old and new with the
// differing instructions highlighted and references shown by name.
func NewHTML(w io.Writer, title string) Writer {
	return &htmlWriter{w: w, title: title}
}

func (h *htmlWriter) Add(b Binary) error {
	v, err := check(&b)
	if err != nil {
		return err
	}
	text, err := htmlBinary(&b, v)
	if err != nil {
		return err
	}
	return h.c.add(entry{path: b.Path, verdict: v, note: b.Note, pkg: b.Package, text: text})
}

type htmlSummaryRow struct {
	ID, Path, Verdict, Note, Package string
}

func (h *htmlWriter) Close() error {
	es, err := h.c.close()
	if err != nil {
		return err
	}
	data := struct {
		Title    string
		Total    int
		Counts   []verdictCount
		Binaries []htmlSummaryRow
		Sections []template.HTML
	}{Title: h.title, Total: len(es), Counts: countVerdicts(es)}
	for _, e := range es {
		data.Binaries = append(data.Binaries, htmlSummaryRow{anchorID(e.path), e.path, e.verdict, e.note, e.pkg})
		// The section was rendered by binaryTemplate, which escaped it.
		data.Sections = append(data.Sections, template.HTML(e.text))
	}
	var b bytes.Buffer
	if err := documentTemplate.Execute(&b, data); err != nil {
		return fmt.Errorf("report: rendering the HTML document: %w", err)
	}
	if _, err := h.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: writing the HTML document: %w", err)
	}
	return nil
}

type htmlFunction struct {
	Anchor  string // id of its listing, "" when none is shown
	Status  diff.Status
	Name    string
	RVAs    string
	Sizes   string
	Verdict string
	Rules   []diff.Rule
}

type htmlRow struct {
	Class            string // same, diff, gap
	OldOff, NewOff   string
	OldText, NewText string
	Gap              int // for a gap row: how many equal rows it stands for
}

type htmlListing struct {
	Anchor  string
	Name    string
	Verdict string
	Reason  string
	Rows    []htmlRow
	More    int // rows left out past MaxRows
}

type htmlSection struct {
	ID, Path, Verdict, Note, Package string
	Compared                         bool
	Counts                           string
	Drift                            []diff.Rule
	Decisions                        []decision
	Functions                        []htmlFunction
	Changes                          []diff.Change
	Warnings                         []string
	Listings                         []htmlListing
	MoreListings                     int
}

// htmlBinary renders one binary's section.
func htmlBinary(bin *Binary, verdict string) (string, error) {
	s := htmlSection{ID: anchorID(bin.Path), Path: bin.Path, Verdict: verdict, Note: bin.Note, Package: bin.Package}
	if r := bin.Report; r != nil {
		s.Compared = true
		s.Counts = functionCounts(r)
		s.Drift = driftRules(r)
		s.Decisions = decisions(r)
		s.Changes = r.Changes
		s.Warnings = r.Warnings
		fns := listed(r)
		for i := range fns {
			f := &fns[i]
			hf := htmlFunction{Status: f.Status, Name: DisplayName(f.Name, f.Display), Verdict: f.Verdict, Rules: f.Rules}
			hf.RVAs, hf.Sizes = oldNew(f)
			if f.Status == diff.Changed {
				if len(s.Listings) < MaxDisassembled {
					if l, ok := htmlListingOf(f, bin, fmt.Sprintf("%s-f%d", s.ID, i)); ok {
						hf.Anchor = l.Anchor
						s.Listings = append(s.Listings, l)
					}
				} else {
					s.MoreListings++
				}
			}
			s.Functions = append(s.Functions, hf)
		}
	}
	var b strings.Builder
	if err := binaryTemplate.Execute(&b, s); err != nil {
		return "", fmt.Errorf("report: rendering %s: %w", bin.Path, err)
	}
	return b.String(), nil
}

// htmlListingOf aligns the whole of a changed function's old and new code
// and folds long runs of equal instructions.
func htmlListingOf(f *diff.Function, bin *Binary, anchor string) (htmlListing, bool) {
	p, ok := disassemblePair(f, bin.Old, bin.New)
	if !ok {
		return htmlListing{}, false
	}
	rows := Align(p.old, p.new)
	// keep[i]: row i is within contextRows of a differing row.
	keep := make([]bool, len(rows))
	for i, r := range rows {
		if r.Differs {
			for k := max(0, i-contextRows); k <= min(len(rows)-1, i+contextRows); k++ {
				keep[k] = true
			}
		}
	}
	l := htmlListing{Anchor: anchor, Name: DisplayName(f.Name, f.Display), Verdict: f.Verdict, Reason: f.Reason}
	off := func(ln Line) string {
		if !ln.OK {
			return ""
		}
		return fmt.Sprintf("+%04x", ln.Off)
	}
	for i := 0; i < len(rows); {
		if len(l.Rows) == MaxRows {
			l.More = len(rows) - i
			break
		}
		if !keep[i] {
			j := i
			for j < len(rows) && !keep[j] {
				j++
			}
			if j-i > 1 {
				l.Rows = append(l.Rows, htmlRow{Class: "gap", Gap: j - i})
				i = j
				continue
			}
		}
		r := rows[i]
		class := "same"
		if r.Differs {
			class = "diff"
		}
		l.Rows = append(l.Rows, htmlRow{Class: class, OldOff: off(r.Old), NewOff: off(r.New), OldText: r.Old.Text, NewText: r.New.Text})
		i++
	}
	return l, true
}

// verdictClass is the CSS class of a verdict badge.
func verdictClass(v string) string {
	switch v {
	case diff.VerdictRebootRequired, VerdictUnsupported:
		return "v-bad"
	case diff.VerdictHotpatchable, VerdictAdded, VerdictRemoved, string(diff.Changed):
		return "v-warn"
	case diff.VerdictIdentical, diff.VerdictNeutral:
		return "v-ok"
	}
	return "v-other"
}

var funcs = template.FuncMap{"vclass": verdictClass, "label": RuleLabel}

var binaryTemplate = template.Must(template.New("binary").Funcs(funcs).Parse(`<section class="binary" id="{{.ID}}">
<h2><code>{{.Path}}</code> <span class="v {{vclass .Verdict}}">{{.Verdict}}</span></h2>
{{- if .Note}}
<p class="note">{{.Note}}</p>
{{- end}}
{{- if .Package}}
<p>Package: <a href="{{.Package}}"><code>{{.Package}}</code></a></p>
{{- end}}
{{- if .Compared}}
<p>Functions: {{.Counts}}</p>
{{- range .Drift}}
<p class="drift"><strong>Toolchain drift:</strong> {{.Message}}</p>
{{- end}}
{{- if .Decisions}}
<h3>Decided by</h3>
<ul class="rules">
{{- range .Decisions}}
<li><span class="rule">{{label .Rule}}</span> {{.Kind}} <code>{{.Name}}</code>: {{.Rule.Message}}</li>
{{- end}}
</ul>
{{- end}}
{{- if .Functions}}
<h3>Functions</h3>
<table class="functions">
<thead><tr><th>status</th><th>function</th><th>old → new RVA</th><th>bytes</th><th>verdict</th><th>rules</th></tr></thead>
<tbody>
{{- range .Functions}}
<tr class="st-{{.Status}}"><td>{{.Status}}</td><td>{{if .Anchor}}<a href="#{{.Anchor}}"><code>{{.Name}}</code></a>{{else}}<code>{{.Name}}</code>{{end}}</td><td>{{.RVAs}}</td><td>{{.Sizes}}</td><td>{{if .Verdict}}<span class="v {{vclass .Verdict}}">{{.Verdict}}</span>{{end}}</td><td>{{range .Rules}}<div><span class="rule">{{label .}}</span> {{.Message}}</div>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if .Changes}}
<h3>Other changes</h3>
<table class="changes">
<thead><tr><th>kind</th><th>name</th><th>verdict</th><th>rules</th></tr></thead>
<tbody>
{{- range .Changes}}
<tr><td>{{.Kind}}</td><td><code>{{.Name}}</code></td><td><span class="v {{vclass .Verdict}}">{{.Verdict}}</span></td><td>{{range .Rules}}<div><span class="rule">{{label .}}</span> {{.Message}}</div>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- range .Listings}}
<details class="listing" id="{{.Anchor}}" open>
<summary><code>{{.Name}}</code> <span class="v {{vclass .Verdict}}">{{.Verdict}}</span>{{if .Reason}} <span class="reason">{{.Reason}}</span>{{end}}</summary>
<table class="sbs">
<thead><tr><th colspan="2">old</th><th colspan="2">new</th></tr></thead>
<tbody>
{{- range .Rows}}
{{- if eq .Class "gap"}}
<tr class="gap"><td colspan="4">… {{.Gap}} equal instructions</td></tr>
{{- else}}
<tr class="{{.Class}}">{{if .OldOff}}<td class="off">{{.OldOff}}</td><td class="old">{{.OldText}}</td>{{else}}<td class="none" colspan="2"></td>{{end}}{{if .NewOff}}<td class="off">{{.NewOff}}</td><td class="new">{{.NewText}}</td>{{else}}<td class="none" colspan="2"></td>{{end}}</tr>
{{- end}}
{{- end}}
{{- if .More}}
<tr class="gap"><td colspan="4">… {{.More}} more rows</td></tr>
{{- end}}
</tbody>
</table>
</details>
{{- end}}
{{- if .MoreListings}}
<p class="more">… {{.MoreListings}} more changed functions (disassembly is shown for the first {{len .Listings}})</p>
{{- end}}
{{- if .Warnings}}
<h3>Warnings</h3>
<ul class="warnings">
{{- range .Warnings}}
<li>{{.}}</li>
{{- end}}
</ul>
{{- end}}
{{- end}}
</section>
`))

var documentTemplate = template.Must(template.New("document").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="hpbuild">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1f2328; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1em; margin-bottom: .3em; }
code, .sbs { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid #d0d7de; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; }
.v { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: .85em; font-weight: 600; }
.v-bad { background: #ffebe9; color: #a40e26; } .v-warn { background: #fff8c5; color: #7d4e00; }
.v-ok { background: #dafbe1; color: #116329; } .v-other { background: #eaeef2; color: #424a53; }
.rule { font-family: ui-monospace, monospace; font-weight: 600; }
.drift { background: #ffebe9; padding: 4px 8px; }
.note, .reason, .more { color: #59636e; }
details.listing { margin: .8em 0; } details.listing > summary { cursor: pointer; }
.sbs td { border: none; border-right: 1px solid #d0d7de; white-space: pre; }
.sbs td.off { color: #6e7781; }
.sbs tr.diff td.old { background: #ffebe9; } .sbs tr.diff td.new { background: #dafbe1; }
.sbs tr.diff td.off { background: #fff8c5; }
.sbs td.none { background: repeating-linear-gradient(135deg, #f6f8fa 0 4px, #eaeef2 4px 8px); }
.sbs tr.gap td { color: #6e7781; background: #f6f8fa; font-style: italic; }
body.only-diff .sbs tr.same, body.only-diff .sbs tr.gap { display: none; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p><label><input type="checkbox" id="only-diff"> show only the differing instructions</label></p>
<section id="summary">
<h2>Summary</h2>
<table class="counts">
<thead><tr><th>verdict</th><th>binaries</th></tr></thead>
<tbody>
{{- range .Counts}}
<tr><td><span class="v {{vclass .Verdict}}">{{.Verdict}}</span></td><td class="num">{{.N}}</td></tr>
{{- end}}
<tr><th>total</th><th class="num">{{.Total}}</th></tr>
</tbody>
</table>
<table class="binaries">
<thead><tr><th>binary</th><th>verdict</th><th>package</th><th>note</th></tr></thead>
<tbody>
{{- range .Binaries}}
<tr><td><a href="#{{.ID}}"><code>{{.Path}}</code></a></td><td><span class="v {{vclass .Verdict}}">{{.Verdict}}</span></td><td>{{if .Package}}<a href="{{.Package}}"><code>{{.Package}}</code></a>{{end}}</td><td>{{.Note}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{range .Sections}}{{.}}{{end -}}
<script>
(function () {
  "use strict";
  var box = document.getElementById("only-diff");
  function apply() { document.body.classList.toggle("only-diff", box.checked); }
  box.addEventListener("change", apply);
  apply();
  document.documentElement.setAttribute("data-ready", "yes");
})();
</script>
</body>
</html>
`))
