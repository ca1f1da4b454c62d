package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/hpbuild/hpbuild/diff"
	"github.com/hpbuild/hpbuild/pe"
)

var update = flag.Bool("update", false, "rewrite report/testdata/golden from the current output")

// fixture is a compared pair of committed fixture DLLs.
type fixture struct {
	path     string // the binary's path in the document
	dir      string // under ../testdata
	old, new string // file names in dir's old/new parts
	pdb      bool   // read the PDB next to each image
}

var fixtures = []fixture{
	{path: "bin/body_change.dll", dir: "body_change/x64", old: "old.dll", new: "new.dll"},
	{path: "bin/data_init.dll", dir: "data_init/x64", old: "old.dll", new: "new.dll"},
	{path: "bin/cxx_vtable.dll", dir: "cxx_vtable/x64", old: "old.dll", new: "new.dll"},
	{path: "bin/layout_only.dll", dir: "layout_only/x64", old: "old.dll", new: "new.dll"},
	{path: "lib/cxx_names.dll", dir: "msvc/cxx_names/x64", old: "old/cxx_names.dll", new: "new/cxx_names.dll", pdb: true},
}

func open(t testing.TB, path string, withPDB bool) *pe.File {
	t.Helper()
	var opts []pe.Option
	if withPDB {
		opts = append(opts, pe.WithPDB(strings.TrimSuffix(path, ".dll")+".pdb"))
	}
	f, err := pe.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// compared opens and diffs a fixture pair.
func compared(t testing.TB, fx fixture) Binary {
	t.Helper()
	dir := filepath.Join("..", "testdata", fx.dir)
	o, n := open(t, filepath.Join(dir, fx.old), fx.pdb), open(t, filepath.Join(dir, fx.new), fx.pdb)
	r := diff.Compare(o, n)
	b := Binary{Path: fx.path, Report: r, Old: o, New: n}
	if r.Verdict == diff.VerdictHotpatchable {
		b.Package = "packages/" + strings.ReplaceAll(fx.path, "/", "_") + ".hpkg"
	}
	return b
}

// release is the binaries of the golden documents: the compared fixtures
// and one binary of each verdict that has no diff.
func release(t testing.TB) []Binary {
	var bins []Binary
	for _, fx := range fixtures {
		bins = append(bins, compared(t, fx))
	}
	return append(bins,
		Binary{Path: "bin/new_tool.exe", Verdict: VerdictAdded, Note: "only in the new tree"},
		Binary{Path: "bin/old_tool.exe", Verdict: VerdictRemoved, Note: "only in the old tree"},
		Binary{Path: "bin/arm64.dll", Verdict: VerdictUnsupported, Note: "machine arm64 is not supported"},
		Binary{Path: "share/readme.txt", Verdict: VerdictNotPE, Note: "no MZ signature"},
	)
}

func render(t testing.TB, newWriter func(*bytes.Buffer) Writer, bins []Binary) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newWriter(&buf)
	for _, b := range bins {
		if err := w.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var writers = []struct {
	name string
	new  func(*bytes.Buffer) Writer
}{
	{"release.md", func(b *bytes.Buffer) Writer { return NewMarkdown(b, "Release 1.1 <rc1> & hot patches") }},
	{"release.html", func(b *bytes.Buffer) Writer { return NewHTML(b, "Release 1.1 <rc1> & hot patches") }},
}

// TestGolden compares the Markdown and HTML documents of the fixture
// release with report/testdata/golden (go test ./report -run Golden -update
// rewrites them).
func TestGolden(t *testing.T) {
	bins := release(t)
	for _, wr := range writers {
		got := render(t, wr.new, bins)
		path := filepath.Join("testdata", "golden", wr.name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./report -run Golden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run go test ./report -run Golden -update and review the diff)", wr.name, path)
		}
	}
}

// TestDocumentContent checks what the documents must say about the
// fixtures, independently of the goldens.
func TestDocumentContent(t *testing.T) {
	bins := release(t)
	md := string(render(t, writers[0].new, bins))
	for _, want := range []string{
		"**9 binaries:** 3 reboot-required, 1 unsupported, 1 hotpatchable, 1 added, 1 removed, 1 not-pe, 1 identical\n",
		"## `bin/data_init.dll`: reboot-required\n",
		"- **RR-DATA-INIT** data `g_limit`: initial value of g\\_limit changed from 10 to 20",
		"| changed | `compute` | 0x1530 → 0x1530 | 49 → 42 | hotpatchable | HP-BODY |\n",
		"Package: `packages/bin_body_change.dll.hpkg`",
		"`geo::scale [?scale@geo@@YAHH@Z]`",
		"## `share/readme.txt`: not-pe\n\nno MZ signature\n",
		"# Release 1.1 \\<rc1\\> \\& hot patches\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	// Reboot-required first, identical last.
	if i, j := strings.Index(md, "bin/data_init.dll`: reboot"), strings.Index(md, "bin/body_change.dll`: hot"); i < 0 || j < 0 || i > j {
		t.Errorf("reboot-required binary not before the hot-patchable one (%d, %d)", i, j)
	}
	page := string(render(t, writers[1].new, bins))
	for _, want := range []string{
		`<title>Release 1.1 &lt;rc1&gt; &amp; hot patches</title>`,
		// compute's first differing instruction, highlighted, with its
		// reference by name just before it.
		`<td class="old">call clamp</td>`,
		`<tr class="diff"><td class="off">&#43;0015</td><td class="old">lea edx, ptr [8*r9]</td><td class="off">&#43;0015</td><td class="new">lea edx, ptr [r9&#43;8*r9]</td></tr>`,
		`<code>geo::scale [?scale@geo@@YAHH@Z]</code>`,
		`<td class="old">lea eax, ptr [rcx&#43;rcx]</td>`,
		`<span class="rule">RR-DATA-INIT</span> data <code>g_limit</code>`,
		`<a href="packages/bin_body_change.dll.hpkg">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"http:", "https:", "<link", "src="} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML refers to an external resource (%q)", bad)
		}
	}
}

// TestDeterministic: the document does not depend on the order of the Add
// calls nor on their running concurrently.
func TestDeterministic(t *testing.T) {
	bins := release(t)
	for _, wr := range writers {
		want := render(t, wr.new, bins)
		rev := make([]Binary, len(bins))
		for i, b := range bins {
			rev[len(bins)-1-i] = b
		}
		if got := render(t, wr.new, rev); !bytes.Equal(got, want) {
			t.Errorf("%s: the order of Add changes the document", wr.name)
		}
		var buf bytes.Buffer
		w := wr.new(&buf)
		var wg sync.WaitGroup
		for _, b := range bins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.Add(b); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: concurrent Add changes the document", wr.name)
		}
	}
}

// hostile is a name meant to break out of every context a report puts it in.
const hostile = "operator<<<std::basic_string<char>&>\"'`|</code><script>alert(1)</script>&amp;\n## x"

// hostileReport is a report whose every name and message is hostile.
func hostileReport() *diff.Report {
	rule := diff.Rule{ID: "RR-DATA-INIT", Message: "value of " + hostile + " changed"}
	return &diff.Report{
		Verdict: diff.VerdictRebootRequired,
		Functions: []diff.Function{
			{Name: hostile, Display: hostile + "<display>", Status: diff.Changed, OldRVA: 0x1000, NewRVA: 0x1000, Verdict: diff.VerdictRebootRequired, Rules: []diff.Rule{rule}, Reason: hostile},
			{Name: "a|b|c", Status: diff.Added, NewRVA: 0x2000, NewSize: 4, Verdict: diff.VerdictHotpatchable, Rules: []diff.Rule{{ID: "HP-NEW-FUNC", Message: "x|y"}}},
		},
		Changes:  []diff.Change{{Kind: "data", Name: hostile, Verdict: diff.VerdictRebootRequired, Rules: []diff.Rule{rule}}},
		Warnings: []string{hostile},
		Counts:   map[diff.Status]int{diff.Changed: 1, diff.Added: 1},
	}
}

// TestHTMLEscapesHostileNames: names, paths, notes, rules and the title
// never reach the page as markup.
func TestHTMLEscapesHostileNames(t *testing.T) {
	var buf bytes.Buffer
	w := NewHTML(&buf, hostile)
	for _, b := range []Binary{
		{Path: "bin/" + hostile, Report: hostileReport(), Package: "javascript:alert(1)"},
		{Path: hostile, Verdict: VerdictNotPE, Note: hostile},
	} {
		if err := w.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the report's own", n)
	}
	for _, bad := range []string{"alert(1)</script>", "</code><script>", "&amp;\n", `"'`, `href="javascript:`} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q unescaped", bad)
		}
	}
	if !strings.Contains(page, "operator&lt;&lt;&lt;std::basic_string&lt;char&gt;&amp;&gt;&#34;&#39;`|&lt;/code&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;") {
		t.Error("the hostile name is not shown escaped")
	}
	// Every tag in the page is one of the report's own.
	allowed := map[string]bool{}
	for _, tag := range strings.Fields("html head meta title style body h1 h2 h3 p label input section table thead tbody tr th td span a code ul li div details summary strong script") {
		allowed[tag] = true
	}
	for _, m := range regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)`).FindAllStringSubmatch(page, -1) {
		if !allowed[strings.ToLower(m[1])] {
			t.Errorf("unexpected element <%s> in the page", m[1])
		}
	}
}

// TestMarkdownEscapesHostileNames: a hostile name stays inside its code
// span and table cell, and no raw HTML gets through.
func TestMarkdownEscapesHostileNames(t *testing.T) {
	var buf bytes.Buffer
	w := NewMarkdown(&buf, hostile)
	if err := w.Add(Binary{Path: "bin/" + hostile, Report: hostileReport()}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	unescaped := regexp.MustCompile(`(^|[^\\])[<&]`)
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| ") {
			// An unescaped pipe is a cell border: six columns, seven borders.
			if n := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(line, -1)); n != 7 && n != 3 {
				t.Errorf("table row with %d cell borders: %s", n, line)
			}
			continue
		}
		if strings.HasPrefix(line, "## x") {
			t.Errorf("a name's line break made a heading: %q", line)
		}
		// Outside code spans, '<' and '&' are escaped.
		text := regexp.MustCompile("(`+) .*? (`+)|`[^`]*`").ReplaceAllString(line, "")
		if unescaped.MatchString(text) {
			t.Errorf("unescaped < or & outside code: %q", line)
		}
	}
	cell := "| changed | `` " + strings.ReplaceAll(oneLine(DisplayName(hostile, hostile+"<display>")), "|", `\|`) + " `` |"
	if !strings.Contains(md, cell) {
		t.Errorf("the hostile name is not one code span in the table:\n%s", md)
	}
}

// TestMarkdownBudget: a release of many binaries stays within the budget
// and says how many it left out.
func TestMarkdownBudget(t *testing.T) {
	r := compared(t, fixtures[0]).Report
	var buf bytes.Buffer
	w := NewMarkdown(&buf, "big")
	const n = 2000
	for i := range n {
		if err := w.Add(Binary{Path: fmt.Sprintf("bin/m%04d.dll", i), Report: r}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	if len(md) > MarkdownBudget+200 {
		t.Errorf("document of %d bytes, budget %d", len(md), MarkdownBudget)
	}
	shown := strings.Count(md, "\n## ")
	m := regexp.MustCompile(`… (\d+) more binaries not shown \((\d+) hotpatchable\)`).FindStringSubmatch(md)
	if m == nil || m[1] != fmt.Sprint(n-shown) || m[2] != m[1] || shown == 0 {
		t.Errorf("%d sections shown, tail %q", shown, m)
	}
}

// TestMarkdownFunctionLimit: a binary with many changed functions lists
// MaxMarkdownFunctions of them and counts the rest.
func TestMarkdownFunctionLimit(t *testing.T) {
	r := &diff.Report{Verdict: diff.VerdictHotpatchable, Counts: map[diff.Status]int{}}
	for i := range 40 {
		st := diff.Changed
		if i%4 == 0 {
			st = diff.Added
		}
		r.Functions = append(r.Functions, diff.Function{Name: fmt.Sprintf("f%02d", i), Status: st, Verdict: diff.VerdictHotpatchable})
		r.Counts[st]++
	}
	var buf bytes.Buffer
	w := NewMarkdown(&buf, "t")
	if err := w.Add(Binary{Path: "a.dll", Report: r}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	if rows := strings.Count(md, "\n| changed |") + strings.Count(md, "\n| added |"); rows != MaxMarkdownFunctions {
		t.Errorf("%d function rows, want %d", rows, MaxMarkdownFunctions)
	}
	// 30 changed come first (25 shown, 5 left), then 10 added.
	if !strings.Contains(md, "\n… 15 more functions (5 changed, 10 added)\n") {
		t.Errorf("no or wrong tail:\n%s", md)
	}
}

// TestWriterErrors: unknown verdicts, duplicate paths and use after Close
// are errors.
func TestWriterErrors(t *testing.T) {
	for _, wr := range writers {
		w := wr.new(&bytes.Buffer{})
		if err := w.Add(Binary{Path: "a", Verdict: "maybe"}); err == nil {
			t.Errorf("%s: unknown verdict accepted", wr.name)
		}
		if err := w.Add(Binary{Path: "a", Verdict: VerdictNotPE}); err != nil {
			t.Fatal(err)
		}
		if err := w.Add(Binary{Path: "a", Verdict: VerdictNotPE}); err == nil {
			t.Errorf("%s: duplicate path accepted", wr.name)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Add(Binary{Path: "b", Verdict: VerdictNotPE}); err == nil {
			t.Errorf("%s: Add after Close accepted", wr.name)
		}
		if err := w.Close(); err == nil {
			t.Errorf("%s: second Close accepted", wr.name)
		}
	}
}

func listing(texts ...string) Listing {
	l := Listing{Texts: texts}
	for i := range texts {
		l.Offs = append(l.Offs, uint32(i))
	}
	return l
}

// TestAlign pairs equal instructions and puts the differing ones between.
func TestAlign(t *testing.T) {
	rows := Align(listing("push", "a", "b", "c", "x", "ret"), listing("push", "a", "B", "c", "y", "z", "ret"))
	var got []string
	for _, r := range rows {
		mark := "="
		if r.Differs {
			mark = "|"
		}
		got = append(got, r.Old.Text+mark+r.New.Text)
	}
	want := "push=push a=a b|B c=c x|y |z ret=ret"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("Align: %s, want %s", s, want)
	}
}
